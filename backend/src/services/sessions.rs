//! What a WebSocket connection needs from the rules besides sending and reading: its
//! registration on this instance (the broker subscription, one of the user's connection slots,
//! the user's presence, and its sign-in session's count of open sockets), held for as long as it
//! lives, and the snapshot its `ready` frame shows. Also who is online, for everything that
//! shows it: on any instance when there are several; and the task that keeps the sign-in
//! sessions of open sockets seen.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::broker::{ConnId, Event, Origin, Recipients};
use crate::db::{self, models::UserRow};
use crate::domain::{RoomId, Seq, SessionId, UserId};
use crate::error::{ApiError, ApiResult};
use crate::presence::{SessionSocket, Slot};
use crate::services::admin::touch_last_seen;
use crate::state::AppState;

/// A connection's place on this instance: its subscription to the user's events and one of the
/// user's connection slots. Dropping it (an early return, a panic) unsubscribes, gives the slot
/// back and, when it was the user's last connection, tells their contacts that the user went
/// offline: no way out of a session leaves a user shown online.
pub struct Registration {
    state: Arc<AppState>,
    user: UserId,
    origin: Origin,
    /// Taken when unregistered.
    slot: Option<Slot>,
    /// Counts the connection as activity of its sign-in session; taken when unregistered.
    seen: Option<SessionSocket>,
}

/// Registers a new connection of `user` opened with a token of `session`: takes one of their
/// connection slots (`None` when they already hold `max_connections_per_user` on this instance),
/// subscribes the connection to their events, counts it as an open socket of `session` (which
/// keeps the session seen) and, if it is their first, tells their contacts they came online.
/// The receiver is the connection's queue of events.
pub async fn register(
    state: &Arc<AppState>,
    user: UserId,
    session: SessionId,
) -> Option<(Registration, mpsc::Receiver<Event>)> {
    let slot = state
        .presence
        .reserve(user, state.config.ws.max_connections_per_user)?;
    let first = slot.first();
    let origin = Origin {
        instance: state.broker.instance(),
        conn: ConnId::next(),
    };
    let (outbox, inbox) = mpsc::channel(state.config.ws.queue_capacity.max(1));
    state.broker.subscribe(user, origin.conn, outbox);
    // The guard exists before anything is awaited: from here on, whatever happens unregisters.
    let registration = Registration {
        state: Arc::clone(state),
        user,
        origin,
        slot: Some(slot),
        seen: Some(state.open_sessions.open(session)),
    };
    if first {
        // Several instances: news only if no other instance held the user.
        let news = match &state.cluster_presence {
            Some(cluster) => cluster.came_online(user).await,
            None => true,
        };
        if news {
            presence_changed(state, user, true).await;
        }
    }
    Some((registration, inbox))
}

impl Registration {
    /// This connection, as events name it.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Unregisters now and, when this was the user's last connection, waits until their
    /// contacts have been told. A session ends this way before its close frame, so a client
    /// that reconnects once closed is announced online after it was announced offline.
    pub async fn end(mut self) {
        if let Some(offline) = self.unregister() {
            // Its own task: the announcement is made even if this one is cancelled meanwhile.
            let _ = tokio::spawn(offline).await;
        }
    }

    /// Unsubscribes, gives the slot back and stops counting the connection as its session's
    /// activity, once. Returns the announcement to make when the user has no connection left on
    /// this instance.
    fn unregister(&mut self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let slot = self.slot.take()?;
        self.state.broker.unsubscribe(self.user, self.origin.conn);
        self.seen = None;
        if !slot.release() {
            return None;
        }
        let (state, user) = (Arc::clone(&self.state), self.user);
        Some(async move {
            // Several instances: news only if no other instance holds the user.
            let news = match &state.cluster_presence {
                Some(cluster) => cluster.went_offline(user).await,
                None => true,
            };
            if news {
                presence_changed(&state, user, false).await;
            } else {
                touch_last_seen(&state, user).await;
            }
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(offline) = self.unregister() else {
            return;
        };
        // A destructor cannot wait: the announcement runs as its own task.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(offline);
            }
            Err(_) => {
                tracing::warn!(user = %self.user, "cannot announce a user offline: no runtime");
            }
        }
    }
}

/// Several instances: keeps this instance's presence entries alive in Redis and tells the
/// contacts of users whose every entry expired (their instances died) that they went offline.
pub fn spawn_presence_upkeep(state: Arc<AppState>) {
    let Some(cluster) = state.cluster_presence.clone() else {
        return;
    };
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::cluster_presence::REFRESH_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            cluster.refresh().await;
            for user in cluster.expired_users().await {
                presence_changed(&state, user, false).await;
            }
        }
    });
}

/// Sign-in sessions one statement marks seen, at most.
const SEEN_CHUNK: usize = 500;

