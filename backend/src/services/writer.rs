//! The message writer: every send and read marker goes through one thread that commits them by
//! group commit — each transaction takes every request that arrived while the previous commit
//! was flushing — so that with `synchronous=FULL` one fsync covers a whole batch. A request is
//! answered only after its transaction has committed (ack-after-durable), and its event is
//! published to the broker right after the commit, in commit order, so every connection sees a
//! room's messages in seq order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use diesel::connection::SimpleConnection;
use diesel::connection::TransactionManager;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::broker::AttachmentData;
use crate::broker::{Event, Origin, Recipients, SharedBroker, SharedMessage};
use crate::db::batch::{RoomAdvance, RoomHead};
use crate::db::batch_pg::{BatchJob, Outcome, Refused};
use crate::db::changes::{ChangeKind, ChangeRequest};
use crate::db::uploads::{InsertRefused, UploadRow};
use crate::db::{self, models::MessageRow, write_transaction, Db, DbConnection};
use crate::domain::{MessageId, RoomId, Seq, UserId};
use crate::error::{ApiError, ApiResult};
use crate::metrics::WriterMetrics;
use crate::services::messages::{message_data, NewMessage};
use crate::services::rooms::room_not_found;
use crate::services::uploads::{attachment_data, attachments_by_message, owned_for_send, Links};
use chrono::NaiveDateTime;
use chrono::SubsecRound;

type PooledConnection = diesel::r2d2::PooledConnection<db::Manager>;

/// Requests taken into one transaction at most.
const MAX_BATCH: usize = 4096;
/// Requests waiting for the writer before senders wait for room in the queue.
const QUEUE: usize = 16 * 1024;

/// The outcome of a send: the stored message, and whether this request stored it (false when
/// the `client_msg_id` was already known and the earlier message is returned instead).
#[derive(Debug, Clone)]
pub struct Sent {
    pub message: Arc<SharedMessage>,
    pub created: bool,
}

/// A stored message as its event carries it; the same `Arc` answers the request.
fn shared(message: MessageRow, attachments: Vec<AttachmentData>) -> Arc<SharedMessage> {
    Arc::new(SharedMessage::new(message_data(
        message,
        Vec::new(),
        attachments,
    )))
}

/// Uploads as a message carries them, their links signed at `now`.
fn attachment_list(uploads: Vec<UploadRow>, links: &Links, now: SystemTime) -> Vec<AttachmentData> {
    uploads
        .into_iter()
        .map(|u| attachment_data(u, links, now))
        .collect()
}

/// A change carried out: the message as it is now, and whether this request changed it
/// (false when it was already so: nothing was numbered or published).
#[derive(Debug, Clone)]
pub struct Changed {
    pub message: Arc<SharedMessage>,
    pub changed: bool,
}

enum Job {
    Send {
        user: UserId,
        room: RoomId,
        /// Its `reply_to` was checked by the caller: a message of the same room.
        message: NewMessage,
        exclude: Option<Origin>,
        reply: oneshot::Sender<ApiResult<Sent>>,
        /// When the writer's queue took it (for `letschat_writer_send_to_commit_seconds`).
        queued_at: Instant,
    },
    Read {
        user: UserId,
        room: RoomId,
        up_to: Seq,
        exclude: Option<Origin>,
        reply: oneshot::Sender<ApiResult<()>>,
    },
    /// An edit, delete or reaction: numbered in its room and published after the commit.
    Change {
        request: ChangeRequest,
        reply: oneshot::Sender<ApiResult<Changed>>,
    },
    /// A new upload's row, recorded unless its uploader's uploads since `since` would pass
    /// `quota` bytes with it.
    Upload {
        row: Box<UploadRow>,
        quota: i64,
        since: NaiveDateTime,
        reply: oneshot::Sender<ApiResult<Result<(), InsertRefused>>>,
    },
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// What the writer thread works with.
struct Context {
    db: Db,
    broker: SharedBroker,
    metrics: WriterMetrics,
    /// Signs the links of the attachments in what it answers and publishes.
    links: Links,
}

impl Writer {
    pub fn start(
        db: Db,
        broker: SharedBroker,
        metrics: WriterMetrics,
        links: Links,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        if db.backend() == db::Backend::Sqlite {
            let db = db.clone();
            std::thread::Builder::new()
                .name("letschat-checkpoint".into())
                .spawn(move || checkpointer(db))?;
        }
        std::thread::Builder::new()
            .name("letschat-writer".into())
            .spawn(move || {
                run(
                    rx,
                    Context {
                        db,
                        broker,
                        metrics,
                        links,
                    },
                )
            })?;
        Ok(Writer { jobs: tx })
    }

