//! A small real HTTP/1.1 file server on 127.0.0.1 serving real files with `Range`
//! support, shaped like Hugging Face (`/api/models/{repo}/tree/main` and
//! `/{repo}/resolve/main/{file}`, which redirects to a one-time "CDN" link, as HF's
//! expiring signed links do). Faults the real Hub cannot be made to show on demand are
//! switched on per test and named for what they play: [`Fault`].

pub mod macs;
pub mod process;

use std::collections::HashMap;
use std::io::SeekFrom;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A misbehaviour of the server, for one test.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Behaves.
    None,
    /// Answers every request with the whole file (200), ignoring `Range`.
    IgnoresRange,
    /// Flips a byte at this offset of the file: the sha256 will not match.
    WrongBytes { at: u64 },
    /// Goes silent (keeping the socket open) when the file offset reaches `at`, in
    /// every response: a download stuck at one point.
    Stalls { at: u64 },
    /// Cuts the connection once after each of these body offsets (one per response, in order).
    DropsAt { offsets: Vec<u64> },
}

/// What a request asked for (for assertions).
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub range_from: Option<u64>,
}

struct State {
    files: HashMap<String, (PathBuf, u64, String)>,
    fault: Mutex<Fault>,
    body_bytes_sent: AtomicU64,
    log: Mutex<Vec<Logged>>,
    next_token: AtomicU64,
    live_tokens: Mutex<Vec<u64>>,
    /// File bytes per second (0: as fast as loopback goes).
    rate: AtomicU64,
}

/// A running server. It stops when dropped.
pub struct FileServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FileServer {
    /// Serves `files` as `repo/file` → path on disk. Computes each file's sha256.
    pub async fn start(files: &[(&str, PathBuf)]) -> FileServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        FileServer::start_on(listener, files).await
    }

    /// [`FileServer::start`] on a socket already bound (so that files can name the
    /// server's address before it serves them).
    pub async fn start_on(
        listener: std::net::TcpListener,
        files: &[(&str, PathBuf)],
    ) -> FileServer {
        let mut map = HashMap::new();
        for (name, path) in files {
            let bytes = tokio::fs::read(path).await.expect("served file readable");
            let sha = format!("{:x}", Sha256::digest(&bytes));
            map.insert(name.to_string(), (path.clone(), bytes.len() as u64, sha));
        }
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            files: map,
            fault: Mutex::new(Fault::None),
            body_bytes_sent: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            next_token: AtomicU64::new(1),
            live_tokens: Mutex::new(Vec::new()),
            rate: AtomicU64::new(0),
        });
        let s = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = handle(sock, s).await;
                });
            }
        });
        FileServer { addr, state, task }
    }

    /// `http://127.0.0.1:PORT` — what `HF_ENDPOINT` is set to.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Sends file bodies at about `bytes_per_second`, as a home connection would (a
    /// download then takes long enough for its progress to be seen).
    pub fn set_rate(&self, bytes_per_second: u64) {
        self.state.rate.store(bytes_per_second, Ordering::SeqCst);
    }
    pub fn set_fault(&self, f: Fault) {
        *self.state.fault.lock().unwrap() = f;
    }
    /// Body bytes sent over all responses so far.
    pub fn body_bytes_sent(&self) -> u64 {
        self.state.body_bytes_sent.load(Ordering::SeqCst)
    }
    pub fn requests(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }
    /// The sha256 and size of a served file.
    pub fn file_meta(&self, name: &str) -> (String, u64) {
        let (_, size, sha) = &self.state.files[name];
        (sha.clone(), *size)
    }
}

async fn read_head(sock: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if sock.read(&mut byte).await? == 0 || buf.len() > 16 * 1024 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

async fn respond(
    sock: &mut TcpStream,
    status: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body).await?;
    sock.shutdown().await
}

