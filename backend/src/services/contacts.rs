//! Contacts: a user's list of people, each with the room they share, its last message and the
//! unread count.

use std::collections::{HashMap, HashSet};

use crate::db::{self, models::UserRow, DbConnection};
use crate::domain::{RoomId, SearchQuery, UserId};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub struct ContactView {
    pub user: UserRow,
    pub room_id: RoomId,
    pub last_message: Option<crate::broker::MessageData>,
    pub unread_count: i64,
    pub online: bool,
}

/// Adds the user called `username` to `me`'s contacts (creating their room if needed).
/// Returns the contact and whether it is new. A deactivated account is not found, like an
/// unknown name; a list already at the configured cap takes no new contact (409), though
/// re-adding an existing one still answers it. Only the one contact is read back, never the
/// whole list.
pub async fn add(state: &AppState, me: UserId, username: String) -> ApiResult<(ContactView, bool)> {
    let key = username.to_ascii_lowercase();
    let max = i64::try_from(state.config.max_contacts).unwrap_or(i64::MAX);
    let links = state.uploads.links().clone();
    let (entry, created) = state
        .db
        .run(move |c| {
            let target = db::users::find_by_username(c, &key)?
                .filter(|u| u.deactivated_at.is_none())
                .ok_or_else(|| ApiError::NotFound(format!("no user is called '{username}'")))?;
            if target.id == me {
                return Err(ApiError::validation(
                    "username",
                    "you cannot add yourself as a contact",
                ));
            }
            let created = match db::contacts::find(c, me, target.id)? {
                Some(_) => false,
                None => {
                    // Checked before the insert: concurrent adds of one user can pass the cap
                    // by at most the number of them running at once.
                    if db::contacts::count(c, me)? >= max {
                        return Err(contacts_full(max));
                    }
                    let room = db::rooms::get_or_create(c, me, target.id)?;
                    db::contacts::insert_if_absent(c, me, target.id, room.id)?.1
                }
            };
            let entry = db::contacts::entry(c, me, target.id)?
                .ok_or_else(|| ApiError::internal("contact missing right after insert"))?;
            Ok((views(c, me, vec![entry], &links)?, created))
        })
        .await?;
    let mut views = entry;
    let mut view = views
        .pop()
        .ok_or_else(|| ApiError::internal("contact view missing"))?;
    view.online = is_online(state, view.user.id).await;
    Ok((view, created))
}

fn contacts_full(max: i64) -> ApiError {
    ApiError::Conflict(format!(
        "your contacts list is full ({max} contacts); remove one to add another"
    ))
}

/// `me`'s contacts (those matching `filter`), most recent conversation first, handed to `render`
/// on the same low-priority background thread as the query (a user may have thousands: see
/// [`crate::background`]).
pub async fn list<T, R>(
    state: &AppState,
    me: UserId,
    filter: Option<SearchQuery>,
    render: R,
) -> ApiResult<T>
where
    R: FnOnce(Vec<ContactView>) -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    let presence = state.presence.clone();
    // Several instances: who is online anywhere, asked of Redis first (one round trip).
    let online_anywhere = match &state.cluster_presence {
        None => None,
        Some(cluster) => {
            let ids = state
                .db
                .run(move |c| db::contacts::contact_ids(c, me))
                .await?;
            let online = cluster.online(&ids).await;
            Some(
                ids.into_iter()
                    .zip(online)
                    .filter_map(|(u, on)| on.then_some(u))
                    .collect::<HashSet<UserId>>(),
            )
        }
    };
    let links = state.uploads.links().clone();
    state
        .db
        .run_background(move |c| {
            let entries =
                db::contacts::list(c, me, filter.as_ref().map(SearchQuery::like_pattern))?;
            let mut views = views(c, me, entries, &links)?;
            for v in &mut views {
                v.online = match &online_anywhere {
                    Some(set) => set.contains(&v.user.id),
                    None => presence.is_online(v.user.id),
                };
            }
            render(views)
        })
        .await
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

/// Whether `user` is online: on any instance when there are several.
pub async fn is_online(state: &AppState, user: UserId) -> bool {
    super::sessions::online(state, &[user])
        .await
        .first()
        .copied()
        .unwrap_or(false)
}

/// Contact views with their last messages; `online` is filled in afterwards.
fn views(
    c: &mut DbConnection,
    owner: UserId,
    entries: Vec<db::contacts::ContactEntry>,
    links: &crate::services::uploads::Links,
) -> ApiResult<Vec<ContactView>> {
    let ids: Vec<_> = entries
        .iter()
        .filter(|e| e.room.last_message_id.0 > 0)
        .map(|e| e.room.last_message_id)
        .collect();
    let rows = db::messages::find_many(c, &ids)?;
    let mut last: HashMap<_, _> = crate::services::messages::load_details(c, rows, links)?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let marked: Vec<_> = entries
        .iter()
        .map(|e| (e.room.id, e.room.last_seq, e.read_up_to))
        .collect();
    let reads = super::rooms::read_states(c, owner, &marked)?;
    Ok(entries
        .into_iter()
        .zip(reads)
        .map(|(e, read)| ContactView {
            room_id: e.room.id,
            last_message: last.remove(&e.room.last_message_id),
            unread_count: read.unread_count,
            online: false,
            user: e.user,
        })
        .collect())
}
