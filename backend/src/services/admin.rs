//! Administration: managing accounts (create, deactivate, reactivate, reset a password, grant
//! or remove the admin role), moderating rooms (reading them, tombstoning messages) and the
//! server's figures. Every change is recorded in the audit log in the transaction that makes it,
//! and published to the broker after it commits.

use chrono::NaiveDateTime;

use crate::broker::{Event, MessageData, Recipients};
use crate::db::changes::{ChangeKind, ChangeRequest};
use crate::db::{
    self,
    admin::{RoomActivity, Totals, UserActivity},
    audit::{AuditRow, NewEntry},
    messages::Cursor,
    models::UserRow,
    write_transaction, DbConnection,
};
use crate::domain::{DisplayName, MessageId, Password, RoomId, SearchQuery, UserId, Username};
use crate::error::{ApiError, ApiResult};
use crate::services::sessions;
use crate::state::AppState;

/// A user with activity counts and whether they are connected now (to any instance).
pub struct AdminUserView {
    pub activity: UserActivity,
    pub online: bool,
}

/// A room with its members and last activity.
pub struct AdminRoomView {
    pub activity: RoomActivity,
    pub members: Vec<UserRow>,
}

/// One audit entry with its actor's username (`None` for the command line).
pub struct AuditView {
    pub row: AuditRow,
    pub actor_username: Option<String>,
}

/// A page of results and the cursor of the next one, if any.
pub struct Paged<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// Server-wide figures; with several instances, of them all.
pub struct Stats {
    pub totals: Totals,
    /// Open WebSocket connections. Several instances: this one's now, plus each other's as it
    /// last reported them (see [`crate::cluster_presence::ClusterCounts`]).
    pub connections: usize,
    /// Users with at least one open connection, to any instance.
    pub online_users: usize,
}

pub mod action {
    pub const USER_CREATE: &str = "user.create";
    pub const USER_DEACTIVATE: &str = "user.deactivate";
    pub const USER_REACTIVATE: &str = "user.reactivate";
    pub const USER_PASSWORD_RESET: &str = "user.password_reset";
    pub const USER_GRANT_ADMIN: &str = "user.grant_admin";
    pub const USER_REVOKE_ADMIN: &str = "user.revoke_admin";
    pub const MESSAGE_DELETE: &str = crate::db::changes::ADMIN_DELETE_ACTION;
    pub const ROOM_READ: &str = "room.read";
    /// The account's owner changed their password (`actor` is the owner).
    pub const USER_PASSWORD_CHANGE: &str = "user.password_change";
    /// The account's owner deleted it.
    pub const USER_DELETE: &str = "user.delete";
    /// The owner ended some of their sessions (one, or every other one).
    pub const SESSION_REVOKE: &str = "session.revoke";
}

/// Administrators cannot bring back or sign in to an account its owner deleted.
fn refuse_deleted(user: &UserRow) -> ApiResult<()> {
    if user.deleted_at.is_some() {
        return Err(ApiError::Conflict(
            "this account was deleted by its owner".into(),
        ));
    }
    Ok(())
}

fn user_not_found() -> ApiError {
    ApiError::not_found("user")
}

