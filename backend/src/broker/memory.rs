//! The in-process hub: one task alone owns the map of user → connections, fed by an
//! unbounded command channel (it only does map look-ups and non-blocking queue pushes, so it
//! outpaces any producer that has to commit to the database first). Each connection's own queue
//! is bounded: a connection whose queue is full is dropped — its session closes the socket and
//! the client re-syncs on reconnect — so one slow reader never delays anyone else and never
//! grows the server's memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TrySendError};

use super::{Broker, ConnId, Event, InstanceId, Origin, Outbox, Recipients};
use crate::domain::UserId;
use crate::metrics::BrokerMetrics;

enum Command {
    Subscribe(UserId, ConnId, Outbox),
    Unsubscribe(UserId, ConnId),
    /// The connection to skip, if it is one of this instance's.
    Publish(Recipients, Option<ConnId>, Event),
    /// To every connection of this instance.
    Broadcast(Event),
}

pub struct MemoryBroker {
    instance: InstanceId,
    commands: mpsc::UnboundedSender<Command>,
    connections: Arc<AtomicUsize>,
}

impl MemoryBroker {
    /// Starts the hub of server instance `instance` on the current tokio runtime.
    pub fn start(instance: InstanceId) -> MemoryBroker {
        MemoryBroker::start_with_metrics(instance, BrokerMetrics::disabled())
    }

    /// As [`MemoryBroker::start`], recording publishes, deliveries and drops in `metrics`.
    pub fn start_with_metrics(instance: InstanceId, metrics: BrokerMetrics) -> MemoryBroker {
        let (tx, rx) = mpsc::unbounded_channel();
        let connections = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(rx, Arc::clone(&connections), metrics));
        MemoryBroker {
            instance,
            commands: tx,
            connections,
        }
    }

    /// Delivers `event` to every connection of this instance.
    pub fn broadcast(&self, event: Event) {
        let _ = self.commands.send(Command::Broadcast(event));
    }
}

impl Broker for MemoryBroker {
    fn instance(&self) -> InstanceId {
        self.instance
    }

    fn subscribe(&self, user: UserId, conn: ConnId, outbox: Outbox) {
        let _ = self.commands.send(Command::Subscribe(user, conn, outbox));
    }

    fn unsubscribe(&self, user: UserId, conn: ConnId) {
        let _ = self.commands.send(Command::Unsubscribe(user, conn));
    }

    fn publish(&self, to: Recipients, exclude: Option<Origin>, event: Event) {
        let exclude = exclude
            .filter(|o| o.instance == self.instance)
            .map(|o| o.conn);
        let _ = self.commands.send(Command::Publish(to, exclude, event));
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Command>,
    count: Arc<AtomicUsize>,
    metrics: BrokerMetrics,
) {
    // Most users have one or two connections: a small vector beats a map per user.
    let mut subs: HashMap<UserId, Vec<(ConnId, Outbox)>> = HashMap::new();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::Subscribe(user, conn, outbox) => {
                subs.entry(user).or_default().push((conn, outbox));
                count.fetch_add(1, Ordering::Relaxed);
            }
            Command::Unsubscribe(user, conn) => {
                remove(&mut subs, user, conn, &count);
            }
            Command::Publish(to, exclude, event) => {
                let mut slow: Vec<(UserId, ConnId)> = Vec::new();
                let mut delivered = 0;
                to.for_each(|user| {
                    if let Some(conns) = subs.get(&user) {
                        delivered += deliver(user, conns, exclude, &event, &mut slow, &metrics);
                    }
                });
                metrics.published(delivered);
                for (user, conn) in slow {
                    remove(&mut subs, user, conn, &count);
                }
            }
            Command::Broadcast(event) => {
                let mut slow: Vec<(UserId, ConnId)> = Vec::new();
                let mut delivered = 0;
                for (user, conns) in &subs {
                    delivered += deliver(*user, conns, None, &event, &mut slow, &metrics);
                }
                metrics.published(delivered);
                for (user, conn) in slow {
                    remove(&mut subs, user, conn, &count);
                }
            }
        }
    }
}

