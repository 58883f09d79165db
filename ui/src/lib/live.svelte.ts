// State shared by the screens and kept current by the core's events: the server's
// status and the benchmark's progress. One listener each for the whole window.
import { api, asError, onBenchFinished, onEvent, onShowdownEnded } from "./api";
import type { BenchFinished } from "./bindings/BenchFinished";
import type { Candidate } from "./bindings/Candidate";
import type { ErrorReport } from "./bindings/ErrorReport";
import type { Event } from "./bindings/Event";
import type { ServerStatus } from "./bindings/ServerStatus";
import { bytes } from "./format";

type Progress = Extract<Event, { type: "bench_progress" }>;
type Download = Extract<Event, { type: "download" }>;

class Live {
  server = $state<ServerStatus | null>(null);
  serverError = $state<ErrorReport | null>(null);
  /** The second server: a model on the processor beside the first, on its own port. */
  second = $state<ServerStatus | null>(null);
  secondError = $state<ErrorReport | null>(null);
  benchRunning = $state(false);
  /** A showdown runs: its test progress is the Showdown screen's, not a benchmark's. */
  showdownRunning = $state(false);
  benchStartedAt = $state(0);
  progress = $state<Progress | null>(null);
  finished = $state<BenchFinished | null>(null);
  downloads = $state<Record<string, Download>>({});
  /** Catalog ids being downloaded from this window (Home and Models share them). */
  pulling = $state<Record<string, boolean>>({});

  async start() {
    await onEvent((e) => this.onEvent(e));
    await onShowdownEnded(() => (this.showdownRunning = false));
    await onBenchFinished((f) => {
      this.benchRunning = false;
      this.progress = null;
      this.finished = f;
    });
    const [server, second, bench, showdown] = await Promise.all([
      api.serverStatus(),
      api.secondStatus(),
      api.benchStatus(),
      api.showdownStatus().catch(() => null),
    ]);
    this.server = server;
    this.second = second;
    this.showdownRunning = showdown?.running ?? false;
    this.benchRunning = bench.running;
    if (bench.running) this.benchStartedAt = Date.now();
    this.progress = bench.progress?.type === "bench_progress" ? bench.progress : null;
    this.finished = bench.last;
  }

  private onEvent(e: Event) {
    if (e.type === "server_state") {
      // A benchmark's own server is not the one the Server screen and tray show.
      if (e.server.purpose === "serving") this.refreshServer();
      else if (e.server.purpose === "second") this.refreshSecond();
    } else if (e.type === "bench_progress") {
      if (this.showdownRunning) return;
      // Progress travels a different path from the end-of-run message and can arrive
      // after it: a finished run's late progress must not bring the progress card back.
      if (e.phase === "done" || e.run_id === this.finished?.result?.report.run_id) return;
      // A new phase of its own length (the quality tests after the speed runs) restarts
      // the clock that time left is estimated from.
      if (!this.benchRunning || (e.phase === "testing" && this.progress?.phase !== "testing")) {
        this.benchRunning = true;
        this.benchStartedAt = Date.now();
      }
      this.progress = e;
    } else if (e.type === "download") {
      this.downloads = { ...this.downloads, [e.file]: e };
    }
  }

  /** Downloads a catalog model and checks it; says what happened, in the owner's words. */
  async pull(c: Candidate): Promise<{ notice: string; error: ErrorReport | null }> {
    this.pulling = { ...this.pulling, [c.id]: true };
    try {
      const pulled = await api.pullModel(c.id);
      return { notice: `${c.name} ${c.quant} is installed (${bytes(pulled.bytes)}, checked).`, error: null };
    } catch (e) {
      const err = asError(e);
      if (err.code === "paused") {
        return { notice: `${c.name} ${c.quant} is paused; start its download again (Download it, or Get on Models) to continue where it stopped.`, error: null };
      }
      return { notice: "", error: err.code === "cancelled" ? null : err };
    } finally {
      this.pulling = { ...this.pulling, [c.id]: false };
    }
  }

  async refreshServer() {
    this.server = await api.serverStatus();
  }

  async refreshSecond() {
    this.second = await api.secondStatus();
  }

  /** Starts the second model (`model`, or the one chosen before), or stops it. */
  async toggleSecond(model?: string) {
    this.secondError = null;
    const s = this.second?.state.state;
    try {
      this.second = s === "ready" || s === "starting" ? await api.secondStop() : await api.secondStart(model);
    } catch (e) {
      this.secondError = asError(e);
      await this.refreshSecond();
    }
  }

  async startBench(quality: boolean) {
    this.finished = null;
    this.progress = null;
    try {
      await api.benchStart(quality);
      this.benchRunning = true;
      this.benchStartedAt = Date.now();
    } catch (e) {
      this.finished = { result: null, error: asError(e) };
    }
  }

  async toggleServer() {
    this.serverError = null;
    const s = this.server?.state.state;
    try {
      this.server = s === "ready" || s === "starting" ? await api.serverStop() : await api.serverStart();
    } catch (e) {
      this.serverError = asError(e);
      await this.refreshServer();
    }
  }
}

export const live = new Live();