    /// Stores a message (idempotent by `client_msg_id`) and publishes it to the room's members'
    /// connections; `origin`, the sending connection, receives it as its ack. Returns once the
    /// message is durable.
    pub async fn send(
        &self,
        user: UserId,
        room: RoomId,
        message: NewMessage,
        origin: Option<Origin>,
    ) -> ApiResult<Sent> {
        let answer = self.enqueue_send(user, room, message, origin).await?;
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
        message: NewMessage,
        origin: Option<Origin>,
    ) -> ApiResult<oneshot::Receiver<ApiResult<Sent>>> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Send {
            user,
            room,
            message,
            exclude: origin,
            reply,
            queued_at: Instant::now(),
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
        exclude: Option<Origin>,
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

    /// Carries out an edit, delete or reaction in its room's order of changes, and publishes the
    /// message as it is after it to every connection of both members. Returns once it is
    /// durable.
    pub async fn change(&self, request: ChangeRequest) -> ApiResult<Changed> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Change { request, reply }).await?;
        answer
            .await
            .map_err(|_| ApiError::internal("the writer dropped a request"))?
    }

    /// Records a new upload's row (see [`Job::Upload`]) in the next batch: on SQLite the
    /// database has one writer, so the upload shares the batch's transaction and sync instead
    /// of taking the write lock (and a sync of its own) between two batches of messages.
    pub async fn record_upload(
        &self,
        row: UploadRow,
        quota: i64,
        since: NaiveDateTime,
    ) -> ApiResult<Result<(), InsertRefused>> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Upload {
            row: Box::new(row),
            quota,
            since,
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
    /// The change and the room's two members.
    Changed(ApiResult<(Changed, UserId, UserId)>),
    Uploaded(ApiResult<Result<(), InsertRefused>>),
}

fn run(mut rx: mpsc::Receiver<Job>, cx: Context) {
    let Context {
        db,
        broker,
        metrics,
        links,
    } = cx;
    // Each room's members and head as last committed (SQLite path).
    let mut heads: HashMap<RoomId, RoomHead> = HashMap::new();
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
        let taken_at = Instant::now();
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match db.get() {
                Ok(c) => conn.insert(prepare_connection(c)),
                Err(e) => {
                    tracing::error!(error = %e, "the writer has no database connection");
                    metrics.failed_batches.increment(1);
                    fail_all(batch.drain(..), || ApiError::Unavailable);
                    continue;
                }
            },
        };
        let mut done: Vec<Done> = Vec::with_capacity(batch.len());
        let committed = if matches!(**c, DbConnection::Sqlite(_)) {
            commit_sqlite(c, &mut heads, &batch, &mut done, &links)
        } else {
            commit_postgres(c, &batch, &mut done, &links)
        };
        match committed {
            Ok(()) => {
                record_commit(&metrics, &batch, &done, taken_at);
                with_current_details(c, &mut done, &links);
                for (job, result) in batch.drain(..).zip(done) {
                    finish(job, result, &broker);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = batch.len(), "a batch failed to commit");
                metrics.failed_batches.increment(1);
                fail_all(batch.drain(..), || {
                    ApiError::internal("the batch failed to commit")
                });
                heads.clear();
                if <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(
                    c,
                ) {
                    conn = None;
                }
            }
        }
    }
}