fn user_entry(actor: Option<UserId>, action: &'static str, user: &UserRow) -> NewEntry<'static> {
    NewEntry {
        actor,
        action,
        target_type: "user",
        target_id: user.id.0,
        detail: format!("@{}", user.username),
    }
}

/// The users with whether each is online on any instance (one Redis round trip for them all).
async fn views(state: &AppState, rows: Vec<UserActivity>) -> Vec<AdminUserView> {
    let ids: Vec<UserId> = rows.iter().map(|a| a.user.id).collect();
    let online = sessions::online(state, &ids).await;
    rows.into_iter()
        .zip(online)
        .map(|(activity, online)| AdminUserView { activity, online })
        .collect()
}

pub async fn list_users(
    state: &AppState,
    query: Option<SearchQuery>,
    after: Option<UserId>,
    limit: i64,
) -> ApiResult<Paged<AdminUserView, UserId>> {
    let (rows, has_more) = state
        .db
        .run(move |c| {
            db::admin::list_users(
                c,
                query.as_ref().map(SearchQuery::like_pattern),
                after,
                limit,
            )
        })
        .await?;
    let next = has_more.then(|| rows.last().map(|r| r.user.id)).flatten();
    Ok(Paged {
        items: views(state, rows).await,
        next,
    })
}

pub async fn get_user(state: &AppState, id: UserId) -> ApiResult<AdminUserView> {
    let activity = state
        .db
        .run(move |c| db::admin::find_user(c, id))
        .await?
        .ok_or_else(user_not_found)?;
    views(state, vec![activity])
        .await
        .pop()
        .ok_or_else(|| ApiError::internal("user view missing"))
}

/// Creates an account (optionally an administrator) on an administrator's behalf.
pub async fn create_user(
    state: &AppState,
    actor: UserId,
    username: Username,
    password: Password,
    display_name: Option<DisplayName>,
    is_admin: bool,
) -> ApiResult<AdminUserView> {
    password.refuse_username(username.as_str())?;
    let hash = state.hasher.hash(password.expose().to_owned()).await?;
    let display_name = display_name.unwrap_or_else(|| DisplayName::from_username(&username));
    let id = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let user = db::users::insert(c, &username, &display_name, &hash)?;
                if is_admin {
                    db::admin::set_admin(c, user.id, true)?;
                }
                let mut entry = user_entry(Some(actor), action::USER_CREATE, &user);
                if is_admin {
                    entry.detail.push_str(" (admin)");
                }
                db::audit::record(c, &entry)?;
                Ok::<_, ApiError>(user.id)
            })
        })
        .await?;
    tracing::info!(admin = %actor, user_id = %id, "admin created a user");
    get_user(state, id).await
}

/// Deactivates (`active = false`) or reactivates an account. Deactivation takes effect at once:
/// every token of the user is refused from the next request on, and their open WebSockets close.
/// It also ends the user's sessions for good (their session generation moves on), so
/// reactivating the account does not bring those tokens back: the user logs in again.
pub async fn set_active(
    state: &AppState,
    actor: UserId,
    target: UserId,
    active: bool,
) -> ApiResult<AdminUserView> {
    if !active && actor == target {
        return Err(ApiError::Conflict(
            "administrators cannot deactivate their own account".into(),
        ));
    }
    let changed = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let user = db::users::find(c, target)?.ok_or_else(user_not_found)?;
                refuse_deleted(&user)?;
                if user.deactivated_at.is_none() == active {
                    return Ok::<_, ApiError>(false);
                }
                let at: Option<NaiveDateTime> = (!active).then(db::now);
                db::admin::set_deactivated(c, target, at)?;
                if !active {
                    db::users::end_sessions(c, target)?;
                }
                let act = if active {
                    action::USER_REACTIVATE
                } else {
                    action::USER_DEACTIVATE
                };
                db::audit::record(c, &user_entry(Some(actor), act, &user))?;
                Ok(true)
            })
        })
        .await?;
    if changed && !active {
        state
            .broker
            .publish(Recipients::One(target), None, Event::Deactivated);
        tracing::info!(admin = %actor, user_id = %target, "account deactivated");
    }
    get_user(state, target).await
}

/// Sets a new password and ends the user's sessions: their tokens stop working and their
/// WebSockets close (1008), so whoever knew the old password is signed out everywhere. It also
/// clears the account's login throttle (on every instance: the epoch is in the database), so
/// an account locked by someone guessing passwords opens again.
pub async fn reset_password(
    state: &AppState,
    actor: UserId,
    target: UserId,
    password: Password,
) -> ApiResult<()> {
    let user = state
        .db
        .run(move |c| db::users::find(c, target))
        .await?
        .ok_or_else(user_not_found)?;
    refuse_deleted(&user)?;
    password.refuse_username(&user.username)?;
    let hash = state.hasher.hash(password.expose().to_owned()).await?;
    state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let user = db::users::find(c, target)?.ok_or_else(user_not_found)?;
                refuse_deleted(&user)?;
                db::admin::set_password(c, target, &hash)?;
                db::users::clear_login_throttle(c, target)?;
                db::audit::record(
                    c,
                    &user_entry(Some(actor), action::USER_PASSWORD_RESET, &user),
                )
            })
        })
        .await?;
    state
        .broker
        .publish(Recipients::One(target), None, Event::SessionsEnded);
    tracing::info!(admin = %actor, user_id = %target, "password reset; sessions ended");
    Ok(())
}

