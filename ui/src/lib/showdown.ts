// The showdown screen's arithmetic and words. Pure functions: tested in showdown.test.ts.
// The types are the Rust ones (bindings), so a field renamed there breaks the build here.
import type { Contender } from "./bindings/Contender";
import type { EntryStatus } from "./bindings/EntryStatus";
import type { Ranked } from "./bindings/Ranked";

/** What the chosen candidates take: bytes to download (each file once), the free disk
 *  that needs (downloads run one after another, each keeping its own margin free, as
 *  `showdown::disk_needed` counts it), measuring time. */
export function totals(chosen: Contender[]): { download: number; needed: number; seconds: number; unknownTime: boolean } {
  const files = new Map<string, Contender>();
  for (const c of chosen) {
    if (c.path == null && c.catalog_id != null && !files.has(c.catalog_id)) files.set(c.catalog_id, c);
  }
  let download = 0;
  let needed = 0;
  for (const f of files.values()) {
    download += f.bytes;
    needed = Math.max(needed, download + f.download_margin);
  }
  return {
    download,
    needed,
    seconds: chosen.reduce((s, c) => s + c.estimated_seconds, 0),
    unknownTime: chosen.some((c) => c.estimated_seconds <= 0),
  };
}

/** A candidate's key (the same model with thinking on and off are two candidates). */
export function key(c: Contender): string {
  return `${c.catalog_id ?? c.path ?? c.label}|${c.think ?? "-"}`;
}

const STATUS: Record<EntryStatus, string> = {
  pending: "waiting",
  downloading: "downloading",
  measuring: "measuring",
  done: "done",
  failed: "not measured",
};

export function statusWords(s: EntryStatus): string {
  return STATUS[s];
}

/** Score (%) against size (GB) for each measured candidate, and the efficiency frontier:
 *  those no smaller candidate beats. */
export function frontier(ranked: Ranked[]): { points: { x: number; y: number; label: string }[]; front: { x: number; y: number; label: string }[] } {
  const points = ranked
    .map((r) => ({ x: r.bytes / 1e9, y: r.score * 100, label: r.label }))
    .sort((p, q) => p.x - q.x || q.y - p.y);
  const front: typeof points = [];
  for (const p of points) {
    if (front.length === 0 || p.y > front[front.length - 1].y) front.push(p);
  }
  return { points, front };
}

/** Categories as rows, one column per candidate (score %, or null where it has none). */
export function categoryTable(ranked: Ranked[]): { categories: string[]; cells: (number | null)[][] } {
  const categories = [...new Set(ranked.flatMap((r) => r.categories.map((c) => c.category)))].sort();
  const cells = categories.map((cat) =>
    ranked.map((r) => {
      const c = r.categories.find((x) => x.category === cat);
      return c ? Math.round(c.score * 100) : null;
    }),
  );
  return { categories, cells };
}

/** The same file measured with thinking off and on, side by side. */
export function thinkPairs(ranked: Ranked[]): { off: Ranked; on: Ranked }[] {
  const pairs: { off: Ranked; on: Ranked }[] = [];
  for (const off of ranked.filter((r) => r.think === false)) {
    const on = ranked.find((r) => r.think === true && r.path === off.path);
    if (on) pairs.push({ off, on });
  }
  return pairs;
}
