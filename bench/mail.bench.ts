// POP3/IMAP4 proxy speed, against real Dovecot, with curl (C) as the client so the client is not the
// bottleneck. The proxy runs as its own process, the real `cas-gateway mail-proxy` command as the
// image runs it: the compiled build (bin/cas-gateway.js -> dist/, rebuilt here when a source is
// newer) with the image's environment (the Dockerfile's runtime ENV lines: NODE_ENV, glibc malloc
// settings), fed from manifest files and a CSV directory. This process only orchestrates (it forks
// curl, and forking from the proxy's own process would make the proxy's pages fault again on every fork).
//
// Fetch a 50 MB mailbox over one IMAP connection (curl: one FETCH per message) directly from Dovecot
// and through the proxy: same client, same URL, same mailbox, alternating, several runs; medians.
// Two mailbox shapes: 50 messages of 1 MB, and a mix of sizes like a real mailbox (mostly small
// messages, a few with large attachments), where per-message round trips weigh more.
// Target: proxy ≥ 0.8 × direct (median of the per-run ratios, on each shape). For comparison, the
// same fetch through two bare Node relays (no protocol) in their own processes: stream.pipe, and
// the proxy's own data path (onread into a reused buffer), the least a Node hop costs.
// CPU per process (curl, proxy with user/system split, Dovecot), from /proc, totalled over the
// runs, shows where time goes.
// Then the same fetches again with the proxy on a CPU of its own, as where it runs in its own pod:
// curl and Dovecot pinned to CPU 0 in every path, the proxy and each relay to CPU 1 (taskset). This
// separates what the hop costs from the three processes sharing two CPUs (informational; the target
// stays on the shared measurement above).
// Also log-in-and-quit connections per second (a separate Node process drives concurrent clients).
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { removeDir, startDovecot, dovecotAvailable, type Dovecot } from "../test/mail/dovecot.js";
import { USERS, makeMessage, writeMailOrgFiles } from "../test/mail/fixture.js";
import { imageRuntimeEnv } from "./image-env.js";
import { median, type BenchRow } from "./types.js";

const RUNS = 11;
const CPS_SECONDS = 4;
const CPS_CONCURRENCY = 16;
const MB = 1e6;

const MIA = { user: "mia@contoso.test", password: "mia-pw" }; // east: the mixed-size mailbox

/** 50 messages of 1 MB. */
function uniformMailbox(): Buffer[] {
  return Array.from({ length: 50 }, (_, i) => makeMessage(i + 1, 1_000_000));
}

/**
 * About 50 MB shaped like a real mailbox: ~70% plain messages of 2–20 KB, ~25% of 50–300 KB (HTML,
 * small attachments), ~5% of 1–5 MB (large attachments). Sizes from a fixed-seed generator.
 */
function mixedMailbox(): Buffer[] {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const out: Buffer[] = [];
  let total = 0;
  for (let i = 1; total < 50 * MB; i++) {
    const r = rnd();
    const size = r < 0.7 ? 2_000 + rnd() * 18_000 : r < 0.95 ? 50_000 + rnd() * 250_000 : 1_000_000 + rnd() * 4_000_000;
    const m = makeMessage(i, Math.round(Math.min(size, 50 * MB - total + 1)));
    out.push(m);
    total += m.length;
  }
  return out;
}

// ------------------------------------------------------------------ CPU accounting from /proc

const TICK = 100; // USER_HZ (getconf CLK_TCK) on Linux
function statFields(pid: number | "self"): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" "); // [0] = state (field 3)
  } catch {
    return undefined;
  }
}
/** utime and stime of a process (all its threads), in seconds. */
function ownCpu(pid: number): { user: number; sys: number } {
  const f = statFields(pid);
  return f ? { user: Number(f[11]) / TICK, sys: Number(f[12]) / TICK } : { user: 0, sys: 0 };
}
/** CPU of this process's reaped children (the curl runs). */
function reapedChildrenCpu(): number {
  const f = statFields("self")!;
  return (Number(f[13]) + Number(f[14])) / TICK;
}
/** Dovecot master + its live children + its reaped children (the per-login imap processes). */
function dovecotCpu(master: number): number {
  const f = statFields(master);
  if (!f) return 0;
  let t = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICK;
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const c = statFields(Number(d));
    if (c && Number(c[1]) === master) t += (Number(c[11]) + Number(c[12])) / TICK;
  }
  return t;
}

