// The preStop drain against a stand-in for Envoy's admin API (no Envoy binary here): the stand-in
// answers the three endpoints the drain uses as Envoy does (mutating ones only over POST, /stats in
// Envoy's text format) and lets the test decide how many connections Envoy still counts.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { AdminServer } from "../../operator/admin-server.js";
import { drainEnvoy, drainedRoute, parseTotalConnections } from "./envoy-drain.js";

const dir = mkdtempSync(join(tmpdir(), "envoy-drain-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function envoyAdminStandin(connections: () => number) {
  const calls: string[] = [];
  const server = http.createServer((req, res) => {
    calls.push(`${req.method} ${req.url}`);
    const path = (req.url ?? "").split("?")[0];
    if ((path === "/healthcheck/fail" || path === "/drain_listeners") && req.method !== "POST") {
      res.writeHead(400).end("This admin command is only supported via POST\n");
    } else if (path === "/healthcheck/fail" || path === "/drain_listeners") {
      res.writeHead(200).end("OK\n");
    } else if (path === "/stats") {
      res.writeHead(200).end(`server.total_connections: ${connections()}\n`);
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { calls, port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("envoy-drain (preStop)", () => {
  it("parses server.total_connections from Envoy's /stats text", () => {
    expect(parseTotalConnections("server.total_connections: 17\n")).toBe(17);
    expect(parseTotalConnections("server.total_connections_x: 3\n")).toBeUndefined();
  });

  it("fails health checks, drains gracefully, waits until Envoy counts no connection, then writes the done file the other hooks wait on", async () => {
    let conns = 3;
    const envoy = await envoyAdminStandin(() => conns);
    const doneFile = join(dir, "drained-1");
    const admin = new AdminServer({ registry: new Registry(), ready: () => true, routes: new Map([["/shutdown/drained", drainedRoute(doneFile)]]) });
    const { port } = await admin.start();
    try {
      // Envoy's preStop hook is already waiting when the drain starts.
      const waiting = fetch(`http://127.0.0.1:${port}/shutdown/drained?timeout=30`).then(async (r) => ({ status: r.status, body: await r.text(), at: Date.now() }));
      const drain = drainEnvoy({ admin: { host: "127.0.0.1", port: envoy.port }, timeoutMs: 20_000, minDrainMs: 100, pollMs: 50, doneFile });
      // The long poll ends after a while: connections go 3 -> 1 -> 0.
      await new Promise((r) => setTimeout(r, 400));
      conns = 1;
      await new Promise((r) => setTimeout(r, 300));
      const endedAt = Date.now();
      conns = 0;
      const r = await drain;
      expect(r).toMatchObject({ connectionsLeft: 0, timedOut: false, errors: [] });
      expect(envoy.calls[0]).toBe("POST /healthcheck/fail");
      expect(envoy.calls[1]).toBe("POST /drain_listeners?graceful");
      expect(envoy.calls.slice(2).every((c) => c.startsWith("GET /stats?filter="))).toBe(true);
      expect(envoy.calls.length).toBeGreaterThan(4);
      const w = await waiting;
      expect(w).toMatchObject({ status: 200, body: "drained\n" });
      expect(w.at).toBeGreaterThanOrEqual(endedAt);
      expect(JSON.parse(readFileSync(doneFile, "utf8"))).toMatchObject({ connectionsLeft: 0 });
    } finally {
      await admin.stop();
      await envoy.close();
    }
  });

  it("stops waiting at its time bound when connections stay open, and still writes the done file", async () => {
    const envoy = await envoyAdminStandin(() => 2);
    const doneFile = join(dir, "drained-2");
    try {
      const t0 = Date.now();
      const r = await drainEnvoy({ admin: { host: "127.0.0.1", port: envoy.port }, timeoutMs: 600, minDrainMs: 100, pollMs: 50, doneFile });
      expect(r).toMatchObject({ connectionsLeft: 2, timedOut: true });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(existsSync(doneFile)).toBe(true);
    } finally {
      await envoy.close();
    }
  });

  it("ends early when Envoy is already gone, reporting it", async () => {
    const envoy = await envoyAdminStandin(() => 0);
    await envoy.close(); // nothing listens on that port any more
    const r = await drainEnvoy({ admin: { host: "127.0.0.1", port: envoy.port }, timeoutMs: 30_000, minDrainMs: 0, pollMs: 10, doneFile: join(dir, "drained-3") });
    expect(r.connectionsLeft).toBeUndefined();
    expect(r.elapsedMs).toBeLessThan(10_000);
    expect(r.errors.join("\\n")).toMatch(/healthcheck\/fail/);
    expect(r.errors.join("\\n")).toMatch(/unreachable/);
  });

  it("/shutdown/drained gives up at its own bound and refuses a bad timeout", async () => {
    const admin = new AdminServer({ registry: new Registry(), ready: () => true, routes: new Map([["/shutdown/drained", drainedRoute(join(dir, "never"))]]) });
    const { port } = await admin.start();
    try {
      const r = await fetch(`http://127.0.0.1:${port}/shutdown/drained?timeout=1`);
      expect([r.status, await r.text()]).toEqual([200, "not drained (time bound)\n"]);
      const bad = await fetch(`http://127.0.0.1:${port}/shutdown/drained?timeout=99999`);
      expect(bad.status).toBe(400);
    } finally {
      await admin.stop();
    }
  });
});
