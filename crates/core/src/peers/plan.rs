//! Which Mac holds which share of a model, and the speed to expect.
//!
//! A model that fits the serving Mac is never split. One that does not is spread by
//! its repeating layers: the embeddings and the output head stay where the model is
//! served (the file stays there too: helpers receive their tensors over the link), and
//! each Mac takes layers in proportion to the room it offers, so none runs at its limit
//! and losing one often leaves room on the others.
//!
//! Speed: each generated token reads every weight once, on the Mac that holds it, one
//! Mac after the other; each helper adds a few round trips over the link. So the time
//! per token is the sum of each share's bytes over its memory's speed, plus
//! [`ROUND_TRIPS_PER_TOKEN`] round trips and the activations' transfer per helper.

use serde::{Deserialize, Serialize};

use crate::gguf::GgufInfo;

/// Round trips per helper per generated token: llama.cpp's RPC client sets the input,
/// runs the graph and reads the result back (measured on loopback with the sample model,
/// see the closing note of issue 23).
pub const ROUND_TRIPS_PER_TOKEN: f64 = 3.0;
/// Memory a device keeps beside its weights for compute buffers: this much, plus
/// [`COMPUTE_SHARE`] of what it holds.
pub const COMPUTE_FLOOR: u64 = 32_000_000;
pub const COMPUTE_SHARE: f64 = 0.05;
/// Link speed assumed when none was measured: 1 Gbit/s Ethernet.
pub const DEFAULT_LINK_BYTES_PER_S: f64 = 125_000_000.0;

/// What one Mac can give to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Room {
    /// "This Mac", or the paired Mac's name.
    pub who: String,
    /// The most memory the model may take there.
    pub memory_bytes: u64,
    /// Its memory's speed, bytes/s (`None`: unknown, taken as 20 GB/s).
    pub bandwidth: Option<f64>,
    /// The link to it: one round trip, seconds (`None` for this Mac).
    pub rtt_s: Option<f64>,
    /// The link's speed, bytes/s (`None`: [`DEFAULT_LINK_BYTES_PER_S`]).
    pub link_bytes_per_s: Option<f64>,
}

/// One Mac's share of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Share {
    pub who: String,
    pub layers: u32,
    /// Memory it takes there: weights, the context's cache for its layers, compute.
    pub bytes: u64,
}

/// The plan for a model over several Macs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Plan {
    /// It fits this Mac: nothing is split.
    Alone { bytes: u64, room: u64 },
    /// Spread over the Macs: this Mac first, then each helper in the order given.
    Split {
        shares: Vec<Share>,
        /// Predicted generation speed, tokens/s.
        predicted_tok_s: f64,
        /// What this Mac alone would do if it could hold it (for comparison).
        alone_tok_s: f64,
    },
    /// Even together they cannot hold it.
    TooBig { need: u64, room: u64 },
}

/// A model's shape as the split sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub layers: u32,
    /// Weights of one repeating layer.
    pub layer_bytes: u64,
    /// Weights that stay on the serving Mac (embeddings, output head).
    pub rest_bytes: u64,
    /// Context cache of one layer for the planned context.
    pub kv_layer_bytes: u64,
    /// What one token hands from one Mac to the next (f32 activations).
    pub activation_bytes: u64,
}

impl Shape {
    pub fn from_gguf(info: &GgufInfo, ctx: u64) -> Shape {
        let layers = info.block_count.unwrap_or(1).max(1) as u32;
        let shape = crate::recommend::fit::ModelShape::from_gguf(info);
        let layer_total = if info.layer_bytes > 0 {
            info.layer_bytes
        } else {
            info.tensor_bytes
        };
        Shape {
            layers,
            layer_bytes: layer_total / u64::from(layers),
            rest_bytes: info.tensor_bytes.saturating_sub(layer_total),
            kv_layer_bytes: shape.kv_bytes_per_token * ctx / u64::from(layers),
            activation_bytes: info.embedding_length.unwrap_or(4096) * 4,
        }
    }

    fn per_layer(&self) -> u64 {
        self.layer_bytes + self.kv_layer_bytes
    }

    /// Memory a device needs for `layers` layers (plus the rest, on this Mac).
    fn need(&self, layers: u32, with_rest: bool) -> u64 {
        let held =
            u64::from(layers) * self.per_layer() + if with_rest { self.rest_bytes } else { 0 };
        held + COMPUTE_FLOOR + (held as f64 * COMPUTE_SHARE) as u64
    }

