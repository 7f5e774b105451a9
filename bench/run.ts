// `npm run bench [-- filter...]`: runs every bench/*.bench.ts (or those whose name contains a
// filter word) one after another and prints one table of medians and targets.
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Bench, BenchRow } from "./types.js";

const here = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort();

const rows: BenchRow[] = [];
let failed = 0;
for (const f of files) {
  process.stderr.write(`bench: ${f} ...\n`);
  try {
    const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: Bench };
    rows.push(...(await mod.default()));
  } catch (err) {
    failed++;
    process.stderr.write(`bench: ${f} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
}

const fmt = (n: number) => (Math.abs(n) >= 1000 ? Math.round(n).toLocaleString("en-US") : String(Number(n.toPrecision(4))));
const table = rows.map((r) => [
  r.suite,
  r.metric,
  `${fmt(r.value)} ${r.unit}`,
  r.target ?? "",
  r.pass === undefined ? "" : r.pass ? "ok" : "MISSED",
  r.note ?? "",
]);
const head = ["suite", "metric", "median", "target", "", "note"];
const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
console.log(line(head));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const t of table) console.log(line(t));
if (failed) {
  console.log(`\n${failed} benchmark file(s) failed; see above.`);
  process.exitCode = 1;
}
