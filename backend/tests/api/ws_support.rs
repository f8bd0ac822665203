//! A real WebSocket client for tests (tokio-tungstenite).
#![allow(dead_code)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestApp;

pub struct Ws {
    pub inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `ready` frame.
    pub ready: Value,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    Code(u16),
    /// The stream ended without a close frame.
    Dropped,
}

impl TestApp {
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/api/ws", self.port)
    }

    /// Connects with the token in the `Authorization` header and waits for `ready`.
    pub async fn ws(&self, token: &str) -> Ws {
        let mut req = self.ws_url().into_client_request().unwrap();
        req.headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        let (inner, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("ws connects");
        let mut ws = Ws {
            inner,
            ready: Value::Null,
        };
        ws.ready = ws.next_of("ready").await;
        ws
    }

    /// Connects without credentials (the caller sends an auth frame).
    pub async fn ws_raw(&self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        tokio_tungstenite::connect_async(self.ws_url())
            .await
            .expect("ws connects")
            .0
    }
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        self.inner
            .send(Message::text(v.to_string()))
            .await
            .expect("frame sent");
    }

    pub async fn send_msg(&mut self, room: i64, client_msg_id: &str, body: &str) {
        self.send(json!({"type":"send","room_id":room,"client_msg_id":client_msg_id,"body":body}))
            .await;
    }

    /// The next JSON text frame other than `presence` (5 s at most).
    pub async fn next(&mut self) -> Value {
        self.try_next(Duration::from_secs(5))
            .await
            .expect("a frame within 5 s")
    }

    /// The next JSON text frame other than `presence` within `wait`, or None.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self.try_next_any(left).await?;
            if f["type"] != "presence" {
                return Some(f);
            }
        }
    }

    /// The next JSON text frame of any type within `wait`, or None.
    pub async fn try_next_any(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .ok()??;
            match msg.ok()? {
                Message::Text(t) => return Some(serde_json::from_str(&t).expect("JSON frame")),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Skips frames until one of type `t`.
    pub async fn next_of(&mut self, t: &str) -> Value {
        loop {
            let f = self
                .try_next_any(Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("no {t} frame within 5 s"));
            if f["type"] == t {
                return f;
            }
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed(&mut self, wait: Duration) -> Closed {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Err(_) => panic!("not closed within {wait:?}"),
                Ok(None) => return Closed::Dropped,
                Ok(Some(Err(_))) => return Closed::Dropped,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Closed::Code(frame.map_or(1005, |f| u16::from(f.code)));
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}

impl Ws {
    /// The server ends this connection as unauthorized (its session ended, its account went):
    /// an `error` frame with code `unauthorized`, then close code 1008.
    pub async fn assert_ended_unauthorized(&mut self) {
        let e = self.next_of("error").await;
        assert_eq!(e["code"], "unauthorized", "{e}");
        assert_eq!(
            self.closed(Duration::from_secs(5)).await,
            Closed::Code(1008)
        );
    }

    /// The connection is open and answers a `ping`.
    pub async fn assert_open(&mut self) {
        self.send(json!({"type": "ping"})).await;
        self.next_of("pong").await;
    }
}

pub fn close_code(code: CloseCode) -> u16 {
    u16::from(code)
}
