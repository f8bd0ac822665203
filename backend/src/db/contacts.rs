//! Queries on `contacts`.

use diesel::prelude::*;

use super::models::{ContactRow, RoomRow, UserRow};
use super::schema::{contacts, room_members, rooms, users};
use super::{is_unique_violation, DbConnection};
use crate::domain::{RoomId, Seq, UserId};
use crate::error::ApiResult;

pub fn find(
    conn: &mut DbConnection,
    owner: UserId,
    contact: UserId,
) -> ApiResult<Option<ContactRow>> {
    Ok(contacts::table
        .find((owner, contact))
        .select(ContactRow::as_select())
        .first(conn)
        .optional()?)
}

/// Adds `contact` to `owner`'s list. Returns the row and whether it was created now.
pub fn insert_if_absent(
    conn: &mut DbConnection,
    owner: UserId,
    contact: UserId,
    room: RoomId,
) -> ApiResult<(ContactRow, bool)> {
    if let Some(existing) = find(conn, owner, contact)? {
        return Ok((existing, false));
    }
    // A savepoint, so that losing a race to a concurrent insert leaves any outer transaction usable.
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(contacts::table)
            .values((
                contacts::owner_id.eq(owner),
                contacts::contact_id.eq(contact),
                contacts::room_id.eq(room),
                contacts::created_at.eq(super::now()),
            ))
            .returning(contacts::all_columns)
            .get_result::<ContactRow>(conn)
    });
    match inserted {
        Ok(row) => Ok((row, true)),
        Err(e) if is_unique_violation(&e) => find(conn, owner, contact)?
            .map(|row| (row, false))
            .ok_or_else(|| {
                crate::error::ApiError::internal("contact vanished after a unique violation")
            }),
        Err(e) => Err(e.into()),
    }
}

pub fn delete(conn: &mut DbConnection, owner: UserId, contact: UserId) -> ApiResult<bool> {
    let n = diesel::delete(contacts::table.find((owner, contact))).execute(conn)?;
    Ok(n > 0)
}

/// Takes `user` off every contacts list, and empties theirs (an account being deleted); the
/// rooms and their history stay.
pub fn delete_all_of(conn: &mut DbConnection, user: UserId) -> ApiResult<usize> {
    Ok(diesel::delete(
        contacts::table.filter(
            contacts::owner_id
                .eq(user)
                .or(contacts::contact_id.eq(user)),
        ),
    )
    .execute(conn)?)
}

/// One entry of a contacts list: the contact's user, the shared room and the owner's read marker.
pub struct ContactEntry {
    pub user: UserRow,
    pub room: RoomRow,
    pub read_up_to: Seq,
}

/// `owner`'s contacts (optionally only those matching a LIKE pattern on username or display
/// name), most recent conversation first, then most recently added.
pub fn list(
    conn: &mut DbConnection,
    owner: UserId,
    like_pattern: Option<&str>,
) -> ApiResult<Vec<ContactEntry>> {
    let mut query = contacts::table
        .inner_join(users::table.on(users::id.eq(contacts::contact_id)))
        .inner_join(rooms::table.on(rooms::id.eq(contacts::room_id)))
        .inner_join(
            room_members::table.on(room_members::room_id
                .eq(contacts::room_id)
                .and(room_members::user_id.eq(contacts::owner_id))),
        )
        .filter(contacts::owner_id.eq(owner))
        .into_boxed();
    if let Some(p) = like_pattern {
        query = query.filter(
            users::username_key
                .like(p.to_owned())
                .escape('\\')
                .or(users::display_name_key.like(p.to_owned()).escape('\\')),
        );
    }
    let rows = query
        .order((
            rooms::last_message_id.desc(),
            contacts::created_at.desc(),
            users::id.desc(),
        ))
        .select((
            UserRow::as_select(),
            RoomRow::as_select(),
            room_members::read_up_to,
        ))
        .load::<(UserRow, RoomRow, i64)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(user, room, read)| ContactEntry {
            user,
            room,
            read_up_to: Seq(read),
        })
        .collect())
}

/// The users on `owner`'s contacts list.
pub fn contact_ids(conn: &mut DbConnection, owner: UserId) -> ApiResult<Vec<UserId>> {
    Ok(contacts::table
        .filter(contacts::owner_id.eq(owner))
        .select(contacts::contact_id)
        .load::<i64>(conn)?
        .into_iter()
        .map(UserId)
        .collect())
}

/// Everyone who should hear about `user`'s presence: the users on `user`'s contacts list and
/// the users who have `user` on theirs.
pub fn watchers(conn: &mut DbConnection, user: UserId) -> ApiResult<Vec<UserId>> {
    let mut ids: Vec<i64> = contact_ids(conn, user)?.into_iter().map(|u| u.0).collect();
    ids.extend(
        contacts::table
            .filter(contacts::contact_id.eq(user))
            .select(contacts::owner_id)
            .load::<i64>(conn)?,
    );
    ids.sort_unstable();
    ids.dedup();
    Ok(ids.into_iter().map(UserId).collect())
}

/// How many contacts `owner` has (a range of the primary key).
pub fn count(conn: &mut DbConnection, owner: UserId) -> ApiResult<i64> {
    Ok(contacts::table
        .filter(contacts::owner_id.eq(owner))
        .count()
        .get_result(conn)?)
}

/// One entry of `owner`'s contacts list, as `list` shows it, read on its own.
pub fn entry(
    conn: &mut DbConnection,
    owner: UserId,
    contact: UserId,
) -> ApiResult<Option<ContactEntry>> {
    Ok(contacts::table
        .inner_join(users::table.on(users::id.eq(contacts::contact_id)))
        .inner_join(rooms::table.on(rooms::id.eq(contacts::room_id)))
        .inner_join(
            room_members::table.on(room_members::room_id
                .eq(contacts::room_id)
                .and(room_members::user_id.eq(contacts::owner_id))),
        )
        .filter(contacts::owner_id.eq(owner))
        .filter(contacts::contact_id.eq(contact))
        .select((
            UserRow::as_select(),
            RoomRow::as_select(),
            room_members::read_up_to,
        ))
        .first::<(UserRow, RoomRow, i64)>(conn)
        .optional()?
        .map(|(user, room, read)| ContactEntry {
            user,
            room,
            read_up_to: Seq(read),
        }))
}
