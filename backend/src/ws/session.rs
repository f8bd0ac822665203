//! One WebSocket connection: authenticate, take one of the user's connection slots, subscribe
//! to the user's events, then one `select!` loop over the client's frames, the broker's events,
//! finished sends, `sync` pages, heartbeats and shutdown.
//!
//! Everything the session hands to the socket counts against an outgoing byte budget: every
//! so often it sends a ping whose payload names the bytes sent before it, and the client's pong
//! confirms them. While more than the budget is unconfirmed the session sends nothing but
//! answers to the client's own frames — other broker events wait in their bounded queue and
//! `sync` reads no further page — and a client that stays over budget past a grace is closed
//! (1013). So what one connection holds is
//! bounded by the budget plus one `sync` page, whatever the client does.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session,
};
use bytestring::ByteString;
use futures_util::future::{BoxFuture, OptionFuture};
use futures_util::stream::{FuturesOrdered, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;

use super::protocol::{self, ClientFrame, MessageFrames, RoomState, ServerFrame};
use crate::api::dto::{MessageDto, UserDto};
use crate::auth::AuthUser;
use crate::broker::{Event, MessageData, Origin, Recipients, SharedMessage};
use crate::config::WsConfig;
use crate::domain::{RoomId, Seq, UserId};
use crate::error::{ApiError, ApiResult};
use crate::services::messages::NewMessage;
use crate::services::{accounts, messages, rooms, sessions};
use crate::state::AppState;

/// Sends one connection may have waiting for their commit; past this the session stops reading
/// the socket until some finish (backpressure instead of buffering).
const MAX_PENDING_SENDS: usize = 64;
/// Messages per page when replaying a `sync`, at most (pages are also bounded in bytes).
const SYNC_PAGE_ROWS: i64 = 500;
/// Bytes a `sync` page counts for one message besides its body: the frame's JSON around it.
const FRAME_OVERHEAD: usize = 256;
/// Output between two budget pings, at most.
const PING_EVERY_MAX: u64 = 64 * 1024;
/// Budget pings waiting for their pong, at most (a newer pong confirms more than an older one).
const MAX_PINGS_IN_FLIGHT: usize = 64;
/// Typing notices relayed per room per connection.
const TYPING_INTERVAL: Duration = Duration::from_millis(1000);

type PendingSend = BoxFuture<'static, (RoomId, String, ApiResult<messages::Sent>)>;
/// A page read for a replay: its frames, whether more follow, and for a page of changes the
/// room's newest change number as read before the page.
type PageRead = BoxFuture<'static, ApiResult<(Vec<PageFrame>, bool, Option<i64>)>>;
/// Changes sent live on this connection remembered per room, so that a replay does not send
/// them again (older ones are forgotten first).
const LIVE_CHANGES_KEPT: usize = 1024;

/// The outgoing byte budget: bytes handed to the socket, and how many of them the client has
/// confirmed reading (a pong answering a ping sent after them).
struct Budget {
    limit: u64,
    ping_every: u64,
    sent: u64,
    confirmed: u64,
    pinged_at: u64,
    /// Per-connection secret mixed into ping payloads, so a client that does not read cannot
    /// confirm bytes with made-up pongs.
    key: u64,
    /// (payload, bytes sent before that ping), oldest first.
    pings: VecDeque<(u64, u64)>,
    over_since: Option<Instant>,
}

impl Budget {
    fn new(limit: usize) -> Budget {
        let limit = limit.max(1) as u64;
        Budget {
            limit,
            // At most half the budget, so confirming the newest ping always reopens it.
            ping_every: (limit / 8).clamp(1, PING_EVERY_MAX),
            sent: 0,
            confirmed: 0,
            pinged_at: 0,
            key: rand::random(),
            pings: VecDeque::new(),
            over_since: None,
        }
    }

    fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.confirmed)
    }

    /// Whether the session may send more.
    fn open(&self) -> bool {
        self.in_flight() < self.limit
    }

    /// Counts `n` bytes handed to the socket; returns a ping payload when one is due.
    fn wrote(&mut self, n: usize) -> Option<[u8; 8]> {
        self.sent = self.sent.saturating_add(n as u64);
        if !self.open() && self.over_since.is_none() {
            self.over_since = Some(Instant::now());
        }
        if self.sent - self.pinged_at < self.ping_every {
            return None;
        }
        self.pinged_at = self.sent;
        let payload = self.sent ^ self.key;
        if self.pings.len() >= MAX_PINGS_IN_FLIGHT {
            self.pings.pop_front();
        }
        self.pings.push_back((payload, self.sent));
        Some(payload.to_be_bytes())
    }

    /// A pong from the client: confirms what was sent before the ping it answers.
    fn pong(&mut self, payload: &[u8]) {
        let Ok(bytes) = <[u8; 8]>::try_from(payload) else {
            return;
        };
        let payload = u64::from_be_bytes(bytes);
        let Some(i) = self.pings.iter().position(|(p, _)| *p == payload) else {
            return;
        };
        let (_, at) = self.pings[i];
        self.pings.drain(..=i);
        self.confirmed = self.confirmed.max(at);
        if self.open() {
            self.over_since = None;
        }
    }
}

/// A `sync` request waiting or being replayed.
struct SyncJob {
    room: RoomId,
    /// The highest seq replayed so far (the request's `after` before the first page).
    cursor: Seq,
    /// The highest seq of a live message skipped because this replay will carry it: the
    /// replay does not end before it (its commit preceded its publication, so a page read after
    /// the event arrived contains it).
    live_max: Seq,
    /// Asked for by the client (it gets `synced` at the end); otherwise a repair the server
    /// started itself after noticing that events were lost, which ends silently.
    requested: bool,
    /// `live_max` when the last page read started.
    live_max_at_read: Seq,
    /// A page has been read and more messages follow it.
    read: bool,
    more: bool,
    /// With `changes_after` (or a repair of changes): the changes to replay once the messages
    /// are.
    changes: Option<ChangeReplay>,
}

