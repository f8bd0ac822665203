//! Uploads and the attachments of messages: the rows that say who uploaded which bytes, which
//! messages carry them, and whether a file link may still be served.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, exists, sql};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::schema::{message_attachments, messages, uploads};
use super::DbConnection;
use crate::domain::{MessageId, UserId};
use crate::error::ApiResult;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = uploads)]
pub struct UploadRow {
    /// 32 lowercase hex digits (128 random bits).
    pub id: String,
    pub uploader_id: UserId,
    /// The file name as sent, made safe (see `services::uploads::names`).
    pub name: String,
    /// What the server detected from the bytes.
    pub content_type: String,
    pub size: i64,
    /// SHA-256 of the bytes, lowercase hex: the blob's name.
    pub sha256: String,
    /// For images the server decoded.
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub has_thumbnail: bool,
    pub created_at: NaiveDateTime,
    /// When a message first carried it; until then only its uploader has links to it.
    pub sent_at: Option<NaiveDateTime>,
}

/// Bytes `user` uploaded since `since`, and when the oldest of those uploads arrived.
pub fn used_since(
    conn: &mut DbConnection,
    user: UserId,
    since: NaiveDateTime,
) -> ApiResult<(i64, Option<NaiveDateTime>)> {
    let recent = || {
        uploads::table
            .filter(uploads::uploader_id.eq(user))
            .filter(uploads::created_at.gt(since))
    };
    let bytes: i64 = recent()
        .select(sql::<BigInt>("CAST(COALESCE(SUM(size), 0) AS BIGINT)"))
        .first(conn)?;
    let oldest: Option<NaiveDateTime> = recent()
        .select(uploads::created_at)
        .order(uploads::created_at.asc())
        .first(conn)
        .optional()?;
    Ok((bytes, oldest))
}

/// Why an upload could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertRefused {
    /// The uploader's uploads since the window's start would pass the quota; the oldest of them
    /// arrived at this time.
    OverQuota { oldest: Option<NaiveDateTime> },
}

/// Records `row` unless its uploader's uploads since `window_start`, with it, would pass
/// `quota` bytes. Call it in a transaction (the message writer's batch): the check and the
/// insert are then one (on SQLite serialized with every other writer; on PostgreSQL, two
/// instances recording uploads of one user at once may both pass).
pub fn insert_if_within_quota(
    conn: &mut DbConnection,
    row: &UploadRow,
    quota: i64,
    window_start: NaiveDateTime,
) -> ApiResult<Result<(), InsertRefused>> {
    let (used, oldest) = used_since(conn, row.uploader_id, window_start)?;
    if used.saturating_add(row.size) > quota {
        return Ok(Err(InsertRefused::OverQuota { oldest }));
    }
    diesel::insert_into(uploads::table)
        .values(row)
        .execute(conn)?;
    Ok(Ok(()))
}

pub fn find(conn: &mut DbConnection, id: &str) -> ApiResult<Option<UploadRow>> {
    Ok(uploads::table
        .find(id)
        .select(UploadRow::as_select())
        .first(conn)
        .optional()?)
}

/// The upload `id` if its links may still be served: while it is unsent (its uploader's), or
/// while a message that is not deleted carries the same bytes (this upload or another with the
/// same hash). Two indexed look-ups: the row by id, then the hash's attachments.
pub fn servable(conn: &mut DbConnection, id: &str) -> ApiResult<Option<UploadRow>> {
    let Some(row) = find(conn, id)? else {
        return Ok(None);
    };
    if row.sent_at.is_none() {
        return Ok(Some(row));
    }
    let live: bool = diesel::select(exists(
        message_attachments::table
            .inner_join(uploads::table)
            .inner_join(messages::table)
            .filter(uploads::sha256.eq(&row.sha256))
            .filter(messages::deleted_at.is_null()),
    ))
    .get_result(conn)?;
    Ok(live.then_some(row))
}

