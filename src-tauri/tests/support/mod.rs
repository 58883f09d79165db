//! Drives the real app: Xvfb for a display, tauri-driver (which starts Debian's
//! WebKitWebDriver, which starts the app), and plain W3C WebDriver over HTTP.
#![allow(dead_code)] // each test binary uses its own part

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn tauri_driver() -> PathBuf {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|c| c.join("bin/tauri-driver"));
    let found = cargo_bin
        .filter(|p| p.is_file())
        .or_else(|| which("tauri-driver"));
    found.expect(
        "tauri-driver is not installed; `make test` installs it (cargo install tauri-driver --locked --version 2.1.0)",
    )
}

/// Makes `home` a Kindling home whose server listens on a free port; returns the port.
pub fn home_with_free_port(home: &Path) -> u16 {
    home_with_free_ports(home).0
}

/// [`home_with_free_port`], with the second server's port free too: `(first, second)`.
pub fn home_with_free_ports(home: &Path) -> (u16, u16) {
    let port = kindling_core::server::free_port().unwrap();
    let second = loop {
        let p = kindling_core::server::free_port().unwrap();
        if p != port {
            break p;
        }
    };
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(
        home.join("settings.toml"),
        format!("port = {port}\nsecond_port = {second}\n"),
    )
    .unwrap();
    (port, second)
}

/// Xvfb on a display of its own, unless one is already set.
pub struct Display {
    child: Option<Child>,
    pub name: String,
}

