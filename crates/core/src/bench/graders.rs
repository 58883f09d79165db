//! Deterministic graders: a raw response in, a score in [0, 1] out, with a short reason.
//! Pure functions of the stored response and the grader's parameters, so a run can be
//! rescored later without inference. Bump [`GRADER_VERSION`] when any grading changes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Recorded with every score; raise it whenever a grader's behaviour changes.
/// 2: answers with non-ASCII letters before "Answer:" are read (1 panicked on some);
/// recall scores no longer go below zero.
pub const GRADER_VERSION: u32 = 2;

/// A grader and its parameters, as written in the suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Grader {
    Number {
        answer: f64,
        #[serde(default)]
        tolerance: f64,
    },
    Word {
        answer: String,
    },
    Regex {
        must_match: Vec<String>,
        must_reject: Vec<String>,
    },
    Sql {
        setup: String,
        expected: Vec<Vec<String>>,
    },
    Json {
        schema: String,
    },
    ToolCall {
        name: String,
        #[serde(default)]
        arguments: serde_json::Map<String, Value>,
    },
    NoToolCall,
    Creative {
        lines: Option<usize>,
        acrostic: Option<String>,
        min_words: Option<usize>,
        max_words: Option<usize>,
        #[serde(default)]
        must_include: Vec<String>,
        bullets: Option<usize>,
        #[serde(default)]
        title_case: bool,
    },
    Contains {
        answer: String,
    },
    Recall {
        facts: Vec<String>,
        #[serde(default)]
        forbidden: Vec<String>,
    },
    Agent {
        answer: f64,
        #[serde(default)]
        tolerance: f64,
        #[serde(default)]
        required_tools: Vec<String>,
    },
}

/// What a grader looks at.
#[derive(Debug, Clone, Default)]
pub struct Response<'a> {
    pub content: &'a str,
    /// `(name, arguments JSON)` of each tool call in the final message.
    pub tool_calls: &'a [(String, Value)],
    /// Names of the tools the runner executed during an agentic test, in order.
    pub tools_used: &'a [String],
}

/// A score and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    pub score: f64,
    pub detail: String,
}

fn grade(score: f64, detail: impl Into<String>) -> Grade {
    Grade {
        score: score.clamp(0.0, 1.0),
        detail: detail.into(),
    }
}

