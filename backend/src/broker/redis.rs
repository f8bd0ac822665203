//! The broker of one instance among several (`REDIS_URL` set): the in-process hub for this
//! instance's connections, and the [`RedisLink`] for the others.
//!
//! - `publish` hands the event to the local hub at once (connections on this instance never
//!   wait for a Redis round trip) and publishes its envelope ([`wire`]) once per recipient
//!   user to that user's channel.
//! - The instance subscribes to a user's channel while it holds a connection of theirs, and
//!   hands what arrives to the local hub for that user; its own publications come back on the
//!   channels of its own users and are skipped (they were delivered locally already).
//! - Each envelope carries the wall-clock time it was encoded at, just before it is queued to
//!   Redis; what arrives from another instance is timed against this instance's clock
//!   (`letschat_broker_lag_seconds`: Redis, the network, both queues, and any clock skew).
//! - Redis loses what it cannot deliver. After every (re)subscription every local connection
//!   gets [`Event::Recheck`] and compares its rooms with the database; a message whose seq is
//!   not the next one makes the connection replay the gap (see `ws::session`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use metrics::Histogram;
use tokio::sync::mpsc;

use super::redis_link::{Inbound, LinkConfig, LinkError, RedisLink};
use super::wire::{self, Envelope};
use super::{
    Broker, ClusterStats, ConnId, Event, InstanceId, MemoryBroker, Origin, Outbox, Recipients,
};
use crate::config::RedisConfig;
use crate::domain::UserId;
use crate::metrics::BrokerMetrics;

pub struct RedisBroker {
    local: Arc<MemoryBroker>,
    link: RedisLink,
}

impl RedisBroker {
    /// Starts the local hub and the link on the current runtime. Only a malformed URL fails: an
    /// unreachable Redis is retried, and this instance serves its own connections meanwhile.
    pub fn start(
        instance: InstanceId,
        config: &RedisConfig,
        metrics: BrokerMetrics,
    ) -> Result<RedisBroker, LinkError> {
        let lag = metrics.lag.clone();
        let local = Arc::new(MemoryBroker::start_with_metrics(instance, metrics));
        let (link, inbound) = RedisLink::start(LinkConfig {
            url: config.url.clone(),
            prefix: config.prefix.clone(),
            instance: instance.0,
            drop_publishes: config.drop_publishes.clone(),
        })?;
        tokio::spawn(receive(Arc::clone(&local), inbound, lag));
        Ok(RedisBroker { local, link })
    }

    pub fn link(&self) -> &RedisLink {
        &self.link
    }
}

impl Broker for RedisBroker {
    fn instance(&self) -> InstanceId {
        self.local.instance()
    }

    fn subscribe(&self, user: UserId, conn: ConnId, outbox: Outbox) {
        self.link.watch(user);
        self.local.subscribe(user, conn, outbox);
    }

    fn unsubscribe(&self, user: UserId, conn: ConnId) {
        self.local.unsubscribe(user, conn);
        self.link.unwatch(user);
    }

    fn publish(&self, to: Recipients, exclude: Option<Origin>, event: Event) {
        if !matches!(event, Event::Recheck) {
            let envelope = Envelope {
                origin: self.local.instance(),
                recipients: to.clone(),
                exclude,
                event: event.clone(),
                sent_at_us: Some(wire::now_us()),
            };
            match wire::encode(&envelope) {
                Ok(bytes) => {
                    let payload = Bytes::from(bytes);
                    to.for_each(|user| self.link.publish(user, payload.clone()));
                }
                Err(e) => {
                    tracing::error!(error = %e, "an event could not be encoded for the other instances")
                }
            }
        }
        self.local.publish(to, exclude, event);
    }

    fn connections(&self) -> usize {
        self.local.connections()
    }

    fn cluster_status(&self) -> Option<bool> {
        Some(self.link.is_up())
    }

    fn cluster_stats(&self) -> Option<ClusterStats> {
        let s = self.link.stats();
        Some(ClusterStats {
            connected: self.link.is_up(),
            published: s.published.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            received: s.received.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
        })
    }
}

/// Hands what arrives from the other instances to the local hub, timing each on the way.
async fn receive(local: Arc<MemoryBroker>, mut inbound: mpsc::Receiver<Inbound>, lag: Histogram) {
    let here = local.instance();
    let mut unreadable: u64 = 0;
    while let Some(item) = inbound.recv().await {
        match item {
            Inbound::Event { user, payload } => match wire::decode(&payload) {
                // Delivered locally when it was published.
                Ok(envelope) if envelope.origin == here => {}
                Ok(Envelope {
                    recipients,
                    exclude,
                    event,
                    sent_at_us,
                    ..
                }) => {
                    if let Some(sent) = sent_at_us {
                        lag.record(wire::lag_seconds(sent, wire::now_us()));
                    }
                    let mut meant = false;
                    recipients.for_each(|u| meant |= u == user);
                    if meant && !matches!(event, Event::Recheck) {
                        local.publish(Recipients::One(user), exclude, event);
                    }
                }
                Err(e) => {
                    unreadable += 1;
                    // An instance of another version during a rolling upgrade, say: log the
                    // first and then every thousandth.
                    if unreadable % 1000 == 1 {
                        tracing::warn!(error = %e, unreadable, "an event from another instance could not be read");
                    }
                }
            },
            Inbound::Resubscribed => local.broadcast(Event::Recheck),
            // What was published for the user between their connection reading the database
            // and this subscription taking effect is in the database only.
            Inbound::Watching(user) => local.publish(Recipients::One(user), None, Event::Recheck),
        }
    }
}
