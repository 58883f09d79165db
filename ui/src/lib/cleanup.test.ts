import { describe, expect, it } from "vitest";
import type { PlanItem } from "./bindings/PlanItem";
import { group, selectedBytes, sourceOf } from "./cleanup";

const item = (path: string, bytes: number, reason: PlanItem["reason"]): PlanItem => ({
  path,
  root: "/r",
  bytes,
  reason,
  is_dir: false,
});

describe("cleanup groups", () => {
  it("names the tool each reason belongs to", () => {
    expect(sourceOf("ollama_orphan_blob")).toBe("Ollama");
    expect(sourceOf("hf_detached_revision")).toBe("Hugging Face");
    expect(sourceOf("kindling_partial")).toBe("Kindling");
  });
  it("groups by reason, biggest group and item first", () => {
    const g = group([
      item("/a", 10, "ollama_orphan_blob"),
      item("/b", 500, "hf_incomplete"),
      item("/c", 30, "ollama_orphan_blob"),
    ]);
    expect(g.map((x) => x.reason)).toEqual(["hf_incomplete", "ollama_orphan_blob"]);
    expect(g[1].bytes).toBe(40);
    expect(g[1].items.map((i) => i.path)).toEqual(["/c", "/a"]);
  });
  it("totals only what is selected", () => {
    const items = [item("/a", 10, "ollama_partial"), item("/b", 5, "ollama_partial")];
    expect(selectedBytes(items, new Set(["/b"]))).toBe(5);
    expect(selectedBytes(items, new Set())).toBe(0);
  });
});
