import { describe, expect, it } from "vitest";
import type { Contender } from "./bindings/Contender";
import type { Ranked } from "./bindings/Ranked";
import { categoryTable, frontier, key, statusWords, thinkPairs, totals } from "./showdown";

const c = (over: Partial<Contender>): Contender => ({
  label: "m",
  catalog_id: null,
  path: null,
  bytes: 0,
  think: null,
  estimated_seconds: 0,
  download_margin: 0,
  ...over,
});

const r = (over: Partial<Ranked>): Ranked => ({
  label: "m",
  run_id: 1,
  path: "/m.gguf",
  think: null,
  score: 0,
  score_per_gb: 0,
  bytes: 1e9,
  gen_per_second: 20,
  meets_goal: true,
  measured_busy: null,
  backend: "CPU",
  categories: [],
  ...over,
});

describe("totals", () => {
  it("downloads each missing file once, and nothing already on disk", () => {
    const t = totals([
      c({ catalog_id: "f:Q4", bytes: 5e9, think: false, estimated_seconds: 600, download_margin: 1e8 }),
      c({ catalog_id: "f:Q4", bytes: 5e9, think: true, estimated_seconds: 900, download_margin: 1e8 }),
      c({ catalog_id: "f:Q8", bytes: 9e9, path: "/here/f-q8.gguf", estimated_seconds: 1200 }),
    ]);
    expect(t).toEqual({ download: 5e9, needed: 5.1e9, seconds: 2700, unknownTime: false });
  });
  it("needs each download's margin on top of what the earlier ones took", () => {
    const t = totals([
      c({ catalog_id: "f:Q4", bytes: 5e9, download_margin: 1e8 }),
      c({ catalog_id: "f:Q8", bytes: 9e9, download_margin: 1.8e8 }),
    ]);
    expect(t.needed).toBe(14.18e9);
  });
  it("says when a candidate's time is unknown", () => {
    expect(totals([c({ estimated_seconds: 0 })]).unknownTime).toBe(true);
  });
});

describe("key", () => {
  it("tells thinking on from off", () => {
    expect(key(c({ catalog_id: "f:Q4", think: true }))).not.toBe(key(c({ catalog_id: "f:Q4", think: false })));
  });
});

describe("frontier", () => {
  it("keeps only the candidates no smaller one beats", () => {
    const f = frontier([
      r({ label: "Q8", bytes: 0.29e9, score: 0.14 }),
      r({ label: "Q2", bytes: 0.237e9, score: 0.05 }),
      r({ label: "Q3", bytes: 0.242e9, score: 0.15 }),
      r({ label: "Q4", bytes: 0.253e9, score: 0.14 }),
    ]);
    expect(f.points.map((p) => p.label)).toEqual(["Q2", "Q3", "Q4", "Q8"]);
    expect(f.front.map((p) => p.label)).toEqual(["Q2", "Q3"]);
  });
});

describe("categoryTable", () => {
  it("puts a hole where a candidate lacks a category", () => {
    const t = categoryTable([
      r({ categories: [{ category: "math", score: 0.5, tests: 2 }] }),
      r({ categories: [] }),
    ]);
    expect(t).toEqual({ categories: ["math"], cells: [[50, null]] });
  });
});

describe("thinkPairs", () => {
  it("pairs the same file's thinking off and on runs", () => {
    const pairs = thinkPairs([
      r({ label: "on", think: true, path: "/a" }),
      r({ label: "other", think: false, path: "/b" }),
      r({ label: "off", think: false, path: "/a" }),
    ]);
    expect(pairs.map((p) => [p.off.label, p.on.label])).toEqual([["off", "on"]]);
  });
});

describe("statusWords", () => {
  it("says a failed candidate was not measured", () => {
    expect(statusWords("failed")).toBe("not measured");
  });
});
