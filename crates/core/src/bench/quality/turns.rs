//! One test's conversation with the served model: the turns it sends (tools, the
//! needle's long context), the deadline each request gets from this machine's measured
//! speed, and the context a test needs.

use super::*;

/// How long one request may take: twice what this machine's measured speed predicts,
/// plus a margin, within a floor and a cap.
pub fn deadline(
    prompt_tokens: u64,
    max_tokens: u32,
    prompt_per_second: f64,
    gen_per_second: f64,
) -> Duration {
    let expected = prompt_tokens as f64 / prompt_per_second.max(0.1)
        + f64::from(max_tokens) / gen_per_second.max(0.01);
    Duration::from_secs_f64((2.0 * expected + 15.0).clamp(30.0, 4.0 * 3600.0))
}

pub(super) fn estimate_tokens(messages: &[Value]) -> u64 {
    messages
        .iter()
        .map(|m| m.to_string().len() as u64 / 4 + 4)
        .sum()
}

/// Tokens of context `test` needs: what it sends (system prompt, prompt or every turn),
/// counted by the server's tokenizer, and room for each answer it asks for.
pub async fn context_needed(
    http: &reqwest::Client,
    base: &str,
    system: Option<&str>,
    test: &TestCase,
) -> std::result::Result<u64, ServerError> {
    let mut text = system.unwrap_or_default().to_string();
    match (&test.prompt, &test.needle) {
        (Some(p), _) => text.push_str(p),
        (None, Some(n)) => text.push_str(&needle_prompt(n)),
        (None, None) => text.push_str(&test.turns.join("\n")),
    }
    let answers = if test.turns.is_empty() {
        test.agent.as_ref().map_or(1, |a| a.max_steps.max(1))
    } else {
        test.turns.len() as u32
    };
    // The chat template's own tokens: a few per message.
    let template = 16 * (u64::from(answers) + 1);
    Ok(speed::count_tokens(http, base, &text).await?
        + u64::from(answers) * u64::from(test.max_tokens)
        + template)
}

pub(super) fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

/// Runs one test against `base` (the OpenAI API of a server).
pub async fn run_test(
    http: &reqwest::Client,
    base: &str,
    system: Option<&str>,
    test: &TestCase,
    think: Option<bool>,
    speed: (f64, f64),
) -> std::result::Result<(Outcome, TestAnswer), ServerError> {
    let started = Instant::now();
    let mut conv: Vec<Value> = system
        .map(|s| json!({"role": "system", "content": s}))
        .into_iter()
        .collect();
    let specs: Vec<Value> = test.tools.iter().filter_map(|t| tools::spec(t)).collect();
    let mut answer = TestAnswer::default();
    let ask = |conv: &Vec<Value>, tools: &[Value]| {
        let limit = deadline(estimate_tokens(conv), test.max_tokens, speed.0, speed.1);
        let conv = conv.clone();
        let tools = tools.to_vec();
        async move { chat::complete(http, base, &conv, &tools, test.max_tokens, think, limit).await }
    };
    let ended_badly = |a: &ChatAnswer| !matches!(a.ending, Ending::Finished);

    if !test.turns.is_empty() {
        for turn in &test.turns {
            conv.push(user(turn));
            let a = ask(&conv, &[]).await?;
            conv.push(json!({"role": "assistant", "content": a.content}));
            let stop = ended_badly(&a);
            answer.last = Some(a);
            if stop {
                break;
            }
        }
    } else {
        let prompt = match (&test.prompt, &test.needle) {
            (Some(p), _) => p.clone(),
            (None, Some(n)) => needle_prompt(n),
            (None, None) => String::new(),
        };
        conv.push(user(&prompt));
        let steps = test.agent.as_ref().map_or(1, |a| a.max_steps.max(1));
        for step in 1..=steps {
            let a = ask(&conv, &specs).await?;
            let calls = a.tool_calls.clone();
            let stop = ended_badly(&a) || calls.is_empty() || test.agent.is_none() || step == steps;
            if test.agent.is_some() && !calls.is_empty() && !ended_badly(&a) {
                conv.push(json!({
                    "role": "assistant",
                    "content": a.content,
                    "tool_calls": calls.iter().map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})).collect::<Vec<_>>(),
                }));
                for c in &calls {
                    answer.tools_used.push(c.name.clone());
                    let result = if test.tools.contains(&c.name) {
                        tools::execute(&c.name, &c.args())
                    } else {
                        format!("error: no tool named {}", c.name)
                    };
                    conv.push(json!({"role": "tool", "tool_call_id": c.id, "content": result}));
                }
            } else {
                conv.push(json!({"role": "assistant", "content": a.content}));
            }
            answer.last = Some(a);
            if stop {
                break;
            }
        }
    }
    answer.conversation = conv;
    answer.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    let outcome = match answer.last.as_ref().map(|a| &a.ending) {
        Some(Ending::Degenerate(_)) => Outcome::Degenerate,
        Some(Ending::Timeout { .. }) => Outcome::Timeout,
        _ => Outcome::Answered,
    };
    Ok((outcome, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_measured_speed() {
        let fast = deadline(500, 256, 5000.0, 300.0);
        let slow = deadline(500, 256, 20.0, 1.0);
        assert_eq!(fast, Duration::from_secs(30), "floor");
        assert!(
            slow > Duration::from_secs(500),
            "a 1 tok/s model gets the time it needs: {slow:?}"
        );
        assert_eq!(
            deadline(1_000_000, 100_000, 0.0, 0.0),
            Duration::from_secs(4 * 3600),
            "cap"
        );
    }
}