/// The changes part of a replay: like the messages part, by `change_seq`.
struct ChangeReplay {
    /// The highest change replayed so far (`changes_after` before the first page).
    cursor: i64,
    /// The highest change of a live `message_updated` left to this replay.
    live_max: i64,
    live_max_at_read: i64,
    read: bool,
    more: bool,
    /// The room's newest change as read with the last page.
    head: i64,
}

impl ChangeReplay {
    fn new(after: i64) -> ChangeReplay {
        ChangeReplay {
            cursor: after,
            live_max: 0,
            live_max_at_read: 0,
            read: false,
            more: true,
            head: after,
        }
    }

    fn done(&self) -> bool {
        self.read && !self.more && self.cursor >= self.live_max
    }
}

impl SyncJob {
    /// Every message is replayed (the changes may remain).
    fn messages_done(&self) -> bool {
        self.read && !self.more && self.cursor >= self.live_max
    }
}

/// A rendered `message` frame of a `sync` page.
struct PageFrame {
    room: RoomId,
    seq: Seq,
    frame: ByteString,
    /// The `client_msg_id`, when this user sent the message (its frame may become an `ack`).
    own: Option<String>,
    /// For a `message_updated` frame of a replay of changes: the message's `change_seq`.
    change: Option<i64>,
}

struct Conn {
    state: Arc<AppState>,
    session: Session,
    /// This connection, as events name it.
    origin: Origin,
    auth: AuthUser,
    /// Room → the other member, for rooms this connection has used.
    rooms: HashMap<RoomId, UserId>,
    /// Room → highest seq sent on this connection, so a live message already replayed by a
    /// `sync` is not sent twice.
    delivered: HashMap<RoomId, Seq>,
    last_typing: HashMap<RoomId, Instant>,
    budget: Budget,
    /// `sync` requests in order; the first is being replayed.
    syncs: VecDeque<SyncJob>,
    /// The replayed page not yet sent.
    page: VecDeque<PageFrame>,
    /// Seqs of this connection's own messages whose `ack` waits for the replay to reach them,
    /// so the connection still sees its room in seq order.
    held_acks: HashMap<RoomId, BTreeSet<Seq>>,
    /// Deletions of messages the replay has not reached yet: sent right after them.
    held_deletes: HashMap<RoomId, BTreeMap<Seq, Arc<SharedMessage>>>,
    /// This connection's sends not acknowledged yet, by room and `client_msg_id`.
    awaiting: HashMap<(RoomId, String), u32>,
    /// Own messages a replay acknowledged before the broker's event for them arrived.
    acked_early: HashSet<(RoomId, Seq)>,
    /// Room → its head when `ready` was sent: the client has (or syncs) everything up to it.
    ready_heads: HashMap<RoomId, Seq>,
    /// Room → its newest change when `ready` was sent (the client syncs changes up to it).
    ready_changes: HashMap<RoomId, i64>,
    /// Room → the highest change sent on this connection.
    changes_delivered: HashMap<RoomId, i64>,
    /// Room → changes sent live (not by a replay) on this connection, the newest
    /// [`LIVE_CHANGES_KEPT`]: a replay skips them.
    live_changes: HashMap<RoomId, BTreeSet<i64>>,
    /// Several instances: events can be lost between them, so a message whose seq is not the
    /// next one starts a repair, and rooms are rechecked periodically.
    cluster: bool,
}

/// How a session ends.
enum End {
    Close(CloseCode, &'static str),
    /// The client closed or the socket is gone.
    Gone,
}

fn close(code: CloseCode, why: &'static str) -> End {
    End::Close(code, why)
}

/// A limiter for the frames a client sends: text, binary and ping frames all count.
fn flood_limiter(cfg: &WsConfig) -> DefaultDirectRateLimiter {
    let per_sec = NonZeroU32::new(cfg.max_frames_per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = per_sec.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
    RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst))
}

async fn close_now(state: &AppState, session: Session, code: CloseCode, why: &str) {
    let _ = tokio::time::timeout(
        state.config.ws.write_timeout,
        session.close(Some(CloseReason {
            code,
            description: Some(why.into()),
        })),
    )
    .await;
}

