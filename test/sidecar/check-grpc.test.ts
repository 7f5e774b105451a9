// The sidecar over real gRPC (grpc-js client speaking Envoy's protos), with a scripted engine so each
// answer shape is pinned down independently of the rules. Contoso end-to-end runs are in contoso.test.ts.
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { AdminServer } from "../../operator/admin-server.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { AffinitySigner } from "../../sidecar/authz/affinity.js";
import { REDACT_PATHS } from "../../sidecar/authz/logging.js";
import { SidecarServer } from "../../sidecar/authz/server.js";
import type { Decision } from "../../sidecar/decision/types.js";
import { ALL_HEALTHY } from "../../model/health.js";
import type { LookupResult, MailboxDirectory } from "../../model/directory/types.js";
import { SettableStateSource, type GatewayState } from "../../model/state.js";
import { authzClient, envoyCheckRequest, headerMap } from "./envoy-request.js";
import { scriptedEngine } from "./scripted-engine.js";

const KEY = Buffer.alloc(32, 7);
const logLines: string[] = [];
const logSink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    logLines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    cb();
  },
});

let script: (req: { path: string; headers: Record<string, string> }) => Decision = () => {
  throw new Error("no script");
};
const engine = scriptedEngine(({ req }) => script(req as never));

let directoryDelayMs = 0;
let directoryDown = false;
const directory: MailboxDirectory = {
  async lookup(id): Promise<LookupResult> {
    if (directoryDelayMs) await new Promise((r) => setTimeout(r, directoryDelayMs));
    if (directoryDown) return { status: "unavailable", reason: "ldap down" };
    return id === "alice@contoso.com"
      ? { status: "found", mailbox: { primarySmtpAddress: id, database: "DB-USA-2010", emailAddresses: [id] } }
      : { status: "not-found" };
  },
};

const state = new SettableStateSource();
let stateValue: GatewayState;
let server: SidecarServer;
let client: ReturnType<typeof authzClient>;
let port: number;

const route = (over: Partial<Decision & { outcome: "proxy" }> = {}): Decision => ({
  outcome: "proxy",
  targetSite: "europe",
  cluster: "pool/europe/v2010/owa",
  affinity: "none",
  rules: ["R-OWA-4"],
  trace: ["t"],
  ...over,
}) as Decision;

beforeAll(async () => {
  const org = await loadOrganisation("examples/contoso");
  stateValue = { topology: org.topology, health: ALL_HEALTHY, version: org.topology.version };
  server = new SidecarServer({
    state,
    directory,
    engine,
    affinityKey: KEY,
    lookupTimeoutMs: 100,
    logger: pino({ level: "info", redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, logSink),
  });
  port = await server.start(0);
  client = authzClient(port);
});

afterAll(async () => {
  client?.close();
  await server?.stop();
});

function healthCheck(service: string): Promise<string> {
  const Client = grpc.makeGenericClientConstructor(
    {
      Check: {
        path: "/grpc.health.v1.Health/Check",
        requestStream: false,
        responseStream: false,
        // HealthCheckRequest { string service = 1; } / HealthCheckResponse { ServingStatus status = 1; }
        requestSerialize: (s: string) => {
          const b = Buffer.from(s);
          return Buffer.concat([Buffer.from([0x0a, b.length]), b]);
        },
        requestDeserialize: (b: Buffer) => b.toString(),
        responseSerialize: (x: number) => Buffer.from([0x08, x]),
        responseDeserialize: (b: Buffer) => (b.length >= 2 ? b[1] : 0),
      },
    },
    "Health",
  );
  const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
    Check: (s: string, cb: (e: Error | null, r: number) => void) => void;
    close(): void;
  };
  return new Promise((resolve, reject) =>
    c.Check(service, (e, r) => {
      c.close();
      if (e) reject(e);
      else resolve(["UNKNOWN", "SERVING", "NOT_SERVING"][r] ?? String(r));
    }),
  );
}

