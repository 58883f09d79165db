//! Two Macs, one model, on one machine: each "Mac" is a Kindling home of its own, run as
//! its own `kindling` process; the helpers listen on loopback addresses of their own
//! (127.0.0.2 and .3 for the journey, .4 and .5 for the tests beside it, so that tests
//! running at once never meet), the serving Mac dials them. The real `ggml-rpc-server` and
//! `llama-server` with the sample model; nothing is played but what the test names.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use kindling_testsupport::macs::{
    self, free_port, greedy, greedy_keyed, healthy, http, wait_until, Running,
};
use kindling_testsupport::process::{children, cmdline, listening_on, listens};

/// One split at a time: each takes the machine's two cores three times over. Tests that
/// start a helper of a new home take it too: a helper's first share measures its memory's
/// speed, and a split's plan follows those figures (a helper measured while another
/// measures reads slow and is given no layers).
static SPLIT_LOCK: Mutex<()> = Mutex::new(());

fn kindling(home: &Path) -> Command {
    macs::kindling(bin(), home)
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kindling"))
}

fn pair(home: &Path, name: &str, helper_home: &Path, helper: &str, ip: &str, port: u16) {
    macs::pair(bin(), home, name, helper_home, helper, ip, port)
}

fn share(home: &Path, name: &str, ip: &str, port: u16, memory: &str) -> Running {
    macs::share(bin(), home, name, ip, port, memory)
}

