//! Resumable, verified HTTP downloads.
//!
//! Bytes go to `FILE.part`; the sha256 is computed while streaming (over the bytes
//! already on disk first, when resuming), and the file appears under its real name only
//! after size and sha256 match — a rename, so a crash never leaves a half file that
//! looks whole. Every attempt starts from the original URL, so an expiring redirect
//! link is fetched anew on resume. Verification cannot be turned off.

pub mod disk;
pub mod hf;
pub mod resume;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::error::ErrorCode;
use crate::events::{Event, Events};
use crate::hardware::format_bytes;
use resume::Answer;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("Not enough free disk space for {file}: it needs {} more but only {} is free on that disk. Free some space and try again.", format_bytes(*.needed), format_bytes(*.free))]
    DiskFull {
        file: String,
        needed: u64,
        free: u64,
    },
    #[error("The downloaded {file} is not the file that was published (sha256 {actual}, expected {expected}). The damaged copy was deleted; try again.")]
    ChecksumMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("The server sent more of {file} than it said the file has ({got} bytes, expected {expected}). The partial copy was deleted; try again later.")]
    TooLong {
        file: String,
        got: u64,
        expected: u64,
    },
    #[error("The download of {file} kept failing ({detail}). What was downloaded is kept: start the download again to continue where it stopped.")]
    Network { file: String, detail: String },
    #[error("{what} was not found on Hugging Face. Check the repository and file names.")]
    NotFound { what: String },
    #[error("Hugging Face refused access to {what} (HTTP {status}). The model may need you to accept its license on huggingface.co and to give Kindling your Hugging Face access token.")]
    Unauthorized { what: String, status: u16 },
    #[error("Kindling cannot check {file}: Hugging Face publishes no sha256 for it, and Kindling never installs a model it cannot verify.")]
    Unverifiable { file: String },
    #[error(
        "Hugging Face answered in a way Kindling does not understand ({detail}). Try again later."
    )]
    BadMetadata { detail: String },
    #[error("Hugging Face's copy of {file} is not the file Kindling's catalog recorded ({detail}), so nothing was downloaded. Pick another model; a newer Kindling will know the new file.")]
    NotAsRecorded { file: String, detail: String },
    #[error("Paused {file} at {}; start the download again to continue where it stopped.", format_bytes(*.have))]
    Paused { file: String, have: u64 },
    #[error("Cancelled the download of {file}; the partial file was deleted.")]
    Cancelled { file: String },
    #[error("Kindling could not write {path}: {source}. Check that the folder is writable.")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Kindling could not use the keychain for the Hugging Face token: {0}.")]
    Keychain(String),
}

impl DownloadError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DownloadError::DiskFull { .. } => ErrorCode::DiskFull,
            DownloadError::ChecksumMismatch { .. } | DownloadError::TooLong { .. } => {
                ErrorCode::DownloadCorrupt
            }
            DownloadError::Network { .. } => ErrorCode::DownloadNetwork,
            DownloadError::NotFound { .. } => ErrorCode::DownloadNotFound,
            DownloadError::Unauthorized { .. } => ErrorCode::DownloadUnauthorized,
            DownloadError::Unverifiable { .. } | DownloadError::BadMetadata { .. } => {
                ErrorCode::DownloadUnverifiable
            }
            DownloadError::NotAsRecorded { .. } => ErrorCode::DownloadCorrupt,
            DownloadError::Paused { .. } => ErrorCode::Paused,
            DownloadError::Cancelled { .. } => ErrorCode::Cancelled,
            DownloadError::Io { .. } => ErrorCode::Io,
            DownloadError::Keychain(_) => ErrorCode::Settings,
        }
    }
}

/// One file to fetch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DownloadSpec {
    pub url: String,
    pub dest: PathBuf,
    pub size: u64,
    pub sha256: String,
    #[serde(skip)]
    pub token: Option<String>,
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    /// No byte for this long means the connection is stalled: retry.
    pub stall_timeout: Duration,
    /// Bytes to keep free beyond the file; `None` uses [`resume::free_space_margin`].
    pub free_margin: Option<u64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 6,
            backoff_base: Duration::from_millis(500),
            stall_timeout: Duration::from_secs(30),
            free_margin: None,
        }
    }
}

/// Stops a download: `pause` keeps the partial file, `cancel` deletes it.
#[derive(Debug, Clone, Default)]
pub struct Control {
    pub pause: CancellationToken,
    pub cancel: CancellationToken,
}

