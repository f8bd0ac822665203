//! One WebSocket connection: authenticate, subscribe to the user's events, then one `select!`
//! loop over the client's frames, the broker's events, finished sends, heartbeats and shutdown.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session,
};
use bytestring::ByteString;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesOrdered, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;

use super::protocol::{self, ClientFrame, RoomState, ServerFrame, WireMessage};
use crate::api::dto::{MessageDto, UserDto};
use crate::auth::AuthUser;
use crate::broker::{ConnId, Event, Recipients};
use crate::db::{self, messages::Cursor};
use crate::domain::{ClientMsgId, MessageBody, RoomId, Seq, UserId};
use crate::error::{ApiError, ApiResult};
use crate::services::{accounts, messages};
use crate::state::AppState;

/// Sends one connection may have waiting for their commit; past this the session stops reading
/// the socket until some finish (backpressure instead of buffering).
const MAX_PENDING_SENDS: usize = 64;
/// Messages per page when replaying a `sync`.
const SYNC_PAGE: i64 = 500;
/// Typing notices relayed per room per connection.
const TYPING_INTERVAL: Duration = Duration::from_millis(1000);

type PendingSend = BoxFuture<'static, (String, ApiResult<messages::Sent>)>;

struct Conn {
    state: Arc<AppState>,
    session: Session,
    id: ConnId,
    auth: AuthUser,
    /// Room → the other member, for rooms this connection has used.
    rooms: HashMap<RoomId, UserId>,
    /// Room → highest seq sent on this connection, so a live message already replayed by a
    /// `sync` is not sent twice.
    delivered: HashMap<RoomId, Seq>,
    last_typing: HashMap<RoomId, Instant>,
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

pub async fn run(
    state: Arc<AppState>,
    mut session: Session,
    mut stream: AggregatedMessageStream,
    header_auth: Option<ApiResult<AuthUser>>,
) {
    let auth = match header_auth {
        Some(Ok(auth)) => Ok(auth),
        Some(Err(e)) => Err(e),
        None => first_frame_auth(&state, &mut session, &mut stream).await,
    };
    let auth = match auth {
        Ok(a) => a,
        Err(e) => {
            let _ = send_error(&mut session, &e, None).await;
            let _ = session
                .close(Some(CloseReason {
                    code: CloseCode::Policy,
                    description: Some("unauthorized".into()),
                }))
                .await;
            return;
        }
    };
    let id = ConnId::next();
    let (outbox, inbox) = mpsc::channel(state.config.ws.queue_capacity.max(1));
    state.broker.subscribe(auth.id, id, outbox);
    let user = auth.id;
    if state.presence.connect(user) {
        announce_presence(&state, user, true).await;
        crate::services::admin::touch_last_seen(&state, user).await;
    }
    let mut conn = Conn {
        state: Arc::clone(&state),
        session,
        id,
        auth,
        rooms: HashMap::new(),
        delivered: HashMap::new(),
        last_typing: HashMap::new(),
    };
    let end = match conn.ready().await {
        Ok(()) => conn.serve(&mut stream, inbox).await,
        Err(e) => {
            let _ = send_error(&mut conn.session, &e, None).await;
            close(CloseCode::Error, "internal error")
        }
    };
    state.broker.unsubscribe(user, id);
    if state.presence.disconnect(user) {
        announce_presence(&state, user, false).await;
        crate::services::admin::touch_last_seen(&state, user).await;
    }
    if let End::Close(code, why) = end {
        let _ = tokio::time::timeout(
            state.config.ws.write_timeout,
            conn.session.close(Some(CloseReason {
                code,
                description: Some(why.into()),
            })),
        )
        .await;
    }
}

/// Waits for `{"type":"auth","token"}` as the first frame.
async fn first_frame_auth(
    state: &AppState,
    session: &mut Session,
    stream: &mut AggregatedMessageStream,
) -> ApiResult<AuthUser> {
    let deadline = tokio::time::sleep(state.config.ws.auth_timeout);
    tokio::pin!(deadline);
    loop {
        let msg = tokio::select! {
            _ = &mut deadline => {
                return Err(ApiError::Unauthorized("no auth frame within the time allowed".into()));
            }
            msg = stream.recv() => msg,
        };
        match msg {
            Some(Ok(AggregatedMessage::Text(text))) => {
                return match protocol::parse(&text) {
                    Ok(ClientFrame::Auth { token }) => accounts::authenticate(state, &token).await,
                    Ok(_) => Err(ApiError::Unauthorized(
                        "authenticate first: send {\"type\":\"auth\",\"token\":\"...\"}".into(),
                    )),
                    Err(e) => Err(ApiError::Unauthorized(format!(
                        "expected an auth frame: {}",
                        e.message
                    ))),
                };
            }
            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                let _ = session.pong(&bytes).await;
            }
            Some(Ok(AggregatedMessage::Pong(_))) => {}
            _ => return Err(ApiError::Unauthorized("expected an auth frame".into())),
        }
    }
}