/// Grants or removes the admin role. An administrator cannot remove their own.
pub async fn set_admin(
    state: &AppState,
    actor: UserId,
    target: UserId,
    is_admin: bool,
) -> ApiResult<AdminUserView> {
    if !is_admin && actor == target {
        return Err(ApiError::Conflict(
            "administrators cannot remove their own admin role".into(),
        ));
    }
    state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let user = db::users::find(c, target)?.ok_or_else(user_not_found)?;
                refuse_deleted(&user)?;
                if user.is_admin == is_admin {
                    return Ok::<_, ApiError>(());
                }
                db::admin::set_admin(c, target, is_admin)?;
                let act = if is_admin {
                    action::USER_GRANT_ADMIN
                } else {
                    action::USER_REVOKE_ADMIN
                };
                db::audit::record(c, &user_entry(Some(actor), act, &user))
            })
        })
        .await?;
    get_user(state, target).await
}

fn room_not_found() -> ApiError {
    ApiError::not_found("room")
}

pub async fn list_rooms(
    state: &AppState,
    member: Option<UserId>,
    before: Option<RoomId>,
    limit: i64,
) -> ApiResult<Paged<AdminRoomView, RoomId>> {
    state
        .db
        .run(move |c| {
            let (rooms, has_more) = db::admin::list_rooms(c, member, before, limit)?;
            let next = has_more.then(|| rooms.last().map(|r| r.room.id)).flatten();
            Ok(Paged {
                items: with_members(c, rooms)?,
                next,
            })
        })
        .await
}

pub async fn get_room(state: &AppState, room: RoomId) -> ApiResult<AdminRoomView> {
    state
        .db
        .run(move |c| {
            let found = db::admin::find_room(c, room)?.ok_or_else(room_not_found)?;
            with_members(c, vec![found])?
                .pop()
                .ok_or_else(room_not_found)
        })
        .await
}

fn with_members(c: &mut DbConnection, rooms: Vec<RoomActivity>) -> ApiResult<Vec<AdminRoomView>> {
    let ids: Vec<RoomId> = rooms.iter().map(|r| r.room.id).collect();
    let mut members = db::rooms::members_of(c, &ids)?;
    Ok(rooms
        .into_iter()
        .map(|activity| {
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut members)
                .into_iter()
                .partition(|(r, _)| *r == activity.room.id);
            members = rest;
            AdminRoomView {
                activity,
                members: mine.into_iter().map(|(_, u)| u).collect(),
            }
        })
        .collect())
}

/// How long one `room.read` audit entry covers an administrator's reads of one room.
const ROOM_READ_WINDOW: chrono::Duration = chrono::Duration::hours(1);

/// A page of any room's history (tombstones included), in ascending seq order. Reading a
/// private conversation is audited: one `room.read` entry per administrator, room and hour
/// (the first read records it; paging on within the hour adds nothing), naming both members.
pub async fn room_messages(
    state: &AppState,
    actor: UserId,
    room: RoomId,
    cursor: Cursor,
    limit: i64,
) -> ApiResult<(Vec<MessageData>, bool)> {
    let max_bytes = state.config.http.history_page_bytes;
    let links = state.uploads.links().clone();
    state
        .db
        .run(move |c| {
            let found = db::admin::find_room(c, room)?.ok_or_else(room_not_found)?;
            let since = db::now() - ROOM_READ_WINDOW;
            if !db::audit::recorded_since(c, actor, action::ROOM_READ, "room", room.0, since)? {
                let names: Vec<String> = db::rooms::members_of(c, &[room])?
                    .into_iter()
                    .map(|(_, u)| format!("@{}", u.username))
                    .collect();
                db::audit::record(
                    c,
                    &NewEntry {
                        actor: Some(actor),
                        action: action::ROOM_READ,
                        target_type: "room",
                        target_id: found.room.id.0,
                        detail: format!("room {} ({})", room, names.join(" and ")),
                    },
                )?;
            }
            let (rows, more) = db::messages::page_capped(c, room, cursor, limit, max_bytes)?;
            Ok((
                crate::services::messages::load_details(c, rows, &links)?,
                more,
            ))
        })
        .await
}

