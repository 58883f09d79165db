// The UI's only door into Kindling: one typed function per Rust command (names match
// src-tauri/src/command_names.rs; a Rust test checks that) and the event streams.
// Types come from ./bindings, generated from the Rust types.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { AnswerView } from "./bindings/AnswerView";
import type { AppInfo } from "./bindings/AppInfo";
import type { Applied } from "./bindings/Applied";
import type { BenchFinished } from "./bindings/BenchFinished";
import type { BenchStatus } from "./bindings/BenchStatus";
import type { CleanupView } from "./bindings/CleanupView";
import type { Detection } from "./bindings/Detection";
import type { ErrorReport } from "./bindings/ErrorReport";
import type { Event } from "./bindings/Event";
import type { Goal } from "./bindings/Goal";
import type { GpuCheck } from "./bindings/GpuCheck";
import type { Inventory } from "./bindings/Inventory";
import type { InstalledModel } from "./bindings/InstalledModel";
import type { MachineChoice } from "./bindings/MachineChoice";
import type { Pulled } from "./bindings/Pulled";
import type { Recommendation } from "./bindings/Recommendation";
import type { Rescored } from "./bindings/Rescored";
import type { PageShown } from "./bindings/PageShown";
import type { Lending } from "./bindings/Lending";
import type { Nearby } from "./bindings/Nearby";
import type { PeerStatus } from "./bindings/PeerStatus";
import type { RunDetail } from "./bindings/RunDetail";
import type { RunSummary } from "./bindings/RunSummary";
import type { ServerStatus } from "./bindings/ServerStatus";
import type { WithPlan } from "./bindings/WithPlan";
import type { ServedView } from "./bindings/ServedView";
import type { Settings } from "./bindings/Settings";
import type { Contender } from "./bindings/Contender";
import type { LosersCleanup } from "./bindings/LosersCleanup";
import type { Proposal } from "./bindings/Proposal";
import type { ShowdownStatus } from "./bindings/ShowdownStatus";
import type { SettingsChange } from "./bindings/SettingsChange";

/** Every failure arrives as `{code, message}`; anything else is wrapped into one. */
export function asError(e: unknown): ErrorReport {
  if (e && typeof e === "object" && "code" in e && "message" in e) return e as ErrorReport;
  return { code: "io", message: String(e), hint: null };
}