/// The writer's own connection settings. On SQLite the writer never checkpoints the WAL inside
/// a commit (the [`checkpointer`] does that on its own connection), and keeps a larger page
/// cache: the messages indexes' hot pages stay in memory.
fn prepare_connection(mut c: PooledConnection) -> PooledConnection {
    if let DbConnection::Sqlite(s) = &mut *c {
        if let Err(e) =
            s.batch_execute("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -65536;")
        {
            tracing::warn!(error = %e, "cannot tune the writer's connection");
        }
    }
    c
}

/// How often the WAL is checkpointed into the database file while the server writes.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Copies the WAL back into the database file from its own thread, so that commits on the
/// writer thread never pay for it. PASSIVE checkpoints never wait for the writer or readers.
fn checkpointer(db: Db) {
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let mut c = match db.get() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "no connection to checkpoint the WAL");
                continue;
            }
        };
        if let DbConnection::Sqlite(s) = &mut *c {
            if let Err(e) = s.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
    }
}

/// Why a SQLite batch did not commit.
enum BatchError {
    /// A room's seq moved under the writer's cached head (another process wrote to the
    /// database): retried once with heads read afresh.
    Stale,
    Failed(ApiError),
}

impl From<diesel::result::Error> for BatchError {
    fn from(e: diesel::result::Error) -> Self {
        BatchError::Failed(e.into())
    }
}

impl From<ApiError> for BatchError {
    fn from(e: ApiError) -> Self {
        BatchError::Failed(e)
    }
}

/// Commits a batch on SQLite: one `BEGIN IMMEDIATE` transaction with one cached insert per
/// message, seqs assigned from the rooms' heads kept in memory, and one statement per batch for
/// the rooms' heads, the senders' read markers and the recipients' contacts.
fn commit_sqlite(
    c: &mut DbConnection,
    heads: &mut HashMap<RoomId, RoomHead>,
    batch: &[Job],
    done: &mut Vec<Done>,
    links: &Links,
) -> Result<(), ApiError> {
    // Bounds the cache; it refills from the rooms table.
    if heads.len() > MAX_CACHED_ROOMS {
        heads.clear();
    }
    for attempt in 0..2 {
        done.clear();
        let mut work: HashMap<RoomId, (RoomHead, Seq)> = HashMap::new();
        let result = write_transaction(c, |c| {
            match c {
                DbConnection::Sqlite(s) => {
                    apply_batch_sqlite(s, heads, &mut work, batch, done, links)?
                }
                DbConnection::Postgresql(_) => {
                    return Err(BatchError::Failed(ApiError::internal(
                        "SQLite batch on another database",
                    )))
                }
            }
            apply_changes(c, batch, done, links)?;
            apply_uploads(c, batch, done)?;
            Ok(())
        });
        match result {
            Ok(()) => {
                heads.extend(work.into_iter().map(|(room, (head, _))| (room, head)));
                return Ok(());
            }
            Err(BatchError::Stale) if attempt == 0 => {
                tracing::warn!("a room's seq moved outside this server; retrying the batch");
                heads.clear();
            }
            Err(BatchError::Stale) => {
                heads.clear();
                return Err(ApiError::internal("rooms kept changing under the writer"));
            }
            Err(BatchError::Failed(e)) => {
                heads.clear();
                return Err(e);
            }
        }
    }
    Err(ApiError::internal("the batch failed to commit"))
}

/// Rooms whose heads the SQLite writer keeps in memory at most.
const MAX_CACHED_ROOMS: usize = 200_000;

