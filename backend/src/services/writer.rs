//! The message writer: every send and read marker goes through one thread that commits them by
//! group commit — each transaction takes every request that arrived while the previous commit
//! was flushing — so that with `synchronous=FULL` one fsync covers a whole batch. A request is
//! answered only after its transaction has committed (ack-after-durable), and its event is
//! published to the broker right after the commit, in commit order, so every connection sees a
//! room's messages in seq order.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::connection::TransactionManager;
use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::broker::{ConnId, Event, Recipients, SharedBroker};
use crate::db::{self, models::MessageRow, write_transaction, Db, DbConnection};
use crate::domain::{ClientMsgId, MessageBody, MessageId, RoomId, Seq, UserId};
use crate::error::{ApiError, ApiResult};
use crate::services::rooms::room_not_found;

/// Requests taken into one transaction at most.
const MAX_BATCH: usize = 1024;
/// Requests waiting for the writer before senders wait for room in the queue.
const QUEUE: usize = 16 * 1024;

/// The outcome of a send: the stored message, and whether this request stored it (false when
/// the `client_msg_id` was already known and the earlier message is returned instead).
#[derive(Debug, Clone)]
pub struct Sent {
    pub message: Arc<MessageRow>,
    pub created: bool,
}

enum Job {
    Send {
        user: UserId,
        room: RoomId,
        client_msg_id: ClientMsgId,
        body: MessageBody,
        exclude: Option<ConnId>,
        reply: oneshot::Sender<ApiResult<Sent>>,
    },
    Read {
        user: UserId,
        room: RoomId,
        up_to: Seq,
        exclude: Option<ConnId>,
        reply: oneshot::Sender<ApiResult<()>>,
    },
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(db: Db, broker: SharedBroker) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("letschat-writer".into())
            .spawn(move || run(rx, db, broker))?;
        Ok(Writer { jobs: tx })
    }

    /// Stores a message (idempotent by `client_msg_id`) and publishes it to the room's members'
    /// connections; `origin`, the sending connection, receives it as its ack. Returns once the
    /// message is durable.
    pub async fn send(
        &self,
        user: UserId,
        room: RoomId,
        client_msg_id: ClientMsgId,
        body: MessageBody,
        origin: Option<ConnId>,
    ) -> ApiResult<Sent> {
        let answer = self
            .enqueue_send(user, room, client_msg_id, body, origin)
            .await?;
        answer
            .await
            .map_err(|_| ApiError::internal("the writer dropped a request"))?
    }

    /// Queues a send and returns where its outcome will arrive. Sends queued one after another
    /// get increasing seqs in their room: a connection enqueues each before reading the next.
    pub async fn enqueue_send(
        &self,
        user: UserId,
        room: RoomId,
        client_msg_id: ClientMsgId,
        body: MessageBody,
        origin: Option<ConnId>,
    ) -> ApiResult<oneshot::Receiver<ApiResult<Sent>>> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Send {
            user,
            room,
            client_msg_id,
            body,
            exclude: origin,
            reply,
        })
        .await?;
        Ok(answer)
    }

    /// Moves `user`'s read marker in `room` to `up_to` (clamped to the newest message; never
    /// backwards) and tells both members' other connections.
    pub async fn read(
        &self,
        user: UserId,
        room: RoomId,
        up_to: Seq,
        exclude: Option<ConnId>,
    ) -> ApiResult<()> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Read {
            user,
            room,
            up_to,
            exclude,
            reply,
        })
        .await?;
        answer
            .await
            .map_err(|_| ApiError::internal("the writer dropped a request"))?
    }

    async fn submit(&self, job: Job) -> ApiResult<()> {
        self.jobs.send(job).await.map_err(|_| ApiError::Unavailable)
    }
}

/// A job's result inside the transaction, published and answered only after the commit.
enum Done {
    /// The message, and the room's two members.
    Sent(ApiResult<(Sent, UserId, UserId)>),
    Read(ApiResult<Option<(UserId, UserId, Seq)>>),
}

fn run(mut rx: mpsc::Receiver<Job>, db: Db, broker: SharedBroker) {
    // Rooms never change members: remember them.
    let mut members: HashMap<RoomId, (UserId, UserId)> = HashMap::new();
    let mut conn = None;
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match db.get() {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::error!(error = %e, "the writer has no database connection");
                    fail_all(batch.drain(..), || ApiError::Unavailable);
                    continue;
                }
            },
        };
        let mut done: Vec<Done> = Vec::with_capacity(batch.len());
        let committed = write_transaction(c, |c| apply_batch(c, &mut members, &batch, &mut done));
        match committed {
            Ok(()) => {
                for (job, result) in batch.drain(..).zip(done) {
                    finish(job, result, &broker);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = batch.len(), "a batch failed to commit");
                fail_all(batch.drain(..), || {
                    ApiError::internal("the batch failed to commit")
                });
                if <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(
                    c,
                ) {
                    conn = None;
                }
            }
        }
    }
}

