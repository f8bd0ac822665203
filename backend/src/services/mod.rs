//! Services: the product's rules and transactions. Handlers and WebSocket sessions call these;
//! these call the data layer.

pub mod account_deletion;
pub mod account_sessions;
pub mod accounts;
pub mod admin;
pub mod change_limit;
pub mod contacts;
pub mod heavy;
pub mod messages;
pub mod rooms;
pub mod sessions;
pub mod uploads;
pub mod writer;
