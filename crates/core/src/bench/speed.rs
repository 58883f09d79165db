//! The speed benchmark, shaped like llama-bench's pp512/tg128: a prompt of exactly N
//! tokens, then M generated tokens (end-of-text ignored), streamed. Prompt and
//! generation speed come from the server's own `timings`; Kindling's wall clock gives
//! time to first token and cross-checks them.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::limit::SpeedLimit;
use super::stats::Stat;
use crate::server::ServerError;

/// What to measure.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SpeedOptions {
    pub prompt_tokens: u32,
    pub gen_tokens: u32,
    /// Repetitions always measured.
    pub repetitions: u32,
    /// While the generation figures disagree by more than [`NOISY_SPREAD_PCT`], more
    /// repetitions are measured, up to this many in all.
    #[serde(default)]
    pub max_repetitions: u32,
    pub warmup: bool,
}

/// Repetitions that disagree by more than this (in percent of their median) are too
/// noisy to compare one run with another.
pub const NOISY_SPREAD_PCT: f64 = 10.0;

/// Whether repeated figures disagree too much to compare: the spread of all of them, or
/// from five on, of all but the fastest and the slowest (one outlier does not make a
/// whole run noisy).
pub fn too_noisy(values: &[f64]) -> bool {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    if v.len() >= 5 {
        v = v[1..v.len() - 1].to_vec();
    }
    Stat::of(&v).is_some_and(|s| s.spread_pct > NOISY_SPREAD_PCT)
}

impl SpeedOptions {
    /// Whether another repetition is needed after `gen` (the generation speeds so far).
    pub fn wants_more(&self, gen: &[f64]) -> bool {
        let n = gen.len() as u32;
        n < self.repetitions.max(1)
            || (n < self.max_repetitions.max(self.repetitions) && too_noisy(gen))
    }
}

impl Default for SpeedOptions {
    fn default() -> Self {
        SpeedOptions {
            prompt_tokens: 512,
            gen_tokens: 128,
            repetitions: 3,
            max_repetitions: 8,
            warmup: true,
        }
    }
}

/// One streamed request's figures.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SpeedSample {
    pub prompt_n: u32,
    pub predicted_n: u32,
    /// The server's own figures.
    pub prompt_per_second: f64,
    pub predicted_per_second: f64,
    pub prompt_ms: f64,
    pub predicted_ms: f64,
    /// Kindling's wall clock: request sent → first token received.
    pub ttft_ms: f64,
    /// Request sent → last byte received.
    pub wall_ms: f64,
    /// Tokens after the first ÷ time between first and last token, as received.
    pub wall_gen_per_second: Option<f64>,
}

/// The report of a speed run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SpeedSummary {
    pub options: SpeedOptions,
    pub prompt_per_second: Stat,
    pub gen_per_second: Stat,
    pub gen_per_second_wall: Option<Stat>,
    pub ttft_ms: Stat,
    pub load_ms: f64,
    pub readiness_latency_ms: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    /// Bytes read per generated token (the model's tensor data, for a dense model).
    pub model_bytes_per_token: u64,
    /// What bounds generation here: where the weights were and their memory's speed.
    #[serde(default)]
    pub limit: Option<SpeedLimit>,
    /// Measured generation speed ÷ that limit.
    pub fraction_of_limit: Option<f64>,
    /// The bandwidth the run achieved: generation speed × bytes per token.
    #[serde(default)]
    pub effective_bandwidth_bytes_per_second: Option<f64>,
    /// The repetitions disagreed by more than [`NOISY_SPREAD_PCT`] even after more were
    /// measured: too noisy to compare with another run.
    #[serde(default)]
    pub too_noisy: bool,
    /// Kindling's wall-clock generation speed ÷ the server's (harness overhead; ~1.0).
    pub wall_to_server_ratio: Option<f64>,
    /// Cores other programs kept busy while the speed was measured, when that made the
    /// machine busy even after waiting (see [`super::quiet`]): the figures are shown,
    /// never used to calibrate predictions.
    #[serde(default)]
    pub measured_busy: Option<f64>,
}