/// `kindling peers --json` of the Mac of `home` (introducing itself as "Serving").
fn peers(home: &Path) -> serde_json::Value {
    let out = macs::succeeds(kindling(home).args(["peers", "--json", "--name", "Serving"]));
    serde_json::from_str(&out).unwrap()
}

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sample_model() -> PathBuf {
    let m = checkout().join(".runtime/models/gemma-3-270m-q4_k_m.gguf");
    assert!(m.is_file(), "run `make setup` first");
    m
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

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

/// `serve --with` says that without `mac` the model fits nowhere, and exits with failure.
fn stops_without(server: &mut Running, mac: &str) {
    server.expect(
        &format!("Without {mac} the model does not fit"),
        Duration::from_secs(30),
    );
    assert!(wait_until(Duration::from_secs(30), || server
        .child
        .try_wait()
        .unwrap()
        .is_some()));
    assert!(!server.child.wait().unwrap().success());
}

#[test]
fn pairing_with_a_wrong_code_fails_and_keeps_nothing() {
    let homes = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let port = free_port("127.0.0.4");
    let (mut shower, code) = macs::show_code(kindling(homes[1].path()), "127.0.0.4", port, "Alpha");
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let at = format!("127.0.0.4:{port}");
    let said = macs::fails(kindling(homes[0].path()).args(["pair", &wrong, "--at", &at]));
    assert!(said.contains("the code did not match"), "{said}");
    assert!(said.contains("Nothing was saved"), "{said}");
    // The code is used up by the wrong try: the right one no longer works.
    shower.expect("was not the one shown here", Duration::from_secs(10));
    macs::fails(kindling(homes[0].path()).args(["pair", &code, "--at", &at]));
    for home in &homes {
        assert!(
            !home.path().join("peers.json").exists(),
            "a failed pairing kept a peer"
        );
    }
}

/// Macs find each other on the house's network (Bonjour): a Mac showing a code there is
/// paired by its code alone, and a paired Mac that comes back at another address (a new
/// port here; a new address from the router at home) is found again by its key, and kept
/// there.
#[test]
fn a_mac_on_the_network_is_paired_by_its_code_alone_and_found_again_where_it_moved() {
    let _one = SPLIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let ip = macs::lan_ip();
    let homes = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    // A name of its own: other machines' tests on the same network never meet it.
    let name = format!("Bonjour {}", std::process::id());
    let port = free_port(&ip);
    let (mut shower, code) = macs::show_code(kindling(homes[1].path()), &ip, port, &name);
    shower.expect(
        &format!("kindling pair {code} (from another network"),
        Duration::from_secs(5),
    );
    let said = macs::succeeds(kindling(homes[0].path()).args(["pair", &code, "--name", "Serving"]));
    assert!(
        said.contains(&format!("Paired with {name} ({ip}:{port})")),
        "{said}"
    );
    shower.expect("Paired with Serving", Duration::from_secs(10));
    drop(shower);

    let moved = free_port(&ip);
    let _helper = share(homes[1].path(), &name, &ip, moved, "1GB");
    let rows = peers(homes[0].path());
    assert_eq!(rows[0]["name"], name.as_str(), "{rows}");
    assert_eq!(rows[0]["reachable"], true, "{rows}");
    assert_eq!(rows[0]["address"], format!("{ip}:{moved}"), "{rows}");
    let book = std::fs::read_to_string(homes[0].path().join("peers.json")).unwrap();
    assert!(book.contains(&format!("{ip}:{moved}")), "{book}");

    // Nobody shows a code now: typing one says so, and what to do.
    let said = macs::fails(kindling(homes[0].path()).args(["pair", "123456"]));
    assert!(
        said.contains("No Mac on this network is showing a pairing code now"),
        "{said}"
    );
    // A mistyped code is said as such, not as a Mac missing from the network.
    let said = macs::fails(kindling(homes[0].path()).args(["pair", "12"]));
    assert!(said.contains("a pairing code has six digits"), "{said}");
}

/// A helper lends only while plugged in (its owner's default). Unplugged, it says no and
/// why, to a Mac asking what it lends; plugged in again, it lends. The power supplies
/// folder Linux lists is a stand-in here for a cable pulled out, which no test machine can
/// do; the ending of a link already lending is `wire`'s `a_pipe_ended_by_its_side_…` test.
#[test]
fn a_helper_on_battery_says_no_and_why_and_lends_again_plugged_in() {
    let _one = SPLIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let homes = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let supplies = tempfile::tempdir().unwrap();
    let plug = |online: &str| {
        std::fs::create_dir_all(supplies.path().join("AC")).unwrap();
        std::fs::write(supplies.path().join("AC/type"), "Mains\n").unwrap();
        std::fs::write(supplies.path().join("AC/online"), online).unwrap();
    };
    plug("1\n");
    let port = free_port("127.0.0.7");
    pair(
        homes[0].path(),
        "Serving",
        homes[1].path(),
        "Laptop",
        "127.0.0.7",
        port,
    );
    let mut helper = Running::start({
        let mut c = kindling(homes[1].path());
        c.args(["share", "--host", "127.0.0.7", "--port", &port.to_string()])
            .args(["--name", "Laptop", "--memory", "1GB"])
            .env("KINDLING_POWER_SUPPLIES", supplies.path());
        c
    });
    helper.expect("It lends only while plugged in", Duration::from_secs(60));
    let asked = || peers(homes[0].path());
    assert_eq!(asked()[0]["reachable"], true);
    plug("0\n");
    let rows = asked();
    assert_eq!(rows[0]["reachable"], false, "{rows}");
    let why = rows[0]["problem"].as_str().unwrap();
    assert!(
        why.starts_with("Laptop said no: it runs on battery, and its owner lends it only while it is plugged in."),
        "{why}"
    );
    plug("1\n");
    assert_eq!(asked()[0]["reachable"], true);
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
    let helper_a = share(alpha.path(), "Alpha", "127.0.0.2", pa, "520MB");
    let helper_b = share(beta.path(), "Beta", "127.0.0.3", pb, "520MB");

    // A Mac that was not paired: it knows where the helpers are and their keys (a copy
    // of the serving Mac's list), but its own key was never paired. It gets nothing.
    let stranger = tempfile::tempdir().unwrap();
    std::fs::copy(
        serving.path().join("peers.json"),
        stranger.path().join("peers.json"),
    )
    .unwrap();
    let rows = peers(stranger.path());
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
    // The measured speed beside the predicted one, before it is announced as split.
    assert!(
        plan.contains("Measured: ") && plan.contains("(the plan predicted"),
        "{plan}"
    );
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
            .filter(|p| cmdline(*p).join(" ").contains("ggml-rpc-server"))
            .collect();
        assert_eq!(rpc.len(), 1, "one RPC server per helper: {rpc:?}");
        let at = listens(rpc[0]);
        assert_eq!(at.len(), 1, "{at:?}");
        // It never took more than its owner allowed, loading included.
        let peak = kindling_core::server::process::peak_rss_bytes(rpc[0]).unwrap();
        assert!(peak <= 520_000_000, "{addr} peaked at {peak} bytes");
        assert_eq!(at[0].ip().to_string(), "127.0.0.1", "{at:?}");
    }
    let mut serving_pids = vec![server.pid()];
    serving_pids.extend(children(server.pid()));
    for pid in serving_pids {
        for addr in listens(pid) {
            assert_eq!(
                addr.ip().to_string(),
                "127.0.0.1",
                "{:?} listens on {addr}",
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
    stops_without(&mut server, "Alpha");
    assert!(!healthy(port), "a server still answers over a dead pool");
    signal(helper_a.pid(), "-CONT");
}

/// A helper whose runtime is another llama.cpp build is refused, and the sentence says
/// which Mac to update. Stand-in: a runtime folder whose manifest names build 1 (the
/// binaries are the real ones, linked), playing "the other Mac runs an older Kindling".
#[test]
fn a_helper_on_another_runtime_build_is_refused_with_the_mac_to_update() {
    let _one = SPLIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
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
    let port = free_port("127.0.0.5");
    let mut older_kindling = kindling(older.path());
    older_kindling.env("KINDLING_LLAMA_SERVER", other.join("llama-server"));
    let (shower, code) = macs::show_code(older_kindling, "127.0.0.5", port, "Old iMac");
    // Pairing is allowed across builds.
    macs::succeeds(kindling(serving.path()).args([
        "pair",
        &code,
        "--at",
        &format!("127.0.0.5:{port}"),
    ]));
    drop(shower);
    let _helper = {
        let mut c = kindling(older.path());
        c.env("KINDLING_LLAMA_SERVER", other.join("llama-server"))
            .args([
                "share",
                "--host",
                "127.0.0.5",
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

/// `recommend --with` plans for two recorded profiles: the field report's iMac and a
/// 24 GB Apple Silicon Mac run Gemma 4 31B together, which neither runs fast alone.
#[test]
fn recommend_with_names_what_the_pair_runs_that_neither_runs_alone() {
    let home = tempfile::tempdir().unwrap();
    let text = macs::succeeds(kindling(home.path()).args([
        "recommend",
        "--machine",
        "imac-2017",
        "--with",
        "mac-mini-m4-pro-24gb",
    ]));
    assert!(text.contains("neither runs fast alone"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("Gemma 4 31B Q4_K_M"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("tok/s") && line.contains("imac-2017"),
        "{line}"
    );
}

/// Turns network access on for the Mac of `home` (as the Server screen's switch does);
/// the key its other devices must send.
fn network_on(home: &Path) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let core = kindling_core::Core::open(kindling_core::Paths::new(home))
            .await
            .unwrap();
        core.set_network_access(true).unwrap();
        core.network_key().expect("a key was made")
    })
}

/// `kindling serve` of `model` alone on `port`, in the Mac of `home`, once it answers.
fn serve_alone(home: &Path, model: &Path, port: u16) -> Running {
    let mut server = Running::start({
        let mut c = kindling(home);
        c.args(["serve", "--model"])
            .arg(model)
            .args(["--port", &port.to_string()]);
        c
    });
    server.expect("Press Ctrl-C to stop", Duration::from_secs(120));
    server
}

/// `kindling share` of the Mac of `home` as `name` on `ip:share_port`, lending 100 MB
/// and its model server on `serve_port`, with `more` arguments.
fn lend_server(
    home: &Path,
    name: &str,
    ip: &str,
    share_port: u16,
    serve_port: u16,
    more: &[&str],
) -> Running {
    let mut helper = Running::start({
        let mut c = kindling(home);
        c.args(["share", "--host", ip, "--port", &share_port.to_string()])
            .args(["--name", name, "--memory", "100MB"])
            .args(["--serve-port", &serve_port.to_string()])
            .args(more);
        c
    });
    helper.expect("Press Ctrl-C to stop.", Duration::from_secs(60));
    helper
}

/// What `kindling serve --with MAC --plan` says on the serving Mac (100 MB here).
fn plan_with(home: &Path, mac: &str) -> String {
    let plan = kindling(home)
        .args(["serve", "--model"])
        .arg(sample_model())
        .args(["--with", mac, "--local-memory", "100MB", "--plan"])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    )
}

/// `kindling serve --with MAC` on the serving Mac ("Server", 100 MB here) on `port`.
fn serve_with(home: &Path, mac: &str, port: u16) -> Running {
    Running::start({
        let mut c = kindling(home);
        c.args(["serve", "--model"])
            .arg(sample_model())
            .args(["--port", &port.to_string(), "--name", "Server"])
            .args(["--with", mac, "--local-memory", "100MB"]);
        c
    })
}

/// Route first: Gamma already serves the sample model, which does not fit where this
/// Mac may run it (its allowance is too small). `serve --with Gamma` starts no model
/// here: this Mac's server port, on loopback only, carries its apps' requests whole to
/// Gamma's own server, and the answers are Gamma's. When Gamma goes away, the owner is
/// told which Mac, and (the model fitting nowhere else) serving stops.
#[test]
fn a_model_a_paired_mac_serves_is_routed_there_whole() {
    let _one = SPLIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (serving, gamma) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let share_port = free_port("127.0.0.6");
    pair(
        serving.path(),
        "Server",
        gamma.path(),
        "Gamma",
        "127.0.0.6",
        share_port,
    );
    // Gamma serves the model to its own apps, and lends that server to the Macs it paired with.
    let gamma_port = free_port("127.0.0.1");
    let _gamma_server = serve_alone(gamma.path(), &sample_model(), gamma_port);
    let mut helper = lend_server(
        gamma.path(),
        "Gamma",
        "127.0.0.6",
        share_port,
        gamma_port,
        &[],
    );

    let said = plan_with(serving.path(), "Gamma");
    assert!(said.contains("Gamma serves it already"), "{said}");

    let port = free_port("127.0.0.1");
    let mut server = serve_with(serving.path(), "Gamma", port);
    server.expect("Gamma answers", Duration::from_secs(60));
    // The answer is Gamma's own, to the token; a streamed one arrives whole.
    assert_eq!(greedy(port), greedy(gamma_port));
    let body = r#"{"model":"gemma-3-270m-q4_k_m","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16,"temperature":0,"stream":true}"#;
    let streamed = http(port, "POST", "/v1/chat/completions", body).unwrap_or_default();
    assert!(streamed.contains("data: [DONE]"), "{streamed}");
    // Gamma's owner sees who uses it (by the name paired there), once, not per request.
    helper.expect(
        "Server is using this Mac's model server.",
        Duration::from_secs(10),
    );
    assert_eq!(
        helper.text().matches("is using this Mac").count(),
        1,
        "{}",
        helper.text()
    );
    // No model runs on the serving Mac, and it listens on loopback only.
    let here = children(server.pid());
    assert!(
        !here
            .iter()
            .any(|p| cmdline(*p).join(" ").contains("llama-server")),
        "a model server started on the serving Mac"
    );
    let mut serving_pids = vec![server.pid()];
    serving_pids.extend(here);
    for pid in serving_pids {
        for addr in listens(pid) {
            assert_eq!(addr.ip().to_string(), "127.0.0.1", "{addr}");
        }
    }

    // Gamma's sharing is killed: the owner is told which Mac, and with nowhere else to
    // run it, serving stops and the port answers nothing.
    signal(helper.pid(), "-KILL");
    server.expect("Gamma stopped answering", Duration::from_secs(30));
    stops_without(&mut server, "Gamma");
    assert!(http(port, "GET", "/health", "").is_none_or(|r| r.is_empty()));
}

/// Route first, even when the Mac that has the model serves nothing yet: Delta has the
/// sample model on its disk and serves nothing; this Mac may not run it fast. `serve
/// --with Delta` asks Delta to start it, then routes there; Delta's owner sees who asked.
/// Once no Mac uses it for the owner's while, Delta stops it: it never keeps serving for a
/// Mac that has gone.
#[test]
fn a_model_a_paired_mac_has_is_started_there_routed_and_stopped_once_unused() {
    let _one = SPLIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (serving, delta) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let share_port = free_port("127.0.0.8");
    pair(
        serving.path(),
        "Server",
        delta.path(),
        "Delta",
        "127.0.0.8",
        share_port,
    );
    let delta_port = free_port("127.0.0.1");
    // Delta's owner allows other devices on Delta's network too: its door asks every
    // caller for Delta's key, and the routed requests of a paired Mac carry it.
    let delta_key = network_on(delta.path());
    let helper_args = ["--stop-unused-after", "3"];
    let mut helper = lend_server(
        delta.path(),
        "Delta",
        "127.0.0.8",
        share_port,
        delta_port,
        &helper_args,
    );
    assert!(
        helper
            .text()
            .contains("they may ask it to serve a model it has"),
        "{}",
        helper.text()
    );
    assert!(!healthy(delta_port), "Delta serves nothing yet");
    let listed = macs::succeeds(kindling(serving.path()).args(["peers", "--name", "Server"]));
    assert!(
        listed.contains("serves nothing now; would start gemma-3-270m-q4_k_m if asked"),
        "{listed}"
    );

    let plan = plan_with(serving.path(), "Delta");
    assert!(
        plan.contains("Delta has it and serves nothing now: it is asked to start it"),
        "{plan}"
    );
    assert!(!healthy(delta_port), "a plan starts nothing");

    // The serving Mac allows other devices on its network: its front door stands in
    // front of the route, on every interface, and asks them for its owner's key.
    let key = network_on(serving.path());
    let port = free_port("127.0.0.1");
    let mut server = serve_with(serving.path(), "Delta", port);
    server.expect(
        "as before (other devices too, with the key); Delta answers",
        Duration::from_secs(180),
    );
    helper.expect(
        "Serving gemma-3-270m-q4_k_m for Server.",
        Duration::from_secs(10),
    );
    assert_eq!(listening_on(port), ["0.0.0.0"]);
    let body = r#"{"prompt":"Hi","max_tokens":4}"#;
    let refused = http(port, "POST", "/v1/completions", body).unwrap_or_default();
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    // The answer is Delta's own, to the token, and no model runs on this Mac.
    assert_eq!(
        greedy_keyed(port, Some(&key)),
        greedy_keyed(delta_port, Some(&delta_key))
    );
    assert!(
        !children(server.pid())
            .iter()
            .any(|p| cmdline(*p).join(" ").contains("llama-server")),
        "a model server started on the serving Mac"
    );

    // The serving Mac stops; nothing uses Delta's model: Delta stops it.
    signal(server.pid(), "-INT");
    assert!(wait_until(Duration::from_secs(30), || server
        .child
        .try_wait()
        .unwrap()
        .is_some()));
    helper.expect(
        "Stopped gemma-3-270m-q4_k_m, started for another Mac: no Mac has used it for 3 s.",
        Duration::from_secs(60),
    );
    assert!(
        !healthy(delta_port),
        "the model started for Server still serves"
    );

    // Delta's owner serves a model of their own: Delta is never asked to change it, so
    // the plan does not route there (and here, with 100 MB each, nothing fits).
    let own = delta.path().join("delta-own.gguf");
    // A copy: a link would be served under the name of the file it points to.
    std::fs::copy(sample_model(), &own).unwrap();
    let _delta_server = serve_alone(delta.path(), &own, delta_port);
    let said = plan_with(serving.path(), "Delta");
    assert!(!said.contains("asked to start"), "{said}");
    assert!(said.contains("together these Macs have"), "{said}");
    assert!(healthy(delta_port), "Delta's own model was stopped");
}
