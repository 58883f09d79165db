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
use crate::recommend::fit::{ram_reserve, MachineProfile, VRAM_RESERVE};

/// Round trips per helper per generated token. Not settled: `make bench-split` (the
/// sample over an emulated 1 Gbit/s link, 0 → 5 ms round trip) gave 1.5 in one run and
/// 3.6 in another on this 2-core machine, where both "Macs" share the cores.
pub const ROUND_TRIPS_PER_TOKEN: f64 = 1.5;
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

impl Room {
    /// This room at `efficiency` of its memory's speed: what a model reaches of the
    /// bandwidth limit there (measured by that Mac's runs, else the default). The plan's
    /// predictions are then speeds a benchmark would measure, not limits.
    pub fn at_efficiency(mut self, efficiency: f64) -> Room {
        self.bandwidth = Some(self.bandwidth.unwrap_or(UNKNOWN_BANDWIDTH) * efficiency);
        self
    }
}

/// Where a share runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Place {
    /// This Mac's processor (which also keeps the embeddings and the output).
    Processor,
    /// This Mac's GPU (llama.cpp's id, e.g. `Vulkan0`).
    Gpu { id: String },
    /// A paired Mac (the n-th helper asked).
    Helper { index: usize },
}

/// One Mac's share of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Share {
    pub who: String,
    pub place: Place,
    pub layers: u32,
    /// Memory it takes there at most: weights, the context's cache for its layers,
    /// compute, and on a helper the largest tensor received while loading.
    pub bytes: u64,
    /// It holds the output head too (it is listed last to llama-server).
    pub carries_output: bool,
}

/// The plan for a model over several Macs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Plan {
    /// It fits where it runs fast on this Mac (its GPU, or its memory when it has no
    /// GPU): nothing is split.
    Alone { bytes: u64, room: u64 },
    /// Spread over the Macs: this Mac's processor first (it keeps the embeddings and
    /// output), then its GPU, then each helper in the order asked.
    Split {
        shares: Vec<Share>,
        /// Predicted generation speed, tokens/s.
        predicted_tok_s: f64,
        /// What this Mac alone would do if it could hold it (for comparison).
        alone_tok_s: f64,
    },
    /// Even together they cannot hold it (or this Mac may give less than the part it
    /// must hold itself, `keep_here`: the token embeddings).
    TooBig {
        need: u64,
        room: u64,
        #[serde(default)]
        keep_here: Option<u64>,
    },
}

/// Why a model cannot be served over these Macs, and what to do: `need` against `room`,
/// or (`keep_here`: what this Mac must hold itself, what it may give) this Mac's part.
pub fn too_big_sentence(need: u64, room: u64, keep_here: Option<(u64, u64)>) -> String {
    use crate::units::format_bytes;
    match keep_here {
        Some((keep, give)) => format!(
            "This Mac must hold the model's token embeddings itself ({}), and it may give only {}: let it give more of its memory (or leave the limit empty), or pick a smaller model.",
            format_bytes(keep),
            format_bytes(give)
        ),
        None => format!(
            "Even together these Macs have {} for this model, and it needs {}. Pick a smaller quant, or let the helpers lend more memory.",
            format_bytes(room),
            format_bytes(need)
        ),
    }
}

/// The paired Mac to route a model to instead of splitting it: route first, split only
/// when nothing else fits. When the model does not fit where this Mac runs it fast (the
/// plan is not [`Plan::Alone`]) and a paired Mac's front door already serves it (by its
/// id, as apps name it), requests go there whole; else a paired Mac that has it and
/// serves nothing is asked to start it (`true`: it must be started). `offers` are the
/// helpers', in the order asked. Pure.
pub fn route_first(plan: &Plan, model_id: &str, offers: &[&super::Offer]) -> Option<(usize, bool)> {
    if matches!(plan, Plan::Alone { .. }) {
        return None;
    }
    let names = |ids: &[String]| ids.iter().any(|id| id.eq_ignore_ascii_case(model_id));
    let serving = offers.iter().position(|o| names(&o.serves));
    let can = || offers.iter().position(|o| names(&o.can_serve));
    serving
        .map(|i| (i, false))
        .or_else(|| can().map(|i| (i, true)))
}