    /// The most layers `room` bytes hold.
    fn layers_in(&self, room: u64, with_rest: bool) -> u32 {
        let mut n = 0;
        while n < self.layers && self.need(n + 1, with_rest) <= room {
            n += 1;
        }
        n
    }
}

const UNKNOWN_BANDWIDTH: f64 = 20e9;

/// The plan for `shape` with this Mac's `here` and the helpers' `helpers`.
pub fn plan(shape: &Shape, here: &Room, helpers: &[Room]) -> Plan {
    let whole = shape.need(shape.layers, true);
    if whole <= here.memory_bytes {
        return Plan::Alone {
            bytes: whole,
            room: here.memory_bytes,
        };
    }
    // What each can hold; this Mac must at least hold the rest.
    let here_layers = if shape.need(0, true) <= here.memory_bytes {
        shape.layers_in(here.memory_bytes, true)
    } else {
        0
    };
    let can: Vec<u32> = std::iter::once(here_layers)
        .chain(
            helpers
                .iter()
                .map(|h| shape.layers_in(h.memory_bytes, false)),
        )
        .collect();
    let total: u32 = can.iter().sum();
    let room = here.memory_bytes + helpers.iter().map(|h| h.memory_bytes).sum::<u64>();
    if shape.need(0, true) > here.memory_bytes || total < shape.layers {
        return Plan::TooBig {
            need: whole + COMPUTE_FLOOR * helpers.len() as u64,
            room,
        };
    }
    let layers = proportional(shape.layers, &can);
    let rooms: Vec<&Room> = std::iter::once(here).chain(helpers).collect();
    let shares: Vec<Share> = rooms
        .iter()
        .zip(&layers)
        .enumerate()
        .map(|(i, (r, &n))| Share {
            who: r.who.clone(),
            layers: n,
            bytes: shape.need(n, i == 0),
        })
        .collect();
    Plan::Split {
        predicted_tok_s: predict(shape, &rooms, &layers),
        alone_tok_s: predict(shape, &[here], &[shape.layers]),
        shares,
    }
}