// ------------------------------------------------------------------ CPU placement

/** Processes and their descendants, from the parent links in /proc (read once). */
function processTree(...roots: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (!f) continue;
    const list = children.get(Number(f[1])) ?? [];
    list.push(Number(d));
    children.set(Number(f[1]), list);
  }
  const out = [...roots];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

/** Restrict processes (every thread of each) to a taskset CPU list; children forked later inherit it. */
function pin(pids: readonly number[], cpuList: string): void {
  for (const pid of pids) {
    try {
      execFileSync("taskset", ["-a", "-p", "-c", cpuList, String(pid)], { stdio: "ignore" });
    } catch {
      if (existsSync(`/proc/${pid}`)) throw new Error(`taskset -a -p -c ${cpuList} ${pid} failed`);
    }
  }
}

/** This process's CPU list as taskset prints it ("0,1", "0-3"); undefined without taskset. */
function cpuList(): string | undefined {
  try {
    const out = execFileSync("taskset", ["-c", "-p", String(process.pid)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return out.slice(out.lastIndexOf(":") + 1).trim();
  } catch {
    return undefined;
  }
}

interface Cpu {
  curl: number;
  /** The process in the path (the mail proxy or a comparison relay): user and system time. */
  proxyUser: number;
  proxySys: number;
  dovecot: number;
}

// ------------------------------------------------------------------ the proxy process

interface ProxyProcess {
  readonly pid: number;
  readonly imapPort: number;
  stop(): Promise<void>;
}

const ROOT = join(import.meta.dirname, "..");

/** Source files of the build (tsconfig.build.json: crds, model, operator, sidecar, cli; no tests) and the dist/ file each compiles to. */
function buildSources(dir = ROOT, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (dir !== ROOT || ["crds", "model", "operator", "sidecar", "cli"].includes(e.name)) buildSources(p, out);
    } else if (dir !== ROOT && e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") && !e.name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** The compiled build the image runs: run `npm run build` when dist/ is missing or older than a source. */
function ensureBuild(): string {
  const stale = buildSources().filter((src) => {
    const js = join(ROOT, "dist", relative(ROOT, src)).replace(/\.ts$/, ".js");
    return !existsSync(js) || statSync(js).mtimeMs < statSync(src).mtimeMs;
  });
  if (stale.length) {
    process.stderr.write(`bench: mail: dist/ is missing or older than ${stale.length} source file(s) (e.g. ${relative(ROOT, stale[0])}); running npm run build\n`);
    try {
      execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      const out = (err as { stdout?: Buffer; stderr?: Buffer }).stdout?.toString() ?? "";
      throw new Error(`mail bench measures the compiled build, and "npm run build" failed:\n${out.slice(-2000)}`);
    }
  }
  return join(ROOT, "bin", "cas-gateway.js");
}

async function startProxyProcess(bin: string, dir: string, east: Dovecot, west: Dovecot): Promise<ProxyProcess & { env: Record<string, string> }> {
  const files = await writeMailOrgFiles(dir, east, west, `"mia","${MIA.user}","${MIA.user}","mia","db-east","SMTP:${MIA.user}"\n`);
  const env = imageRuntimeEnv();
  if (!env.NODE_ENV) throw new Error("mail bench: no ENV NODE_ENV=... in the Dockerfile's runtime stage");
  const child: ChildProcess = spawn(
    process.execPath,
    [
      bin,
      "mail-proxy",
      "--manifests",
      files.manifests,
      "--directory",
      files.csv,
      "--imap",
      "127.0.0.1:0",
      "--front-door-host",
      "east.contoso.test",
      "--admin",
      "127.0.0.1:0",
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", "pipe", "pipe"], cwd: ROOT, env: { ...process.env, ...env } },
  );
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const end = Date.now() + 60_000;
  while (!/admin on [\d.]+:\d+/.test(out)) {
    if (Date.now() > end || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`mail-proxy did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const imapPort = Number(/^imap on [\d.]+:(\d+)$/m.exec(out)?.[1]);
  return {
    pid: child.pid!,
    imapPort,
    env,
    async stop() {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await gone;
      clearTimeout(t);
    },
  };
}

/**
 * For comparison only, each in its own process in front of the same Dovecot, no protocol: what one
 * more Node hop costs by itself. "pipe": the simplest relay, stream.pipe both ways (a fresh 64 KiB
 * allocation per read). "onread": the least a Node relay does, the proxy's data path without the
 * protocol: server-to-client reads into a reused 1 MiB buffer (one per connection, reused across
 * connections), each written straight to the client, the reader paused while a write is pending.
 */
const RELAYS = {
  pipe: `
const net = require("node:net");
const target = Number(process.argv[1]);
const srv = net.createServer((c) => {
  const s = net.connect(target, "127.0.0.1");
  c.setNoDelay(true); s.setNoDelay(true);
  c.pipe(s); s.pipe(c);
  c.on("error", () => s.destroy()); s.on("error", () => c.destroy());
});
srv.listen(0, "127.0.0.1", () => process.stdout.write(srv.address().port + "\\n"));
`,
  onread: `
const net = require("node:net");
const target = Number(process.argv[1]);
const idle = [];
const srv = net.createServer((c) => {
  const buf = idle.pop() ?? Buffer.allocUnsafeSlow(1 << 20);
  let waiting = false, closed = 0;
  const written = () => { if (waiting && c.writableLength === 0) { waiting = false; s.resume(); } };
  const s = net.connect({ port: target, host: "127.0.0.1", onread: { buffer: buf, callback: (n, b) => {
    c.write(b.subarray(0, n), written);
    if (c.writableLength > 0) { waiting = true; s.pause(); }
  } } });
  c.setNoDelay(true); s.setNoDelay(true);
  c.pipe(s);
  s.on("end", () => c.end());
  const gone = () => { if (++closed === 2) idle.push(buf); };
  c.on("close", gone); s.on("close", gone);
  c.on("error", () => s.destroy()); s.on("error", () => c.destroy());
});
srv.listen(0, "127.0.0.1", () => process.stdout.write(srv.address().port + "\\n"));
`,
};
type Relay = keyof typeof RELAYS;

async function startRelay(relay: Relay, target: number): Promise<ProxyProcess> {
  const child = spawn(process.execPath, ["-e", RELAYS[relay], String(target)], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once("exit", () => reject(new Error(`${relay} relay exited`)));
  });
  return {
    pid: child.pid!,
    imapPort: port,
    async stop() {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await gone;
    },
  };
}

// ------------------------------------------------------------------ clients

interface Fetch {
  seconds: number;
  cpu: Cpu;
}

/**
 * curl fetching messages 1..count of the INBOX over one connection, to /dev/null (or, with outDir,
 * to one file per message, for checking). curl 7.88's %{size_download} reads 0 for messages that
 * arrive in one buffer with their FETCH line, so the bytes are checked from files, not from curl.
 */
function curlFetch(port: number, user: { user: string; password: string }, count: number, pids: { proxy: number; dovecot: number }, outDir?: string): Promise<Fetch> {
  return new Promise((resolve, reject) => {
    const url = `imap://127.0.0.1:${port}/INBOX/;MAILINDEX=[1-${count}]`;
    const out = outDir ? ["-o", join(outDir, "m_#1"), "--create-dirs"] : ["-o", "/dev/null"];
    const c0 = { curl: reapedChildrenCpu(), proxy: ownCpu(pids.proxy), dovecot: dovecotCpu(pids.dovecot) };
    const started = process.hrtime.bigint();
    execFile("curl", ["-sS", "--max-time", "120", "-u", `${user.user}:${user.password}`, url, ...out], (err, _stdout, stderr) => {
      if (err) return reject(new Error(`curl: ${stderr || err.message}`));
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // Let Dovecot reap the session's imap process so its CPU is counted in this run.
      setTimeout(() => {
        const proxy = ownCpu(pids.proxy);
        const cpu = {
          curl: reapedChildrenCpu() - c0.curl,
          proxyUser: proxy.user - c0.proxy.user,
          proxySys: proxy.sys - c0.proxy.sys,
          dovecot: dovecotCpu(pids.dovecot) - c0.dovecot,
        };
        resolve({ seconds, cpu });
      }, 100);
    });
  });
}

/** Fetch once into files and compare every message with what Dovecot holds. */
async function checkedFetch(port: number, user: { user: string; password: string }, messages: readonly Buffer[], pids: { proxy: number; dovecot: number }, dir: string): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  await curlFetch(port, user, messages.length, pids, dir);
  messages.forEach((m, i) => {
    const got = readFileSync(join(dir, `m_${i + 1}`));
    if (!got.equals(m)) throw new Error(`message ${i + 1} fetched from port ${port} differs from the mailbox (${got.length} vs ${m.length} bytes)`);
  });
  rmSync(dir, { recursive: true, force: true });
}

// One FETCH 1:* streaming the whole mailbox, read by a Node client in its own process: throughput
// without per-message round trips (informational; curl above is the target measurement).
const STREAM_CLIENT = `
const net = require("node:net");
const [port, user, pass] = process.argv.slice(1);
const s = net.connect(Number(port), "127.0.0.1");
let tail = "", bytes = 0, want = null, onDone = null;
s.on("data", (d) => {
  bytes += d.length;
  tail = (tail + d.toString("latin1", Math.max(0, d.length - 1000))).slice(-2000);
  if (want && want.test(tail)) { const f = onDone; want = null; onDone = null; tail = ""; f(); }
});
const cmd = (line, re) => new Promise((r) => { want = re; onDone = r; s.write(line); });
(async () => {
  await new Promise((r) => { want = /\\* OK.*\\r\\n/; onDone = r; });
  await cmd("a LOGIN " + JSON.stringify(user) + " " + JSON.stringify(pass) + "\\r\\n", /a (OK|NO)/);
  await cmd("b EXAMINE INBOX\\r\\n", /b OK/);
  bytes = 0;
  const t = process.hrtime.bigint();
  await cmd("f FETCH 1:* BODY.PEEK[]\\r\\n", /\\r\\nf OK/);
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  s.end("z LOGOUT\\r\\n");
  process.stdout.write(JSON.stringify({ bytes, seconds }));
})();
`;

function streamFetch(port: number): Promise<{ seconds: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["-e", STREAM_CLIENT, String(port), USERS.alice.user, USERS.alice.password], { timeout: 120_000 }, (err, stdout) => {
      if (err) return reject(err);
      resolve(JSON.parse(stdout) as { seconds: number; bytes: number });
    });
  });
}

