//! Queries on `users`.

use diesel::prelude::*;

use super::models::UserRow;
use super::schema::users;
use super::{is_unique_violation, DbConnection};
use crate::domain::{DisplayName, SessionId, UserId, Username};
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
        users::deleted_at,
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
            users::deleted_at,
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

/// Ends every session of the user: their rows are deleted (returned) and the session generation
/// moves on, so every token issued before stops working for good (tokens name their session and
/// carry the generation they were issued in; both are checked on every request).
pub fn end_sessions(conn: &mut DbConnection, id: UserId) -> ApiResult<Vec<SessionId>> {
    diesel::update(users::table.find(id))
        .set(users::session_generation.eq(users::session_generation + 1))
        .execute(conn)?;
    super::sessions::end_all_but(conn, id, None)
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

/// Replaces `old_hash` with `new_hash` — a legacy hash of the same password upgraded at login,
/// or the owner's new password — unless the hash was changed meanwhile (false then). Sessions
/// are not affected.
pub fn replace_password_hash(
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

/// Sets the user's display name; returns the row as it is now (`None`: no such user).
pub fn set_display_name(
    conn: &mut DbConnection,
    id: UserId,
    name: &DisplayName,
) -> ApiResult<Option<UserRow>> {
    Ok(diesel::update(users::table.find(id))
        .set((
            users::display_name.eq(name.as_str()),
            users::display_name_key.eq(name.key()),
        ))
        .returning(UserRow::as_returning_columns())
        .get_result(conn)
        .optional()?)
}

/// What a deleted account's display name reads.
pub const DELETED_DISPLAY_NAME: &str = "Deleted user";

/// The username a deleted account gets: `~` is never allowed in a username, so it can never
/// be registered, and the old name is free again.
pub fn deleted_username(id: UserId) -> String {
    format!("~deleted-{id}")
}

/// Turns the account into what a deleted one leaves behind: `~deleted-<id>`, "Deleted user", a
/// password hash that no password matches, no admin role, deactivated (so it is never found,
/// added or sent to) and `deleted_at` set. Returns the row as it is now; `None` when there is
/// no such account or it was deleted already.
pub fn mark_deleted(
    conn: &mut DbConnection,
    id: UserId,
    now: chrono::NaiveDateTime,
) -> ApiResult<Option<UserRow>> {
    let name = deleted_username(id);
    Ok(
        diesel::update(users::table.find(id).filter(users::deleted_at.is_null()))
            .set((
                users::username.eq(&name),
                users::username_key.eq(&name),
                users::display_name.eq(DELETED_DISPLAY_NAME),
                users::display_name_key.eq(DELETED_DISPLAY_NAME.to_lowercase()),
                // Not a bcrypt hash: verifying any password against it fails.
                users::password_hash.eq("!deleted"),
                users::is_admin.eq(false),
                users::deactivated_at.eq(Some(now)),
                users::deleted_at.eq(Some(now)),
            ))
            .returning(UserRow::as_returning_columns())
            .get_result(conn)
            .optional()?,
    )
}

/// Deleted accounts whose erasure was interrupted: some of their messages are not tombstones
/// yet, or some of their reactions are still there. At most `limit`.
pub fn deleted_not_erased(conn: &mut DbConnection, limit: i64) -> ApiResult<Vec<UserId>> {
    use super::schema::{messages, reactions};
    Ok(users::table
        .filter(users::deleted_at.is_not_null())
        .filter(
            diesel::dsl::exists(
                messages::table
                    .filter(messages::sender_id.eq(users::id))
                    .filter(messages::deleted_at.is_null()),
            )
            .or(diesel::dsl::exists(
                reactions::table.filter(reactions::user_id.eq(users::id)),
            )),
        )
        .select(users::id)
        .limit(limit)
        .load(conn)?)
}
