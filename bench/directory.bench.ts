// Mailbox directory: load a 1,000,000-row Get-Mailbox | Export-Csv file (target < 5 s, median of 5, each in a fresh process;
// wall and CPU both reported, since this machine is shared and wall time depends on its load),
// and show that look-ups are O(1): first look-ups of rows per second at 10,000 rows and at
// 1,000,000 rows, and the rate for a working set already parsed.
import { execFile } from "node:child_process";
import { closeSync, createWriteStream, fsyncSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { cpus as cpuList, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { loadCsvDirectory, type CsvDirectory } from "../model/directory/csv-directory.js";
import { median, type BenchRow } from "./types.js";

const DATABASES = Array.from({ length: 50 }, (_, i) => `DB-${String(i).padStart(2, "0")}`);

function guid(i: number): string {
  const h = (i * 2654435761 >>> 0).toString(16).padStart(8, "0");
  const n = i.toString(16).padStart(12, "0");
  return `${h}-${n.slice(0, 4)}-4${n.slice(4, 7)}-8${n.slice(7, 10)}-${n.padStart(12, "0")}`;
}

/** Writes an Export-Csv file like Exchange's: #TYPE line, every field quoted, CRLF. */
export async function writeMailboxCsv(file: string, rows: number): Promise<void> {
  const out = createWriteStream(file);
  out.write(`#TYPE Microsoft.Exchange.Data.Directory.Management.Mailbox\r\n"Name","DisplayName","PrimarySmtpAddress","UserPrincipalName","SamAccountName","Database","ExchangeGuid","EmailAddresses"\r\n`);
  let chunk = "";
  for (let i = 0; i < rows; i++) {
    const u = `user${i}`;
    chunk += `"${u}","User ${i}, Test","${u}@contoso.com","${u}@corp.contoso.com","${u}","${DATABASES[i % DATABASES.length]}","${guid(i)}","SMTP:${u}@contoso.com smtp:${u}.alias@contoso.com"\r\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, "drain");
      chunk = "";
    }
  }
  out.end(chunk);
  await once(out, "finish");
}

/** Identities for rows `rows[i]`, in the four look-up forms in turn. */
function ids(rowsToFind: readonly number[]): string[] {
  return rowsToFind.map((k, i) => {
    const form = i % 4;
    return form === 0 ? `USER${k}@contoso.com` : form === 1 ? `user${k}.alias@contoso.com` : form === 2 ? `CONTOSO\\user${k}` : `{${guid(k)}}`;
  });
}

function lookupRate(dir: CsvDirectory, wanted: readonly string[]): number {
  let found = 0;
  const t0 = performance.now();
  for (const id of wanted) if (dir.find(id).status === "found") found++;
  const ms = performance.now() - t0;
  if (found !== wanted.length) throw new Error(`only ${found} of ${wanted.length} look-ups found a mailbox`);
  return wanted.length / (ms / 1000);
}

/** Distinct rows, spread over the file: each is a first look-up (the row is parsed from the text). */
function coldRows(rows: number, n: number, run: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + run * 104729) % rows);
}

const cpus_ = () => cpuList().length;
const execFileP = promisify(execFile);

export default async function bench(): Promise<BenchRow[]> {
  const root = mkdtempSync(join(tmpdir(), "cas-bench-dir-"));
  try {
    const big = join(root, "1m.csv");
    const small = join(root, "10k.csv");
    await writeMailboxCsv(big, 1_000_000);
    await writeMailboxCsv(small, 10_000);
    // The file must be on disk, not still being written back, while loads are timed.
    const fd = openSync(big, "r");
    fsyncSync(fd);
    closeSync(fd);
    // Each timed load runs in a fresh process (as the sidecar loads at start), so no run inherits the
    // generator's garbage or the previous run's directory.
    const loads: number[] = [];
    const cpus: number[] = [];
    let heapMb = 0;
    let rssMb = 0;
    for (let run = 0; run < 5; run++) {
      const { stdout } = await execFileP(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./directory-load-child.ts", import.meta.url)), big], { maxBuffer: 1 << 20 });
      const r = JSON.parse(stdout) as { ms: number; cpuMs: number; rows: number; heapMb: number; rssMb: number };
      if (r.rows !== 1_000_000) throw new Error(`loaded ${r.rows} rows`);
      loads.push(r.ms);
      cpus.push(r.cpuMs);
      heapMb = r.heapMb;
      rssMb = r.rssMb;
    }
    const dir = await loadCsvDirectory(big);
    // Cold: every look-up lands on a row not parsed since the load (fresh directories per run, so no
    // run finds the previous run's rows cached). Cached: a 4,000-mailbox working set asked again.
    const cold10k: number[] = [];
    const cold1m: number[] = [];
    for (let run = 0; run < 3; run++) {
      cold10k.push(lookupRate(await loadCsvDirectory(small), ids(coldRows(10_000, 10_000, 0))));
      cold1m.push(lookupRate(dir, ids(coldRows(1_000_000, 10_000, run))));
    }
    const hot = ids(Array.from({ length: 200_000 }, (_, i) => (i % 4000) * 250));
    lookupRate(dir, hot);
    const cached: number[] = [];
    for (let run = 0; run < 5; run++) cached.push(lookupRate(dir, hot));
    const r10k = median(cold10k);
    const r1m = median(cold1m);
    const loadMs = median(loads);
    return [
      {
        suite: "directory",
        metric: "csv load 1M rows",
        value: loadMs / 1000,
        unit: "s",
        target: "< 5 s",
        pass: loadMs < 5000,
        note: `fresh process per run; runs ${loads.map((x) => (x / 1000).toFixed(2)).join("/")} s; CPU median ${(median(cpus) / 1000).toFixed(2)} s; heap ${heapMb.toFixed(0)} MiB, RSS ${rssMb.toFixed(0)} MiB after; load average ${loadavg()[0].toFixed(1)} on ${cpus_()} cores`,
      },
      {
        suite: "directory",
        metric: "csv load 1M rows, CPU",
        value: median(cpus) / 1000,
        unit: "s",
        target: "< 5 s",
        pass: median(cpus) < 5000,
        note: `process.cpuUsage user+system (includes V8's parallel GC threads); runs ${cpus.map((x) => (x / 1000).toFixed(2)).join("/")} s`,
      },
      { suite: "directory", metric: "cold look-ups/s at 10k rows", value: r10k, unit: "/s", note: "first look-up of each row (parsed again from the text); SMTP/proxy/DOMAIN\\sam/GUID in turn; 3 runs" },
      {
        suite: "directory",
        metric: "cold look-ups/s at 1M rows",
        value: r1m,
        unit: "/s",
        target: "O(1): within 3x of 10k",
        pass: r1m * 3 >= r10k,
        note: `ratio 10k/1M = ${(r10k / r1m).toFixed(2)}`,
      },
      { suite: "directory", metric: "cached look-ups/s at 1M rows", value: median(cached), unit: "/s", note: "a 4,000-mailbox working set asked again (rows kept parsed); 5 runs" },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