/// A model's shape as the split sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub layers: u32,
    /// Weights of one repeating layer.
    pub layer_bytes: u64,
    /// Weights that stay on the serving Mac's processor (the token embeddings, norms).
    pub rest_bytes: u64,
    /// The output head: it goes with the last offloaded layers (llama.cpp offloads it
    /// first), so the device listed last carries it; read whole for every token.
    pub output_bytes: u64,
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
        let separate_output = if info.output_separate {
            info.output_bytes
        } else {
            0
        };
        Shape {
            layers,
            layer_bytes: layer_total / u64::from(layers),
            rest_bytes: info
                .tensor_bytes
                .saturating_sub(layer_total)
                .saturating_sub(separate_output),
            output_bytes: info.output_bytes,
            kv_layer_bytes: shape.kv_bytes_per_token * ctx / u64::from(layers),
            activation_bytes: info.embedding_length.unwrap_or(4096) * 4,
        }
    }

    /// Approximate shape of a catalog model not on disk: the catalog's layer count and
    /// cache size (see `ModelShape::from_catalog`), and an output head (tied to the
    /// embeddings, as in most families here) of 5% of the file, what Gemma 4 31B's is.
    pub fn from_catalog(
        f: &crate::catalog::Family,
        v: &crate::catalog::Variant,
        ctx: u64,
    ) -> Shape {
        let m = crate::recommend::fit::ModelShape::from_catalog(f, v);
        let layers = m.layers.max(1);
        let head = m.file_bytes / 20;
        Shape {
            layers,
            layer_bytes: m.file_bytes.saturating_sub(head) / u64::from(layers),
            rest_bytes: head,
            output_bytes: head,
            kv_layer_bytes: m.kv_bytes_per_token * ctx.min(m.max_context) / u64::from(layers),
            activation_bytes: 4 * 4096,
        }
    }

    fn per_layer(&self) -> u64 {
        self.layer_bytes + self.kv_layer_bytes
    }

    /// Memory a device needs for `layers` layers, plus the token embeddings (`rest`, on
    /// this Mac's processor) and the output head (`output`, on the device listed last).
    pub fn need(&self, layers: u32, rest: bool, output: bool) -> u64 {
        let held = u64::from(layers) * self.per_layer()
            + if rest { self.rest_bytes } else { 0 }
            + if output { self.output_bytes } else { 0 };
        held + COMPUTE_FLOOR + (held as f64 * COMPUTE_SHARE) as u64
    }

    /// The most layers `room` bytes hold (with the rest and the output as said).
    pub fn layers_in(&self, room: u64, rest: bool, output: bool) -> u32 {
        if self.need(0, rest, output) > room {
            return 0;
        }
        let mut n = 0;
        while n < self.layers && self.need(n + 1, rest, output) <= room {
            n += 1;
        }
        n
    }
}

pub const UNKNOWN_BANDWIDTH: f64 = 20e9;

/// This Mac's GPU as a place for layers: llama.cpp's id for it, and its room.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuRoom {
    pub id: String,
    pub room: Room,
}

