//! Queries on `messages`: look-ups and cursor pages (the message writer inserts through
//! `batch` and `batch_pg`).

use diesel::prelude::*;

use std::collections::HashMap;

use super::models::{MessageRow, ReactionGroup};
use super::schema::{messages, reactions, room_members};
use super::DbConnection;
use crate::domain::{MessageId, RoomId, Seq, UserId};
use crate::error::ApiResult;

pub fn find_many(conn: &mut DbConnection, ids: &[MessageId]) -> ApiResult<Vec<MessageRow>> {
    Ok(messages::table
        .filter(messages::id.eq_any(ids))
        .select(MessageRow::as_select())
        .load(conn)?)
}

/// The reactions to each of `ids` that has any: one group per emoji, in the order each emoji
/// was first added, its users in the order they reacted (one query per 5,000 messages).
pub fn reactions_of(
    conn: &mut DbConnection,
    ids: &[MessageId],
) -> ApiResult<HashMap<MessageId, Vec<ReactionGroup>>> {
    let mut groups: HashMap<MessageId, Vec<ReactionGroup>> = HashMap::new();
    for chunk in ids.chunks(5_000) {
        let rows: Vec<(MessageId, String, crate::domain::UserId)> = reactions::table
            .filter(reactions::message_id.eq_any(chunk))
            .order(reactions::id.asc())
            .select((reactions::message_id, reactions::emoji, reactions::user_id))
            .load(conn)?;
        for (message, emoji, user) in rows {
            add_reaction(groups.entry(message).or_default(), emoji, user);
        }
    }
    Ok(groups)
}

/// One message's reactions `(emoji, user)`, oldest first, grouped by emoji.
pub fn group_reactions(reacted: Vec<(String, crate::domain::UserId)>) -> Vec<ReactionGroup> {
    let mut groups = Vec::new();
    for (emoji, user) in reacted {
        add_reaction(&mut groups, emoji, user);
    }
    groups
}

fn add_reaction(groups: &mut Vec<ReactionGroup>, emoji: String, user: crate::domain::UserId) {
    match groups.iter_mut().find(|g| g.emoji == emoji) {
        Some(g) => g.user_ids.push(user),
        None => groups.push(ReactionGroup {
            emoji,
            user_ids: vec![user],
        }),
    }
}

/// `rows` with their reactions (one query; none for a page without reactions' rows).
pub fn with_reactions(
    conn: &mut DbConnection,
    rows: Vec<MessageRow>,
) -> ApiResult<Vec<(MessageRow, Vec<ReactionGroup>)>> {
    let ids: Vec<MessageId> = rows
        .iter()
        .filter(|r| r.deleted_at.is_none())
        .map(|r| r.id)
        .collect();
    let mut groups = if ids.is_empty() {
        HashMap::new()
    } else {
        reactions_of(conn, &ids)?
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let g = groups.remove(&r.id).unwrap_or_default();
            (r, g)
        })
        .collect())
}

/// A message of `room` by id.
pub fn find_in_room(
    conn: &mut DbConnection,
    room: RoomId,
    id: MessageId,
) -> ApiResult<Option<MessageRow>> {
    Ok(messages::table
        .find(id)
        .filter(messages::room_id.eq(room))
        .select(MessageRow::as_select())
        .first(conn)
        .optional()?)
}

/// How many deleted messages each of `rooms` has after `user`'s read marker (rooms with none
/// are left out): one query for all of them, by the partial index of deleted messages.
pub fn deleted_unread(
    conn: &mut DbConnection,
    user: UserId,
    rooms: &[RoomId],
) -> ApiResult<HashMap<RoomId, i64>> {
    let mut counts = HashMap::new();
    // In chunks: both databases cap the number of bound parameters.
    for chunk in rooms.chunks(10_000) {
        let rows = messages::table
            .inner_join(
                room_members::table.on(room_members::room_id
                    .eq(messages::room_id)
                    .and(room_members::user_id.eq(user))),
            )
            .filter(messages::room_id.eq_any(chunk))
            .filter(messages::deleted_at.is_not_null())
            .filter(messages::seq.gt(room_members::read_up_to))
            .group_by(messages::room_id)
            .select((messages::room_id, diesel::dsl::count_star()))
            .load::<(i64, i64)>(conn)?;
        counts.extend(rows.into_iter().map(|(room, n)| (RoomId(room), n)));
    }
    Ok(counts)
}

/// Where a page of history starts.
#[derive(Debug, Clone, Copy)]
pub enum Cursor {
    /// The newest messages.
    Latest,
    /// Messages with seq < this, the newest of them.
    Before(Seq),
    /// Messages with seq > this, the oldest of them.
    After(Seq),
    /// Messages with after < seq < before, the oldest of them.
    Between(Seq, Seq),
}

