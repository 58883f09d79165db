//! The overnight showdown as one job: each candidate measured with the quick suite, a
//! stop in the middle (as a quit or a crash leaves it), and a new Kindling on the same
//! home that continues the interrupted run instead of starting it over.

use kindling_core::bench::suite::Suite;
use kindling_core::events::{BenchPhase, Event};
use kindling_core::history::EntryStatus;
use kindling_core::recommend::Goal;
use kindling_core::showdown::Contender;
use kindling_core::{Cancel, Error, ErrorCode};

/// The night's work is kept whatever the paths look like: Kindling's home is reached
/// through a symlink (a models folder on an external disk, macOS's /var), one candidate
/// is named by a relative path, and a catalog id that no longer resolves fails its entry
/// alone. The interrupted candidate's run is kept on its entry from the moment it is
/// created, and continued by id; an answer stored without its grade (a kill between two
/// writes in older builds) is graded on resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_showdown_measures_each_candidate_and_resumes_where_it_stopped() {
    let _guard = super::SERVER_LOCK.lock().await;
    let t = tempfile::tempdir_in(".").unwrap();
    let real_home = t.path().join("real-home");
    std::fs::create_dir_all(&real_home).unwrap();
    let home = t.path().join("home-link");
    std::os::unix::fs::symlink(&real_home, &home).unwrap();
    let core = super::core_in(&home).await;
    // Two candidates on disk: the sample model and a copy of it under another name,
    // named through the link, the first one relatively.
    let dir = home.join("ladder");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<_> = ["tiny-a.gguf", "tiny-b.gguf"]
        .iter()
        .map(|n| {
            let p = dir.join(n);
            std::fs::copy(super::sample_model(), &p).unwrap();
            p
        })
        .collect();
    let cwd = std::env::current_dir().unwrap();
    files[0] = std::path::Path::new(".").join(files[0].strip_prefix(&cwd).unwrap());
    assert!(files[0].is_relative(), "{}", files[0].display());
    let mut contenders: Vec<Contender> = files
        .iter()
        .map(|p| {
            Contender::new(
                p.file_name().unwrap().to_string_lossy().into_owned(),
                None,
                Some(p.clone()),
                std::fs::metadata(p).unwrap().len(),
            )
        })
        .collect();
    contenders.push(Contender::new(
        "Removed from catalog.toml".into(),
        Some("no-such-family:Q4_K_M".into()),
        None,
        1,
    ));
    let id = core
        .showdown_start(Goal::Patient, true, &contenders)
        .await
        .unwrap();
    assert_eq!(core.db().unfinished_showdown().await.unwrap(), Some(id));
    let stored = core.db().showdown(id).await.unwrap();
    for (e, f) in stored.entries.iter().zip(&files) {
        assert_eq!(
            e.model_path.as_deref(),
            Some(std::fs::canonicalize(f).unwrap().to_str().unwrap()),
            "stored in one form: absolute, links resolved"
        );
    }

    // Stop it two tests into the second candidate.
    let cancel = Cancel::new();
    let mut events = core.events().subscribe();
    let db = core.db().clone();
    let stopper = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            while let Ok(ev) = events.recv().await {
                if let Event::BenchProgress {
                    phase: BenchPhase::Testing,
                    step,
                    ..
                } = ev
                {
                    let sd = db.showdown(id).await.unwrap();
                    if sd.entries[0].status == EntryStatus::Done && step >= 3 {
                        cancel.cancel();
                        return;
                    }
                }
            }
        })
    };
    let stopped = core.showdown_run(id, &cancel).await;
    stopper.await.unwrap();
    assert!(matches!(stopped, Err(Error::Cancelled)), "{stopped:?}");
    let sd = core.db().showdown(id).await.unwrap();
    assert_eq!(
        sd.status,
        kindling_core::kinds::ShowdownState::Running,
        "a stopped showdown waits to be continued"
    );
    assert_eq!(sd.entries[0].status, EntryStatus::Done);
    assert_eq!(sd.entries[1].status, EntryStatus::Measuring);
    let refused = core.showdown_cleanup(id, false).await.unwrap_err();
    assert_eq!(
        refused.code(),
        ErrorCode::Busy,
        "no losers while it runs: {refused}"
    );
    let interrupted = sd.entries[1]
        .run_id
        .expect("the second candidate's run is kept on its entry");
    let before = core.db().results(interrupted).await.unwrap();
    let quick = Suite::core().select(true).len();
    assert!(
        !before.is_empty() && before.len() < quick,
        "{} of {quick} tests were answered before the stop",
        before.len()
    );
    // Every answer was stored with its grade; take one grade away, as a kill between the
    // two writes of an older build left it.
    assert_eq!(
        core.db().scores(interrupted).await.unwrap().len(),
        before.len()
    );
    let ungraded = before[0].test_id.clone();
    super::sql(
        &real_home,
        &format!(
            "DELETE FROM quality_scores WHERE run_id = {interrupted} AND test_id = '{ungraded}'"
        ),
    )
    .await;
    core.db().close().await;
    drop(core);

    // Kindling starts again on the same home, reached another way (its real path), and
    // continues the showdown.
    let again = super::core_in(&real_home).await;
    assert_eq!(again.db().unfinished_showdown().await.unwrap(), Some(id));
    let started = std::time::Instant::now();
    let report = again.showdown_run(id, &Cancel::new()).await.unwrap();
    eprintln!(
        "figure: the resumed showdown finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        report.showdown.status,
        kindling_core::kinds::ShowdownState::Completed
    );
    assert_eq!(again.db().unfinished_showdown().await.unwrap(), None);
    let entries = &report.showdown.entries;
    assert_eq!(
        entries.iter().map(|e| e.status).collect::<Vec<_>>(),
        [EntryStatus::Done, EntryStatus::Done, EntryStatus::Failed],
        "{entries:?}"
    );
    assert!(
        entries[2]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("no-such-family"),
        "the entry says why: {:?}",
        entries[2].error
    );
    assert_eq!(
        entries[1].run_id,
        Some(interrupted),
        "the interrupted run was continued, not started over"
    );
    let after = again.db().results(interrupted).await.unwrap();
    assert_eq!(after.len(), quick, "every quick test, each once");
    for r in &before {
        let kept = after.iter().find(|a| a.test_id == r.test_id).unwrap();
        assert_eq!(
            kept.answer_json, r.answer_json,
            "{}: a finished test is never run again",
            r.test_id
        );
    }
    let scores = again.db().scores(interrupted).await.unwrap();
    assert_eq!(scores.len(), quick, "every answer graded");
    assert!(
        scores.iter().any(|s| s.test_id == ungraded),
        "the answer stored without a grade was graded on resume"
    );
    // The morning report: both ranked, a sentence that names the failure, and the
    // loser's file to reclaim.
    assert_eq!(report.ranked.len(), 2);
    assert!(report.verdict.starts_with("Use "), "{}", report.verdict);
    assert!(
        report
            .verdict
            .contains("1 of 3 candidates could not be measured"),
        "{}",
        report.verdict
    );
    assert_eq!(report.losers.len(), 1);
    assert_ne!(report.losers[0], report.ranked[0].path);
    // The two tied, and they are one file's bytes: nothing more to measure, and said.
    assert_eq!(
        again
            .db()
            .showdown(id)
            .await
            .unwrap()
            .tie
            .map(|t| t.settled),
        Some(kindling_core::showdown::tie::Settle::SameContent),
        "{}",
        report.verdict
    );
    assert!(
        report.verdict.contains("are the same file's bytes"),
        "{}",
        report.verdict
    );

    // The loser is the second model's now: the plan keeps it.
    let loser = report.losers[0].clone();
    again
        .update_settings(|s| s.second_model = Some(loser.clone()))
        .unwrap();
    let plan = again.showdown_cleanup(id, false).await.unwrap();
    assert!(plan.removals.is_empty(), "{:?}", plan.removals);
    assert!(
        plan.kept
            .iter()
            .any(|k| k.contains("the second model server is set to use it")),
        "{:?}",
        plan.kept
    );
}