// The load generator runs in its own process so it does not share anyone's event loop.
const LOADGEN = `
const net = require("node:net");
const [port, user, pass, seconds, conc, mode] = process.argv.slice(1);
const end = Date.now() + Number(seconds) * 1000;
let done = 0, failed = 0;
function one() {
  return new Promise((resolve) => {
    const s = net.connect(Number(port), "127.0.0.1");
    let buf = "", step = 0;
    const finish = (ok) => { ok ? done++ : failed++; s.destroy(); resolve(); };
    s.setTimeout(10000, () => finish(false));
    s.on("error", () => finish(false));
    s.on("data", (d) => {
      buf += d.toString("latin1");
      if (step === 0 && buf.includes("\\r\\n")) {
        step = 1; buf = "";
        s.write(mode === "login" ? "a LOGIN " + JSON.stringify(user) + " " + JSON.stringify(pass) + "\\r\\n" : "b LOGOUT\\r\\n");
        if (mode !== "login") step = 2;
      } else if (step === 1 && /^a (OK|NO|BAD)/m.test(buf)) {
        if (!/^a OK/m.test(buf)) return finish(false);
        step = 2; buf = ""; s.write("b LOGOUT\\r\\n");
      } else if (step === 2 && /^b OK/m.test(buf)) finish(true);
    });
  });
}
async function worker() { while (Date.now() < end) await one(); }
Promise.all(Array.from({ length: Number(conc) }, worker)).then(() => {
  process.stdout.write(JSON.stringify({ done, failed }));
});
`;