/// The answer without thinking blocks (`<think>…</think>`, also unclosed ones).
pub fn strip_thinking(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<think>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</think>") {
            Some(end) => rest = &rest[start + end + "</think>".len()..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// The text of the first fenced code block, if any; else the first `inline` span.
pub fn code_block(text: &str) -> Option<String> {
    if let Some(start) = text.find("```") {
        let after = &text[start + 3..];
        let body_start = after.find('\n').map_or(0, |n| n + 1);
        let body = &after[body_start..];
        let end = body.find("```").unwrap_or(body.len());
        return Some(body[..end].trim().to_string());
    }
    let start = text.find('`')?;
    let end = text[start + 1..].find('`')?;
    Some(text[start + 1..start + 1 + end].to_string())
}

/// The line after `Answer:` if there is one, else the last non-empty line.
fn final_answer(text: &str) -> String {
    let text = strip_thinking(text);
    // Searched on the original text: lowercasing can change byte lengths ("İ" is two
    // bytes, its lowercase three), so an index into a lowercased copy is not an index here.
    if let Some(i) = rfind_ascii_ci(&text, "answer:") {
        return text[i + "answer:".len()..]
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
    }
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// The byte index of the last ASCII-case-insensitive match of the ASCII `needle` in
/// `haystack`. Always a char boundary of `haystack`: an ASCII byte never sits inside a
/// multi-byte character.
fn rfind_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.is_empty() || n.len() > h.len() {
        return None;
    }
    (0..=h.len() - n.len())
        .rev()
        .find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Numbers in `text`, in order (`1,234.5` → 1234.5; a trailing `.` is not a decimal point).
pub fn numbers(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let neg = b[i] == '-'
            && i + 1 < b.len()
            && b[i + 1].is_ascii_digit()
            && (i == 0 || !b[i - 1].is_alphanumeric());
        if b[i].is_ascii_digit() || neg {
            let mut s = String::new();
            if neg {
                s.push('-');
                i += 1;
            }
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == ',' || b[i] == '.') {
                let is_sep = b[i] == ',' || b[i] == '.';
                if is_sep && !(i + 1 < b.len() && b[i + 1].is_ascii_digit()) {
                    break;
                }
                if b[i] != ',' {
                    s.push(b[i]);
                }
                i += 1;
            }
            if let Ok(v) = s.parse() {
                out.push(v);
            }
        } else {
            i += 1;
        }
    }
    out
}

fn close(got: f64, want: f64, tolerance: f64) -> bool {
    (got - want).abs() <= tolerance * want.abs().max(1e-9) + 1e-9
}

fn grade_number(content: &str, answer: f64, tolerance: f64) -> Grade {
    let fin = final_answer(content);
    let got = numbers(&fin)
        .last()
        .copied()
        .or_else(|| numbers(&strip_thinking(content)).last().copied());
    match got {
        Some(v) if close(v, answer, tolerance) => grade(1.0, format!("{v} is right")),
        Some(v) => grade(0.0, format!("answered {v}, expected {answer}")),
        None => grade(0.0, "no number in the answer"),
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn grade_word(content: &str, answer: &str) -> Grade {
    let fin = final_answer(content);
    let hit = words(&fin).iter().any(|w| w.eq_ignore_ascii_case(answer));
    if hit {
        grade(1.0, format!("said {answer}"))
    } else {
        grade(0.0, format!("answered {fin:?}, expected {answer}"))
    }
}

fn grade_regex(content: &str, must_match: &[String], must_reject: &[String]) -> Grade {
    let body = strip_thinking(content);
    let Some(pattern) = code_block(&body).or_else(|| {
        body.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    }) else {
        return grade(0.0, "no regex in the answer");
    };
    let pattern = pattern.trim().trim_matches('/').to_string();
    // Whole-string semantics, as the prompt asks; a limit keeps a hostile pattern cheap.
    let anchored = format!("^(?:{pattern})$");
    let re = match regex::RegexBuilder::new(&anchored)
        .size_limit(1 << 20)
        .build()
    {
        Ok(re) => re,
        Err(e) => return grade(0.0, format!("not a valid regex: {e}")),
    };
    let total = must_match.len() + must_reject.len();
    let right = must_match.iter().filter(|s| re.is_match(s)).count()
        + must_reject.iter().filter(|s| !re.is_match(s)).count();
    grade(
        right as f64 / total.max(1) as f64,
        format!("{right} of {total} cases right with /{pattern}/"),
    )
}

/// Extracts the SQL statement from an answer (code block or the text itself).
pub fn sql_of(content: &str) -> Option<String> {
    let body = strip_thinking(content);
    let sql = code_block(&body).unwrap_or(body);
    let sql = sql.trim().trim_end_matches(';').trim().to_string();
    let head = sql.to_ascii_lowercase();
    (head.starts_with("select") || head.starts_with("with")).then_some(sql)
}

/// Compares SQL result rows (as text) with the expected rows.
pub fn grade_sql_rows(rows: Result<Vec<Vec<String>>, String>, expected: &[Vec<String>]) -> Grade {
    match rows {
        Err(e) => grade(0.0, format!("the query failed: {e}")),
        Ok(rows) if rows == expected => grade(1.0, "the query returns the expected rows"),
        Ok(rows) => grade(0.0, format!("returned {rows:?}, expected {expected:?}")),
    }
}

/// The first JSON value in an answer (code block, or from the first `{` or `[`).
pub fn json_of(content: &str) -> Option<Value> {
    let body = strip_thinking(content);
    if let Some(block) = code_block(&body) {
        if let Ok(v) = serde_json::from_str(&block) {
            return Some(v);
        }
    }
    let start = body.find(['{', '['])?;
    let mut de = serde_json::Deserializer::from_str(&body[start..]).into_iter::<Value>();
    de.next()?.ok()
}

/// Checks `v` against a small subset of JSON Schema: type, required, properties, items,
/// minItems, maxItems, enum. Returns the first violation.
pub fn check_schema(v: &Value, schema: &Value, at: &str) -> Result<(), String> {
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at} is not {t}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            return Err(format!("{at} is not one of {allowed:?}"));
        }
    }
    if let (Some(obj), Some(req)) = (
        v.as_object(),
        schema.get("required").and_then(Value::as_array),
    ) {
        for k in req.iter().filter_map(Value::as_str) {
            if !obj.contains_key(k) {
                return Err(format!("{at} lacks `{k}`"));
            }
        }
    }
    if let (Some(obj), Some(props)) = (
        v.as_object(),
        schema.get("properties").and_then(Value::as_object),
    ) {
        for (k, s) in props {
            if let Some(x) = obj.get(k) {
                check_schema(x, s, &format!("{at}.{k}"))?;
            }
        }
    }
    if let Some(arr) = v.as_array() {
        let n = arr.len() as u64;
        if schema
            .get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
        {
            return Err(format!("{at} has too few items ({n})"));
        }
        if schema
            .get("maxItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| n > m)
        {
            return Err(format!("{at} has too many items ({n})"));
        }
        if let Some(items) = schema.get("items") {
            for (i, x) in arr.iter().enumerate() {
                check_schema(x, items, &format!("{at}[{i}]"))?;
            }
        }
    }
    Ok(())
}

fn grade_json(content: &str, schema: &str) -> Grade {
    let Ok(schema) = serde_json::from_str::<Value>(schema) else {
        return grade(0.0, "the suite's schema is not JSON");
    };
    match json_of(content) {
        None => grade(0.0, "no JSON in the answer"),
        Some(v) => match check_schema(&v, &schema, "$") {
            Ok(()) => grade(1.0, "valid against the schema"),
            Err(e) => grade(0.0, e),
        },
    }
}

fn value_matches(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::String(g), Value::String(w)) => g.trim().eq_ignore_ascii_case(w.trim()),
        (g, Value::Number(w)) => {
            let g = g
                .as_f64()
                .or_else(|| g.as_str().and_then(|s| s.trim().parse().ok()));
            g.zip(w.as_f64()).is_some_and(|(g, w)| (g - w).abs() < 1e-9)
        }
        (g, w) => g == w,
    }
}

