//! One streamed chat completion (`/v1/chat/completions`), kept raw: content, thinking,
//! tool calls, finish reason and timings. Garbage is noticed while it streams and the
//! request is dropped at once (llama-server stops generating when the client goes);
//! a request that outlives its deadline ends as a timeout with what arrived so far.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::degenerate::{Degeneracy, Detector};
use super::speed::{parse_sse_line, SseLine};
use crate::server::ServerError;

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ending", rename_all = "snake_case")]
pub enum Ending {
    Finished,
    Degenerate(Degeneracy),
    Timeout { after_ms: u64 },
}

/// The raw answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (a JSON string, possibly malformed).
    pub arguments: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatAnswer {
    pub content: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    pub timings: Option<Value>,
    /// Streamed pieces (≈ tokens) received.
    pub pieces: usize,
    pub ending: Ending,
    pub elapsed_ms: f64,
}

/// Sends `messages` (and `tools`) and streams the answer.
pub async fn complete(
    http: &reqwest::Client,
    base: &str,
    messages: &[Value],
    tools: &[Value],
    max_tokens: u32,
    think: Option<bool>,
    deadline: Duration,
) -> Result<ChatAnswer, ServerError> {
    const WHAT: &str = "a test request";
    let mut body = json!({
        "messages": messages,
        "max_tokens": max_tokens,
        "stream": true,
        "temperature": 0.0,
        "seed": 42,
    });
    if !tools.is_empty() {
        body["tools"] = json!(tools);
    }
    if let Some(t) = think {
        body["chat_template_kwargs"] = json!({"enable_thinking": t});
    }
    let started = Instant::now();
    let mut answer = ChatAnswer {
        content: String::new(),
        reasoning: String::new(),
        tool_calls: Vec::new(),
        finish_reason: None,
        timings: None,
        pieces: 0,
        ending: Ending::Finished,
        elapsed_ms: 0.0,
    };
    let timeout = |answer: &mut ChatAnswer| {
        answer.ending = Ending::Timeout {
            after_ms: deadline.as_millis() as u64,
        };
    };
    let send = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&body)
        .send();
    let resp = match tokio::time::timeout(deadline, send).await {
        Err(_) => {
            timeout(&mut answer);
            answer.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
            return Ok(answer);
        }
        Ok(r) => r.map_err(|e| ServerError::Request {
            what: WHAT.into(),
            detail: e.to_string(),
        })?,
    };
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(ServerError::BadResponse {
            what: WHAT.into(),
            detail: format!(
                "HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            ),
        });
    }
    // Thinking that goes on for nearly the whole budget with no answer is stuck.
    let mut detector = Detector::new((max_tokens as usize).saturating_mul(9) / 10);
    let mut stream = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let end_at = started + deadline;
    'read: loop {
        let next = match tokio::time::timeout_at(end_at.into(), stream.next()).await {
            Err(_) => {
                timeout(&mut answer);
                break;
            }
            Ok(None) => break,
            Ok(Some(chunk)) => chunk.map_err(|e| ServerError::Request {
                what: WHAT.into(),
                detail: e.to_string(),
            })?,
        };
        buf.extend_from_slice(&next);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let v = match parse_sse_line(line.trim_end_matches('\n')) {
                Ok(SseLine::Data(v)) => v,
                Ok(SseLine::Done) => break 'read,
                Ok(SseLine::Other) => continue,
                Err(e) => {
                    return Err(ServerError::BadResponse {
                        what: WHAT.into(),
                        detail: e,
                    })
                }
            };
            if let Some(t) = v.get("timings") {
                answer.timings = Some(t.clone());
            }
            let Some(choice) = v.get("choices").and_then(|c| c.get(0)) else {
                continue;
            };
            if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
                answer.finish_reason = Some(f.to_string());
            }
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            let mut verdict = None;
            if let Some(r) = delta.get("reasoning_content").and_then(Value::as_str) {
                answer.pieces += 1;
                answer.reasoning.push_str(r);
                verdict = detector.push_thinking(r);
            }
            if let Some(c) = delta.get("content").and_then(Value::as_str) {
                answer.pieces += 1;
                answer.content.push_str(c);
                verdict = verdict.or_else(|| detector.push(c));
            }
            for tc in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let i = tc.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                if i > 64 {
                    continue;
                }
                while answer.tool_calls.len() <= i {
                    answer.tool_calls.push(ToolCall::default());
                }
                let call = &mut answer.tool_calls[i];
                if let Some(id) = tc.get("id").and_then(Value::as_str) {
                    call.id = id.to_string();
                }
                if let Some(f) = tc.get("function") {
                    if let Some(n) = f.get("name").and_then(Value::as_str) {
                        call.name.push_str(n);
                    }
                    if let Some(a) = f.get("arguments").and_then(Value::as_str) {
                        answer.pieces += 1;
                        call.arguments.push_str(a);
                    }
                }
            }
            if let Some(d) = verdict {
                answer.ending = Ending::Degenerate(d);
                break 'read;
            }
        }
    }
    answer.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(answer)
}

impl ToolCall {
    /// The arguments as JSON (an empty object when the model wrote something else).
    pub fn args(&self) -> Value {
        serde_json::from_str(&self.arguments).unwrap_or_else(|_| json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::degenerate::Degeneracy;

    /// Regression: an internally tagged `Ending` whose payload also had a `kind` field
    /// serialized a duplicate key, so stored degenerate answers could not be read back.
    #[test]
    fn every_ending_survives_a_round_trip() {
        for ending in [
            Ending::Finished,
            Ending::Timeout { after_ms: 30_000 },
            Ending::Degenerate(Degeneracy {
                kind: "repetition".into(),
                evidence: "x".into(),
                at_piece: 9,
            }),
        ] {
            let json = serde_json::to_string(&ending).unwrap();
            assert_eq!(
                serde_json::from_str::<Ending>(&json).unwrap(),
                ending,
                "{json}"
            );
        }
    }
}
