//! Low-priority threads for work that must not take CPU from messaging: bulk reads (a user's
//! whole room or contact list) with the JSON they render, and password hashing (which keeps its
//! own fair queue in `auth::password` and only borrows [`lower_own_priority`]).
//!
//! The threads put themselves in Linux's `SCHED_IDLE` class. A thread in that class runs on CPU
//! that no ordinary thread wants, and the kernel preempts it as soon as an ordinary thread wakes
//! on its core (a WebSocket session with a frame to read, the message writer with a batch to
//! commit): a guarantee of the scheduler, where a thread that has only lowered its nice value
//! may first finish its time slice. (In the `abuse` benchmark the two gave figures within each
//! other's noise, see docs/performance.md; the guarantee decided.)
//!
//! `SCHED_IDLE` threads still get a small share of a core that ordinary threads keep busy (the
//! scheduler weighs them 3 against 1,024 for an ordinary thread), so on a server saturated by
//! messaging, lists and logins become slow rather than stopping; a server in that state needs
//! more cores.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Moves the calling thread (only it: on Linux scheduling is per thread) to `SCHED_IDLE`. A
/// thread may always lower its own priority; nothing needs a capability. Elsewhere: no-op.
pub fn lower_own_priority(what: &str) {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: a plain system call on the calling thread (pid 0), with a valid parameter.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if rc != 0 {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "cannot lower the CPU priority of the {what} threads"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = what;
}

/// Pins the calling thread to one CPU of those it may run on: the `index`-th counted from the
/// last, so that the first CPU never runs it (and `index` past the second is left unpinned). For
/// the password hashers, which keep their cores busy during a login flood: an idle-class thread
/// that may run anywhere is preempted on one core, resumes on the other and keeps both busy and
/// their caches cold; pinned, one core is always free of it. Measured in the `abuse` benchmark
/// at 4,000 msg/s: the login flood raised messaging p99 ×1.6–3.2 in every run unpinned, ×1.2–1.5
/// in seven of eight runs pinned (see docs/performance.md). Returns the CPU, if pinned.
pub fn pin_from_last_cpu(index: usize) -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `set` is a plain bit set owned here; both calls are on the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            if libc::sched_getaffinity(0, size, &mut set) != 0 {
                return None;
            }
            let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect();
            // Never the first allowed CPU: it stays free of the pinned threads.
            if allowed.len() < 2 || index + 1 >= allowed.len() {
                return None;
            }
            let cpu = allowed[allowed.len() - 1 - index];
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut one);
            if libc::sched_setaffinity(0, size, &one) != 0 {
                return None;
            }
            Some(cpu)
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = index;
        None
    }
}

/// What else a pool's threads give up besides their CPU priority.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lowered {
    /// Each thread pinned to one CPU counted from the last (see [`pin_from_last_cpu`]): for
    /// CPU-bound work such as decoding images, which would otherwise keep every core's caches
    /// cold for messaging.
    pub pinned: bool,
    /// The idle I/O class (see [`lower_own_io_priority`]): for bulk file writes, which would
    /// otherwise queue the database's syncs behind them.
    pub idle_io: bool,
    /// After each job the thread rests as long as the job ran (0: never rests) times this
    /// factor, so it keeps a core busy at most `1 / (1 + rest)` of the time however long its
    /// queue: for CPU-heavy work whose cores messaging shares (on virtual machines two "cores"
    /// are often one physical core's two threads, and no priority keeps one thread's work from
    /// slowing the other's).
    pub rest: u32,
}

