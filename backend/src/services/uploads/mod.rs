//! Uploads: receiving files (`POST /api/uploads`), storing them once per content, making image
//! thumbnails, serving them through signed links, and sweeping what nothing uses any more.
//!
//! An upload goes through three steps, each bounded (see README, "Uploads"):
//! 1. [`admit`] — before the body is read: the declared size, the user's and the instance's
//!    uploads in progress ([`gate`]), the user's daily quota.
//! 2. [`receive`] — the body streamed to a temporary file of the blob store, hashed (SHA-256) on
//!    the way, never held in memory beyond one write buffer; the size limit and the quota are
//!    enforced as the bytes arrive. A client that goes away leaves nothing (the temporary file
//!    is deleted when dropped).
//! 3. [`store`] — the content type detected from the bytes, an image decoded and thumbnailed (on
//!    the image threads), the thumbnail and the bytes published under their hash, and only then
//!    the row committed (with the quota checked again).
//!
//! File I/O runs on a few threads of its own and decoding on others (both in the `SCHED_IDLE`
//! class, see [`crate::background`]), never on the async executor nor on the blocking threads
//! the database uses: a burst of uploads cannot delay messaging.

pub mod detect;
pub mod gate;
pub mod images;
pub mod links;
pub mod sweep;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::SystemTime;

use std::num::NonZeroU32;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::background::{Background, Lowered};
use crate::broker::AttachmentData;
use crate::config::{Secret, UploadConfig};
use crate::db::{self, uploads::UploadRow, DbConnection};
use crate::domain::{MessageId, UploadIds, UserId};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::{BlobKey, BlobStore, LocalStore, TempBlob};

pub use links::{LinkError, Links, SignedUrls, Variant};

/// Bytes of a multipart body around the file part (boundaries, part headers, other small
/// fields) allowed beyond the size limit before a declared `Content-Length` is refused outright.
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Received bytes are written to the temporary file in blocks of this size.
const WRITE_BLOCK: usize = 256 * 1024;

/// Bytes read from a stored file per step while serving it.
pub const READ_BLOCK: usize = 256 * 1024;

/// The quota's window, in seconds.
const QUOTA_WINDOW_SECS: i64 = 24 * 3600;

/// A limiter of `bytes_per_sec` (in KiB per second, at least 1), or none for 0.
fn intake_limiter(bytes_per_sec: u64) -> Option<Arc<DefaultDirectRateLimiter>> {
    let kib_per_sec = u32::try_from(bytes_per_sec / 1024)
        .unwrap_or(u32::MAX)
        .max(1);
    let rate = NonZeroU32::new(kib_per_sec)?;
    let burst = NonZeroU32::new(INTAKE_BURST_KIB)?;
    (bytes_per_sec > 0).then(|| {
        Arc::new(RateLimiter::direct(
            Quota::per_second(rate).allow_burst(burst),
        ))
    })
}

/// The start of the quota's window now.
fn quota_window_start() -> chrono::NaiveDateTime {
    db::now() - chrono::Duration::seconds(QUOTA_WINDOW_SECS)
}

/// The upload machinery of a server (cheap to clone).
#[derive(Clone)]
pub struct Uploads {
    store: Arc<dyn BlobStore>,
    links: Links,
    /// Writing, reading and sweeping the stored files.
    io: Background,
    /// Decoding images and making thumbnails.
    images: Background,
    gate: gate::Gate,
    /// The server's intake of upload bytes (`LETSCHAT_UPLOAD_BYTES_PER_SEC`), in KiB; `None`
    /// without a limit.
    intake: Option<Arc<DefaultDirectRateLimiter>>,
    config: UploadConfig,
}

/// The most KiB the intake lets through at once, after a pause.
const INTAKE_BURST_KIB: u32 = 1024;

impl Uploads {
    /// The local-folder store of `config.dir`, links signed with a key derived from `secret`,
    /// and the upload threads.
    pub fn start(config: &UploadConfig, secret: &Secret) -> std::io::Result<Uploads> {
        Ok(Uploads {
            store: Arc::new(LocalStore::new(config.dir.clone())),
            links: Links::new(secret, config.link_ttl),
            io: Background::start_with(
                "upload-io",
                config.io_threads,
                Lowered {
                    pinned: false,
                    idle_io: true,
                    rest: 0,
                },
            )?,
            images: Background::start_with(
                "upload-image",
                config.image_threads,
                Lowered {
                    pinned: true,
                    idle_io: true,
                    rest: 1,
                },
            )?,
            gate: gate::Gate::new(config.per_user, config.concurrent),
            intake: intake_limiter(config.bytes_per_sec),
            config: config.clone(),
        })
    }

    /// Signs links for readers: `links().sign(&upload, now)` gives an upload's `url` and
    /// `thumbnail_url`.
    pub fn links(&self) -> &Links {
        &self.links
    }

    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    pub fn config(&self) -> &UploadConfig {
        &self.config
    }