describe("sidecar gRPC server (scripted engine)", () => {
  it("is NOT_SERVING and answers 503 until a GatewayState arrives, then SERVING", async () => {
    expect(await healthCheck("")).toBe("NOT_SERVING");
    script = () => route();
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }));
    expect(r.status?.code).toBe(7);
    expect(r.denied_response?.status?.code).toBe("ServiceUnavailable");
    expect(headerMap(r.denied_response?.headers)["x-cas-decision"]).toBe("error");
    expect(headerMap(r.denied_response?.headers)["x-cas-rules"]).toBe("R-SIDECAR-not-ready");
    state.set(stateValue);
    expect(await healthCheck("")).toBe("SERVING");
    expect(await healthCheck("envoy.service.auth.v3.Authorization")).toBe("SERVING");
  });

  it("proxy: OK with x-cas-* headers, strips every client-sent x-cas-* header, metadata cas_decision", async () => {
    script = () => route({ targetServer: "europe-cas01", rewrite: "eas-proxy", rules: ["R-EAS-5", "R-LB-3"] });
    const r = await client.check(
      envoyCheckRequest({
        host: "usa.contoso.com",
        path: "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice",
        headers: { "x-cas-cluster": "server/evil/owa", "x-cas-decision": "local", "x-cas-bogus": "1", "x-anchormailbox": "alice@contoso.com" },
      }),
    );
    expect(r.status?.code ?? 0).toBe(0);
    const h = headerMap(r.ok_response?.headers);
    expect(h).toEqual({
      "x-cas-decision": "proxy",
      "x-cas-target-site": "europe",
      "x-cas-target-server": "europe-cas01",
      "x-cas-cluster": "pool/europe/v2010/owa",
      "x-cas-rules": "R-EAS-5,R-LB-3",
      "x-cas-rewrite": "eas-proxy",
    });
    // Removal covers client-sent names the answer does not set (set-before-remove order in Envoy).
    expect(r.ok_response?.headers_to_remove).toEqual(["x-cas-bogus"]);
    expect(r.dynamic_metadata?.fields?.cas_decision?.stringValue).toBe("proxy");
    // The engine never saw the x-cas-* headers.
    const seen = engine.calls.at(-1)!.req.headers;
    expect(Object.keys(seen).filter((k) => k.startsWith("x-cas-"))).toEqual([]);
    expect(engine.calls.at(-1)!.req.path).toBe("/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice");
    expect(engine.calls.at(-1)!.directory.find("alice@contoso.com").status).toBe("found");
  });

  it("local without target server: unset x-cas-target-server and x-cas-rewrite are removed", async () => {
    script = () => route({ outcome: "local", targetSite: "usa", cluster: "pool/usa/v2010/owa", rules: ["R-OWA-1"] } as never);
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { "x-cas-target-server": "x" } }));
    expect(headerMap(r.ok_response?.headers)["x-cas-decision"]).toBe("local");
    expect(r.ok_response?.headers_to_remove).toEqual(["x-cas-rewrite", "x-cas-target-server"]);
    expect(r.dynamic_metadata?.fields?.cas_decision?.stringValue).toBe("local");
    // The configuration the decision was made with (access logs; the soak bench's reference).
    expect(r.dynamic_metadata?.fields?.cas_config_version?.stringValue).toBe(stateValue.version);
  });

  it("R-LB-2: affinity set → signed Set-Cookie scoped to / (one pin for OWA and ECP, R-LB-7) and host; a valid pin reaches the engine; tampered/foreign pins do not", async () => {
    script = () => route({ targetServer: "europe-cas01", affinity: "set", service: "Owa", rules: ["R-OWA-4", "R-LB-2"] });
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }));
    const cookies = (r.ok_response?.response_headers_to_add ?? []).filter((h) => h.header.key === "set-cookie");
    expect(cookies).toHaveLength(1);
    const c = cookies[0].header.value;
    expect(c).toMatch(/^cas-affinity=[^;]+; Path=\/; Max-Age=\d+; Secure; HttpOnly; SameSite=Lax$/);
    const value = c.split(";")[0];
    await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/?ae=Item", headers: { cookie: `a=b; ${value}` } }));
    expect(engine.calls.at(-1)!.req.pinnedServer).toBe("europe-cas01");
    // Tampered signature.
    await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { cookie: `${value.slice(0, -2)}xx` } }));
    expect(engine.calls.at(-1)!.req.pinnedServer).toBeUndefined();
    // Foreign host and foreign path (EWS has its own pin); ECP shares OWA's (R-LB-7).
    await client.check(envoyCheckRequest({ host: "europe.contoso.com", path: "/owa/", headers: { cookie: value } }));
    expect(engine.calls.at(-1)!.req.pinnedServer).toBeUndefined();
    await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/EWS/Exchange.asmx", headers: { cookie: value } }));
    expect(engine.calls.at(-1)!.req.pinnedServer).toBeUndefined();
    await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/ecp/", headers: { cookie: value } }));
    expect(engine.calls.at(-1)!.req.pinnedServer).toBe("europe-cas01");
    // Expired.
    const old = new AffinitySigner(KEY, 60, () => Date.now() - 3600_000).setCookie("europe-cas01", "usa.contoso.com", "/").split(";")[0];
    await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { cookie: old } }));
    expect(engine.calls.at(-1)!.req.pinnedServer).toBeUndefined();
  });

  it("R-LB-2: affinity clear → an expiring Set-Cookie", async () => {
    script = () => route({ affinity: "clear", service: "Ews", rules: ["R-EWS-2"] });
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/EWS/Exchange.asmx", method: "POST" }));
    const c = r.ok_response?.response_headers_to_add?.[0]?.header.value ?? "";
    expect(c).toMatch(/^cas-affinity=; Path=\/EWS; Max-Age=0;/);
  });

  it("R-OWA-2 silent: PERMISSION_DENIED, 302 with location, metadata redirect-silent", async () => {
    script = () => ({ outcome: "redirect", kind: "silent", url: "https://europe.contoso.com/owa", rules: ["R-OWA-2"], trace: [] });
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }));
    expect(r.status?.code).toBe(7);
    expect(r.denied_response?.status?.code).toBe("Found");
    const h = headerMap(r.denied_response?.headers);
    expect(h.location).toBe("https://europe.contoso.com/owa");
    expect(h["x-cas-decision"]).toBe("redirect-silent");
    expect(h["x-cas-rules"]).toBe("R-OWA-2");
    expect(r.dynamic_metadata?.fields?.cas_decision?.stringValue).toBe("redirect-silent");
  });

  it("R-OWA-2 manual: 200 page with the link and a CSP", async () => {
    script = () => ({ outcome: "redirect", kind: "manual", url: "https://europe.contoso.com/owa", rules: ["R-OWA-2"], trace: [] });
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }));
    expect(r.denied_response?.status?.code).toBe("OK");
    const h = headerMap(r.denied_response?.headers);
    expect(h["x-cas-decision"]).toBe("redirect-manual");
    expect(h["content-security-policy"]).toMatch(/default-src 'none'/);
    expect(r.denied_response?.body).toContain('href="https://europe.contoso.com/owa"');
  });

  it("R-OWA-3 sso: 200 form page with the FBA fields when the request carries credentials; else a silent 302", async () => {
    script = () => ({ outcome: "redirect", kind: "sso", url: "https://europe.contoso.com/owa", rules: ["R-OWA-3"], trace: [] });
    const r = await client.check(
      envoyCheckRequest({
        host: "usa.contoso.com",
        path: "/owa/auth.owa",
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "destination=https%3A%2F%2Fusa.contoso.com%2Fowa&flags=4&username=frank%40contoso.com&password=s3cr%3Ct",
      }),
    );
    expect(r.denied_response?.status?.code).toBe("OK");
    expect(headerMap(r.denied_response?.headers)["x-cas-decision"]).toBe("redirect-sso");
    expect(r.denied_response?.body).toContain('action="https://europe.contoso.com/owa/auth.owa"');
    expect(r.denied_response?.body).toContain('name="password" value="s3cr&#x3C;t"');
    const r2 = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }));
    expect(headerMap(r2.denied_response?.headers)["x-cas-decision"]).toBe("redirect-silent");
  });

  it("R-OWA-3 sso to a non-HTTPS target falls back to the manual page (credentials never sent over HTTP)", async () => {
    script = () => ({ outcome: "redirect", kind: "sso", url: "http://cas01.usa.contoso.com/owa", rules: ["R-OWA-3"], trace: [] });
    const r = await client.check(
      envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { authorization: `Basic ${Buffer.from("frank:pw").toString("base64")}` } }),
    );
    // http://cas01... is not configured (only https://cas01... is), so the defence refuses it outright.
    expect(headerMap(r.denied_response?.headers)["x-cas-decision"]).toMatch(/^(redirect-manual|error)$/);
    expect(r.denied_response?.body ?? "").not.toContain("pw");
  });

  it("R-EAS-4: 451 carrier: 403 + x-ms-location + x-cas-decision redirect-451 + metadata cas_decision", async () => {
    script = () => ({ outcome: "redirect", kind: "eas451", url: "https://europe.contoso.com/Microsoft-Server-ActiveSync", rules: ["R-EAS-4"], trace: [] });
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/Microsoft-Server-ActiveSync?Cmd=Ping", method: "POST" }));
    expect(r.status?.code).toBe(7);
    expect(r.denied_response?.status?.code).toBe("Forbidden");
    const h = headerMap(r.denied_response?.headers);
    expect(h["x-ms-location"]).toBe("https://europe.contoso.com/Microsoft-Server-ActiveSync");
    expect(h["x-cas-decision"]).toBe("redirect-451");
    expect(r.dynamic_metadata?.fields?.cas_decision?.stringValue).toBe("redirect-451");
  });

  it("error: the engine's status and reason; undefined statuses map to a defined one", async () => {
    script = () => ({ outcome: "error", status: 502, reason: "No Exchange 2007 Client Access server", rules: ["R-GEN-2"], trace: [] });
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }));
    expect(r.denied_response?.status?.code).toBe("BadGateway");
    expect(r.denied_response?.body).toBe("502 No Exchange 2007 Client Access server\n");
    expect(headerMap(r.denied_response?.headers)["x-cas-decision"]).toBe("error");
    script = () => ({ outcome: "error", status: 451, reason: "x", rules: ["R-GEN-2"], trace: [] });
    const r2 = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }));
    expect(r2.denied_response?.status?.code).toBe("BadRequest");
  });

  it("a redirect to an unconfigured host is refused (defence in depth)", async () => {
    script = () => ({ outcome: "redirect", kind: "silent", url: "https://evil.example/owa", rules: ["R-OWA-2"], trace: [] });
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }));
    expect(headerMap(r.denied_response?.headers)["x-cas-decision"]).toBe("error");
    expect(headerMap(r.denied_response?.headers).location).toBeUndefined();
    expect(headerMap(r.denied_response?.headers)["x-cas-rules"]).toContain("R-SIDECAR-unconfigured-redirect");
  });

  it("R-SIDECAR-bad-request: a request past the header limits is answered 431, never decided", async () => {
    script = () => route();
    const headers: Record<string, string> = {};
    for (let i = 0; i < 300; i++) headers[`x-h${i}`] = "v";
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers }));
    expect(r.denied_response?.status?.code).toBe("RequestHeaderFieldsTooLarge");
    expect(headerMap(r.denied_response?.headers)["x-cas-rules"]).toBe("R-SIDECAR-bad-request");
  });

  it("an engine exception becomes a 503 error decision; the server keeps serving", async () => {
    script = () => {
      throw new Error("boom");
    };
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }));
    expect(r.denied_response?.status?.code).toBe("ServiceUnavailable");
    expect(r.denied_response?.body).not.toContain("boom");
    expect(headerMap(r.denied_response?.headers)["x-cas-rules"]).toBe("R-SIDECAR-internal-error");
    script = () => route();
    const r2 = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }));
    expect(r2.status?.code ?? 0).toBe(0);
  });

  it("a slow directory is cut off at the deadline (fail-closed: the engine sees unavailable)", async () => {
    directoryDelayMs = 2000;
    let seen = "";
    script = ({ headers }) => {
      void headers;
      seen = engine.calls.at(-1)!.directory.find("alice@contoso.com").status;
      return { outcome: "error", status: 503, reason: "Directory unavailable", rules: ["R-GEN-1"], trace: [] };
    };
    const t0 = Date.now();
    const r = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { "x-anchormailbox": "alice@contoso.com" } }));
    expect(Date.now() - t0).toBeLessThan(1900);
    directoryDelayMs = 0;
    expect(seen).toBe("unavailable");
    expect(r.denied_response?.status?.code).toBe("ServiceUnavailable");
  });

  it("malformed requests get a clear 4xx, never an exception", async () => {
    script = () => route();
    const bad = await client.check({ attributes: { request: { http: { method: "GET", host: "", path: "/" } } } });
    expect(bad.denied_response?.status?.code).toBe("BadRequest");
    const huge = await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { "x-big": "a".repeat(70_000) } }));
    expect(huge.denied_response?.status?.code).toBe("RequestHeaderFieldsTooLarge");
    const empty = await client.check({});
    expect(empty.denied_response?.status?.code).toBe("BadRequest");
  });

  it("malformed protobuf bytes get a valid CheckResponse (400), never gRPC INTERNAL (issue 20, finding 8)", async () => {
    script = () => route();
    // A raw client: the bytes go on the wire as given (a truncated varint, a field past its end, a bad wire type).
    const Raw = grpc.makeGenericClientConstructor(
      {
        Check: {
          path: "/envoy.service.auth.v3.Authorization/Check",
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      "RawAuthorization",
    );
    const c = new Raw(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
      Check: (b: Buffer, cb: (e: grpc.ServiceError | null, r: Buffer) => void) => void;
      close(): void;
    };
    const { loadEnvoyServices } = await import("../../sidecar/envoy-protos.js");
    const decode = loadEnvoyServices().authorization.Check!.responseDeserialize;
    try {
      for (const bytes of [Buffer.from([0x0a, 0xff]), Buffer.from([0x0a, 0x05, 0x01]), Buffer.from([0x0f, 0x00]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]) {
        const res = await new Promise<Buffer>((resolve, reject) => c.Check(bytes, (e, r) => (e ? reject(e) : resolve(r))));
        const decoded = decode(res) as { denied_response?: { status?: { code?: unknown } } };
        expect(decoded.denied_response?.status?.code).toBe("BadRequest");
      }
    } finally {
      c.close();
    }
  });

  it("logs carry the request id and never credentials", async () => {
    script = () => route();
    logLines.length = 0;
    await client.check(
      envoyCheckRequest({
        host: "usa.contoso.com",
        path: "/owa/auth.owa?secretquery=1",
        method: "POST",
        requestId: "rid-logtest-1",
        headers: { authorization: `Basic ${Buffer.from("frank:Hunter2Secret").toString("base64")}`, cookie: "cadata=SessionSecret" },
        body: "username=frank&password=Hunter2Secret",
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
    const line = logLines.find((l) => l.includes("rid-logtest-1"));
    expect(line).toBeDefined();
    const all = logLines.join("\n");
    expect(all).not.toContain("Hunter2Secret");
    expect(all).not.toContain(Buffer.from("frank:Hunter2Secret").toString("base64"));
    expect(all).not.toContain("SessionSecret");
    expect(all).not.toContain("secretquery");
    // Redaction catches credentials even if an object carrying them is logged.
    server.logger.info({ req: { headers: { authorization: "Basic SECRETB64" } }, password: "pw-SECRET" }, "x");
    await new Promise((r) => setTimeout(r, 50));
    expect(logLines.join("\n")).not.toMatch(/SECRETB64|pw-SECRET/);
  });

  it("admin server: /metrics counts decisions by outcome and rule; /healthz; /readyz", async () => {
    const admin = new AdminServer({ registry: server.metrics.registry, ready: () => server.ready() });
    const { port: ap } = await admin.start();
    try {
      const m = await (await fetch(`http://127.0.0.1:${ap}/metrics`)).text();
      expect(m).toMatch(/cas_sidecar_decisions_total\{decision="proxy"\} \d+/);
      expect(m).toMatch(/cas_sidecar_decision_rules_total\{decision="redirect-451",rule="R-EAS-4"\} 1/);
      expect(m).toMatch(/cas_sidecar_check_duration_seconds_bucket/);
      expect((await fetch(`http://127.0.0.1:${ap}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${ap}/readyz`)).status).toBe(200);
    } finally {
      await admin.stop();
    }
  });
});
