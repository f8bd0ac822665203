//! `latency --uploads N`: N users, each uploading one file after the other (`POST /api/uploads`)
//! from the start of the warm-up to the end of the measured window, while the pairs exchange
//! messages. Every uploader is a user of its own, so the server's per-user limits (uploads in
//! progress, daily quota) do not hold it back; the instance's own limit on uploads in progress
//! still applies, and any 429 counts as a failure.
//!
//! The file is made once at the start: a JPEG of noisy content (so that it does not compress to
//! nothing and the server decodes and thumbnails a real picture), or random bytes. Each upload
//! changes 32 of its bytes (a comment segment of the JPEG; the end of the binary), so that the
//! server stores and, for images, decodes every one; `--upload-same` sends the very same bytes
//! every time instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;
use tokio::sync::watch;

use crate::report::{mib, Report};
use crate::server::{random_u64, Server};
use crate::setup::{register_many, Api};
use crate::stats::{Latency, SharedHistogram};
use crate::{err, Common, Result};

#[derive(Args, Debug, Clone)]
pub struct UploadArgs {
    /// Concurrent uploaders, each a user of its own uploading one file after the other
    /// (`POST /api/uploads`) from the start of the warm-up to the end of the measured window;
    /// 0: none.
    #[arg(long, default_value_t = 0)]
    pub uploads: usize,
    /// Size of each uploaded file: bytes, or with a binary suffix (`512KiB`, `2MiB`, `2M`).
    #[arg(long, default_value = "2MiB", value_parser = parse_size)]
    pub upload_bytes: u64,
    /// `image`: a JPEG of noisy content, which the server decodes and thumbnails; `binary`:
    /// random bytes, stored as they are.
    #[arg(long, value_enum, default_value_t = UploadKind::Image)]
    pub upload_kind: UploadKind,
    /// Upload the very same bytes every time (the server keeps them once); by default each
    /// upload differs from every other in a few bytes.
    #[arg(long)]
    pub upload_same: bool,
}

impl UploadArgs {
    /// No uploads.
    pub fn none() -> UploadArgs {
        UploadArgs {
            uploads: 0,
            upload_bytes: 2 << 20,
            upload_kind: UploadKind::Image,
            upload_same: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UploadKind {
    Image,
    Binary,
}

/// The smallest file `--upload-bytes` may ask for.
const MIN_BYTES: u64 = 4 * 1024;

/// Bytes of each upload that tell it from the others.
const STAMP_LEN: usize = 32;

/// The JPEG's quality, and how far each channel of each pixel strays from a smooth gradient:
/// enough noise that the file has about a phone photo's bytes per pixel.
const JPEG_QUALITY: u8 = 90;
const NOISE: i32 = 5;

/// A size: bytes, or a number with a binary suffix.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 2097152, 512KiB, 2MiB)"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("'{s}': unknown unit (use KiB, MiB or GiB)")),
    };
    Ok((n * mult as f64).round() as u64)
}

/// A small fast generator (SplitMix64): noise, not secrets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The file every upload sends, with the place of its per-upload stamp.
pub struct Payload {
    bytes: Vec<u8>,
    stamp_at: usize,
    file_name: &'static str,
    content_type: &'static str,
    /// Pixels, for a JPEG.
    dimensions: Option<(u32, u32)>,
}

impl Payload {
    /// Makes the file (CPU-heavy for a large JPEG: run it off the async threads).
    pub fn make(kind: UploadKind, size: u64) -> Result<Payload> {
        if size < MIN_BYTES {
            return Err(err(format!("--upload-bytes must be at least {MIN_BYTES}")));
        }
        let size = usize::try_from(size).map_err(|_| err("--upload-bytes is too large"))?;
        let mut rng = Rng(random_u64());
        match kind {
            UploadKind::Binary => {
                let mut bytes = vec![0u8; size];
                rng.fill(&mut bytes);
                Ok(Payload {
                    stamp_at: size - STAMP_LEN,
                    bytes,
                    file_name: "bench.bin",
                    content_type: "application/octet-stream",
                    dimensions: None,
                })
            }
            UploadKind::Image => jpeg(size, &mut rng),
        }
    }