/// A room's head for this batch: from the batch's own work, the committed cache, or the table.
/// The second value is the seq the batch started from.
fn head_for<'w>(
    s: &mut SqliteConnection,
    heads: &HashMap<RoomId, RoomHead>,
    work: &'w mut HashMap<RoomId, (RoomHead, Seq)>,
    room: RoomId,
) -> Result<Option<&'w mut RoomHead>, BatchError> {
    use std::collections::hash_map::Entry;
    match work.entry(room) {
        Entry::Occupied(e) => Ok(Some(&mut e.into_mut().0)),
        Entry::Vacant(e) => {
            let head = match heads.get(&room) {
                Some(h) => *h,
                None => match db::batch::room_head(s, room)? {
                    Some(h) => h,
                    None => return Ok(None),
                },
            };
            Ok(Some(&mut e.insert((head, head.last_seq)).0))
        }
    }
}

/// A send into a room one of whose members is deactivated.
fn deactivated_member() -> ApiError {
    ApiError::Forbidden("messages cannot be sent to a deactivated account".into())
}

/// The deactivated accounts among the members of the rooms the batch's sends go to: one
/// primary-key look-up per batch, on the members the rooms' heads already name (never cached:
/// a deactivation anywhere counts from the next batch on).
fn deactivated_in_batch_sqlite(
    s: &mut SqliteConnection,
    heads: &HashMap<RoomId, RoomHead>,
    work: &mut HashMap<RoomId, (RoomHead, Seq)>,
    batch: &[Job],
) -> Result<HashSet<UserId>, BatchError> {
    let mut members = Vec::new();
    for job in batch {
        if let Job::Send { room, .. } = job {
            if let Some(head) = head_for(s, heads, work, *room)? {
                members.extend([head.user_low, head.user_high]);
            }
        }
    }
    members.sort_unstable();
    members.dedup();
    Ok(db::batch::deactivated_among(s, &members)?)
}

/// The uploads the batch's sends attach, by id: one look-up per batch (none when no send
/// carries any). Inside the batch's transaction, which no other writer interleaves with.
fn uploads_in_batch_sqlite(
    s: &mut SqliteConnection,
    batch: &[Job],
) -> Result<HashMap<String, UploadRow>, BatchError> {
    let mut ids: Vec<&str> = Vec::new();
    for job in batch {
        if let Job::Send { message, .. } = job {
            ids.extend(message.attachments.as_slice().iter().map(String::as_str));
        }
    }
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(db::batch::uploads_among(s, &ids)?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect())
}