fn grade_tool_call(
    calls: &[(String, Value)],
    name: &str,
    args: &serde_json::Map<String, Value>,
) -> Grade {
    let Some((_, got)) = calls.iter().find(|(n, _)| n == name) else {
        let called: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
        return grade(0.0, format!("did not call {name} (called {called:?})"));
    };
    if args.is_empty() {
        return grade(1.0, format!("called {name}"));
    }
    let right = args
        .iter()
        .filter(|(k, w)| got.get(k.as_str()).is_some_and(|g| value_matches(g, w)))
        .count();
    // Half for choosing the right tool, half for its arguments.
    let score = 0.5 + 0.5 * right as f64 / args.len() as f64;
    grade(
        score,
        format!(
            "called {name}; {right} of {} arguments right ({got})",
            args.len()
        ),
    )
}

fn grade_creative(content: &str, g: &Grader) -> Grade {
    let Grader::Creative {
        lines,
        acrostic,
        min_words,
        max_words,
        must_include,
        bullets,
        title_case,
    } = g
    else {
        unreachable!("called with a creative grader")
    };
    let text = strip_thinking(content);
    let text_lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let ws = words(&text);
    let mut checks: Vec<(bool, String)> = Vec::new();
    if let Some(n) = lines {
        checks.push((
            text_lines.len() == *n,
            format!("{} lines (want {n})", text_lines.len()),
        ));
    }
    if let Some(word) = acrostic {
        let initials: String = text_lines
            .iter()
            .filter_map(|l| {
                l.trim_start_matches(|c: char| !c.is_alphanumeric())
                    .chars()
                    .next()
            })
            .collect::<String>()
            .to_uppercase();
        checks.push((
            initials == word.to_uppercase(),
            format!("initials {initials} (want {word})"),
        ));
    }
    if let Some(n) = min_words {
        checks.push((ws.len() >= *n, format!("{} words (min {n})", ws.len())));
    }
    if let Some(n) = max_words {
        checks.push((
            ws.len() <= *n && !ws.is_empty(),
            format!("{} words (max {n})", ws.len()),
        ));
    }
    for w in must_include {
        let lower = text.to_lowercase();
        checks.push((lower.contains(&w.to_lowercase()), format!("includes {w:?}")));
    }
    if let Some(n) = bullets {
        let items = text_lines
            .iter()
            .filter(|l| l.starts_with("- ") || l.starts_with("* ") || l.starts_with("• "))
            .count();
        checks.push((
            items == *n && text_lines.len() == *n,
            format!("{items} bullets (want {n})"),
        ));
    }
    if *title_case {
        let ok = !ws.is_empty()
            && ws.iter().all(|w| {
                w.chars()
                    .next()
                    .is_some_and(|c| c.is_uppercase() || !c.is_alphabetic())
            });
        checks.push((ok, "every word capitalised".into()));
    }
    let passed = checks.iter().filter(|c| c.0).count();
    let detail = checks
        .iter()
        .map(|(ok, d)| format!("{}{d}", if *ok { "✓ " } else { "✗ " }))
        .collect::<Vec<_>>()
        .join(", ");
    grade(passed as f64 / checks.len().max(1) as f64, detail)
}