/// How far the wall clock may disagree with the server's own timings before the
/// run is flagged: wall time may exceed prompt+generation time by this fraction plus
/// a fixed allowance for HTTP and scheduling.
pub const WALL_TOLERANCE: f64 = 0.15;
pub const WALL_ALLOWANCE_MS: f64 = 150.0;

impl SpeedSample {
    /// Whether wall-clock and server timings agree (within [`WALL_TOLERANCE`]).
    pub fn timings_agree(&self) -> bool {
        let server = self.prompt_ms + self.predicted_ms;
        self.wall_ms + 1.0 >= server
            && self.wall_ms <= server * (1.0 + WALL_TOLERANCE) + WALL_ALLOWANCE_MS
    }
}

/// Builds the report from the samples and the run's other figures. Pure.
pub fn summarize(
    options: SpeedOptions,
    samples: &[SpeedSample],
    load_ms: f64,
    readiness_latency_ms: Option<f64>,
    peak_rss_bytes: Option<u64>,
    model_bytes_per_token: u64,
    limit: Option<SpeedLimit>,
) -> Option<SpeedSummary> {
    let col = |f: fn(&SpeedSample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
    let gen = Stat::of(&col(|s| s.predicted_per_second))?;
    let wall: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.wall_gen_per_second)
        .collect();
    let gen_wall = Stat::of(&wall);
    let fraction = limit
        .as_ref()
        .and_then(|l| l.limit_per_second)
        .filter(|l| *l > 0.0)
        .map(|l| gen.median / l);
    Some(SpeedSummary {
        options,
        prompt_per_second: Stat::of(&col(|s| s.prompt_per_second))?,
        ttft_ms: Stat::of(&col(|s| s.ttft_ms))?,
        load_ms,
        readiness_latency_ms,
        peak_rss_bytes,
        model_bytes_per_token,
        limit,
        fraction_of_limit: fraction,
        effective_bandwidth_bytes_per_second: (model_bytes_per_token > 0)
            .then_some(gen.median * model_bytes_per_token as f64),
        too_noisy: too_noisy(&col(|s| s.predicted_per_second)),
        wall_to_server_ratio: gen_wall.map(|w| w.median / gen.median),
        measured_busy: None,
        gen_per_second: gen,
        gen_per_second_wall: gen_wall,
    })
}

/// Turns `n` tokens of deterministic English filler into a prompt of exactly `n`
/// tokens, using the server's own tokenizer (so every model gets the same shape).
pub async fn prompt_tokens(
    http: &reqwest::Client,
    base: &str,
    n: u32,
) -> Result<Vec<Value>, ServerError> {
    const FILLER: &str = "The old lighthouse keeper climbed the spiral stairs each evening, counting the steps, \
        checking the lamp, and writing the weather in a worn notebook: wind from the west, a calm sea, \
        three fishing boats returning before dark. ";
    let mut text = String::new();
    // A few characters per token at most; grow until the tokenizer yields enough.
    let mut tokens: Vec<Value> = Vec::new();
    for _ in 0..8 {
        while text.len() < (n as usize) * 6 {
            text.push_str(FILLER);
        }
        tokens = tokenize(http, base, &text, false).await?;
        if tokens.len() >= n as usize {
            tokens.truncate(n as usize);
            return Ok(tokens);
        }
        text.push_str(&text.clone());
    }
    Err(bad(
        "the tokenizer request",
        &format!("only {} tokens from the filler text", tokens.len()),
    ))
}

/// How many tokens `text` is for the server's model.
pub async fn count_tokens(
    http: &reqwest::Client,
    base: &str,
    text: &str,
) -> Result<u64, ServerError> {
    Ok(tokenize(http, base, text, true).await?.len() as u64)
}

/// The server's tokens for `text` (`/tokenize`).
async fn tokenize(
    http: &reqwest::Client,
    base: &str,
    text: &str,
    add_special: bool,
) -> Result<Vec<Value>, ServerError> {
    let body = json!({"content": text, "add_special": add_special});
    let resp = post_json(
        http,
        &format!("{base}/tokenize"),
        &body,
        "the tokenizer request",
    )
    .await?;
    resp.get("tokens")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| bad("the tokenizer request", "no `tokens` in the answer"))
}

