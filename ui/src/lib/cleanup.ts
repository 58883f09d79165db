// The cleanup plan grouped for the screen: by the tool that owns the files, then by why
// they can go. Pure functions: tested in cleanup.test.ts.
import type { PlanItem } from "./bindings/PlanItem";
import type { Reason } from "./bindings/Reason";

export type Source = "Ollama" | "Hugging Face" | "Kindling";

export function sourceOf(reason: Reason): Source {
  if (reason.startsWith("ollama")) return "Ollama";
  if (reason.startsWith("hf")) return "Hugging Face";
  return "Kindling";
}

export interface Group {
  source: Source;
  reason: Reason;
  items: PlanItem[];
  bytes: number;
}

/** Groups, biggest first; items within a group biggest first. */
export function group(items: PlanItem[]): Group[] {
  const map = new Map<string, Group>();
  for (const item of items) {
    const key = item.reason;
    const g = map.get(key) ?? { source: sourceOf(item.reason), reason: item.reason, items: [], bytes: 0 };
    g.items.push(item);
    g.bytes += item.bytes;
    map.set(key, g);
  }
  const groups = [...map.values()];
  for (const g of groups) g.items.sort((a, b) => b.bytes - a.bytes);
  return groups.sort((a, b) => b.bytes - a.bytes);
}

export function selectedBytes(items: PlanItem[], selected: Set<string>): number {
  return items.filter((i) => selected.has(i.path)).reduce((n, i) => n + i.bytes, 0);
}