fn grade_recall(content: &str, facts: &[String], forbidden: &[String]) -> Grade {
    let text = strip_thinking(content).to_lowercase();
    let found = facts
        .iter()
        .filter(|f| text.contains(&f.to_lowercase()))
        .count();
    let bad = forbidden
        .iter()
        .filter(|f| text.contains(&f.to_lowercase()))
        .count();
    let score = (found as f64 / facts.len().max(1) as f64 - 0.5 * bad as f64).max(0.0);
    grade(
        score,
        format!("recalled {found} of {} facts; {bad} outdated", facts.len()),
    )
}

/// [`grade_response`], with a grader fault (a bug of Kindling's, never the model's)
/// turned into a zero score that says so, so one test's grading never ends a run. The
/// answer stays stored, and a fixed grader rescores it.
pub fn grade_guarded(grader: &Grader, r: &Response) -> Grade {
    guarded(|| grade_response(grader, r))
}

/// Runs a grading step; a panic in it becomes a [`Grade`] of 0 that names the fault.
pub fn guarded(f: impl FnOnce() -> Grade) -> Grade {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(g) => g,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown fault".into());
            tracing::error!(%why, "a grader failed");
            grade(
                0.0,
                format!(
                    "grader fault ({why}): this is Kindling's bug, not the model's; the \
                     answer is kept and is graded again by rescore after an update"
                ),
            )
        }
    }
}