fn bad(what: &str, detail: &str) -> ServerError {
    ServerError::BadResponse {
        what: what.into(),
        detail: detail.into(),
    }
}

async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    what: &str,
) -> Result<Value, ServerError> {
    let resp = http
        .post(url)
        .json(body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| ServerError::Request {
            what: what.into(),
            detail: e.to_string(),
        })?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| ServerError::Request {
        what: what.into(),
        detail: e.to_string(),
    })?;
    if !status.is_success() {
        return Err(bad(
            what,
            &format!(
                "HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            ),
        ));
    }
    serde_json::from_str(&text).map_err(|e| bad(what, &e.to_string()))
}

/// One line of a server-sent-events stream, decoded.
#[derive(Debug, PartialEq)]
pub enum SseLine {
    Data(Value),
    Done,
    Other,
}

/// Decodes one line of llama-server's stream: `data: {json}`, `data: [DONE]`, or
/// anything else (comments, blank keep-alives). Garbage after `data:` is an error.
pub fn parse_sse_line(line: &str) -> Result<SseLine, String> {
    let line = line.trim_end_matches('\r');
    let Some(payload) = line.strip_prefix("data:") else {
        return Ok(SseLine::Other);
    };
    let payload = payload.trim();
    if payload == "[DONE]" {
        return Ok(SseLine::Done);
    }
    serde_json::from_str(payload)
        .map(SseLine::Data)
        .map_err(|e| format!("{e} in {:?}", payload.chars().take(80).collect::<String>()))
}

