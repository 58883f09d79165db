import type { Hint } from "./bindings/Hint";
import type { Detection } from "./bindings/Detection";
// Numbers and states in plain words. Pure functions: tested in format.test.ts.
import type { BenchPhase } from "./bindings/BenchPhase";
import type { ServerState } from "./bindings/ServerState";

const UNITS = ["B", "KB", "MB", "GB", "TB"];

/** 1_500_000_000 → "1.5 GB" (decimal units, as Finder shows sizes). */
export function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "—";
  let i = 0;
  let v = n;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  const digits = i === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${UNITS[i]}`;
}

/** Seconds → "45 s", "3 min 05 s", "1 h 20 min". */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** Tokens per second → words per second (≈ 0.75 words a token, as the core says). */
export function wordsPerSecond(tokensPerSecond: number): number {
  return tokensPerSecond * 0.75;
}

export function tps(v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return "—";
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

const PHASES: Record<BenchPhase, string> = {
  hardware: "Looking at this computer",
  bandwidth: "Measuring memory speed",
  starting: "Loading the model",
  warmup: "Warming up",
  measuring: "Measuring speed",
  testing: "Testing answers",
  stopping: "Stopping the model",
  done: "Done",
};

export function phaseLabel(p: BenchPhase): string {
  return PHASES[p];
}

// The speed benchmark's phases with their rough share of its time (warm-up and the
// measured repetitions dominate); `testing` is a quality run's.
const WEIGHTS: [BenchPhase, number][] = [
  ["hardware", 0.02],
  ["bandwidth", 0.05],
  ["starting", 0.08],
  ["warmup", 0.2],
  ["measuring", 0.6],
  ["stopping", 0.05],
];

/** How far a run is, 0..1, from its phase and step n of m within it. */
export function progressFraction(phase: BenchPhase, step: number, total: number): number {
  if (phase === "done") return 1;
  if (phase === "testing") return total > 0 ? Math.min(1, (step - 1) / total) : 0;
  let before = 0;
  for (const [p, w] of WEIGHTS) {
    if (p === phase) {
      const within = total > 0 ? Math.max(0, Math.min(1, (step - 1) / total)) : 0;
      return before + w * within;
    }
    before += w;
  }
  return 0;
}

/** Seconds left, from the time so far and the fraction done; null until it can tell. */
export function timeLeft(elapsedSeconds: number, fraction: number): number | null {
  if (fraction < 0.05 || elapsedSeconds < 2) return null;
  return Math.max(0, elapsedSeconds * (1 / fraction - 1));
}

export type Light = "stopped" | "starting" | "running" | "failed";

/** The four states the tray icon shows. */
export function serverLight(s: ServerState): Light {
  switch (s.state) {
    case "ready":
      return "running";
    case "starting":
    case "stopping":
      return "starting";
    case "failed":
      return "failed";
    default:
      return "stopped";
  }
}

export function serverWords(s: ServerState): string {
  switch (s.state) {
    case "ready":
      return s.asleep ? `Asleep on port ${s.port}: memory freed, it wakes on the next request` : `Running on port ${s.port}`;
    case "starting":
      return `Starting on port ${s.port}…`;
    case "stopping":
      return "Stopping…";
    case "failed":
      return "Stopped with a problem";
    default:
      return "Stopped";
  }
}

/** "2026-11-25T21:03:00Z" → "25 Nov 2026, 21:03" in the user's locale and time zone. */
/** A short date for tables: "27 Nov 17:14" (the year too when it is not this one). */
export function shortWhen(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const hm = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  const year = d.getFullYear() === now.getFullYear() ? "" : ` ${d.getFullYear()}`;
  return `${d.getDate()} ${months[d.getMonth()]}${year} ${hm}`;
}

export function when(iso: string, locale?: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
}

/** What to do next after an error, in the app's words (the CLI names commands). */
export function hintText(h: Hint | null | undefined): string | null {
  if (!h) return null;
  switch (h.kind) {
    case "reinstall_runtime":
      return "Reinstall Kindling: its model server is missing or damaged.";
    case "choose_another_port":
      return `Choose another port for ${h.second ? "the second model" : "the server"} in Settings (for example ${h.suggested}, free now), or quit the program using this one.`;
    case "list_runs":
      return "History lists the runs there are.";
    case "list_models":
      return "Models lists the models there are.";
    case "make_cleanup_plan":
      return "Open Cleanup to scan again.";
    case "free_disk_space":
      return "Cleanup can find leftover model files to reclaim.";
    case "set_hf_token":
      return "Add your Hugging Face token in Settings.";
    case "renew_network_key":
      return "Turn \"Allow other devices on my network\" off and on again on the Server screen.";
  }
}

/** The model server Kindling runs, in one line for About (what it is and where it came from). */
export function runtimeLine(d: Detection): string {
  const info = d.runtime_info;
  if (!info) return d.runtime_problem?.message ?? "The model server was not found.";
  const m = info.manifest;
  const built = m
    ? ` · llama.cpp b${m.llama_cpp_build} from ${m.source}, for ${m.target}${m.moltenvk ? `, MoltenVK ${m.moltenvk}` : ""}`
    : "";
  return `llama-server ${info.version}${built}`;
}

/** "A", "A and B", "A, B and C": a list as a person writes it (the core's `and_list`). */
export function andList(items: string[]): string {
  if (items.length < 2) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}
