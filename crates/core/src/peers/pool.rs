//! Serving one model with the help of paired Macs: the plan, then the pooled server.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::plan::{self, GpuRoom, Plan, Room, Shape};
use super::relay::{self, Caller, Reached, Relay};
use super::share::{Lender, ShareOptions};
use super::{Book, Identity, Offer, PeerError};
use crate::server::{self, Server};
use crate::units::format_bytes;
use crate::{gguf, store, Core, Result};

/// A plan for a model, with the Macs it was made with.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub plan: Plan,
    /// This Mac's room, as planned with.
    pub here: Room,
    /// This Mac's GPU, as planned with.
    pub gpu: Option<GpuRoom>,
    /// Each helper reached, in the order asked.
    pub helpers: Vec<Room>,
    /// The helper that already serves the model, when it does not fit where this Mac
    /// runs it fast: requests are routed there instead (see [`plan::route_first`]).
    pub route: Option<usize>,
    /// The Mac routed to has the model on its disk and serves nothing yet: it is asked to
    /// start it first.
    pub route_starts: bool,
    /// The model's id, as apps name it.
    pub model_id: String,
    #[serde(skip)]
    pub reached: Vec<Reached>,
    #[serde(skip)]
    pub shape: Shape,
}

/// A model served with helpers: the server and one relay per helper with a share.
pub struct Pooled {
    pub server: Server,
    pub registered: store::RegisteredModel,
    pub planned: Planned,
    pub relays: Vec<Relay>,
}

impl Planned {
    /// The room a share of the plan was planned in.
    pub fn room(&self, place: &plan::Place) -> Option<&Room> {
        match place {
            plan::Place::Processor => Some(&self.here),
            plan::Place::Gpu { .. } => self.gpu.as_ref().map(|g| &g.room),
            plan::Place::Helper { index } => self.helpers.get(*index),
        }
    }
}

impl Planned {
    /// The helper requests are routed to, when the plan routes.
    pub fn routed(&self) -> Option<&Reached> {
        self.route.and_then(|i| self.reached.get(i))
    }

    /// What this Mac must hold itself and what it may give, when that is why the model
    /// does not fit (`keep` from [`Plan::TooBig`]).
    fn keep_here(&self, keep: Option<u64>) -> Option<(u64, u64)> {
        keep.map(|k| (k, self.here.memory_bytes))
    }

    /// The plan in the owner's words, a line each (the CLI prints them, the app shows
    /// them): routed, alone, too big, or each Mac's share and the speed to expect.
    pub fn lines(&self, model_name: &str) -> Vec<String> {
        if let (Some(r), true) = (self.routed(), self.route_starts) {
            return vec![format!(
                "{model_name} does not fit where this Mac runs it fast; {} has it and serves nothing now: it is asked to start it, and this Mac's apps are sent there ({:.1} ms away). Nothing is split, nothing copied.",
                r.peer.name,
                r.rtt.as_secs_f64() * 1000.0
            )];
        }
        if let Some(r) = self.routed() {
            return vec![format!(
                "{model_name} does not fit where this Mac runs it fast, and {} serves it already: this Mac's apps are sent there ({:.1} ms away). Nothing is split, nothing copied.",
                r.peer.name,
                r.rtt.as_secs_f64() * 1000.0
            )];
        }
        match &self.plan {
            Plan::Alone { bytes, room } => vec![format!(
                "{model_name} fits this Mac ({} of the {} it may use): it is not split.",
                format_bytes(*bytes),
                format_bytes(*room)
            )],
            Plan::TooBig {
                need,
                room,
                keep_here,
            } => vec![
                format!(
                    "{model_name} needs {}; together these Macs have {} for it.",
                    format_bytes(*need),
                    format_bytes(*room)
                ),
                plan::too_big_sentence(*need, *room, self.keep_here(*keep_here)),
            ],
            Plan::Split {
                shares,
                predicted_tok_s,
                alone_tok_s,
            } => {
                let layers: u32 = shares.iter().map(|s| s.layers).sum();
                let mut lines = vec![format!(
                    "Plan for {model_name}, split by its {layers} layers:"
                )];
                let width = shares
                    .iter()
                    .map(|s| s.who.chars().count())
                    .max()
                    .unwrap_or(0);
                for share in shares
                    .iter()
                    .filter(|s| s.layers > 0 || s.place == plan::Place::Processor)
                {
                    let what = match share.place {
                        plan::Place::Processor => {
                            format!("{} layers, embeddings and output", share.layers)
                        }
                        _ => format!("{} layers", share.layers),
                    };
                    let room = self.room(&share.place);
                    let link = room
                        .and_then(|r| r.rtt_s)
                        .map(|r| format!(", {:.1} ms away", r * 1000.0))
                        .unwrap_or_default();
                    lines.push(format!(
                        "  {:<width$}  {what}: {} of the {} it allows{link}",
                        share.who,
                        format_bytes(share.bytes),
                        format_bytes(room.map_or(0, |r| r.memory_bytes))
                    ));
                }
                lines.push(format!(
                    "Predicted speed: {predicted_tok_s:.1} tokens/s (this Mac alone would do {alone_tok_s:.1} if it could hold it)."
                ));
                lines
            }
        }
    }
}

