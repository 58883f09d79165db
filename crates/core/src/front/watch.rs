//! Watching an answer as it passes the door: the text pieces of a streamed answer (OpenAI
//! chat and completions, llama.cpp's own `/completion`, Anthropic's messages) go through
//! the benchmarks' degeneracy detector, and the token counts and time to the first piece
//! are kept for the owner's usage figures. Nothing here holds the stream back: each frame
//! is read as it passes and handed on unchanged.

use std::time::Instant;

use serde_json::Value;

use crate::bench::degenerate::{Degeneracy, Detector};

/// How much of the raw stream an evidence file keeps (its end).
pub const TAIL_BYTES: usize = 8 * 1024;
/// A non-streamed answer is read for its token counts only up to this size.
const JSON_LIMIT: usize = 4 * 1024 * 1024;

/// What the door learned from one answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// From the request's arrival to the first piece of answer, when there was one.
    pub first_piece_ms: Option<f64>,
    pub pieces: usize,
    pub went_wrong: Option<Degeneracy>,
}

/// Whether one event of a stream says the answer is complete.
fn says_complete(v: &Value) -> bool {
    v["type"] == "message_stop"
        || v["stop"] == true
        || v["choices"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| !c["finish_reason"].is_null()))
}

/// The watcher of one answer.
pub struct Watch {
    started: Instant,
    streaming: bool,
    line: Vec<u8>,
    body: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    detector: Detector,
    pub seen: Seen,
    /// A streamed answer said it was complete (OpenAI's `[DONE]`, a finish reason,
    /// Anthropic's `message_stop`, llama.cpp's `"stop": true`).
    ended_whole: bool,
}

impl Watch {
    /// `streaming`: the answer is server-sent events (else a JSON body, read at the end).
    pub fn new(started: Instant, streaming: bool) -> Watch {
        Watch {
            started,
            streaming,
            line: Vec::new(),
            body: Vec::new(),
            tail: Default::default(),
            // Thinking is the model's business here: an owner's request may allow a lot.
            detector: Detector::new(0),
            seen: Seen::default(),
            ended_whole: false,
        }
    }

    /// The end of the raw stream so far, for an evidence file.
    pub fn tail(&self) -> String {
        let (a, b) = self.tail.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }

    /// Reads one frame of the answer; says so the first time the answer goes wrong.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<Degeneracy> {
        self.tail.extend(bytes);
        let over = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..over);
        if !self.streaming {
            if self.body.len() + bytes.len() <= JSON_LIMIT {
                self.body.extend_from_slice(bytes);
            }
            return None;
        }
        let mut verdict = None;
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let found = self.event_line(&line);
            if verdict.is_none() && self.seen.went_wrong.is_none() {
                verdict = found;
            }
        }
        if let Some(d) = &verdict {
            self.seen.went_wrong = Some(d.clone());
        }
        verdict
    }

    /// Whether a streamed answer said it was complete before it ended (a non-streamed
    /// one always counts as complete here: a cut JSON body does not parse).
    pub fn ended_whole(&self) -> bool {
        !self.streaming || self.ended_whole
    }

    /// The answer ended: reads a non-streamed body for its counts.
    pub fn finish(&mut self) {
        if self.streaming || self.body.is_empty() {
            return;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&self.body) {
            self.counts(&v);
            if self.seen.first_piece_ms.is_none() {
                self.seen.first_piece_ms = Some(self.elapsed_ms());
            }
        }
    }

    fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    fn event_line(&mut self, line: &[u8]) -> Option<Degeneracy> {
        let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
        let data = line.strip_prefix("data:")?.trim_start();
        if data == "[DONE]" {
            self.ended_whole = true;
            return None;
        }
        let v: Value = serde_json::from_str(data).ok()?;
        self.counts(&v);
        if says_complete(&v) {
            self.ended_whole = true;
        }
        let mut verdict = None;
        for (piece, thinking) in pieces(&v) {
            if piece.is_empty() {
                continue;
            }
            if self.seen.first_piece_ms.is_none() {
                self.seen.first_piece_ms = Some(self.elapsed_ms());
            }
            self.seen.pieces += 1;
            let found = if thinking {
                self.detector.push_thinking(piece)
            } else {
                self.detector.push(piece)
            };
            verdict = verdict.or(found);
        }
        verdict
    }

    /// Token counts wherever the answer gives them: llama.cpp's `timings`, OpenAI's
    /// `usage`, Anthropic's `usage` (on `message_start` and `message_delta`).
    fn counts(&mut self, v: &Value) {
        let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64);
        if let Some(t) = v.get("timings") {
            self.seen.prompt_tokens = n(t, "prompt_n").unwrap_or(self.seen.prompt_tokens);
            self.seen.completion_tokens =
                n(t, "predicted_n").unwrap_or(self.seen.completion_tokens);
        }
        let usage = v
            .get("usage")
            .or_else(|| v.get("message").and_then(|m| m.get("usage")));
        if let Some(u) = usage {
            if let Some(p) = n(u, "prompt_tokens").or_else(|| n(u, "input_tokens")) {
                self.seen.prompt_tokens = p;
            }
            if let Some(c) = n(u, "completion_tokens").or_else(|| n(u, "output_tokens")) {
                self.seen.completion_tokens = c;
            }
        }
    }
}