/// Every `ws.session_seen_every` (a minute), marks seen the sign-in sessions with a WebSocket
/// open on this instance: an open socket is activity, as a request is, so a device that only
/// listens does not look idle in its owner's list of sessions. Each instance marks its own.
/// Stops when the server shuts down.
pub fn spawn_seen_upkeep(state: AppState) {
    let every = state.config.ws.session_seen_every;
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is at once: nothing has been open long enough yet.
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            mark_open_sessions_seen(&state, every).await;
        }
    });
}

/// Moves `last_seen_at` to now for the sessions with a socket open on this instance that were
/// last seen over half of `every` ago (those seen since, by a request or the previous round,
/// cost nothing): a few hundred per statement, each its own short transaction on the pool, so
/// a hundred thousand open sockets cost a few hundred statements a minute and never hold the
/// database for long. Returns how many moved; a failure is logged and the next round retries.
async fn mark_open_sessions_seen(state: &AppState, every: std::time::Duration) -> usize {
    let ids = state.open_sessions.ids();
    if ids.is_empty() {
        return 0;
    }
    let now = db::now();
    let stale_before = now
        - chrono::Duration::from_std(every / 2).unwrap_or(crate::services::accounts::SEEN_EVERY);
    let mut moved = 0;
    for chunk in ids.chunks(SEEN_CHUNK) {
        let chunk = chunk.to_vec();
        let done = state
            .db
            .run(move |c| {
                db::write_transaction(c, |c| {
                    db::sessions::touch_many(c, &chunk, now, stale_before)
                })
            })
            .await;
        match done {
            Ok(n) => moved += n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot record that sessions with open sockets were seen");
                break;
            }
        }
    }
    moved
}

/// Whether each of `users` is online: connected to any instance when there are several (one
/// Redis round trip for them all), to this one otherwise.
pub async fn online(state: &AppState, users: &[UserId]) -> Vec<bool> {
    match &state.cluster_presence {
        Some(cluster) => cluster.online(users).await,
        None => users.iter().map(|u| state.presence.is_online(*u)).collect(),
    }
}

/// Tells `user`'s contacts (both directions) that they came online or went offline, and
/// records that they were seen.
async fn presence_changed(state: &AppState, user: UserId, online: bool) {
    match state.db.run(move |c| db::contacts::watchers(c, user)).await {
        Ok(watchers) if !watchers.is_empty() => {
            state.broker.publish(
                Recipients::Many(watchers.into()),
                None,
                Event::Presence {
                    user_id: user,
                    online,
                },
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot announce presence"),
    }
    touch_last_seen(state, user).await;
}

/// What a connection starts from: the user, and every room of theirs.
pub struct Snapshot {
    pub user: UserRow,
    /// Most recent conversation first.
    pub rooms: Vec<RoomSnapshot>,
}

pub struct RoomSnapshot {
    pub room_id: RoomId,
    pub other_member: UserId,
    pub last_seq: Seq,
    /// The user's read marker.
    pub read_up_to: Seq,
    /// The other member's read marker.
    pub peer_read_up_to: Seq,
    /// The room's newest change.
    pub last_change_seq: i64,
}

/// Every room `user` belongs to: its id, the other member, its newest seq and its newest change
/// (one query).
pub async fn room_heads(
    state: &AppState,
    user: UserId,
) -> ApiResult<Vec<(RoomId, UserId, Seq, i64)>> {
    state
        .db
        .run(move |c| {
            Ok(db::rooms::list_for_member(c, user)?
                .into_iter()
                .map(|(room, _)| {
                    (
                        room.id,
                        room.other_member(user),
                        room.last_seq,
                        room.last_change_seq,
                    )
                })
                .collect())
        })
        .await
}

/// The user and every room they belong to, with its newest seq and both members' read markers,
/// read together (three queries on one connection). A user who no longer exists is refused.
pub async fn snapshot(state: &AppState, user: UserId) -> ApiResult<Snapshot> {
    state
        .db
        .run(move |c| {
            let me = db::users::find(c, user)?
                .ok_or_else(|| ApiError::Unauthorized("this account no longer exists".into()))?;
            let rooms = db::rooms::list_for_member(c, user)?;
            let ids: Vec<i64> = rooms.iter().map(|(r, _)| r.id.0).collect();
            let peers_read = db::rooms::peer_read_markers(c, user, &ids)?;
            let rooms = rooms
                .into_iter()
                .map(|(room, read_up_to)| RoomSnapshot {
                    room_id: room.id,
                    other_member: room.other_member(user),
                    last_seq: room.last_seq,
                    read_up_to,
                    peer_read_up_to: peers_read.get(&room.id).copied().unwrap_or(Seq(0)),
                    last_change_seq: room.last_change_seq,
                })
                .collect();
            Ok(Snapshot { user: me, rooms })
        })
        .await
}
