//! The periodic sweep: deletes uploads never sent within `LETSCHAT_UNSENT_UPLOAD_TTL` (24 h),
//! uploads no message carries any more (their messages were deleted), and then every stored
//! file no upload names. Every instance sweeps; sweeps and uploads may race freely (see
//! [`crate::storage::BlobStore::remove_if_stale`]).

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use chrono::NaiveDateTime;

use crate::db::{self, uploads::RowsSwept};
use crate::error::ApiResult;
use crate::state::AppState;

/// What a sweep deletes.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    /// Unsent uploads that arrived before this.
    pub unsent_before: NaiveDateTime,
    /// Stored files nothing names, last written before this.
    pub files_before: SystemTime,
    /// Leftovers of interrupted uploads (temporary files) last written before this.
    pub leftovers_before: SystemTime,
}

impl Cutoffs {
    /// The cut-offs of a sweep now, by the configuration.
    pub fn now(state: &AppState) -> Cutoffs {
        let config = state.uploads.config();
        let now = SystemTime::now();
        Cutoffs {
            unsent_before: db::now()
                - chrono::Duration::from_std(config.unsent_ttl)
                    .unwrap_or(chrono::Duration::days(1)),
            files_before: now - config.sweep_grace,
            // A temporary file being written is at most the body deadline old.
            leftovers_before: now - config.body_timeout - Duration::from_secs(3600),
        }
    }
}

/// What a sweep deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub rows: RowsSwept,
    /// Stored files (bytes and thumbnails).
    pub files: usize,
    /// Temporary files of interrupted uploads.
    pub leftovers: usize,
}

/// Deletes the rows, then the files, that nothing uses any more.
pub async fn sweep(state: &AppState, cutoffs: Cutoffs) -> ApiResult<Swept> {
    let unsent_before = cutoffs.unsent_before;
    let rows = state
        .db
        .run(move |c| db::uploads::sweep_rows(c, unsent_before))
        .await?;
    let files_before = cutoffs.files_before;
    let candidates = state
        .uploads
        .io(move |store| store.list_written_before(files_before))
        .await?;
    let hashes: Vec<String> = candidates
        .iter()
        .map(|k| k.sha256().to_owned())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let named = state
        .db
        .run(move |c| db::uploads::named_hashes(c, &hashes))
        .await?;
    let unnamed: Vec<_> = candidates
        .into_iter()
        .filter(|k| !named.contains(k.sha256()))
        .collect();
    let leftovers_before = cutoffs.leftovers_before;
    let (files, leftovers) = state
        .uploads
        .io(move |store| {
            let mut files = 0;
            for key in &unnamed {
                if store.remove_if_stale(key, files_before)? {
                    files += 1;
                }
            }
            Ok((files, store.remove_leftovers(leftovers_before)?))
        })
        .await?;
    let swept = Swept {
        rows,
        files,
        leftovers,
    };
    if swept != Swept::default() {
        tracing::info!(?swept, "upload sweep");
    }
    Ok(swept)
}

/// Sweeps every `sweep_interval`, for as long as the server runs; before each sweep, finishes
/// the erasure of deleted accounts that a crash interrupted (which frees their files for it).
pub fn spawn(state: AppState) {
    let every = state.uploads.config().sweep_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = crate::services::account_deletion::finish_interrupted(&state).await {
                tracing::warn!(error = %e, "finishing deleted accounts failed; the next sweep tries again");
            }
            if let Err(e) = sweep(&state, Cutoffs::now(&state)).await {
                tracing::warn!(error = %e, "upload sweep failed; the next one tries again");
            }
        }
    });
}
