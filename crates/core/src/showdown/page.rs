//! A showdown shown to others: the verdict, the ranking, and every run it stands on (each
//! candidate's quick run, and the full-suite runs that settled a tie), as one
//! self-contained page, as markdown, or as one JSON document. "If you're going to claim a
//! score, show how you got it."

use std::fmt::Write;

use serde::Serialize;

use super::{Ranked, ShowdownReport};
use crate::history::page::{escape, head, markdown as run_markdown, run_body};
use crate::history::RunExport;
use crate::{Core, Result};

/// The exported showdown's format name and version.
pub const SHOWDOWN_FORMAT: &str = "kindling-showdown";
pub const SHOWDOWN_VERSION: u32 = 1;

/// One run a showdown stands on.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateRun {
    /// "Gemma 3 270m Q4_K_M: quick suite" or "…: full suite, to settle the tie".
    pub title: String,
    pub run: RunExport,
}

/// A showdown with every run behind it.
#[derive(Debug, Clone, Serialize)]
pub struct ShowdownExport {
    pub format: String,
    pub version: u32,
    pub report: ShowdownReport,
    pub runs: Vec<CandidateRun>,
}

impl Core {
    /// Showdown `id` with each candidate's run, and the runs that settled its tie.
    pub async fn showdown_export(&self, id: i64) -> Result<ShowdownExport> {
        let report = self.showdown_report(id).await?;
        let mut runs = Vec::new();
        for r in &report.ranked {
            runs.push(CandidateRun {
                title: format!("{}: quick suite", r.label),
                run: self.db().export_run(r.run_id).await?,
            });
        }
        for e in &report.showdown.entries {
            if let Some(full) = e.full_run_id {
                runs.push(CandidateRun {
                    title: format!("{}: full suite, to settle the tie", e.label),
                    run: self.db().export_run(full).await?,
                });
            }
        }
        Ok(ShowdownExport {
            format: SHOWDOWN_FORMAT.into(),
            version: SHOWDOWN_VERSION,
            report,
            runs,
        })
    }
}

fn gb(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

fn speed(r: &Ranked) -> String {
    let tps = r
        .gen_per_second
        .map_or("—".into(), |t| format!("{t:.1} tokens/s"));
    match r.measured_busy {
        Some(c) => format!("{tps} (taken while others kept {c:.1} cores busy)"),
        None => tps,
    }
}

/// The ranking's rows: place, candidate, score, size, score per GB, speed, goal met.
fn rows(x: &ShowdownExport) -> Vec<[String; 7]> {
    x.report
        .ranked
        .iter()
        .enumerate()
        .map(|(i, r)| {
            [
                (i + 1).to_string(),
                r.label.clone(),
                format!("{:.1}%", r.score * 100.0),
                gb(r.bytes),
                format!("{:.1}", r.score_per_gb),
                speed(r),
                if r.meets_goal { "yes" } else { "no" }.into(),
            ]
        })
        .collect()
}

const HEADERS: [&str; 7] = [
    "#",
    "Candidate",
    "Score",
    "Size",
    "Score per GB",
    "Speed",
    "Fast enough",
];

/// The showdown as one self-contained HTML page. Pure.
pub fn html(x: &ShowdownExport) -> String {
    let sd = &x.report.showdown;
    let mut out = head(&format!("Kindling showdown {}", sd.id));
    let _ = write!(
        out,
        "<h1>Which model for this machine: showdown {}</h1><p class=\"note verdict-line\">{}</p>",
        sd.id,
        escape(&x.report.verdict)
    );
    let _ = write!(
        out,
        "<table class=\"facts\"><tr><th>Goal</th><td>{}</td></tr><tr><th>Suite</th><td>{}</td></tr>\
         <tr><th>Started</th><td>{}</td></tr><tr><th>Finished</th><td>{}</td></tr></table>",
        escape(sd.goal.as_str()),
        if sd.quick {
            "the quick tests (a tie at the top is settled on the full suite)"
        } else {
            "the full suite"
        },
        escape(&sd.created_at),
        escape(sd.finished_at.as_deref().unwrap_or("—"))
    );
    out.push_str("<h2>Ranking</h2><table class=\"ranking\"><tr>");
    for h in HEADERS {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr>");
    for row in rows(x) {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(&cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    let failed: Vec<_> = sd
        .entries
        .iter()
        .filter_map(|e| Some((e, e.error.as_deref()?)))
        .collect();
    if !failed.is_empty() {
        out.push_str("<h2>Could not be measured</h2><ul>");
        for (e, why) in failed {
            let _ = write!(out, "<li>{}: {}</li>", escape(&e.label), escape(why));
        }
        out.push_str("</ul>");
    }
    for c in &x.runs {
        let _ = write!(
            out,
            "<section class=\"run\"><h2 class=\"run-title\">{}</h2>",
            escape(&c.title)
        );
        out.push_str(&run_body(&c.run));
        out.push_str("</section>");
    }
    let _ = write!(
        out,
        "<footer>Made by Kindling from its stored showdown; the same as data: \
         <code>kindling history export --showdown {}</code>.</footer></body></html>",
        sd.id
    );
    out
}

/// The showdown as markdown: the verdict, the ranking, then each run's table. Pure.
pub fn markdown(x: &ShowdownExport) -> String {
    let mut out = format!(
        "## Kindling showdown {}\n\n{}\n\n| {} |\n|{}\n",
        x.report.showdown.id,
        x.report.verdict,
        HEADERS.join(" | "),
        " --- |".repeat(HEADERS.len())
    );
    for row in rows(x) {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "/")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    for c in &x.runs {
        let _ = write!(out, "\n### {}\n\n{}", c.title, run_markdown(&c.run));
    }
    out
}
