//! Downloads from a real HTTP server on 127.0.0.1 serving the real sample model, shaped
//! like Hugging Face, with faults switched on per test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kindling_core::download::{partial_path, Control, DownloadError, Policy};
use kindling_core::store::PullRequest;
use kindling_core::{Core, Error, ErrorCode, Paths};
use kindling_testsupport::{Fault, FileServer};

const REPO: &str = "kindling-test/sample-GGUF";
const FILE: &str = "gemma-3-270m-q4_k_m.gguf";

async fn server() -> FileServer {
    FileServer::start(&[(&format!("{REPO}/{FILE}"), super::sample_model())]).await
}

fn fast_policy() -> Policy {
    Policy {
        max_attempts: 8,
        backoff_base: Duration::from_millis(20),
        stall_timeout: Duration::from_secs(5),
        free_margin: Some(0),
    }
}

fn request(srv: &FileServer, policy: Policy) -> PullRequest {
    PullRequest {
        repo: REPO.into(),
        file: FILE.into(),
        policy,
        endpoint: Some(srv.base_url()),
        revision: None,
        expect: None,
    }
}

fn dest(home: &Path) -> PathBuf {
    home.join("models").join(REPO.replace('/', "--")).join(FILE)
}

const SIZE: u64 = 253_113_024;
const MB: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_completes_verifies_and_is_registered() {
    let srv = server().await;
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let pulled = core
        .pull(&request(&srv, fast_policy()), &Control::default())
        .await
        .unwrap();
    assert_eq!(pulled.path, dest(home.path()));
    assert_eq!(pulled.bytes, SIZE);
    assert_eq!(pulled.sha256, srv.file_meta(&format!("{REPO}/{FILE}")).0);
    assert!(!partial_path(&pulled.path).exists());
    assert_eq!(std::fs::metadata(&pulled.path).unwrap().len(), SIZE);
    let models = core.db().models().await.unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].source, format!("huggingface:{REPO}"));
    let jobs = core.db().downloads().await.unwrap();
    assert_eq!(jobs[0].status, "completed");
    // A second pull finds it installed and fetches nothing.
    let before = srv.body_bytes_sent();
    let again = core
        .pull(&request(&srv, fast_policy()), &Control::default())
        .await
        .unwrap();
    assert!(again.fetched.is_none());
    assert_eq!(srv.body_bytes_sent(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_file_is_fetched_at_its_commit_and_must_be_the_one_recorded() {
    let srv = server().await;
    let (sha, size) = srv.file_meta(&format!("{REPO}/{FILE}"));
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    // The catalog recorded other bytes at that commit: nothing is downloaded.
    let wrong = PullRequest {
        revision: Some("0314792d7f1f".into()),
        expect: Some((size, "0".repeat(64))),
        ..request(&srv, fast_policy())
    };
    let err = core.pull(&wrong, &Control::default()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::DownloadCorrupt, "{err}");
    assert!(
        err.to_string()
            .contains("not the file Kindling's catalog recorded"),
        "{err}"
    );
    assert_eq!(
        srv.body_bytes_sent(),
        0,
        "not a byte of the file was fetched"
    );
    assert!(!dest(home.path()).exists() && !partial_path(&dest(home.path())).exists());
    // As recorded: fetched at that commit, not at main.
    let pinned = PullRequest {
        revision: Some("0314792d7f1f".into()),
        expect: Some((size, sha.clone())),
        ..request(&srv, fast_policy())
    };
    let pulled = core.pull(&pinned, &Control::default()).await.unwrap();
    assert_eq!(pulled.sha256, sha);
    let paths: Vec<String> = srv.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.iter().any(|p| p.contains("/tree/0314792d7f1f")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.contains("/resolve/0314792d7f1f/")),
        "{paths:?}"
    );
    assert!(!paths.iter().any(|p| p.contains("/main")), "{paths:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_at_random_points_resume_without_refetching() {
    let srv = server().await;
    // Offsets from a fixed seed so a failure can be replayed.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut offsets: Vec<u64> = (0..5)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % SIZE
        })
        .collect();
    offsets.sort();
    srv.set_fault(Fault::DropsAt { offsets });
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let pulled = core
        .pull(&request(&srv, fast_policy()), &Control::default())
        .await
        .unwrap();
    let fetched = pulled.fetched.unwrap();
    assert!(fetched.attempts >= 1);
    let ranged = srv
        .requests()
        .iter()
        .filter(|r| r.range_from.is_some())
        .count();
    assert!(
        ranged >= 5,
        "each cut is resumed with a Range request ({ranged})"
    );
    let extra = srv.body_bytes_sent() - SIZE;
    assert!(extra <= 4 * MB, "{extra} bytes fetched twice");
}

