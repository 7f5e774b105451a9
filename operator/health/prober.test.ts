// The prober against real loopback peers: HTTP and HTTPS servers, POP3/IMAP4-style TCP greeters.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ApiObject } from "../../crds/index.js";
import { buildTopology } from "../../model/topology/build.js";
import { HealthProber, probeTargets, type HealthChangeEvent } from "./prober.js";

const API = "casgateway.io/v1alpha1" as const;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port));
    closers.push(
      () =>
        new Promise<void>((r) => {
          (server as http.Server).closeAllConnections?.();
          server.close(() => r());
        }),
    );
  });
}

/** An HTTP(S) server whose answer per path is set by the test; records Host headers. */
async function webServer(answers: Map<string, number>, secure?: { key: string; cert: string }) {
  const hosts: string[] = [];
  const handler: http.RequestListener = (req, res) => {
    hosts.push(req.headers.host ?? "");
    res.writeHead(answers.get(req.url ?? "") ?? 404, { "content-type": "text/plain" });
    res.end("ok");
  };
  const server = secure ? https.createServer(secure, handler) : http.createServer(handler);
  return { port: await listen(server), hosts };
}

/** A POP3/IMAP4-style server that sends `greeting` (or nothing) on connect. */
async function greeter(greeting: string | undefined, secure?: { key: string; cert: string }) {
  const sockets = new Set<net.Socket>();
  const onConn = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    if (greeting !== undefined) s.write(`${greeting}\r\n`);
    s.on("data", (d) => {
      if (/QUIT|LOGOUT/.test(d.toString())) s.end();
    });
  };
  const server = secure ? tls.createServer(secure, onConn) : net.createServer(onConn);
  closers.push(async () => {
    for (const s of sockets) s.destroy();
  });
  return listen(server);
}

function org(servers: { name: string; version: "2010" | "2016"; address: string; skip?: boolean; vdirs: Record<string, object> }[]): ApiObject[] {
  const objs: ApiObject[] = [{ apiVersion: API, kind: "ADSite", metadata: { name: "lab" }, spec: { hostnames: [] } }];
  for (const s of servers) {
    objs.push({
      apiVersion: API,
      kind: "ClientAccessServer",
      metadata: { name: s.name },
      spec: {
        site: "lab",
        fqdn: `${s.name}.lab.contoso.com`,
        exchangeVersion: s.version,
        roles: ["ClientAccess"],
        address: s.address,
        maintenance: false,
        tls: { insecureSkipVerify: s.skip ?? false },
      },
    });
    for (const [service, spec] of Object.entries(s.vdirs)) {
      objs.push({
        apiVersion: API,
        kind: "VirtualDirectory",
        metadata: { name: `${s.name}-${service.toLowerCase()}` },
        spec: { server: s.name, service, internalAuthenticationMethods: [], externalAuthenticationMethods: [], ...spec },
      } as ApiObject);
    }
  }
  const t = buildTopology(objs);
  expect(t.problems.filter((p) => p.severity === "error")).toEqual([]);
  return objs;
}
const topo = (o: ApiObject[]) => buildTopology(o);

let certDir: string;
let pem: { key: string; cert: string };
beforeAll(() => {
  certDir = mkdtempSync(join(tmpdir(), "cas-prober-cert-"));
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", join(certDir, "key.pem"), "-out", join(certDir, "cert.pem"), "-days", "2",
    "-subj", "/CN=web.lab.contoso.com", "-addext", "subjectAltName=DNS:web.lab.contoso.com,DNS:mail.lab.contoso.com",
  ], { stdio: "ignore" });
  pem = { key: readFileSync(join(certDir, "key.pem"), "utf8"), cert: readFileSync(join(certDir, "cert.pem"), "utf8") };
});
afterAll(() => rmSync(certDir, { recursive: true, force: true }));

describe("probeTargets", () => {
  it("healthcheck.htm under the first path segment for 2013+, the directory itself before; connect address from ServerInfo.address", () => {
    const t = topo(
      org([
        {
          name: "new",
          version: "2016",
          address: "127.0.0.1:8443",
          vdirs: {
            Owa: { internalUrl: "https://web.lab.contoso.com/owa" },
            Ews: { internalUrl: "https://web.lab.contoso.com/EWS/Exchange.asmx" },
            Pop3: { internalConnectionSettings: [{ hostname: "mail.lab.contoso.com", port: 995, encryption: "Ssl" }] },
          },
        },
        { name: "old", version: "2010", address: "old.lab.contoso.com", vdirs: { Owa: { internalUrl: "http://old.lab.contoso.com:8080/owa" } } },
      ]),
    );
    const targets = probeTargets(t);
    expect(targets.map((x) => [x.key, x.url, `${x.connectHost}:${x.connectPort}`, x.expect, x.tls])).toEqual([
      ["new/Ews", "https://web.lab.contoso.com/EWS/healthcheck.htm", "127.0.0.1:8443", "200", true],
      ["new/Owa", "https://web.lab.contoso.com/owa/healthcheck.htm", "127.0.0.1:8443", "200", true],
      ["new/Pop3", "mail.lab.contoso.com:995", "127.0.0.1:995", "200", true],
      ["old/Owa", "http://old.lab.contoso.com:8080/owa", "old.lab.contoso.com:8080", "below-500", false],
    ]);
    expect(probeTargets(t, "healthcheck").find((x) => x.key === "old/Owa")?.url).toBe("http://old.lab.contoso.com:8080/owa/healthcheck.htm");
  });
});

