//! Row structs, one per table, as diesel reads them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{contacts, messages, rooms, users};
use crate::domain::{MessageId, RoomId, Seq, UserId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub created_at: NaiveDateTime,
    pub is_admin: bool,
    /// Set while the account is deactivated.
    pub deactivated_at: Option<NaiveDateTime>,
    /// Tokens issued in an earlier generation no longer work (a password reset moves it on).
    pub session_generation: i64,
    /// Set when the user deleted their account (it then reads `~deleted-<id>`, "Deleted user").
    pub deleted_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rooms)]
pub struct RoomRow {
    pub id: RoomId,
    pub user_low: UserId,
    pub user_high: UserId,
    pub last_seq: Seq,
    pub last_message_id: MessageId,
    pub created_at: NaiveDateTime,
    /// The room's newest change (edit, delete, reaction); 0 when none.
    pub last_change_seq: i64,
}

impl RoomRow {
    /// The member who is not `me`.
    pub fn other_member(&self, me: UserId) -> UserId {
        if self.user_low == me {
            self.user_high
        } else {
            self.user_low
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: MessageId,
    pub room_id: RoomId,
    pub seq: Seq,
    pub sender_id: UserId,
    pub client_msg_id: String,
    pub body: String,
    pub created_at: NaiveDateTime,
    /// Set when the message was deleted (by its sender or an administrator): `body` is then
    /// empty (a tombstone), its reactions and earlier bodies gone.
    pub deleted_at: Option<NaiveDateTime>,
    /// When the sender last edited it.
    pub edited_at: Option<NaiveDateTime>,
    /// The message of the same room this one answers.
    pub reply_to: Option<MessageId>,
    /// The room's change that last touched it (0: never changed).
    pub change_seq: i64,
}

/// The reactions with one emoji to a message: who reacted, in the order they did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionGroup {
    pub emoji: String,
    pub user_ids: Vec<UserId>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = contacts)]
pub struct ContactRow {
    pub owner_id: UserId,
    pub contact_id: UserId,
    pub room_id: RoomId,
    pub created_at: NaiveDateTime,
}
