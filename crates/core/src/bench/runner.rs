//! Runs a speed benchmark end to end: detect, probe bandwidth, check the model, start
//! the server, warm up, measure N times, stop, and store everything. The run row is
//! created before any work and always finishes `completed`, `failed` or `interrupted`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::speed::{self, SpeedOptions, SpeedSample, SpeedSummary};
use crate::events::{BenchPhase, Event};
use crate::hardware::{self, BandwidthReport, HardwareProfile};
use crate::history::{self, Measurement, NewRun, RunStatus};
use crate::server::{Server, ServerError};
use crate::{Core, Error, Result};

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct SpeedRequest {
    pub model: PathBuf,
    pub options: SpeedOptions,
    /// A fixed port; a free one when `None`.
    pub port: Option<u16>,
    /// Measure memory bandwidth first (about a second).
    pub probe_bandwidth: bool,
}

/// The result of a finished speed run.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SpeedReport {
    pub run_id: i64,
    pub hardware: HardwareProfile,
    pub bandwidth: Option<BandwidthReport>,
    pub runtime_version: String,
    pub model_path: PathBuf,
    pub model_name: Option<String>,
    pub quant: Option<String>,
    pub model_bytes: u64,
    pub summary: SpeedSummary,
    pub samples: Vec<SpeedSample>,
    /// Whether every sample's wall clock agreed with the server's timings.
    pub timings_agree: bool,
}

const TTFT: &str = "ttft_ms";
/// The measurements one speed repetition stores (set aside together when taken busy).
const SPEED_MEASUREMENTS: [&str; 4] = ["prompt_per_second", "gen_per_second", TTFT, "wall_ms"];
/// How often, and how long at most, a busy machine is watched for quiet before the
/// speed is measured again. A night has time; a click has a progress line saying why.
const QUIET_STEP: Duration = Duration::from_secs(2);
const QUIET_PATIENCE: Duration = Duration::from_secs(180);

impl Core {
    /// Benchmarks generation and prompt speed of `req.model` on this machine.
    pub async fn bench_speed(
        &self,
        req: SpeedRequest,
        cancel: &CancellationToken,
    ) -> Result<SpeedReport> {
        let (report, server) = self.bench_speed_keeping_server(req, cancel).await?;
        self.events().emit(Event::BenchProgress {
            run_id: report.run_id,
            tokens_per_second: None,
            phase: BenchPhase::Stopping,
            step: 1,
            total: 1,
            message: "Stopping the model server".into(),
        });
        server.stop().await;
        Ok(report)
    }

    /// [`Core::bench_speed`], handing back the still-running server so that what
    /// follows (the quality suite of "Benchmark my Mac") measures on the model already
    /// loaded instead of loading it a second time.
    pub async fn bench_speed_keeping_server(
        &self,
        req: SpeedRequest,
        cancel: &CancellationToken,
    ) -> Result<(SpeedReport, Server)> {
        let progress = |run_id: i64, phase: BenchPhase, step: u32, total: u32, message: String| {
            self.events().emit(Event::BenchProgress {
                run_id,
                tokens_per_second: None,
                phase,
                step,
                total,
                message,
            })
        };
        progress(
            0,
            BenchPhase::Hardware,
            1,
            1,
            "Looking at this machine".into(),
        );
        let runtime = self.locate_runtime()?;
        let info = runtime.info().await?;
        let registered = crate::store::register(self.db(), &req.model).await?;
        let hw = self.machine_now(&info).await;

        let bandwidth = if req.probe_bandwidth {
            progress(
                0,
                BenchPhase::Bandwidth,
                1,
                1,
                "Measuring memory speed (about a second)".into(),
            );
            let threads = hw.logical_cores;
            Some(
                tokio::task::spawn_blocking(move || {
                    hardware::probe_bandwidth(threads, Duration::from_secs(1))
                })
                .await
                .expect("the bandwidth probe does not panic"),
            )
        } else {
            None
        };
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }

        let port = crate::server::port_or_free(req.port)?;
        let (mut config, _) = self.launch_config(&registered, &hw, port);
        self.apply_gpu_check(&runtime, &info, &registered, &hw, &mut config, cancel)
            .await?;
        let args = config.to_args();
        let run_id = self
            .begin_run(RunStart {
                kind: super::RunKind::Speed,
                model_id: registered.id,
                runtime: &runtime,
                info: &info,
                hardware: &hw,
                bandwidth: bandwidth.map(|b| b.bytes_per_second),
                server_args: &args,
            })
            .await?;