pub async fn run(
    state: Arc<AppState>,
    mut session: Session,
    mut stream: AggregatedMessageStream,
    header_auth: Option<ApiResult<AuthUser>>,
) {
    let flood = flood_limiter(&state.config.ws);
    let auth = match header_auth {
        Some(Ok(auth)) => Ok(auth),
        Some(Err(e)) => Err(e),
        None => match first_frame_auth(&state, &mut session, &mut stream, &flood).await {
            Ok(result) => result,
            Err(End::Close(code, why)) => return close_now(&state, session, code, why).await,
            Err(End::Gone) => return,
        },
    };
    let auth = match auth {
        Ok(a) => a,
        Err(e) => {
            let _ = send_error(&mut session, &e, None).await;
            return close_now(&state, session, CloseCode::Policy, "unauthorized").await;
        }
    };
    // The connection's slot is taken before subscribing, atomically: parallel upgrades cannot
    // exceed the cap. Dropping the registration, however the session ends, unregisters it.
    let Some((registration, inbox)) = sessions::register(&state, auth.id, auth.session).await
    else {
        let max = state.config.ws.max_connections_per_user;
        let frame = ServerFrame::Error {
            code: "rate_limited",
            message: format!("too many connections: at most {max} per user"),
            client_msg_id: None,
        };
        let _ = tokio::time::timeout(state.config.ws.write_timeout, session.text(frame.to_json()))
            .await;
        return close_now(&state, session, CloseCode::Policy, "too many connections").await;
    };
    let mut conn = Conn {
        state: Arc::clone(&state),
        session,
        origin: registration.origin(),
        auth,
        rooms: HashMap::new(),
        delivered: HashMap::new(),
        last_typing: HashMap::new(),
        budget: Budget::new(state.config.ws.outgoing_budget),
        syncs: VecDeque::new(),
        page: VecDeque::new(),
        held_acks: HashMap::new(),
        held_deletes: HashMap::new(),
        awaiting: HashMap::new(),
        acked_early: HashSet::new(),
        ready_heads: HashMap::new(),
        ready_changes: HashMap::new(),
        changes_delivered: HashMap::new(),
        live_changes: HashMap::new(),
        cluster: state.broker.cluster_status().is_some(),
    };
    let end = match conn.ready().await {
        Ok(()) => conn.serve(&mut stream, inbox, &flood).await,
        Err(e) => {
            let _ = send_error(&mut conn.session, &e, None).await;
            close(CloseCode::Error, "internal error")
        }
    };
    // What the connection held is released before the close frame waits for the socket.
    let Conn { session, .. } = conn;
    registration.end().await;
    if let End::Close(code, why) = end {
        close_now(&state, session, code, why).await;
    }
}

/// Waits for `{"type":"auth","token"}` as the first frame. `Err` ends the connection without
/// an error frame (a binary frame, a flood, or the client is gone).
async fn first_frame_auth(
    state: &AppState,
    session: &mut Session,
    stream: &mut AggregatedMessageStream,
    flood: &DefaultDirectRateLimiter,
) -> Result<ApiResult<AuthUser>, End> {
    let deadline = tokio::time::sleep(state.config.ws.auth_timeout);
    tokio::pin!(deadline);
    loop {
        let msg = tokio::select! {
            _ = &mut deadline => {
                return Ok(Err(ApiError::Unauthorized("no auth frame within the time allowed".into())));
            }
            msg = stream.recv() => msg,
        };
        if matches!(
            msg,
            Some(Ok(AggregatedMessage::Text(_)
                | AggregatedMessage::Binary(_)
                | AggregatedMessage::Ping(_)))
        ) && flood.check().is_err()
        {
            return Err(close(CloseCode::Policy, "too many frames"));
        }
        match msg {
            Some(Ok(AggregatedMessage::Text(text))) => {
                return Ok(match protocol::parse(&text) {
                    Ok(ClientFrame::Auth { token }) => accounts::authenticate(state, &token).await,
                    Ok(_) => Err(ApiError::Unauthorized(
                        "authenticate first: send {\"type\":\"auth\",\"token\":\"...\"}".into(),
                    )),
                    Err(e) => Err(ApiError::Unauthorized(format!(
                        "expected an auth frame: {}",
                        e.message
                    ))),
                });
            }
            Some(Ok(AggregatedMessage::Binary(_))) => {
                return Err(close(CloseCode::Unsupported, "frames must be JSON text"));
            }
            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                let _ = session.pong(&bytes).await;
            }
            Some(Ok(AggregatedMessage::Pong(_))) => {}
            None => return Err(End::Gone),
            Some(Err(ProtocolError::Overflow)) => {
                return Err(close(CloseCode::Size, "frame too large"));
            }
            Some(Ok(AggregatedMessage::Close(_)) | Err(_)) => {
                return Ok(Err(ApiError::Unauthorized("expected an auth frame".into())));
            }
        }
    }
}

async fn send_error(
    session: &mut Session,
    e: &ApiError,
    client_msg_id: Option<String>,
) -> Result<(), actix_ws::Closed> {
    let frame = ServerFrame::Error {
        code: e.code(),
        message: e.public_message(),
        client_msg_id,
    };
    session.text(frame.to_json()).await
}

impl Conn {
    /// Sends a frame; a socket that does not take it in time counts as gone.
    async fn send(&mut self, frame: &ServerFrame<'_>) -> Result<(), End> {
        self.send_text(frame.to_json()).await
    }

    /// Sends a text frame and counts it against the budget (with a ping when one is due).
    async fn send_text(&mut self, text: impl Into<ByteString>) -> Result<(), End> {
        let text: ByteString = text.into();
        let n = text.len();
        let wait = self.state.config.ws.write_timeout;
        match tokio::time::timeout(wait, self.session.text(text)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(End::Gone),
            Err(_) => return Err(close(CloseCode::Again, "not reading")),
        }
        if let Some(payload) = self.budget.wrote(n) {
            match tokio::time::timeout(wait, self.session.ping(&payload)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(End::Gone),
                Err(_) => return Err(close(CloseCode::Again, "not reading")),
            }
        }
        Ok(())
    }

    async fn error(&mut self, e: &ApiError, client_msg_id: Option<String>) -> Result<(), End> {
        self.send(&ServerFrame::Error {
            code: e.code(),
            message: e.public_message(),
            client_msg_id,
        })
        .await
    }

    /// The `ready` frame: the user and every room with its newest seq and read marker.
    async fn ready(&mut self) -> ApiResult<()> {
        let snapshot = sessions::snapshot(&self.state, self.auth.id).await?;
        let mut states = Vec::with_capacity(snapshot.rooms.len());
        for room in snapshot.rooms {
            self.rooms.insert(room.room_id, room.other_member);
            self.ready_heads.insert(room.room_id, room.last_seq);
            self.ready_changes
                .insert(room.room_id, room.last_change_seq);
            states.push(RoomState {
                room_id: room.room_id,
                last_seq: room.last_seq,
                read_up_to: room.read_up_to,
                peer_read_up_to: room.peer_read_up_to,
                last_change_seq: room.last_change_seq,
            });
        }
        let frame = ServerFrame::Ready {
            user: UserDto::from(snapshot.user),
            rooms: states,
        };
        self.send(&frame)
            .await
            .map_err(|_| ApiError::internal("socket closed before ready"))
    }

