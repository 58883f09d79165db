#!/usr/bin/env bash
# `make bench-runtime`: the built runtime (.runtime/built, `make runtime`) measured two
# ways on the sample model, side by side in one run:
#   llama-bench from the same source: tg128 at depth 512 (`-p 0 -n 128 -d 512`) and pp512;
#   `kindling bench` driving the built llama-server: 512 prompt tokens, then 128
#   generated (the same depth), streamed over HTTP as every Kindling request is.
# It prints both figures and their ratios. llama-bench sizes its context to the test
# (512 + 128 tokens); Kindling serves with the context in its settings (4096 by default),
# and a larger KV cache costs a few percent of generation speed on a CPU. So Kindling is
# measured both ways: with its context set to llama-bench's (like for like: the bar) and
# as an owner's server runs. (The tests use this same runtime since the PyPI one was
# retired.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
built=.runtime/built
model=.runtime/models/gemma-3-270m-q4_k_m.gguf
reps="${REPS:-5}"
[ -x "$built/llama-bench" ] || { echo "No built runtime: run make runtime first."; exit 1; }

llama_bench() { # args → "tok/s threads"
  "$built/llama-bench" -m "$model" -r "$reps" -o json "$@" 2>/dev/null \
    | python3 -c "import json,sys; r=json.load(sys.stdin)[0]; print('%.1f %d' % (r['avg_ts'], r['n_threads']))"
}
kindling_bench() { # server, context → "gen prompt"
  local home; home="$(mktemp -d)"
  echo "ctx_size = $2" > "$home/settings.toml"
  KINDLING_HOME="$home" KINDLING_LLAMA_SERVER="$1" ./target/release/kindling bench --json \
    --no-bandwidth --reps "$reps" --prompt-tokens 512 --gen-tokens 128 \
    | python3 -c "import json,sys; s=json.load(sys.stdin)['summary']; print('%.1f %.1f' % (s['gen_per_second']['median'], s['prompt_per_second']['median']))"
  rm -rf "$home"
}

# Rounds alternate the two ways, so a machine that slows down mid-run (another
# process, heat) shows as a spread between rounds rather than as a false ratio.
rounds="${ROUNDS:-2}"
for round in $(seq 1 "$rounds"); do
  echo "-- round $round of $rounds"
  read -r tg threads < <(llama_bench -p 0 -n 128 -d 512)
  read -r pp _ < <(llama_bench -p 512 -n 0)
  read -r gen prompt < <(kindling_bench "$built/llama-server" 640)
  read -r gen4k prompt4k < <(kindling_bench "$built/llama-server" 4096)
  printf 'llama-bench (built, %s threads):     tg128@d512 %7.1f tok/s   pp512 %8.1f tok/s\n' "$threads" "$tg" "$pp"
  printf 'kindling bench, context 640:         generation %7.1f tok/s   prompt %8.1f tok/s\n' "$gen" "$prompt"
  python3 -c "print(f'ratio (kindling ÷ llama-bench):      generation {$gen/$tg:7.3f}         prompt {$prompt/$pp:8.3f}   (bar: generation >= 0.95)')"
  printf 'kindling bench, context 4096:        generation %7.1f tok/s   prompt %8.1f tok/s\n' "$gen4k" "$prompt4k"
  python3 -c "print(f'ratio at the served context (4096):  generation {$gen4k/$tg:7.3f}         prompt {$prompt4k/$pp:8.3f}')"
done
