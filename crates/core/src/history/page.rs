//! A run as something to show others: one self-contained HTML page (no network, the
//! chart drawn inline) with the machine, the runtime and its arguments, the suite and
//! grader versions, every conversation, every answer and every grader's verdict and
//! reason, and the speed with its spread and its memory-speed limit; and a
//! llama.cpp-discussion-style markdown table of the speed, the form people already post
//! for Apple Silicon and Vulkan. Both are made from an exported document
//! ([`RunExport`]), so a run imported from another Mac renders the same way. Pure.

use std::fmt::Write;

use serde_json::Value;

use super::RunExport;

/// `&`, `<`, `>`, `"` and `'` escaped for HTML text and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The values of the measurement `name`, in order.
fn values(doc: &RunExport, name: &str) -> Vec<f64> {
    doc.run
        .get("measurements")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter(|m| str_at(m, "name") == Some(name))
                .filter_map(|m| m.get("value").and_then(Value::as_f64))
                .collect()
        })
        .unwrap_or_default()
}

/// Median and the spread either side (half of max − min), when there are figures.
fn median_spread(v: &[f64]) -> Option<(f64, f64)> {
    let s = crate::bench::Stat::of(v)?;
    Some((s.median, (s.max - s.min) / 2.0))
}

/// The run's machine in the words `kindling detect` uses ([`HardwareProfile::summary`]),
/// after the Mac's name and before its system: "iMac (Retina 5K, 27-inch, 2017) · Intel
/// Core i5 · … · macOS 13.7". A document whose machine this version cannot read says so.
fn machine(doc: &RunExport) -> String {
    let Some(h) = doc.run.get("hardware").filter(|h| !h.is_null()) else {
        return "not recorded".into();
    };
    let Ok(hw) = serde_json::from_value::<crate::hardware::HardwareProfile>(h.clone()) else {
        return "recorded in a form this version of Kindling cannot read".into();
    };
    let mac = hw
        .model_identifier
        .as_deref()
        .map(|m| crate::catalog::mac_name(m).unwrap_or_else(|| m.to_string()));
    let os = [Some(hw.os.as_str()), hw.os_version.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    mac.into_iter()
        .chain([hw.summary(), os])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

fn title(doc: &RunExport) -> String {
    let model = str_at(&doc.run, "model_name")
        .or_else(|| str_at(&doc.run, "model_path"))
        .unwrap_or("a model");
    let quant = str_at(&doc.run, "quant").unwrap_or("");
    format!("{model} {quant}").trim().to_string()
}

/// The start of a self-contained page titled `title` (escaped here).
pub(crate) fn head(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    )
}

/// One self-contained HTML page of the run.
pub fn html(doc: &RunExport) -> String {
    let t = title(doc);
    let id = doc.run.get("id").and_then(Value::as_i64).unwrap_or(0);
    let mut out = head(&format!("Kindling run {id}: {t}"));
    let _ = write!(out, "<h1>{}</h1>", escape(&t));
    out.push_str(&run_body(doc));
    out.push_str(
        "<footer>Made by Kindling from its stored run; the same run as data: \
         <code>kindling history export RUN</code>.</footer></body></html>",
    );
    out
}

/// Everything about a run below its title: facts, speed, quality, every test.
pub(crate) fn run_body(doc: &RunExport) -> String {
    let mut out = String::new();
    let run = &doc.run;
    if run.get("imported").and_then(Value::as_bool) == Some(true) {
        out.push_str("<p class=\"note\">Measured on another machine and imported here.</p>");
    }
    out.push_str("<table class=\"facts\">");
    let mut fact = |k: &str, v: &str| {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
    };
    fact("Kind", str_at(run, "kind").unwrap_or("?"));
    fact("Machine", &machine(doc));
    fact(
        "Runtime",
        str_at(run, "runtime_version").unwrap_or("not recorded"),
    );
    fact("Backend", str_at(run, "backend").unwrap_or("not recorded"));
    if let Some(asked) = run.get("server_args").and_then(Value::as_array) {
        let args: Vec<String> = asked
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        if !args.is_empty() {
            fact("Asked in", &crate::chat_format::asked_in(&args));
        }
    }
    fact(
        "Server arguments",
        &run.get("server_args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
    );
    if let Some(c) = &doc.config {
        fact(
            "Suite",
            &format!(
                "{} v{}{}",
                str_at(c, "suite_id").unwrap_or("?"),
                c.get("suite_version").and_then(Value::as_u64).unwrap_or(0),
                if c.get("quick").and_then(Value::as_bool) == Some(true) {
                    " (quick subset)"
                } else {
                    ""
                }
            ),
        );
    }
    let mut graders: Vec<i64> = doc.scores.iter().map(|s| s.grader_version).collect();
    graders.sort_unstable();
    graders.dedup();
    if !graders.is_empty() {
        fact(
            "Graders",
            &graders
                .iter()
                .map(|g| format!("v{g}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    fact("Started", str_at(run, "started_at").unwrap_or("?"));
    fact("Finished", str_at(run, "finished_at").unwrap_or("—"));
    out.push_str("</table>");

    // Speed.
    out.push_str("<h2>Speed</h2><table class=\"facts\">");
    let mut speed_row = |label: &str, name: &str, unit: &str| {
        if let Some((m, s)) = median_spread(&values(doc, name)) {
            let n = values(doc, name).len();
            let _ = write!(
                out,
                "<tr><th>{label}</th><td>{m:.1} ± {s:.1} {unit} (median of {n}, ± half the range)</td></tr>"
            );
        }
    };
    speed_row("Generation", "gen_per_second", "tokens/s");
    speed_row("Reading the prompt", "prompt_per_second", "tokens/s");
    speed_row(
        "Taken while the machine was busy (set aside)",
        "busy_gen_per_second",
        "tokens/s",
    );
    if let Some(l) = values(doc, "limit_per_second").first() {
        let gen = median_spread(&values(doc, "gen_per_second")).map(|g| g.0);
        let share = gen.map(|g| format!(", {:.0}% of it reached", g / l * 100.0));
        let _ = write!(
            out,
            "<tr><th>Memory-speed limit</th><td>{l:.1} tokens/s{}</td></tr>",
            share.unwrap_or_default()
        );
    }
    out.push_str("</table>");

    // Quality: the chart, then every test.
    let result = run.get("result").filter(|r| !r.is_null());
    if let Some(cats) = result
        .and_then(|r| r.get("categories"))
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    {
        let score = result
            .and_then(|r| r.get("score"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let _ = write!(out, "<h2>Quality: {:.1}%</h2>", score * 100.0);
        out.push_str(&chart(cats));
    }
    if !doc.results.is_empty() {
        out.push_str("<h2>Every test</h2>");
    }
    for r in &doc.results {
        let s = doc.scores.iter().find(|s| s.test_id == r.test_id);
        let answer: Value = serde_json::from_str(&r.answer_json).unwrap_or(Value::Null);
        let _ = write!(
            out,
            "<section class=\"test\"><h3>{} <small>{} · {} · {}</small></h3>",
            escape(&r.test_id),
            escape(&r.category),
            escape(&r.outcome),
            s.map_or("not graded".into(), |s| format!("{:.0}%", s.score * 100.0))
        );
        if let Some(d) = s.and_then(|s| s.detail.as_deref()) {
            let _ = write!(out, "<p class=\"verdict\">Grader: {}</p>", escape(d));
        }
        for m in answer
            .get("conversation")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let role = str_at(m, "role").unwrap_or("?");
            let content = match m.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(v) if !v.is_null() => v.to_string(),
                _ => m
                    .get("tool_calls")
                    .map(Value::to_string)
                    .unwrap_or_default(),
            };
            let _ = write!(
                out,
                "<div class=\"msg {}\"><b>{}</b><pre>{}</pre></div>",
                escape(role),
                escape(role),
                escape(&content)
            );
        }
        if let Some(e) = str_at(&answer, "error") {
            let _ = write!(out, "<p class=\"verdict\">Error: {}</p>", escape(e));
        }
        out.push_str("</section>");
    }
    out
}

/// The category scores as an inline SVG bar chart.
fn chart(cats: &[Value]) -> String {
    const BAR: usize = 22;
    const WIDTH: f64 = 360.0;
    let h = cats.len() * BAR + 4;
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"score by category\" width=\"560\" height=\"{h}\" viewBox=\"0 0 560 {h}\">"
    );
    for (i, c) in cats.iter().enumerate() {
        let name = str_at(c, "category").unwrap_or("?");
        let score = c.get("score").and_then(Value::as_f64).unwrap_or(0.0);
        let y = i * BAR + 2;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"130\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"#d9822b\"/>\
             <text x=\"{:.1}\" y=\"{}\">{:.0}%</text>",
            y + 15,
            escape(name),
            WIDTH * score.clamp(0.0, 1.0),
            BAR - 6,
            136.0 + WIDTH * score.clamp(0.0, 1.0),
            y + 15,
            score * 100.0
        );
    }
    svg.push_str("</svg>");
    svg
}

const STYLE: &str = "body{font:15px/1.45 -apple-system,system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.6em}h2{margin-top:1.6em}table.facts th{text-align:left;padding-right:1em;vertical-align:top;white-space:nowrap}\
.note{background:#fff4e0;padding:.5em}section.test{border-top:1px solid #ddd;margin-top:1em}\
h3 small{color:#666;font-weight:normal}.verdict{color:#444;font-style:italic}\
.msg pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em;margin:.2em 0}.msg.assistant pre{background:#fdf3e7}\
svg.chart text{font-size:13px}footer{margin-top:2em;color:#666}\
table.ranking{border-collapse:collapse}table.ranking th,table.ranking td{border-bottom:1px solid #ddd;padding:.25em .7em;text-align:left}\
section.run{border-top:3px solid #d9822b;margin-top:2.5em}";

/// The speed as a llama.cpp-discussion-style table (`llama-bench`'s markdown columns),
/// then what those tables lack: the machine, the limit, the degenerate count and the
/// quality score with its suite.
pub fn markdown(doc: &RunExport) -> String {
    let run = &doc.run;
    let mut out = String::new();
    let size = run
        .get("result")
        .and_then(|r| r.get("model_bytes"))
        .and_then(Value::as_u64);
    let backend = str_at(run, "backend").unwrap_or("?");
    let ngl = run
        .get("server_args")
        .and_then(Value::as_array)
        .and_then(|a| {
            let at = a
                .iter()
                .position(|x| x.as_str() == Some("--n-gpu-layers"))?;
            a.get(at + 1)?.as_str().map(str::to_string)
        })
        .unwrap_or_else(|| "auto".into());
    out.push_str("| model | size | backend | ngl | test | t/s |\n");
    out.push_str("| --- | ---: | --- | ---: | ---: | ---: |\n");
    let model = title(doc);
    let size = size.map_or("?".into(), |b| {
        format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
    });
    for (test, name) in [("pp", "prompt_per_second"), ("tg", "gen_per_second")] {
        if let Some((m, s)) = median_spread(&values(doc, name)) {
            let _ = writeln!(
                out,
                "| {} | {size} | {backend} | {ngl} | {test} | {m:.2} ± {s:.2} |",
                model.replace('|', "/")
            );
        }
    }
    let _ = writeln!(out, "\nMachine: {}  ", machine(doc));
    let _ = writeln!(
        out,
        "Runtime: {}  ",
        str_at(run, "runtime_version").unwrap_or("not recorded")
    );
    if let Some(l) = values(doc, "limit_per_second").first() {
        let _ = writeln!(out, "Memory-speed limit: {l:.1} t/s  ");
    }
    if let Some(r) = run.get("result").filter(|r| r.get("score").is_some()) {
        let score = r.get("score").and_then(Value::as_f64).unwrap_or(0.0);
        let degenerate = r
            .get("counts")
            .and_then(|c| c.get("degenerate"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let suite = doc
            .config
            .as_ref()
            .map(|c| {
                format!(
                    "{} v{}",
                    str_at(c, "suite_id").unwrap_or("?"),
                    c.get("suite_version").and_then(Value::as_u64).unwrap_or(0)
                )
            })
            .unwrap_or_else(|| "?".into());
        let _ = writeln!(
            out,
            "Quality: {:.1}% on Kindling's {suite} suite ({} tests, {degenerate} degenerate answers)  ",
            score * 100.0,
            doc.results.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_what_html_needs() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