fn apply_batch_sqlite(
    s: &mut SqliteConnection,
    heads: &HashMap<RoomId, RoomHead>,
    work: &mut HashMap<RoomId, (RoomHead, Seq)>,
    batch: &[Job],
    done: &mut Vec<Done>,
    links: &Links,
) -> Result<(), BatchError> {
    db::batch::begin_batch(s)?;
    let deactivated = deactivated_in_batch_sqlite(s, heads, work, batch)?;
    let uploads = uploads_in_batch_sqlite(s, batch)?;
    let now = db::now();
    let signed_at = SystemTime::now();
    let mut next_id = db::batch::last_message_id(s)?.0 + 1;
    // Per (room, sender): the newest seq sent and how many were sent.
    let mut senders: HashMap<(RoomId, UserId), (Seq, i64)> = HashMap::new();
    let mut contacts: HashMap<(UserId, UserId), RoomId> = HashMap::new();
    for job in batch {
        match job {
            Job::Send {
                user,
                room,
                message: new,
                ..
            } => {
                let (user, room) = (*user, *room);
                let NewMessage {
                    client_msg_id,
                    body,
                    reply_to,
                    attachments,
                } = new;
                let head = match head_for(s, heads, work, room)? {
                    Some(h) if h.user_low == user || h.user_high == user => h,
                    _ => {
                        done.push(Done::Sent(Err(room_not_found())));
                        continue;
                    }
                };
                let (a, b) = (head.user_low, head.user_high);
                if deactivated.contains(&a) || deactivated.contains(&b) {
                    done.push(Done::Sent(Err(deactivated_member())));
                    continue;
                }
                // Checked only for a message this send would store: a resend answers with the
                // stored message whatever became of its uploads since.
                let carried = match owned_for_send(&uploads, user, attachments) {
                    Ok(carried) => carried,
                    Err(e) => {
                        let known =
                            db::batch::find_by_client_id(s, room, user, client_msg_id.as_str())?;
                        done.push(Done::Sent(match known {
                            Some(message) => Ok((
                                Sent {
                                    message: shared(message, Vec::new()),
                                    created: false,
                                },
                                a,
                                b,
                            )),
                            None => Err(e),
                        }));
                        continue;
                    }
                };
                let seq = Seq(head.last_seq.0 + 1);
                let id = MessageId(next_id);
                let inserted = db::batch::insert_message(
                    s,
                    id,
                    room,
                    seq,
                    user,
                    client_msg_id.as_str(),
                    body.as_str(),
                    *reply_to,
                    now,
                );
                let sent = match inserted {
                    Ok(true) => {
                        db::batch::attach(s, id, attachments.as_slice(), now)?;
                        next_id += 1;
                        head.last_seq = seq;
                        head.last_message_id = id;
                        let sender = senders.entry((room, user)).or_insert((seq, 0));
                        sender.0 = sender.0.max(seq);
                        sender.1 += 1;
                        contacts.insert((if a == user { b } else { a }, user), room);
                        Sent {
                            message: shared(
                                MessageRow {
                                    id,
                                    room_id: room,
                                    seq,
                                    sender_id: user,
                                    client_msg_id: client_msg_id.as_str().to_owned(),
                                    body: body.as_str().to_owned(),
                                    created_at: now,
                                    deleted_at: None,
                                    edited_at: None,
                                    reply_to: *reply_to,
                                    change_seq: 0,
                                },
                                attachment_list(carried, links, signed_at),
                            ),
                            created: true,
                        }
                    }
                    Ok(false) => {
                        let known =
                            db::batch::find_by_client_id(s, room, user, client_msg_id.as_str())?;
                        // Not a known client_msg_id: the seq is taken, someone else wrote to
                        // this room.
                        let Some(message) = known else {
                            return Err(BatchError::Stale);
                        };
                        Sent {
                            message: shared(message, Vec::new()),
                            created: false,
                        }
                    }
                    Err(e) => return Err(e.into()),
                };
                done.push(Done::Sent(Ok((sent, a, b))));
            }
            Job::Read {
                user, room, up_to, ..
            } => {
                let (user, room) = (*user, *room);
                let head = match head_for(s, heads, work, room)? {
                    Some(h) if h.user_low == user || h.user_high == user => *h,
                    _ => {
                        done.push(Done::Read(Err(room_not_found())));
                        continue;
                    }
                };
                let up_to = (*up_to).min(head.last_seq);
                let moved = db::batch::advance_read_marker(s, room, user, up_to)?;
                done.push(Done::Read(Ok(moved.then_some((
                    head.user_low,
                    head.user_high,
                    up_to,
                )))));
            }
            // Carried out by `apply_changes`, after the batch's sends.
            Job::Change { .. } => done.push(Done::Changed(Err(ApiError::internal(
                "a change was not carried out",
            )))),
            // Recorded by `apply_uploads`, after the batch's changes.
            Job::Upload { .. } => done.push(not_recorded()),
        }
    }
    let senders: Vec<(RoomId, UserId, Seq, i64)> = senders
        .into_iter()
        .map(|((room, user), (seq, sent))| (room, user, seq, sent))
        .collect();
    db::batch::record_senders(s, &senders)?;
    let entries: Vec<(UserId, UserId, RoomId)> = contacts
        .into_iter()
        .map(|((owner, contact), room)| (owner, contact, room))
        .collect();
    db::batch::insert_contacts_if_absent(s, &entries, now)?;
    let advances: Vec<RoomAdvance> = work
        .iter()
        .filter(|(_, (head, from))| head.last_seq != *from)
        .map(|(room, (head, from))| RoomAdvance {
            room: *room,
            from_seq: *from,
            last_seq: head.last_seq,
            last_message_id: head.last_message_id,
        })
        .collect();
    if !db::batch::finish_rooms(s, &advances)? {
        return Err(BatchError::Stale);
    }
    Ok(())
}