function loadgen(port: number, mode: "login" | "logout"): Promise<{ perSecond: number; failed: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", LOADGEN, String(port), USERS.alice.user, USERS.alice.password, String(CPS_SECONDS), String(CPS_CONCURRENCY), mode]);
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", () => {
      try {
        const r = JSON.parse(out) as { done: number; failed: number };
        resolve({ perSecond: r.done / CPS_SECONDS, failed: r.failed });
      } catch {
        reject(new Error(`load generator failed: ${out}`));
      }
    });
  });
}

// ------------------------------------------------------------------ the bench

type Path = "direct" | "proxied" | Relay;
const PATHS: readonly Path[] = ["direct", "proxied", "pipe", "onread"];
type ShapeResult = Record<Path, Fetch[]>;

async function fetchAll(
  ports: Record<Path, number>,
  user: { user: string; password: string },
  messages: readonly Buffer[],
  /** The process in each path (direct: none, 0), and Dovecot's master. */
  pids: Record<Path, number> & { dovecot: number },
  scratch: string,
): Promise<ShapeResult> {
  const n = messages.length;
  const at = (p: Path) => ({ proxy: pids[p], dovecot: pids.dovecot });
  // Check every path delivers the mailbox byte for byte; this also warms them up (Dovecot builds
  // its index on first access; page cache).
  for (const p of PATHS) await checkedFetch(ports[p], user, messages, at(p), join(scratch, p));
  const r: ShapeResult = { direct: [], proxied: [], pipe: [], onread: [] };
  for (let i = 0; i < RUNS; i++) {
    // Rotate the order, so no path always runs right after the same other one.
    for (let k = 0; k < PATHS.length; k++) {
      const p = PATHS[(i + k) % PATHS.length];
      r[p].push(await curlFetch(ports[p], user, n, at(p)));
    }
  }
  return r;
}