/// Of `ids`, the uploads that belong to `user` (in no particular order): what a send may attach.
pub fn owned_by(
    conn: &mut DbConnection,
    user: UserId,
    ids: &[String],
) -> ApiResult<Vec<UploadRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(uploads::table
        .filter(uploads::id.eq_any(ids))
        .filter(uploads::uploader_id.eq(user))
        .select(UploadRow::as_select())
        .load(conn)?)
}

/// The attachments of `messages`: (message, upload) ordered by message id, then as sent.
pub fn attachments_of(
    conn: &mut DbConnection,
    messages: &[MessageId],
) -> ApiResult<Vec<(MessageId, UploadRow)>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    Ok(message_attachments::table
        .inner_join(uploads::table)
        .filter(message_attachments::message_id.eq_any(messages))
        .order((
            message_attachments::message_id.asc(),
            message_attachments::position.asc(),
        ))
        .select((message_attachments::message_id, UploadRow::as_select()))
        .load(conn)?)
}

/// Uploads in all, and their bytes (each upload counted, even when its bytes are stored once for
/// several).
pub fn totals(conn: &mut DbConnection) -> ApiResult<(i64, i64)> {
    let count: i64 = uploads::table.select(count_star()).first(conn)?;
    let bytes: i64 = uploads::table
        .select(sql::<BigInt>("CAST(COALESCE(SUM(size), 0) AS BIGINT)"))
        .first(conn)?;
    Ok((count, bytes))
}

/// What one sweep of the rows removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RowsSwept {
    /// Attachments of deleted messages.
    pub detached: usize,
    /// Uploads never sent, older than the cut-off.
    pub unsent: usize,
    /// Sent uploads no message carries any more.
    pub unattached: usize,
}

/// Deletes the attachments of deleted messages, the unsent uploads that arrived before
/// `unsent_before`, and the sent uploads no message carries any more. An upload that a message
/// carries is never deleted: the attachment's foreign key refuses it (a send racing with the
/// sweep fails the sweep's statement, which the next sweep repeats).
pub fn sweep_rows(conn: &mut DbConnection, unsent_before: NaiveDateTime) -> ApiResult<RowsSwept> {
    let detached = diesel::sql_query(
        "DELETE FROM message_attachments WHERE EXISTS (SELECT 1 FROM messages m \
         WHERE m.id = message_attachments.message_id AND m.deleted_at IS NOT NULL)",
    )
    .execute(conn)?;
    let unsent = diesel::delete(
        uploads::table
            .filter(uploads::sent_at.is_null())
            .filter(uploads::created_at.lt(unsent_before)),
    )
    .execute(conn)?;
    let unattached = diesel::sql_query(
        "DELETE FROM uploads WHERE sent_at IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM message_attachments a WHERE a.upload_id = uploads.id)",
    )
    .execute(conn)?;
    Ok(RowsSwept {
        detached,
        unsent,
        unattached,
    })
}

/// Deletes `user`'s uploads that no message carries (never sent, or their messages deleted):
/// their links stop working at once, and the sweep deletes bytes no upload names any more.
pub fn delete_unattached_of(conn: &mut DbConnection, user: UserId) -> ApiResult<usize> {
    Ok(
        diesel::delete(uploads::table.filter(uploads::uploader_id.eq(user)).filter(
            diesel::dsl::not(exists(
                message_attachments::table.filter(message_attachments::upload_id.eq(uploads::id)),
            )),
        ))
        .execute(conn)?,
    )
}

/// Of `hashes`, those that some upload names.
pub fn named_hashes(conn: &mut DbConnection, hashes: &[String]) -> ApiResult<HashSet<String>> {
    let mut named = HashSet::new();
    for chunk in hashes.chunks(500) {
        let found: Vec<String> = uploads::table
            .filter(uploads::sha256.eq_any(chunk))
            .select(uploads::sha256)
            .distinct()
            .load(conn)?;
        named.extend(found);
    }
    Ok(named)
}

/// A new upload id: 128 random bits in lowercase hex.
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