/// Waits until one of `relays` loses its Mac; says which and how (never, with none).
pub async fn first_lost(relays: &[Relay]) -> PeerError {
    if relays.is_empty() {
        return std::future::pending().await;
    }
    let waits = relays.iter().map(|r| Box::pin(r.lost()));
    futures_util::future::select_all(waits).await.0
}

/// The Mac one of `relays` lost already, if any: after the server died, the reason.
pub fn lost_now(relays: &[Relay]) -> Option<PeerError> {
    relays.iter().find_map(|r| {
        r.lost_now().map(|how| PeerError::Lost {
            name: r.peer.clone(),
            how,
        })
    })
}

/// The Macs asked for (`with`, names or their beginnings) without `lost`, the Mac that
/// stopped answering.
pub fn without(with: &[String], lost: &str) -> Vec<String> {
    let lost = lost.to_lowercase();
    with.iter()
        .filter(|w| !lost.starts_with(&w.to_lowercase()))
        .cloned()
        .collect()
}

impl Pooled {
    /// Waits until a helper is lost; says which and how.
    pub async fn lost(&self) -> PeerError {
        first_lost(&self.relays).await
    }

    /// Stops the server, then the relays.
    pub async fn stop(&self) {
        self.server.stop().await;
        for r in &self.relays {
            r.stop();
        }
    }
}

/// How the links are watched (the tests shorten both).
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    pub heartbeat: Duration,
    pub dead_after: Duration,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            heartbeat: super::share::HEARTBEAT,
            dead_after: super::share::DEAD_AFTER,
        }
    }
}

impl Planned {
    /// The speed the plan predicts, when split (tokens/s).
    pub fn predicted_tok_s(&self) -> Option<f64> {
        match self.plan {
            Plan::Split {
                predicted_tok_s, ..
            } => Some(predicted_tok_s),
            _ => None,
        }
    }
}

/// Tokens a measurement of a served model generates (after a short one to warm it).
const MEASURE_TOKENS: u32 = 64;

impl Core {
    /// The generation speed `server` reaches now, in tokens/s by its own timing: one
    /// short answer to warm it, then one of 64 tokens (a few seconds). What the owner
    /// sees beside the plan's prediction.
    pub async fn measure_served(&self, server: &Server) -> Result<f64> {
        use crate::bench::speed;
        use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
        // A server behind the front door answers only the door's key.
        let mut headers = HeaderMap::new();
        if let Some(behind) = &server.config().behind {
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", behind.key)) {
                headers.insert(AUTHORIZATION, v);
            }
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .default_headers(headers)
            .build()
            .expect("a plain HTTP client always builds");
        let base = server.base_url();
        let timeout = Duration::from_secs(300);
        let prompt = speed::prompt_tokens(&http, &base, 32).await?;
        speed::measure_once(&http, &base, &prompt, 8, timeout).await?;
        let s = speed::measure_once(&http, &base, &prompt, MEASURE_TOKENS, timeout).await?;
        Ok(s.predicted_per_second)
    }

    /// This Mac's key for its paired Macs (made the first time).
    pub fn identity(&self) -> Result<Identity> {
        Ok(Identity::load_or_create(&self.paths().peer_key()).map_err(PeerError::from)?)
    }

    /// The Macs this one paired with.
    pub fn book(&self) -> Book {
        Book::at(self.paths().peers())
    }

