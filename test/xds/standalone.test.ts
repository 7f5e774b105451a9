// `cas-gateway standalone` as a user runs it (a child process via tsx) on a copy of examples/contoso:
// admin endpoints answer, an ADS client receives resources, a manifest edit is pushed as a new
// version, and SIGTERM shuts it down cleanly. No Envoy binary exists on this machine: the command
// is run with --envoy auto and must say so and keep running as control plane + sidecar.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TYPE_URLS } from "../../operator/xds/server/resources.js";
import { GATEWAY_STATE_TYPE_URL } from "../../model/gateway-state.js";
import { decodeEnvoy } from "../../model/ads-protos.js";
import { adsClient, TestStream, type SotwResponse } from "./ads-test-client.js";

let dir: string;
let child: ChildProcess;
let out = "";
let err = "";
const ports: Record<string, number> = {};

async function get(path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${ports.admin}${path}`);
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cas-standalone-"));
  await cp("examples/contoso", join(dir, "org"), { recursive: true });
  child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "cli/main.ts",
      "standalone",
      "--manifests",
      join(dir, "org"),
      "--directory",
      join(dir, "org", "mailboxes.csv"),
      "--site",
      "usa",
      ...["--xds-port", "0", "--authz-port", "0", "--admin-port", "0", "--pop3-port", "0", "--imap4-port", "0"],
      // Envoy's own ports too (issue 25: 0 left the translation failing and /readyz at 503).
      ...["--http-port", "0", "--https-port", "0", "--envoy-admin-port", "0"],
      ...["--envoy", "auto", "--no-health-checks", "--bootstrap", join(dir, "envoy.yaml"), "--log-level", "info"],
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PATH: "/usr/bin:/bin" } },
  );
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const started = Date.now();
  while (!out.includes("Ctrl-C to stop")) {
    if (child.exitCode !== null) throw new Error(`standalone exited ${child.exitCode}: ${err.slice(-2000)}`);
    if (Date.now() - started > 90_000) throw new Error(`standalone did not start: ${out}\n${err.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  ports.xds = Number(/ADS \(xDS\) server\s+127\.0\.0\.1:(\d+)/.exec(out)![1]);
  ports.admin = Number(/(?:organisation page|admin)\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
  const envoy = /Envoy listeners\s+http 127\.0\.0\.1:(\d+), https 127\.0\.0\.1:(\d+), admin 127\.0\.0\.1:(\d+)/.exec(out);
  if (!envoy) throw new Error(`no Envoy listener ports in: ${out}`);
  [ports.http, ports.https, ports.envoyAdmin] = envoy.slice(1).map(Number);
});

afterAll(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

describe("cas-gateway standalone", () => {
  it("says that no Envoy is on PATH and keeps running as control plane + sidecar", async () => {
    expect(out).toMatch(/Envoy\s+not started: no envoy binary on PATH/);
    expect(await readFile(join(dir, "envoy.yaml"), "utf8")).toContain(`port_value: ${ports.xds}`);
    expect((await get("/healthz")).status).toBe(200);
    await expect.poll(async () => (await get("/readyz")).status, { timeout: 20_000 }).toBe(200);
    expect((await get("/metrics")).body).toContain("cas_xds_streams");
  });

  it("resolves Envoy's ports given as 0 to distinct free ports, used by the listeners and the bootstrap", async () => {
    const envoyPorts = [ports.http!, ports.https!, ports.envoyAdmin!];
    for (const p of envoyPorts) expect(p).toBeGreaterThan(0);
    expect(new Set(envoyPorts).size).toBe(3);
    expect(await readFile(join(dir, "envoy.yaml"), "utf8")).toContain(`port_value: ${ports.envoyAdmin}`);
    await expect.poll(async () => (await get("/readyz")).status, { timeout: 20_000 }).toBe(200);
    const dump = JSON.parse((await get("/config_dump")).body) as { translationProblems: unknown[]; resources?: { listeners: unknown[] } };
    expect(dump.translationProblems).toEqual([]);
    expect(JSON.stringify(dump.resources?.listeners)).toContain(`"port_value":${ports.http}`);
  });

  it("serves /config_dump and resources over ADS; a manifest edit is pushed as a new version", async () => {
    const dump = JSON.parse((await get("/config_dump")).body) as {
      topologyVersion: string;
      snapshot: Record<string, { version: string; resources: { name: string }[] }>;
    };
    expect(dump.topologyVersion).toMatch(/\w+/);
    const clusters = dump.snapshot[TYPE_URLS.cluster];
    expect(clusters?.resources.length).toBeGreaterThan(0);

    const s = new TestStream<SotwResponse>(adsClient(ports.xds).StreamAggregatedResources());
    s.send({ node: { id: "test-envoy", cluster: "usa" }, type_url: TYPE_URLS.cluster });
    const r1 = await s.next(30_000);
    expect(r1.version_info).toBe(clusters!.version);
    expect(r1.resources.length).toBe(clusters!.resources.length);
    const names = r1.resources.map((a) => String(decodeEnvoy("envoy.config.cluster.v3.Cluster", a.value).name));
    expect(names).toContain("server/europe-cas01/owa");
    s.send({ type_url: TYPE_URLS.cluster, version_info: r1.version_info, response_nonce: r1.nonce });
    s.send({ type_url: GATEWAY_STATE_TYPE_URL });
    const g1 = await s.next(30_000);
    expect(g1.type_url).toBe(GATEWAY_STATE_TYPE_URL);
    s.send({ type_url: GATEWAY_STATE_TYPE_URL, version_info: g1.version_info, response_nonce: g1.nonce });

    const file = join(dir, "org", "site-europe.yaml");
    const text = await readFile(file, "utf8");
    await writeFile(file, text.replace('internalUrl: "https://cas01.europe.contoso.com/owa"', 'internalUrl: "https://cas01.europe.contoso.com:8443/owa"'));
    const r2 = await s.next(30_000);
    expect(r2.type_url).toBe(TYPE_URLS.cluster); // clusters first (make-before-break)
    expect(r2.version_info).not.toBe(r1.version_info);
    s.send({ type_url: TYPE_URLS.cluster, version_info: r2.version_info, response_nonce: r2.nonce });
    const g2 = await s.next(30_000);
    expect(g2.type_url).toBe(GATEWAY_STATE_TYPE_URL);
    expect(g2.version_info).not.toBe(g1.version_info);
    s.send({ type_url: GATEWAY_STATE_TYPE_URL, version_info: g2.version_info, response_nonce: g2.nonce });
    const dump2 = JSON.parse((await get("/config_dump")).body) as { topologyVersion: string; fleet: { ackedTopologyVersion: string | null } };
    expect(dump2.topologyVersion).not.toBe(dump.topologyVersion);
    await expect.poll(async () => JSON.parse((await get("/config_dump")).body).fleet.ackedTopologyVersion).toBe(dump2.topologyVersion);
    s.close();
  });

  it("shuts down gracefully on SIGTERM", async () => {
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
