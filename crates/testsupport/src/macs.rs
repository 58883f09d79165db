//! Several "Macs" on one machine, for the tests and the benchmark of issue 23: each a
//! Kindling home of its own run as its own `kindling` process (the binary is the
//! caller's), helpers on loopback addresses of their own (127.0.0.2, 127.0.0.3).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `kindling` (at `bin`) with its home at `home`.
pub fn kindling(bin: &Path, home: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("KINDLING_HOME", home)
        .env_remove("KINDLING_LLAMA_SERVER");
    c
}

/// A free port on `ip` (a loopback address of its own).
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
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
pub struct Running {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn start(mut cmd: Command) -> Running {
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

    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a line containing `needle`; panics with everything said otherwise.
    pub fn expect(&mut self, needle: &str, limit: Duration) -> String {
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (a `kindling` of the showing Mac's home) as `pair` showing a code on
/// `ip:port` as `name`; returns it running, and the code's six digits.
pub fn show_code(mut cmd: Command, ip: &str, port: u16, name: &str) -> (Running, String) {
    cmd.args([
        "pair",
        "--host",
        ip,
        "--port",
        &port.to_string(),
        "--name",
        name,
    ]);
    let mut shower = Running::start(cmd);
    let line = shower.expect("Pairing code:", Duration::from_secs(30));
    let code = line.chars().filter(char::is_ascii_digit).collect();
    (shower, code)
}

/// Runs `cmd` to its end; asserts it succeeded (saying all it printed otherwise) and
/// returns what it printed on stdout.
pub fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `cmd` to its end; asserts it failed (saying what it printed otherwise) and
/// returns what it said on stderr.
pub fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "it succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Pairs the Mac of `home` (typing the code) with the one of `helper_home`, which
/// shows it on `ip:port`.
pub fn pair(
    bin: &Path,
    home: &Path,
    name: &str,
    helper_home: &Path,
    helper: &str,
    ip: &str,
    port: u16,
) {
    let (mut shower, code) = show_code(kindling(bin, helper_home), ip, port, helper);
    succeeds(kindling(bin, home).args([
        "pair",
        &code,
        "--at",
        &format!("{ip}:{port}"),
        "--name",
        name,
    ]));
    shower.expect(&format!("Paired with {name}"), Duration::from_secs(10));
    assert!(shower.child.wait().unwrap().success());
}

pub fn share(bin: &Path, home: &Path, name: &str, ip: &str, port: u16, memory: &str) -> Running {
    let mut helper = Running::start({
        let mut c = kindling(bin, home);
        c.args([
            "share",
            "--host",
            ip,
            "--port",
            &port.to_string(),
            "--name",
            name,
        ])
        .args(["--memory", memory])
        // As a Mac without the model's file lends: on one machine every home finds the
        // sample model beside the checkout, and a Mac that has it and serves nothing is
        // asked to serve it whole (route first) rather than given a share.
        .arg("--no-start");
        c
    });
    helper.expect("Press Ctrl-C to stop.", Duration::from_secs(60));
    helper
}

/// An HTTP request to 127.0.0.1:`port`; the whole response as text (chunks joined).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    http_keyed(port, method, path, body, None)
}

/// [`http`], sending `key` as a network client of a door in network mode does.
pub fn http_keyed(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    key: Option<&str>,
) -> Option<String> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    let auth = key.map_or_else(String::new, |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut bytes = Vec::new();
    let _ = c.read_to_end(&mut bytes);
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

pub fn healthy(port: u16) -> bool {
    http(port, "GET", "/health", "").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
}

/// A completion of `prompt` (greedy, `max_tokens`) from the server at `port`, as JSON.
pub fn completion(port: u16, prompt: &str, max_tokens: u32) -> serde_json::Value {
    completion_keyed(port, prompt, max_tokens, None)
}

/// [`completion`], sending `key`.
pub fn completion_keyed(
    port: u16,
    prompt: &str,
    max_tokens: u32,
    key: Option<&str>,
) -> serde_json::Value {
    let body = serde_json::json!({
        "model": "gemma-3-270m-q4_k_m",
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 1,
    })
    .to_string();
    let response =
        http_keyed(port, "POST", "/v1/completions", &body, key).expect("the server answers");
    let json_start = response.find('{').unwrap_or_else(|| panic!("{response}"));
    let json_end = response.rfind('}').unwrap_or_else(|| panic!("{response}"));
    serde_json::from_str(&response[json_start..=json_end])
        .unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// The greedy continuation of a fixed prompt, as the server at `port` gives it.
pub fn greedy(port: u16) -> String {
    greedy_keyed(port, None)
}

/// [`greedy`], sending `key`.
pub fn greedy_keyed(port: u16, key: Option<&str>) -> String {
    let v = completion_keyed(port, "The capital of France is", 24, key);
    v["choices"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

/// This machine's address on its network (not loopback): where a Mac announced on the
/// house's network (Bonjour) is reached.
pub fn lan_ip() -> String {
    let s = std::net::UdpSocket::bind(("0.0.0.0", 0)).unwrap();
    s.connect(("192.168.0.1", 9)).unwrap();
    let ip = s.local_addr().unwrap().ip();
    assert!(
        !ip.is_loopback(),
        "this machine has no network but loopback"
    );
    ip.to_string()
}
