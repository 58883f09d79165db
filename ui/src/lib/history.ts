// History rows, filters, comparison and chart data, from the stored run summaries.
// Pure functions: tested in history.test.ts.
import type { RunSummary } from "./bindings/RunSummary";

export interface Row {
  id: number;
  startedAt: string;
  kind: string;
  status: string;
  model: string;
  quant: string;
  /** `Vulkan` or `CPU`. */
  backend: string;
  /** Imported from another machine's export. */
  imported: boolean;
  /** The graders' version that scored a quality run. */
  graderVersion: number | null;
  /** Quality score, 0–100 (quality runs). */
  score: number | null;
  /** Model file size in GB. */
  gb: number | null;
  scorePerGb: number | null;
  /** Generation speed, tokens/s. */
  tps: number | null;
  /** Thinking on/off for quality runs that set it. */
  think: boolean | null;
  /** Category → score 0–100. */
  categories: Record<string, number>;
}

/** A table row from a run's typed result, whatever its kind. */
export function toRow(r: RunSummary): Row {
  const res = r.result;
  let tps: number | null = null;
  let score: number | null = null;
  let gb: number | null = null;
  let scorePerGb: number | null = null;
  let think: boolean | null = null;
  let graderVersion: number | null = null;
  const categories: Record<string, number> = {};
  if (res?.kind === "speed") {
    tps = res.gen_per_second.median;
  } else if (res?.kind === "quality") {
    tps = res.gen_per_second;
    score = res.score * 100;
    gb = res.model_bytes > 0 ? res.model_bytes / 1e9 : null;
    scorePerGb = res.score_per_gb;
    think = res.config.think;
    graderVersion = res.grader_version;
    for (const c of res.categories) categories[c.category] = c.score * 100;
  } else if (res?.kind === "tune") {
    tps = res.best.gen_per_second;
  }
  const fileName = (r.model_path ?? "").split(/[\\/]/).pop() ?? "";
  return {
    id: r.id,
    startedAt: r.started_at,
    kind: r.kind,
    status: r.status,
    model: r.model_name ?? (fileName || "unknown model"),
    quant: r.quant ?? "—",
    backend: r.backend ?? "—",
    imported: r.imported,
    graderVersion,
    score,
    gb,
    scorePerGb,
    tps,
    think,
    categories,
  };
}

export interface Filter {
  text: string;
  kind: "" | "speed" | "quality" | "tune";
  status: "" | "completed" | "failed" | "interrupted" | "running";
}

export function applyFilter(rows: Row[], f: Filter): Row[] {
  const text = f.text.trim().toLowerCase();
  return rows.filter(
    (r) =>
      (!f.kind || r.kind === f.kind) &&
      (!f.status || r.status === f.status) &&
      (!text || `${r.model} ${r.quant}`.toLowerCase().includes(text)),
  );
}

export interface CompareLine {
  label: string;
  a: number | null;
  b: number | null;
  /** b − a, when both exist. */
  change: number | null;
}

/** Side by side: each category either run has, then score and speed. */
export function compare(a: Row, b: Row): CompareLine[] {
  const cats = [...new Set([...Object.keys(a.categories), ...Object.keys(b.categories)])].sort();
  const line = (label: string, x: number | null, y: number | null): CompareLine => ({
    label,
    a: x,
    b: y,
    change: x != null && y != null ? y - x : null,
  });
  return [
    ...cats.map((c) => line(c, a.categories[c] ?? null, b.categories[c] ?? null)),
    line("Overall score", a.score, b.score),
    line("Tokens per second", a.tps, b.tps),
  ];
}

export interface Point {
  x: number;
  y: number;
  label: string;
}

/** Score against size, and the efficiency frontier: the runs no smaller run beats. */
export function frontier(rows: Row[]): { points: Point[]; frontier: Point[] } {
  const points = rows
    .filter((r) => r.status === "completed" && r.score != null && r.gb != null)
    .map((r) => ({ x: r.gb as number, y: r.score as number, label: `${r.model} ${r.quant}` }))
    .sort((p, q) => p.x - q.x || q.y - p.y);
  const front: Point[] = [];
  for (const p of points) {
    if (front.length === 0 || p.y > front[front.length - 1].y) front.push(p);
  }
  return { points, frontier: front };
}

/** Generation speed over time, one series per model (completed runs only). */
export function speedOverTime(rows: Row[]): Map<string, Point[]> {
  const series = new Map<string, Point[]>();
  for (const r of rows) {
    if (r.status !== "completed" || r.tps == null) continue;
    const t = Date.parse(r.startedAt);
    if (Number.isNaN(t)) continue;
    const key = `${r.model} ${r.quant}`;
    const list = series.get(key) ?? [];
    list.push({ x: t, y: r.tps, label: key });
    series.set(key, list);
  }
  for (const list of series.values()) list.sort((p, q) => p.x - q.x);
  return series;
}

/** Mean score per category with thinking on and off (quality runs that set it). */
export function thinkOnOff(rows: Row[]): { categories: string[]; on: (number | null)[]; off: (number | null)[] } {
  const sums = { on: new Map<string, number[]>(), off: new Map<string, number[]>() };
  for (const r of rows) {
    if (r.status !== "completed" || r.think == null) continue;
    const side = r.think ? sums.on : sums.off;
    for (const [c, v] of Object.entries(r.categories)) {
      side.set(c, [...(side.get(c) ?? []), v]);
    }
  }
  const categories = [...new Set([...sums.on.keys(), ...sums.off.keys()])].sort();
  const mean = (m: Map<string, number[]>, c: string) => {
    const v = m.get(c);
    return v && v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  return {
    categories,
    on: categories.map((c) => mean(sums.on, c)),
    off: categories.map((c) => mean(sums.off, c)),
  };
}