/// Grades a response. SQL answers need a query run: see [`crate::bench::quality`], which
/// runs it and calls [`grade_sql_rows`]; here SQL grades the extraction only.
pub fn grade_response(grader: &Grader, r: &Response) -> Grade {
    match grader {
        Grader::Number { answer, tolerance } => grade_number(r.content, *answer, *tolerance),
        Grader::Word { answer } => grade_word(r.content, answer),
        Grader::Regex {
            must_match,
            must_reject,
        } => grade_regex(r.content, must_match, must_reject),
        Grader::Sql { .. } => match sql_of(r.content) {
            Some(_) => grade(0.0, "query not run"),
            None => grade(0.0, "no SELECT query in the answer"),
        },
        Grader::Json { schema } => grade_json(r.content, schema),
        Grader::ToolCall { name, arguments } => grade_tool_call(r.tool_calls, name, arguments),
        Grader::NoToolCall => match r.tool_calls.first() {
            None => grade(1.0, "answered without a tool"),
            Some((n, _)) => grade(0.0, format!("called {n} where no tool fits")),
        },
        Grader::Creative { .. } => grade_creative(r.content, grader),
        Grader::Contains { answer } => {
            if strip_thinking(r.content).contains(answer.as_str()) {
                grade(1.0, format!("found {answer}"))
            } else {
                grade(0.0, format!("{answer} not in the answer"))
            }
        }
        Grader::Recall { facts, forbidden } => grade_recall(r.content, facts, forbidden),
        Grader::Agent {
            answer,
            tolerance,
            required_tools,
        } => {
            let a = grade_number(r.content, *answer, *tolerance);
            let used = required_tools
                .iter()
                .filter(|t| r.tools_used.contains(t))
                .count();
            let steps = used as f64 / required_tools.len().max(1) as f64;
            grade(
                0.7 * a.score + 0.3 * steps,
                format!(
                    "{}; used {used} of {} required tools",
                    a.detail,
                    required_tools.len()
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// One grader of every kind, with parameters that make each look hard at the text.
    fn every_grader() -> Vec<Grader> {
        vec![
            Grader::Number {
                answer: 56.0,
                tolerance: 0.0,
            },
            Grader::Word {
                answer: "Paris".into(),
            },
            Grader::Regex {
                must_match: vec!["ab".into()],
                must_reject: vec!["İ".into()],
            },
            Grader::Sql {
                setup: String::new(),
                expected: vec![],
            },
            Grader::Json {
                schema: r#"{"type":"object","required":["a"]}"#.into(),
            },
            Grader::ToolCall {
                name: "get_weather".into(),
                arguments: serde_json::from_value(json!({"city": "Paris"})).unwrap(),
            },
            Grader::NoToolCall,
            Grader::Creative {
                lines: Some(3),
                acrostic: Some("İSTANBUL".into()),
                min_words: Some(2),
                max_words: Some(40),
                must_include: vec!["ẞ".into()],
                bullets: Some(2),
                title_case: true,
            },
            Grader::Contains {
                answer: "İstanbul".into(),
            },
            Grader::Recall {
                facts: vec!["ǅ".into()],
                forbidden: vec!["ß".into()],
            },
            Grader::Agent {
                answer: 56.0,
                tolerance: 0.0,
                required_tools: vec!["calc".into()],
            },
        ]
    }

    fn assert_graded(text: &str) {
        let calls = [("get_weather".to_string(), json!({ "city": text }))];
        for g in every_grader() {
            let r = Response {
                content: text,
                tool_calls: &calls,
                tools_used: &[],
            };
            let got = grade_response(&g, &r);
            assert!(
                got.score.is_finite() && (0.0..=1.0).contains(&got.score),
                "{g:?} gave {} for {text:?}",
                got.score
            );
        }
        let _ = sql_of(text);
        let _ = code_block(text);
    }

    #[test]
    fn a_capital_dotted_i_before_the_answer_is_graded_not_a_panic() {
        // Reproduced with `kindling rescore`: "İ" lowercases to three bytes from two, so
        // an index found in the lowercased copy fell inside a character of the original.
        let g = Grader::Number {
            answer: 56.0,
            tolerance: 0.0,
        };
        assert_eq!(score(&g, "İİİİİİİİ answer: 56"), 1.0);
        assert_eq!(score(&g, "İİİİİİİİ ANSWER: 31"), 0.0);
        assert_graded("İİİİİİİİ answer: 56");
    }

    #[test]
    fn a_grader_fault_is_a_zero_that_names_it() {
        let g = guarded(|| panic!("index out of range"));
        assert_eq!(g.score, 0.0);
        assert!(
            g.detail.contains("grader fault (index out of range)"),
            "{}",
            g.detail
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn every_grader_scores_any_unicode_text(text in "\\PC{0,80}") {
            assert_graded(&text);
        }

        #[test]
        fn every_grader_scores_any_text_around_an_answer_line(
            before in "\\PC{0,40}", after in "\\PC{0,40}", n in -1000i32..1000,
        ) {
            assert_graded(&format!("{before}Answer: {n}{after}"));
            assert_graded(&format!("{before}<think>{after}</think>```\n{n}\n```"));
        }
    }

    fn content(c: &str) -> Response<'_> {
        Response {
            content: c,
            ..Default::default()
        }
    }
    fn score(g: &Grader, c: &str) -> f64 {
        grade_response(g, &content(c)).score
    }

    #[test]
    fn numbers_right_wrong_and_malformed() {
        let g = Grader::Number {
            answer: 56.0,
            tolerance: 0.0,
        };
        assert_eq!(score(&g, "48 - 17 = 31, 31 + 25 = 56.\nAnswer: 56"), 1.0);
        assert_eq!(score(&g, "**Answer:** 56 apples."), 1.0);
        assert_eq!(
            score(&g, "<think>maybe 31? no, 56</think>The shop has 56 apples."),
            1.0
        );
        assert_eq!(
            score(&g, "<think>56</think>Answer: 31"),
            0.0,
            "thinking is not the answer"
        );
        assert_eq!(score(&g, "Answer: 31"), 0.0);
        assert_eq!(score(&g, "I cannot say."), 0.0);
        assert_eq!(score(&g, ""), 0.0);
        let g = Grader::Number {
            answer: 42.2,
            tolerance: 0.0025,
        };
        assert_eq!(score(&g, "```\nAnswer: 42.16\n```"), 1.0);
        assert_eq!(score(&g, "Answer: 42.4"), 0.0);
        assert_eq!(numbers("1,234.5 and -3, then 7."), vec![1234.5, -3.0, 7.0]);
        assert_eq!(numbers("x-1"), vec![1.0]);
    }

    #[test]
    fn words() {
        let g = Grader::Word {
            answer: "Zoe".into(),
        };
        assert_eq!(score(&g, "Answer: Zoe"), 1.0);
        assert_eq!(score(&g, "The shortest is **zoe**."), 1.0);
        assert_eq!(score(&g, "Answer: Zoey"), 0.0);
        assert_eq!(score(&g, "Answer: Sam"), 0.0);
    }

    #[test]
    fn regexes() {
        let g = Grader::Regex {
            must_match: vec!["#a3f".into(), "#A3F09B".into()],
            must_reject: vec!["a3f".into(), "#abcd".into()],
        };
        assert_eq!(
            score(&g, "```regex\n#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})\n```"),
            1.0
        );
        assert_eq!(
            score(&g, "Use `#[0-9a-fA-F]{3,6}` for that."),
            0.75,
            "accepts #abcd"
        );
        assert_eq!(
            score(&g, "/^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/"),
            0.75,
            "slashes stripped; misses upper case"
        );
        assert_eq!(score(&g, "```\n([unclosed\n```"), 0.0);
        assert_eq!(score(&g, ""), 0.0);
    }

    #[test]
    fn sql_extraction_and_rows() {
        assert_eq!(
            sql_of("```sql\nSELECT 1;\n```").as_deref(),
            Some("SELECT 1")
        );
        assert_eq!(sql_of("DROP TABLE orders"), None);
        assert_eq!(
            sql_of("Here you go: SELECT 1"),
            None,
            "prose before the query"
        );
        let exp = vec![vec!["2".to_string()]];
        assert_eq!(grade_sql_rows(Ok(exp.clone()), &exp).score, 1.0);
        assert_eq!(grade_sql_rows(Ok(vec![vec!["3".into()]]), &exp).score, 0.0);
        assert_eq!(grade_sql_rows(Err("syntax error".into()), &exp).score, 0.0);
    }

    #[test]
    fn json_against_schema() {
        let schema = r#"{"type":"object","required":["name","age"],"properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","minItems":1,"items":{"type":"string"}}}}"#;
        let g = Grader::Json {
            schema: schema.into(),
        };
        assert_eq!(
            score(
                &g,
                r#"```json
{"name": "Ada", "age": 36, "tags": ["x"]}
```"#
            ),
            1.0
        );
        assert_eq!(
            score(&g, r#"Sure! {"name": "Ada", "age": 36} Hope it helps."#),
            1.0
        );
        assert_eq!(score(&g, r#"{"name": "Ada", "age": "36"}"#), 0.0);
        assert_eq!(score(&g, r#"{"name": "Ada"}"#), 0.0);
        assert_eq!(score(&g, r#"{"name": "Ada", "age": 1, "tags": []}"#), 0.0);
        assert_eq!(score(&g, "{not json"), 0.0);
    }

    #[test]
    fn tool_calls_and_refusals() {
        let mut args = serde_json::Map::new();
        args.insert("city".into(), json!("Lisbon"));
        let g = Grader::ToolCall {
            name: "get_weather".into(),
            arguments: args,
        };
        let call = |n: &str, a: Value| vec![(n.to_string(), a)];
        let r = |calls: &[(String, Value)]| {
            grade_response(
                &g,
                &Response {
                    content: "",
                    tool_calls: calls,
                    tools_used: &[],
                },
            )
            .score
        };
        assert_eq!(r(&call("get_weather", json!({"city": "lisbon"}))), 1.0);
        assert_eq!(r(&call("get_weather", json!({"city": "Porto"}))), 0.5);
        assert_eq!(
            r(&call("search_web", json!({"query": "Lisbon weather"}))),
            0.0
        );
        assert_eq!(r(&[]), 0.0);
        let n = Grader::NoToolCall;
        assert_eq!(
            grade_response(&n, &content("42, says Douglas Adams.")).score,
            1.0
        );
        let calls = call("search_web", json!({}));
        assert_eq!(
            grade_response(
                &n,
                &Response {
                    content: "",
                    tool_calls: &calls,
                    tools_used: &[]
                }
            )
            .score,
            0.0
        );
        let mut args = serde_json::Map::new();
        args.insert("minutes".into(), json!(15));
        let t = Grader::ToolCall {
            name: "set_timer".into(),
            arguments: args,
        };
        let calls = call("set_timer", json!({"minutes": "15"}));
        assert_eq!(
            grade_response(
                &t,
                &Response {
                    content: "",
                    tool_calls: &calls,
                    tools_used: &[]
                }
            )
            .score,
            1.0
        );
    }

    fn creative(f: impl FnOnce(&mut Grader)) -> Grader {
        let mut g = Grader::Creative {
            lines: None,
            acrostic: None,
            min_words: None,
            max_words: None,
            must_include: vec![],
            bullets: None,
            title_case: false,
        };
        f(&mut g);
        g
    }

    #[test]
    fn creative_constraints() {
        let haiku = creative(|g| {
            if let Grader::Creative { lines, .. } = g {
                *lines = Some(3)
            }
        });
        assert_eq!(
            score(
                &haiku,
                "Rain taps the window\nleaves drown in amber puddles\nthe gutter hums low"
            ),
            1.0
        );
        assert_eq!(
            score(
                &haiku,
                "Here is a haiku:\n\nRain taps\nleaves drown\ngutter hums"
            ),
            0.0,
            "extra prose is a fourth line"
        );
        let acro = creative(|g| {
            if let Grader::Creative { acrostic, .. } = g {
                *acrostic = Some("LAMP".into())
            }
        });
        assert_eq!(
            score(
                &acro,
                "Light in the corner\nAmber and warm\nMoths at the glass\nPatient all night"
            ),
            1.0
        );
        assert_eq!(
            score(&acro, "**L**ight\n**A**mber\n**M**oths\n**P**atient"),
            1.0,
            "markdown around initials"
        );
        assert_eq!(score(&acro, "Light\nAmber\nMoths"), 0.0);
        let limit = creative(|g| {
            if let Grader::Creative {
                max_words,
                min_words,
                ..
            } = g
            {
                *max_words = Some(12);
                *min_words = Some(3)
            }
        });
        assert_eq!(
            score(&limit, "Endless grey water breathing under a low sky."),
            1.0
        );
        assert_eq!(score(&limit, &"wave ".repeat(20)), 0.5);
        let inc = creative(|g| {
            if let Grader::Creative { must_include, .. } = g {
                *must_include = vec!["violin".into(), "moon".into()]
            }
        });
        assert_eq!(score(&inc, "The cat played a Violin under the moon."), 1.0);
        assert_eq!(score(&inc, "The cat slept."), 0.0);
        let b = creative(|g| {
            if let Grader::Creative { bullets, .. } = g {
                *bullets = Some(4)
            }
        });
        assert_eq!(score(&b, "- apple\n- pear\n- fig\n- plum"), 1.0);
        assert_eq!(score(&b, "Fruits:\n- apple\n- pear\n- fig\n- plum"), 0.0);
        let t = creative(|g| {
            if let Grader::Creative { title_case, .. } = g {
                *title_case = true
            }
        });
        assert_eq!(score(&t, "The Silent Lighthouse Keeper"), 1.0);
        assert_eq!(score(&t, "The silent keeper"), 0.0);
    }

    #[test]
    fn contains_and_recall() {
        let g = Grader::Contains {
            answer: "COBALT-2291".into(),
        };
        assert_eq!(score(&g, "The code word is **COBALT-2291**."), 1.0);
        assert_eq!(score(&g, "<think>COBALT-2291?</think>I don't know."), 0.0);
        let r = Grader::Recall {
            facts: vec!["Wednesday".into(), "4B".into()],
            forbidden: vec!["Monday".into()],
        };
        assert_eq!(score(&r, "Wednesday, in room 4B."), 1.0);
        assert_eq!(
            score(&r, "It moved from Monday to Wednesday, room 4B."),
            0.5
        );
        assert_eq!(score(&r, "No idea."), 0.0);
    }

    #[test]
    fn agent_answer_and_steps() {
        let g = Grader::Agent {
            answer: 10.1,
            tolerance: 0.001,
            required_tools: vec!["lookup".into(), "calculator".into()],
        };
        let used = vec!["lookup".to_string(), "lookup".into(), "calculator".into()];
        let r = Response {
            content: "Answer: 10.10",
            tool_calls: &[],
            tools_used: &used,
        };
        assert!((grade_response(&g, &r).score - 1.0).abs() < 1e-9);
        let r = Response {
            content: "Answer: 10.1",
            tool_calls: &[],
            tools_used: &[],
        };
        assert!(
            (grade_response(&g, &r).score - 0.7).abs() < 1e-9,
            "right answer, no tools: guessed"
        );
        let r = Response {
            content: "Answer: 9",
            tool_calls: &[],
            tools_used: &used,
        };
        assert!((grade_response(&g, &r).score - 0.3).abs() < 1e-9);
    }

    #[test]
    fn code_blocks() {
        assert_eq!(
            code_block("x\n```python\nprint(1)\n```\ny").as_deref(),
            Some("print(1)")
        );
        assert_eq!(code_block("use `a+b` here").as_deref(), Some("a+b"));
        assert_eq!(
            code_block("```\nunterminated").as_deref(),
            Some("unterminated")
        );
        assert_eq!(code_block("plain"), None);
        assert_eq!(strip_thinking("a<think>b</think>c<think>d"), "ac");
    }
}
