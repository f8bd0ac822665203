//! Queries on `sessions`: one row per token issued by register or login. A session ends by
//! deleting its row; every request's token check (`db::admin::access`) reads the row, so an
//! ended session's token is refused at once, on every instance.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::sessions;
use super::{is_unique_violation, DbConnection};
use crate::domain::{SessionId, UserId};
use crate::error::ApiResult;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: NaiveDateTime,
    /// Moved on by requests, at most once a minute (see `services::accounts`), and about once a
    /// minute while a WebSocket opened with its token is open (`services::sessions`).
    pub last_seen_at: NaiveDateTime,
    /// The token's expiry.
    pub expires_at: NaiveDateTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id: SessionId,
    pub user: UserId,
    pub expires_at: NaiveDateTime,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// Opens a session, seen now. `Ok(false)` when its (random) id is taken: the caller draws
/// another.
pub fn open(conn: &mut DbConnection, new: &NewSession<'_>, now: NaiveDateTime) -> ApiResult<bool> {
    // A savepoint, so that a taken id leaves an outer transaction usable.
    let inserted = conn.transaction(|c| {
        diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(new.id),
                sessions::user_id.eq(new.user),
                sessions::created_at.eq(now),
                sessions::last_seen_at.eq(now),
                sessions::expires_at.eq(new.expires_at),
                sessions::user_agent.eq(new.user_agent),
                sessions::ip.eq(new.ip),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `user`'s sessions whose token has not expired at `now`, most recently seen first, at most
/// `limit`.
pub fn list(
    conn: &mut DbConnection,
    user: UserId,
    now: NaiveDateTime,
    limit: i64,
) -> ApiResult<Vec<SessionRow>> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user))
        .filter(sessions::expires_at.gt(now))
        .order((sessions::last_seen_at.desc(), sessions::id.desc()))
        .limit(limit)
        .select(SessionRow::as_select())
        .load(conn)?)
}

/// Ends `user`'s session `id`; false when `user` has no such session.
pub fn end(conn: &mut DbConnection, user: UserId, id: SessionId) -> ApiResult<bool> {
    Ok(diesel::delete(
        sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::user_id.eq(user)),
    )
    .execute(conn)?
        > 0)
}

/// Ends every session of `user` but `keep` (every one with `None`); returns the ended ones.
pub fn end_all_but(
    conn: &mut DbConnection,
    user: UserId,
    keep: Option<SessionId>,
) -> ApiResult<Vec<SessionId>> {
    let mine = sessions::table.filter(sessions::user_id.eq(user));
    Ok(match keep {
        Some(keep) => diesel::delete(mine.filter(sessions::id.ne(keep)))
            .returning(sessions::id)
            .get_results(conn)?,
        None => diesel::delete(mine)
            .returning(sessions::id)
            .get_results(conn)?,
    })
}

/// Moves the session's `last_seen_at` to `now` unless it was moved after `stale_before` (a
/// concurrent request did it already).
pub fn touch(
    conn: &mut DbConnection,
    id: SessionId,
    now: NaiveDateTime,
    stale_before: NaiveDateTime,
) -> ApiResult<()> {
    touch_many(conn, &[id], now, stale_before).map(|_| ())
}

/// Moves `last_seen_at` to `now` for each of `ids` (a few hundred at most: one statement) last
/// seen before `stale_before`; returns how many moved. Ended sessions are not there to move.
pub fn touch_many(
    conn: &mut DbConnection,
    ids: &[SessionId],
    now: NaiveDateTime,
    stale_before: NaiveDateTime,
) -> ApiResult<usize> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::id.eq_any(ids))
            .filter(sessions::last_seen_at.lt(stale_before)),
    )
    .set(sessions::last_seen_at.eq(now))
    .execute(conn)?)
}

/// Forgets sessions whose token has expired by `now`; returns how many.
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> ApiResult<usize> {
    Ok(diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?)
}
