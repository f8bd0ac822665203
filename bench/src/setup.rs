//! Setup through the REST API, before anything is timed: register users, add contacts (which
//! creates the pair's room). Bounded concurrency; 429 and 503 answers are retried after a pause.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::{err, Result};

/// Every benchmark user has this password (the server runs with bcrypt cost 4).
pub const PASSWORD: &str = "bench-password-1";
/// Attempts for one request answered 429 or 503.
const ATTEMPTS: u32 = 20;

#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub username: String,
    pub token: String,
}

#[derive(Deserialize)]
struct AuthResponse {
    token: String,
}

#[derive(Deserialize)]
struct ContactResponse {
    room_id: i64,
}

impl Api {
    pub fn new(base: String) -> Result<Api> {
        Self::build(base, None)
    }

    /// A client whose connections come from `source` (a loopback address), so that the server
    /// sees that client address.
    pub fn with_source(base: String, source: Ipv4Addr) -> Result<Api> {
        Self::build(base, Some(source))
    }

    fn build(base: String, source: Option<Ipv4Addr>) -> Result<Api> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .local_address(source.map(IpAddr::V4))
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| err(format!("cannot build the HTTP client: {e}")))?;
        Ok(Api { client, base })
    }

    pub async fn healthy(&self) -> bool {
        let url = format!("{}/api/health", self.base);
        matches!(
            self.client.get(url).timeout(Duration::from_secs(2)).send().await,
            Ok(r) if r.status() == StatusCode::OK
        )
    }

    /// POSTs JSON, retrying on 429/503; returns the successful response's body.
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let mut pause = Duration::from_millis(20);
        for _ in 0..ATTEMPTS {
            let mut req = self.client.post(&url).json(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req
                .send()
                .await
                .map_err(|e| err(format!("POST {path}: {e}")))?;
            let status = res.status();
            if status.is_success() {
                return Ok(res);
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
            let text = res.text().await.unwrap_or_default();
            return Err(err(format!("POST {path}: {status}: {text}")));
        }
        Err(err(format!(
            "POST {path}: still refused after {ATTEMPTS} attempts"
        )))
    }

    pub async fn register(&self, username: &str) -> Result<Account> {
        let res = self
            .post(
                "/api/auth/register",
                None,
                &json!({"username": username, "password": PASSWORD}),
            )
            .await?;
        let auth: AuthResponse = res
            .json()
            .await
            .map_err(|e| err(format!("register {username}: {e}")))?;
        Ok(Account {
            username: username.to_owned(),
            token: auth.token,
        })
    }

    /// `owner` adds `other` as a contact; returns the pair's room.
    pub async fn add_contact(&self, owner: &Account, other: &Account) -> Result<i64> {
        let res = self
            .post(
                "/api/contacts",
                Some(&owner.token),
                &json!({"username": other.username}),
            )
            .await?;
        let contact: ContactResponse = res
            .json()
            .await
            .map_err(|e| err(format!("add contact: {e}")))?;
        Ok(contact.room_id)
    }
}

impl Api {
    /// One authenticated `GET`, not retried: its status (the body is read and dropped).
    pub async fn get_status(
        &self,
        path: &str,
        token: &str,
    ) -> reqwest::Result<reqwest::StatusCode> {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        let status = res.status();
        res.bytes().await?;
        Ok(status)
    }

    /// One `POST /api/auth/login`, not retried: the status, the token and the device token when
    /// the server gives them, and how long the answer took.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        device_token: Option<&str>,
        timeout: Duration,
    ) -> std::result::Result<LoginOutcome, reqwest::Error> {
        let mut body = json!({"username": username, "password": password});
        if let Some(d) = device_token {
            body["device_token"] = json!(d);
        }
        let res = self
            .client
            .post(format!("{}/api/auth/login", self.base))
            .json(&body)
            .timeout(timeout)
            .send()
            .await?;
        let status = res.status();
        let mut outcome = LoginOutcome {
            status,
            token: None,
            device_token: None,
        };
        if status.is_success() {
            let v: serde_json::Value = res.json().await?;
            outcome.token = v["token"].as_str().map(str::to_owned);
            outcome.device_token = v["device_token"].as_str().map(str::to_owned);
        }
        Ok(outcome)
    }

    /// Posts a message through REST (retried on 429/503).
    pub async fn post_message(
        &self,
        sender: &Account,
        room: i64,
        client_msg_id: &str,
        body: &str,
    ) -> Result<()> {
        self.post(
            &format!("/api/rooms/{room}/messages"),
            Some(&sender.token),
            &json!({"client_msg_id": client_msg_id, "body": body}),
        )
        .await
        .map(|_| ())
    }
}

