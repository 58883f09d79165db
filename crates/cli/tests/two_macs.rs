//! Two Macs, one model, on one machine: each "Mac" is a Kindling home of its own, run as
//! its own `kindling` process; the helpers listen on 127.0.0.2 and 127.0.0.3 (loopback
//! addresses of their own), the serving Mac dials them. The real `ggml-rpc-server` and
//! `llama-server` with the sample model; nothing is played but what the test names.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One split at a time: each takes the machine's two cores three times over.
static SPLIT_LOCK: Mutex<()> = Mutex::new(());

fn kindling(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kindling"));
    c.env("KINDLING_HOME", home)
        .env_remove("KINDLING_LLAMA_SERVER");
    c
}

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sample_model() -> PathBuf {
    let m = checkout().join(".runtime/models/gemma-3-270m-q4_k_m.gguf");
    assert!(m.is_file(), "run `make setup` first");
    m
}

/// A free port on `ip` (a loopback address of its own).
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A `kindling` process whose output (both streams) is collected line by line.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Running { child, lines }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a line containing `needle`; panics with everything said otherwise.
    fn expect(&mut self, needle: &str, limit: Duration) -> String {
        let found = wait_until(limit, || {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
        });
        assert!(
            found,
            "no line with {needle:?} within {limit:?}:\n{}",
            self.text()
        );
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(needle))
            .unwrap()
            .clone()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pairs the Mac of `home` (typing the code) with the one of `helper_home`, which
/// shows it on `ip:port`.
fn pair(home: &Path, name: &str, helper_home: &Path, helper: &str, ip: &str, port: u16) {
    let mut shower = Running::start({
        let mut c = kindling(helper_home);
        c.args([
            "pair",
            "--host",
            ip,
            "--port",
            &port.to_string(),
            "--name",
            helper,
        ]);
        c
    });
    let line = shower.expect("Pairing code:", Duration::from_secs(30));
    let code = line.trim_start_matches("Pairing code:").trim().to_string();
    let out = kindling(home)
        .args([
            "pair",
            &code,
            "--at",
            &format!("{ip}:{port}"),
            "--name",
            name,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    shower.expect(&format!("Paired with {name}"), Duration::from_secs(10));
    assert!(shower.child.wait().unwrap().success());
}

fn share(home: &Path, name: &str, ip: &str, port: u16, memory: &str) -> Running {
    let mut helper = Running::start({
        let mut c = kindling(home);
        c.args([
            "share",
            "--host",
            ip,
            "--port",
            &port.to_string(),
            "--name",
            name,
        ])
        .args(["--memory", memory]);
        c
    });
    helper.expect("Press Ctrl-C to stop.", Duration::from_secs(60));
    helper
}

/// An HTTP request to 127.0.0.1:`port`; the whole response as text (chunks joined).
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut bytes = Vec::new();
    let _ = c.read_to_end(&mut bytes);
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn healthy(port: u16) -> bool {
    http(port, "GET", "/health", "").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
}

/// The greedy continuation of a fixed prompt, as the server at `port` gives it.
fn greedy(port: u16) -> String {
    let body = r#"{"model":"gemma-3-270m-q4_k_m","prompt":"The capital of France is","max_tokens":24,"temperature":0,"seed":1}"#;
    let response = http(port, "POST", "/v1/completions", body).expect("the server answers");
    let json_start = response.find('{').unwrap_or_else(|| panic!("{response}"));
    let json_end = response.rfind('}').unwrap_or_else(|| panic!("{response}"));
    let v: serde_json::Value = serde_json::from_str(&response[json_start..=json_end])
        .unwrap_or_else(|e| panic!("{e}: {response}"));
    v["choices"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

/// The sample model's greedy answer from llama-server alone, its weights not repacked
/// (a split computes without repacking on every Mac; see the closing note).
fn alone_answer() -> String {
    let port = free_port("127.0.0.1");
    let server = checkout().join(".runtime/bin/llama-server");
    let mut child = Command::new(server)
        .arg("--model")
        .arg(sample_model())
        .args([
            "--port",
            &port.to_string(),
            "--no-repack",
            "--device",
            "none",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || healthy(port)),
        "llama-server alone did not start"
    );
    let answer = greedy(port);
    let _ = child.kill();
    let _ = child.wait();
    answer
}

/// Listening TCP sockets (IPv4 and IPv6) by inode: their address.
fn listening() -> std::collections::HashMap<u64, SocketAddr> {
    let mut out = std::collections::HashMap::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let (ip_hex, port_hex) = f[1].split_once(':').unwrap();
            let port = u16::from_str_radix(port_hex, 16).unwrap();
            let ip: std::net::IpAddr = if v6 {
                let mut b = [0u8; 16];
                for (i, chunk) in b.chunks_mut(4).enumerate() {
                    let word = u32::from_str_radix(&ip_hex[i * 8..i * 8 + 8], 16).unwrap();
                    chunk.copy_from_slice(&word.to_le_bytes());
                }
                std::net::Ipv6Addr::from(b).into()
            } else {
                let n = u32::from_str_radix(ip_hex, 16).unwrap();
                std::net::Ipv4Addr::from(n.to_le_bytes()).into()
            };
            out.insert(f[9].parse().unwrap(), SocketAddr::new(ip, port));
        }
    }
    out
}

/// Where process `pid` listens.
fn listens(pid: u32) -> Vec<SocketAddr> {
    let sockets = listening();
    let mut out: Vec<SocketAddr> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let s = l.to_string_lossy().into_owned();
            s.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse::<u64>()
                .ok()
        })
        .filter_map(|inode| sockets.get(&inode).copied())
        .collect();
    out.sort();
    out
}