    /// Waits until the server's intake allows `bytes` more upload bytes (at once when there is
    /// no limit). The caller reads no more of its body meanwhile, so TCP slows its client down.
    async fn admit_bytes(&self, bytes: usize) {
        let Some(intake) = &self.intake else {
            return;
        };
        let mut kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        while kib > 0 {
            let step = kib.min(INTAKE_BURST_KIB);
            if let Some(n) = NonZeroU32::new(step) {
                // `step` is within the burst, so the limiter can always grant it.
                let _ = intake.until_n_ready(n).await;
            }
            kib -= step;
        }
    }

    /// Uploads in progress on this instance.
    pub fn in_progress(&self) -> usize {
        self.gate.in_progress()
    }

    /// Runs blocking file work on the I/O threads.
    async fn io<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&dyn BlobStore) -> std::io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = Arc::clone(&self.store);
        self.io
            .run(move || f(store.as_ref()))
            .await
            .ok_or(ApiError::Unavailable)?
            .map_err(|e| ApiError::internal(format!("upload storage: {e}")))
    }

    /// Reads up to `len` bytes of `file` at `offset` (on the I/O threads), for serving.
    pub async fn read_at(
        &self,
        file: Arc<std::fs::File>,
        offset: u64,
        len: usize,
    ) -> ApiResult<Bytes> {
        self.io(move |_| {
            let mut f = file.as_ref();
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::with_capacity(len);
            f.take(len as u64).read_to_end(&mut buf)?;
            Ok(Bytes::from(buf))
        })
        .await
    }
}

/// An upload admitted before its body is read.
pub struct Admitted {
    _pass: gate::Pass,
    user: UserId,
    /// Bytes of the quota left.
    quota_left: u64,
    /// `Retry-After` when the quota runs out.
    quota_retry_after: u64,
}

/// Seconds until the oldest upload in the quota's window leaves it.
fn quota_retry_after(oldest: Option<chrono::NaiveDateTime>) -> u64 {
    let left = oldest.map_or(60, |t| {
        (t + chrono::Duration::seconds(QUOTA_WINDOW_SECS) - db::now()).num_seconds()
    });
    u64::try_from(left.clamp(1, QUOTA_WINDOW_SECS)).unwrap_or(1)
}

/// Admits an upload of `user` declaring `content_length` bytes of body (if it did): 413 when
/// that is already too large, 429 when the user or the instance has as many uploads in progress
/// as allowed, or when the user's quota of the last 24 hours is used up.
pub async fn admit(
    state: &AppState,
    user: UserId,
    content_length: Option<u64>,
) -> ApiResult<Admitted> {
    let config = &state.uploads.config;
    if content_length.is_some_and(|n| n > config.max_bytes.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(too_large(config));
    }
    let pass = state.uploads.gate.enter(user)?;
    let since = quota_window_start();
    let (used, oldest) = state
        .db
        .run(move |c| db::uploads::used_since(c, user, since))
        .await?;
    let quota = config.quota_bytes_per_day;
    let used = u64::try_from(used).unwrap_or(0);
    let quota_retry_after = quota_retry_after(oldest);
    if used >= quota {
        return Err(ApiError::RateLimited {
            retry_after_secs: quota_retry_after,
        });
    }
    Ok(Admitted {
        _pass: pass,
        user,
        quota_left: quota - used,
        quota_retry_after,
    })
}

fn too_large(config: &UploadConfig) -> ApiError {
    ApiError::PayloadTooLarge {
        limit: usize::try_from(config.max_bytes).unwrap_or(usize::MAX),
    }
}

/// An upload's bytes, complete in a temporary file, not yet stored.
pub struct Received {
    admitted: Admitted,
    file: TempBlob,
    name: Option<String>,
    size: u64,
    sha256: String,
    head: Vec<u8>,
}