/// The room a Mac gives a model of `shape` it serves: main memory (`limit` when the
/// owner set one, else all but what the system and other apps keep) and its GPU's. On a
/// Mac whose GPU shares main memory, the layers go to the GPU and the processor keeps only
/// the token embeddings. `device`: llama.cpp's id for its GPU, when the runtime listed one.
pub fn rooms_of(
    machine: &MachineProfile,
    device: Option<&str>,
    limit: Option<u64>,
    shape: &Shape,
) -> (Room, Option<GpuRoom>) {
    let ram = machine.ram_bytes;
    let budget = limit.unwrap_or_else(|| ram.saturating_sub(ram_reserve(ram)));
    let cpu_bw = machine.cpu_bandwidth;
    let room = |memory_bytes, bandwidth| Room {
        who: "This Mac".into(),
        memory_bytes,
        bandwidth,
        rtt_s: None,
        link_bytes_per_s: None,
    };
    match &machine.gpu {
        // Apple Silicon: Metal's device, listed or not.
        Some(g) if g.unified => {
            let rest = shape.need(0, true, false);
            let gpu = GpuRoom {
                id: device.unwrap_or("MTL0").to_string(),
                room: room(budget.saturating_sub(rest), g.bandwidth.or(cpu_bw)),
            };
            (room(rest.min(budget), cpu_bw), Some(gpu))
        }
        Some(g) if device.is_some() => {
            let vram = g.vram_bytes.saturating_sub(VRAM_RESERVE);
            let gpu = GpuRoom {
                id: device.unwrap_or_default().to_string(),
                room: room(limit.map_or(vram, |l| l.min(vram)), g.bandwidth),
            };
            (room(budget, cpu_bw), Some(gpu))
        }
        _ => (room(budget, cpu_bw), None),
    }
}

/// What a helper lends under a cap of `cap` bytes: its GPU when allowed (no more than
/// a discrete GPU holds), else its processor; with that memory's speed.
pub fn lent(
    machine: &MachineProfile,
    cap: u64,
    use_gpu: bool,
) -> (Option<String>, Option<f64>, u64) {
    let cpu_bw = machine.cpu_bandwidth;
    match machine.gpu.as_ref().filter(|_| use_gpu) {
        Some(g) if g.unified => (Some(g.name.clone()), g.bandwidth.or(cpu_bw), cap),
        Some(g) => (
            Some(g.name.clone()),
            g.bandwidth.or(cpu_bw),
            cap.min(g.vram_bytes.saturating_sub(VRAM_RESERVE)),
        ),
        None => (None, cpu_bw, cap),
    }
}

/// Rooms whose memory is at least this share of the fastest one's speed are filled
/// together, in proportion to their room; slower ones only take what is left.
const SAME_SPEED: f64 = 0.75;