    /// The llama.cpp build of this Mac's runtime, when it says.
    pub fn runtime_build(&self) -> Option<u32> {
        self.locate_runtime()
            .ok()
            .and_then(|r| crate::runtime::read_manifest(&r.path))
            .map(|m| m.llama_cpp_build)
    }

    /// This Mac as it dials its helpers.
    pub fn caller(&self, name: &str) -> Result<Caller> {
        Ok(Caller {
            identity: Arc::new(self.identity()?),
            name: name.to_string(),
            build: self.runtime_build(),
            book: self.book(),
        })
    }

    /// This Mac as a helper: what it lends, under the owner's limits.
    pub async fn lender(&self, name: &str, opts: &ShareOptions) -> Result<Lender> {
        let detection = self.detect().await;
        let runtime = self.locate_runtime()?;
        let hw = &detection.hardware;
        let cpu_bw = self.kept_bandwidth(hw).await.ok();
        let (machine, _, _) = crate::recommend::machine::profile(hw, cpu_bw);
        let (gpu, bandwidth, memory_bytes) = plan::lent(&machine, opts.memory_bytes, opts.use_gpu);
        // Offered as the speed a model reaches here (this Mac's runs say how close).
        let efficiency = self.efficiency_here().await;
        let bandwidth = Some(bandwidth.unwrap_or(plan::UNKNOWN_BANDWIDTH) * efficiency);
        let runtime_line = detection
            .runtime_info
            .as_ref()
            .map(|i| i.describe())
            .unwrap_or_else(|| "unknown".into());
        Ok(Lender {
            name: name.to_string(),
            build: self.runtime_build(),
            offer: Offer {
                memory_bytes,
                ram_bytes: hw.ram_total_bytes,
                gpu,
                bandwidth,
                summary: hw.summary(),
                runtime: runtime_line,
                serves: Vec::new(),
                can_serve: Vec::new(),
            },
            runtime,
        })
    }

    /// The models on this Mac's disk that fit where it runs them fast, alone: what it
    /// would start for a paired Mac that asks ([`super::on_ask`]).
    pub async fn models_that_fit_here(&self) -> Vec<super::on_ask::CanServe> {
        let ctx = u64::from(self.settings().ctx_size);
        let mut can = Vec::new();
        for m in self.servable_models().await.unwrap_or_default() {
            let Ok(info) = gguf::inspect(&m.path) else {
                continue;
            };
            let shape = Shape::from_gguf(&info, ctx);
            let (here, gpu) = self.rooms_here(None, &shape).await;
            if matches!(
                plan::plan(&shape, &here, gpu.as_ref(), &[]),
                Plan::Alone { .. }
            ) {
                can.push(super::on_ask::CanServe {
                    id: crate::front::model_id(&m.path),
                    path: m.path,
                });
            }
        }
        can
    }

    /// What this Mac may give a model of `shape`: main memory (`limit` when the owner
    /// set one, else all but what the system and other apps keep) and its GPU's. On a
    /// Mac whose GPU shares main memory, the layers go to the GPU and the processor keeps
    /// only the embeddings and output.
    async fn rooms_here(&self, limit: Option<u64>, shape: &Shape) -> (Room, Option<GpuRoom>) {
        let detection = self.detect().await;
        let hw = &detection.hardware;
        let cpu_bw = self.kept_bandwidth(hw).await.ok();
        let (machine, _, _) = crate::recommend::machine::profile(hw, cpu_bw);
        let device = hw.vulkan_devices.first().map(|d| d.id.as_str());
        let (here, gpu) = plan::rooms_of(&machine, device, limit, shape);
        let efficiency = self.efficiency_here().await;
        (
            here.at_efficiency(efficiency),
            gpu.map(|g| GpuRoom {
                room: g.room.at_efficiency(efficiency),
                ..g
            }),
        )
    }

