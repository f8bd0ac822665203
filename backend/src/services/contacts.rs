//! Contacts: a user's list of people, each with the room they share, its last message and the
//! unread count.

use std::collections::HashMap;

use crate::db::{self, models::MessageRow, models::UserRow, DbConnection};
use crate::domain::{RoomId, SearchQuery, UserId};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub struct ContactView {
    pub user: UserRow,
    pub room_id: RoomId,
    pub last_message: Option<MessageRow>,
    pub unread_count: i64,
    pub online: bool,
}

/// Adds the user called `username` to `me`'s contacts (creating their room if needed).
/// Returns the contact and whether it is new.
pub async fn add(state: &AppState, me: UserId, username: String) -> ApiResult<(ContactView, bool)> {
    let key = username.to_ascii_lowercase();
    let (entry, created) = state
        .db
        .run(move |c| {
            let target = db::users::find_by_username(c, &key)?
                .ok_or_else(|| ApiError::NotFound(format!("no user is called '{username}'")))?;
            if target.id == me {
                return Err(ApiError::validation(
                    "username",
                    "you cannot add yourself as a contact",
                ));
            }
            let room = db::rooms::get_or_create(c, me, target.id)?;
            let (_, created) = db::contacts::insert_if_absent(c, me, target.id, room.id)?;
            let entry = db::contacts::list(c, me, None)?
                .into_iter()
                .find(|e| e.user.id == target.id)
                .ok_or_else(|| ApiError::internal("contact missing right after insert"))?;
            Ok((views(c, vec![entry])?, created))
        })
        .await?;
    let mut views = with_presence(state, entry);
    let view = views
        .pop()
        .ok_or_else(|| ApiError::internal("contact view missing"))?;
    Ok((view, created))
}

pub async fn list(
    state: &AppState,
    me: UserId,
    filter: Option<SearchQuery>,
) -> ApiResult<Vec<ContactView>> {
    let views = state
        .db
        .run(move |c| {
            let entries =
                db::contacts::list(c, me, filter.as_ref().map(SearchQuery::like_pattern))?;
            views(c, entries)
        })
        .await?;
    Ok(with_presence(state, views))
}

pub async fn remove(state: &AppState, me: UserId, contact: UserId) -> ApiResult<()> {
    let removed = state
        .db
        .run(move |c| db::contacts::delete(c, me, contact))
        .await?;
    if removed {
        Ok(())
    } else {
        Err(ApiError::not_found("contact"))
    }
}

/// Contact views with their last messages; `online` is filled in by `with_presence` afterwards.
fn views(
    c: &mut DbConnection,
    entries: Vec<db::contacts::ContactEntry>,
) -> ApiResult<Vec<ContactView>> {
    let ids: Vec<_> = entries
        .iter()
        .filter(|e| e.room.last_message_id.0 > 0)
        .map(|e| e.room.last_message_id)
        .collect();
    let mut last: HashMap<_, _> = db::messages::find_many(c, &ids)?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    Ok(entries
        .into_iter()
        .map(|e| ContactView {
            room_id: e.room.id,
            last_message: last.remove(&e.room.last_message_id),
            unread_count: (e.room.last_seq.0 - e.read_up_to.0).max(0),
            online: false,
            user: e.user,
        })
        .collect())
}

fn with_presence(state: &AppState, mut views: Vec<ContactView>) -> Vec<ContactView> {
    for v in &mut views {
        v.online = state.presence.is_online(v.user.id);
    }
    views
}
