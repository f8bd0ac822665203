//! Queries behind the administration API: users with their activity counts, rooms with their
//! last activity, role and deactivation flags, message tombstones and server-wide figures.
//! Every list is a cursor page on a primary key and every count runs on an index.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::models::{MessageRow, RoomRow, UserRow};
use super::schema::{contacts, messages, room_members, rooms, users};
use super::DbConnection;
use crate::domain::{MessageId, RoomId, SessionId, UserId};
use crate::error::ApiResult;

/// A user as the administration screens see them.
#[derive(Debug, Clone)]
pub struct UserActivity {
    pub user: UserRow,
    pub last_seen_at: Option<NaiveDateTime>,
    pub contacts: i64,
    pub rooms: i64,
    pub messages: i64,
}

/// Users with an id above `after`, ascending, optionally those whose username or display name
/// matches `like` (a ready LIKE pattern); plus whether more follow.
pub fn list_users(
    conn: &mut DbConnection,
    like: Option<&str>,
    after: Option<UserId>,
    limit: i64,
) -> ApiResult<(Vec<UserActivity>, bool)> {
    let mut query = users::table
        .select((UserRow::as_select(), users::last_seen_at))
        .order(users::id.asc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(a) = after {
        query = query.filter(users::id.gt(a));
    }
    if let Some(p) = like {
        query = query.filter(
            users::username_key
                .like(p.to_owned())
                .escape('\\')
                .or(users::display_name_key.like(p.to_owned()).escape('\\')),
        );
    }
    let mut rows: Vec<(UserRow, Option<NaiveDateTime>)> = query.load(conn)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((with_counts(conn, rows)?, has_more))
}

pub fn find_user(conn: &mut DbConnection, id: UserId) -> ApiResult<Option<UserActivity>> {
    let row: Option<(UserRow, Option<NaiveDateTime>)> = users::table
        .find(id)
        .select((UserRow::as_select(), users::last_seen_at))
        .first(conn)
        .optional()?;
    Ok(with_counts(conn, row.into_iter().collect())?.pop())
}

/// Adds contact, room and message counts to a page of users: two grouped queries on the
/// `contacts` primary key and `room_members_user_idx` (each membership keeps how many messages
/// the member sent in the room).
fn with_counts(
    conn: &mut DbConnection,
    rows: Vec<(UserRow, Option<NaiveDateTime>)>,
) -> ApiResult<Vec<UserActivity>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|(u, _)| u.id.0).collect();
    let contact_counts: HashMap<i64, i64> = contacts::table
        .filter(contacts::owner_id.eq_any(&ids))
        .group_by(contacts::owner_id)
        .select((contacts::owner_id, count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let room_counts: HashMap<i64, (i64, i64)> = room_members::table
        .filter(room_members::user_id.eq_any(&ids))
        .group_by(room_members::user_id)
        .select((
            room_members::user_id,
            count_star(),
            sql::<BigInt>("CAST(COALESCE(SUM(sent_count), 0) AS BIGINT)"),
        ))
        .load::<(i64, i64, i64)>(conn)?
        .into_iter()
        .map(|(user, rooms, sent)| (user, (rooms, sent)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|(user, last_seen_at)| {
            let id = user.id.0;
            UserActivity {
                user,
                last_seen_at,
                contacts: contact_counts.get(&id).copied().unwrap_or(0),
                rooms: room_counts.get(&id).map_or(0, |c| c.0),
                messages: room_counts.get(&id).map_or(0, |c| c.1),
            }
        })
        .collect())
}

/// Sets or clears `deactivated_at`; false when there is no such user.
pub fn set_deactivated(
    conn: &mut DbConnection,
    id: UserId,
    at: Option<NaiveDateTime>,
) -> ApiResult<bool> {
    Ok(diesel::update(users::table.find(id))
        .set(users::deactivated_at.eq(at))
        .execute(conn)?
        > 0)
}

pub fn set_admin(conn: &mut DbConnection, id: UserId, is_admin: bool) -> ApiResult<bool> {
    Ok(diesel::update(users::table.find(id))
        .set(users::is_admin.eq(is_admin))
        .execute(conn)?
        > 0)
}

/// Sets a new password hash and ends every session signed in with the old password.
pub fn set_password(conn: &mut DbConnection, id: UserId, hash: &str) -> ApiResult<bool> {
    let changed = diesel::update(users::table.find(id))
        .set(users::password_hash.eq(hash))
        .execute(conn)?
        > 0;
    super::users::end_sessions(conn, id)?;
    Ok(changed)
}

pub fn touch_last_seen(conn: &mut DbConnection, id: UserId) -> ApiResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_seen_at.eq(super::now()))
        .execute(conn)?;
    Ok(())
}

/// Every administrator, by id.
pub fn admins(conn: &mut DbConnection) -> ApiResult<Vec<UserRow>> {
    Ok(users::table
        .filter(users::is_admin.eq(true))
        .order(users::id.asc())
        .select(UserRow::as_select())
        .load(conn)?)
}

/// A room with the time of its newest message.
#[derive(Debug, Clone)]
pub struct RoomActivity {
    pub room: RoomRow,
    pub last_activity_at: Option<NaiveDateTime>,
}