        progress(
            run_id,
            BenchPhase::Starting,
            1,
            1,
            "Starting the model server".into(),
        );
        let started = self
            .supervise(&runtime, config, registered.info.file_size, cancel)
            .await;
        let server = match started {
            Ok(s) => s,
            Err(e) => {
                self.end_run(run_id, &e, None).await;
                return Err(e);
            }
        };

        let measured = self.measure(run_id, &server, &req.options, cancel).await;
        let peak_rss = server.peak_rss_bytes();
        let samples = match measured {
            Ok(s) => s,
            Err(e) => {
                let log_tail = server.log_tail();
                progress(
                    run_id,
                    BenchPhase::Stopping,
                    1,
                    1,
                    "Stopping the model server".into(),
                );
                server.stop().await;
                self.end_run(run_id, &e, Some(&log_tail)).await;
                return Err(e);
            }
        };

        let model_bytes = registered.info.file_size;
        let limit = self
            .run_limit(
                &hw,
                &registered.info,
                server.config(),
                bandwidth.map(|b| b.bytes_per_second),
            )
            .await;
        let summary = speed::summarize(
            req.options,
            &samples,
            server.timings.load_ms,
            server.timings.readiness_latency_ms,
            peak_rss,
            registered.info.tensor_bytes.max(1),
            Some(limit),
        )
        .ok_or_else(|| {
            Error::Server(ServerError::BadResponse {
                what: "the benchmark".into(),
                detail: "no measurement was taken".into(),
            })
        })?;
        let mut summary = summary;
        summary.measured_busy = self.db().measured_busy(run_id).await?;
        if summary.measured_busy.is_some() {
            summary.fraction_of_limit = None;
        }
        let mut extra = vec![Measurement {
            name: "load_ms".into(),
            repetition: None,
            value: summary.load_ms,
            unit: "ms".into(),
        }];
        if let Some(rss) = peak_rss {
            extra.push(Measurement {
                name: "peak_rss".into(),
                repetition: None,
                value: rss as f64,
                unit: "bytes".into(),
            });
        }
        if let Some(bw) = bandwidth {
            extra.push(Measurement {
                name: "bandwidth".into(),
                repetition: None,
                value: bw.bytes_per_second,
                unit: "bytes/s".into(),
            });
        }
        self.db().add_measurements(run_id, &extra).await?;
        self.db()
            .complete_run(run_id, &summary, &history::now())
            .await?;
        progress(run_id, BenchPhase::Done, 1, 1, "Done".into());
        let report = SpeedReport {
            run_id,
            hardware: hw,
            bandwidth,
            runtime_version: info.describe(),
            model_path: registered.path,
            model_name: registered.info.name.clone(),
            quant: registered.info.file_type.clone(),
            model_bytes,
            timings_agree: samples.iter().all(SpeedSample::timings_agree),
            summary,
            samples,
        };
        Ok((report, server))
    }

    /// Measures the speed of `server`'s model while watching what other programs do. It
    /// looks first, during the warm-up (our own server's work does not count): on a busy
    /// machine it waits for quiet before measuring, and keeps how long it waited
    /// (`waited_for_quiet`, seconds). Figures taken while others kept the machine busy,
    /// or repetitions that still disagree by more than [`speed::NOISY_SPREAD_PCT`], are
    /// set aside (`busy_…`) and the speed is measured again once the machine is quiet;
    /// the second figures are kept, and marked when it never quieted within
    /// [`QUIET_PATIENCE`].
    pub(crate) async fn measure(
        &self,
        run_id: i64,
        server: &Server,
        opts: &SpeedOptions,
        cancel: &CancellationToken,
    ) -> Result<Vec<SpeedSample>> {
        let own = [server.pid()];
        let http = crate::server::http_client();
        let probe = crate::bench::quiet::Probe::start(&own);
        let (prompt, timeout) = self.warm_up(run_id, server, &http, opts, cancel).await?;
        let look = finish(probe).await;
        if look.busy() {
            let waited = self.wait_for_quiet(run_id, &own, &look, cancel).await?;
            self.db()
                .add_measurements(
                    run_id,
                    &[Measurement {
                        name: "waited_for_quiet".into(),
                        repetition: None,
                        value: waited,
                        unit: "s".into(),
                    }],
                )
                .await?;
        }
        let mut waited = false;
        loop {
            let probe = crate::bench::quiet::Probe::start(&own);
            let samples = self
                .measure_reps(run_id, server, &http, &prompt, timeout, opts, cancel)
                .await?;
            let load = finish(probe).await;
            let gen: Vec<f64> = samples.iter().map(|s| s.predicted_per_second).collect();
            let noisy = speed::too_noisy(&gen);
            if (!load.busy() && !noisy) || waited {
                self.db()
                    .add_measurements(
                        run_id,
                        &[
                            Measurement {
                                name: crate::bench::quiet::OTHERS_CORES.into(),
                                repetition: None,
                                value: load.others_cores,
                                unit: "cores".into(),
                            },
                            Measurement {
                                name: "cores".into(),
                                repetition: None,
                                value: load.cores as f64,
                                unit: "cores".into(),
                            },
                        ],
                    )
                    .await?;
                return Ok(samples);
            }
            waited = true;
            self.db()
                .set_aside_measurements(run_id, &SPEED_MEASUREMENTS)
                .await?;
            self.wait_for_quiet(run_id, &own, &load, cancel).await?;
        }
    }

    /// Says why the benchmark waits, then waits for the machine to quiet down (at most
    /// [`QUIET_PATIENCE`]); the seconds waited.
    async fn wait_for_quiet(
        &self,
        run_id: i64,
        own: &[u32],
        load: &crate::bench::quiet::Load,
        cancel: &CancellationToken,
    ) -> Result<f64> {
        let why = if load.busy() {
            load.describe()
        } else {
            format!(
                "its figures disagreed by more than {:.0}%",
                speed::NOISY_SPREAD_PCT
            )
        };
        self.events().emit(Event::BenchProgress {
            run_id,
            tokens_per_second: None,
            phase: BenchPhase::Measuring,
            step: 1,
            total: 1,
            message: format!(
                "The machine is busy ({why}): waiting for it to quiet down before measuring"
            ),
        });
        let started = std::time::Instant::now();
        let quiet = tokio::select! {
            l = crate::bench::quiet::wait_for_quiet(own, QUIET_STEP, QUIET_PATIENCE) => l,
            _ = cancel.cancelled() => return Err(Error::Cancelled),
        };
        tracing::info!(run_id, "after waiting: {}", quiet.describe());
        Ok(started.elapsed().as_secs_f64())
    }

    /// The prompt of a speed measurement, and the first request (caches, shader
    /// compilation), which also sets the later requests' deadline, so a 1 tok/s model
    /// still has the time it needs.
    async fn warm_up(
        &self,
        run_id: i64,
        server: &Server,
        http: &reqwest::Client,
        opts: &SpeedOptions,
        cancel: &CancellationToken,
    ) -> Result<(Vec<serde_json::Value>, Duration)> {
        let base = server.base_url();
        let prompt = guarded(
            server,
            cancel,
            speed::prompt_tokens(http, &base, opts.prompt_tokens),
        )
        .await?;
        let mut timeout = Duration::from_secs(30 * 60);
        if opts.warmup {
            self.events().emit(Event::BenchProgress {
                run_id,
                tokens_per_second: None,
                phase: BenchPhase::Warmup,
                step: 1,
                total: 1,
                message: "Warming up".into(),
            });
            let w = guarded(
                server,
                cancel,
                speed::measure_once(http, &base, &prompt, opts.gen_tokens, timeout),
            )
            .await?;
            timeout = Duration::from_secs_f64(w.wall_ms / 1e3 * 3.0 + 30.0);
        }
        Ok((prompt, timeout))
    }

    /// The measured repetitions of one speed measurement, each stored as it is taken.
    #[allow(clippy::too_many_arguments)]
    async fn measure_reps(
        &self,
        run_id: i64,
        server: &Server,
        http: &reqwest::Client,
        prompt: &[serde_json::Value],
        timeout: Duration,
        opts: &SpeedOptions,
        cancel: &CancellationToken,
    ) -> Result<Vec<SpeedSample>> {
        let base = server.base_url();
        let mut samples: Vec<SpeedSample> = Vec::new();
        let gen = |samples: &[SpeedSample]| -> Vec<f64> {
            samples.iter().map(|s| s.predicted_per_second).collect()
        };
        while opts.wants_more(&gen(&samples)) {
            let rep = samples.len() as u32 + 1;
            let at_least = opts.repetitions.max(1);
            let last = samples.last().map(|s| s.predicted_per_second);
            self.events().emit(Event::BenchProgress {
                run_id,
                tokens_per_second: last,
                phase: BenchPhase::Measuring,
                step: rep,
                total: at_least.max(rep),
                message: if rep > at_least {
                    format!(
                        "Measuring again: the figures so far disagree by more than {:.0}%",
                        speed::NOISY_SPREAD_PCT
                    )
                } else {
                    "Measuring".into()
                },
            });
            let s = guarded(
                server,
                cancel,
                speed::measure_once(http, &base, prompt, opts.gen_tokens, timeout),
            )
            .await?;
            let rep_i = Some(i64::from(rep));
            let m = |name: &str, value: f64, unit: &str| Measurement {
                name: name.into(),
                repetition: rep_i,
                value,
                unit: unit.into(),
            };
            self.db()
                .add_measurements(
                    run_id,
                    &[
                        m(SPEED_MEASUREMENTS[0], s.prompt_per_second, "tok/s"),
                        m(SPEED_MEASUREMENTS[1], s.predicted_per_second, "tok/s"),
                        m(SPEED_MEASUREMENTS[2], s.ttft_ms, "ms"),
                        m(SPEED_MEASUREMENTS[3], s.wall_ms, "ms"),
                    ],
                )
                .await?;
            samples.push(s);
        }
        Ok(samples)
    }

    /// Records why a run ended early.
    pub(crate) async fn end_run(&self, run_id: i64, e: &Error, log_tail: Option<&[String]>) {
        let status = if matches!(e, Error::Cancelled) {
            RunStatus::Interrupted
        } else {
            RunStatus::Failed
        };
        let code = e.code();
        let message = e.to_string();
        if let Err(db) = self
            .db()
            .finish_run(
                run_id,
                status,
                Some((code.as_str(), &message)),
                None,
                log_tail,
                &history::now(),
            )
            .await
        {
            tracing::error!(error = %db, run_id, "could not record how the run ended");
        }
    }
}