/// Sends one streamed completion and measures it.
pub async fn measure_once(
    http: &reqwest::Client,
    base: &str,
    prompt: &[Value],
    gen_tokens: u32,
    timeout: Duration,
) -> Result<SpeedSample, ServerError> {
    const WHAT: &str = "the benchmark request";
    let body = json!({
        "prompt": prompt,
        "n_predict": gen_tokens,
        "ignore_eos": true,
        "cache_prompt": false,
        "stream": true,
        "temperature": 0.0,
        "top_k": 1,
    });
    let started = Instant::now();
    let resp = http
        .post(format!("{base}/completion"))
        .json(&body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| ServerError::Request {
            what: WHAT.into(),
            detail: e.to_string(),
        })?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(bad(
            WHAT,
            &format!(
                "HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            ),
        ));
    }
    let mut stream = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut first_token: Option<Instant> = None;
    let mut last_token: Option<Instant> = None;
    let mut token_chunks: u32 = 0;
    let mut timings: Option<Value> = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ServerError::Request {
            what: WHAT.into(),
            detail: e.to_string(),
        })?;
        let now = Instant::now();
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            match parse_sse_line(line.trim_end_matches('\n')).map_err(|e| bad(WHAT, &e))? {
                SseLine::Data(v) => {
                    if v.get("stop").and_then(Value::as_bool) == Some(true) {
                        timings = v.get("timings").cloned();
                    } else {
                        token_chunks += 1;
                        first_token.get_or_insert(now);
                        last_token = Some(now);
                    }
                }
                SseLine::Done => {}
                SseLine::Other => {}
            }
        }
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    let t = timings.ok_or_else(|| bad(WHAT, "the stream ended without timings"))?;
    let num = |k: &str| {
        t.get(k)
            .and_then(Value::as_f64)
            .ok_or_else(|| bad(WHAT, &format!("no `{k}` in timings")))
    };
    let first = first_token.ok_or_else(|| bad(WHAT, "no token was streamed"))?;
    let wall_gen = match (last_token, token_chunks) {
        (Some(last), n) if n > 1 && last > first => {
            Some(f64::from(n - 1) / (last - first).as_secs_f64())
        }
        _ => None,
    };
    Ok(SpeedSample {
        prompt_n: num("prompt_n")? as u32,
        predicted_n: num("predicted_n")? as u32,
        prompt_per_second: num("prompt_per_second")?,
        predicted_per_second: num("predicted_per_second")?,
        prompt_ms: num("prompt_ms")?,
        predicted_ms: num("predicted_ms")?,
        ttft_ms: (first - started).as_secs_f64() * 1e3,
        wall_ms,
        wall_gen_per_second: wall_gen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pp: f64, tg: f64) -> SpeedSample {
        SpeedSample {
            prompt_n: 512,
            predicted_n: 128,
            prompt_per_second: pp,
            predicted_per_second: tg,
            prompt_ms: 512.0 / pp * 1e3,
            predicted_ms: 128.0 / tg * 1e3,
            ttft_ms: 512.0 / pp * 1e3 + 40.0,
            wall_ms: 512.0 / pp * 1e3 + 128.0 / tg * 1e3 + 20.0,
            wall_gen_per_second: Some(tg * 0.99),
        }
    }

    #[test]
    fn summary_compares_with_the_bandwidth_limit() {
        let s = summarize(
            SpeedOptions::default(),
            &[
                sample(200.0, 30.0),
                sample(210.0, 31.0),
                sample(190.0, 29.0),
            ],
            1500.0,
            Some(3.0),
            Some(400 << 20),
            250_000_000,
            Some(SpeedLimit {
                placement: crate::recommend::fit::Placement::Cpu,
                memory: "main memory (measured)".into(),
                bandwidth_bytes_per_second: Some(10e9),
                limit_per_second: Some(40.0),
            }),
        )
        .unwrap();
        assert_eq!(s.gen_per_second.median, 30.0);
        assert_eq!(s.prompt_per_second.median, 200.0);
        assert_eq!(s.fraction_of_limit, Some(0.75));
        assert_eq!(s.effective_bandwidth_bytes_per_second, Some(7.5e9));
        assert!(!s.too_noisy);
        assert!((s.wall_to_server_ratio.unwrap() - 0.99).abs() < 1e-9);
    }

    #[test]
    fn no_samples_no_summary() {
        assert!(summarize(SpeedOptions::default(), &[], 0.0, None, None, 1, None).is_none());
    }

    #[test]
    fn unknown_bandwidth_gives_no_limit() {
        let s = summarize(
            SpeedOptions::default(),
            &[sample(1.0, 1.0)],
            0.0,
            None,
            None,
            100,
            None,
        )
        .unwrap();
        assert_eq!(s.fraction_of_limit, None);
        assert_eq!(s.effective_bandwidth_bytes_per_second, Some(100.0));
    }

    #[test]
    fn noisy_repetitions_ask_for_more_up_to_the_cap() {
        let o = SpeedOptions::default();
        assert!(o.wants_more(&[30.0, 30.5]), "fewer than the minimum");
        assert!(
            !o.wants_more(&[30.0, 30.5, 31.0]),
            "steady: three are enough"
        );
        // The GPU run of the issue: 308–409 tok/s over three repetitions.
        let wide = [308.0, 409.0, 392.0];
        assert!(too_noisy(&wide));
        assert!(o.wants_more(&wide));
        let capped: Vec<f64> = [308.0, 409.0].repeat(4);
        assert!(!o.wants_more(&capped), "eight is the cap");
        // One outlier among steady figures does not make a run noisy.
        assert!(!too_noisy(&[392.0, 390.0, 308.0, 391.0, 395.0]));
        let fixed = SpeedOptions {
            repetitions: 1,
            max_repetitions: 1,
            ..o
        };
        assert!(!fixed.wants_more(&[1.0]));
    }

    #[test]
    fn wall_clock_agreement() {
        assert!(sample(200.0, 30.0).timings_agree());
        let mut slow = sample(200.0, 30.0);
        slow.wall_ms *= 2.0;
        assert!(!slow.timings_agree());
        let mut impossible = sample(200.0, 30.0);
        impossible.wall_ms = 10.0;
        assert!(!impossible.timings_agree());
    }

    #[test]
    fn sse_lines() {
        assert_eq!(
            parse_sse_line("data: {\"a\":1}").unwrap(),
            SseLine::Data(json!({"a":1}))
        );
        assert_eq!(parse_sse_line("data: [DONE]").unwrap(), SseLine::Done);
        assert_eq!(parse_sse_line("").unwrap(), SseLine::Other);
        assert_eq!(parse_sse_line(": keep-alive").unwrap(), SseLine::Other);
        assert!(parse_sse_line("data: {not json").is_err());
    }
}