/// Commits a batch on PostgreSQL (`db::batch_pg`): one transaction that locks the rooms' heads
/// in id order, so that several servers can write into one database, and a fixed number of
/// statements whatever the batch's size.
fn commit_postgres(
    c: &mut DbConnection,
    batch: &[Job],
    done: &mut Vec<Done>,
    links: &Links,
) -> Result<(), ApiError> {
    let DbConnection::Postgresql(pg) = c else {
        return Err(ApiError::internal("PostgreSQL batch on another database"));
    };
    let jobs: Vec<BatchJob<'_>> = batch
        .iter()
        .filter_map(|job| match job {
            Job::Send {
                user,
                room,
                message,
                ..
            } => Some(BatchJob::Send {
                user: *user,
                room: *room,
                client_msg_id: message.client_msg_id.as_str(),
                body: message.body.as_str(),
                reply_to: message.reply_to,
                attachments: message.attachments.as_slice(),
            }),
            Job::Read {
                user, room, up_to, ..
            } => Some(BatchJob::Read {
                user: *user,
                room: *room,
                up_to: *up_to,
            }),
            Job::Change { .. } | Job::Upload { .. } => None,
        })
        .collect();
    let mut outcomes = if jobs.is_empty() {
        Vec::new()
    } else {
        db::batch_pg::commit(pg, &jobs)
            .map_err(ApiError::internal)?
            .outcomes
    }
    .into_iter();
    let signed_at = SystemTime::now();
    for job in batch {
        if matches!(job, Job::Change { .. }) {
            done.push(Done::Changed(Err(ApiError::internal(
                "a change was not carried out",
            ))));
            continue;
        }
        if matches!(job, Job::Upload { .. }) {
            done.push(not_recorded());
            continue;
        }
        let outcome = outcomes
            .next()
            .ok_or_else(|| ApiError::internal("a batch outcome is missing"))?;
        done.push(match outcome {
            Outcome::Sent(sent) => Done::Sent(sent.map_err(|r| refusal(r, job)).map(|stored| {
                let (a, b) = stored.members;
                let sent = Sent {
                    message: shared(
                        Arc::unwrap_or_clone(stored.message),
                        attachment_list(stored.attachments, links, signed_at),
                    ),
                    created: stored.created,
                };
                (sent, a, b)
            })),
            Outcome::Read(read) => Done::Read(read.map_err(|r| refusal(r, job))),
        });
    }
    // The batch's changes in a transaction of their own: the sends above are committed whatever
    // becomes of these.
    if batch.iter().any(|job| matches!(job, Job::Change { .. })) {
        if let Err(e) = write_transaction(c, |c| apply_changes(c, batch, done, links)) {
            tracing::error!(error = %e, "a batch's changes failed to commit");
            for (job, slot) in batch.iter().zip(done.iter_mut()) {
                if matches!(job, Job::Change { .. }) {
                    *slot = Done::Changed(Err(ApiError::internal("the change failed to commit")));
                }
            }
        }
    }
    if batch.iter().any(|job| matches!(job, Job::Upload { .. })) {
        if let Err(e) = write_transaction(c, |c| apply_uploads(c, batch, done)) {
            tracing::error!(error = %e, "a batch's uploads failed to commit");
            for (job, slot) in batch.iter().zip(done.iter_mut()) {
                if matches!(job, Job::Upload { .. }) {
                    *slot = Done::Uploaded(Err(ApiError::internal("the upload failed to commit")));
                }
            }
        }
    }
    Ok(())
}

