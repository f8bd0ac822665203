//! Queries on `users`.

use diesel::prelude::*;

use super::models::UserRow;
use super::schema::users;
use super::{is_unique_violation, DbConnection};
use crate::domain::{DisplayName, UserId, Username};
use crate::error::{ApiError, ApiResult};

/// Inserts a user; a taken username (case-insensitively) is a 409.
pub fn insert(
    conn: &mut DbConnection,
    username: &Username,
    display_name: &DisplayName,
    password_hash: &str,
) -> ApiResult<UserRow> {
    diesel::insert_into(users::table)
        .values((
            users::username.eq(username.as_str()),
            users::username_key.eq(username.key()),
            users::display_name.eq(display_name.as_str()),
            users::display_name_key.eq(display_name.key()),
            users::password_hash.eq(password_hash),
            users::created_at.eq(super::now()),
        ))
        .returning(UserRow::as_returning_columns())
        .get_result(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                ApiError::Conflict(format!("the username '{}' is taken", username.as_str()))
            } else {
                e.into()
            }
        })
}

impl UserRow {
    /// The columns `UserRow` reads, for `RETURNING` (which the multi-backend needs spelled out).
    pub fn as_returning_columns() -> (
        users::id,
        users::username,
        users::display_name,
        users::password_hash,
        users::created_at,
        users::is_admin,
        users::deactivated_at,
        users::session_generation,
    ) {
        (
            users::id,
            users::username,
            users::display_name,
            users::password_hash,
            users::created_at,
            users::is_admin,
            users::deactivated_at,
            users::session_generation,
        )
    }
}

pub fn find_by_username(conn: &mut DbConnection, username_key: &str) -> ApiResult<Option<UserRow>> {
    Ok(users::table
        .filter(users::username_key.eq(username_key))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut DbConnection, id: UserId) -> ApiResult<Option<UserRow>> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_many(conn: &mut DbConnection, ids: &[UserId]) -> ApiResult<Vec<UserRow>> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select(UserRow::as_select())
        .load(conn)?)
}

/// Active users whose username or display name contains the pattern, the caller excluded
/// (deactivated accounts are never found).
pub fn search(
    conn: &mut DbConnection,
    like_pattern: &str,
    exclude: UserId,
    limit: i64,
) -> ApiResult<Vec<UserRow>> {
    Ok(users::table
        .filter(users::id.ne(exclude))
        .filter(users::deactivated_at.is_null())
        .filter(
            users::username_key
                .like(like_pattern)
                .escape('\\')
                .or(users::display_name_key.like(like_pattern).escape('\\')),
        )
        .order(users::username_key.asc())
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)?)
}

/// Moves the user's session generation on: every token issued before stops working for good
/// (tokens carry the generation they were issued in and it is checked on every request).
pub fn end_sessions(conn: &mut DbConnection, id: UserId) -> ApiResult<bool> {
    Ok(diesel::update(users::table.find(id))
        .set(users::session_generation.eq(users::session_generation + 1))
        .execute(conn)?
        > 0)
}

/// The account's login-throttle epoch: failed logins counted in an earlier one no longer count.
pub fn login_throttle_epoch(conn: &mut DbConnection, id: UserId) -> ApiResult<i64> {
    Ok(users::table
        .find(id)
        .select(users::login_throttle_epoch)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// Moves the account to a new login-throttle epoch, which clears its throttle on every instance.
pub fn clear_login_throttle(conn: &mut DbConnection, id: UserId) -> ApiResult<()> {
    diesel::update(users::table.find(id))
        .set(users::login_throttle_epoch.eq(users::login_throttle_epoch + 1))
        .execute(conn)?;
    Ok(())
}

/// Replaces a password hash with a new one of the same password (a legacy hash upgraded at
/// login), unless the password was changed meanwhile. Sessions are not affected.
pub fn upgrade_password_hash(
    conn: &mut DbConnection,
    id: UserId,
    old_hash: &str,
    new_hash: &str,
) -> ApiResult<bool> {
    Ok(diesel::update(
        users::table
            .find(id)
            .filter(users::password_hash.eq(old_hash)),
    )
    .set(users::password_hash.eq(new_hash))
    .execute(conn)?
        > 0)
}