/// What a finished download did.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Fetched {
    pub path: PathBuf,
    pub bytes: u64,
    /// Bytes received over the network (more than `bytes` when a resume re-fetched some).
    pub received: u64,
    pub resumed_from: u64,
    pub attempts: u32,
    pub seconds: f64,
}

/// The partial file beside `dest`.
pub fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

enum Attempt {
    Done,
    Retry(String),
}

fn name_of(dest: &Path) -> String {
    dest.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Downloads `spec` with retries, reporting progress, until verified in place.
pub async fn fetch(
    http: &reqwest::Client,
    spec: &DownloadSpec,
    policy: Policy,
    events: &Events,
    control: &Control,
) -> Result<Fetched, DownloadError> {
    let file = name_of(&spec.dest);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DownloadError::Io { path, source }
    };
    let dir = spec.dest.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let part = partial_path(&spec.dest);
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let have = if have > spec.size {
        std::fs::remove_file(&part).map_err(io(&part))?;
        0
    } else {
        have
    };
    let needed = spec.size - have;
    let margin = policy
        .free_margin
        .unwrap_or_else(|| resume::free_space_margin(spec.size));
    let free = disk::available_bytes(&dir).map_err(io(&dir))?;
    if free < needed.saturating_add(margin) {
        return Err(DownloadError::DiskFull {
            file,
            needed: needed + margin,
            free,
        });
    }

    let started = Instant::now();
    // The hash runs over the bytes as they arrive; a resumed download first hashes the
    // bytes already on disk (read once, far faster than fetching them again).
    let p = part.clone();
    let hasher = tokio::task::spawn_blocking(move || hash_prefix(&p, have))
        .await
        .expect("hashing does not panic")
        .map_err(io(&part))?;
    let mut st = Stream {
        received: 0,
        last_event: Instant::now() - Duration::from_secs(1),
        rate_from: (Instant::now(), have),
        hasher,
    };
    let resumed_from = have;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let before = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        match one_attempt(http, spec, policy, events, control, &part, &mut st).await? {
            Attempt::Done => break,
            Attempt::Retry(detail) => {
                let after = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
                if after > before + (1 << 20) {
                    attempt = 0; // progress was made: a flaky link, not a dead one
                }
                if attempt >= policy.max_attempts {
                    return Err(DownloadError::Network { file, detail });
                }
                tracing::info!(%detail, attempt, "download interrupted; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(resume::backoff(attempt.max(1), policy.backoff_base)) => {}
                    _ = control.pause.cancelled() => {}
                    _ = control.cancel.cancelled() => {}
                }
                stop_requested(control, &part, &file)?;
            }
        }
    }

    // Verify, then rename into place.
    let actual = format!("{:x}", st.hasher.finalize());
    if !actual.eq_ignore_ascii_case(&spec.sha256) {
        let _ = std::fs::remove_file(&part);
        return Err(DownloadError::ChecksumMismatch {
            file,
            expected: spec.sha256.clone(),
            actual,
        });
    }
    std::fs::rename(&part, &spec.dest).map_err(io(&spec.dest))?;
    events.emit(Event::Download {
        file: file.clone(),
        state: DownloadState::Done,
        bytes: spec.size,
        total: spec.size,
        bytes_per_second: 0.0,
        eta_seconds: Some(0.0),
    });
    Ok(Fetched {
        path: spec.dest.clone(),
        bytes: spec.size,
        received: st.received,
        resumed_from,
        attempts: attempt,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Where a download stands, for progress displays.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum DownloadState {
    Downloading,
    Verifying,
    Done,
}

/// Why a download's receive loop ended.
enum Ended {
    /// The body ended (or the writer stopped, which it reports itself).
    Complete,
    /// Paused or cancelled.
    Stopped,
    Retry(String),
    /// The server sent more than the published size.
    TooLong(u64),
}

/// Writes a download's bytes on one thread and hashes them on another, in the order
/// received: receiving, writing and hashing then overlap instead of taking turns (on a
/// fast link, hashing and writing one after the other capped a download at ~0.55× curl).
struct Sink {
    /// Chunks gathered up to [`Sink::BATCH`] bytes: one hand-over per MB, not per
    /// network read.
    pending: bytes::BytesMut,
    write: tokio::sync::mpsc::Sender<bytes::Bytes>,
    hash: tokio::sync::mpsc::Sender<bytes::Bytes>,
    written: std::thread::JoinHandle<std::io::Result<std::fs::File>>,
    hashed: std::thread::JoinHandle<Sha256>,
}

impl Sink {
    const BATCH: usize = 1 << 20;

    fn start(file: std::fs::File, mut hasher: Sha256) -> Sink {
        // A few MB in flight at most.
        let (write, mut to_write) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
        let (hash, mut to_hash) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
        let written = std::thread::spawn(move || {
            let mut file = file;
            while let Some(chunk) = to_write.blocking_recv() {
                file.write_all(&chunk)?;
            }
            Ok(file)
        });
        let hashed = std::thread::spawn(move || {
            while let Some(chunk) = to_hash.blocking_recv() {
                hasher.update(&chunk);
            }
            hasher
        });
        Sink {
            pending: bytes::BytesMut::with_capacity(Self::BATCH),
            write,
            hash,
            written,
            hashed,
        }
    }

    /// Takes a chunk; `false` when the writer has stopped on an error.
    async fn send(&mut self, chunk: bytes::Bytes) -> bool {
        self.pending.extend_from_slice(&chunk);
        if self.pending.len() < Self::BATCH {
            return true;
        }
        self.flush().await
    }

    fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    async fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let batch = self.pending.split().freeze();
        self.pending.reserve(Self::BATCH);
        self.hash.send(batch.clone()).await.is_ok() && self.write.send(batch).await.is_ok()
    }

    /// Waits until every chunk handed over is written and hashed; the file (or the write
    /// error) and the hash of the bytes handed over. After a write error the download
    /// ends, and a later one hashes what is on disk afresh.
    async fn finish(mut self) -> (std::io::Result<std::fs::File>, Sha256) {
        self.flush().await;
        let Sink {
            write,
            hash,
            written,
            hashed,
            ..
        } = self;
        drop((write, hash));
        tokio::task::spawn_blocking(move || {
            (
                written.join().expect("the writer does not panic"),
                hashed.join().expect("the hasher does not panic"),
            )
        })
        .await
        .expect("joining the writer does not panic")
    }
}

struct Stream {
    received: u64,
    last_event: Instant,
    rate_from: (Instant, u64),
    /// sha256 of exactly the bytes in the partial file.
    hasher: Sha256,
}

/// The sha256 state after the first `len` bytes of `path` (a fresh state for 0).
fn hash_prefix(path: &Path, len: u64) -> std::io::Result<Sha256> {
    let mut hasher = Sha256::new();
    if len == 0 {
        return Ok(hasher);
    }
    let mut f = std::fs::File::open(path)?.take(len);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher);
        }
        hasher.update(&buf[..n]);
    }
}

