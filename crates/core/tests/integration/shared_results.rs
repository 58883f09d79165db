//! Results anyone can check: a run from another machine imported, shown beside this
//! one's, judged test by test, rendered as a page and as the table people post; never
//! used to calibrate this machine. Real SQLite; recorded export documents.

use super::*;

fn doc(json: &str) -> kindling_core::history::RunExport {
    serde_json::from_str(json).unwrap()
}

#[tokio::test]
async fn an_imported_run_keeps_its_machine_and_model_and_renders_as_a_page() {
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let now = kindling_core::history::now();
    let theirs = core
        .db()
        .import_run(
            &doc(include_str!("../fixtures/exports/sample-quick-chatml.json")),
            &now,
        )
        .await
        .unwrap();
    let other = core
        .db()
        .import_run(
            &doc(include_str!("../fixtures/exports/sample-quick-gemma.json")),
            &now,
        )
        .await
        .unwrap();
    let detail = core.db().run_detail(theirs).await.unwrap();
    assert!(detail.run.imported);
    assert_eq!(detail.run.model_name.as_deref(), Some("Gemma 3 270m"));
    assert_eq!(detail.run.quant.as_deref(), Some("Q4_K_M"));
    let hw = detail
        .hardware
        .expect("the machine it ran on, from the document");
    assert_eq!(hw.logical_cores, 2);

    // Judged test by test, as the showdown judges.
    let j = core
        .judge_runs(theirs, other)
        .await
        .expect("both are quality runs");
    assert_eq!(
        j.verdict,
        kindling_core::bench::paired::Verdict::Alike,
        "{j:?}"
    );
    assert_eq!(j.tests, 10);

    // Never this machine's calibration: the recommender's measured list ignores it.
    let rec = core
        .recommend(kindling_core::recommend::Goal::Conversational)
        .await
        .unwrap();
    assert!(
        rec.calibrated_from == 0,
        "imported runs calibrated this machine: {}",
        rec.calibrated_from
    );

    let exported = core.db().export_run(theirs).await.unwrap();
    let page = kindling_core::history::page::html(&exported);
    for want in [
        "<!doctype html>",
        "Gemma 3 270m Q4_K_M",
        "Measured on another machine and imported here.",
        "Intel(R) Xeon(R) Processor · 2 cores",
        "--flash-attn auto --jinja",
        "core v1 (quick subset)",
        "Graders</th><td>v2",
        "reasoning.apples",
        "Grader: answered 17, expected 56",
        // The model's ChatML tokens are shown as text, never as markup.
        "&lt;|im_end|&gt;",
        "tokens/s (median of 2",
        "Memory-speed limit",
        "<svg",
    ] {
        assert!(page.contains(want), "the page lacks {want:?}");
    }
    assert!(!page.contains("<|im_end|>"), "unescaped model output");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page fetches nothing"
    );
    assert_eq!(
        page.matches("<section class=\"test\">").count(),
        10,
        "every test"
    );

    let table = kindling_core::history::page::markdown(&exported);
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| Gemma")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows[1].contains("| tg | 44.5"), "{table}");
    assert!(
        table.contains(
            "Quality: 13.5% on Kindling's core v1 suite (10 tests, 3 degenerate answers)"
        ),
        "{table}"
    );
}