    async fn serve(
        &mut self,
        stream: &mut AggregatedMessageStream,
        mut inbox: mpsc::Receiver<Event>,
        flood: &DefaultDirectRateLimiter,
    ) -> End {
        let cfg = self.state.config.ws.clone();
        let mut pending: FuturesOrdered<PendingSend> = FuturesOrdered::new();
        let mut reading: Option<PageRead> = None;
        // An event taken from the queue while over budget that must wait for the budget.
        let mut waiting: Option<Event> = None;
        let mut heartbeat = tokio::time::interval(cfg.ping_interval);
        heartbeat.tick().await;
        // Several instances: every connection rechecks its rooms now and then (spread over the
        // period, so that connections opened together do not check together).
        let period = cfg.position_check.max(Duration::from_millis(10));
        let mut position_check = tokio::time::interval_at(
            tokio::time::Instant::now() + period.mul_f64(0.5 + rand::random::<f64>() / 2.0),
            period,
        );
        let mut last_heard = Instant::now();
        let mut shutdown = self.state.shutdown.clone();
        if *shutdown.borrow() {
            return close(CloseCode::Away, "server shutting down");
        }
        loop {
            if self.budget.open() {
                if let Some(event) = waiting.take() {
                    if let Err(end) = self.on_event(event).await {
                        return end;
                    }
                }
            }
            if let Err(end) = self.pump_sync(&mut reading).await {
                return end;
            }
            if !pending.is_empty() {
                // The client is sending: its pong may be queued behind those sends, which this
                // session reads only as fast as they commit. The grace counts from when it
                // caught up.
                if let Some(since) = self.budget.over_since.as_mut() {
                    *since = Instant::now();
                }
            }
            let over_until = self
                .budget
                .over_since
                .map(|t| tokio::time::Instant::from_std(t + cfg.over_budget_grace));
            let step = tokio::select! {
                msg = stream.recv(), if pending.len() < MAX_PENDING_SENDS => {
                    last_heard = Instant::now();
                    let counted = matches!(
                        msg,
                        Some(Ok(AggregatedMessage::Text(_)
                            | AggregatedMessage::Binary(_)
                            | AggregatedMessage::Ping(_)))
                    );
                    if counted && flood.check().is_err() {
                        Err(close(CloseCode::Policy, "too many frames"))
                    } else {
                        match msg {
                            Some(Ok(AggregatedMessage::Text(text))) => {
                                self.on_text(&text, &mut pending).await
                            }
                            Some(Ok(AggregatedMessage::Binary(_))) => {
                                Err(close(CloseCode::Unsupported, "frames must be JSON text"))
                            }
                            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                                self.session.pong(&bytes).await.map_err(|_| End::Gone)
                            }
                            Some(Ok(AggregatedMessage::Pong(bytes))) => {
                                self.budget.pong(&bytes);
                                Ok(())
                            }
                            Some(Ok(AggregatedMessage::Close(_))) | None => Err(End::Gone),
                            Some(Err(ProtocolError::Overflow)) => {
                                Err(close(CloseCode::Size, "frame too large"))
                            }
                            Some(Err(_)) => Err(close(CloseCode::Protocol, "protocol error")),
                        }
                    }
                }
                // Over budget, events wait in the broker's bounded queue — except this
                // connection's own acks: answers to its own frames, whose pong may be queued
                // behind its further sends.
                event = inbox.recv(), if waiting.is_none() => match event {
                    Some(event) if self.budget.open() || self.is_own_ack(&event) => {
                        self.on_event(event).await
                    }
                    Some(event) => {
                        waiting = Some(event);
                        Ok(())
                    }
                    // The broker let go of this connection: it did not keep up.
                    None => Err(close(CloseCode::Again, "too slow; reconnect and sync")),
                },
                Some(page) = OptionFuture::from(reading.as_mut()), if reading.is_some() => {
                    reading = None;
                    self.on_page(page).await
                }
                Some((room, client_msg_id, result)) = pending.next(), if !pending.is_empty() => {
                    self.on_sent(room, client_msg_id, result).await
                }
                _ = position_check.tick(), if self.cluster => self.recheck().await,
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() >= cfg.idle_timeout {
                        Err(close(CloseCode::Normal, "idle timeout"))
                    } else {
                        self.session.ping(b"").await.map_err(|_| End::Gone)
                    }
                }
                _ = tokio::time::sleep_until(over_until.unwrap_or_else(tokio::time::Instant::now)),
                    if over_until.is_some() =>
                {
                    Err(close(CloseCode::Again, "not reading; reconnect and sync"))
                }
                _ = shutdown.changed() => Err(close(CloseCode::Away, "server shutting down")),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn on_text(
        &mut self,
        text: &str,
        pending: &mut FuturesOrdered<PendingSend>,
    ) -> Result<(), End> {
        let frame = match protocol::parse(text) {
            Ok(f) => f,
            Err(e) => {
                let frame = ServerFrame::Error {
                    code: e.code,
                    message: e.message,
                    client_msg_id: e.client_msg_id,
                };
                return self.send(&frame).await;
            }
        };
        match frame {
            ClientFrame::Send {
                room_id,
                client_msg_id,
                body,
                reply_to,
                attachments,
            } => {
                let message = match NewMessage::parse(&client_msg_id, &body, reply_to, &attachments)
                {
                    Ok(m) => m,
                    Err(e) => return self.error(&e, Some(client_msg_id)).await,
                };
                if let Some(target) = message.reply_to {
                    // Checked before queueing; sends without it go straight to the writer.
                    if let Err(e) =
                        messages::check_reply(&self.state, self.auth.id, RoomId(room_id), target)
                            .await
                    {
                        return self.error(&e, Some(client_msg_id)).await;
                    }
                }
                // Queued to the writer now, in the order the frames came: seqs follow that order.
                let queued = self
                    .state
                    .writer
                    .enqueue_send(self.auth.id, RoomId(room_id), message, Some(self.origin))
                    .await;
                match queued {
                    Ok(answer) => {
                        let room = RoomId(room_id);
                        *self
                            .awaiting
                            .entry((room, client_msg_id.clone()))
                            .or_insert(0) += 1;
                        pending.push_back(Box::pin(async move {
                            let result = answer.await.unwrap_or_else(|_| {
                                Err(ApiError::internal("the writer dropped a request"))
                            });
                            (room, client_msg_id, result)
                        }));
                        Ok(())
                    }
                    Err(e) => self.error(&e, Some(client_msg_id)).await,
                }
            }
            ClientFrame::Sync {
                room_id,
                after,
                changes_after,
            } => {
                self.request_sync(RoomId(room_id), after, changes_after)
                    .await
            }
            ClientFrame::Typing { room_id } => self.typing(RoomId(room_id)).await,
            ClientFrame::Read { room_id, up_to } => {
                if up_to < 0 {
                    return self
                        .error(&ApiError::validation("up_to", "must not be negative"), None)
                        .await;
                }
                let result = messages::mark_read(
                    &self.state,
                    self.auth.id,
                    RoomId(room_id),
                    Seq(up_to),
                    Some(self.origin),
                )
                .await;
                match result {
                    Ok(()) => Ok(()),
                    Err(e) => self.error(&e, None).await,
                }
            }
            ClientFrame::Ping => self.send(&ServerFrame::Pong).await,
            ClientFrame::Auth { .. } => {
                self.error(
                    &ApiError::validation("type", "this connection is already authenticated"),
                    None,
                )
                .await
            }
        }
    }

    /// A send this connection made has been handled. A new message's ack comes through the
    /// broker, in seq order with the room's other messages; a known `client_msg_id` is acked
    /// here with the stored message, and a failure becomes an error frame.
    async fn on_sent(
        &mut self,
        room: RoomId,
        client_msg_id: String,
        result: ApiResult<messages::Sent>,
    ) -> Result<(), End> {
        if !matches!(result, Ok(ref sent) if sent.created) {
            self.take_awaiting(room, &client_msg_id);
        }
        match result {
            Ok(sent) if sent.created => Ok(()),
            Ok(sent) => {
                self.state.metrics.sessions.acks.increment(1);
                let frame = sent.message.ack_frame(&client_msg_id);
                self.send_text(frame).await
            }
            Err(e) => self.error(&e, Some(client_msg_id)).await,
        }
    }

    async fn on_event(&mut self, event: Event) -> Result<(), End> {
        match event {
            Event::Message { message, origin } => {
                let delivery = &self.state.metrics.sessions.commit_to_delivery;
                delivery.record(message.since_published());
                // The frames are rendered once per message and shared by every connection.
                let m = message.data();
                let own = origin == Some(self.origin);
                if own && self.acked_early.remove(&(m.room_id, m.seq)) {
                    // A replay already answered it with this ack.
                    return Ok(());
                }
                if self.cluster && m.seq.0 > self.known(m.room_id).0 + 1 {
                    // Messages before it were lost on the way: replay them (and this one) from
                    // the database first.
                    self.repair(m.room_id, m.seq);
                }
                if self.replay_will_carry(m.room_id, m.seq) {
                    if own {
                        self.held_acks.entry(m.room_id).or_default().insert(m.seq);
                    }
                    return Ok(());
                }
                if own {
                    self.take_awaiting(m.room_id, &m.client_msg_id);
                }
                if !own && m.seq <= self.known(m.room_id) {
                    // Already sent (by a `sync`, or earlier when published again), or before
                    // `ready`'s head, which the client syncs itself.
                    return Ok(());
                }
                let seen = self.delivered.entry(m.room_id).or_insert(Seq(0));
                *seen = (*seen).max(m.seq);
                if own {
                    self.state.metrics.sessions.acks.increment(1);
                    let frame = message.ack_frame(&m.client_msg_id);
                    return self.send_text(frame).await;
                }
                self.send_text(message.message_frame()).await
            }
            Event::Typing { room_id, user_id } => {
                self.send(&ServerFrame::Typing { room_id, user_id }).await
            }
            Event::Read {
                room_id,
                user_id,
                up_to,
            } => {
                self.send(&ServerFrame::Read {
                    room_id,
                    user_id,
                    up_to,
                })
                .await
            }
            Event::Presence { user_id, online } => {
                self.send(&ServerFrame::Presence { user_id, online }).await
            }
            Event::Deactivated => {
                let e = ApiError::Unauthorized("this account has been deactivated".into());
                self.error(&e, None).await?;
                Err(close(CloseCode::Policy, "account deactivated"))
            }
            Event::SessionsEnded => {
                self.error(&accounts::session_revoked(), None).await?;
                Err(close(CloseCode::Policy, "password changed"))
            }
            Event::SessionsRevoked { ids } => {
                if ids.contains(&self.auth.session) {
                    self.error(&accounts::session_revoked(), None).await?;
                    Err(close(CloseCode::Policy, "session ended"))
                } else {
                    Ok(())
                }
            }
            Event::UserUpdated { user } => {
                self.send(&ServerFrame::UserUpdated { user: user.into() })
                    .await
            }
            Event::MessageDeleted { message: m } => {
                if self.replay_will_carry(m.room_id, m.seq) {
                    self.held_deletes
                        .entry(m.room_id)
                        .or_default()
                        .insert(m.seq, m);
                    return Ok(());
                }
                self.send_deleted(&m).await
            }
            Event::MessageUpdated { message } => self.on_updated(message).await,
            Event::Recheck => self.recheck().await,
            Event::Revoked { jti } => {
                if *jti == *self.auth.jti {
                    self.error(&accounts::session_revoked(), None).await?;
                    Err(close(CloseCode::Policy, "token revoked"))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The other member of `room`, if this user is in it.
    async fn other_member(&mut self, room: RoomId) -> ApiResult<UserId> {
        if let Some(other) = self.rooms.get(&room) {
            return Ok(*other);
        }
        let other = rooms::other_member(&self.state, self.auth.id, room).await?;
        self.rooms.insert(room, other);
        Ok(other)
    }

    async fn typing(&mut self, room: RoomId) -> Result<(), End> {
        let other = match self.other_member(room).await {
            Ok(o) => o,
            Err(e) => return self.error(&e, None).await,
        };
        let now = Instant::now();
        if self
            .last_typing
            .get(&room)
            .is_some_and(|t| now.duration_since(*t) < TYPING_INTERVAL)
        {
            return Ok(());
        }
        self.last_typing.insert(room, now);
        self.state.broker.publish(
            Recipients::One(other),
            None,
            Event::Typing {
                room_id: room,
                user_id: self.auth.id,
            },
        );
        Ok(())
    }

    fn is_own_ack(&self, event: &Event) -> bool {
        matches!(event, Event::Message { origin: Some(o), .. } if *o == self.origin)
    }

    /// Forgets one of this connection's sends of `client_msg_id` as answered; false when none
    /// was waiting.
    fn take_awaiting(&mut self, room: RoomId, client_msg_id: &str) -> bool {
        let key = (room, client_msg_id.to_owned());
        match self.awaiting.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                self.awaiting.remove(&key);
                true
            }
            None => false,
        }
    }

    async fn send_deleted(&mut self, m: &MessageData) -> Result<(), End> {
        let frame = ServerFrame::MessageDeleted {
            room_id: m.room_id,
            seq: m.seq,
            message: MessageDto::from(m),
        };
        self.send(&frame).await
    }

    /// Queues a replay of every message of `room` after `after`, in order, then (with
    /// `changes_after`) of every change after that, then `synced`.
    async fn request_sync(
        &mut self,
        room: RoomId,
        after: i64,
        changes_after: Option<i64>,
    ) -> Result<(), End> {
        if after < 0 {
            return self
                .error(&ApiError::validation("after", "must not be negative"), None)
                .await;
        }
        if changes_after.is_some_and(|c| c < 0) {
            return self
                .error(
                    &ApiError::validation("changes_after", "must not be negative"),
                    None,
                )
                .await;
        }
        if let Err(e) = self.other_member(room).await {
            return self.error(&e, None).await;
        }
        let max = self.state.config.ws.max_pending_syncs;
        if self.syncs.len() >= max {
            let frame = ServerFrame::Error {
                code: "rate_limited",
                message: format!("too many sync requests waiting (at most {max}); wait for synced"),
                client_msg_id: None,
            };
            return self.send(&frame).await;
        }
        self.syncs.push_back(SyncJob {
            room,
            cursor: Seq(after),
            live_max: Seq(0),
            live_max_at_read: Seq(0),
            requested: true,
            read: false,
            more: true,
            changes: changes_after.map(ChangeReplay::new),
        });
        Ok(())
    }

    /// The change up to which this connection's client has `room`'s changes: what was sent, or
    /// what `ready` named (the client syncs up to it itself).
    fn known_change(&self, room: RoomId) -> i64 {
        let sent = self.changes_delivered.get(&room).copied().unwrap_or(0);
        let head = self.ready_changes.get(&room).copied().unwrap_or(0);
        sent.max(head)
    }

    /// Whether a queued or running replay of `room`'s changes will still send change `c`: the
    /// live frame is then left to it (which does not end before reaching `c`).
    fn change_replay_will_carry(&mut self, room: RoomId, c: i64) -> bool {
        let mut carried = false;
        for job in self.syncs.iter_mut().filter(|j| j.room == room) {
            if let Some(ch) = job.changes.as_mut().filter(|ch| ch.cursor < c) {
                ch.live_max = ch.live_max.max(c);
                carried = true;
            }
        }
        carried
    }

    /// Replays `room`'s changes from what the client has up to at least `upto`. No `synced`
    /// follows a repair.
    fn repair_changes(&mut self, room: RoomId, upto: i64) {
        if self.change_replay_will_carry(room, upto) {
            return;
        }
        let from = self.known_change(room);
        if upto <= from {
            return;
        }
        self.state.metrics.sessions.gap_repairs.increment(1);
        let mut changes = ChangeReplay::new(from);
        changes.live_max = upto;
        let cursor = self.known(room);
        self.syncs.push_back(SyncJob {
            room,
            cursor,
            live_max: Seq(0),
            live_max_at_read: Seq(0),
            requested: false,
            // Nothing of the messages to replay: straight to the changes.
            read: true,
            more: false,
            changes: Some(changes),
        });
    }

    /// A live change: sent at once unless the client has it or a replay will carry it.
    async fn on_updated(&mut self, message: Arc<SharedMessage>) -> Result<(), End> {
        let (room, c) = (message.room_id, message.change_seq);
        if self.change_replay_will_carry(room, c) {
            return Ok(());
        }
        let known = self.known_change(room);
        if c <= known {
            return Ok(());
        }
        if self.cluster && c > known + 1 {
            // Changes before it were lost on the way: replay them (and this one) first.
            self.repair_changes(room, c);
            return Ok(());
        }
        self.changes_delivered.insert(room, c);
        let live = self.live_changes.entry(room).or_default();
        live.insert(c);
        if live.len() > LIVE_CHANGES_KEPT {
            live.pop_first();
        }
        self.send_text(message.updated_frame()).await
    }

    /// The seq up to which this connection's client has `room`: what was delivered, or the
    /// head `ready` named (the client syncs up to it itself).
    fn known(&self, room: RoomId) -> Seq {
        let delivered = self.delivered.get(&room).copied().unwrap_or(Seq(0));
        let head = self.ready_heads.get(&room).copied().unwrap_or(Seq(0));
        delivered.max(head)
    }

    /// Replays `room` from what the client has up to at least `upto`, unless a replay already
    /// queued will carry `upto` (it then extends to it). No `synced` follows a repair.
    fn repair(&mut self, room: RoomId, upto: Seq) {
        if self.replay_will_carry(room, upto) {
            return;
        }
        let from = self.known(room);
        if upto <= from {
            return;
        }
        self.state.metrics.sessions.gap_repairs.increment(1);
        self.syncs.push_back(SyncJob {
            room,
            cursor: from,
            live_max: upto,
            live_max_at_read: Seq(0),
            requested: false,
            read: false,
            more: true,
            changes: None,
        });
    }

    /// Compares every room's head in the database with what the client has, and replays the
    /// difference: after events may have been lost between instances, and periodically.
    async fn recheck(&mut self) -> Result<(), End> {
        // A revocation, deactivation or password reset whose event was lost on its way between
        // instances still ends this connection (within one check period).
        if let Err(e @ ApiError::Unauthorized(_)) =
            accounts::still_valid(&self.state, &self.auth).await
        {
            self.error(&e, None).await?;
            return Err(close(CloseCode::Policy, "token no longer valid"));
        }
        let heads = match sessions::room_heads(&self.state, self.auth.id).await {
            Ok(h) => h,
            // Nothing is lost by waiting for the next check.
            Err(e) => {
                tracing::warn!(error = %e, "checking the rooms' heads failed");
                return Ok(());
            }
        };
        for (room, other, head, change_head) in heads {
            self.rooms.insert(room, other);
            self.repair(room, head);
            self.repair_changes(room, change_head);
        }
        Ok(())
    }

    /// Whether a queued or running replay of `room` will still send `seq`: then a live event
    /// about it is left to the replay (which must not end before it), so the connection gets
    /// the room in seq order, without duplicates.
    fn replay_will_carry(&mut self, room: RoomId, seq: Seq) -> bool {
        let mut carried = false;
        for job in self
            .syncs
            .iter_mut()
            .filter(|j| j.room == room && j.cursor < seq)
        {
            job.live_max = job.live_max.max(seq);
            carried = true;
        }
        carried
    }

    /// Moves the replay on as far as the budget allows: sends what is left of the page, then
    /// ends the replay with `synced` or starts reading its next page.
    async fn pump_sync(&mut self, reading: &mut Option<PageRead>) -> Result<(), End> {
        loop {
            while self.budget.open() {
                let Some(frame) = self.page.pop_front() else {
                    break;
                };
                self.send_replayed(frame).await?;
            }
            if !self.page.is_empty() || reading.is_some() {
                return Ok(());
            }
            let Some(job) = self.syncs.front_mut() else {
                return Ok(());
            };
            if job.messages_done() {
                match job.changes.as_mut() {
                    Some(ch) if !ch.done() => {
                        if !self.budget.open() {
                            return Ok(());
                        }
                        ch.live_max_at_read = ch.live_max;
                        let (state, room, after) = (Arc::clone(&self.state), job.room, ch.cursor);
                        let max_bytes = self.state.config.ws.sync_page_bytes;
                        *reading = Some(Box::pin(async move {
                            messages::changes_after(
                                &state,
                                room,
                                after,
                                SYNC_PAGE_ROWS,
                                move |page, more, head| {
                                    let (frames, more) =
                                        render_changes(room, page, more, max_bytes);
                                    (frames, more, Some(head))
                                },
                            )
                            .await
                        }));
                        return Ok(());
                    }
                    _ => {
                        if let Some(job) = self.syncs.pop_front() {
                            self.finish_sync(job).await?;
                        }
                        continue;
                    }
                }
            }
            if !self.budget.open() {
                return Ok(());
            }
            job.live_max_at_read = job.live_max;
            let (state, me, room, after) =
                (Arc::clone(&self.state), self.auth.id, job.room, job.cursor);
            let limit = messages::PageLimit {
                rows: SYNC_PAGE_ROWS,
                bytes: self.state.config.ws.sync_page_bytes,
                per_message: FRAME_OVERHEAD,
            };
            *reading = Some(Box::pin(async move {
                messages::page_after(&state, room, after, limit, move |page, more| {
                    let (frames, more) = render_page(me, room, page, more, limit.bytes);
                    (frames, more, None)
                })
                .await
            }));
            return Ok(());
        }
    }

    async fn on_page(
        &mut self,
        page: ApiResult<(Vec<PageFrame>, bool, Option<i64>)>,
    ) -> Result<(), End> {
        let (frames, more, change_head) = match page {
            Ok(p) => p,
            Err(e) => {
                // Live events of the room may have been left to this replay: rather than lose
                // them, the client reconnects and syncs again.
                self.error(&e, None).await?;
                return Err(close(CloseCode::Again, "sync failed; reconnect and sync"));
            }
        };
        let Some(job) = self.syncs.front_mut() else {
            return Ok(());
        };
        if let Some(head) = change_head {
            let Some(ch) = job.changes.as_mut() else {
                return Ok(());
            };
            if frames.is_empty() && !more && ch.live_max_at_read >= ch.live_max {
                ch.live_max = ch.live_max.min(ch.cursor);
            }
            ch.read = true;
            ch.more = more;
            ch.head = ch.head.max(head);
            self.page.extend(frames);
            return Ok(());
        }
        if frames.is_empty() && !more && job.live_max_at_read >= job.live_max {
            // Read after every skipped live message was published, and still nothing newer:
            // nothing is left to wait for.
            job.live_max = job.live_max.min(job.cursor);
        }
        job.read = true;
        job.more = more;
        self.page.extend(frames);
        Ok(())
    }

    /// Sends one replayed message: as the `ack` when this connection's send of it has not been
    /// acknowledged yet, followed by its deletion when one was held back for it.
    async fn send_replayed(&mut self, f: PageFrame) -> Result<(), End> {
        let PageFrame {
            room,
            seq,
            frame,
            own,
            change,
        } = f;
        if let Some(c) = change {
            if let Some(ch) = self.syncs.front_mut().and_then(|j| j.changes.as_mut()) {
                ch.cursor = ch.cursor.max(c);
            }
            if self.live_changes.get(&room).is_some_and(|l| l.contains(&c)) {
                // Sent live already, exactly so.
                return Ok(());
            }
            self.send_text(frame).await?;
            let sent = self.changes_delivered.entry(room).or_insert(0);
            *sent = (*sent).max(c);
            return Ok(());
        }
        let held = self
            .held_acks
            .get_mut(&room)
            .is_some_and(|held| held.remove(&seq));
        let frame = match own {
            Some(cmid) => {
                // This connection's own send, not acknowledged yet: the replay carries its ack
                // (and the broker's copy of it, if still to come, is then skipped).
                let awaited = self.take_awaiting(room, &cmid);
                if awaited && !held {
                    self.acked_early.insert((room, seq));
                }
                if held || awaited {
                    self.state.metrics.sessions.acks.increment(1);
                    protocol::ack_from_message_frame(&frame, &cmid)
                } else {
                    frame
                }
            }
            None => frame,
        };
        self.send_text(frame).await?;
        if let Some(job) = self.syncs.front_mut() {
            job.cursor = job.cursor.max(seq);
        }
        let seen = self.delivered.entry(room).or_insert(Seq(0));
        *seen = (*seen).max(seq);
        let deleted = self
            .held_deletes
            .get_mut(&room)
            .and_then(|held| held.remove(&seq));
        if let Some(m) = deleted {
            self.send_deleted(&m).await?;
        }
        Ok(())
    }

    async fn finish_sync(&mut self, job: SyncJob) -> Result<(), End> {
        if !job.requested {
            return Ok(());
        }
        if !self.syncs.iter().any(|j| j.room == job.room) {
            if let Some(acks) = self.held_acks.remove(&job.room) {
                if !acks.is_empty() {
                    tracing::warn!(room = %job.room.0, count = acks.len(), "acks held for a replay that did not reach them");
                }
            }
            if let Some(held) = self.held_deletes.remove(&job.room) {
                for m in held.into_values() {
                    self.send_deleted(&m).await?;
                }
            }
        }
        let last_change_seq = job.changes.as_ref().map(|ch| ch.cursor.max(ch.head));
        self.send(&ServerFrame::Synced {
            room_id: job.room,
            last_seq: job.cursor,
            last_change_seq,
        })
        .await
    }
}

/// One `sync` page's frames, rendered on the database thread so only the frames come back: at
/// most `max_bytes` of them (and at least one message).
fn render_page(
    me: UserId,
    room: RoomId,
    page: Vec<MessageData>,
    more: bool,
    max_bytes: usize,
) -> (Vec<PageFrame>, bool) {
    render_frames(page, more, max_bytes, |m| {
        let frame = protocol::message_frame(&m);
        PageFrame {
            room,
            seq: m.seq,
            frame,
            own: (m.sender_id == me).then_some(m.client_msg_id),
            change: None,
        }
    })
}

/// One page of a replay of changes: a `message_updated` frame per changed message, in order of
/// `change_seq`, at most `max_bytes` of them (and at least one).
fn render_changes(
    room: RoomId,
    page: Vec<MessageData>,
    more: bool,
    max_bytes: usize,
) -> (Vec<PageFrame>, bool) {
    render_frames(page, more, max_bytes, |m| PageFrame {
        room,
        seq: m.seq,
        frame: protocol::updated_from_message_frame(&protocol::message_frame(&m)),
        own: None,
        change: Some(m.change_seq),
    })
}

/// Renders a page's messages with `render` until `max_bytes` of frames (at least one); the
/// page has more when it was cut.
fn render_frames(
    page: Vec<MessageData>,
    more: bool,
    max_bytes: usize,
    render: impl Fn(MessageData) -> PageFrame,
) -> (Vec<PageFrame>, bool) {
    let mut frames = Vec::with_capacity(page.len());
    let mut bytes = 0usize;
    let mut cut = false;
    for m in page {
        if bytes >= max_bytes && !frames.is_empty() {
            cut = true;
            break;
        }
        let frame = render(m);
        bytes = bytes.saturating_add(frame.frame.len());
        frames.push(frame);
    }
    (frames, more || cut)
}
