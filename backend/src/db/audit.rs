//! The audit log: one row per administrative action, paged newest first by id.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{audit_log, users};
use super::DbConnection;
use crate::domain::UserId;
use crate::error::ApiResult;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: i64,
    /// `None` for the command line (`letschat admin ...`).
    pub actor_id: Option<UserId>,
    pub action: String,
    pub target_type: String,
    pub target_id: i64,
    pub detail: String,
    pub created_at: NaiveDateTime,
}

/// One action to record.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub actor: Option<UserId>,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: i64,
    pub detail: String,
}

impl NewEntry<'static> {
    /// An action of a user on their own account (self-service: a password change, ending
    /// sessions, deleting the account).
    pub fn on_own_account(user: UserId, action: &'static str, detail: String) -> Self {
        NewEntry {
            actor: Some(user),
            action,
            target_type: "user",
            target_id: user.0,
            detail,
        }
    }
}

/// Records an action; call it inside the transaction that performs it.
pub fn record(conn: &mut DbConnection, entry: &NewEntry<'_>) -> ApiResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor_id.eq(entry.actor.map(|a| a.0)),
            audit_log::action.eq(entry.action),
            audit_log::target_type.eq(entry.target_type),
            audit_log::target_id.eq(entry.target_id),
            audit_log::detail.eq(&entry.detail),
            audit_log::created_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// An entry and its actor's username (`None` for the command line).
pub type AuditWithActor = (AuditRow, Option<String>);

/// Up to `limit` entries with an id below `before` (newest first), each with its actor's
/// username; plus whether older ones exist.
pub fn page(
    conn: &mut DbConnection,
    before: Option<i64>,
    limit: i64,
) -> ApiResult<(Vec<AuditWithActor>, bool)> {
    let mut query = audit_log::table
        .left_join(users::table.on(audit_log::actor_id.eq(users::id.nullable())))
        .select((AuditRow::as_select(), users::username.nullable()))
        .order(audit_log::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(b) = before {
        query = query.filter(audit_log::id.lt(b));
    }
    let mut rows: Vec<(AuditRow, Option<String>)> = query.load(conn)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_more))
}

/// Whether `actor` already has an `action` entry on the target since `since` (on the
/// `audit_log_target_idx` index: the target's entries, newest first).
pub fn recorded_since(
    conn: &mut DbConnection,
    actor: UserId,
    action: &str,
    target_type: &str,
    target_id: i64,
    since: NaiveDateTime,
) -> ApiResult<bool> {
    Ok(audit_log::table
        .filter(audit_log::target_type.eq(target_type))
        .filter(audit_log::target_id.eq(target_id))
        .filter(audit_log::actor_id.eq(actor.0))
        .filter(audit_log::action.eq(action))
        .filter(audit_log::created_at.gt(since))
        .select(audit_log::id)
        .first::<i64>(conn)
        .optional()?
        .is_some())
}