/** Throughput, per-run ratios to direct, and CPU per MB of one shape's fetches. */
function shapeStats(messages: readonly Buffer[], r: ShapeResult) {
  const total = messages.reduce((a, m) => a + m.length, 0);
  const mbps = (f: Fetch) => total / f.seconds / MB;
  return {
    total,
    mbps,
    ratiosOf: (p: Path) => r.direct.map((d, i) => mbps(r[p][i]) / mbps(d)),
    // CPU per MB over all runs together: /proc counts in 10 ms ticks, too coarse for one 50 MB run.
    cpu: (fs: Fetch[], k: keyof Cpu) => (fs.reduce((a, f) => a + f.cpu[k], 0) / ((fs.length * total) / MB)) * 1000,
  };
}

function shapeRows(label: string, messages: readonly Buffer[], r: ShapeResult, proxyNote: string): BenchRow[] {
  const { total, mbps, ratiosOf, cpu } = shapeStats(messages, r);
  const sizes = messages.map((m) => m.length);
  const ratios = ratiosOf("proxied");
  const ratio = median(ratios);
  const cpuNote = (fs: Fetch[], who: string) =>
    `CPU ms/MB (all runs): curl ${cpu(fs, "curl").toFixed(2)}, ${who} ${(cpu(fs, "proxyUser") + cpu(fs, "proxySys")).toFixed(2)} (user ${cpu(fs, "proxyUser").toFixed(2)} + sys ${cpu(fs, "proxySys").toFixed(2)}), dovecot ${cpu(fs, "dovecot").toFixed(2)}; wall ${(median(fs.map((f) => f.seconds)) * 1000).toFixed(0)} ms`;
  const directNote = (fs: Fetch[]) =>
    `CPU ms/MB (all runs): curl ${cpu(fs, "curl").toFixed(2)}, dovecot ${cpu(fs, "dovecot").toFixed(2)}; wall ${(median(fs.map((f) => f.seconds)) * 1000).toFixed(0)} ms`;
  const shape = `${messages.length} msgs, ${(total / MB).toFixed(1)} MB, sizes ${(Math.min(...sizes) / 1000).toFixed(0)} KB–${(Math.max(...sizes) / MB).toFixed(1)} MB, median ${(median(sizes) / 1000).toFixed(0)} KB`;
  const relayRow = (p: Relay, what: string): BenchRow => {
    const rs = ratiosOf(p);
    return {
      suite: "mail",
      metric: `for comparison: ${what} / direct, ${label}`,
      value: median(rs),
      unit: "x",
      note: `${median(r[p].map(mbps)).toFixed(0)} MB/s; per-run ratios ${rs.map((x) => x.toFixed(2)).join(" ")}; ${cpuNote(r[p], "relay")}`,
    };
  };
  return [
    { suite: "mail", metric: `IMAP fetch ${label} direct from Dovecot (curl)`, value: median(r.direct.map(mbps)), unit: "MB/s", note: `${RUNS} runs; ${shape}; ${directNote(r.direct)}` },
    { suite: "mail", metric: `IMAP fetch ${label} through the proxy process (curl)`, value: median(r.proxied.map(mbps)), unit: "MB/s", note: `${RUNS} runs; ${cpuNote(r.proxied, "proxy")}; ${proxyNote}` },
    {
      suite: "mail",
      metric: `proxy / direct throughput, ${label}`,
      value: ratio,
      unit: "x",
      target: ">= 0.8",
      pass: ratio >= 0.8,
      note: `median of per-run ratios ${ratios.map((x) => x.toFixed(2)).join(" ")}; load avg ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs`,
    },
    relayRow("pipe", "bare Node pipe relay"),
    relayRow("onread", "bare Node onread relay (reused 1 MiB buffer)"),
  ];
}

