// Issue 20, finding 2: what one unauthenticated ADS client can cost. Before: 20,000 requests with
// distinct unknown type_urls on one SotW stream walked all of the stream's types each time (~60 s of
// CPU), each type URL became a permanent Prometheus label (20,004 series), and a NACK's
// error_detail was logged whole (200 KB a line).
import { Writable } from "node:stream";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { Snapshot } from "../../operator/xds/server/snapshot.js";
import { AdsServer } from "../../operator/xds/server/server.js";
import { TYPE_URLS } from "../../operator/xds/server/resources.js";
import { adsClient, cluster, endpoints, node, TestStream, type SotwResponse } from "./ads-test-client.js";

let server: AdsServer | undefined;
afterEach(() => {
  server?.forceClose();
  server = undefined;
});

async function start(bounds = {}): Promise<{ port: number; registry: Registry; lines: string[] }> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      cb();
    },
  });
  const registry = new Registry();
  server = new AdsServer({ logger: pino({ level: "info" }, sink), registry, bounds });
  server.cache.setSnapshot("*", new Snapshot([cluster("a"), endpoints("a", 1001)], "t1"));
  return { port: await server.listen(0), registry, lines };
}

describe("ADS server bounds per client (issue 20, finding 2)", () => {
  it("unknown type_urls are ignored in constant time: no per-stream state, no metric series, one log line", async () => {
    const { port, registry, lines } = await start({ requestsPerSecond: 1e6, requestBurst: 1e6 });
    const s = new TestStream<SotwResponse>(adsClient(port).StreamAggregatedResources());
    s.send({ node: node("hostile"), type_url: TYPE_URLS.cluster });
    const r = await s.next(30_000);
    s.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce });
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) s.send({ type_url: `type.googleapis.com/bogus.T${i}` });
    // The stream still answers a real request after them (requests are handled in order).
    s.send({ type_url: TYPE_URLS.endpoint, resource_names: ["a"] });
    const eds = await s.next(60_000);
    const ms = performance.now() - t0;
    expect(eds.type_url).toBe(TYPE_URLS.endpoint);
    expect(ms).toBeLessThan(30_000); // ~60 s of CPU before
    const metrics = await registry.metrics();
    expect(metrics).not.toContain("bogus");
    expect(metrics).toMatch(/cas_xds_requests_refused_total\{mode="sotw",reason="unknown_type"\} 20000/);
    expect(metrics.length).toBeLessThan(20_000);
    expect(lines.filter((l) => l.includes("bogus"))).toHaveLength(1);
    expect(server!.streamStatus()[0]?.types.map((t) => t.typeUrl)).toEqual([TYPE_URLS.cluster, TYPE_URLS.endpoint]);
    s.close();
  });

  it("a client past its request rate is cut off with RESOURCE_EXHAUSTED", async () => {
    const { port, registry } = await start({ requestsPerSecond: 20, requestBurst: 50 });
    const s = new TestStream<SotwResponse>(adsClient(port).StreamAggregatedResources());
    s.send({ node: node("flood"), type_url: TYPE_URLS.cluster });
    await s.next(30_000);
    for (let i = 0; i < 500; i++) s.send({ type_url: TYPE_URLS.cluster, response_nonce: "stale" });
    await expect.poll(() => s.ended, { timeout: 30_000 }).toBe(true);
    expect(String(s.error?.message)).toMatch(/RESOURCE_EXHAUSTED|8 /);
    expect(await registry.metrics()).toMatch(/cas_xds_requests_refused_total\{mode="sotw",reason="rate"\} 1/);
  });

  it("a request larger than the bound ends the stream; a NACK's error_detail is cut in the log", async () => {
    const { port, lines } = await start({ maxRequestBytes: 64 * 1024 });
    const s = new TestStream<SotwResponse>(adsClient(port).StreamAggregatedResources());
    s.send({ node: node("nack"), type_url: TYPE_URLS.cluster });
    const r = await s.next(30_000);
    s.send({ type_url: r.type_url, version_info: "", response_nonce: r.nonce, error_detail: { code: 3, message: "x".repeat(60_000) } });
    await expect.poll(() => lines.some((l) => l.includes("NACK")), { timeout: 30_000 }).toBe(true);
    const nack = lines.find((l) => l.includes("NACK"))!;
    expect(nack.length).toBeLessThan(2000);
    expect(nack).toContain("(60000 characters, cut)");
    s.send({ type_url: TYPE_URLS.endpoint, resource_names: ["n".repeat(100 * 1024)] });
    await expect.poll(() => s.ended, { timeout: 30_000 }).toBe(true);
    expect(String(s.error?.message)).toMatch(/RESOURCE_EXHAUSTED|larger than max/);
  });
});