/// Queues `event` on each of `user`'s connections but `exclude`; notes those to drop. Returns
/// how many took it.
fn deliver(
    user: UserId,
    conns: &[(ConnId, Outbox)],
    exclude: Option<ConnId>,
    event: &Event,
    slow: &mut Vec<(UserId, ConnId)>,
    metrics: &BrokerMetrics,
) -> u64 {
    let mut delivered = 0;
    for (conn, outbox) in conns {
        if Some(*conn) == exclude {
            continue;
        }
        match outbox.try_send(event.clone()) {
            Ok(()) => delivered += 1,
            Err(TrySendError::Full(_)) => {
                metrics.dropped.increment(1);
                tracing::warn!(user = %user, conn = conn.0, "dropping a connection that does not keep up");
                slow.push((user, *conn));
            }
            Err(TrySendError::Closed(_)) => slow.push((user, *conn)),
        }
    }
    delivered
}

fn remove(
    subs: &mut HashMap<UserId, Vec<(ConnId, Outbox)>>,
    user: UserId,
    conn: ConnId,
    count: &AtomicUsize,
) {
    if let Some(conns) = subs.get_mut(&user) {
        let before = conns.len();
        conns.retain(|(c, _)| *c != conn);
        if conns.len() < before {
            count.fetch_sub(1, Ordering::Relaxed);
        }
        if conns.is_empty() {
            subs.remove(&user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &str) -> Event {
        Event::Revoked { jti: s.into() }
    }

    fn text(o: Event) -> String {
        match o {
            Event::Revoked { jti } => jti.to_string(),
            other => format!("{other:?}"),
        }
    }

    const HERE: InstanceId = InstanceId(7);

    #[tokio::test]
    async fn routes_by_user_excluding_the_sender_in_order() {
        let b = MemoryBroker::start(HERE);
        let (tx1, mut rx1) = mpsc::channel(16);
        let (tx2, mut rx2) = mpsc::channel(16);
        let (tx3, mut rx3) = mpsc::channel(16);
        b.subscribe(UserId(1), ConnId(1), tx1);
        b.subscribe(UserId(1), ConnId(2), tx2);
        b.subscribe(UserId(2), ConnId(3), tx3);
        for i in 0..5 {
            b.publish(
                Recipients::Pair(UserId(1), UserId(2)),
                Some(Origin {
                    instance: HERE,
                    conn: ConnId(1),
                }),
                frame(&i.to_string()),
            );
        }
        for i in 0..5 {
            assert_eq!(text(rx2.recv().await.unwrap()), i.to_string());
            assert_eq!(text(rx3.recv().await.unwrap()), i.to_string());
        }
        b.publish(Recipients::One(UserId(1)), None, frame("x"));
        assert_eq!(text(rx1.recv().await.unwrap()), "x");
        assert_eq!(b.connections(), 3);
        // The same connection id on another instance is another connection.
        let elsewhere = Origin {
            instance: InstanceId(8),
            conn: ConnId(1),
        };
        b.publish(Recipients::One(UserId(1)), Some(elsewhere), frame("y"));
        assert_eq!(text(rx1.recv().await.unwrap()), "y");
        assert_eq!(text(rx2.recv().await.unwrap()), "x");
        assert_eq!(text(rx2.recv().await.unwrap()), "y");
    }

    #[tokio::test]
    async fn a_full_queue_drops_only_that_connection() {
        let b = MemoryBroker::start(HERE);
        let (slow_tx, mut slow_rx) = mpsc::channel(2);
        let (fast_tx, mut fast_rx) = mpsc::channel(100);
        b.subscribe(UserId(1), ConnId(10), slow_tx);
        b.subscribe(UserId(1), ConnId(11), fast_tx);
        for i in 0..10 {
            b.publish(Recipients::One(UserId(1)), None, frame(&i.to_string()));
        }
        for i in 0..10 {
            assert_eq!(text(fast_rx.recv().await.unwrap()), i.to_string());
        }
        // The slow one got what fit, then its queue was closed.
        assert!(slow_rx.recv().await.is_some());
        assert!(slow_rx.recv().await.is_some());
        assert!(slow_rx.recv().await.is_none());
        assert_eq!(b.connections(), 1);
    }
}