/// A probe's result, read off the async runtime (it may sleep to its minimum span).
async fn finish(probe: crate::bench::quiet::Probe) -> crate::bench::quiet::Load {
    tokio::task::spawn_blocking(move || probe.finish())
        .await
        .expect("a probe does not panic")
}

/// What every benchmark run records as it starts.
pub(crate) struct RunStart<'a> {
    pub kind: super::RunKind,
    pub model_id: i64,
    pub runtime: &'a crate::runtime::Runtime,
    pub info: &'a crate::runtime::RuntimeInfo,
    pub hardware: &'a HardwareProfile,
    pub bandwidth: Option<f64>,
    pub server_args: &'a [String],
}

impl Core {
    /// What bounds generation for `model` served by a server started with `config` on
    /// `hw`: placement from the layers it was given, each memory's speed from the probe
    /// (`probed`, else this machine's kept figure) and Kindling's GPU table.
    pub(crate) async fn run_limit(
        &self,
        hw: &HardwareProfile,
        model: &crate::gguf::GgufInfo,
        config: &crate::server::ServerConfig,
        probed: Option<f64>,
    ) -> super::limit::SpeedLimit {
        let bandwidth = match probed {
            Some(b) => Some(b),
            None => self.kept_bandwidth(hw).await.ok(),
        };
        let (machine, _, _) = crate::recommend::machine::profile(hw, bandwidth);
        let shape = crate::recommend::fit::ModelShape::from_gguf(model);
        let placement = super::limit::run_placement(
            &shape,
            &machine,
            config.gpu_layers,
            u64::from(config.ctx_size),
        );
        super::limit::speed_limit(&shape, &machine, placement)
    }