    /// The bytes of upload `n` of `uploader`: the file with its stamp.
    pub fn stamped(&self, uploader: usize, n: u64) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        let stamp = format!("{:011}.{:020}", uploader % 100_000_000_000, n);
        bytes[self.stamp_at..self.stamp_at + STAMP_LEN].copy_from_slice(stamp.as_bytes());
        bytes
    }

    pub fn describe(&self) -> String {
        match self.dimensions {
            Some((w, h)) => format!(
                "{} JPEG ({w}×{h}, noisy, quality {JPEG_QUALITY})",
                mib(self.bytes.len() as u64 / 1024)
            ),
            None => format!("{} of random bytes", mib(self.bytes.len() as u64 / 1024)),
        }
    }
}

/// A smooth gradient with noise on every channel of every pixel, as RGB.
fn noisy_rgb(width: u32, height: u32, rng: &mut Rng) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut px = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let base = [x * 255 / w, y * 255 / h, (x + y) * 255 / (w + h)];
            let r = rng.next();
            for (c, b) in base.into_iter().enumerate() {
                let noise = ((r >> (c * 16)) & 0xffff) as i32 % (2 * NOISE + 1) - NOISE;
                px.push((b as i32 + noise).clamp(0, 255) as u8);
            }
        }
    }
    px
}

fn encode_jpeg(width: u32, height: u32, rng: &mut Rng) -> Result<Vec<u8>> {
    let rgb = noisy_rgb(width, height, rng);
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode(&rgb, width, height, ExtendedColorType::Rgb8)
        .map_err(|e| err(format!("cannot encode the upload's JPEG: {e}")))?;
    Ok(out)
}

/// A 4:3 JPEG of noisy content a little smaller than `size`, brought to exactly `size` bytes
/// with comment segments (the first of which holds the stamp).
fn jpeg(size: usize, rng: &mut Rng) -> Result<Payload> {
    // Room for the comment that holds the stamp.
    let room = 4 + STAMP_LEN;
    let aim = (size - room) as f64 * 0.97;
    let sample = encode_jpeg(256, 192, rng)?;
    let mut pixels = aim / (sample.len() as f64 / (256.0 * 192.0));
    for _ in 0..6 {
        let width = ((pixels * 4.0 / 3.0).sqrt().round() as u32).clamp(16, 65_000);
        let height = (width * 3 / 4).max(16);
        let encoded = encode_jpeg(width, height, rng)?;
        if encoded.len() + room <= size {
            let (bytes, stamp_at) = with_comments(&encoded, size, rng)?;
            return Ok(Payload {
                bytes,
                stamp_at,
                file_name: "bench.jpg",
                content_type: "image/jpeg",
                dimensions: Some((width, height)),
            });
        }
        pixels *= aim / encoded.len() as f64 * 0.97;
    }
    Err(err(format!(
        "could not make a JPEG of at most {size} bytes"
    )))
}

/// `jpeg` with comment segments (`FF FE`, length, random bytes) after its JFIF header, up to
/// exactly `size` bytes; returns it and where the first comment's data starts.
fn with_comments(jpeg: &[u8], size: usize, rng: &mut Rng) -> Result<(Vec<u8>, usize)> {
    if jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] {
        return Err(err("the encoder's JPEG does not start with SOI"));
    }
    // After SOI, and after the APP0 (JFIF) segment when it comes first.
    let mut at = 2;
    if jpeg[2..4] == [0xFF, 0xE0] && jpeg.len() >= 6 {
        at = 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
    }
    let mut extra = size - jpeg.len();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&jpeg[..at]);
    let mut stamp_at = None;
    while extra > 0 {
        let mut data = (extra - 4).min(65_533);
        // Never leave fewer bytes than a segment needs.
        if (1..4).contains(&(extra - 4 - data)) {
            data -= 4;
        }
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&((data + 2) as u16).to_be_bytes());
        stamp_at.get_or_insert(out.len());
        let start = out.len();
        out.resize(start + data, 0);
        rng.fill(&mut out[start..]);
        extra -= 4 + data;
    }
    out.extend_from_slice(&jpeg[at..]);
    let stamp_at = stamp_at.ok_or_else(|| err("no room for the upload's stamp"))?;
    Ok((out, stamp_at))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Ready,
    Run,
    Stop,
}