/// The text pieces in one event, and whether each is thinking.
fn pieces(v: &Value) -> Vec<(&str, bool)> {
    fn s(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str)
    }
    let mut out = Vec::new();
    if let Some(choice) = v.get("choices").and_then(|c| c.get(0)) {
        let delta = choice.get("delta");
        out.extend(s(delta.and_then(|d| d.get("content"))).map(|p| (p, false)));
        out.extend(s(delta.and_then(|d| d.get("reasoning_content"))).map(|p| (p, true)));
        out.extend(s(choice.get("text")).map(|p| (p, false)));
    } else if let Some(delta) = v.get("delta") {
        // Anthropic: content_block_delta.
        out.extend(s(delta.get("text")).map(|p| (p, false)));
        out.extend(s(delta.get("thinking")).map(|p| (p, true)));
    } else {
        // llama.cpp's own /completion.
        out.extend(s(v.get("content")).map(|p| (p, false)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(events: &[&str]) -> Vec<u8> {
        events
            .iter()
            .map(|e| format!("data: {e}\n\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn openai_chat_pieces_and_llama_timings_are_read_across_frame_boundaries() {
        let mut w = Watch::new(Instant::now(), true);
        let all = sse(&[
            r#"{"choices":[{"delta":{"role":"assistant"}}]}"#,
            r#"{"choices":[{"delta":{"content":"Hel"}}]}"#,
            r#"{"choices":[{"delta":{"content":"lo"}}]}"#,
            r#"{"choices":[{"delta":{}}],"timings":{"prompt_n":24,"predicted_n":2}}"#,
            "[DONE]",
        ]);
        // Frames split in the middle of a line, as TCP may.
        for chunk in all.chunks(7) {
            assert_eq!(w.feed(chunk), None);
        }
        w.finish();
        assert_eq!(w.seen.pieces, 2);
        assert_eq!((w.seen.prompt_tokens, w.seen.completion_tokens), (24, 2));
        assert!(w.seen.first_piece_ms.is_some());
    }

    #[test]
    fn anthropic_events_are_read() {
        let mut w = Watch::new(Instant::now(), true);
        let text = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":30,\"output_tokens\":0}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n";
        w.feed(text.as_bytes());
        assert_eq!(w.seen.pieces, 1);
        assert_eq!((w.seen.prompt_tokens, w.seen.completion_tokens), (30, 7));
    }

    #[test]
    fn a_stream_of_unused_tokens_goes_wrong_once() {
        let mut w = Watch::new(Instant::now(), true);
        let piece = sse(&[r#"{"choices":[{"index":0,"delta":{"content":"<unused50>"}}]}"#]);
        let verdicts: Vec<_> = (0..40).filter_map(|_| w.feed(&piece)).collect();
        assert_eq!(verdicts.len(), 1, "{verdicts:?}");
        assert_eq!(verdicts[0].kind, "special_tokens");
        assert!(w.tail().contains("<unused50>"));
        assert!(w.tail().len() <= TAIL_BYTES);
    }

    #[test]
    fn a_plain_answer_gives_its_counts_at_the_end() {
        let mut w = Watch::new(Instant::now(), false);
        let body = br#"{"choices":[{"message":{"content":"Hi"}}],"usage":{"prompt_tokens":9,"completion_tokens":3}}"#;
        for c in body.chunks(10) {
            assert_eq!(w.feed(c), None);
        }
        w.finish();
        assert_eq!((w.seen.prompt_tokens, w.seen.completion_tokens), (9, 3));
    }
}
