// POP3/IMAP4 proxy speed, against real Dovecot, with curl (C) as the client so the client is not the
// bottleneck: fetch a 50 MB mailbox (50 messages of 1 MB) over one IMAP connection directly from
// Dovecot and through the proxy, alternating, several runs. Target: proxy ≥ 0.8 × direct (medians).
// Also log-in-and-quit connections per second (a separate Node process drives concurrent clients).
import { execFile, spawn } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { dovecotAvailable } from "../test/mail/dovecot.js";
import { USERS, makeMessage, startMailWorld } from "../test/mail/fixture.js";
import { median, type BenchRow } from "./types.js";

const MESSAGES = 50;
const MESSAGE_BYTES = 1_000_000;
const RUNS = 5;
const CPS_SECONDS = 4;
const CPS_CONCURRENCY = 16;

function curlFetch(port: number): Promise<{ seconds: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const url = `imap://127.0.0.1:${port}/INBOX/;MAILINDEX=[1-${MESSAGES}]`;
    const started = process.hrtime.bigint();
    execFile(
      "curl",
      ["-sS", "--max-time", "120", "-u", `${USERS.alice.user}:${USERS.alice.password}`, url, "-o", "/dev/null", "-w", "%{size_download}\\n"],
      { maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`curl: ${stderr || err.message}`));
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const bytes = stdout
          .trim()
          .split("\n")
          .reduce((a, l) => a + Number(l), 0);
        resolve({ seconds, bytes });
      },
    );
  });
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

// The load generator runs in its own process so it does not share the proxy's event loop.
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

export default async function bench(): Promise<BenchRow[]> {
  if (!dovecotAvailable()) {
    return [{ suite: "mail", metric: "skipped: Dovecot (dovecot-imapd) is not installed", value: 0, unit: "" }];
  }
  const messages = Array.from({ length: MESSAGES }, (_, i) => makeMessage(i + 1, MESSAGE_BYTES));
  const total = messages.reduce((a, m) => a + m.length, 0);
  const w = await startMailWorld({ messages: { alice: messages }, dovecotProcessLimit: 200 });
  try {
    // Warm up both paths (Dovecot builds its index on first access).
    await curlFetch(w.east.imapPort);
    await curlFetch(w.ports.imap);
    const direct: number[] = [];
    const proxied: number[] = [];
    const ratios: number[] = [];
    // CPU the proxy (this process) spends per MB relayed: what it adds to a CPU-bound machine.
    const cpuMsPerMb: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const d = await curlFetch(w.east.imapPort);
      const c0 = process.cpuUsage();
      const p = await curlFetch(w.ports.imap);
      const c = process.cpuUsage(c0);
      cpuMsPerMb.push((c.user + c.system) / 1000 / (p.bytes / 1e6));
      if (d.bytes < total || p.bytes < total) throw new Error(`short fetch: direct ${d.bytes}, proxy ${p.bytes}, expected ${total}`);
      direct.push(d.bytes / d.seconds / 1e6);
      proxied.push(p.bytes / p.seconds / 1e6);
      ratios.push(proxied[i] / direct[i]);
    }
    const ratio = median(proxied) / median(direct);
    const sDirect: number[] = [];
    const sProxied: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const d = await streamFetch(w.east.imapPort);
      const p = await streamFetch(w.ports.imap);
      sDirect.push(d.bytes / d.seconds / 1e6);
      sProxied.push(p.bytes / p.seconds / 1e6);
    }
    const cpsDirect = await loadgen(w.east.imapPort, "login");
    const cpsProxy = await loadgen(w.ports.imap, "login");
    const cpsPreAuth = await loadgen(w.ports.imap, "logout");
    const mb = (total / 1e6).toFixed(0);
    return [
      { suite: "mail", metric: `IMAP fetch ${mb} MB direct from Dovecot (curl)`, value: median(direct), unit: "MB/s", note: `${RUNS} runs` },
      { suite: "mail", metric: `IMAP fetch ${mb} MB through the proxy (curl)`, value: median(proxied), unit: "MB/s", note: `${RUNS} runs` },
      {
        suite: "mail",
        metric: "proxy / direct throughput",
        value: ratio,
        unit: "x",
        target: ">= 0.8",
        pass: ratio >= 0.8,
        note: `per-run ratios ${ratios.map((r) => r.toFixed(2)).join(" ")}; proxy CPU ${median(cpuMsPerMb).toFixed(1)} ms/MB; load avg ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs`,
      },
      { suite: "mail", metric: `IMAP FETCH 1:* ${mb} MB in one response, direct (Node client)`, value: median(sDirect), unit: "MB/s", note: `${RUNS} runs` },
      {
        suite: "mail",
        metric: `IMAP FETCH 1:* ${mb} MB in one response, through the proxy`,
        value: median(sProxied),
        unit: "MB/s",
        note: `ratio ${(median(sProxied) / median(sDirect)).toFixed(2)}`,
      },
      { suite: "mail", metric: `IMAP log-in-and-quit direct (${CPS_CONCURRENCY} concurrent)`, value: cpsDirect.perSecond, unit: "conn/s", note: `${cpsDirect.failed} failed` },
      { suite: "mail", metric: `IMAP log-in-and-quit through the proxy (${CPS_CONCURRENCY} concurrent)`, value: cpsProxy.perSecond, unit: "conn/s", note: `${cpsProxy.failed} failed` },
      { suite: "mail", metric: "proxy connect + greeting + LOGOUT (no back end)", value: cpsPreAuth.perSecond, unit: "conn/s", note: `${cpsPreAuth.failed} failed` },
    ];
  } finally {
    await w.stop();
  }
}