impl Api {
    /// Posts a message through REST (retried on 429/503); returns its id.
    pub async fn post_message_id(
        &self,
        sender: &Account,
        room: i64,
        client_msg_id: &str,
        body: &str,
    ) -> Result<i64> {
        let res = self
            .post(
                &format!("/api/rooms/{room}/messages"),
                Some(&sender.token),
                &json!({"client_msg_id": client_msg_id, "body": body}),
            )
            .await?;
        let v: serde_json::Value = res
            .json()
            .await
            .map_err(|e| err(format!("POST message: {e}")))?;
        v["id"]
            .as_i64()
            .ok_or_else(|| err(format!("POST message: no id in {v}")))
    }

    /// Adds (`PUT`) or takes back (`DELETE`) `user`'s reaction `emoji` (URL-encoded already)
    /// to a message; returns the status.
    pub async fn react(
        &self,
        user: &Account,
        room: i64,
        message: i64,
        emoji: &str,
        add: bool,
    ) -> Result<StatusCode> {
        let url = format!(
            "{}/api/rooms/{room}/messages/{message}/reactions/{emoji}",
            self.base
        );
        let req = if add {
            self.client.put(url)
        } else {
            self.client.delete(url)
        };
        let res = req
            .bearer_auth(&user.token)
            .send()
            .await
            .map_err(|e| err(format!("reaction: {e}")))?;
        Ok(res.status())
    }
}

impl Api {
    /// One `POST /api/uploads` of `bytes` as the multipart part `file`, not retried: the status,
    /// `Retry-After` in seconds when given, and the JSON body of a success.
    pub async fn upload(
        &self,
        token: &str,
        bytes: Vec<u8>,
        file_name: &str,
        content_type: &str,
    ) -> reqwest::Result<UploadOutcome> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_owned())
            .mime_str(content_type)?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let res = self
            .client
            .post(format!("{}/api/uploads", self.base))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await?;
        let status = res.status();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = if status.is_success() {
            Some(res.json().await?)
        } else {
            res.bytes().await?;
            None
        };
        Ok(UploadOutcome {
            status,
            retry_after,
            body,
        })
    }
}

/// What one upload got.
#[derive(Debug)]
pub struct UploadOutcome {
    pub status: StatusCode,
    pub retry_after: Option<u64>,
    /// The upload's JSON (`id`, `size`, `width`, ...) when it was stored.
    pub body: Option<serde_json::Value>,
}

/// What one login got.
#[derive(Debug)]
pub struct LoginOutcome {
    pub status: StatusCode,
    pub token: Option<String>,
    pub device_token: Option<String>,
}

/// Registers `n` users named `{prefix}{i}`, `concurrency` at a time, in order.
pub async fn register_many(
    api: &Api,
    prefix: &str,
    n: usize,
    concurrency: usize,
) -> Result<Vec<Account>> {
    stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let name = format!("{prefix}{i}");
            async move { api.register(&name).await }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

/// A pair of users and their room.
#[derive(Debug, Clone)]
pub struct Pair {
    pub a: Account,
    pub b: Account,
    pub room: i64,
}

/// Registers `2n` users and makes `n` pairs of them, each with its room.
pub async fn make_pairs(
    api: &Api,
    prefix: &str,
    n: usize,
    concurrency: usize,
) -> Result<Vec<Pair>> {
    let users = register_many(api, prefix, 2 * n, concurrency).await?;
    let mut it = users.into_iter();
    let mut pairs = Vec::with_capacity(n);
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        pairs.push((a, b));
    }
    stream::iter(pairs)
        .map(|(a, b)| {
            let api = api.clone();
            async move {
                let room = api.add_contact(&a, &b).await?;
                Ok::<Pair, crate::Error>(Pair { a, b, room })
            }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}