/// The children of `pid` (all its threads').
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn pairing_with_a_wrong_code_fails_and_keeps_nothing() {
    let homes = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let port = free_port("127.0.0.2");
    let mut shower = Running::start({
        let mut c = kindling(homes[1].path());
        c.args([
            "pair",
            "--host",
            "127.0.0.2",
            "--port",
            &port.to_string(),
            "--name",
            "Alpha",
        ]);
        c
    });
    let line = shower.expect("Pairing code:", Duration::from_secs(30));
    let code: String = line.chars().filter(char::is_ascii_digit).collect();
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let out = kindling(homes[0].path())
        .args(["pair", &wrong, "--at", &format!("127.0.0.2:{port}")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("the code did not match"), "{said}");
    assert!(said.contains("Nothing was saved"), "{said}");
    // The code is used up by the wrong try: the right one no longer works.
    shower.expect("was not the one shown here", Duration::from_secs(10));
    let out = kindling(homes[0].path())
        .args(["pair", &code, "--at", &format!("127.0.0.2:{port}")])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for home in &homes {
        assert!(
            !home.path().join("peers.json").exists(),
            "a failed pairing kept a peer"
        );
    }
}

/// The journey of issue 23: pair a serving Mac with two helpers, split the sample model
/// over the three (this Mac's own allowance too small to hold it), check the answer and
/// that nothing but the tunnels listens beyond 127.0.0.1, then lose one helper mid-answer
/// (killed: the app gets an error, the model comes back on the two Macs left), then the
/// other (frozen, as a Mac asleep: the heartbeat notices, and without it the model no
/// longer fits, so serving stops with a sentence that says so).
#[test]
fn a_model_split_over_two_helpers_answers_as_alone_and_survives_losing_one() {
    let _one = SPLIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let alone = alone_answer();
    let (serving, alpha, beta) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (pa, pb) = (free_port("127.0.0.2"), free_port("127.0.0.3"));
    pair(
        serving.path(),
        "Server",
        alpha.path(),
        "Alpha",
        "127.0.0.2",
        pa,
    );
    pair(
        serving.path(),
        "Server",
        beta.path(),
        "Beta",
        "127.0.0.3",
        pb,
    );
    let helper_a = share(alpha.path(), "Alpha", "127.0.0.2", pa, "150MB");
    let helper_b = share(beta.path(), "Beta", "127.0.0.3", pb, "150MB");

    // A Mac that was not paired: it knows where the helpers are and their keys (a copy
    // of the serving Mac's list), but its own key was never paired. It gets nothing.
    let stranger = tempfile::tempdir().unwrap();
    std::fs::copy(
        serving.path().join("peers.json"),
        stranger.path().join("peers.json"),
    )
    .unwrap();
    let out = kindling(stranger.path())
        .args(["peers", "--json"])
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    for row in rows.as_array().unwrap() {
        assert_eq!(row["reachable"], false, "{row}");
        assert!(
            row["problem"]
                .as_str()
                .unwrap()
                .contains("refused this Mac"),
            "{row}"
        );
    }
    // Nor does anything that does not speak the tunnel: the connection is closed unanswered.
    let mut raw = TcpStream::connect(("127.0.0.2", pa)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    assert!(got.is_empty(), "an unpaired caller got {got:?}");

    let port = free_port("127.0.0.1");
    let mut server = Running::start({
        let mut c = kindling(serving.path());
        c.args(["serve", "--model"])
            .arg(sample_model())
            .args(["--port", &port.to_string(), "--name", "Server"])
            .args([
                "--with",
                "Alpha",
                "--with",
                "Beta",
                "--local-memory",
                "300MB",
            ]);
        c
    });
    server.expect("Split with Alpha and Beta", Duration::from_secs(180));
    let plan = server.text();
    assert!(plan.contains("Predicted speed:"), "{plan}");
    assert_eq!(
        greedy(port),
        alone,
        "the split answer differs from the model alone"
    );

    // Nothing but the tunnels listens beyond 127.0.0.1: each RPC server on 127.0.0.1
    // only, each helper's Kindling on its tunnel only, the serving Mac on loopback.
    for (helper, addr) in [
        (&helper_a, SocketAddr::from(([127, 0, 0, 2], pa))),
        (&helper_b, SocketAddr::from(([127, 0, 0, 3], pb))),
    ] {
        assert_eq!(listens(helper.pid()), vec![addr]);
        let rpc: Vec<u32> = children(helper.pid())
            .into_iter()
            .filter(|p| cmdline(*p).contains("ggml-rpc-server"))
            .collect();
        assert_eq!(rpc.len(), 1, "one RPC server per helper: {rpc:?}");
        let at = listens(rpc[0]);
        assert_eq!(at.len(), 1, "{at:?}");
        assert_eq!(at[0].ip().to_string(), "127.0.0.1", "{at:?}");
    }
    let mut serving_pids = vec![server.pid()];
    serving_pids.extend(children(server.pid()));
    for pid in serving_pids {
        for addr in listens(pid) {
            assert_eq!(
                addr.ip().to_string(),
                "127.0.0.1",
                "{} listens on {addr}",
                cmdline(pid)
            );
        }
    }

    // Beta is killed in the middle of an answer.
    let streamed = std::thread::spawn(move || {
        let body = r#"{"model":"gemma-3-270m-q4_k_m","messages":[{"role":"user","content":"Tell a long story about a cat."}],"max_tokens":400,"temperature":0,"stream":true}"#;
        http(port, "POST", "/v1/chat/completions", body).unwrap_or_default()
    });
    std::thread::sleep(Duration::from_millis(1500));
    signal(helper_b.pid(), "-KILL");
    let cut = streamed.join().unwrap();
    assert!(
        cut.contains("\"content\""),
        "nothing streamed before the kill: {cut}"
    );
    assert!(
        cut.contains("server_stopped"),
        "the app was not told the answer is incomplete: {cut}"
    );
    server.expect("Beta stopped answering", Duration::from_secs(30));
    server.expect("Serving it again without Beta", Duration::from_secs(30));
    server.expect("Split with Alpha:", Duration::from_secs(180));
    assert!(wait_until(Duration::from_secs(30), || healthy(port)));
    assert_eq!(
        greedy(port),
        alone,
        "the answer on two Macs differs from the model alone"
    );

    // Alpha freezes (a Mac asleep keeps its connections open and says nothing).
    signal(helper_a.pid(), "-STOP");
    let line = server.expect("Alpha stopped answering", Duration::from_secs(30));
    assert!(line.contains("nothing came from it for"), "{line}");
    server.expect(
        "Without Alpha the model does not fit",
        Duration::from_secs(30),
    );
    assert!(wait_until(Duration::from_secs(30), || server
        .child
        .try_wait()
        .unwrap()
        .is_some()));
    assert!(!server.child.wait().unwrap().success());
    assert!(!healthy(port), "a server still answers over a dead pool");
    signal(helper_a.pid(), "-CONT");
}

/// A helper whose runtime is another llama.cpp build is refused, and the sentence says
/// which Mac to update. Stand-in: a runtime folder whose manifest names build 1 (the
/// binaries are the real ones, linked), playing "the other Mac runs an older Kindling".
#[test]
fn a_helper_on_another_runtime_build_is_refused_with_the_mac_to_update() {
    let (serving, older) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let built = checkout().join(".runtime/built");
    let other = older.path().join("runtime");
    std::fs::create_dir_all(&other).unwrap();
    for entry in std::fs::read_dir(&built).unwrap().flatten() {
        let name = entry.file_name();
        if name == "runtime.json" {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let re = text.replace("\"llama_cpp_build\": ", "\"llama_cpp_build\": 1, \"was\": ");
            std::fs::write(other.join(&name), re).unwrap();
        } else if name == "llama-server" || name == "ggml-rpc-server" {
            std::fs::copy(entry.path(), other.join(&name)).unwrap();
        } else {
            std::os::unix::fs::symlink(entry.path(), other.join(&name)).unwrap();
        }
    }
    let port = free_port("127.0.0.2");
    let mut shower = Running::start({
        let mut c = kindling(older.path());
        c.env("KINDLING_LLAMA_SERVER", other.join("llama-server"))
            .args([
                "pair",
                "--host",
                "127.0.0.2",
                "--port",
                &port.to_string(),
                "--name",
                "Old iMac",
            ]);
        c
    });
    let line = shower.expect("Pairing code:", Duration::from_secs(30));
    let code: String = line.chars().filter(char::is_ascii_digit).collect();
    let out = kindling(serving.path())
        .args(["pair", &code, "--at", &format!("127.0.0.2:{port}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pairing is allowed across builds: {out:?}"
    );
    drop(shower);
    let _helper = {
        let mut c = kindling(older.path());
        c.env("KINDLING_LLAMA_SERVER", other.join("llama-server"))
            .args([
                "share",
                "--host",
                "127.0.0.2",
                "--port",
                &port.to_string(),
                "--name",
                "Old iMac",
            ]);
        let mut r = Running::start(c);
        r.expect("Press Ctrl-C to stop.", Duration::from_secs(60));
        r
    };
    let out = kindling(serving.path())
        .args(["serve", "--model"])
        .arg(sample_model())
        .args(["--with", "Old iMac", "--local-memory", "250MB", "--plan"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("runs build 1;"), "{said}");
    assert!(said.contains("Update Kindling on Old iMac"), "{said}");
}
