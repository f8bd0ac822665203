//! Rooms: the one private room per pair of users, visible only to its two members.

use std::collections::HashMap;

use crate::db::{self, models::RoomRow, models::UserRow};
use crate::domain::{RoomId, UserId};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub struct RoomView {
    pub room: RoomRow,
    pub members: Vec<UserRow>,
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
            let rooms: Vec<RoomRow> = db::rooms::list_for_member(c, me)?
                .into_iter()
                .map(|(r, _)| r)
                .collect();
            let ids: Vec<RoomId> = rooms.iter().map(|r| r.id).collect();
            let mut members: HashMap<RoomId, Vec<UserRow>> = HashMap::new();
            for (room, user) in db::rooms::members_of(c, &ids)? {
                members.entry(room).or_default().push(user);
            }
            render(
                rooms
                    .into_iter()
                    .map(|room| RoomView {
                        members: members.remove(&room.id).unwrap_or_default(),
                        room,
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
            let (room, _) = db::rooms::find_for_member(c, room, me)?.ok_or_else(room_not_found)?;
            let members = db::rooms::members_of(c, &[room.id])?
                .into_iter()
                .map(|(_, u)| u)
                .collect();
            Ok(RoomView { room, members })
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
