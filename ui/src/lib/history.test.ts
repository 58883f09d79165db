import { describe, expect, it } from "vitest";
import type { QualityReport } from "./bindings/QualityReport";
import type { RunSummary } from "./bindings/RunSummary";
import type { SpeedSummary } from "./bindings/SpeedSummary";
import type { Stat } from "./bindings/Stat";
import { applyFilter, compare, frontier, speedOverTime, thinkOnOff, toRow } from "./history";

const stat = (median: number): Stat => ({ median, min: median, max: median, spread_pct: 0, n: 3 });

/** A speed run's result as the core stores it. */
function speed(median: number): { kind: "speed" } & SpeedSummary {
  return {
    kind: "speed",
    options: { prompt_tokens: 512, gen_tokens: 128, repetitions: 3, max_repetitions: 8, warmup: true },
    prompt_per_second: stat(200),
    gen_per_second: stat(median),
    gen_per_second_wall: null,
    ttft_ms: stat(300),
    load_ms: 1000,
    readiness_latency_ms: null,
    peak_rss_bytes: null,
    model_bytes_per_token: 253e6,
    limit: null,
    fraction_of_limit: null,
    effective_bandwidth_bytes_per_second: null,
    too_noisy: false,
    wall_to_server_ratio: null,
    measured_busy: null,
  };
}

function run(id: number, over: Partial<RunSummary>): RunSummary {
  return {
    id,
    kind: "speed",
    status: "completed",
    model_path: `/models/m${id}.gguf`,
    model_name: null,
    quant: "Q4_K_M",
    runtime_version: "b1",
    started_at: `2026-11-${String(10 + id).padStart(2, "0")}T10:00:00Z`,
    finished_at: null,
    error_code: null,
    error_message: null,
    backend: "CPU",
    imported: false,
    result: null,
    ...over,
  };
}

const quality = (id: number, gb: number, score: number, think: boolean | null, cats: Record<string, number>) => {
  const report: { kind: "quality" } & QualityReport = {
    kind: "quality",
    run_id: id,
    config: { model: `/models/m${id}.gguf`, quick: true, think, suite_id: "core", suite_version: 1 },
    model_bytes: gb * 1e9,
    categories: Object.entries(cats).map(([category, s]) => ({ category, score: s, tests: 2 })),
    score,
    score_per_gb: (score * 100) / gb,
    gen_per_second: 12,
    prompt_per_second: 100,
    fraction_of_limit: null,
    counts: { answered: 2, degenerate: 0, timeout: 0, crash: 0, error: 0, skipped: 0, backend_faults: 0 },
    grader_version: 1,
    expected_seconds: null,
    measured_busy: null,
    tests: [],
  };
  return run(id, { kind: "quality", model_name: `model${id}`, result: report });
};

describe("rows", () => {
  it("reads a speed run's median generation speed", () => {
    const r = toRow(run(1, { result: speed(29.7), imported: true }));
    expect(r.tps).toBe(29.7);
    expect(r.model).toBe("m1.gguf");
    expect(r.score).toBeNull();
    expect(r.imported).toBe(true);
  });
  it("reads a quality run's score, categories and think setting", () => {
    const r = toRow(quality(2, 2, 0.5, true, { math: 0.25, code: 0.75 }));
    expect(r.score).toBe(50);
    expect(r.categories).toEqual({ math: 25, code: 75 });
    expect(r.think).toBe(true);
    expect(r.tps).toBe(12);
  });
  it("shows a run without figures (failed, or unreadable) as dashes", () => {
    const r = toRow(run(3, { status: "failed", result: null }));
    expect(r.tps).toBeNull();
    expect(r.score).toBeNull();
    expect(r.categories).toEqual({});
  });
  it("filters by text, kind and status", () => {
    const rows = [toRow(quality(1, 1, 0.3, null, {})), toRow(run(2, { status: "failed" }))];
    expect(applyFilter(rows, { text: "MODEL1", kind: "", status: "" })).toHaveLength(1);
    expect(applyFilter(rows, { text: "", kind: "speed", status: "" }).map((r) => r.id)).toEqual([2]);
    expect(applyFilter(rows, { text: "", kind: "", status: "completed" }).map((r) => r.id)).toEqual([1]);
  });
});

describe("charts", () => {
  it("keeps only runs no smaller run beats on the frontier", () => {
    const rows = [
      quality(1, 1, 0.4, null, {}),
      quality(2, 2, 0.3, null, {}), // bigger and worse: below the frontier
      quality(3, 3, 0.6, null, {}),
      quality(4, 0.5, 0.2, null, {}),
    ].map(toRow);
    const f = frontier(rows);
    expect(f.points).toHaveLength(4);
    expect(f.frontier.map((p) => p.x)).toEqual([0.5, 1, 3]);
  });
  it("groups speed over time by model, in time order", () => {
    const rows = [
      run(3, { model_name: "a", result: speed(3) }),
      run(1, { model_name: "a", result: speed(1) }),
      run(2, { model_name: "b", result: speed(2) }),
      run(4, { model_name: "b", status: "failed", result: speed(9) }),
    ].map(toRow);
    const s = speedOverTime(rows);
    expect([...s.keys()].sort()).toEqual(["a Q4_K_M", "b Q4_K_M"]);
    expect(s.get("a Q4_K_M")!.map((p) => p.y)).toEqual([1, 3]);
    expect(s.get("b Q4_K_M")).toHaveLength(1);
  });
  it("averages categories with thinking on and off", () => {
    const rows = [
      quality(1, 1, 0.5, true, { math: 1, code: 0.5 }),
      quality(2, 1, 0.5, true, { math: 0.5 }),
      quality(3, 1, 0.5, false, { math: 0 }),
      quality(4, 1, 0.5, null, { math: 0.9 }),
    ].map(toRow);
    const t = thinkOnOff(rows);
    expect(t.categories).toEqual(["code", "math"]);
    expect(t.on).toEqual([50, 75]);
    expect(t.off).toEqual([null, 0]);
  });
  it("compares two runs per category", () => {
    const a = toRow(quality(1, 1, 0.5, null, { math: 0.5 }));
    const b = toRow(quality(2, 1, 0.75, null, { math: 1, code: 0.5 }));
    const lines = compare(a, b);
    expect(lines.find((l) => l.label === "math")!.change).toBe(50);
    expect(lines.find((l) => l.label === "code")!.a).toBeNull();
    expect(lines.find((l) => l.label === "Overall score")!.change).toBe(25);
  });
});