impl Display {
    pub fn start() -> Display {
        if let Ok(d) = std::env::var("KINDLING_E2E_DISPLAY") {
            return Display {
                child: None,
                name: d,
            };
        }
        let n = 90 + (std::process::id() % 500);
        let name = format!(":{n}");
        let child = Command::new("Xvfb")
            .args([&name, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is missing: `make test` installs it (Debian package xvfb)");
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        let end = Instant::now() + Duration::from_secs(10);
        while !socket.exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        Display {
            child: Some(child),
            name,
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// WebKitGTK's MiniBrowser (Debian ships it with libwebkit2gtk-4.1-0, in the
/// architecture's library folder).
fn mini_browser() -> PathBuf {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("webkit2gtk-4.1/MiniBrowser"))
        .find(|p| p.is_file())
        .expect("WebKitGTK's MiniBrowser is missing (Debian package libwebkit2gtk-4.1-0)")
}

/// A WebDriver session on the app, with its own tauri-driver.
/// A child in its own process group, killed with everything it started when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // WebKitWebDriver starts the app in a process group of its own, so walk the
        // tree rather than signal the group.
        let pids: Vec<String> = tree(self.0.id()).iter().map(u32::to_string).collect();
        let _ = Command::new("kill").arg("-KILL").args(&pids).status();
        let _ = self.0.wait();
    }
}

pub struct App {
    driver: Group,
    base: String,
    http: reqwest::blocking::Client,
    pub shots: PathBuf,
    /// The app's KINDLING_HOME, for its log when something fails.
    home: Option<PathBuf>,
    display: String,
}

impl App {
    /// Starts the app (the debug binary cargo built for this test) with `env`.
    pub fn launch(display: &Display, env: &[(&str, &Path)]) -> App {
        App::launch_binary(
            display,
            Path::new(env!("CARGO_BIN_EXE_kindling-desktop")),
            None,
            env,
        )
    }

    /// Starts the app at `app` (an installed one, say) in the folder `cwd`, with `env`.
    pub fn launch_binary(
        display: &Display,
        app: &Path,
        cwd: Option<&Path>,
        env: &[(&str, &Path)],
    ) -> App {
        let port = kindling_core::server::free_port().unwrap();
        let native = kindling_core::server::free_port().unwrap();
        // A session bus of its own (when dbus-run-session exists): the tray, notifications
        // and the single-instance lock talk D-Bus, as on a desktop.
        let mut cmd = match which("dbus-run-session") {
            Some(dbus) => {
                let mut c = Command::new(dbus);
                c.arg("--").arg(tauri_driver());
                c
            }
            None => Command::new(tauri_driver()),
        };
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("DISPLAY", &display.name)
        .env("KINDLING_LOG", "info")
        // Its own process group: WebKitWebDriver and the app go when the test ends.
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let driver = Group(cmd.spawn().expect("tauri-driver starts"));
        App::session(
            driver,
            port,
            json!({"browserName": "wry", "tauri:options": {"application": app}}),
            display,
            env.iter()
                .find(|(k, _)| *k == "KINDLING_HOME")
                .map(|(_, v)| v.to_path_buf()),
        )
    }

    /// Opens `page` (a file) in WebKitGTK's MiniBrowser, the engine the app itself runs
    /// on, driven by WebKitWebDriver: what the owner sees when Kindling opens a page it
    /// wrote.
    pub fn browse(display: &Display, page: &Path) -> App {
        let port = kindling_core::server::free_port().unwrap();
        let driver = Group(
            Command::new("WebKitWebDriver")
                .arg(format!("--port={port}"))
                .env("DISPLAY", &display.name)
                .env("GDK_GL", "disable")
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("WebKitWebDriver is missing: `make test` installs webkit2gtk-driver"),
        );
        let browser = App::session(
            driver,
            port,
            json!({"browserName": "MiniBrowser", "webkitgtk:browserOptions": {
                "binary": mini_browser(),
                "args": ["--automation"]
            }}),
            display,
            None,
        );
        let url = format!("file://{}", page.display());
        browser.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })));
        browser
    }

    /// A WebDriver session with `capabilities` on the driver listening on `port`.
    fn session(
        driver: Group,
        port: u16,
        capabilities: Value,
        display: &Display,
        home: Option<PathBuf>,
    ) -> App {
        assert!(
            wait_for_port(port, Duration::from_secs(20)),
            "the WebDriver did not listen"
        );
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        // tauri-driver listens before WebKitWebDriver behind it does: retry briefly.
        let end = Instant::now() + Duration::from_secs(30);
        let reply: Value = loop {
            let sent = http
                .post(format!("{base}/session"))
                .json(&json!({"capabilities": {"alwaysMatch": capabilities.clone()}}))
                .send();
            match sent {
                Ok(r) => break r.json().unwrap(),
                Err(e) if Instant::now() > end => panic!("no WebDriver session: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        };
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"))
            .to_string();
        let shots = repo().join("target/e2e-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        App {
            driver,
            base: format!("{base}/session/{session}"),
            http,
            shots,
            display: display.name.clone(),
            home,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().expect("WebDriver answers").json().unwrap();
        v["value"].clone()
    }

    /// Runs JavaScript in the page and returns its value.
    pub fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The text of the first element matching `css`, if there is one.
    pub fn text(&self, css: &str) -> Option<String> {
        let v = self.js(&format!(
            "const e = document.querySelector({}); return e ? e.innerText : null;",
            json!(css)
        ));
        v.as_str().map(str::to_string)
    }

    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let v = self.js(&format!(
            "const e = document.querySelector({}); return e ? e.getAttribute({}) : null;",
            json!(css),
            json!(name)
        ));
        v.as_str().map(str::to_string)
    }

    /// Clicks the element matching `css` as a user would (WebDriver element click).
    pub fn click(&self, css: &str) {
        self.act(css, "click", json!({}));
    }

    /// Types `text` into the field matching `css`, key by key, as a person would.
    pub fn type_into(&self, css: &str, text: &str) {
        self.act(css, "value", json!({ "text": text }));
    }

    /// Empties the field matching `css`, as a person selecting its text and deleting it.
    pub fn clear(&self, css: &str) {
        self.act(css, "clear", json!({}));
    }

    /// Does WebDriver's element `action` (`click`, `value`, `clear`) on the element
    /// matching `css`, once there is one; fails the test when WebDriver refuses.
    fn act(&self, css: &str, action: &str, body: Value) {
        let found = self.element(css);
        let r = self.call(
            reqwest::Method::POST,
            &format!("/element/{found}/{action}"),
            Some(body),
        );
        assert!(
            r.is_null() || r.get("error").is_none(),
            "{action} on {css} failed: {r}"
        );
    }

    /// The WebDriver id of the first element matching `css`, once there is one.
    fn element(&self, css: &str) -> String {
        self.wait(&format!("{css} to appear"), Duration::from_secs(30), || {
            let v = self.call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            );
            // A found element is `{"element-6066-…": id}`; not yet there is an error
            // object (whose first value must not be taken for an id).
            v.as_object()
                .filter(|o| !o.contains_key("error"))
                .and_then(|o| o.values().next())
                .and_then(|id| id.as_str().map(str::to_string))
        })
    }

    /// Polls `probe` until it gives a value, or fails the test after `within`.
    pub fn wait<T>(&self, what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
        let end = Instant::now() + within;
        loop {
            if let Some(v) = probe() {
                return v;
            }
            if Instant::now() > end {
                self.screenshot(&format!("failed-{}", what.replace([' ', '/'], "-")));
                let log = self
                    .home
                    .as_ref()
                    .and_then(|h| std::fs::read_to_string(h.join("logs/desktop.log")).ok())
                    .unwrap_or_default();
                panic!("timed out after {within:?} waiting for {what}\napp log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the window's UI is up.
    pub fn wait_ready(&self) {
        self.wait("the window to be ready", Duration::from_secs(60), || {
            (self.attr("main", "data-ready").as_deref() == Some("true")).then_some(())
        });
    }

    /// Whether the Server screen shows the menu-bar server in `state` (`ready`, …).
    pub fn server_is(&self, state: &str) -> bool {
        self.attr("[data-testid=server-state]", "data-state")
            .as_deref()
            == Some(state)
    }

    /// Waits until the Server screen shows the menu-bar server in `state`.
    pub fn wait_server(&self, state: &str, within: Duration) {
        self.wait(&format!("the server to be {state}"), within, || {
            self.server_is(state).then_some(())
        });
    }

    /// Waits until `css` exists and returns its text.
    pub fn wait_text(&self, css: &str, within: Duration) -> String {
        self.wait(css, within, || self.text(css))
    }

    /// Saves a PNG of the display, as the user sees it, to target/e2e-screenshots/NAME.png
    /// (ImageMagick's `import`; WebKit's own snapshot hangs with GDK's GL disabled).
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let path = self.shots.join(format!("{name}.png"));
        let ok = Command::new("/usr/bin/import")
            .args(["-window", "root"])
            .arg(&path)
            .env("DISPLAY", &self.display)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not take the screenshot {name} (is imagemagick installed?)"
        );
        path
    }

    /// Presses Ctrl-W in the window, as a user closing it would.
    pub fn press_ctrl_w(&self) {
        const CONTROL: &str = "\u{E009}";
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                    {"type": "keyDown", "value": CONTROL},
                    {"type": "keyDown", "value": "w"},
                    {"type": "keyUp", "value": "w"},
                    {"type": "keyUp", "value": CONTROL},
                ]}]}),
            ),
        );
    }

    /// The app's process (a descendant of this session's driver).
    pub fn app_pid(&self) -> Option<u32> {
        tree(self.driver.0.id())
            .into_iter()
            .find(|&p| comm(p).starts_with("kindling-deskto"))
    }
}

// No DELETE of the session on drop: WebKitWebDriver would wait for an app that, by
// design, stays in the menu bar. Dropping `driver` ends the whole process group.

/// `root` and every process whose parent chain leads to it.
pub fn tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// Whether `pid` runs (exists and is not a zombie waiting to be reaped).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s[s.rfind(')')? + 2..].to_string();
            after.split_whitespace().next().map(|st| st != "Z")
        })
        .unwrap_or(false)
}

/// A process's short name (`/proc/PID/comm`), empty once it is gone.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Proportional set size in KiB (`/proc/PID/smaps_rollup`); 0 once it is gone.
pub fn pss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