/// One upload: when it started and ended, and what came of it.
struct Done {
    ended: Instant,
    took: Duration,
    bytes: u64,
    outcome: Outcome,
}

enum Outcome {
    /// 201; whether the server decoded it as an image (it gave width and height), and whether
    /// it gave the size sent.
    Stored { decoded: bool, size_ok: bool },
    /// Another status.
    Status(u16),
    /// No answer (connection error, timeout).
    Transport(String),
}

/// The uploaders: registered, their file made, waiting for [`UploadLoad::begin`].
pub struct UploadLoad {
    phase_tx: watch::Sender<Phase>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Done>>>,
    stored: Arc<AtomicU64>,
    payload: Arc<Payload>,
    kind: UploadKind,
    same: bool,
    uploaders: usize,
    upload_dir: PathBuf,
}

impl UploadLoad {
    /// Registers the uploaders and makes the file; `None` without `--uploads`.
    pub async fn prepare(
        common: &Common,
        api: &Api,
        server: &Server,
        args: &UploadArgs,
    ) -> Result<Option<UploadLoad>> {
        if args.uploads == 0 {
            return Ok(None);
        }
        let t = Instant::now();
        let (kind, size) = (args.upload_kind, args.upload_bytes);
        let payload = tokio::task::spawn_blocking(move || Payload::make(kind, size))
            .await
            .map_err(|e| err(format!("making the upload's file failed: {e}")))??;
        let payload = Arc::new(payload);
        eprintln!(
            "bench: upload file made in {:.1} s: {}",
            t.elapsed().as_secs_f64(),
            payload.describe()
        );
        let users = register_many(api, "uploader", args.uploads, common.rest_concurrency).await?;
        let (phase_tx, phase_rx) = watch::channel(Phase::Ready);
        let stored = Arc::new(AtomicU64::new(0));
        let tasks = users
            .into_iter()
            .enumerate()
            .map(|(i, user)| {
                tokio::spawn(uploader(
                    i,
                    api.clone(),
                    user.token,
                    Arc::clone(&payload),
                    args.upload_same,
                    Arc::clone(&stored),
                    phase_rx.clone(),
                ))
            })
            .collect();
        Ok(Some(UploadLoad {
            phase_tx,
            tasks,
            stored,
            payload,
            kind,
            same: args.upload_same,
            uploaders: args.uploads,
            upload_dir: server.upload_dir(),
        }))
    }

    /// Starts uploading.
    pub fn begin(&self) {
        let _ = self.phase_tx.send(Phase::Run);
    }

    /// No new upload from now on (those in progress finish).
    pub fn end(&self) {
        let _ = self.phase_tx.send(Phase::Stop);
    }