/** The pinned pass (proxy on a CPU of its own): one ratio row per shape, the relays in its note. */
function pinnedRow(label: string, messages: readonly Buffer[], r: ShapeResult): BenchRow {
  const { mbps, ratiosOf, cpu } = shapeStats(messages, r);
  const ratios = ratiosOf("proxied");
  return {
    suite: "mail",
    metric: `for comparison: proxy / direct, ${label}, proxy on its own CPU`,
    value: median(ratios),
    unit: "x",
    note:
      `curl + Dovecot on CPU 0 in every path, the proxy (or relay) on CPU 1; direct ${median(r.direct.map(mbps)).toFixed(0)} MB/s, proxy ${median(r.proxied.map(mbps)).toFixed(0)} MB/s; ` +
      `per-run ratios ${ratios.map((x) => x.toFixed(2)).join(" ")}; relays onread ${median(ratiosOf("onread")).toFixed(2)}, pipe ${median(ratiosOf("pipe")).toFixed(2)}; ` +
      `CPU ms/MB direct curl ${cpu(r.direct, "curl").toFixed(2)} + dovecot ${cpu(r.direct, "dovecot").toFixed(2)}, ` +
      `proxied curl ${cpu(r.proxied, "curl").toFixed(2)} + dovecot ${cpu(r.proxied, "dovecot").toFixed(2)} + proxy ${(cpu(r.proxied, "proxyUser") + cpu(r.proxied, "proxySys")).toFixed(2)}`,
  };
}