/// Up to `limit` messages in ascending seq order, and whether more lie beyond them in the
/// direction of the cursor (older for `Latest`/`Before`, newer for `After`/`Between`).
pub fn page(
    conn: &mut DbConnection,
    room: RoomId,
    cursor: Cursor,
    limit: i64,
) -> ApiResult<(Vec<MessageRow>, bool)> {
    let base = messages::table
        .filter(messages::room_id.eq(room))
        .select(MessageRow::as_select())
        .limit(limit + 1);
    let mut rows: Vec<MessageRow> = match cursor {
        Cursor::Latest => base.order(messages::seq.desc()).load(conn)?,
        Cursor::Before(s) => base
            .filter(messages::seq.lt(s.0))
            .order(messages::seq.desc())
            .load(conn)?,
        Cursor::After(s) => base
            .filter(messages::seq.gt(s.0))
            .order(messages::seq.asc())
            .load(conn)?,
        Cursor::Between(after, before) => base
            .filter(messages::seq.gt(after.0))
            .filter(messages::seq.lt(before.0))
            .order(messages::seq.asc())
            .load(conn)?,
    };
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if matches!(cursor, Cursor::Latest | Cursor::Before(_)) {
        rows.reverse();
    }
    Ok((rows, has_more))
}

/// The oldest messages after `after`: at most `max_rows`, and no more than `max_bytes` counting
/// each body's bytes plus `per_row` (at least one message, however large), with whether more
/// follow. The sizes are read first (a few bytes a row), so a page of large messages is never
/// loaded whole only to be cut: a `sync` page stays bounded in bytes, not only in rows.
pub fn page_after_bytes(
    conn: &mut DbConnection,
    room: RoomId,
    after: Seq,
    max_rows: i64,
    max_bytes: usize,
    per_row: usize,
) -> ApiResult<(Vec<MessageRow>, bool)> {
    use diesel::dsl::sql;
    use diesel::sql_types::BigInt;
    let sizes: Vec<(i64, i64)> = messages::table
        .filter(messages::room_id.eq(room))
        .filter(messages::seq.gt(after.0))
        .order(messages::seq.asc())
        .select((
            messages::seq,
            sql::<BigInt>("CAST(octet_length(body) AS BIGINT)"),
        ))
        .limit(max_rows + 1)
        .load(conn)?;
    let mut total = 0usize;
    let mut take = 0usize;
    for (_, len) in sizes.iter().take(max_rows.max(1) as usize) {
        let size = usize::try_from(*len)
            .unwrap_or(usize::MAX)
            .saturating_add(per_row);
        if take > 0 && total.saturating_add(size) > max_bytes {
            break;
        }
        total = total.saturating_add(size);
        take += 1;
    }
    if take == 0 {
        return Ok((Vec::new(), false));
    }
    let (rows, more) = page(conn, room, Cursor::After(after), take as i64)?;
    Ok((rows, more || sizes.len() > take))
}

/// Like [`page`], and at most `max_bytes` of message JSON: a page that would be larger keeps
/// the messages nearest its cursor (the newest when paging back, the oldest when paging
/// forward) and reports `has_more`. At least one message is always returned, so paging moves.
pub fn page_capped(
    conn: &mut DbConnection,
    room: RoomId,
    cursor: Cursor,
    limit: i64,
    max_bytes: usize,
) -> ApiResult<(Vec<MessageRow>, bool)> {
    let (mut rows, has_more) = page(conn, room, cursor, limit)?;
    let cut = cap_bytes(&mut rows, cursor, max_bytes);
    Ok((rows, has_more || cut))
}

/// Bytes a message takes in a JSON response, at most: its escaped strings plus room for the
/// numbers, timestamps and keys. Reactions are not counted: a message of a two-member room
/// carries at most 20 emoji × 2 users, about 1.5 KiB in the worst case.
pub fn json_size(m: &MessageRow) -> usize {
    json_size_parts(&m.body, &m.client_msg_id)
}

/// [`json_size`] of a message with this body and `client_msg_id`.
pub fn json_size_parts(body: &str, client_msg_id: &str) -> usize {
    const FIXED: usize = 400;
    FIXED + json_string_size(body) + json_string_size(client_msg_id)
}

