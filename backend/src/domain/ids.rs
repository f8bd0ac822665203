//! Id newtypes, so a `RoomId` can never be passed where a `UserId` is expected.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::BigInt;
use diesel::{AsExpression, FromSqlRow};
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, minimum = $min:tt) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            Serialize, Deserialize, AsExpression, FromSqlRow, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = BigInt)]
        #[schema(value_type = i64, format = Int64, minimum = $min)]
        pub struct $name(pub i64);

        impl<DB: Backend> ToSql<BigInt, DB> for $name
        where
            i64: ToSql<BigInt, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<BigInt, DB> for $name
        where
            i64: FromSql<BigInt, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                i64::from_sql(bytes).map($name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user's id.
    UserId,
    minimum = 1
);
id_type!(
    /// A room's id.
    RoomId,
    minimum = 1
);
id_type!(
    /// A message's global id.
    MessageId,
    minimum = 1
);
id_type!(
    /// A message's position in its room: 1, 2, 3, … with no gaps (0 where there is none yet).
    Seq,
    minimum = 0
);
id_type!(
    /// A sign-in session's id: random, below 2^53 (exact in JavaScript), so it says nothing
    /// about how many sessions the server has opened.
    SessionId,
    minimum = 1
);

impl SessionId {
    /// A new random id in 1 ..= 2^53 − 1.
    pub fn random() -> SessionId {
        SessionId((rand::random::<u64>() >> 11).max(1) as i64)
    }
}