/// Rooms with an id below `before`, newest first, optionally only those of `member`; plus
/// whether more follow.
pub fn list_rooms(
    conn: &mut DbConnection,
    member: Option<UserId>,
    before: Option<RoomId>,
    limit: i64,
) -> ApiResult<(Vec<RoomActivity>, bool)> {
    let mut query = rooms::table
        .left_join(messages::table.on(messages::id.eq(rooms::last_message_id)))
        .select((RoomRow::as_select(), messages::created_at.nullable()))
        .order(rooms::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(b) = before {
        query = query.filter(rooms::id.lt(b));
    }
    if let Some(m) = member {
        query = query.filter(rooms::user_low.eq(m).or(rooms::user_high.eq(m)));
    }
    let mut rows: Vec<(RoomRow, Option<NaiveDateTime>)> = query.load(conn)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((
        rows.into_iter()
            .map(|(room, last_activity_at)| RoomActivity {
                room,
                last_activity_at,
            })
            .collect(),
        has_more,
    ))
}

pub fn find_room(conn: &mut DbConnection, id: RoomId) -> ApiResult<Option<RoomActivity>> {
    Ok(rooms::table
        .left_join(messages::table.on(messages::id.eq(rooms::last_message_id)))
        .filter(rooms::id.eq(id))
        .select((RoomRow::as_select(), messages::created_at.nullable()))
        .first::<(RoomRow, Option<NaiveDateTime>)>(conn)
        .optional()?
        .map(|(room, last_activity_at)| RoomActivity {
            room,
            last_activity_at,
        }))
}

pub fn find_message(conn: &mut DbConnection, id: MessageId) -> ApiResult<Option<MessageRow>> {
    Ok(messages::table
        .find(id)
        .select(MessageRow::as_select())
        .first(conn)
        .optional()?)
}

/// Erases a message's body and sets `deleted_at`, keeping its seq. Returns the tombstone, or
/// `None` when the message was already deleted (or does not exist).
pub fn tombstone(conn: &mut DbConnection, id: MessageId) -> ApiResult<Option<MessageRow>> {
    Ok(diesel::update(
        messages::table
            .find(id)
            .filter(messages::deleted_at.is_null()),
    )
    .set((
        messages::body.eq(""),
        messages::deleted_at.eq(Some(super::now())),
    ))
    .returning(messages::all_columns)
    .get_result::<MessageRow>(conn)
    .optional()?)
}

/// Server-wide figures.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub users: i64,
    pub admins: i64,
    pub deactivated_users: i64,
    pub rooms: i64,
    pub messages: i64,
    pub messages_last_hour: i64,
    pub messages_last_day: i64,
    /// Uploads stored (sent or not yet), and their bytes.
    pub uploads: i64,
    pub upload_bytes: i64,
}

pub fn totals(conn: &mut DbConnection) -> ApiResult<Totals> {
    let now = super::now();
    let users: i64 = users::table.select(count_star()).first(conn)?;
    let admins: i64 = users::table
        .filter(users::is_admin.eq(true))
        .select(count_star())
        .first(conn)?;
    let deactivated_users: i64 = users::table
        .filter(users::deactivated_at.is_not_null())
        .select(count_star())
        .first(conn)?;
    let rooms: i64 = rooms::table.select(count_star()).first(conn)?;
    // Seqs are gap-free and tombstones keep theirs, so the rooms' last seqs add up to the
    // number of messages without scanning them.
    let messages: i64 = rooms::table
        .select(sql::<BigInt>("CAST(COALESCE(SUM(last_seq), 0) AS BIGINT)"))
        .first(conn)?;
    let since = |secs: i64| {
        messages::table
            .filter(messages::created_at.gt(now - chrono::Duration::seconds(secs)))
            .select(count_star())
    };
    let messages_last_hour: i64 = since(3600).first(conn)?;
    let messages_last_day: i64 = since(86_400).first(conn)?;
    let (uploads, upload_bytes) = super::uploads::totals(conn)?;
    Ok(Totals {
        users,
        admins,
        deactivated_users,
        rooms,
        messages,
        messages_last_hour,
        messages_last_day,
        uploads,
        upload_bytes,
    })
}

/// What a request with a valid signature may do, read in one round trip.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// When the token's session was last seen; `None` when it has ended (or is another user's).
    pub session_seen: Option<NaiveDateTime>,
    pub deactivated: bool,
    pub is_admin: bool,
    pub session_generation: i64,
}

/// The state of `user`'s account and of their session `session`; `None` when the account is
/// gone. One statement: the user's row, and the session's by its primary key.
pub fn access(
    conn: &mut DbConnection,
    user: UserId,
    session: SessionId,
) -> ApiResult<Option<Access>> {
    use super::schema::sessions;
    Ok(users::table
        .left_join(
            sessions::table.on(sessions::id
                .eq(session)
                .and(sessions::user_id.eq(users::id))),
        )
        .filter(users::id.eq(user))
        .select((
            sessions::last_seen_at.nullable(),
            users::deactivated_at.is_not_null(),
            users::is_admin,
            users::session_generation,
        ))
        .first::<(Option<NaiveDateTime>, bool, bool, i64)>(conn)
        .optional()?
        .map(
            |(session_seen, deactivated, is_admin, session_generation)| Access {
                session_seen,
                deactivated,
                is_admin,
                session_generation,
            },
        ))
}