async fn handle(mut sock: TcpStream, s: Arc<State>) -> std::io::Result<()> {
    let head = read_head(&mut sock).await?;
    let mut lines = head.lines();
    let path = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let range_from = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("range"))
        .and_then(|(_, v)| {
            v.trim()
                .strip_prefix("bytes=")?
                .split('-')
                .next()?
                .parse::<u64>()
                .ok()
        });
    s.log.lock().unwrap().push(Logged {
        path: path.clone(),
        range_from,
    });

    // /api/models/{org}/{name}/tree/main
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let repo = rest.split("/tree/").next().unwrap_or("");
        let entries: Vec<_> = s
            .files
            .iter()
            .filter_map(|(name, (_, size, sha))| {
                let file = name.strip_prefix(repo)?.strip_prefix('/')?;
                Some(serde_json::json!({"type": "file", "path": file, "size": size, "lfs": {"oid": sha, "size": size}}))
            })
            .collect();
        if entries.is_empty() {
            return respond(
                &mut sock,
                "404 Not Found",
                &[],
                b"{\"error\":\"Repository not found\"}",
            )
            .await;
        }
        let body = serde_json::to_vec(&entries).unwrap();
        return respond(
            &mut sock,
            "200 OK",
            &[("Content-Type".into(), "application/json".into())],
            &body,
        )
        .await;
    }
    // /{org}/{name}/resolve/{revision}/{file} → 302 to a one-time link (every revision
    // serves the same files; which one was asked for is in the log)
    let resolved = path
        .trim_start_matches('/')
        .split_once("/resolve/")
        .and_then(|(repo, rest)| rest.split_once('/').map(|(_, file)| (repo, file)));
    if let Some((repo, file)) = resolved {
        let name = format!("{repo}/{file}");
        if !s.files.contains_key(&name) {
            return respond(&mut sock, "404 Not Found", &[], b"Entry not found").await;
        }
        let token = s.next_token.fetch_add(1, Ordering::SeqCst);
        s.live_tokens.lock().unwrap().push(token);
        let loc = format!("/cdn/{token}/{name}");
        return respond(&mut sock, "302 Found", &[("Location".into(), loc)], b"").await;
    }
    // /cdn/{token}/{repo}/{file}: valid for one request, like an expiring signed URL.
    let Some(rest) = path.strip_prefix("/cdn/") else {
        return respond(&mut sock, "404 Not Found", &[], b"").await;
    };
    let (token, name) = rest.split_once('/').unwrap_or(("", ""));
    let token: u64 = token.parse().unwrap_or(0);
    let valid = {
        let mut live = s.live_tokens.lock().unwrap();
        let i = live.iter().position(|t| *t == token);
        i.map(|i| live.remove(i)).is_some()
    };
    if !valid {
        return respond(&mut sock, "403 Forbidden", &[], b"Request has expired").await;
    }
    let Some((file, size, _)) = s.files.get(name).cloned() else {
        return respond(&mut sock, "404 Not Found", &[], b"").await;
    };
    let fault = s.fault.lock().unwrap().clone();
    let from = match (&fault, range_from) {
        (Fault::IgnoresRange, _) | (_, None) => 0,
        (_, Some(f)) => f,
    };
    if from > size || (from == size && size > 0) {
        return respond(
            &mut sock,
            "416 Range Not Satisfiable",
            &[("Content-Range".into(), format!("bytes */{size}"))],
            b"",
        )
        .await;
    }
    let mut head = if from > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{size}\r\n",
            size - 1
        )
    } else {
        "HTTP/1.1 200 OK\r\n".to_string()
    };
    head.push_str(&format!(
        "Content-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\nContent-Type: application/octet-stream\r\n\r\n",
        size - from
    ));
    sock.write_all(head.as_bytes()).await?;
    let mut f = tokio::fs::File::open(&file).await?;
    f.seek(SeekFrom::Start(from)).await?;
    let cut_at = match &fault {
        Fault::DropsAt { offsets } => {
            let next = offsets.iter().copied().find(|o| *o > from);
            if let Some(o) = next {
                if let Fault::DropsAt { offsets } = &mut *s.fault.lock().unwrap() {
                    offsets.retain(|x| *x != o);
                }
            }
            next
        }
        _ => None,
    };
    let stall_at = match fault {
        Fault::Stalls { at } => Some(at),
        _ => None,
    };
    let mut pos = from;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let mut want = buf.len() as u64;
        if let Some(cut) = cut_at {
            want = want.min(cut.saturating_sub(pos));
        }
        if let Some(at) = stall_at {
            want = want.min(at.saturating_sub(pos));
        }
        if want == 0 {
            if stall_at.is_some_and(|at| pos >= at) {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            return Ok(()); // cut: drop the socket mid-body
        }
        let n = f.read(&mut buf[..want as usize]).await?;
        if n == 0 {
            break;
        }
        if let Fault::WrongBytes { at } = fault {
            if (pos..pos + n as u64).contains(&at) {
                buf[(at - pos) as usize] ^= 0xFF;
            }
        }
        sock.write_all(&buf[..n]).await?;
        pos += n as u64;
        s.body_bytes_sent.fetch_add(n as u64, Ordering::SeqCst);
        let rate = s.rate.load(Ordering::SeqCst);
        if rate > 0 {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
    }
    sock.shutdown().await
}

/// A stand-in for llama-server's OpenAI chat endpoint that plays one fault the real
/// server cannot be made to show on demand.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChatFault {
    /// Streams `<unused50>` forever (Gemma MoE on Vulkan over MoltenVK did this).
    StreamsUnusedForever,
    /// Accepts the request and never says a word.
    NeverAnswers,
}

/// The running stand-in; stops when dropped.
pub struct ChatStandIn {
    addr: SocketAddr,
    pieces_sent: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChatStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ChatStandIn {
    pub async fn start(fault: ChatFault) -> ChatStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pieces_sent = Arc::new(AtomicU64::new(0));
        let sent = pieces_sent.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let sent = sent.clone();
                tokio::spawn(async move {
                    let Ok(head) = read_head(&mut sock).await else {
                        return;
                    };
                    let len: usize = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    if sock.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    match fault {
                        ChatFault::NeverAnswers => {
                            tokio::time::sleep(Duration::from_secs(3600)).await
                        }
                        ChatFault::StreamsUnusedForever => {
                            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
                            if sock.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                            let piece = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"<unused50>\"}}]}\n\n";
                            for _ in 0..1_000_000 {
                                if sock.write_all(piece.as_bytes()).await.is_err() {
                                    return;
                                }
                                sent.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            }
                        }
                    }
                });
            }
        });
        ChatStandIn {
            addr,
            pieces_sent,
            task,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Pieces streamed before the client went away.
    pub fn pieces_sent(&self) -> u64 {
        self.pieces_sent.load(Ordering::SeqCst)
    }
}