fn json_string_size(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// Drops messages far from the cursor until the page fits `max_bytes`; true when any went.
fn cap_bytes(rows: &mut Vec<MessageRow>, cursor: Cursor, max_bytes: usize) -> bool {
    let newest_first = matches!(cursor, Cursor::Latest | Cursor::Before(_));
    cap_page(rows, newest_first, max_bytes, json_size)
}

/// Drops items far from the cursor (the first ones when `newest_first`, else the last ones)
/// until their `size`s add up to at most `max_bytes`, keeping at least one; true when any went.
pub fn cap_page<T>(
    items: &mut Vec<T>,
    newest_first: bool,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> bool {
    let mut total = 0usize;
    let mut keep = 0usize;
    let sizes: Box<dyn Iterator<Item = usize> + '_> = if newest_first {
        Box::new(items.iter().rev().map(&size))
    } else {
        Box::new(items.iter().map(&size))
    };
    for item_size in sizes {
        total = total.saturating_add(item_size);
        if keep > 0 && total > max_bytes {
            break;
        }
        keep += 1;
    }
    if keep == items.len() {
        return false;
    }
    if newest_first {
        items.drain(..items.len() - keep);
    } else {
        items.truncate(keep);
    }
    true
}

/// Messages `sender` sent that are not deleted, with an id above `after`, in id order, at most
/// `limit`: `(id, room)` (the sender's index, paged by id).
pub fn live_of_sender(
    conn: &mut DbConnection,
    sender: crate::domain::UserId,
    after: MessageId,
    limit: i64,
) -> ApiResult<Vec<(MessageId, RoomId)>> {
    Ok(messages::table
        .filter(messages::sender_id.eq(sender))
        .filter(messages::id.gt(after))
        .filter(messages::deleted_at.is_null())
        .order(messages::id.asc())
        .limit(limit)
        .select((messages::id, messages::room_id))
        .load(conn)?)
}

/// A reaction someone left, as the erasure of their account takes it back.
#[derive(Debug, Clone)]
pub struct LeftReaction {
    /// The reaction's row: the erasure pages by it.
    pub id: i64,
    pub message: MessageId,
    pub room: RoomId,
    pub emoji: String,
}

/// Reactions `user` left, with an id above `after`, oldest first, at most `limit` (the
/// reactions' user index, paged by id).
pub fn reactions_of_user(
    conn: &mut DbConnection,
    user: crate::domain::UserId,
    after: i64,
    limit: i64,
) -> ApiResult<Vec<LeftReaction>> {
    Ok(reactions::table
        .inner_join(messages::table)
        .filter(reactions::user_id.eq(user))
        .filter(reactions::id.gt(after))
        .order(reactions::id.asc())
        .limit(limit)
        .select((
            reactions::id,
            reactions::message_id,
            messages::room_id,
            reactions::emoji,
        ))
        .load::<(i64, MessageId, RoomId, String)>(conn)?
        .into_iter()
        .map(|(id, message, room, emoji)| LeftReaction {
            id,
            message,
            room,
            emoji,
        })
        .collect())
}

#[cfg(test)]
mod byte_cap_tests {
    use super::*;
    use crate::domain::UserId;

    fn row(seq: i64, body: &str) -> MessageRow {
        MessageRow {
            id: MessageId(seq),
            room_id: RoomId(1),
            seq: Seq(seq),
            sender_id: UserId(1),
            client_msg_id: format!("c{seq}"),
            body: body.to_owned(),
            created_at: chrono::DateTime::from_timestamp(0, 0).unwrap().naive_utc(),
            deleted_at: None,
            edited_at: None,
            reply_to: None,
            change_seq: 0,
        }
    }

    fn seqs(rows: &[MessageRow]) -> Vec<i64> {
        rows.iter().map(|r| r.seq.0).collect()
    }

    #[test]
    fn keeps_the_messages_nearest_the_cursor() {
        let big = "😀".repeat(1000);
        let page = || (1..=5).map(|s| row(s, &big)).collect::<Vec<_>>();
        let cap = 2 * json_size(&row(1, &big)) + 10;
        let mut back = page();
        assert!(cap_bytes(&mut back, Cursor::Latest, cap));
        assert_eq!(seqs(&back), vec![4, 5]);
        let mut forward = page();
        assert!(cap_bytes(&mut forward, Cursor::After(Seq(0)), cap));
        assert_eq!(seqs(&forward), vec![1, 2]);
        let mut one = page();
        assert!(cap_bytes(&mut one, Cursor::Before(Seq(9)), 1));
        assert_eq!(seqs(&one), vec![5]);
        let mut all = page();
        assert!(!cap_bytes(&mut all, Cursor::Latest, 1 << 20));
        assert_eq!(all.len(), 5);
    }

    #[test]
    fn size_bounds_the_serialized_message() {
        let m = row(i64::MAX, "quote \" backslash \\ line\nfeed \u{1} 😀 שלום");
        let mut wide = m.clone();
        wide.id = MessageId(i64::MAX);
        wide.room_id = RoomId(i64::MAX);
        wide.sender_id = UserId(i64::MAX);
        wide.deleted_at = Some(m.created_at);
        wide.edited_at = Some(m.created_at);
        wide.reply_to = Some(MessageId(i64::MAX));
        wide.change_seq = i64::MAX;
        let json = serde_json::to_vec(&crate::api::dto::MessageDto::from(&wide)).unwrap();
        assert!(
            json.len() <= json_size(&wide),
            "{} > {}",
            json.len(),
            json_size(&wide)
        );
    }
}
