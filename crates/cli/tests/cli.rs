//! The `kindling` binary as a user runs it: real llama-server, real sample model, a
//! temp KINDLING_HOME per test, signals sent as a terminal would send them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use kindling_testsupport::macs::wait_until;

static SERVER_LOCK: Mutex<()> = Mutex::new(());

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
    let m = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.runtime/models/gemma-3-270m-q4_k_m.gguf");
    assert!(m.is_file(), "run `make setup` first");
    m
}

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .split(") ")
            .nth(1)
            .is_some_and(|rest| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Reads `lines` up to and including the first one for which `stop` holds (or to the
/// end); returns what was read.
fn read_until(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    mut stop: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = stop(&line);
        seen.push(line);
        if done {
            break;
        }
    }
    seen
}

/// Starts `kindling serve` and returns once it says it is serving.
/// The llama-servers recorded in `home` (a record goes when its server stops).
fn server_pids(home: &Path) -> Vec<u32> {
    kindling_core::server::owners::server_pids(&home.join("servers"))
}

fn serve(home: &Path) -> (Child, u32) {
    let mut child = kindling(home)
        .args(["serve", "--model"])
        .arg(sample_model())
        .arg("--port")
        .arg(kindling_core::server::free_port().unwrap().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("serve prints a line").unwrap();
    assert!(
        first.starts_with("Serving") && first.contains("/v1"),
        "{first}"
    );
    std::thread::spawn(move || for _ in lines {});
    let pids = server_pids(home);
    assert_eq!(pids.len(), 1, "one server record: {pids:?}");
    (child, pids[0])
}

/// A showdown number that does not exist was reported as "There is no run 99".
#[test]
fn exporting_a_showdown_that_does_not_exist_names_a_showdown() {
    let home = tempfile::tempdir().unwrap();
    let out = kindling(home.path())
        .args(["history", "export", "--showdown", "99", "--html"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("There is no showdown 99") && !said.contains("run 99"),
        "{said}"
    );
}

#[test]
fn help_speaks_plainly() {
    let home = tempfile::tempdir().unwrap();
    let out = kindling(home.path()).arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in ["detect", "bench", "serve", "history"] {
        assert!(text.contains(cmd), "{text}");
    }
    assert!(
        text.contains("Measure how fast a model runs here"),
        "{text}"
    );
    let out = kindling(home.path())
        .args(["history", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("show"));
}

#[test]
fn detect_json_describes_this_machine_and_the_runtime() {
    let home = tempfile::tempdir().unwrap();
    let out = kindling(home.path())
        .args(["detect", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["hardware"]["logical_cores"].as_u64().unwrap() >= 1);
    assert!(v["hardware"]["ram_total_bytes"].as_u64().unwrap() > 0);
    assert!(v["runtime"]["path"]
        .as_str()
        .unwrap()
        .ends_with("llama-server"));
    assert!(!v["runtime_info"]["version"].as_str().unwrap().is_empty());
    assert!(v["runtime_info"]["devices"].is_array());
}

#[test]
fn bench_then_history_newest_first() {
    let _g = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let bench = |reps: &str| {
        let out = kindling(home.path())
            .args([
                "bench",
                "--json",
                "--no-bandwidth",
                "--prompt-tokens",
                "64",
                "--gen-tokens",
                "16",
                "--reps",
                reps,
                // Exactly that many: noisy figures would otherwise ask for more.
                "--max-reps",
                reps,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = bench("1");
    let second = bench("2");
    assert!(
        second["summary"]["gen_per_second"]["median"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(second["samples"].as_array().unwrap().len(), 2);

    let out = kindling(home.path())
        .args(["history", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<i64> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            second["run_id"].as_i64().unwrap(),
            first["run_id"].as_i64().unwrap()
        ]
    );

    let out = kindling(home.path()).arg("history").output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("completed") && table.contains("Q4_K_M"),
        "{table}"
    );

    let out = kindling(home.path())
        .args(["history", "show", &first["run_id"].to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("completed") && text.contains("gen_per_second"),
        "{text}"
    );
    // The sample's file carries no chat template: it was asked in Gemma's, and the
    // server was given the file Kindling wrote.
    assert!(
        text.contains("Gemma's format, chosen by Kindling"),
        "{text}"
    );
    let template = home.path().join("chat-formats").join("gemma.jinja");
    assert!(
        text.contains(&format!("--chat-template-file {}", template.display())),
        "{text}"
    );
    assert!(std::fs::read_to_string(&template)
        .unwrap()
        .contains("<start_of_turn>"));
}

#[test]
fn the_plain_report_says_what_a_person_needs() {
    let _g = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let out = kindling(home.path())
        .args([
            "bench",
            "--prompt-tokens",
            "64",
            "--gen-tokens",
            "16",
            "--reps",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for words in [
        "Machine",
        "Runtime",
        "Model",
        "Prompt speed",
        "Generation speed",
        "First token",
        "Load time",
        "Peak memory",
        "Memory limit",
        "GB/s",
        "words per second",
        "kindling history show",
    ] {
        assert!(text.contains(words), "missing {words:?} in:\n{text}");
    }
}

#[test]
fn ctrl_c_stops_serve_and_its_server() {
    let _g = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let (mut child, server_pid) = serve(home.path());
    assert!(alive(server_pid));
    signal(child.id(), "-INT");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        wait_until(Duration::from_secs(2), || !alive(server_pid)),
        "llama-server outlived Ctrl-C"
    );
    assert_eq!(server_pids(home.path()), Vec::<u32>::new());
}

/// `GET /health` on loopback: the status code, if anything answered.
fn health(port: u16) -> Option<u16> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        c,
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    let _ = c.read_to_string(&mut text);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn serve_survives_every_other_command_in_the_same_home() {
    // Reproduced before owner records: `kindling history` in a second terminal killed
    // the served llama-server with signal 9 (every command reaped "stale" servers).
    let _g = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let (mut child, server_pid) = serve(home.path());
    let port = kindling_core::server::owners::records(&home.path().join("servers"))[0]
        .1
        .port;
    assert_eq!(health(port), Some(200));
    let others: [&[&str]; 6] = [
        &["history"],
        &["detect"],
        &["models", "list"],
        &["cleanup"],
        &["recommend"],
        &[
            "bench",
            "--no-bandwidth",
            "--reps",
            "1",
            "--prompt-tokens",
            "32",
            "--gen-tokens",
            "8",
        ],
    ];
    for args in others {
        let out = kindling(home.path()).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        if args[0] == "bench" {
            let note = format!("also serving a model (port {port})");
            assert!(err.contains(&note), "bench says what runs beside it: {err}");
        }
        assert!(
            alive(server_pid),
            "`kindling {}` killed the served llama-server",
            args.join(" ")
        );
        assert_eq!(
            health(port),
            Some(200),
            "after `kindling {}`",
            args.join(" ")
        );
    }
    assert_eq!(
        server_pids(home.path()),
        vec![server_pid],
        "only serve's server is left"
    );
    signal(child.id(), "-INT");
    assert!(child.wait().unwrap().success());
    assert!(wait_until(Duration::from_secs(3), || !alive(server_pid)));
}

#[test]
fn an_orphan_whose_owner_died_is_stopped_by_the_next_command() {
    // macOS has no PR_SET_PDEATHSIG: a `kill -9` of Kindling leaves its llama-server
    // running, and only the owner record lets the next Kindling stop it. This plays
    // that fault on Linux: a server started without pdeathsig, recorded as owned by a
    // process that has exited.
    let _g = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let runtime = checkout().join(".runtime/bin/llama-server");
    let port = kindling_core::server::free_port().unwrap();
    let mut server = Command::new(&runtime)
        .args(["--model"])
        .arg(sample_model())
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--ctx-size",
            "512",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut gone_owner = Command::new("true").spawn().unwrap();
    let owner_pid = gone_owner.id();
    gone_owner.wait().unwrap();
    use kindling_core::server::owners::{ProcessId, ServerRecord};
    let server_id = ProcessId::of(server.id()).expect("the server runs");
    let record = ServerRecord {
        server: server_id,
        owner: ProcessId {
            pid: owner_pid,
            started: server_id.started,
        },
        port,
        model: None,
    };
    let dir = home.path().join("servers");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.json", server.id()));
    std::fs::write(&file, serde_json::to_vec(&record).unwrap()).unwrap();

    let out = kindling(home.path()).arg("history").output().unwrap();
    assert!(out.status.success());
    let ended = wait_until(Duration::from_secs(5), || {
        server.try_wait().unwrap().is_some()
    });
    if !ended {
        let _ = server.kill();
    }
    assert!(ended, "the orphaned llama-server was left running");
    assert!(!file.exists(), "its record is gone");
}

#[test]
fn kill_9_of_kindling_leaves_no_orphan_server() {
    let _g = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let (mut child, server_pid) = serve(home.path());
    signal(child.id(), "-KILL");
    let _ = child.wait();
    assert!(
        wait_until(Duration::from_secs(3), || !alive(server_pid)),
        "llama-server {server_pid} survived kill -9 of Kindling"
    );
}

#[test]
fn ctrl_c_during_bench_marks_the_run_interrupted() {
    let _g = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let mut child = kindling(home.path())
        .args(["bench", "--no-bandwidth", "--reps", "20"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let seen = read_until(&mut err, |l| l.contains("[2/20]"));
    let server_pid = *server_pids(home.path())
        .first()
        .unwrap_or_else(|| panic!("{seen:?}"));
    signal(child.id(), "-INT");
    let rest: Vec<String> = err.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("Stopped because you asked")),
        "{rest:?}"
    );
    assert!(!alive(server_pid));
    let out = kindling(home.path())
        .args(["history", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["status"], "interrupted");
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_code() {
    let home = tempfile::tempdir().unwrap();
    let fake = home.path().join("notes.gguf");
    std::fs::write(&fake, "not a model").unwrap();
    let out = kindling(home.path())
        .args(["bench", "--model"])
        .arg(&fake)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("is not a GGUF model file"), "{err}");

    let out = kindling(home.path())
        .args(["bench", "--json", "--model"])
        .arg(&fake)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "model_not_gguf");

    let out = kindling(home.path())
        .args(["history", "show", "999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("There is no run 999"));

    let out = kindling(home.path()).arg("history").output().unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("No benchmarks yet"));
}

/// A home of its own for stores the user's tools keep (Ollama, HF cache, LM Studio, Trash).
fn isolated(home: &Path, user_home: &Path) -> Command {
    let mut c = kindling(home);
    c.env("HOME", user_home)
        .env("XDG_DATA_HOME", user_home.join(".local/share"))
        .env("OLLAMA_MODELS", user_home.join(".ollama/models"))
        .env("HF_HUB_CACHE", user_home.join(".cache/huggingface/hub"))
        .env_remove("HF_HOME")
        .env_remove("HF_TOKEN");
    c
}

#[test]
fn pull_list_and_remove_a_model() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(kindling_testsupport::FileServer::start(&[(
        "org/tiny-GGUF/tiny.gguf",
        sample_model(),
    )]));
    let home = tempfile::tempdir().unwrap();
    let user = tempfile::tempdir().unwrap();
    let out = isolated(home.path(), user.path())
        .env("HF_ENDPOINT", srv.base_url())
        .args(["models", "pull", "org/tiny-GGUF", "tiny.gguf"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("sha256 verified") && text.contains("kindling bench --model"),
        "{text}"
    );

    let out = isolated(home.path(), user.path())
        .args(["models", "list", "--json"])
        .output()
        .unwrap();
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let installed = inv["installed"].as_array().unwrap();
    assert_eq!(installed.len(), 1, "{inv}");
    assert_eq!(installed[0]["source"], "kindling");
    let id = installed[0]["id"].as_i64().unwrap();

    let out = isolated(home.path(), user.path())
        .args(["models", "rm", &id.to_string()])
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("--apply"));
    let file = home.path().join("models/org--tiny-GGUF/tiny.gguf");
    assert!(file.exists(), "nothing happens without --apply");
    let out = isolated(home.path(), user.path())
        .args(["models", "rm", &id.to_string(), "--apply"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!file.exists());
    assert!(
        user.path()
            .join(".local/share/Trash/files/tiny.gguf")
            .exists(),
        "it went to the Trash"
    );

    let out = isolated(home.path(), user.path())
        .env("HF_ENDPOINT", srv.base_url())
        .args(["models", "pull", "org/tiny-GGUF", "missing.gguf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("was not found on Hugging Face"));
}

#[test]
fn cleanup_shows_a_plan_then_applies_it_to_the_trash() {
    let home = tempfile::tempdir().unwrap();
    let user = tempfile::tempdir().unwrap();
    let blobs = user.path().join(".ollama/models/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::create_dir_all(user.path().join(".ollama/models/manifests")).unwrap();
    let orphan = blobs.join(format!("sha256-{}", "ab".repeat(32)));
    std::fs::write(&orphan, vec![0u8; 3_000_000]).unwrap();
    let f = std::fs::File::options().write(true).open(&orphan).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
        .unwrap();

    let out = isolated(home.path(), user.path())
        .args(["cleanup"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("can reclaim 3 MB") && text.contains("Ollama data no installed model uses"),
        "{text}"
    );
    assert!(orphan.exists(), "a plan removes nothing");
    let id = text
        .lines()
        .find_map(|l| l.split("--apply ").nth(1))
        .unwrap()
        .trim()
        .to_string();

    let out = isolated(home.path(), user.path())
        .args(["cleanup", "--apply", &id])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Reclaimed 3 MB (1 items moved to the Trash)"),
        "{text}"
    );
    assert!(!orphan.exists());

    let out = isolated(home.path(), user.path())
        .args(["cleanup", "--apply", "no-such-plan"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_killed_quality_run_resumes_without_running_any_test_twice() {
    let _g = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let mut child = kindling(home.path())
        .args(["bench", "--quality", "--quick"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let seen = read_until(&mut err, |l| l.contains("[4/"));
    assert!(seen.iter().any(|l| l.contains("[4/")), "{seen:?}");
    let server_pid = server_pids(home.path())[0];
    signal(child.id(), "-KILL");
    let _ = child.wait();
    assert!(
        wait_until(Duration::from_secs(3), || !alive(server_pid)),
        "no orphaned server"
    );

    let out = kindling(home.path())
        .args(["history", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["status"], "interrupted", "{runs}");
    let run = runs[0]["id"].as_i64().unwrap();

    let out = kindling(home.path())
        .args(["bench", "--resume", &run.to_string(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "a test ran twice: {ids:?}");
    assert!(ids.len() >= 8, "{ids:?}");
    assert_eq!(report["run_id"].as_i64(), Some(run));

    // Rescore, export, import, compare: all from stored answers.
    let out = kindling(home.path())
        .args(["rescore", &run.to_string(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rescored: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rescored["tests"], report["tests"]);
    let file = home.path().join("run.json");
    assert!(kindling(home.path())
        .args(["history", "export", &run.to_string(), "--out"])
        .arg(&file)
        .status()
        .unwrap()
        .success());
    let other = tempfile::tempdir().unwrap();
    let out = kindling(other.path())
        .args(["history", "import"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("Imported as run 1"));
    let out = kindling(other.path())
        .args(["history", "compare", "1", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("tool calling") && text.contains("score per GB"),
        "{text}"
    );
    let out = kindling(other.path())
        .args(["rescore", "1", "--json"])
        .output()
        .unwrap();
    let imported: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        imported["tests"], report["tests"],
        "an imported run rescores the same"
    );
}

#[test]
fn recommend_names_a_model_that_fits_and_says_why() {
    let home = tempfile::tempdir().unwrap();
    let out = kindling(home.path()).args(["recommend"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Recommended:") && text.contains("kindling models pull"),
        "{text}"
    );
    let out = kindling(home.path())
        .args(["recommend", "--goal", "patient", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["goal"], "patient");
    assert!(v["candidates"][0]["fit"]["fits"].as_bool().unwrap());
}

#[test]
fn a_folder_the_user_adds_is_used_in_place_and_remembered() {
    let home = tempfile::tempdir().unwrap();
    let user = tempfile::tempdir().unwrap();
    let folder = user.path().join("My Models");
    std::fs::create_dir_all(&folder).unwrap();
    let model = folder.join("sample.gguf");
    if std::fs::hard_link(sample_model(), &model).is_err() {
        std::fs::copy(sample_model(), &model).unwrap();
    }
    let out = isolated(home.path(), user.path())
        .args(["models", "add"])
        .arg(&folder)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("1 model(s) found there"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let settings = std::fs::read_to_string(home.path().join("settings.toml")).unwrap();
    assert!(settings.contains("My Models"), "{settings}");
    let out = isolated(home.path(), user.path())
        .args(["models", "list", "--json"])
        .output()
        .unwrap();
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &inv["installed"][0];
    assert_eq!(m["source"], "folder");
    assert_eq!(
        m["path"].as_str().unwrap(),
        std::fs::canonicalize(&model).unwrap().to_str().unwrap()
    );
    let out = isolated(home.path(), user.path())
        .args(["models", "add", "/no/such/folder"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // One file that is no model (a GGUF header, then noise) is refused, saying why, and
    // not remembered: it was "Added …: 0 model(s) found there".
    let junk = user.path().join("junk.gguf");
    let mut bytes = b"GGUF\x03\0\0\0".to_vec();
    bytes.resize(4104, 0x40);
    std::fs::write(&junk, &bytes).unwrap();
    let out = isolated(home.path(), user.path())
        .args(["models", "add"])
        .arg(&junk)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("is not a valid model file"), "{said}");
    let settings = std::fs::read_to_string(home.path().join("settings.toml")).unwrap();
    assert!(!settings.contains("junk.gguf"), "{settings}");
}

/// A showdown of files named relatively, in a Terminal that is then closed (SIGHUP), on
/// a machine without pdeathsig (macOS): Kindling stops its server on the way out, and
/// `kindling showdown --resume` from another folder measures every candidate (they were
/// "gone" when the paths were kept as typed).
#[test]
fn a_closed_terminal_stops_the_showdown_and_its_server_and_it_resumes_from_elsewhere() {
    let _g = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let folder = home.path().join("my-models");
    std::fs::create_dir_all(&folder).unwrap();
    for name in ["tiny-a.gguf", "tiny-b.gguf"] {
        std::fs::copy(sample_model(), folder.join(name)).unwrap();
    }
    let mut child = kindling(home.path())
        .current_dir(&folder)
        .env(kindling_core::server::process::NO_PDEATHSIG, "1")
        .args([
            "showdown",
            "--quick",
            "--goal",
            "patient",
            "tiny-a.gguf",
            "tiny-b.gguf",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut server = None;
    let seen = read_until(&mut err, |l| {
        if l.trim_start().starts_with("[2/") {
            server = server_pids(home.path()).first().copied();
        }
        server.is_some()
    });
    let server = server.unwrap_or_else(|| panic!("no server while measuring: {seen:?}"));
    signal(child.id(), "-HUP");
    let rest: Vec<String> = err.map_while(|l| l.ok()).collect();
    let status = child.wait().unwrap();
    assert!(!status.success(), "a closed Terminal stops the showdown");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(server)),
        "llama-server {server} outlived the closed Terminal: {rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.contains("kindling showdown --resume")),
        "it says how to continue: {rest:?}"
    );

    let elsewhere = tempfile::tempdir().unwrap();
    let out = kindling(home.path())
        .current_dir(elsewhere.path())
        .args(["showdown", "--resume", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<&str> = report["showdown"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["done", "done"], "{report}");
    assert!(server_pids(home.path()).is_empty(), "no server left behind");
}

/// Ctrl-C is Stop, as in the app: the showdown waits to be continued, and the app does
/// not start it again by itself at the next launch (a closed Terminal's showdown it does).
#[test]
fn ctrl_c_stops_a_showdown_until_the_owner_continues_it() {
    let _g = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let model = home.path().join("tiny.gguf");
    std::fs::copy(sample_model(), &model).unwrap();
    let mut child = kindling(home.path())
        .args(["showdown", "--quick", "--goal", "patient"])
        .arg(&model)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let seen = read_until(&mut err, |l| l.trim_start().starts_with("[2/"));
    signal(child.id(), "-INT");
    let rest: Vec<String> = err.map_while(|l| l.ok()).collect();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{seen:?} {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("it waits for you")),
        "{rest:?}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let core = kindling_core::Core::open(kindling_core::Paths::new(home.path()))
            .await
            .unwrap();
        let id = core.db().latest_showdown().await.unwrap().unwrap();
        assert_eq!(
            core.db().showdown(id).await.unwrap().status,
            kindling_core::kinds::ShowdownState::Cancelled
        );
        assert_eq!(
            core.db().unfinished_showdown().await.unwrap(),
            None,
            "the app does not start it again by itself"
        );
        assert_eq!(core.db().continuable_showdown().await.unwrap(), Some(id));
        core.db().close().await;
    });
}

/// A showdown the app runs (here: claimed by this test's process, alive) is never run by
/// `kindling showdown --resume` at the same time: it says so and measures nothing.
#[test]
fn the_cli_leaves_alone_a_showdown_another_kindling_runs() {
    let home = tempfile::tempdir().unwrap();
    let model = home.path().join("tiny.gguf");
    std::fs::copy(sample_model(), &model).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = rt.block_on(async {
        let core = kindling_core::Core::open(kindling_core::Paths::new(home.path()))
            .await
            .unwrap();
        let id = core
            .showdown_start(
                kindling_core::recommend::Goal::Patient,
                true,
                &[kindling_core::showdown::Contender::new(
                    "tiny".into(),
                    None,
                    Some(model.clone()),
                    1,
                )],
            )
            .await
            .unwrap();
        let me = kindling_core::server::owners::ProcessId::current().unwrap();
        assert_eq!(core.db().claim_showdown(id, me).await.unwrap(), None);
        core.db().close().await;
        id
    });
    let out = kindling(home.path())
        .args(["showdown", "--resume"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Another Kindling") && err.contains(&std::process::id().to_string()),
        "{err}"
    );
    assert!(server_pids(home.path()).is_empty(), "nothing was started");
    rt.block_on(async {
        let core = kindling_core::Core::open(kindling_core::Paths::new(home.path()))
            .await
            .unwrap();
        let sd = core.db().showdown(id).await.unwrap();
        assert_eq!(
            sd.entries[0].status,
            kindling_core::history::EntryStatus::Pending
        );
        assert_eq!(sd.entries[0].run_id, None, "no run was begun");
        core.db().close().await;
    });
}