export const api = {
  appInfo: () => invoke<AppInfo>("app_info"),
  detect: () => invoke<Detection>("detect"),
  /** For this Mac, or for another Mac's profile (a shipped profile's name, or a file). */
  recommendation: (goal?: Goal, machine?: string) => invoke<Recommendation>("recommendation", { goal, machine }),
  machineProfiles: () => invoke<MachineChoice[]>("machine_profiles"),
  /** A machine profile file from another Mac; null when the owner cancelled. */
  pickMachineFile: () => invoke<string | null>("pick_machine_file"),
  /** Saves this Mac's profile where the owner chooses; the path, or null when cancelled. */
  saveMachineProfile: () => invoke<string | null>("save_machine_profile"),
  gpuChecks: () => invoke<GpuCheck[]>("gpu_checks"),
  /** Forgets the graphics card checks' verdicts; how many there were. */
  gpuChecksForget: () => invoke<number>("gpu_checks_forget"),
  /** Links the kindling command the app carries into the PATH; says where. */
  cliInstall: () => invoke<string>("cli_install"),
  benchStart: (quality: boolean, model?: string) => invoke<null>("bench_start", { model, quality }),
  benchCancel: () => invoke<boolean>("bench_cancel"),
  benchStatus: () => invoke<BenchStatus>("bench_status"),
  /** The candidates Kindling proposes (for the goal in Settings). */
  showdownProposal: (quick: boolean, goal?: Goal) => invoke<Proposal>("showdown_proposal", { goal, quick }),
  showdownStart: (goal: Goal, quick: boolean, contenders: Contender[]) => invoke<number>("showdown_start", { goal, quick, contenders }),
  showdownStatus: () => invoke<ShowdownStatus>("showdown_status"),
  showdownStop: () => invoke<boolean>("showdown_stop"),
  /** Continues a showdown the owner stopped. */
  showdownContinue: (id: number) => invoke<null>("showdown_continue", { id }),
  /** Makes the showdown's winner the served model. */
  showdownUse: (id: number) => invoke<ServerStatus>("showdown_use", { id }),
  /** The losers' cleanup: a plan (apply false), or carried out (apply true). */
  showdownCleanup: (id: number, apply: boolean) => invoke<LosersCleanup>("showdown_cleanup", { id, apply }),
  runs: () => invoke<RunSummary[]>("runs"),
  runDetail: (id: number) => invoke<RunDetail>("run_detail", { id }),
  /** Every answer of a quality run, with the grader's verdict. */
  runAnswers: (id: number) => invoke<AnswerView[]>("run_answers", { id }),
  /** Re-grades a quality run with this version's graders. */
  rescoreRun: (id: number) => invoke<Rescored>("rescore_run", { id }),
  exportRun: (id: number) => invoke<string | null>("export_run", { id }),
  /** Writes the run as one web page (Downloads) and opens it in the browser. */
  openRunPage: (id: number) => invoke<PageShown>("open_run_page", { id }),
  /** Writes the showdown, with every run behind it, as one web page and opens it. */
  openShowdownPage: (id: number) => invoke<PageShown>("open_showdown_page", { id }),
  /** Whether two quality runs answered alike, judged test by test, in one sentence. */
  judgeRuns: (a: number, b: number) => invoke<string | null>("judge_runs", { a, b }),
  importRun: () => invoke<number | null>("import_run"),
  /** The paired Macs, each asked what it lends now. */
  peers: () => invoke<PeerStatus[]>("peers"),
  nearbyMacs: () => invoke<Nearby[]>("nearby_macs"),
  /** Pairs with the Mac showing `code` at `address`; its name. */
  pairWith: (code: string, address: string) => invoke<string>("pair_with", { code, address }),
  unpair: (name: string) => invoke<string>("unpair", { name }),
  /** Lends this Mac (or shows a new code while it does). */
  shareStart: () => invoke<Lending>("share_start"),
  shareStop: () => invoke<boolean>("share_stop"),
  shareStatus: () => invoke<Lending | null>("share_status"),
  /** The plan to serve `model` (null: the one the server would serve) with paired Macs:
   * each Mac's share and the speed to expect. `localMemory` like "12GB", or "". */
  serveWithPlan: (model: string | null, withMacs: string[], localMemory: string) =>
    invoke<WithPlan>("serve_with_plan", { model, with: withMacs, localMemory }),
  serveWith: (model: string | null, withMacs: string[], localMemory: string) =>
    invoke<ServerStatus>("serve_with", { model, with: withMacs, localMemory }),
  /** Serves the model again without the Mac that stopped answering. */
  serveWithout: () => invoke<ServerStatus>("serve_without"),
  /** Serves the model on this Mac alone from now on (the Macs stay paired). */
  serveAlone: () => invoke<ServerStatus>("serve_alone"),
  models: () => invoke<Inventory>("models"),
  servableModels: () => invoke<InstalledModel[]>("servable_models"),
  pullModel: (id: string) => invoke<Pulled>("pull_model", { id }),
  pullControl: (id: string, pause: boolean) => invoke<boolean>("pull_control", { id, pause }),
  removeModel: (id: number, apply: boolean) => invoke<string>("remove_model", { id, apply }),
  addModelFolder: () => invoke<string | null>("add_model_folder"),
  cleanupPlan: () => invoke<CleanupView>("cleanup_plan"),
  cleanupApply: (id: string, paths: string[]) => invoke<Applied>("cleanup_apply", { id, paths }),
  serverStatus: () => invoke<ServerStatus>("server_status"),
  servedUsage: () => invoke<ServedView>("served_usage"),
  saveServedEvidence: (id: number) => invoke<string | null>("save_served_evidence", { id }),
  serverStart: (model?: string) => invoke<ServerStatus>("server_start", { model }),
  serverStop: () => invoke<ServerStatus>("server_stop"),
  secondStatus: () => invoke<ServerStatus>("second_status"),
  secondStart: (model?: string) => invoke<ServerStatus>("second_start", { model }),
  secondStop: () => invoke<ServerStatus>("second_stop"),
  copyApiAddress: () => invoke<boolean>("copy_api_address"),
  openChat: () => invoke<boolean>("open_chat"),
  settingsGet: () => invoke<Settings>("settings_get"),
  settingsSet: (change: SettingsChange) => invoke<Settings>("settings_set", { change }),
  setNetworkAccess: (allow: boolean) => invoke<ServerStatus>("set_network_access", { allow }),
  setHfToken: (token: string | null) => invoke<null>("set_hf_token", { token }),
  setStartAtLogin: (on: boolean) => invoke<boolean>("set_start_at_login", { on }),
  closeWindow: () => invoke<null>("close_window"),
  quit: () => invoke<null>("quit"),
};

/** Core events (server state, benchmark progress, downloads), as the core sends them. */
export function onEvent(handler: (e: Event) => void): Promise<UnlistenFn> {
  return listen<Event>("kindling://event", (m) => handler(m.payload));
}

/** A benchmark ended (started here or from the menu bar). */
export function onBenchFinished(handler: (f: BenchFinished) => void): Promise<UnlistenFn> {
  return listen<BenchFinished>("kindling://bench-finished", (m) => handler(m.payload));
}

/** A showdown's job ended (finished, stopped or failed); the payload is its id. */
export function onShowdownEnded(handler: (id: number) => void): Promise<UnlistenFn> {
  return listen<number>("kindling://showdown-ended", (m) => handler(m.payload));
}

/** The menu bar asks for a screen (e.g. "models" when there is nothing to serve). */
export function onNavigate(handler: (screen: string) => void): Promise<UnlistenFn> {
  return listen<string>("kindling://navigate", (m) => handler(m.payload));
}