export default async function bench(): Promise<BenchRow[]> {
  if (!dovecotAvailable()) {
    return [{ suite: "mail", metric: "skipped: Dovecot (dovecot-imapd) is not installed", value: 0, unit: "" }];
  }
  const bin = ensureBuild();
  const uniform = uniformMailbox();
  const mixed = mixedMailbox();
  const dir = mkdtempSync(join(tmpdir(), "cas-mail-bench-"));
  const east = await startDovecot({
    dir: join(dir, "east"),
    name: "east",
    users: [
      { ...USERS.alice, messages: uniform },
      { ...MIA, messages: mixed },
    ],
    processLimit: 200,
  });
  const west = await startDovecot({ dir: join(dir, "west"), name: "west", users: [{ ...USERS.bob, messages: [] }] });
  let proxy: (ProxyProcess & { env: Record<string, string> }) | undefined;
  let pinnedFrom: string | undefined;
  const relays: Partial<Record<Relay, ProxyProcess>> = {};
  try {
    proxy = await startProxyProcess(bin, join(dir, "proxy"), east, west);
    const pipe = (relays.pipe = await startRelay("pipe", east.imapPort));
    const onread = (relays.onread = await startRelay("onread", east.imapPort));
    const pids = { direct: 0, proxied: proxy.pid, pipe: pipe.pid, onread: onread.pid, dovecot: east.pid };
    const proxyNote = `proxy: node bin/cas-gateway.js (dist/) with ${Object.entries(proxy.env).map(([k, v]) => `${k}=${v}`).join(" ")}`;
    const ports = { direct: east.imapPort, proxied: proxy.imapPort, pipe: pipe.imapPort, onread: onread.imapPort };
    const a = await fetchAll(ports, USERS.alice, uniform, pids, join(dir, "fetched"));
    const m = await fetchAll(ports, MIA, mixed, pids, join(dir, "fetched"));
    const sDirect: number[] = [];
    const sProxied: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const d = await streamFetch(east.imapPort);
      const p = await streamFetch(proxy.imapPort);
      sDirect.push(d.bytes / d.seconds / MB);
      sProxied.push(p.bytes / p.seconds / MB);
    }
    const cpsDirect = await loadgen(east.imapPort, "login");
    const cpsProxy = await loadgen(proxy.imapPort, "login");
    const cpsPreAuth = await loadgen(proxy.imapPort, "logout");
    // Last, so nothing above runs pinned: this process (which forks curl) and Dovecot's processes on
    // CPU 0, the proxy and the relays on CPU 1. This process is set back in `finally`.
    const pinnedRows: BenchRow[] = [];
    pinnedFrom = cpus().length >= 2 ? cpuList() : undefined;
    if (pinnedFrom === undefined) {
      pinnedRows.push({ suite: "mail", metric: "skipped: proxy on its own CPU (needs 2 CPUs and taskset)", value: 0, unit: "" });
    } else {
      pin([process.pid], "0");
      pin(processTree(east.pid), "0");
      pin(processTree(proxy.pid, pipe.pid, onread.pid), "1");
      const pa = await fetchAll(ports, USERS.alice, uniform, pids, join(dir, "fetched"));
      const pm = await fetchAll(ports, MIA, mixed, pids, join(dir, "fetched"));
      pinnedRows.push(pinnedRow("50 x 1 MB", uniform, pa), pinnedRow("50 MB mixed sizes", mixed, pm));
    }
    return [
      ...shapeRows("50 x 1 MB", uniform, a, proxyNote),
      ...shapeRows("50 MB mixed sizes", mixed, m, proxyNote),
      { suite: "mail", metric: "IMAP FETCH 1:* 50 x 1 MB in one response, direct (Node client)", value: median(sDirect), unit: "MB/s", note: `${RUNS} runs` },
      {
        suite: "mail",
        metric: "IMAP FETCH 1:* 50 x 1 MB in one response, through the proxy",
        value: median(sProxied),
        unit: "MB/s",
        note: `ratio ${(median(sProxied) / median(sDirect)).toFixed(2)}`,
      },
      { suite: "mail", metric: `IMAP log-in-and-quit direct (${CPS_CONCURRENCY} concurrent)`, value: cpsDirect.perSecond, unit: "conn/s", note: `${cpsDirect.failed} failed` },
      {
        suite: "mail",
        metric: `IMAP log-in-and-quit through the proxy (${CPS_CONCURRENCY} concurrent)`,
        value: cpsProxy.perSecond,
        unit: "conn/s",
        note: `${cpsProxy.failed} failed; ratio ${(cpsProxy.perSecond / cpsDirect.perSecond).toFixed(2)}`,
      },
      { suite: "mail", metric: "proxy connect + greeting + LOGOUT (no back end)", value: cpsPreAuth.perSecond, unit: "conn/s", note: `${cpsPreAuth.failed} failed` },
      ...pinnedRows,
    ];
  } finally {
    // The suites after this one run in this process: give it back the CPUs it had.
    if (pinnedFrom) pin([process.pid], pinnedFrom);
    await proxy?.stop();
    await Promise.all(Object.values(relays).map((r) => r.stop()));
    await Promise.all([east.stop(), west.stop()]);
    removeDir(dir);
  }
}
