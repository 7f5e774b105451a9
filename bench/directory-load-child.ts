// Child process for bench/directory.bench.ts: load one CSV export in a fresh process, as the sidecar
// does at start, and print what it took as one JSON line.
import { loadCsvDirectory } from "../model/directory/csv-directory.js";

const file = process.argv[2];
if (!file) throw new Error("usage: directory-load-child.ts FILE");
const c0 = process.cpuUsage();
const t0 = performance.now();
const dir = await loadCsvDirectory(file);
const ms = performance.now() - t0;
const c = process.cpuUsage(c0);
const mem = process.memoryUsage();
process.stdout.write(
  `${JSON.stringify({ ms, cpuMs: (c.user + c.system) / 1000, rows: dir.size, heapMb: mem.heapUsed / 2 ** 20, rssMb: mem.rss / 2 ** 20 })}\n`,
);