/// Streams `body` (the `file` part, sent as `name`) into a temporary file, hashing it on the
/// way. 413 past the size limit, 429 past the quota, 422 when empty; the temporary file is gone
/// whenever this fails or is dropped.
pub async fn receive<S>(
    state: &AppState,
    admitted: Admitted,
    name: Option<String>,
    mut body: S,
) -> ApiResult<Received>
where
    S: Stream<Item = Result<Bytes, ApiError>> + Unpin,
{
    let uploads = &state.uploads;
    let max = uploads.config.max_bytes;
    let mut file = uploads.io(|store| store.temp_file()).await?;
    let mut hasher = Sha256::new();
    let mut block: Vec<u8> = Vec::with_capacity(WRITE_BLOCK);
    let mut head: Vec<u8> = Vec::new();
    let mut size: u64 = 0;
    let mut written: u64 = 0;
    loop {
        let chunk = body.next().await.transpose()?;
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            size = size.saturating_add(chunk.len() as u64);
            if size > max {
                return Err(too_large(&uploads.config));
            }
            if size > admitted.quota_left {
                return Err(ApiError::RateLimited {
                    retry_after_secs: admitted.quota_retry_after,
                });
            }
            uploads.admit_bytes(chunk.len()).await;
            if head.len() < detect::SNIFF_BYTES {
                let take = (detect::SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            block.extend_from_slice(&chunk);
        }
        if block.len() >= WRITE_BLOCK || (done && !block.is_empty()) {
            (file, hasher, block) = uploads
                .io(move |_| {
                    hasher.update(&block);
                    file.write_all(&block)?;
                    // Written out now, at the I/O threads' idle priority, rather than in one
                    // burst at the final sync or by the kernel's flusher at its own priority.
                    crate::storage::start_writeback(file.as_file(), written, block.len());
                    block.clear();
                    Ok((file, hasher, block))
                })
                .await?;
            written = size;
        }
        if done {
            break;
        }
    }
    if size == 0 {
        return Err(ApiError::validation("file", "the file is empty"));
    }
    Ok(Received {
        admitted,
        file,
        name,
        size,
        sha256: hex::encode(hasher.finalize()),
        head,
    })
}

/// Stores a received upload: detects its content type, decodes and thumbnails an image,
/// publishes the thumbnail and the bytes under their hash, then records the upload (429 if the
/// quota was passed meanwhile by the user's other uploads).
pub async fn store(state: &AppState, received: Received) -> ApiResult<UploadRow> {
    let uploads = &state.uploads;
    let Received {
        admitted,
        file,
        name,
        size,
        sha256,
        head,
    } = received;
    let content_type = detect::content_type(&head);
    let name = detect::safe_name(name.as_deref(), &content_type);

    let image = if detect::is_decodable_image(&content_type) {
        let path = file.path().to_owned();
        let (ct, max_pixels) = (content_type.clone(), uploads.config.max_image_pixels);
        let started = std::time::Instant::now();
        let inspected = uploads
            .images
            .run(move || images::inspect(&path, &ct, max_pixels))
            .await
            .ok_or(ApiError::Unavailable)?;
        match inspected {
            Ok(info) => {
                tracing::debug!(elapsed = ?started.elapsed(), "image decoded");
                Some(info)
            }
            Err(why) => {
                tracing::info!(?why, content_type, "image kept as a plain file");
                None
            }
        }
    } else {
        None
    };

    let original = BlobKey::original(&sha256)
        .ok_or_else(|| ApiError::internal("a SHA-256 in hex is a blob key"))?;
    let thumbnail_key = BlobKey::thumbnail(&sha256)
        .ok_or_else(|| ApiError::internal("a SHA-256 in hex is a blob key"))?;
    let thumbnail = image.as_ref().map(|i| i.thumbnail.clone());
    let has_thumbnail = thumbnail.is_some();
    // Published before the row is committed: the sweep never deletes a blob written after it
    // looked (see `BlobStore::remove_if_stale`).
    uploads
        .io(move |store| {
            if let Some(bytes) = thumbnail {
                let mut t = store.temp_file()?;
                t.write_all(&bytes)?;
                t.as_file().sync_all()?;
                store.put(&thumbnail_key, t)?;
            }
            file.as_file().sync_all()?;
            store.put(&original, file)
        })
        .await?;

    let dimension = |v: u32| i32::try_from(v).ok();
    let row = UploadRow {
        id: db::uploads::new_id(),
        uploader_id: admitted.user,
        name,
        content_type,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        sha256,
        width: image.as_ref().and_then(|i| dimension(i.width)),
        height: image.as_ref().and_then(|i| dimension(i.height)),
        has_thumbnail,
        created_at: db::now(),
        sent_at: None,
    };
    let quota = i64::try_from(uploads.config.quota_bytes_per_day).unwrap_or(i64::MAX);
    let since = quota_window_start();
    let recorded = state
        .writer
        .record_upload(row.clone(), quota, since)
        .await?;
    if let Err(db::uploads::InsertRefused::OverQuota { oldest }) = recorded {
        return Err(ApiError::RateLimited {
            retry_after_secs: quota_retry_after(oldest),
        });
    }
    tracing::info!(
        upload = %row.id,
        size = row.size,
        content_type = %row.content_type,
        image = row.width.is_some(),
        "upload stored"
    );
    Ok(row)
}

/// A stored file a valid link points at, opened for serving.
pub struct Servable {
    pub upload: UploadRow,
    pub variant: Variant,
    pub file: Arc<std::fs::File>,
    pub len: u64,
}

impl Servable {
    /// What the response says the bytes are.
    pub fn content_type(&self) -> &str {
        match self.variant {
            Variant::File => &self.upload.content_type,
            Variant::Thumbnail => "image/jpeg",
        }
    }

    /// Shown in the browser (`inline`) rather than downloaded: only images the server decoded
    /// itself, and thumbnails (which it made). Never SVG, HTML or anything else.
    pub fn inline(&self) -> bool {
        match self.variant {
            Variant::Thumbnail => true,
            Variant::File => {
                self.upload.width.is_some() && detect::is_decodable_image(&self.upload.content_type)
            }
        }
    }

    /// The file name the response offers.
    pub fn file_name(&self) -> String {
        match self.variant {
            Variant::File => self.upload.name.clone(),
            Variant::Thumbnail => {
                let stem = self
                    .upload
                    .name
                    .rsplit_once('.')
                    .map_or(self.upload.name.as_str(), |(stem, _)| stem);
                format!("{stem}.thumbnail.jpg")
            }
        }
    }

    /// A strong validator: the same bytes always have the same tag, on every instance.
    pub fn etag(&self) -> String {
        match self.variant {
            Variant::File => self.upload.sha256.clone(),
            Variant::Thumbnail => format!("{}.thumbnail", self.upload.sha256),
        }
    }
}

/// Opens what a file link points at: 403 for a bad or expired signature (before any database
/// query), and for an upload that is no longer live (swept, or whose messages were all deleted
/// and whose bytes no live message carries); 404 when the stored file is missing.
pub async fn open_link(
    state: &AppState,
    upload_id: String,
    variant: Variant,
    expires: u64,
    signature: &str,
) -> ApiResult<Servable> {
    state
        .uploads
        .links
        .verify(&upload_id, variant, expires, signature, SystemTime::now())
        .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let upload = state
        .db
        .run(move |c| db::uploads::servable(c, &upload_id))
        .await?
        .ok_or_else(|| ApiError::Forbidden("this file is no longer available".into()))?;
    if variant == Variant::Thumbnail && !upload.has_thumbnail {
        return Err(ApiError::not_found("thumbnail"));
    }
    let key = match variant {
        Variant::File => BlobKey::original(&upload.sha256),
        Variant::Thumbnail => BlobKey::thumbnail(&upload.sha256),
    }
    .ok_or_else(|| ApiError::internal("an upload row holds a malformed hash"))?;
    let opened = state
        .uploads
        .io(move |store| {
            store
                .open(&key)?
                .map(|f| f.metadata().map(|m| (f, m.len())))
                .transpose()
        })
        .await?;
    let Some((file, len)) = opened else {
        tracing::error!(upload = %upload.id, "the stored file of a live upload is missing");
        return Err(ApiError::not_found("file"));
    };
    Ok(Servable {
        upload,
        variant,
        file: Arc::new(file),
        len,
    })
}

/// The uploads `ids` names, in that order, if each is one of `sender`'s own (sent before or
/// not) among `found` (the uploads the writer read for its batch, by id); else 422
/// `validation_failed` naming `attachments`.
pub fn owned_for_send(
    found: &HashMap<String, UploadRow>,
    sender: UserId,
    ids: &UploadIds,
) -> ApiResult<Vec<UploadRow>> {
    ids.as_slice()
        .iter()
        .map(|id| match found.get(id) {
            Some(row) if row.uploader_id == sender => Ok(row.clone()),
            _ => Err(not_yours(id)),
        })
        .collect()
}

/// A send's attachment that is not one of the sender's uploads (or no longer exists).
pub fn not_yours(id: &str) -> ApiError {
    ApiError::validation("attachments", format!("{id:?} is not one of your uploads"))
}

/// The attachments of `messages`, each message's in the order sent, with links signed at `now`;
/// messages without any are absent. Blocking: for the queries that read messages (history, sync,
/// changes, contacts).
pub fn attachments_by_message(
    conn: &mut DbConnection,
    messages: &[MessageId],
    links: &Links,
    now: SystemTime,
) -> ApiResult<HashMap<MessageId, Vec<AttachmentData>>> {
    let mut by_message: HashMap<MessageId, Vec<AttachmentData>> = HashMap::new();
    for (message, upload) in db::uploads::attachments_of(conn, messages)? {
        by_message
            .entry(message)
            .or_default()
            .push(attachment_data(upload, links, now));
    }
    Ok(by_message)
}

/// `upload` as messages carry it, its links signed at `now` (see [`Links::sign`]).
pub fn attachment_data(upload: UploadRow, links: &Links, now: SystemTime) -> AttachmentData {
    let urls = links.sign(&upload, now);
    AttachmentData {
        id: upload.id,
        name: upload.name,
        content_type: upload.content_type,
        size: upload.size,
        sha256: upload.sha256,
        width: upload.width,
        height: upload.height,
        url: urls.url,
        thumbnail_url: urls.thumbnail_url,
    }
}