    /// Uploads stored so far.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Waits for the uploads in progress and sums up; `window` is the measured window.
    pub async fn finish(mut self, window: (Instant, Instant)) -> UploadSummary {
        self.end();
        let mut all = Vec::new();
        for t in std::mem::take(&mut self.tasks) {
            // A task that panicked lost its uploads: nothing to count.
            if let Ok(done) = t.await {
                all.extend(done);
            }
        }
        let (from, to) = window;
        let secs = to.duration_since(from).as_secs_f64().max(1e-9);
        let mut s = UploadSummary {
            uploaders: 0,
            describe: String::new(),
            kind: self.kind,
            window_stored: 0,
            window_failed: 0,
            window_bytes: 0,
            window_secs: secs,
            stored: 0,
            refused_429: 0,
            failed_other: BTreeMap::new(),
            failure_sample: None,
            undecoded: 0,
            latency: Latency::default(),
            dir_files: 0,
            dir_bytes: 0,
        };
        let hist = SharedHistogram::new().ok();
        let mut window_us = Vec::new();
        for d in &all {
            let in_window = d.ended >= from && d.ended <= to;
            match &d.outcome {
                Outcome::Stored { decoded, size_ok } => {
                    s.stored += 1;
                    if in_window {
                        s.window_stored += 1;
                        s.window_bytes += d.bytes;
                        window_us.push(d.took.as_micros() as u64);
                    }
                    if !decoded && self.kind == UploadKind::Image {
                        s.undecoded += 1;
                    }
                    if !size_ok {
                        *s.failed_other
                            .entry("201 with another size".into())
                            .or_default() += 1;
                    }
                }
                Outcome::Status(code) => {
                    if in_window {
                        s.window_failed += 1;
                    }
                    if *code == 429 {
                        s.refused_429 += 1;
                    } else {
                        *s.failed_other.entry(code.to_string()).or_default() += 1;
                    }
                }
                Outcome::Transport(why) => {
                    if in_window {
                        s.window_failed += 1;
                    }
                    *s.failed_other.entry("no answer".into()).or_default() += 1;
                    s.failure_sample.get_or_insert_with(|| why.clone());
                }
            }
        }
        if let Some(h) = hist {
            h.record_all(&window_us);
            s.latency = h.summary();
        }
        (s.dir_files, s.dir_bytes) = dir_usage(&self.upload_dir);
        s.uploaders = self.uploaders;
        s.describe = format!(
            "{} uploaders × {}, {}",
            s.uploaders,
            self.payload.describe(),
            if self.same {
                "the same bytes every time"
            } else {
                "a different file each time"
            }
        );
        s
    }
}