/// Runs a batch inside its transaction. What several sends of a batch share is written once
/// per batch: a room's newest message, a sender's read marker (sending reads everything before
/// it), and the recipient's contact entry for the sender (whoever writes to you becomes your
/// contact).
fn apply_batch(
    c: &mut DbConnection,
    members: &mut HashMap<RoomId, (UserId, UserId)>,
    batch: &[Job],
    done: &mut Vec<Done>,
) -> Result<(), ApiError> {
    let mut newest: HashMap<RoomId, MessageId> = HashMap::new();
    let mut read_by_sender: HashMap<(RoomId, UserId), Seq> = HashMap::new();
    let mut contacts: HashMap<(UserId, UserId), RoomId> = HashMap::new();
    for job in batch {
        match job {
            Job::Send {
                user,
                room,
                client_msg_id,
                body,
                ..
            } => {
                let result = apply_send(c, members, *user, *room, client_msg_id, body);
                if let Ok((sent, a, b)) = &result {
                    if sent.created {
                        let m = &sent.message;
                        let id = newest.entry(*room).or_insert(m.id);
                        *id = (*id).max(m.id);
                        let seq = read_by_sender.entry((*room, *user)).or_insert(m.seq);
                        *seq = (*seq).max(m.seq);
                        let recipient = if a == user { *b } else { *a };
                        contacts.insert((recipient, *user), *room);
                    }
                }
                done.push(Done::Sent(result));
            }
            Job::Read {
                user, room, up_to, ..
            } => {
                done.push(Done::Read(apply_read(c, members, *user, *room, *up_to)));
            }
        }
    }
    for ((room, user), seq) in read_by_sender {
        db::rooms::advance_read_marker(c, room, user, seq)?;
    }
    for ((owner, contact), room) in contacts {
        db::contacts::insert_if_absent(c, owner, contact, room)?;
    }
    for (room, id) in newest {
        db::messages::set_last_message(c, room, id)?;
    }
    Ok(())
}

/// The room's two members if `user` is one of them.
fn membership(
    c: &mut DbConnection,
    members: &mut HashMap<RoomId, (UserId, UserId)>,
    user: UserId,
    room: RoomId,
) -> ApiResult<(UserId, UserId)> {
    let pair = match members.get(&room) {
        Some(p) => *p,
        None => {
            let p = db::rooms::members_pair(c, room)?.ok_or_else(room_not_found)?;
            members.insert(room, p);
            p
        }
    };
    if pair.0 == user || pair.1 == user {
        Ok(pair)
    } else {
        Err(room_not_found())
    }
}

fn apply_send(
    c: &mut DbConnection,
    members: &mut HashMap<RoomId, (UserId, UserId)>,
    user: UserId,
    room: RoomId,
    client_msg_id: &ClientMsgId,
    body: &MessageBody,
) -> ApiResult<(Sent, UserId, UserId)> {
    let (a, b) = membership(c, members, user, room)?;
    // Each send in its own savepoint: a known client_msg_id rolls back only its own seq.
    let inserted = c.transaction(|c| {
        db::messages::insert_next(c, room, user, client_msg_id.as_str(), body.as_str())
    });
    match inserted {
        Ok(message) => Ok((
            Sent {
                message: Arc::new(message),
                created: true,
            },
            a,
            b,
        )),
        Err(e) if db::is_unique_violation(&e) => {
            let message = db::messages::find_by_client_id(c, room, user, client_msg_id.as_str())?
                .ok_or_else(|| {
                ApiError::internal(format!("unique violation without a message: {e}"))
            })?;
            Ok((
                Sent {
                    message: Arc::new(message),
                    created: false,
                },
                a,
                b,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

fn apply_read(
    c: &mut DbConnection,
    members: &mut HashMap<RoomId, (UserId, UserId)>,
    user: UserId,
    room: RoomId,
    up_to: Seq,
) -> ApiResult<Option<(UserId, UserId, Seq)>> {
    let (a, b) = membership(c, members, user, room)?;
    let last = db::rooms::last_seq(c, room)?;
    let up_to = up_to.min(last);
    let moved = db::rooms::advance_read_marker(c, room, user, up_to)?;
    Ok(moved.then_some((a, b, up_to)))
}

/// After the commit: publish, then answer.
fn finish(job: Job, result: Done, broker: &SharedBroker) {
    match (job, result) {
        (Job::Send { exclude, reply, .. }, Done::Sent(result)) => {
            let answer = result.map(|(sent, a, b)| {
                if sent.created {
                    let event = Event::message(Arc::clone(&sent.message), exclude);
                    broker.publish(Recipients::Pair(a, b), None, event);
                }
                sent
            });
            let _ = reply.send(answer);
        }
        (
            Job::Read {
                user,
                room,
                exclude,
                reply,
                ..
            },
            Done::Read(result),
        ) => {
            let answer = result.map(|moved| {
                if let Some((a, b, up_to)) = moved {
                    broker.publish(
                        Recipients::Pair(a, b),
                        exclude,
                        Event::Read {
                            room_id: room,
                            user_id: user,
                            up_to,
                        },
                    );
                }
            });
            let _ = reply.send(answer);
        }
        (Job::Send { reply, .. }, _) => {
            let _ = reply.send(Err(ApiError::internal("mismatched writer result")));
        }
        (Job::Read { reply, .. }, _) => {
            let _ = reply.send(Err(ApiError::internal("mismatched writer result")));
        }
    }
}

fn fail_all(jobs: impl Iterator<Item = Job>, err: impl Fn() -> ApiError) {
    for job in jobs {
        match job {
            Job::Send { reply, .. } => {
                let _ = reply.send(Err(err()));
            }
            Job::Read { reply, .. } => {
                let _ = reply.send(Err(err()));
            }
        }
    }
}