/// An upload's place in `done` until `apply_uploads` fills it.
fn not_recorded() -> Done {
    Done::Uploaded(Err(ApiError::internal("an upload was not recorded")))
}

/// Records the batch's uploads in the open transaction, in order (so that one user's uploads
/// of the same batch count against the quota one after the other), into their places in `done`.
fn apply_uploads(c: &mut DbConnection, batch: &[Job], done: &mut [Done]) -> Result<(), ApiError> {
    for (job, slot) in batch.iter().zip(done.iter_mut()) {
        if let Job::Upload {
            row, quota, since, ..
        } = job
        {
            *slot = Done::Uploaded(Ok(db::uploads::insert_if_within_quota(
                c, row, *quota, *since,
            )?));
        }
    }
    Ok(())
}

/// Carries out the batch's changes (edits, deletes, reactions) in the open transaction, each in
/// its room's order of changes, into their places in `done`. The rooms are held first (see
/// `db::changes`).
fn apply_changes(
    c: &mut DbConnection,
    batch: &[Job],
    done: &mut [Done],
    links: &Links,
) -> Result<(), ApiError> {
    let (places, requests): (Vec<usize>, Vec<ChangeRequest>) = batch
        .iter()
        .enumerate()
        .filter_map(|(i, job)| match job {
            Job::Change { request, .. } => Some((i, request.clone())),
            _ => None,
        })
        .unzip();
    if requests.is_empty() {
        return Ok(());
    }
    // Microseconds, as PostgreSQL keeps them: the answer shows what history will.
    let now = db::now().trunc_subsecs(6);
    let outcomes = db::changes::apply_batch(c, &requests, now)?;
    // The attachments of the messages as they are now (a deleted one has none left).
    let live: Vec<MessageId> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .filter(|applied| applied.message.deleted_at.is_none())
        .map(|applied| applied.message.id)
        .collect();
    let attachments = attachments_by_message(c, &live, links, SystemTime::now())?;
    for (i, outcome) in places.into_iter().zip(outcomes) {
        let slot = done
            .get_mut(i)
            .ok_or_else(|| ApiError::internal("a change has no place in the batch"))?;
        *slot = Done::Changed(outcome.map(|applied| {
            let (a, b) = applied.members;
            let changed = Changed {
                message: Arc::new(SharedMessage::new({
                    let carried = attachments
                        .get(&applied.message.id)
                        .cloned()
                        .unwrap_or_default();
                    message_data(applied.message, applied.reactions, carried)
                })),
                changed: applied.changed,
            };
            (changed, a, b)
        }));
    }
    Ok(())
}

/// A resend of a message stored earlier answers with the message as it is now: its row was
/// read in the batch; its reactions (if a change ever touched it) and attachments are read here,
/// one query each for the whole batch.
fn with_current_details(c: &mut DbConnection, done: &mut [Done], links: &Links) {
    let resent: Vec<MessageId> = done
        .iter()
        .filter_map(|slot| match slot {
            Done::Sent(Ok((sent, _, _))) if !sent.created && sent.message.deleted_at.is_none() => {
                Some(sent.message.id)
            }
            _ => None,
        })
        .collect();
    if resent.is_empty() {
        return;
    }
    let changed: Vec<MessageId> = done
        .iter()
        .filter_map(|slot| match slot {
            Done::Sent(Ok((sent, _, _)))
                if !sent.created
                    && sent.message.deleted_at.is_none()
                    && sent.message.change_seq > 0 =>
            {
                Some(sent.message.id)
            }
            _ => None,
        })
        .collect();
    let mut reactions = match db::messages::reactions_of(c, &changed) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read resent messages' reactions");
            return;
        }
    };
    let mut attachments = match attachments_by_message(c, &resent, links, SystemTime::now()) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read resent messages' attachments");
            return;
        }
    };
    for slot in done.iter_mut() {
        let Done::Sent(Ok((sent, _, _))) = slot else {
            continue;
        };
        let m = sent.message.data();
        if sent.created || m.deleted_at.is_some() {
            continue;
        }
        let mut data = m.clone();
        if let Some(groups) = reactions.remove(&m.id) {
            data.reactions = crate::services::messages::reaction_data(groups);
        }
        data.attachments = attachments.remove(&m.id).unwrap_or_default();
        sent.message = Arc::new(SharedMessage::new(data));
    }
}