/// Two Kindlings never run one showdown at once: while another live process holds it,
/// a run is refused with `busy` and measures nothing; once that process is gone (quit,
/// crash, a reboot that reused its pid), the showdown is taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_showdown_held_by_another_live_kindling_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let file = home.path().join("gone-soon.gguf");
    let id = core
        .showdown_start(
            Goal::Patient,
            true,
            &[Contender::new(
                "a file that is not there".into(),
                None,
                Some(file.clone()),
                1,
            )],
        )
        .await
        .unwrap();
    // Another process holds it.
    let mut other = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let holder = kindling_core::server::owners::ProcessId::of(other.id()).unwrap();
    assert_eq!(core.db().claim_showdown(id, holder).await.unwrap(), None);
    let refused = core.showdown_run(id, &Cancel::new()).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Busy, "{refused}");
    assert!(
        refused.to_string().contains(&holder.pid.to_string()),
        "{refused}"
    );
    let sd = core.db().showdown(id).await.unwrap();
    assert_eq!(
        sd.entries[0].status,
        EntryStatus::Pending,
        "nothing was done"
    );
    assert_eq!(core.db().showdown_owner(id).await.unwrap(), Some(holder));
    // That Kindling is gone: this one takes the showdown over.
    other.kill().unwrap();
    other.wait().unwrap();
    let report = core.showdown_run(id, &Cancel::new()).await.unwrap();
    assert_eq!(report.showdown.entries[0].status, EntryStatus::Failed);
    assert_eq!(
        core.db().showdown_owner(id).await.unwrap(),
        None,
        "given up when done"
    );
    // All failed: no winner is picked, so nothing is offered for the Trash.
    assert!(
        report.verdict.starts_with("Only 0 of 1 candidates"),
        "{}",
        report.verdict
    );
    assert!(report.losers.is_empty());
}

