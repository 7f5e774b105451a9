// `npm run bench -- standalone-1m`: the 1,000,000-row mailbox directory in `standalone`
// (issue 20, finding 7): a generated 1,000,000-row Get-Mailbox | Export-Csv file (about 210 MB, plus
// the example's own rows) given to standalone with its DEFAULT --max-directory-bytes, loaded by the
// file provider's worker thread in the background while the process answers. Reports the time from
// start to a loaded directory (/readyz 200), the main thread's event-loop delay meanwhile (p99, max),
// the slowest Check answered during the load, and RSS afterwards; then checks that a Check for a
// mailbox of the export is decided from it. Too slow for the test suite; loopback only.
import { appendFileSync, closeSync, cpSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, utimesSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { pino } from "pino";
import { StandaloneFlags, startStandalone } from "../cli/commands/standalone.js";
import { DEFAULT_MAX_DIRECTORY_BYTES } from "../operator/provider/file-provider.js";
import { authzClient, envoyCheckRequest, headerMap } from "../test/sidecar/envoy-request.js";
import { writeMailboxCsv } from "./directory.bench.js";
import type { BenchRow } from "./types.js";
import { EVERY_PORT_FREE } from "../test/standalone-ports.js";

const ROWS = Number(process.env.STANDALONE_DIRECTORY_ROWS ?? 1_000_000);

export default async function bench(): Promise<BenchRow[]> {
  const root = mkdtempSync(join(tmpdir(), "cas-bench-1m-"));
  try {
    const org = join(root, "org");
    cpSync("examples/contoso", org, { recursive: true });
    const csv = join(root, "mailboxes.csv");
    await writeMailboxCsv(csv, ROWS);
    // The example's own mailboxes too (alice at usa), after the generated ones.
    const own = readFileSync(join(org, "mailboxes.csv"), "utf8").split(/\r?\n/).slice(2).filter(Boolean);
    appendFileSync(csv, `${own.join("\r\n")}\r\n`);
    rmSync(join(org, "mailboxes.csv"));
    const fd = openSync(csv, "r");
    fsyncSync(fd);
    closeSync(fd);
    // Written a while ago: no settle wait is timed.
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(csv, old, old);
    const bytes = statSync(csv).size;
    if (bytes > DEFAULT_MAX_DIRECTORY_BYTES) throw new Error(`${bytes} bytes: over the default --max-directory-bytes`);

    const flags = StandaloneFlags.parse({
      manifests: org,
      directory: csv,
      ...EVERY_PORT_FREE,
      healthChecks: false,
      envoy: "off",
      bootstrap: join(root, "envoy.yaml"),
      logLevel: "silent",
    });
    const h = monitorEventLoopDelay({ resolution: 5 });
    const t0 = performance.now();
    const gw = await startStandalone(flags, pino({ level: "silent" }));
    h.enable();
    const admin = `http://127.0.0.1:${gw.adminPort}`;
    const client = authzClient(gw.authzPort);
    const alice = () => envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { authorization: `Basic ${Buffer.from("alice@contoso.com:x").toString("base64")}` } });
    let slowestCheck = 0;
    let checks = 0;
    let loadedMs = 0;
    try {
      // Poll /readyz and send a Check every 50 ms until the directory is in force (bounded: 10 min).
      for (const end = Date.now() + 600_000; Date.now() < end; ) {
        const c0 = performance.now();
        await client.check(alice());
        slowestCheck = Math.max(slowestCheck, performance.now() - c0);
        checks++;
        const ready = await fetch(`${admin}/readyz`);
        const body = await ready.text();
        if (ready.status === 200) {
          loadedMs = performance.now() - t0;
          break;
        }
        if (!/mailbox directory still loading|no mailbox directory loaded/.test(body)) throw new Error(`not ready for another reason: ${body}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      h.disable();
      if (!loadedMs) throw new Error("the directory did not load within 10 minutes");
      const dump = (await (await fetch(`${admin}/config_dump`)).json()) as { provider: { directory: { rows: number } } };
      const rows = dump.provider.directory.rows;
      if (rows !== ROWS + own.length) throw new Error(`loaded ${rows} rows, expected ${ROWS + own.length}`);
      const r = await client.check(alice());
      const target = headerMap(r.ok_response?.headers)["x-cas-target-server"];
      if (target !== "usa-cas01") throw new Error(`alice after the load: ${JSON.stringify(r.ok_response ?? r.denied_response)}`);
      const rss = process.memoryUsage().rss / 2 ** 20;
      const note = `${rows.toLocaleString("en-US")} rows, ${(bytes / 1e6).toFixed(0)} MB under the default --max-directory-bytes (${DEFAULT_MAX_DIRECTORY_BYTES / 2 ** 20} MiB); load average ${loadavg()[0].toFixed(1)}`;
      return [
        { suite: "standalone-1m", metric: "1M-row CSV: start to loaded (/readyz 200)", value: loadedMs / 1000, unit: "s", note },
        { suite: "standalone-1m", metric: "event-loop delay p99 during the load", value: h.percentile(99) / 1e6, unit: "ms", target: "< 50 ms", pass: h.percentile(99) / 1e6 < 50 },
        { suite: "standalone-1m", metric: "event-loop delay max during the load", value: h.max / 1e6, unit: "ms", target: "< 500 ms", pass: h.max / 1e6 < 500 },
        { suite: "standalone-1m", metric: "slowest Check answered during the load", value: slowestCheck, unit: "ms", note: `${checks} Checks (503 until the directory is in force), then alice decided from it (usa-cas01)` },
        { suite: "standalone-1m", metric: "RSS after the load", value: rss, unit: "MB" },
      ];
    } finally {
      client.close();
      await gw.stop();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
