//! Small measuring tools: a seq bitmap and a latency histogram shared by all connections (each
//! connection batches its samples locally, so the lock is taken rarely).

use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;

use crate::{err, Result};

/// Seqs seen, by bit.
#[derive(Default, Debug, Clone)]
pub struct SeqSet {
    bits: Vec<u64>,
    len: u64,
}

impl SeqSet {
    /// Adds `seq`; false if it was already there.
    pub fn insert(&mut self, seq: i64) -> bool {
        let Ok(s) = usize::try_from(seq) else {
            return false;
        };
        let (word, bit) = (s / 64, s % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1 + word / 2, 0);
        }
        let mask = 1u64 << bit;
        let fresh = self.bits[word] & mask == 0;
        self.bits[word] |= mask;
        if fresh {
            self.len += 1;
        }
        fresh
    }

    pub fn contains(&self, seq: i64) -> bool {
        let Ok(s) = usize::try_from(seq) else {
            return false;
        };
        self.bits
            .get(s / 64)
            .is_some_and(|w| w & (1u64 << (s % 64)) != 0)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.bits.iter().enumerate().flat_map(|(i, w)| {
            let w = *w;
            (0..64)
                .filter(move |b| w & (1u64 << b) != 0)
                .map(move |b| (i * 64 + b) as i64)
        })
    }

    pub fn max(&self) -> i64 {
        self.iter().last().unwrap_or(0)
    }
}

/// Latencies in microseconds, 1 µs to 10 min, 3 significant figures.
#[derive(Clone)]
pub struct SharedHistogram {
    inner: Arc<Mutex<Histogram<u64>>>,
}

const HIGHEST_US: u64 = 600_000_000;

impl SharedHistogram {
    pub fn new() -> Result<Self> {
        let h = Histogram::new_with_bounds(1, HIGHEST_US, 3)
            .map_err(|e| err(format!("histogram: {e}")))?;
        Ok(SharedHistogram {
            inner: Arc::new(Mutex::new(h)),
        })
    }

    pub fn record_all(&self, samples: &[u64]) {
        if samples.is_empty() {
            return;
        }
        if let Ok(mut h) = self.inner.lock() {
            for &s in samples {
                // Saturates instead of failing past the highest value.
                h.saturating_record(s.clamp(1, HIGHEST_US));
            }
        }
    }

    /// The recorded values as (value, count) pairs, one per bucket: to carry a histogram from
    /// one process to another.
    pub fn counts(&self) -> Vec<(u64, u64)> {
        match self.inner.lock() {
            Ok(h) => h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Adds (value, count) pairs from [`SharedHistogram::counts`].
    pub fn record_counts(&self, counts: &[(u64, u64)]) {
        if let Ok(mut h) = self.inner.lock() {
            for &(value, count) in counts {
                let _ = h.record_n(value.clamp(1, HIGHEST_US), count);
            }
        }
    }

    pub fn summary(&self) -> Latency {
        match self.inner.lock() {
            Ok(h) if !h.is_empty() => Latency {
                count: h.len(),
                p50_us: h.value_at_quantile(0.50),
                p90_us: h.value_at_quantile(0.90),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                max_us: h.max(),
                mean_us: h.mean(),
            },
            _ => Latency::default(),
        }
    }
}

/// A local batch of samples, flushed into the shared histogram.
pub struct Samples {
    shared: SharedHistogram,
    batch: Vec<u64>,
}

impl Samples {
    pub fn new(shared: SharedHistogram) -> Self {
        Samples {
            shared,
            batch: Vec::with_capacity(256),
        }
    }

    pub fn record(&mut self, us: u64) {
        self.batch.push(us);
        if self.batch.len() >= 256 {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        self.shared.record_all(&self.batch);
        self.batch.clear();
    }
}

impl Drop for Samples {
    fn drop(&mut self) {
        self.flush();
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Latency {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Latency {
    pub fn describe(&self) -> String {
        if self.count == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {} · p90 {} · p99 {} · p99.9 {} · max {} (n={})",
            ms(self.p50_us),
            ms(self.p90_us),
            ms(self.p99_us),
            ms(self.p999_us),
            ms(self.max_us),
            self.count
        )
    }
}

/// Microseconds as milliseconds, e.g. `1.234 ms`.
pub fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_set_counts_and_finds() {
        let mut s = SeqSet::default();
        assert!(s.insert(1));
        assert!(s.insert(64));
        assert!(s.insert(1000));
        assert!(!s.insert(64));
        assert_eq!(s.len(), 3);
        assert!(s.contains(1000) && !s.contains(2) && !s.contains(-1));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![1, 64, 1000]);
        assert_eq!(s.max(), 1000);
    }

    #[test]
    fn histogram_counts_carry_over() {
        let a = SharedHistogram::new().unwrap();
        a.record_all(&[5, 5, 70, 1_000_000]);
        let b = SharedHistogram::new().unwrap();
        b.record_all(&[5]);
        b.record_counts(&a.counts());
        let l = b.summary();
        assert_eq!(l.count, 5);
        assert_eq!(l.p50_us, 5);
        assert!((999_000..=1_001_000).contains(&l.max_us));
    }

    #[test]
    fn histogram_summary() {
        let h = SharedHistogram::new().unwrap();
        let mut s = Samples::new(h.clone());
        for i in 1..=1000 {
            s.record(i);
        }
        drop(s);
        let l = h.summary();
        assert_eq!(l.count, 1000);
        assert!((495..=505).contains(&l.p50_us));
        assert_eq!(l.max_us, 1000);
    }
}