/// A model the owner already has as an Ollama blob (named by its digest, not the file's
/// name) is offered in place: as a model to add while the catalog does not know it, and as
/// the catalog candidate itself once the catalog pins its bytes — never downloaded twice,
/// never listed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_kept_as_an_ollama_blob_is_used_in_place() {
    let t = tempfile::tempdir().unwrap();
    let sample = super::sample_model();
    let sha = kindling_core::store::sha256_file(&sample).unwrap();
    let bytes = std::fs::metadata(&sample).unwrap().len();
    let ollama = t.path().join("ollama");
    let blob = ollama.join("blobs").join(format!("sha256-{sha}"));
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    if std::fs::hard_link(&sample, &blob).is_err() {
        std::fs::copy(&sample, &blob).unwrap();
    }
    let manifest = ollama.join("manifests/registry.ollama.ai/library/gemma3/270m");
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    std::fs::write(
        &manifest,
        serde_json::json!({"layers": [{"mediaType": "application/vnd.ollama.image.model",
            "digest": format!("sha256:{sha}"), "size": bytes}]})
        .to_string(),
    )
    .unwrap();
    let home = t.path().join("kindling");
    std::fs::create_dir_all(&home).unwrap();
    let core = super::core_in(&home).await;
    let roots = kindling_core::store::found::Roots {
        ollama: Some(ollama.clone()),
        ..Default::default()
    };
    core.inventory(&roots).await.unwrap();

    // Not in the catalog: offered to add by hand, where it is.
    let proposal = core.showdown_proposal(Goal::Patient, true).await.unwrap();
    let on_disk: Vec<_> = proposal
        .more
        .iter()
        .filter(|c| c.path.as_deref() == Some(blob.as_path()))
        .collect();
    assert_eq!(on_disk.len(), 1, "{:?}", proposal.more);
    assert_eq!(on_disk[0].catalog_id, None);
    assert!(on_disk[0].label.contains("Q4_K_M"), "{}", on_disk[0].label);
    assert!(on_disk[0].estimated_seconds > 0.0, "{:?}", on_disk[0]);

    // The catalog pins its bytes under another file name: the same file, the catalog's
    // candidate now, still where Ollama keeps it.
    std::fs::write(
        home.join("catalog.toml"),
        format!(
            "[[family]]\nid = \"sample\"\nname = \"Sample\"\nlicense = \"gemma\"\n\
             architecture = \"dense\"\nparams_b = 0.27\ncontext = 32768\ninstruct = false\n\
             thinking = \"none\"\nvariants = [\n  {{ quant = \"Q4_K_M\", repo = \"example/sample\", \
             file = \"sample-Q4_K_M.gguf\", size_gb = {}, bytes = {bytes}, sha256 = \"{sha}\", revision = \"0123456789abcdef0123456789abcdef01234567\" }},\n]\n",
            bytes as f64 / 1e9
        ),
    )
    .unwrap();
    let text = std::fs::read_to_string(home.join("catalog.toml")).unwrap();
    kindling_core::catalog::Catalog::builtin()
        .with_additions(&text)
        .unwrap();

    let proposal = core.showdown_proposal(Goal::Patient, true).await.unwrap();
    let sample_contender = proposal
        .contenders
        .iter()
        .chain(&proposal.more)
        .find(|c| c.catalog_id.as_deref() == Some("sample:Q4_K_M"))
        .unwrap_or_else(|| panic!("the sample is not proposed: {proposal:?}"));
    assert_eq!(
        sample_contender.path.as_deref(),
        Some(blob.as_path()),
        "used where Ollama keeps it"
    );
    assert_eq!(
        proposal
            .contenders
            .iter()
            .chain(&proposal.more)
            .filter(|c| c.path.as_deref() == Some(blob.as_path()))
            .count(),
        1,
        "listed once"
    );
    assert_eq!(
        core.installed_file("sample-Q4_K_M.gguf").await.unwrap(),
        Some(blob)
    );
}

