//! Where uploaded bytes are kept: a content-addressed blob store behind a small trait, so that an
//! S3-compatible store can be added beside the local folder. Every method blocks (file-system or
//! network I/O): callers run them on the upload threads, never on the async executor.
//!
//! A blob is named by the SHA-256 of its bytes ([`BlobKey`]), so the same bytes are stored once
//! however many uploads name them. An upload's bytes are streamed to a temporary file first
//! ([`BlobStore::temp_file`]) and published under their name only once complete
//! ([`BlobStore::put`]): a crash never leaves a partial blob under a final name.

pub mod local;

use std::fs::File;
use std::io;
use std::time::SystemTime;

pub use local::LocalStore;

/// What a blob is: an upload's bytes as received, or the thumbnail made from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobKind {
    Original,
    Thumbnail,
}

/// A blob's name: the SHA-256 of the upload's bytes (64 lowercase hex digits) and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey {
    sha256: String,
    pub kind: BlobKind,
}

impl BlobKey {
    /// `None` unless `sha256` is 64 lowercase hex digits (so a key is always a safe file name).
    pub fn new(sha256: &str, kind: BlobKind) -> Option<BlobKey> {
        let valid = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| BlobKey {
            sha256: sha256.to_owned(),
            kind,
        })
    }

    pub fn original(sha256: &str) -> Option<BlobKey> {
        Self::new(sha256, BlobKind::Original)
    }

    pub fn thumbnail(sha256: &str) -> Option<BlobKey> {
        Self::new(sha256, BlobKind::Thumbnail)
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// A file being written, not yet under any blob's name; deleted when dropped unless published
/// with [`BlobStore::put`].
pub type TempBlob = tempfile::NamedTempFile;

/// Starts writing `len` bytes of `file` from `offset` to disk without waiting
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so a large file goes out in steps, at the
/// calling thread's I/O priority, instead of all at its final sync. Best effort; elsewhere than
/// Linux, nothing.
pub fn start_writeback(file: &std::fs::File, offset: u64, len: usize) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: a plain system call on an open file descriptor; it only starts write-out.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// A content-addressed store of uploaded bytes.
pub trait BlobStore: Send + Sync + 'static {
    /// A new empty temporary file to stream an upload into (for the local store: in its own
    /// folder, so that publishing it is a rename within one file system).
    fn temp_file(&self) -> io::Result<TempBlob>;

    /// Publishes the complete, synced `file` under `key`, atomically: readers see the old blob
    /// or the new one, never a partial file. Publishing bytes already stored under `key` (the
    /// same hash) replaces them with identical bytes and counts as a new write for
    /// [`BlobStore::remove_if_stale`].
    fn put(&self, key: &BlobKey, file: TempBlob) -> io::Result<()>;

    /// The blob's bytes, to serve; `None` when there is no such blob.
    fn open(&self, key: &BlobKey) -> io::Result<Option<File>>;

    fn exists(&self, key: &BlobKey) -> io::Result<bool>;

    /// Deletes the blob (none: no error).
    fn delete(&self, key: &BlobKey) -> io::Result<()>;

    /// Every blob last written before `before`, for the sweep.
    fn list_written_before(&self, before: SystemTime) -> io::Result<Vec<BlobKey>>;

    /// Deletes the blob unless it was written at or after `before`, also when that write races
    /// with this call. The sweep calls it for blobs no upload named when it looked; an upload
    /// publishes its blob before committing its row, so a blob published after the sweep looked
    /// was written after `before` and survives. Returns whether a blob was deleted.
    fn remove_if_stale(&self, key: &BlobKey, before: SystemTime) -> io::Result<bool>;

    /// Removes leftovers of interrupted writes (temporary files) older than `before`; returns
    /// how many.
    fn remove_leftovers(&self, before: SystemTime) -> io::Result<usize>;
}