impl Drop for UploadLoad {
    /// A run that ends early (an error) leaves no uploader behind.
    fn drop(&mut self) {
        let _ = self.phase_tx.send(Phase::Stop);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Files and bytes under `dir`, at any depth.
fn dir_usage(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => todo.push(e.path()),
                Ok(m) => {
                    files += 1;
                    bytes += m.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

/// One uploader: uploads, one after the other, while the phase is `Run`. After a 429 it waits
/// the `Retry-After` (at most 1 s), after no answer 100 ms.
async fn uploader(
    idx: usize,
    api: Api,
    token: String,
    payload: Arc<Payload>,
    same: bool,
    stored: Arc<AtomicU64>,
    mut phase: watch::Receiver<Phase>,
) -> Vec<Done> {
    let mut done = Vec::new();
    if phase.wait_for(|p| *p != Phase::Ready).await.is_err() {
        return done;
    }
    let mut n = 0u64;
    while *phase.borrow() == Phase::Run {
        let bytes = if same {
            payload.bytes.clone()
        } else {
            payload.stamped(idx, n)
        };
        n += 1;
        let len = bytes.len() as u64;
        let started = Instant::now();
        let res = api
            .upload(&token, bytes, payload.file_name, payload.content_type)
            .await;
        let ended = Instant::now();
        let mut pause = None;
        let outcome = match res {
            Ok(r) if r.status == reqwest::StatusCode::CREATED => {
                let body = r.body.unwrap_or_default();
                stored.fetch_add(1, Ordering::Relaxed);
                Outcome::Stored {
                    decoded: body["width"].as_i64().is_some() && body["height"].as_i64().is_some(),
                    size_ok: body["size"].as_u64() == Some(len),
                }
            }
            Ok(r) => {
                if r.status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    let secs = r.retry_after.unwrap_or(1);
                    pause = Some(Duration::from_millis(
                        secs.saturating_mul(1000).clamp(100, 1000),
                    ));
                }
                Outcome::Status(r.status.as_u16())
            }
            Err(e) => {
                pause = Some(Duration::from_millis(100));
                Outcome::Transport(e.to_string())
            }
        };
        done.push(Done {
            ended,
            took: ended - started,
            bytes: len,
            outcome,
        });
        if let Some(p) = pause {
            tokio::select! {
                _ = tokio::time::sleep(p) => {}
                _ = phase.changed() => {}
            }
        }
    }
    done
}

/// What the uploaders did.
pub struct UploadSummary {
    uploaders: usize,
    describe: String,
    kind: UploadKind,
    /// Uploads stored (201) and failed that ended in the measured window, and the bytes stored.
    window_stored: u64,
    window_failed: u64,
    window_bytes: u64,
    window_secs: f64,
    /// Over the whole run.
    stored: u64,
    refused_429: u64,
    /// Other failures by status (or "no answer").
    failed_other: BTreeMap<String, u64>,
    failure_sample: Option<String>,
    /// Images stored without width and height: the server did not decode them.
    undecoded: u64,
    /// Stored uploads that ended in the measured window, request to answer.
    latency: Latency,
    /// What the server's upload folder holds at the end.
    dir_files: u64,
    dir_bytes: u64,
}

impl UploadSummary {
    /// Its rows of the report; failures and 429s fail the run.
    pub fn rows(&self, report: &mut Report) {
        report.row(
            "uploads",
            self.describe.clone(),
            "uploaders",
            self.uploaders,
        );
        let failed_other: u64 = self.failed_other.values().sum();
        let failed = self.refused_429 + failed_other;
        report.row(
            "uploads stored / failed (measured window)",
            format!(
                "{} / {} (whole run: {} / {failed})",
                self.window_stored, self.window_failed, self.stored
            ),
            "uploads_stored",
            self.window_stored,
        );
        report.field("uploads_failed", self.window_failed);
        report.field("uploads_stored_run", self.stored);
        let mb_per_sec = self.window_bytes as f64 / 1e6 / self.window_secs;
        report.row(
            "uploaded (measured window)",
            format!(
                "{mb_per_sec:.1} MB/s ({:.1} MiB/s), {:.1} uploads/s",
                self.window_bytes as f64 / (1 << 20) as f64 / self.window_secs,
                self.window_stored as f64 / self.window_secs
            ),
            "upload_mb_per_sec",
            mb_per_sec,
        );
        report.row(
            "upload latency (stored, measured window)",
            self.latency.describe(),
            "upload_p99_us",
            self.latency.p99_us,
        );
        report.field("upload_p50_us", self.latency.p50_us);
        report.field("upload_max_us", self.latency.max_us);
        report.check(
            "uploads refused with 429 (whole run)",
            self.refused_429,
            "uploads_429",
        );
        report.check(
            "uploads failed otherwise (whole run)",
            failed_other,
            "uploads_failed_other",
        );
        if failed_other > 0 {
            let by: Vec<String> = self
                .failed_other
                .iter()
                .map(|(what, n)| format!("{what} ×{n}"))
                .collect();
            report.row(
                "  by status",
                by.join(", "),
                "uploads_failed_by",
                by.join(", "),
            );
        }
        if let Some(s) = &self.failure_sample {
            report.row("  e.g.", s.clone(), "upload_failure_sample", s.clone());
        }
        if self.kind == UploadKind::Image {
            report.check(
                "images stored undecoded (no width, height)",
                self.undecoded,
                "uploads_undecoded",
            );
        }
        report.row(
            "upload folder at the end",
            format!("{} files, {}", self.dir_files, mib(self.dir_bytes / 1024)),
            "upload_dir_bytes",
            self.dir_bytes,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2097152"), Ok(2_097_152));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1.5M"), Ok(3 << 19));
        assert!(parse_size("2 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn jpeg_has_the_size_asked_decodes_and_stamps_differ() {
        for size in [64 * 1024, 200_000, 300_001] {
            let p = Payload::make(UploadKind::Image, size as u64).unwrap();
            assert_eq!(p.bytes.len(), size);
            let (a, b) = (p.stamped(3, 1), p.stamped(3, 2));
            assert_ne!(a, b);
            assert_eq!(a.len(), size);
            let img = image::load_from_memory_with_format(&a, image::ImageFormat::Jpeg).unwrap();
            assert_eq!(Some((img.width(), img.height())), p.dimensions);
        }
    }

    #[test]
    fn binary_has_the_size_asked() {
        let p = Payload::make(UploadKind::Binary, 5000).unwrap();
        assert_eq!(p.stamped(0, 0).len(), 5000);
        assert_ne!(p.stamped(0, 0), p.stamped(1, 0));
        assert!(Payload::make(UploadKind::Binary, 100).is_err());
    }
}