/// `layers` over devices that can hold `can` each, in proportion to `can`, each within
/// its own limit (largest remainders first).
fn proportional(layers: u32, can: &[u32]) -> Vec<u32> {
    let total: u32 = can.iter().sum();
    let exact: Vec<f64> = can
        .iter()
        .map(|&c| f64::from(layers) * f64::from(c) / f64::from(total.max(1)))
        .collect();
    let mut out: Vec<u32> = exact.iter().map(|e| e.floor() as u32).collect();
    let mut order: Vec<usize> = (0..can.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let mut left = layers - out.iter().sum::<u32>();
    while left > 0 {
        let Some(&i) = order.iter().find(|&&i| out[i] < can[i]) else {
            break;
        };
        out[i] += 1;
        left -= 1;
        order.retain(|&j| j != i);
        if order.is_empty() {
            order = (0..can.len()).collect();
        }
    }
    out
}

/// Tokens/s for `layers[i]` layers on `rooms[i]` (the first is this Mac, with the rest).
fn predict(shape: &Shape, rooms: &[&Room], layers: &[u32]) -> f64 {
    let mut seconds = 0.0;
    for (i, (room, &n)) in rooms.iter().zip(layers).enumerate() {
        let bw = room.bandwidth.unwrap_or(UNKNOWN_BANDWIDTH).max(1.0);
        let mut bytes = f64::from(n) * shape.layer_bytes as f64;
        if i == 0 {
            bytes += shape.rest_bytes as f64;
        }
        seconds += bytes / bw;
        if i > 0 && n > 0 {
            let link = room
                .link_bytes_per_s
                .unwrap_or(DEFAULT_LINK_BYTES_PER_S)
                .max(1.0);
            seconds += ROUND_TRIPS_PER_TOKEN * room.rtt_s.unwrap_or(0.0)
                + 2.0 * shape.activation_bytes as f64 / link;
        }
    }
    if seconds > 0.0 {
        1.0 / seconds
    } else {
        0.0
    }
}

impl Plan {
    /// The llama-server arguments that place the helpers' shares on their RPC devices
    /// (`RPC0`… in the order of `--rpc`), the rest staying on this Mac's processor.
    pub fn device_args(&self) -> Option<(Vec<String>, String, u32)> {
        let Plan::Split { shares, .. } = self else {
            return None;
        };
        let remote = &shares[1..];
        let devices = (0..remote.len()).map(|i| format!("RPC{i}")).collect();
        let split = remote
            .iter()
            .map(|s| s.layers.to_string())
            .collect::<Vec<_>>()
            .join(",");
        Some((devices, split, remote.iter().map(|s| s.layers).sum()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    /// The sample model (gemma-3-270m Q4_K_M) at 4096 tokens of context, as its
    /// header gives it: 18 layers of 4.9 MB, 178 MB of embeddings, 4.2 MB of cache each.
    fn sample() -> Shape {
        Shape {
            layers: 18,
            layer_bytes: 4_896_768,
            rest_bytes: 178_260_480,
            kv_layer_bytes: 4_194_304,
            activation_bytes: 640 * 4,
        }
    }

    fn room(who: &str, mb: u64, rtt_ms: Option<f64>) -> Room {
        Room {
            who: who.into(),
            memory_bytes: mb * MB,
            bandwidth: Some(10e9),
            rtt_s: rtt_ms.map(|ms| ms / 1000.0),
            link_bytes_per_s: None,
        }
    }

    #[test]
    fn a_model_that_fits_here_is_never_split() {
        let p = plan(
            &sample(),
            &room("This Mac", 8000, None),
            &[room("Studio", 8000, Some(1.0))],
        );
        assert!(matches!(p, Plan::Alone { .. }), "{p:?}");
        assert_eq!(p.device_args(), None);
    }

    #[test]
    fn a_split_gives_layers_in_proportion_to_room_within_each_limit() {
        let s = sample();
        let p = plan(
            &s,
            &room("This Mac", 260, None),
            &[room("A", 120, Some(0.5)), room("B", 120, Some(0.5))],
        );
        let Plan::Split {
            shares,
            predicted_tok_s,
            alone_tok_s,
        } = &p
        else {
            panic!("{p:?}")
        };
        assert_eq!(
            shares.iter().map(|s| s.layers).sum::<u32>(),
            18,
            "{shares:?}"
        );
        for (share, limit) in shares.iter().zip([260, 120, 120]) {
            assert!(share.bytes <= limit * MB, "{share:?} over {limit} MB");
            assert!(share.layers > 0, "{share:?}");
        }
        assert!(
            predicted_tok_s < alone_tok_s,
            "{predicted_tok_s} vs {alone_tok_s}"
        );
        let (devices, split, ngl) = p.device_args().unwrap();
        assert_eq!(devices, ["RPC0", "RPC1"]);
        assert_eq!(ngl, shares[1].layers + shares[2].layers);
        assert_eq!(split, format!("{},{}", shares[1].layers, shares[2].layers));
    }

    #[test]
    fn too_little_room_together_is_said_with_both_figures() {
        let p = plan(
            &sample(),
            &room("This Mac", 230, None),
            &[room("A", 40, Some(0.5))],
        );
        let Plan::TooBig { need, room } = p else {
            panic!("{p:?}")
        };
        assert!(need > room, "{need} {room}");
    }

    #[test]
    fn latency_costs_each_helper_round_trips_per_token() {
        let s = sample();
        let speed = |rtt| match plan(
            &s,
            &room("This Mac", 260, None),
            &[room("A", 200, Some(rtt))],
        ) {
            Plan::Split {
                predicted_tok_s, ..
            } => predicted_tok_s,
            p => panic!("{p:?}"),
        };
        let (at0, at5) = (speed(0.0), speed(5.0));
        let added = 1.0 / at5 - 1.0 / at0;
        assert!(
            (added - ROUND_TRIPS_PER_TOKEN * 0.005).abs() < 1e-6,
            "{added}"
        );
    }

    #[test]
    fn proportional_shares_respect_limits_and_add_up() {
        assert_eq!(proportional(18, &[6, 13, 13]).iter().sum::<u32>(), 18);
        assert_eq!(proportional(10, &[10, 1]), vec![9, 1]);
        let p = proportional(5, &[1, 1, 10]);
        assert_eq!(p.iter().sum::<u32>(), 5);
        assert!(p[0] <= 1 && p[1] <= 1, "{p:?}");
    }
}
