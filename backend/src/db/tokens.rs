//! What the server keeps about the tokens it issued, and forgets once they expire: their
//! sessions (`db::sessions`) and, from instances of the version before sessions, revoked tokens
//! (logout), kept until they would have expired anyway.

use diesel::prelude::*;

use super::schema::revoked_tokens;
use super::DbConnection;
use crate::error::ApiResult;

/// Forgets the sessions and revocations of tokens that have expired by now; returns how many.
pub fn purge_expired(conn: &mut DbConnection) -> ApiResult<usize> {
    let now = super::now();
    let revocations =
        diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.lt(now)))
            .execute(conn)?;
    Ok(revocations + super::sessions::purge_expired(conn, now)?)
}