/// Moves the calling thread's disk I/O to the idle class (`ioprio_set`, `IOPRIO_CLASS_IDLE`):
/// the kernel's I/O scheduler (mq-deadline, BFQ) serves it only when no one else waits, so the
/// writes and syncs of uploaded files never delay the database's commits. Needs no capability.
/// Elsewhere, or with a scheduler that ignores priorities: no effect.
pub fn lower_own_io_priority(what: &str) {
    #[cfg(target_os = "linux")]
    {
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        const IOPRIO_CLASS_IDLE: libc::c_long = 3;
        const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
        // SAFETY: a plain system call on the calling thread (id 0) with a valid priority.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_ioprio_set,
                IOPRIO_WHO_PROCESS,
                0 as libc::c_long,
                IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
            )
        };
        if rc != 0 {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "cannot lower the I/O priority of the {what} threads"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = what;
}

/// A fixed set of low-priority threads taking jobs from one queue. Callers bound how many jobs
/// they queue (the database's connection permits do, for [`crate::db::Db::run_background`]).
#[derive(Clone)]
pub struct Background {
    jobs: mpsc::Sender<Job>,
}

impl Background {
    pub fn start(threads: usize) -> std::io::Result<Background> {
        Self::start_named("background", threads)
    }

    /// A pool of its own, its threads named `name-0`, `name-1`, ... (uploads keep theirs apart
    /// from the bulk reads', so a burst of photos never delays anyone's room list).
    pub fn start_named(name: &'static str, threads: usize) -> std::io::Result<Background> {
        Self::start_with(name, threads, Lowered::default())
    }

    /// As [`Background::start_named`], with more taken from the threads (see [`Lowered`]).
    pub fn start_with(
        name: &'static str,
        threads: usize,
        lowered: Lowered,
    ) -> std::io::Result<Background> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    lower_own_priority(name);
                    if lowered.pinned {
                        pin_from_last_cpu(i);
                    }
                    if lowered.idle_io {
                        lower_own_io_priority(name);
                    }
                    loop {
                        // The lock is held only while waiting for the next job; the job runs
                        // after it is released.
                        let next = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => {
                                let started = std::time::Instant::now();
                                job();
                                if lowered.rest > 0 {
                                    std::thread::sleep(started.elapsed() * lowered.rest);
                                }
                            }
                            // Every sender is gone: the server is shutting down.
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Background { jobs })
    }

    /// Runs `f` on a background thread and waits for its result; `None` when the pool is gone.
    pub async fn run<T, F>(&self, f: F) -> Option<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller has gone (its client disconnected): skip the work.
            if !tx.is_closed() {
                let _ = tx.send(f());
            }
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_leaves_the_first_cpu_free() {
        // SAFETY: reads this thread's affinity into a local set.
        let allowed = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
            libc::CPU_COUNT(&set) as usize
        };
        let pinned = std::thread::spawn(|| {
            let cpu = pin_from_last_cpu(0);
            // SAFETY: reads the calling thread's own affinity into a local set.
            let count = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
                libc::CPU_COUNT(&set)
            };
            (cpu, count)
        })
        .join()
        .unwrap();
        if allowed >= 2 {
            assert!(pinned.0.is_some_and(|c| c > 0), "{pinned:?}");
            assert_eq!(pinned.1, 1);
        } else {
            assert_eq!(pinned.0, None);
        }
        // An index that would reach the first CPU leaves the thread unpinned.
        assert_eq!(
            std::thread::spawn(move || pin_from_last_cpu(allowed.saturating_sub(1)))
                .join()
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn runs_jobs_on_idle_class_threads() {
        let pool = Background::start(2).unwrap();
        let (name, policy) = pool
            .run(|| {
                let name = std::thread::current().name().map(str::to_owned);
                // SAFETY: reads the calling thread's own scheduling policy.
                let policy = unsafe { libc::sched_getscheduler(0) };
                (name, policy)
            })
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("background-"));
        assert_eq!(policy, libc::SCHED_IDLE);
        // Many jobs at once all complete.
        let sums =
            futures_util::future::join_all((0..20u64).map(|i| pool.run(move || i * 2))).await;
        assert_eq!(sums.into_iter().flatten().sum::<u64>(), 380);
    }
}