fn stop_requested(control: &Control, part: &Path, file: &str) -> Result<(), DownloadError> {
    if control.cancel.is_cancelled() {
        let _ = std::fs::remove_file(part);
        return Err(DownloadError::Cancelled {
            file: file.to_string(),
        });
    }
    if control.pause.is_cancelled() {
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        return Err(DownloadError::Paused {
            file: file.to_string(),
            have,
        });
    }
    Ok(())
}

async fn one_attempt(
    http: &reqwest::Client,
    spec: &DownloadSpec,
    policy: Policy,
    events: &Events,
    control: &Control,
    part: &Path,
    st: &mut Stream,
) -> Result<Attempt, DownloadError> {
    let file = name_of(&spec.dest);
    let io = |source| DownloadError::Io {
        path: part.to_path_buf(),
        source,
    };
    stop_requested(control, part, &file)?;
    let mut have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = http.get(&spec.url);
    if let Some(r) = resume::range_header(have) {
        req = req.header(reqwest::header::RANGE, r);
    }
    if let Some(t) = &spec.token {
        req = req.bearer_auth(t);
    }
    let resp = tokio::select! {
        r = tokio::time::timeout(policy.stall_timeout, req.send()) => match r {
            Err(_) => return Ok(Attempt::Retry("the server did not answer".into())),
            Ok(Err(e)) => return Ok(Attempt::Retry(e.to_string())),
            Ok(Ok(r)) => r,
        },
        _ = control.pause.cancelled() => return stop_requested(control, part, &file).map(|_| Attempt::Done),
        _ = control.cancel.cancelled() => return stop_requested(control, part, &file).map(|_| Attempt::Done),
    };
    let status = resp.status().as_u16();
    match status {
        401 | 403 => {
            return Err(DownloadError::Unauthorized {
                what: spec.url.clone(),
                status,
            })
        }
        404 => {
            return Err(DownloadError::NotFound {
                what: spec.url.clone(),
            })
        }
        s if s >= 500 || s == 429 => return Ok(Attempt::Retry(format!("HTTP {s}"))),
        _ => {}
    }
    let content_range = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let file_out = match resume::answer(have, status, content_range.as_deref(), spec.size) {
        Answer::Complete => return Ok(Attempt::Done),
        Answer::RetryFromZero => {
            std::fs::remove_file(part).map_err(io)?;
            st.hasher = Sha256::new();
            return Ok(Attempt::Retry("the server refused to resume".into()));
        }
        Answer::Restart => {
            have = 0;
            st.hasher = Sha256::new();
            std::fs::File::create(part).map_err(io)?
        }
        Answer::Append if (200..300).contains(&status) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(part)
            .map_err(io)?,
        Answer::Append => return Ok(Attempt::Retry(format!("HTTP {status}"))),
    };
    // The bytes are written and hashed on a thread of their own while the next ones
    // arrive: on a fast link receiving, writing and hashing in turn left each waiting.
    let mut sink = Sink::start(file_out, std::mem::take(&mut st.hasher));
    if have == 0 {
        st.rate_from = (Instant::now(), 0);
    }
    let mut body = resp.bytes_stream();
    let ended: Ended = loop {
        let next = tokio::select! {
            n = tokio::time::timeout(policy.stall_timeout, body.next()) => n,
            // A quiet moment: what was gathered goes to disk now, not at the next MB.
            _ = tokio::time::sleep(Duration::from_millis(100)), if sink.has_pending() => {
                if !sink.flush().await {
                    break Ended::Complete;
                }
                continue;
            }
            _ = control.pause.cancelled() => break Ended::Stopped,
            _ = control.cancel.cancelled() => break Ended::Stopped,
        };
        let chunk = match next {
            Err(_) => {
                break Ended::Retry(format!("no data for {} s", policy.stall_timeout.as_secs()))
            }
            Ok(None) => break Ended::Complete,
            Ok(Some(Err(e))) => break Ended::Retry(e.to_string()),
            Ok(Some(Ok(c))) => c,
        };
        st.received += chunk.len() as u64;
        if have + chunk.len() as u64 > spec.size {
            break Ended::TooLong(have + chunk.len() as u64);
        }
        let n = chunk.len() as u64;
        if !sink.send(chunk).await {
            break Ended::Complete; // the writer stopped: its error is reported below
        }
        have += n;
        if st.last_event.elapsed() >= Duration::from_millis(200) {
            st.last_event = Instant::now();
            let secs = st.rate_from.0.elapsed().as_secs_f64().max(1e-3);
            let rate = (have.saturating_sub(st.rate_from.1)) as f64 / secs;
            events.emit(Event::Download {
                file: file.clone(),
                state: DownloadState::Downloading,
                bytes: have,
                total: spec.size,
                bytes_per_second: rate,
                eta_seconds: (rate > 0.0).then(|| (spec.size - have) as f64 / rate),
            });
        }
    };
    // Every byte handed over is on disk and in the hash before anything else happens.
    let (written, hasher) = sink.finish().await;
    st.hasher = hasher;
    // Durable before it can be renamed into place: a crash must never leave a file that
    // looks verified but is not on disk.
    if let Err(e) = written.and_then(|f| f.sync_all()) {
        return Err(if e.raw_os_error() == Some(libc::ENOSPC) {
            DownloadError::DiskFull {
                file: file.clone(),
                needed: spec.size - have.min(spec.size),
                free: disk::available_bytes(part.parent().unwrap_or(Path::new("."))).unwrap_or(0),
            }
        } else {
            io(e)
        });
    }
    match ended {
        Ended::Complete => {}
        Ended::Stopped => return stop_requested(control, part, &file).map(|_| Attempt::Done),
        Ended::Retry(why) => return Ok(Attempt::Retry(why)),
        Ended::TooLong(got) => {
            let _ = std::fs::remove_file(part);
            return Err(DownloadError::TooLong {
                file,
                got,
                expected: spec.size,
            });
        }
    }
    if have < spec.size {
        return Ok(Attempt::Retry(format!(
            "the connection ended at {have} of {} bytes",
            spec.size
        )));
    }
    events.emit(Event::Download {
        file,
        state: DownloadState::Verifying,
        bytes: have,
        total: spec.size,
        bytes_per_second: 0.0,
        eta_seconds: None,
    });
    Ok(Attempt::Done)
}