/// Pauses the download once its partial file reaches `at` bytes. The server stalls
/// there, so the pause lands at a known point however fast loopback is.
async fn pull_paused_at(core: &Core, srv: &FileServer, home: &Path, at: u64) -> Error {
    srv.set_fault(Fault::Stalls { at });
    let control = Control::default();
    let part = partial_path(&dest(home));
    let c = control.clone();
    let watcher = tokio::spawn(async move {
        while std::fs::metadata(&part).map_or(0, |m| m.len()) < at {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.pause.cancel();
    });
    let err = core
        .pull(&request(srv, fast_policy()), &control)
        .await
        .unwrap_err();
    watcher.abort();
    srv.set_fault(Fault::None);
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_then_resume_after_a_restart_continues_from_the_partial_file() {
    let srv = server().await;
    let home = tempfile::tempdir().unwrap();
    for pause_at in [37 * MB, 151 * MB] {
        let core = super::core_in(home.path()).await;
        let err = pull_paused_at(&core, &srv, home.path(), pause_at).await;
        assert_eq!(err.code(), ErrorCode::Paused, "{err}");
        assert_eq!(
            std::fs::metadata(partial_path(&dest(home.path())))
                .unwrap()
                .len(),
            pause_at
        );
        assert!(
            !dest(home.path()).exists(),
            "no final file before verification"
        );
        assert_eq!(core.db().downloads().await.unwrap()[0].status, "paused");
        core.db().close().await;
    }
    // A new Core, as after quitting and reopening the app.
    let core = super::core_in(home.path()).await;
    let pulled = core
        .pull(&request(&srv, fast_policy()), &Control::default())
        .await
        .unwrap();
    assert_eq!(pulled.fetched.unwrap().resumed_from, 151 * MB);
    let ranges: Vec<Option<u64>> = srv
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/cdn/"))
        .map(|r| r.range_from)
        .collect();
    assert_eq!(ranges, [None, Some(37 * MB), Some(151 * MB)]);
    assert_eq!(srv.body_bytes_sent(), SIZE, "not one byte fetched twice");
    // The expiring link was asked for anew each time.
    let resolves = srv
        .requests()
        .iter()
        .filter(|r| r.path.contains("/resolve/main/"))
        .count();
    assert_eq!(resolves, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_range_means_starting_over_safely() {
    let srv = server().await;
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let err = pull_paused_at(&core, &srv, home.path(), 50 * MB).await;
    assert_eq!(err.code(), ErrorCode::Paused);
    srv.set_fault(Fault::IgnoresRange);
    let pulled = core
        .pull(&request(&srv, fast_policy()), &Control::default())
        .await
        .unwrap();
    assert_eq!(
        pulled.fetched.as_ref().unwrap().received,
        SIZE,
        "the whole file again, from zero"
    );
    assert_eq!(std::fs::metadata(&pulled.path).unwrap().len(), SIZE);
    assert_eq!(
        kindling_core::store::sha256_file(&pulled.path).unwrap(),
        pulled.sha256
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_are_caught_deleted_and_explained() {
    let srv = server().await;
    srv.set_fault(Fault::WrongBytes { at: 123_456_789 });
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let err = core
        .pull(&request(&srv, fast_policy()), &Control::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::DownloadCorrupt);
    assert!(err.to_string().contains("was deleted"), "{err}");
    assert!(!dest(home.path()).exists() && !partial_path(&dest(home.path())).exists());
    assert_eq!(core.db().downloads().await.unwrap()[0].status, "failed");
    assert!(core.db().models().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_ends_in_a_clear_error_and_keeps_the_partial_file() {
    let srv = server().await;
    srv.set_fault(Fault::Stalls { at: 3 * MB });
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let policy = Policy {
        max_attempts: 2,
        stall_timeout: Duration::from_millis(700),
        ..fast_policy()
    };
    let started = Instant::now();
    let err = core
        .pull(&request(&srv, policy), &Control::default())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.code(), ErrorCode::DownloadNetwork);
    assert!(
        err.to_string().contains("start the download again"),
        "{err}"
    );
    assert!(
        std::fs::metadata(partial_path(&dest(home.path())))
            .unwrap()
            .len()
            >= 3 * MB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_files_and_repos_are_named() {
    let srv = server().await;
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let mut req = request(&srv, fast_policy());
    req.file = "nope.gguf".into();
    let err = core.pull(&req, &Control::default()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::DownloadNotFound);
    assert!(err.to_string().contains("nope.gguf"), "{err}");
    req.repo = "../../etc".into();
    assert_eq!(
        core.pull(&req, &Control::default())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::DownloadNotFound
    );
}

/// A small tmpfs, unmounted when dropped: a real full disk.
struct Tmpfs(PathBuf);
impl Tmpfs {
    fn new(mb: u64) -> (tempfile::TempDir, Tmpfs) {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI and the dev machines run as root)"
        );
        let p = dir.path().to_path_buf();
        (dir, Tmpfs(p))
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_little_space_fails_before_downloading_with_the_numbers() {
    let srv = server().await;
    let (_dir, fs) = Tmpfs::new(64);
    let core = Core::open(Paths::new(fs.0.join("home"))).await.unwrap();
    let err = core
        .pull(&request(&srv, Policy::default()), &Control::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::DiskFull);
    let msg = err.to_string();
    assert!(msg.contains("353 MB") && msg.contains("free"), "{msg}");
    assert_eq!(srv.body_bytes_sent(), 0, "nothing was fetched");
    core.db().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_up_mid_download_stops_with_a_clear_error() {
    let srv = server().await;
    let (_dir, fs) = Tmpfs::new(300);
    let core = Core::open(Paths::new(fs.0.join("home"))).await.unwrap();
    let filler = fs.0.join("other-program.bin");
    let part = partial_path(
        &fs.0
            .join("home/models")
            .join(REPO.replace('/', "--"))
            .join(FILE),
    );
    // The server holds at 40 MB while another program takes the space, then goes on.
    srv.set_fault(Fault::Stalls { at: 40 * MB });
    let policy = Policy {
        stall_timeout: Duration::from_millis(800),
        ..fast_policy()
    };
    let (req, control) = (request(&srv, policy), Control::default());
    let other_program = async {
        while std::fs::metadata(&part).map_or(0, |m| m.len()) < 40 * MB {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        std::fs::write(&filler, vec![1u8; 120 << 20]).unwrap();
        srv.set_fault(Fault::None);
    };
    let (result, ()) = tokio::join!(core.pull(&req, &control), other_program);
    let err = result.unwrap_err();
    assert_eq!(err.code(), ErrorCode::DiskFull, "{err}");
    assert!(err.to_string().contains("Free some space"), "{err}");
    let d =
        fs.0.join("home/models")
            .join(REPO.replace('/', "--"))
            .join(FILE);
    assert!(!d.exists(), "no final file");
    assert!(
        partial_path(&d).exists(),
        "the partial file is kept to resume once space is freed"
    );
    assert!(matches!(
        err,
        Error::Download(DownloadError::DiskFull { .. })
    ));
    // The user frees space and runs it again: it continues where it stopped.
    std::fs::remove_file(&filler).unwrap();
    let pulled = core
        .pull(&request(&srv, fast_policy()), &Control::default())
        .await
        .unwrap();
    assert!(pulled.fetched.unwrap().resumed_from > 20 * MB);
    assert_eq!(core.db().downloads().await.unwrap()[0].status, "completed");
    core.db().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_deletes_the_partial_file_and_says_so() {
    let srv = server().await;
    srv.set_fault(Fault::Stalls { at: 30 * MB });
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let control = Control::default();
    let part = partial_path(&dest(home.path()));
    let (req, c) = (request(&srv, fast_policy()), control.clone());
    let watcher = async {
        while std::fs::metadata(&part).map_or(0, |m| m.len()) < 30 * MB {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.cancel.cancel();
    };
    let (result, ()) = tokio::join!(core.pull(&req, &control), watcher);
    let err = result.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled, "{err}");
    assert!(
        err.to_string().contains("partial file was deleted"),
        "{err}"
    );
    assert!(!part.exists() && !dest(home.path()).exists());
    assert_eq!(core.db().downloads().await.unwrap()[0].status, "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_two_downloads_run_at_once() {
    let names: Vec<String> = (0..3).map(|i| format!("{REPO}/copy{i}.gguf")).collect();
    let files: Vec<(&str, PathBuf)> = names
        .iter()
        .map(|n| (n.as_str(), super::sample_model()))
        .collect();
    let srv = FileServer::start(&files).await;
    srv.set_fault(Fault::Stalls { at: 5 * MB });
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let control = Control::default();
    let reqs: Vec<PullRequest> = (0..3)
        .map(|i| PullRequest {
            file: format!("copy{i}.gguf"),
            ..request(&srv, fast_policy())
        })
        .collect();
    let dir = home.path().join("models").join(REPO.replace('/', "--"));
    let partials = || {
        std::fs::read_dir(&dir).map_or(0, |d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
                .count()
        })
    };
    let c = control.clone();
    let observe = async {
        let started = std::time::Instant::now();
        while partials() < 2 && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Both slots are taken and stalled: the third must still be waiting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let seen = partials();
        c.pause.cancel();
        seen
    };
    let (results, seen) = tokio::join!(
        futures_util::future::join_all(reqs.iter().map(|r| core.pull(r, &control))),
        observe
    );
    assert_eq!(seen, 2, "two downloads at a time");
    assert!(results
        .iter()
        .all(|r| r.as_ref().is_err_and(|e| e.code() == ErrorCode::Paused)));
}