describe("HealthProber (real loopback peers)", () => {
  it("R-EAS-6: HTTP up, down after N failures, flapping stays up, healthy again after M successes", async () => {
    const answers = new Map([
      ["/owa/healthcheck.htm", 200],
      ["/EWS/healthcheck.htm", 200],
    ]);
    const web = await webServer(answers);
    const t = topo(
      org([
        {
          name: "cas1",
          version: "2016",
          address: `127.0.0.1:${web.port}`,
          vdirs: {
            Owa: { internalUrl: "http://web.lab.contoso.com/owa" },
            Ews: { internalUrl: "http://web.lab.contoso.com/EWS/Exchange.asmx" },
          },
        },
      ]),
    );
    const p = new HealthProber(t, { unhealthyThreshold: 2, healthyThreshold: 2, timeoutMs: 2000 });
    const events: HealthChangeEvent[] = [];
    p.subscribe((_down, e) => events.push(e));

    await p.probeOnce();
    expect(p.down()).toEqual([]);
    expect(web.hosts).toContain("web.lab.contoso.com");
    expect(p.lastResult("cas1/Owa")).toMatchObject({ ok: true, detail: "HTTP 200" });

    answers.set("/owa/healthcheck.htm", 503);
    await p.probeOnce();
    expect(p.down()).toEqual([]); // one failure is not enough
    await p.probeOnce();
    expect(p.down()).toEqual(["cas1/Owa"]);
    expect(p.view().isServiceHealthy("cas1", "Owa")).toBe(false);
    expect(p.view().isServiceHealthy("cas1", "Ews")).toBe(true);
    expect(p.view().isServerHealthy("cas1")).toBe(true);
    expect(events.at(-1)?.transitions).toEqual([{ key: "cas1/Owa", healthy: false, detail: "HTTP 503" }]);

    // Every service down: the server is down as a whole.
    answers.set("/EWS/healthcheck.htm", 500);
    await p.probeOnce();
    await p.probeOnce();
    expect(p.down()).toEqual(["cas1", "cas1/Ews", "cas1/Owa"]);

    // Recovery needs M consecutive successes; flapping never gets there.
    answers.set("/EWS/healthcheck.htm", 200);
    for (let i = 0; i < 6; i++) {
      answers.set("/owa/healthcheck.htm", i % 2 === 0 ? 200 : 503);
      await p.probeOnce();
      expect(p.down()).toContain("cas1/Owa");
    }
    answers.set("/owa/healthcheck.htm", 200);
    await p.probeOnce();
    await p.probeOnce();
    expect(p.down()).toEqual([]);

    // And a healthy target that flaps never goes down.
    const before = events.length;
    for (let i = 0; i < 6; i++) {
      answers.set("/owa/healthcheck.htm", i % 2 === 0 ? 503 : 200);
      await p.probeOnce();
      expect(p.down()).toEqual([]);
    }
    expect(events.length).toBe(before);

    const metrics = await p.registry.metrics();
    expect(metrics).toContain('cas_gateway_backend_healthy{server="cas1",service="Owa"} 1');
    expect(metrics).toMatch(/cas_gateway_health_probes_total\{server="cas1",service="Owa",result="failure"\} \d+/);
    expect(metrics).toContain("cas_gateway_backends_down 0");
  });

  it("a server that does not listen is down; pre-2013 directories count any answer below 500", async () => {
    const gone = net.createServer();
    const deadPort = await new Promise<number>((r) => gone.listen(0, "127.0.0.1", () => r((gone.address() as net.AddressInfo).port)));
    await new Promise<void>((r) => gone.close(() => r()));
    const answers = new Map([["/owa", 401]]);
    const web = await webServer(answers);
    const t = topo(
      org([
        { name: "dead", version: "2016", address: `127.0.0.1:${deadPort}`, vdirs: { Owa: { internalUrl: "http://dead.lab.contoso.com/owa" } } },
        { name: "e2010", version: "2010", address: `127.0.0.1:${web.port}`, vdirs: { Owa: { internalUrl: "http://e2010.lab.contoso.com/owa" } } },
      ]),
    );
    const p = new HealthProber(t, { unhealthyThreshold: 1, healthyThreshold: 1 });
    await p.probeOnce();
    expect(p.down()).toEqual(["dead", "dead/Owa"]);
    expect(p.lastResult("dead/Owa")).toMatchObject({ ok: false, detail: "ECONNREFUSED" });
    expect(p.lastResult("e2010/Owa")).toMatchObject({ ok: true, detail: "HTTP 401" });
    answers.set("/owa", 500);
    await p.probeOnce();
    expect(p.down()).toContain("e2010/Owa");
  });

  it("R-GEN-3: HTTPS validates the certificate unless insecureSkipVerify; SNI and Host are the URL host", async () => {
    const answers = new Map([["/owa/healthcheck.htm", 200]]);
    const web = await webServer(answers, pem);
    const objs = org([
      { name: "strict", version: "2016", address: `127.0.0.1:${web.port}`, vdirs: { Owa: { internalUrl: "https://web.lab.contoso.com/owa" } } },
      { name: "lax", version: "2016", address: `127.0.0.1:${web.port}`, skip: true, vdirs: { Owa: { internalUrl: "https://web.lab.contoso.com/owa" } } },
    ]);
    const p = new HealthProber(topo(objs), { unhealthyThreshold: 1 });
    await p.probeOnce();
    expect(p.down()).toEqual(["strict", "strict/Owa"]);
    expect(p.lastResult("strict/Owa")?.detail).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
    expect(p.lastResult("lax/Owa")).toMatchObject({ ok: true });

    // With the CA trusted, the strict server passes: the name checked is the URL host (SNI).
    const trusting = new HealthProber(topo(objs), { unhealthyThreshold: 1, ca: pem.cert });
    await trusting.probeOnce();
    expect(trusting.down()).toEqual([]);
    expect(web.hosts.every((h) => h === "web.lab.contoso.com")).toBe(true);
  });

  it("R-POP-5: POP3 and IMAP4 need their greeting; wrong greeting, silence and implicit TLS", async () => {
    const pop = await greeter("+OK POP3 server ready");
    const imap = await greeter("* OK IMAP4rev1 server ready");
    const bad = await greeter("-ERR go away");
    const silent = await greeter(undefined);
    const popTls = await greeter("+OK secure POP3", pem);
    const setting = (port: number, encryption = "None") => ({ internalConnectionSettings: [{ hostname: "mail.lab.contoso.com", port, encryption }] });
    const t = topo(
      org([
        { name: "m1", version: "2016", address: "127.0.0.1", vdirs: { Pop3: setting(pop), Imap4: setting(imap) } },
        { name: "m2", version: "2016", address: "127.0.0.1", vdirs: { Pop3: setting(bad), Imap4: setting(silent) } },
        { name: "m3", version: "2016", address: "127.0.0.1", skip: true, vdirs: { Pop3: setting(popTls, "Ssl"), Imap4: setting(pop) } },
      ]),
    );
    const p = new HealthProber(t, { unhealthyThreshold: 1, timeoutMs: 500 });
    await p.probeOnce();
    expect(p.down()).toEqual(["m2", "m2/Imap4", "m2/Pop3", "m3/Imap4"]);
    expect(p.lastResult("m1/Pop3")?.detail).toBe('greeting "+OK POP3 server ready"');
    expect(p.lastResult("m1/Imap4")?.ok).toBe(true);
    expect(p.lastResult("m2/Pop3")?.detail).toBe('unexpected greeting "-ERR go away"');
    expect(p.lastResult("m2/Imap4")?.detail).toBe("no greeting within 500 ms");
    expect(p.lastResult("m3/Pop3")?.ok).toBe(true);
    expect(p.lastResult("m3/Imap4")?.detail).toMatch(/unexpected greeting "\+OK/); // a POP3 server is not an IMAP4 server
  });

  it("start() probes on its interval and publishes changes; stop() ends it; setTopology keeps unchanged targets", async () => {
    const answers = new Map([["/owa/healthcheck.htm", 503]]);
    const web = await webServer(answers);
    const objs = org([{ name: "c", version: "2016", address: `127.0.0.1:${web.port}`, vdirs: { Owa: { internalUrl: "http://c.lab.contoso.com/owa" } } }]);
    const p = new HealthProber(topo(objs), { intervalMs: 30, unhealthyThreshold: 2, healthyThreshold: 1 });
    const downSeen = new Promise<readonly string[]>((resolve) => {
      const off = p.subscribe((down) => {
        off();
        resolve(down);
      });
    });
    p.start();
    expect(await downSeen).toEqual(["c", "c/Owa"]);
    await p.stop();
    const count = web.hosts.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(web.hosts.length).toBe(count);

    // Same target after a topology rebuild: state kept. Removed target: gone from the down-list.
    p.setTopology(topo(objs));
    expect(p.down()).toEqual(["c", "c/Owa"]);
    p.setTopology(topo(objs.filter((o) => o.kind !== "VirtualDirectory")));
    expect(p.down()).toEqual([]);
    expect(p.targets()).toEqual([]);
  });
});
