//! Revoked tokens (logout): kept until they would have expired anyway.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::revoked_tokens;
use super::{is_unique_violation, DbConnection};
use crate::domain::UserId;
use crate::error::ApiResult;

pub fn revoke(
    conn: &mut DbConnection,
    jti: &str,
    user: UserId,
    expires_at: NaiveDateTime,
) -> ApiResult<()> {
    let result = diesel::insert_into(revoked_tokens::table)
        .values((
            revoked_tokens::jti.eq(jti),
            revoked_tokens::user_id.eq(user),
            revoked_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn);
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub fn is_revoked(conn: &mut DbConnection, jti: &str) -> ApiResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(revoked_tokens::table.find(jti))).get_result(conn)?)
}

/// Forgets revocations of tokens that have expired by now; returns how many.
pub fn purge_expired(conn: &mut DbConnection) -> ApiResult<usize> {
    Ok(
        diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.lt(super::now())))
            .execute(conn)?,
    )
}