/// Tells `user`'s contacts (both directions) that they came online or went offline.
async fn announce_presence(state: &AppState, user: UserId, online: bool) {
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

    async fn send_text(&mut self, text: impl Into<ByteString>) -> Result<(), End> {
        match tokio::time::timeout(self.state.config.ws.write_timeout, self.session.text(text))
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(close(CloseCode::Again, "not reading")),
        }
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
        let user = self.auth.id;
        let (me, rooms, peers_read) = self
            .state
            .db
            .run(move |c| {
                let me = db::users::find(c, user)?.ok_or_else(|| {
                    ApiError::Unauthorized("this account no longer exists".into())
                })?;
                let rooms = db::rooms::list_for_member(c, user)?;
                let ids: Vec<i64> = rooms.iter().map(|(r, _)| r.id.0).collect();
                Ok((me, rooms, db::rooms::peer_read_markers(c, user, &ids)?))
            })
            .await?;
        let mut states = Vec::with_capacity(rooms.len());
        for (room, read_up_to) in rooms {
            self.rooms.insert(room.id, room.other_member(user));
            states.push(RoomState {
                room_id: room.id,
                last_seq: room.last_seq,
                read_up_to,
                peer_read_up_to: peers_read.get(&room.id).copied().unwrap_or(Seq(0)),
            });
        }
        let frame = ServerFrame::Ready {
            user: UserDto::from(me),
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
    ) -> End {
        let cfg = self.state.config.ws.clone();
        let per_sec = NonZeroU32::new(cfg.max_frames_per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = per_sec.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        let flood: DefaultDirectRateLimiter =
            RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst));
        let mut pending: FuturesOrdered<PendingSend> = FuturesOrdered::new();
        let mut heartbeat = tokio::time::interval(cfg.ping_interval);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        let mut shutdown = self.state.shutdown.clone();
        if *shutdown.borrow() {
            return close(CloseCode::Away, "server shutting down");
        }
        loop {
            let step = tokio::select! {
                msg = stream.recv(), if pending.len() < MAX_PENDING_SENDS => {
                    last_heard = Instant::now();
                    match msg {
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            if flood.check().is_err() {
                                Err(close(CloseCode::Policy, "too many frames"))
                            } else {
                                self.on_text(&text, &mut pending).await
                            }
                        }
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            self.error(&ApiError::InvalidJson("frames must be JSON text".into()), None).await
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            self.session.pong(&bytes).await.map_err(|_| End::Gone)
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
                        Some(Ok(AggregatedMessage::Close(_))) | None => Err(End::Gone),
                        Some(Err(ProtocolError::Overflow)) => Err(close(CloseCode::Size, "frame too large")),
                        Some(Err(_)) => Err(close(CloseCode::Protocol, "protocol error")),
                    }
                }
                event = inbox.recv() => match event {
                    Some(event) => self.on_event(event).await,
                    // The broker let go of this connection: it did not keep up.
                    None => Err(close(CloseCode::Again, "too slow; reconnect and sync")),
                },
                Some((client_msg_id, result)) = pending.next(), if !pending.is_empty() => {
                    self.on_sent(client_msg_id, result).await
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() >= cfg.idle_timeout {
                        Err(close(CloseCode::Normal, "idle timeout"))
                    } else {
                        self.session.ping(b"").await.map_err(|_| End::Gone)
                    }
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
            } => {
                let parsed = ClientMsgId::parse(&client_msg_id)
                    .and_then(|c| MessageBody::parse(&body).map(|b| (c, b)));
                let (cmid, body) = match parsed {
                    Ok(p) => p,
                    Err(e) => return self.error(&e, Some(client_msg_id)).await,
                };
                // Queued to the writer now, in the order the frames came: seqs follow that order.
                let queued = self
                    .state
                    .writer
                    .enqueue_send(self.auth.id, RoomId(room_id), cmid, body, Some(self.id))
                    .await;
                match queued {
                    Ok(answer) => {
                        pending.push_back(Box::pin(async move {
                            let result = answer.await.unwrap_or_else(|_| {
                                Err(ApiError::internal("the writer dropped a request"))
                            });
                            (client_msg_id, result)
                        }));
                        Ok(())
                    }
                    Err(e) => self.error(&e, Some(client_msg_id)).await,
                }
            }
            ClientFrame::Sync { room_id, after } => self.sync(RoomId(room_id), after).await,
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
                    Some(self.id),
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
        client_msg_id: String,
        result: ApiResult<messages::Sent>,
    ) -> Result<(), End> {
        match result {
            Ok(sent) if sent.created => Ok(()),
            Ok(sent) => {
                let frame = WireMessage::new(sent.message).ack_frame(&client_msg_id);
                self.send_text(frame).await
            }
            Err(e) => self.error(&e, Some(client_msg_id)).await,
        }
    }

    async fn on_event(&mut self, event: Event) -> Result<(), End> {
        match event {
            Event::Message { message, origin } => {
                // The frames are rendered once per message and shared by every connection.
                let m = message.row();
                let seen = self.delivered.entry(m.room_id).or_insert(Seq(0));
                if origin == Some(self.id) {
                    *seen = (*seen).max(m.seq);
                    let frame = message.ack_frame(&m.client_msg_id);
                    return self.send_text(frame).await;
                }
                if m.seq <= *seen {
                    // Already sent by a `sync`.
                    return Ok(());
                }
                *seen = m.seq;
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
                self.error(&accounts::session_ended(), None).await?;
                Err(close(CloseCode::Policy, "password changed"))
            }
            Event::MessageDeleted { message: m } => {
                let frame = ServerFrame::MessageDeleted {
                    room_id: m.room_id,
                    seq: m.seq,
                    message: MessageDto::from(&*m),
                };
                self.send(&frame).await
            }
            Event::Revoked { jti } => {
                if *jti == *self.auth.jti {
                    let e = ApiError::Unauthorized("this token has been revoked".into());
                    self.error(&e, None).await?;
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
        let user = self.auth.id;
        let found = self
            .state
            .db
            .run(move |c| db::rooms::find_for_member(c, room, user))
            .await?;
        let (room_row, _) = found.ok_or_else(crate::services::rooms::room_not_found)?;
        let other = room_row.other_member(user);
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

    /// Replays every message of `room` after `after`, in order, then `synced`.
    async fn sync(&mut self, room: RoomId, after: i64) -> Result<(), End> {
        if after < 0 {
            return self
                .error(&ApiError::validation("after", "must not be negative"), None)
                .await;
        }
        if let Err(e) = self.other_member(room).await {
            return self.error(&e, None).await;
        }
        let mut cursor = Seq(after);
        loop {
            let from = cursor;
            let page = self
                .state
                .db
                .run(move |c| db::messages::page(c, room, Cursor::After(from), SYNC_PAGE))
                .await;
            let (rows, has_more) = match page {
                Ok(p) => p,
                Err(e) => return self.error(&e, None).await,
            };
            for m in &rows {
                cursor = m.seq;
                self.send_text(protocol::message_frame(m)).await?;
            }
            let seen = self.delivered.entry(room).or_insert(Seq(0));
            *seen = (*seen).max(cursor);
            if !has_more {
                break;
            }
        }
        self.send(&ServerFrame::Synced {
            room_id: room,
            last_seq: cursor,
        })
        .await
    }
}
