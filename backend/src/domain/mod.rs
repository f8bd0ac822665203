//! Domain types: typed ids and validated values. Request DTOs are parsed into these before any
//! service runs, so services only ever see valid input.

pub mod ids;
pub mod values;

pub use ids::{MessageId, RoomId, Seq, SessionId, UserId};
pub use values::{
    ClientMsgId, DisplayName, Emoji, MessageBody, Password, SearchQuery, UploadIds, Username,
};
