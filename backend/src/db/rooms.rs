//! Queries on `rooms` and `room_members` (membership and read markers).

use diesel::prelude::*;

use super::models::{RoomRow, UserRow};
use super::schema::{room_members, rooms, users};
use super::{is_unique_violation, write_transaction, DbConnection};
use crate::domain::{RoomId, Seq, UserId};
use crate::error::ApiResult;

/// The two members of a pair in the order the unique constraint stores them.
fn ordered(a: UserId, b: UserId) -> (UserId, UserId) {
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

pub fn find_by_pair(conn: &mut DbConnection, a: UserId, b: UserId) -> ApiResult<Option<RoomRow>> {
    let (low, high) = ordered(a, b);
    Ok(rooms::table
        .filter(rooms::user_low.eq(low))
        .filter(rooms::user_high.eq(high))
        .select(RoomRow::as_select())
        .first(conn)
        .optional()?)
}

/// The one room of the pair, created with both memberships if it does not exist yet. Two
/// concurrent creators are resolved by the unique pair constraint: the loser reads the winner's.
pub fn get_or_create(conn: &mut DbConnection, a: UserId, b: UserId) -> ApiResult<RoomRow> {
    if let Some(room) = find_by_pair(conn, a, b)? {
        return Ok(room);
    }
    let (low, high) = ordered(a, b);
    let created = write_transaction(conn, |conn| {
        let room: RoomRow = diesel::insert_into(rooms::table)
            .values((
                rooms::user_low.eq(low),
                rooms::user_high.eq(high),
                rooms::last_seq.eq(0i64),
                rooms::last_message_id.eq(0i64),
                rooms::created_at.eq(super::now()),
            ))
            .returning(rooms::all_columns)
            .get_result(conn)?;
        for member in [low, high] {
            diesel::insert_into(room_members::table)
                .values((
                    room_members::room_id.eq(room.id),
                    room_members::user_id.eq(member),
                    room_members::read_up_to.eq(0i64),
                ))
                .execute(conn)?;
        }
        Ok::<_, diesel::result::Error>(room)
    });
    match created {
        Ok(room) => Ok(room),
        Err(e) if is_unique_violation(&e) => find_by_pair(conn, a, b)?.ok_or_else(|| {
            crate::error::ApiError::internal("room vanished after a unique violation")
        }),
        Err(e) => Err(e.into()),
    }
}

/// The room, only if `user` is a member of it; with the member's read marker.
pub fn find_for_member(
    conn: &mut DbConnection,
    room: RoomId,
    user: UserId,
) -> ApiResult<Option<(RoomRow, Seq)>> {
    Ok(rooms::table
        .inner_join(room_members::table)
        .filter(rooms::id.eq(room))
        .filter(room_members::user_id.eq(user))
        .select((RoomRow::as_select(), room_members::read_up_to))
        .first::<(RoomRow, i64)>(conn)
        .optional()?
        .map(|(r, m)| (r, Seq(m))))
}

/// Every room `user` belongs to, with their read marker, most recent conversation first.
pub fn list_for_member(conn: &mut DbConnection, user: UserId) -> ApiResult<Vec<(RoomRow, Seq)>> {
    Ok(rooms::table
        .inner_join(room_members::table)
        .filter(room_members::user_id.eq(user))
        .order((rooms::last_message_id.desc(), rooms::id.desc()))
        .select((RoomRow::as_select(), room_members::read_up_to))
        .load::<(RoomRow, i64)>(conn)?
        .into_iter()
        .map(|(r, m)| (r, Seq(m)))
        .collect())
}

/// The read markers of everyone but `user` in the given rooms, by room.
pub fn peer_read_markers(
    conn: &mut DbConnection,
    user: UserId,
    room_ids: &[i64],
) -> ApiResult<std::collections::HashMap<RoomId, Seq>> {
    let mut markers = std::collections::HashMap::with_capacity(room_ids.len());
    // In chunks: both databases cap the number of bound parameters.
    for chunk in room_ids.chunks(10_000) {
        let rows = room_members::table
            .filter(room_members::room_id.eq_any(chunk))
            .filter(room_members::user_id.ne(user))
            .select((room_members::room_id, room_members::read_up_to))
            .load::<(i64, i64)>(conn)?;
        markers.extend(rows.into_iter().map(|(room, seq)| (RoomId(room), Seq(seq))));
    }
    Ok(markers)
}

/// The member users of the given rooms, as (room, user) pairs.
pub fn members_of(
    conn: &mut DbConnection,
    room_ids: &[RoomId],
) -> ApiResult<Vec<(RoomId, UserRow)>> {
    Ok(room_members::table
        .inner_join(users::table.on(users::id.eq(room_members::user_id)))
        .filter(room_members::room_id.eq_any(room_ids))
        .order((room_members::room_id.asc(), users::id.asc()))
        .select((room_members::room_id, UserRow::as_select()))
        .load::<(i64, UserRow)>(conn)?
        .into_iter()
        .map(|(r, u)| (RoomId(r), u))
        .collect())
}

/// The two members of a room, if it exists.
pub fn members_pair(
    conn: &mut DbConnection,
    room: RoomId,
) -> Result<Option<(UserId, UserId)>, diesel::result::Error> {
    rooms::table
        .find(room)
        .select((rooms::user_low, rooms::user_high))
        .first::<(i64, i64)>(conn)
        .optional()
        .map(|o| o.map(|(a, b)| (UserId(a), UserId(b))))
}
