//! Rooms: the one private room per pair of users, visible only to its two members.

use std::collections::HashMap;

use crate::db::{self, models::RoomRow, models::UserRow, DbConnection};
use crate::domain::{RoomId, Seq, UserId};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub struct RoomView {
    pub room: RoomRow,
    pub members: Vec<UserRow>,
    /// The reader's own read state in it.
    pub read: ReadState,
}

/// A member's read state in a room: their marker and the messages after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub read_up_to: Seq,
    /// Messages after the marker, deleted ones not counted.
    pub unread_count: i64,
}

/// `me`'s read state in each of `rooms`, given as `(room, its last seq, me's marker)`, in the
/// same order: what the contacts list and the rooms show alike. One query counts the deleted
/// messages after the markers, for all rooms with any message after theirs at once.
pub fn read_states(
    c: &mut DbConnection,
    me: UserId,
    rooms: &[(RoomId, Seq, Seq)],
) -> ApiResult<Vec<ReadState>> {
    let behind: Vec<RoomId> = rooms
        .iter()
        .filter(|(_, last, read)| last > read)
        .map(|(room, _, _)| *room)
        .collect();
    let deleted = if behind.is_empty() {
        HashMap::new()
    } else {
        db::messages::deleted_unread(c, me, &behind)?
    };
    Ok(rooms
        .iter()
        .map(|(room, last, read)| ReadState {
            read_up_to: *read,
            unread_count: (last.0 - read.0 - deleted.get(room).copied().unwrap_or(0)).max(0),
        })
        .collect())
}

pub fn room_not_found() -> ApiError {
    ApiError::not_found("room")
}

/// `me`'s rooms, most recent conversation first, handed to `render` on the same low-priority
/// background thread as the query (a user may have thousands: see [`crate::background`]).
pub async fn list<T, R>(state: &AppState, me: UserId, render: R) -> ApiResult<T>
where
    R: FnOnce(Vec<RoomView>) -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    state
        .db
        .run_background(move |c| {
            let rooms = db::rooms::list_for_member(c, me)?;
            let ids: Vec<RoomId> = rooms.iter().map(|(r, _)| r.id).collect();
            let mut members: HashMap<RoomId, Vec<UserRow>> = HashMap::new();
            for (room, user) in db::rooms::members_of(c, &ids)? {
                members.entry(room).or_default().push(user);
            }
            let marked: Vec<_> = rooms
                .iter()
                .map(|(r, read)| (r.id, r.last_seq, *read))
                .collect();
            let reads = read_states(c, me, &marked)?;
            render(
                rooms
                    .into_iter()
                    .zip(reads)
                    .map(|((room, _), read)| RoomView {
                        members: members.remove(&room.id).unwrap_or_default(),
                        room,
                        read,
                    })
                    .collect(),
            )
        })
        .await
}

/// The room, or 404 when it does not exist or `me` is not in it (the two look the same).
pub async fn get(state: &AppState, me: UserId, room: RoomId) -> ApiResult<RoomView> {
    state
        .db
        .run(move |c| {
            let (room, read) =
                db::rooms::find_for_member(c, room, me)?.ok_or_else(room_not_found)?;
            let members = db::rooms::members_of(c, &[room.id])?
                .into_iter()
                .map(|(_, u)| u)
                .collect();
            let read = read_states(c, me, &[(room.id, room.last_seq, read)])?
                .pop()
                .ok_or_else(|| ApiError::internal("read state missing"))?;
            Ok(RoomView {
                room,
                members,
                read,
            })
        })
        .await
}

/// The other member of `room`, or 404 when `me` is not in it.
pub async fn other_member(state: &AppState, me: UserId, room: RoomId) -> ApiResult<UserId> {
    let found = state
        .db
        .run(move |c| db::rooms::find_for_member(c, room, me))
        .await?;
    let (room, _) = found.ok_or_else(room_not_found)?;
    Ok(room.other_member(me))
}
