//! bcrypt hashing and verification on a bounded set of blocking threads, so that a flood of
//! logins queues here (and is turned away once the queue is full) instead of starving messaging.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};

#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    cost: u32,
    permits: Semaphore,
    /// Requests running or waiting.
    in_flight: AtomicUsize,
    max_in_flight: usize,
    /// A real hash of a random password at the configured cost: unknown users are verified
    /// against it, so a login takes as long whether or not the account exists.
    dummy_hash: String,
}

/// Decrements the in-flight count when a request leaves, however it leaves.
struct Slot<'a>(&'a AtomicUsize);
impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordHasher {
    /// Builds the hasher; computes the dummy hash, so call it off the executor.
    pub fn new(cost: u32, concurrency: usize, queue: usize) -> Result<Self, bcrypt::BcryptError> {
        let random: [u8; 16] = rand::random();
        let dummy_hash = bcrypt::hash(hex::encode(random), cost)?;
        Ok(PasswordHasher {
            inner: Arc::new(Inner {
                cost,
                permits: Semaphore::new(concurrency.max(1)),
                in_flight: AtomicUsize::new(0),
                max_in_flight: concurrency.max(1) + queue,
                dummy_hash,
            }),
        })
    }

    async fn run<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&Inner) -> T + Send + 'static,
        T: Send + 'static,
    {
        let inner = &self.inner;
        if inner.in_flight.fetch_add(1, Ordering::AcqRel) >= inner.max_in_flight {
            inner.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::RateLimited {
                retry_after_secs: 1,
            });
        }
        let _slot = Slot(&inner.in_flight);
        let _permit = inner
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("password hasher closed"))?;
        let shared = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| ApiError::internal(format!("password task failed: {e}")))
    }

    pub async fn hash(&self, password: String) -> ApiResult<String> {
        self.run(move |inner| bcrypt::hash(password, inner.cost))
            .await?
            .map_err(|e| ApiError::internal(format!("bcrypt: {e}")))
    }

    /// Verifies `password` against `hash`, or against the dummy hash when there is no account,
    /// so both cases cost the same. Returns false for `None`.
    pub async fn verify(&self, password: String, hash: Option<String>) -> ApiResult<bool> {
        self.run(move |inner| {
            let known = hash.is_some();
            let target = hash.as_deref().unwrap_or(&inner.dummy_hash);
            bcrypt::verify(password, target).unwrap_or(false) && known
        })
        .await
    }
}
