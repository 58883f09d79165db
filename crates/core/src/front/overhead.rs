//! What the front door costs: one served model, the same streamed answer asked of
//! llama-server straight and through the door, in turns, timed by the caller as an app
//! would see it (time to the first piece, pieces per second after it).

use std::time::Instant;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::{Cancel, Core, Error, Result};

/// One streamed answer, as the caller saw it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub first_piece_ms: f64,
    /// Pieces (tokens) per second after the first.
    pub tokens_per_second: f64,
    pub pieces: usize,
}

/// Both ways, side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Overhead {
    pub model: String,
    pub straight: Vec<Sample>,
    pub through: Vec<Sample>,
}

impl Overhead {
    /// The door's median added time to first piece, ms.
    pub fn added_first_piece_ms(&self) -> f64 {
        median(self.through.iter().map(|s| s.first_piece_ms))
            - median(self.straight.iter().map(|s| s.first_piece_ms))
    }
    /// Median generation speed through the door over straight.
    pub fn speed_ratio(&self) -> f64 {
        median(self.through.iter().map(|s| s.tokens_per_second))
            / median(self.straight.iter().map(|s| s.tokens_per_second))
    }
}

pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Serves `model` and asks it `rounds` times each way (after one unmeasured answer each
/// way), `tokens` tokens per answer, straight and through the door in turns.
pub async fn measure(
    core: &Core,
    model: &std::path::Path,
    rounds: usize,
    tokens: u32,
    cancel: &Cancel,
) -> Result<Overhead> {
    let (server, registered) = core.start_serving(model, None, cancel).await?;
    let key = server
        .config()
        .behind
        .as_ref()
        .map(|b| b.key.clone())
        .unwrap_or_default();
    let straight_url = format!("{}/v1/chat/completions", server.base_url());
    let door_url = format!("http://127.0.0.1:{}/v1/chat/completions", server.port());
    let http = crate::server::http_client();
    let mut out = Overhead {
        model: registered
            .info
            .name
            .clone()
            .unwrap_or_else(|| super::model_id(&registered.path)),
        straight: Vec::new(),
        through: Vec::new(),
    };
    let result = async {
        for round in 0..=rounds {
            for door in [false, true] {
                if cancel.is_cancelled() {
                    return Err(Error::Cancelled);
                }
                let url = if door { &door_url } else { &straight_url };
                let s = ask(&http, url, &key, tokens).await?;
                if round > 0 {
                    if door {
                        &mut out.through
                    } else {
                        &mut out.straight
                    }
                    .push(s);
                }
            }
        }
        Ok(())
    }
    .await;
    server.stop().await;
    result.map(|()| out)
}

async fn ask(http: &reqwest::Client, url: &str, key: &str, tokens: u32) -> Result<Sample> {
    let bad = |detail: String| {
        Error::Server(crate::server::ServerError::Request {
            what: "a streamed answer".into(),
            detail,
        })
    };
    let started = Instant::now();
    let body = json!({
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        "max_tokens": tokens, "stream": true, "temperature": 0, "ignore_eos": true,
    });
    let r = http
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .map_err(|e| bad(e.to_string()))?;
    if !r.status().is_success() {
        return Err(bad(format!("status {}", r.status())));
    }
    let mut stream = r.bytes_stream();
    let (mut first, mut last, mut pieces) = (None, started, 0usize);
    let mut line = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bad(e.to_string()))?;
        for &b in chunk.iter() {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            if line.starts_with(b"data: {") && line.windows(11).any(|w| w == b"\"content\":\"") {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                pieces += 1;
            }
            line.clear();
        }
    }
    let first = first.ok_or_else(|| bad("no pieces".into()))?;
    let span = (last - first).as_secs_f64();
    Ok(Sample {
        first_piece_ms: (first - started).as_secs_f64() * 1000.0,
        tokens_per_second: if span > 0.0 {
            (pieces - 1) as f64 / span
        } else {
            0.0
        },
        pieces,
    })
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert!(median(std::iter::empty()).is_nan());
    }
}