/// The error a refused job answers with (as on SQLite).
fn refusal(refused: Refused, job: &Job) -> ApiError {
    match refused {
        Refused::NotMember => room_not_found(),
        Refused::Deactivated => deactivated_member(),
        Refused::NotYourUpload(index) => {
            let id = match job {
                Job::Send { message, .. } => message.attachments.as_slice().get(index),
                _ => None,
            };
            crate::services::uploads::not_yours(id.map_or("", String::as_str))
        }
    }
}

/// After the commit: publish, then answer.
fn finish(job: Job, result: Done, broker: &SharedBroker) {
    match (job, result) {
        (Job::Send { exclude, reply, .. }, Done::Sent(result)) => {
            let answer = result.map(|(sent, a, b)| {
                if sent.created {
                    let event = Event::Message {
                        message: Arc::clone(&sent.message),
                        origin: exclude,
                    };
                    broker.publish(Recipients::Pair(a, b), None, event);
                } else {
                    // A resend of a message already stored. Published again for every other
                    // connection, which drops it if it has it: the instance that stored it may
                    // have died between its commit and its publication. The resending
                    // connection gets its ack from the answer.
                    let event = Event::Message {
                        message: Arc::clone(&sent.message),
                        origin: None,
                    };
                    broker.publish(Recipients::Pair(a, b), exclude, event);
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
        (Job::Change { request, reply }, Done::Changed(result)) => {
            let answer = result.map(|(changed, a, b)| {
                if changed.changed {
                    broker.publish(
                        Recipients::Pair(a, b),
                        None,
                        Event::MessageUpdated {
                            message: Arc::clone(&changed.message),
                        },
                    );
                    // Clients written before changes existed know this frame for deletes.
                    if matches!(request.kind, ChangeKind::Delete { by_admin: Some(_) }) {
                        broker.publish(
                            Recipients::Pair(a, b),
                            None,
                            Event::MessageDeleted {
                                message: Arc::clone(&changed.message),
                            },
                        );
                    }
                }
                changed
            });
            let _ = reply.send(answer);
        }
        (Job::Send { reply, .. }, _) => {
            let _ = reply.send(Err(ApiError::internal("mismatched writer result")));
        }
        (Job::Upload { reply, .. }, Done::Uploaded(result)) => {
            let _ = reply.send(result);
        }
        (Job::Change { reply, .. }, _) => {
            let _ = reply.send(Err(ApiError::internal("mismatched writer result")));
        }
        (Job::Upload { reply, .. }, _) => {
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
            Job::Change { reply, .. } => {
                let _ = reply.send(Err(err()));
            }
            Job::Upload { reply, .. } => {
                let _ = reply.send(Err(err()));
            }
        }
    }
}

/// A committed batch's figures: its size, how long it took, each send's wait for it, and the
/// new messages it stored.
fn record_commit(metrics: &WriterMetrics, batch: &[Job], done: &[Done], taken_at: Instant) {
    let committed_at = Instant::now();
    metrics.commits.increment(1);
    metrics.batch_requests.record(batch.len() as f64);
    metrics.commit.record(committed_at - taken_at);
    let mut created = 0;
    for (job, result) in batch.iter().zip(done) {
        if let Job::Send { queued_at, .. } = job {
            metrics
                .send_to_commit
                .record(committed_at.saturating_duration_since(*queued_at));
        }
        if matches!(result, Done::Sent(Ok((sent, _, _))) if sent.created) {
            created += 1;
        }
    }
    metrics.messages_sent.increment(created);
}