    /// This machine now, with the runtime's devices (detection is blocking work).
    pub(crate) async fn machine_now(&self, info: &crate::runtime::RuntimeInfo) -> HardwareProfile {
        self.hardware(info.devices.clone()).await
    }

    /// Stores the hardware snapshot and creates the run, `running`; returns its id.
    pub(crate) async fn begin_run(&self, s: RunStart<'_>) -> Result<i64> {
        let now = history::now();
        let hardware_id = self
            .db()
            .insert_hardware(s.hardware, s.bandwidth, &now)
            .await?;
        Ok(self
            .db()
            .create_run(&NewRun {
                kind: s.kind,
                model_id: s.model_id,
                hardware_id,
                runtime_path: &s.runtime.path.to_string_lossy(),
                runtime_version: &s.info.describe(),
                devices_json: &serde_json::to_string(&s.info.devices).expect("devices serialize"),
                server_args: s.server_args,
                started_at: &now,
            })
            .await?)
    }
}

/// Runs a request, ending it at once if the server dies or the user cancels. A request
/// that fails because the server died reports the server's reason, not "connection reset".
pub(crate) async fn guarded<T>(
    server: &Server,
    cancel: &CancellationToken,
    fut: impl std::future::Future<Output = std::result::Result<T, ServerError>>,
) -> Result<T> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Error::Cancelled),
        e = server.died() => Err(e.into()),
        r = fut => match r {
            Ok(v) => Ok(v),
            Err(e) => match tokio::time::timeout(Duration::from_secs(2), server.died()).await {
                Ok(died) => Err(died.into()),
                Err(_) => Err(e.into()),
            },
        },
    }
}