/// Turns a message into a tombstone (body, earlier versions and reactions erased, `deleted_at`
/// set, seq kept) as a change of its room, audited, and tells both members' connections
/// (`message_updated`, then `message_deleted`). Deleting a tombstone again changes nothing and
/// returns it.
pub async fn delete_message(
    state: &AppState,
    actor: UserId,
    id: MessageId,
) -> ApiResult<MessageData> {
    let changed = state
        .writer
        .change(ChangeRequest {
            actor,
            room: None,
            message: id,
            kind: ChangeKind::Delete {
                by_admin: Some(actor),
            },
        })
        .await?;
    Ok(changed.message.data().clone())
}

/// The earlier bodies of a message, oldest first, with when each was replaced.
pub async fn message_edits(
    state: &AppState,
    id: MessageId,
) -> ApiResult<Vec<(String, chrono::NaiveDateTime)>> {
    state
        .db
        .run(move |c| {
            db::admin::find_message(c, id)?.ok_or_else(|| ApiError::not_found("message"))?;
            db::changes::edits_of(c, id)
        })
        .await
}

pub async fn stats(state: &AppState) -> ApiResult<Stats> {
    let totals = state.db.run(db::admin::totals).await?;
    let (connections, online_users) = match &state.cluster_presence {
        Some(cluster) => {
            let c = cluster.counts().await;
            (c.connections, c.online_users)
        }
        None => (state.broker.connections(), state.presence.online_users()),
    };
    Ok(Stats {
        totals,
        connections,
        online_users,
    })
}

pub async fn audit(
    state: &AppState,
    before: Option<i64>,
    limit: i64,
) -> ApiResult<Paged<AuditView, i64>> {
    let (rows, has_more) = state
        .db
        .run(move |c| db::audit::page(c, before, limit))
        .await?;
    let next = has_more.then(|| rows.last().map(|(r, _)| r.id)).flatten();
    Ok(Paged {
        items: rows
            .into_iter()
            .map(|(row, actor_username)| AuditView {
                row,
                actor_username,
            })
            .collect(),
        next,
    })
}

/// Records that `user` was seen now (login, first connection opened, last one closed). Best
/// effort: a failure is logged, never returned.
pub async fn touch_last_seen(state: &AppState, user: UserId) {
    if let Err(e) = state
        .db
        .run(move |c| db::admin::touch_last_seen(c, user))
        .await
    {
        tracing::warn!(error = %e, "cannot record last seen");
    }
}

/// What `letschat admin create` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    Promoted,
    AlreadyAdmin,
}

/// The command line's `admin create`: makes the user `username` an administrator, creating
/// the account with `password_hash` when it does not exist. Recorded in the audit log with no
/// actor. `password_hash` is only called when an account has to be created.
pub fn ensure_admin(
    conn: &mut DbConnection,
    username: &Username,
    display_name: Option<DisplayName>,
    password_hash: impl FnOnce() -> ApiResult<String>,
) -> ApiResult<(UserRow, Ensured)> {
    let existing = db::users::find_by_username(conn, &username.key())?;
    let hash = match existing {
        Some(_) => None,
        None => Some(password_hash()?),
    };
    write_transaction(conn, |c| {
        let (user, outcome) = match db::users::find_by_username(c, &username.key())? {
            Some(u) if u.is_admin => (u, Ensured::AlreadyAdmin),
            Some(u) => {
                db::admin::set_admin(c, u.id, true)?;
                db::audit::record(c, &user_entry(None, action::USER_GRANT_ADMIN, &u))?;
                (u, Ensured::Promoted)
            }
            None => {
                let hash = hash.clone().ok_or_else(|| {
                    ApiError::Conflict("the account appeared meanwhile; run again".into())
                })?;
                let name = display_name
                    .clone()
                    .unwrap_or_else(|| DisplayName::from_username(username));
                let u = db::users::insert(c, username, &name, &hash)?;
                db::admin::set_admin(c, u.id, true)?;
                let mut entry = user_entry(None, action::USER_CREATE, &u);
                entry.detail.push_str(" (admin)");
                db::audit::record(c, &entry)?;
                (u, Ensured::Created)
            }
        };
        let user = db::users::find(c, user.id)?.ok_or_else(user_not_found)?;
        Ok((user, outcome))
    })
}

/// The command line's `admin list`.
pub fn list_admins(conn: &mut DbConnection) -> ApiResult<Vec<UserRow>> {
    db::admin::admins(conn)
}