/// A copy of the sample model whose name differs by one letter: the same weights, other
/// bytes, so a tie between the two cannot be waved away as the same file.
fn renamed_copy(to: &std::path::Path) {
    let mut bytes = std::fs::read(super::sample_model()).unwrap();
    let head = &bytes[..bytes.len().min(1 << 20)];
    // general.name ("Gemma 3 270m"), not general.architecture ("gemma3"): another
    // architecture's name would not load at all.
    let at = head
        .windows(7)
        .position(|w| w == b"Gemma 3")
        .expect("the sample names itself \"Gemma 3 270m\" in its header");
    bytes[at] = b'g';
    std::fs::write(to, bytes).unwrap();
}

/// Ten quick tests cannot tell the two apart, so the night asks both the other 28 tests
/// of the full suite, carrying what each already answered, and judges the pair on all 38.
/// The full-suite runs neither recommend nor calibrate: they repeat the quick runs'
/// figures. The time the settling took is printed for the closing note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tie_at_the_top_is_settled_on_the_full_suite() {
    let _guard = super::SERVER_LOCK.lock().await;
    let t = tempfile::tempdir_in(".").unwrap();
    let core = super::core_in(t.path()).await;
    let a = t.path().join("sample.gguf");
    let b = t.path().join("sample-renamed.gguf");
    std::fs::copy(super::sample_model(), &a).unwrap();
    renamed_copy(&b);
    let contenders: Vec<Contender> = [("Sample", &a), ("Sample renamed", &b)]
        .iter()
        .map(|(label, p)| {
            Contender::new(
                (*label).into(),
                None,
                Some((*p).clone()),
                std::fs::metadata(p).unwrap().len(),
            )
        })
        .collect();
    let id = core
        .showdown_start(Goal::Patient, true, &contenders)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let report = core.showdown_run(id, &Cancel::new()).await.unwrap();
    let night = started.elapsed();

    let sd = core.db().showdown(id).await.unwrap();
    let tie = sd.tie.clone().expect("the tie at the top was looked at");
    let kindling_core::showdown::tie::Settle::Measured { tests, seconds } = tie.settled else {
        panic!("the tie was not measured: {tie:?} ({})", report.verdict);
    };
    let full = Suite::core().select(false).len();
    let quick = Suite::core().select(true).len();
    assert_eq!(tests as usize, full);
    for e in &sd.entries {
        let run = e
            .full_run_id
            .expect("each of the pair has its full-suite run");
        let results = core.db().results(run).await.unwrap();
        assert_eq!(results.len(), full, "every test of the full suite answered");
        let quick_answers = core.db().results(e.run_id.unwrap()).await.unwrap();
        assert_eq!(quick_answers.len(), quick);
        for q in &quick_answers {
            let carried = results.iter().find(|r| r.test_id == q.test_id).unwrap();
            assert_eq!(
                carried.answer_json, q.answer_json,
                "{}: the quick answer (with its timing) was carried, not asked again",
                q.test_id
            );
        }
        let detail = core.db().run_detail(run).await.unwrap();
        assert!(
            detail.run.result.as_ref().is_some_and(|r| r.is_tie_break()),
            "run {run} is marked as a tie's"
        );
    }
    assert!(
        report.verdict.contains(&format!(
            "tied on the quick tests, so both answered the full suite ({full} tests;"
        )),
        "{}",
        report.verdict
    );
    assert!(
        report
            .verdict
            .contains(&format!("within what {full} tests can tell"))
            || report.verdict.contains("sure)"),
        "the pair is judged on the full suite: {}",
        report.verdict
    );
    // Shown to others: the verdict, the ranking and all four runs it stands on.
    let x = core.showdown_export(id).await.unwrap();
    let page = kindling_core::showdown::page::html(&x);
    assert_eq!(
        x.runs.len(),
        4,
        "two quick runs and the two that settled the tie"
    );
    assert_eq!(page.matches("<section class=\"run\">").count(), 4);
    assert_eq!(
        page.matches("full suite, to settle the tie").count(),
        2,
        "{page}"
    );
    assert!(page.contains(&kindling_core::history::page::escape(&report.verdict)));
    let md = kindling_core::showdown::page::markdown(&x);
    assert!(
        md.contains("| # | Candidate | Score |") && md.contains("| tg |"),
        "{md}"
    );
    eprintln!(
        "settling the tie took {seconds:.0} s of a {:.0} s showdown; verdict: {}",
        night.as_secs_f64(),
        report.verdict
    );
}