    /// The plan for `model` with the paired Macs `with` (names), this Mac giving at most
    /// `here_limit` bytes. Each helper is reached first (what it offers, how far it is).
    pub async fn plan_with(
        &self,
        model: &Path,
        with: &[String],
        here_limit: Option<u64>,
        me: &Caller,
    ) -> Result<Planned> {
        let info = gguf::inspect(model)?;
        let shape = Shape::from_gguf(&info, u64::from(self.settings().ctx_size));
        let book = self.book();
        let mut reached = Vec::new();
        for name in with {
            let peer = book.find(name).map_err(PeerError::from)?;
            reached.push(relay::reach(&peer, me).await?);
        }
        let (here, gpu) = self.rooms_here(here_limit, &shape).await;
        let helpers: Vec<Room> = reached
            .iter()
            .map(|r| Room {
                who: r.peer.name.clone(),
                memory_bytes: r.offer.memory_bytes,
                bandwidth: r.offer.bandwidth,
                rtt_s: Some(r.rtt.as_secs_f64()),
                link_bytes_per_s: None,
            })
            .collect();
        let plan = plan::plan(&shape, &here, gpu.as_ref(), &helpers);
        let model_id = crate::front::model_id(model);
        let offers: Vec<&Offer> = reached.iter().map(|r| &r.offer).collect();
        let (route, route_starts) = match plan::route_first(&plan, &model_id, &offers) {
            Some((index, starts)) => (Some(index), starts),
            None => (None, false),
        };
        Ok(Planned {
            plan,
            route,
            route_starts,
            model_id,
            here,
            gpu,
            helpers,
            reached,
            shape,
        })
    }

    /// Routes the owner's apps to the paired Mac that serves `model` (`planned.route`;
    /// asked to start it first when it has it and serves nothing): this Mac's front door
    /// on `port` (on the network too when the owner allows it, with the owner's key)
    /// carries each request through a loopback relay and a tunnel, whole, to that Mac's
    /// front door; no server starts here. `None` when the plan routes nowhere.
    pub async fn route(
        &self,
        model: &Path,
        planned: &Planned,
        port: u16,
        me: &Caller,
        watch: Watch,
    ) -> Result<Option<Relay>> {
        let Some(reached) = planned.routed() else {
            return Ok(None);
        };
        if planned.route_starts {
            relay::ask_to_serve(&reached.peer, me, &planned.model_id).await?;
        }
        let relay = Relay::start_on(
            0,
            super::Want::Route,
            reached.peer.clone(),
            me.clone(),
            watch.heartbeat,
            watch.dead_after,
        )
        .await?;
        let backend = std::net::SocketAddr::from(([127, 0, 0, 1], relay.port));
        let key = reached.door_key.clone().unwrap_or_default();
        relay.keep_door(self.open_routed_door(model, port, backend, &reached.peer.name, key)?);
        Ok(Some(relay))
    }

    /// Serves `model` as `planned`: alone when it fits here, else split with the helpers
    /// that hold a share. Refused when even together they cannot hold it.
    pub async fn serve_pooled(
        &self,
        model: &Path,
        port: Option<u16>,
        planned: Planned,
        me: &Caller,
        watch: Watch,
        cancel: &CancellationToken,
    ) -> Result<Pooled> {
        let plan::Placed {
            helpers: layers,
            gpu: local_gpu,
        } = match &planned.plan {
            Plan::TooBig {
                need,
                room,
                keep_here,
            } => {
                return Err(PeerError::TooBig {
                    need: *need,
                    room: *room,
                    keep_here: planned.keep_here(*keep_here),
                }
                .into())
            }
            Plan::Alone { .. } => {
                let (server, registered) = self.start_serving(model, port, cancel).await?;
                return Ok(Pooled {
                    server,
                    registered,
                    planned,
                    relays: Vec::new(),
                });
            }
            split => split
                .layers_by_place()
                .expect("a split has layers by place"),
        };
        let mut relays = Vec::new();
        let mut split = server::Split {
            rpc: Vec::new(),
            layers: Vec::new(),
            local_gpu,
        };
        for (index, n) in layers {
            let reached = &planned.reached[index];
            let relay = Relay::start(
                reached.peer.clone(),
                me.clone(),
                watch.heartbeat,
                watch.dead_after,
            )
            .await?;
            split.rpc.push(format!("127.0.0.1:{}", relay.port));
            split.layers.push(n);
            relays.push(relay);
        }
        let started = self
            .serve_as(
                model,
                port,
                None,
                server::Purpose::Serving,
                Some(split),
                cancel,
            )
            .await;
        match started {
            Ok((server, registered)) => Ok(Pooled {
                server,
                registered,
                planned,
                relays,
            }),
            Err(e) => {
                // A helper lost while loading explains the failure better than the crash.
                let lost = lost_now(&relays);
                for r in &relays {
                    r.stop();
                }
                Err(lost.map_or(e, Into::into))
            }
        }
    }
}