/// The plan for `shape` with this Mac's processor `here`, its GPU `gpu`, and the
/// helpers' `helpers`.
///
/// Layers go to the fastest memory first. Rooms of about the same speed share in
/// proportion to their room, so none runs at its limit and losing one often leaves room
/// on the others; the processor of this Mac takes what is left.
pub fn plan(shape: &Shape, here: &Room, gpu: Option<&GpuRoom>, helpers: &[Room]) -> Plan {
    let all_layers = shape.layers;
    let mut rooms: Vec<(&Room, Place)> = vec![(here, Place::Processor)];
    if let Some(g) = gpu {
        rooms.push((&g.room, Place::Gpu { id: g.id.clone() }));
    }
    rooms.extend(
        helpers
            .iter()
            .enumerate()
            .map(|(index, h)| (h, Place::Helper { index })),
    );
    let holds_rest = shape.need(0, true, false) <= here.memory_bytes;
    // It fits where it runs fast here: every layer and the output on the GPU when there
    // is one, else in main memory.
    let fast = usize::from(gpu.is_some());
    let alone_room = rooms[fast].0.memory_bytes;
    if holds_rest && shape.layers_in(alone_room, fast == 0, true) >= all_layers {
        return Plan::Alone {
            bytes: shape.need(all_layers, fast == 0, true),
            room: alone_room,
        };
    }
    // The device listed last carries the output head: this Mac's GPU, else the helper
    // with the most room.
    let carrier = if gpu.is_some() {
        1
    } else {
        (1..rooms.len())
            .max_by_key(|&k| rooms[k].0.memory_bytes)
            .unwrap_or(0)
    };
    // A helper receives each tensor whole before it stores it: while loading, it holds
    // its largest one twice (the sample's output head made a 276 MB share peak at
    // 417 MB). Its room is counted without that.
    let peak = |k: usize| match rooms[k].1 {
        Place::Helper { .. } if k == carrier => shape.output_bytes,
        Place::Helper { .. } => shape.layer_bytes,
        _ => 0,
    };
    let can: Vec<u32> = rooms
        .iter()
        .enumerate()
        .map(|(k, (r, _))| match k {
            0 if !holds_rest => 0,
            _ => shape.layers_in(r.memory_bytes.saturating_sub(peak(k)), k == 0, k == carrier),
        })
        .collect();
    let room = rooms.iter().map(|(r, _)| r.memory_bytes).sum::<u64>();
    if !holds_rest || carrier == 0 || can[carrier] == 0 || can.iter().sum::<u32>() < all_layers {
        return Plan::TooBig {
            need: shape.need(all_layers, true, true) + COMPUTE_FLOOR * (rooms.len() as u64 - 1),
            room,
            keep_here: (!holds_rest).then(|| shape.need(0, true, false)),
        };
    }
    let speed = |r: &Room| r.bandwidth.unwrap_or(UNKNOWN_BANDWIDTH);
    let mut order: Vec<usize> = (0..rooms.len()).collect();
    order.sort_by(|&a, &b| speed(rooms[b].0).total_cmp(&speed(rooms[a].0)));
    let mut layers = vec![0u32; rooms.len()];
    let mut left = all_layers;
    let mut i = 0;
    while left > 0 && i < order.len() {
        let lead = speed(rooms[order[i]].0);
        let class: Vec<usize> = order[i..]
            .iter()
            .copied()
            .take_while(|&k| speed(rooms[k].0) >= lead * SAME_SPEED)
            .collect();
        i += class.len();
        let caps: Vec<u32> = class.iter().map(|&k| can[k]).collect();
        let here_now = left.min(caps.iter().sum());
        for (&k, n) in class.iter().zip(proportional(here_now, &caps)) {
            layers[k] = n;
        }
        left -= here_now;
    }
    // The output goes with the last offloaded layers: its carrier needs at least one.
    if layers[carrier] == 0 {
        if let Some(most) = (0..rooms.len()).max_by_key(|&k| layers[k]) {
            layers[most] -= 1;
            layers[carrier] = 1;
        }
    }
    let shares: Vec<Share> = rooms
        .iter()
        .enumerate()
        .map(|(k, (r, place))| Share {
            who: match place {
                Place::Gpu { .. } => format!("{} (GPU)", r.who),
                _ => r.who.clone(),
            },
            place: place.clone(),
            layers: layers[k],
            bytes: shape.need(layers[k], k == 0, k == carrier) + peak(k),
            carries_output: k == carrier,
        })
        .collect();
    let all: Vec<&Room> = rooms.iter().map(|(r, _)| *r).collect();
    let remote: Vec<bool> = rooms
        .iter()
        .map(|(_, p)| matches!(p, Place::Helper { .. }))
        .collect();
    // Alone: as this Mac would run it if it could hold it (on its fastest memory).
    let mut alone = vec![0u32; rooms.len()];
    alone[fast] = all_layers;
    Plan::Split {
        predicted_tok_s: predict(shape, &all, &remote, &layers, carrier),
        alone_tok_s: predict(shape, &all, &remote, &alone, fast),
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
    let mut left = layers.saturating_sub(out.iter().sum::<u32>());
    while left > 0 {
        // The largest remainder among those with room left.
        let next = (0..can.len())
            .filter(|&i| out[i] < can[i])
            .max_by(|&a, &b| {
                (exact[a] - f64::from(out[a])).total_cmp(&(exact[b] - f64::from(out[b])))
            });
        let Some(i) = next else { break };
        out[i] += 1;
        left -= 1;
    }
    out
}

/// Tokens/s for `layers[i]` layers on `rooms[i]`, the output head on `rooms[carrier]`
/// (`remote[i]` rooms are across a link). The token embeddings are looked up, one row a
/// token, so they cost nothing here.
fn predict(shape: &Shape, rooms: &[&Room], remote: &[bool], layers: &[u32], carrier: usize) -> f64 {
    let bw = |r: &Room| r.bandwidth.unwrap_or(UNKNOWN_BANDWIDTH).max(1.0);
    let mut seconds = shape.output_bytes as f64 / bw(rooms[carrier]);
    for ((room, &far), &n) in rooms.iter().zip(remote).zip(layers) {
        seconds += f64::from(n) * shape.layer_bytes as f64 / bw(room);
        if far && n > 0 {
            let link = room
                .link_bytes_per_s
                .unwrap_or(DEFAULT_LINK_BYTES_PER_S)
                .max(1.0);
            seconds += ROUND_TRIPS_PER_TOKEN * room.rtt_s.unwrap_or(0.0)
                + 2.0 * shape.activation_bytes as f64 / link;
        }
    }
    1.0 / seconds
}

impl Plan {
    /// The layers on each helper (by the index asked) and on this Mac's GPU, for
    /// llama-server's split (`None` unless split).
    pub fn layers_by_place(&self) -> Option<Placed> {
        let Plan::Split { shares, .. } = self else {
            return None;
        };
        // In the order llama-server lists them: the carrier of the output last.
        let mut listed: Vec<(usize, u32, bool)> = shares
            .iter()
            .filter_map(|s| match s.place {
                Place::Helper { index } if s.layers > 0 => {
                    Some((index, s.layers, s.carries_output))
                }
                _ => None,
            })
            .collect();
        listed.sort_by_key(|&(_, _, carries)| carries);
        let helpers = listed.into_iter().map(|(i, n, _)| (i, n)).collect();
        let gpu = shares.iter().find_map(|s| match &s.place {
            Place::Gpu { id } => Some((id.clone(), s.layers)),
            _ => None,
        });
        Some(Placed { helpers, gpu })
    }
}

/// A split's layers by where llama-server puts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// (helper's index as asked, its layers), in the order llama-server is to list
    /// them: the helper carrying the output head last. Helpers without a share are left out.
    pub helpers: Vec<(usize, u32)>,
    /// This Mac's GPU (its id) and its layers.
    pub gpu: Option<(String, u32)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    fn offer(serves: &[&str], can_serve: &[&str]) -> crate::peers::Offer {
        crate::peers::Offer {
            memory_bytes: 0,
            ram_bytes: 0,
            gpu: None,
            bandwidth: None,
            summary: String::new(),
            runtime: String::new(),
            serves: serves.iter().map(|s| s.to_string()).collect(),
            can_serve: can_serve.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Route first: a model that fits here is served here even when a paired Mac
    /// serves it; one that does not goes to the Mac that serves it, by its id, whatever
    /// the case; else to a Mac that has it and serves nothing (started there first); with
    /// none, it is split (no route).
    #[test]
    fn a_model_that_does_not_fit_goes_whole_to_the_mac_that_serves_it() {
        let alone = Plan::Alone {
            bytes: 10 * MB,
            room: 20 * MB,
        };
        let split = Plan::TooBig {
            need: 30 * MB,
            room: 20 * MB,
            keep_here: None,
        };
        let beta = offer(&["llama-3.2-1b-q4_k_m"], &[]);
        let gamma = offer(&["gemma-3-270m-q4_k_m"], &[]);
        let delta = offer(&[], &["gemma-3-270m-q4_k_m", "qwen3-8b-q4_k_m"]);
        let offers = [&beta, &delta, &gamma];
        assert_eq!(route_first(&alone, "gemma-3-270m-q4_k_m", &offers), None);
        assert_eq!(
            route_first(&split, "Gemma-3-270M-Q4_K_M", &offers),
            Some((2, false)),
            "a Mac serving it beats one that would have to start it"
        );
        assert_eq!(
            route_first(&split, "qwen3-8b-q4_k_m", &offers),
            Some((1, true))
        );
        assert_eq!(route_first(&split, "mistral-7b", &offers), None);
        assert_eq!(route_first(&split, "gemma-3-270m-q4_k_m", &[]), None);
    }

    /// The sample model (gemma-3-270m Q4_K_M) at 4096 tokens of context, as its
    /// header gives it: 18 layers of 4.9 MB, 178 MB of embeddings (tied: the output head
    /// is the same 178 MB again), 4.2 MB of cache each.
    fn sample() -> Shape {
        Shape {
            layers: 18,
            layer_bytes: 4_896_768,
            rest_bytes: 178_260_480,
            output_bytes: 178_257_920,
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

    /// Together the Macs have room, but this one may give less than the part it must
    /// hold itself (the token embeddings): the plan says that, not "needs 589 MB; together
    /// these Macs have 1.1 GB" (as the app's first split said), which reads as a fit.
    #[test]
    fn a_mac_giving_less_than_its_own_part_is_told_that_part() {
        let p = plan(
            &sample(),
            &room("This Mac", 100, None),
            None,
            &[room("Attic Mac", 1000, Some(0.5))],
        );
        let Plan::TooBig {
            need,
            room,
            keep_here,
        } = p
        else {
            panic!("{p:?}")
        };
        assert!(need < room, "together they have room: {need} {room}");
        let keep = keep_here.expect("the part this Mac must hold");
        assert!(keep > 100 * MB && keep < 300 * MB, "{keep}");
        let said = too_big_sentence(need, room, keep_here.map(|k| (k, 100 * MB)));
        assert!(
            said.contains("This Mac must hold the model's token embeddings itself"),
            "{said}"
        );
        assert!(said.contains("it may give only 100 MB"), "{said}");
    }

    /// Predictions are what a run would measure: memory time at the share of the
    /// bandwidth each Mac reaches (its efficiency), the link's time as it is. The split
    /// bench measured 29.5 tok/s where the plan at the full bandwidth said 124.
    #[test]
    fn predictions_take_each_macs_efficiency_and_leave_the_link_alone() {
        let split = |eff: f64, rtt_ms: f64| {
            let p = plan(
                &sample(),
                &room("This Mac", 300, None).at_efficiency(eff),
                None,
                &[room("A", 1000, Some(rtt_ms)).at_efficiency(eff)],
            );
            let Plan::Split {
                predicted_tok_s, ..
            } = p
            else {
                panic!("{p:?}")
            };
            1.0 / predicted_tok_s
        };
        let (full, half) = (split(1.0, 0.0), split(0.5, 0.0));
        assert!((half / full - 2.0).abs() < 0.01, "{full} {half}");
        let link = split(1.0, 5.0) - full;
        assert!(link > 0.005, "{link}");
        let link_at_half = split(0.5, 5.0) - half;
        assert!((link_at_half - link).abs() < 1e-9, "{link} {link_at_half}");
    }

    #[test]
    fn a_model_that_fits_here_is_never_split() {
        let p = plan(
            &sample(),
            &room("This Mac", 8000, None),
            None,
            &[room("Studio", 8000, Some(1.0))],
        );
        assert!(matches!(p, Plan::Alone { .. }), "{p:?}");
        assert_eq!(p.layers_by_place(), None);
    }

    #[test]
    fn a_split_gives_layers_in_proportion_to_room_within_each_limit() {
        let s = sample();
        let p = plan(
            &s,
            &room("This Mac", 260, None),
            None,
            &[room("A", 120, Some(0.5)), room("B", 600, Some(0.5))],
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
        assert!(
            shares[2].carries_output,
            "the roomiest helper carries the output: {shares:?}"
        );
        for (share, limit) in shares.iter().zip([260, 120, 600]) {
            assert!(share.bytes <= limit * MB, "{share:?} over {limit} MB");
            assert!(share.layers > 0, "{share:?}");
        }
        assert!(
            predicted_tok_s < alone_tok_s,
            "{predicted_tok_s} vs {alone_tok_s}"
        );
        let placed = p.layers_by_place().unwrap();
        assert_eq!(
            placed.helpers,
            vec![(0, shares[1].layers), (1, shares[2].layers)]
        );
        assert_eq!(placed.gpu, None);
    }

    #[test]
    fn too_little_room_together_is_said_with_both_figures() {
        let p = plan(
            &sample(),
            &room("This Mac", 230, None),
            None,
            &[room("A", 40, Some(0.5))],
        );
        let Plan::TooBig { need, room, .. } = p else {
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
            None,
            &[room("A", 600, Some(rtt))],
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

    /// The field report's pair: the iMac (4 GB Radeon at 224 GB/s, 32 GB of memory at
    /// 20 GB/s) and a 24 GB Apple Silicon Mac lending 16 GB at 100 GB/s, with a model of
    /// 60 layers of 280 MB (Gemma 4 31B Q4, 17.5 GB with its embeddings).
    #[test]
    fn the_fastest_memory_fills_first_and_the_imacs_processor_takes_what_is_left() {
        let shape = Shape {
            layers: 60,
            layer_bytes: 280_000_000,
            rest_bytes: 700_000_000,
            output_bytes: 700_000_000,
            kv_layer_bytes: 8_000_000,
            activation_bytes: 5376 * 4,
        };
        let room_at = |who: &str, gb: u64, bw: f64, rtt: Option<f64>| Room {
            who: who.into(),
            memory_bytes: gb * 1000 * MB,
            bandwidth: Some(bw * 1e9),
            rtt_s: rtt,
            link_bytes_per_s: None,
        };
        let here = room_at("iMac", 24, 20.0, None);
        let gpu = GpuRoom {
            id: "Vulkan0".into(),
            room: room_at("iMac", 3, 224.0, None),
        };
        let mac = room_at("MacBook", 16, 100.0, Some(0.002));
        let p = plan(&shape, &here, Some(&gpu), std::slice::from_ref(&mac));
        let Plan::Split {
            shares,
            predicted_tok_s,
            alone_tok_s,
        } = &p
        else {
            panic!("{p:?}")
        };
        let by = |place: &Place| shares.iter().find(|s| &s.place == place).unwrap().layers;
        let (gpu_n, mac_n, cpu_n) = (
            by(&Place::Gpu {
                id: "Vulkan0".into(),
            }),
            by(&Place::Helper { index: 0 }),
            by(&Place::Processor),
        );
        assert_eq!(gpu_n + mac_n + cpu_n, 60, "{shares:?}");
        assert_eq!(
            gpu_n,
            shape.layers_in(3000 * MB, false, true),
            "the Radeon is filled first: {shares:?}"
        );
        assert_eq!(
            mac_n,
            shape
                .layers_in(16000 * MB - shape.layer_bytes, false, false)
                .min(60 - gpu_n),
            "{shares:?}"
        );
        assert!(
            cpu_n < 10,
            "the iMac's processor takes only the rest: {shares:?}"
        );
        // Faster than the iMac's 1.15 tok/s on its own, as the field report measured.
        assert!(*predicted_tok_s > 2.0, "{predicted_tok_s}");
        assert!(*alone_tok_s > *predicted_tok_s, "{alone_tok_s}");
        assert_eq!(
            p.layers_by_place().unwrap(),
            Placed {
                helpers: vec![(0, mac_n)],
                gpu: Some(("Vulkan0".into(), gpu_n))
            }
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
