// `cas-gateway standalone` with health checks on stops within 2 s of SIGTERM (issue 23: it took
// 9–14 s). What held it: stop() waited for the prober's round in flight, and a round of probes that
// each wait for their timeout (2 s) at 16 at a time lasts many seconds. Here every server of the
// example organisation is given `address: 127.0.0.1:PORT` of a loopback listener that accepts and
// never answers, so every probe hangs until its timeout, exactly the slow case (and no traffic leaves
// the machine). The built command runs as a child process, as `npm start` runs it.
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

const ROOT = join(import.meta.dirname, "..");
let tmp: string;
let silent: net.Server;
const held: net.Socket[] = [];
let connections = 0;

beforeAll(async () => {
  if (!existsSync(join(ROOT, "dist", "cli", "main.js"))) throw new Error("build first (npm run build)");
  tmp = mkdtempSync(join(tmpdir(), "cas-shutdown-"));
  silent = net.createServer((s) => {
    connections++;
    held.push(s);
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
  const port = (silent.address() as net.AddressInfo).port;
  const org = join(tmp, "contoso");
  cpSync(join(ROOT, "examples", "contoso"), org, { recursive: true });
  for (const f of readdirSync(org).filter((n) => n.endsWith(".yaml"))) {
    const docs = parseAllDocuments(readFileSync(join(org, f), "utf8"));
    for (const d of docs) if (d.get("kind") === "ClientAccessServer") d.setIn(["spec", "address"], `127.0.0.1:${port}`);
    writeFileSync(join(org, f), docs.map((d) => d.toString()).join(""));
  }
});

afterAll(async () => {
  for (const s of held) s.destroy();
  await new Promise<void>((r) => silent.close(() => r()));
  rmSync(tmp, { recursive: true, force: true });
});

describe("standalone shutdown with health checks on", () => {
  it("exits within 2 s of SIGTERM while a round of probes hangs", async () => {
    const org = join(tmp, "contoso");
    const args = ["standalone", "--manifests", org, "--directory", join(org, "mailboxes.csv"), "--site", "usa", "--envoy", "off", "--log-level", "warn", "--bootstrap", join(tmp, "envoy.yaml")];
    for (const p of ["--xds-port", "--authz-port", "--admin-port", "--pop3-port", "--imap4-port", "--http-port", "--https-port", "--envoy-admin-port", "--envoy-ready-port"]) args.push(p, "0");
    const child = spawn(process.execPath, [join(ROOT, "bin", "cas-gateway.js"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const exited = new Promise<{ code: number | null; at: number }>((r) => child.on("exit", (code) => r({ code, at: performance.now() })));
    try {
      // Started, and the prober's first round has probes in flight on the silent listener.
      for (const end = Date.now() + 60_000; !out.includes("Ctrl-C to stop.") || connections < 8; ) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`standalone did not start probing\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(out).not.toContain("not running: health prober");
      const sent = performance.now();
      child.kill("SIGTERM");
      const { code, at } = await exited;
      const ms = at - sent;
      console.info(`standalone with health checks on: exited ${Math.round(ms)} ms after SIGTERM (${connections} probe connections held open)`);
      expect(code, err).toBe(0);
      expect(ms, `stopped in ${Math.round(ms)} ms`).toBeLessThan(2000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  }, 90_000);
});
