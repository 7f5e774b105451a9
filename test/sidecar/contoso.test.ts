// End to end on examples/contoso: the sidecar with its default (real) decision engine and the CSV
// directory, started on 127.0.0.1:0 and called by a grpc-js client with Envoy-shaped CheckRequests.
// One test per observable outcome, plus affinity, NLB bypass, failure policy and x-cas-* hygiene.
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { AffinitySigner } from "../../sidecar/authz/affinity.js";
import { SidecarServer } from "../../sidecar/authz/server.js";
import { ALL_HEALTHY } from "../../model/health.js";
import type { MailboxDirectory } from "../../model/directory/types.js";
import { SettableStateSource } from "../../model/state.js";
import { authzClient, envoyCheckRequest, headerMap, type CheckResponseIn, type EnvoyRequestInit } from "./envoy-request.js";

const KEY = Buffer.alloc(32, 9);
const signer = new AffinitySigner(KEY);
const basic = (user: string, pw = "P@ssw0rd") => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}` });

interface Running {
  server: SidecarServer;
  client: ReturnType<typeof authzClient>;
}
const running: Running[] = [];

async function start(directory?: MailboxDirectory, policy?: "fail-closed" | "local"): Promise<Running["client"]> {
  const org = await loadOrganisation("examples/contoso", "examples/contoso/mailboxes.csv");
  const server = new SidecarServer({
    state: new SettableStateSource({ topology: org.topology, health: ALL_HEALTHY, version: org.topology.version }),
    directory: directory ?? org.directory!,
    affinityKey: KEY,
    logger: pino({ level: "silent" }),
    ...(policy ? { directoryFailurePolicy: policy } : {}),
  });
  const port = await server.start(0);
  const client = authzClient(port);
  running.push({ server, client });
  return client;
}

let client: Running["client"];
beforeAll(async () => {
  client = await start();
});
afterAll(async () => {
  for (const r of running) {
    r.client.close();
    await r.server.stop();
  }
});

const check = (init: EnvoyRequestInit) => client.check(envoyCheckRequest(init));
const okHeaders = (r: CheckResponseIn) => headerMap(r.ok_response?.headers);
const deniedHeaders = (r: CheckResponseIn) => headerMap(r.denied_response?.headers);
const cookiesOf = (r: CheckResponseIn) => (r.ok_response?.response_headers_to_add ?? []).filter((h) => h.header.key === "set-cookie").map((h) => h.header.value);
const meta = (r: CheckResponseIn) => r.dynamic_metadata?.fields?.cas_decision?.stringValue;

describe("sidecar on examples/contoso (real engine, CSV directory, gRPC)", () => {
  it("R-OWA-1 local: alice at usa → OK, x-cas-* headers, cookie pin to her CAS (R-LB-2)", async () => {
    const r = await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("alice@contoso.com") });
    expect(r.status?.code ?? 0).toBe(0);
    expect(okHeaders(r)).toMatchObject({ "x-cas-decision": "local", "x-cas-target-site": "usa", "x-cas-cluster": "server/usa-cas01/owa", "x-cas-target-server": "usa-cas01" });
    expect(okHeaders(r)["x-cas-rules"]).toContain("R-OWA-1");
    expect(cookiesOf(r)).toHaveLength(1);
    expect(cookiesOf(r)[0]).toMatch(/; Path=\/; Max-Age=\d+; Secure; HttpOnly; SameSite=Lax$/);
    expect(meta(r)).toBe("local");
  });

  it("R-OWA-4 proxy: jun (asia, not internet facing) at usa → proxy to asia-cas01 with a pin", async () => {
    const r = await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("jun@contoso.com") });
    expect(okHeaders(r)).toMatchObject({ "x-cas-decision": "proxy", "x-cas-target-site": "asia", "x-cas-target-server": "asia-cas01", "x-cas-cluster": "server/asia-cas01/owa" });
    expect(okHeaders(r)["x-cas-rules"]).toContain("R-OWA-4");
    expect(cookiesOf(r)).toHaveLength(1);
    expect(meta(r)).toBe("proxy");
  });

  it("R-EAS-5 proxy with rewrite: jun's ActiveSync → asia pool, x-cas-rewrite eas-proxy", async () => {
    const r = await check({ host: "usa.contoso.com", method: "POST", path: "/Microsoft-Server-ActiveSync?Cmd=Sync&User=jun&DeviceId=d1&DeviceType=iPhone", headers: basic("jun@contoso.com") });
    expect(okHeaders(r)).toMatchObject({ "x-cas-decision": "proxy", "x-cas-cluster": "pool/asia/v2010/activesync", "x-cas-rewrite": "eas-proxy" });
    expect(r.ok_response?.headers_to_remove).toContain("x-cas-target-server");
    expect(cookiesOf(r)).toEqual([]);
  });

  it("R-OWA-2 manual: alice at europe → 200 page linking to https://usa.contoso.com/owa", async () => {
    const r = await check({ host: "europe.contoso.com", path: "/owa/", headers: basic("alice@contoso.com") });
    expect(r.status?.code).toBe(7);
    expect(r.denied_response?.status?.code).toBe("OK");
    expect(deniedHeaders(r)["x-cas-decision"]).toBe("redirect-manual");
    expect(deniedHeaders(r)["x-cas-rules"]).toContain("R-OWA-2");
    expect(r.denied_response?.body).toContain('href="https://usa.contoso.com/owa"');
    expect(meta(r)).toBe("redirect-manual");
  });

  it("R-OWA-7 silent: hans (2007, europe) at europe → 302 to the 2007 CAS", async () => {
    const r = await check({ host: "europe.contoso.com", path: "/owa/", headers: basic("hans@contoso.com") });
    expect(r.denied_response?.status?.code).toBe("Found");
    expect(deniedHeaders(r)).toMatchObject({ "x-cas-decision": "redirect-silent", location: "https://e2007cas.europe.contoso.com/owa" });
    expect(meta(r)).toBe("redirect-silent");
  });

  it("R-OWA-3 sso: frank's FBA logon at usa → 200 self-submitting form to europe's auth.owa", async () => {
    const r = await check({
      host: "usa.contoso.com",
      method: "POST",
      path: "/owa/auth.owa",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "destination=https%3A%2F%2Fusa.contoso.com%2Fowa%2F&flags=4&forcedownlevel=0&username=frank%40contoso.com&password=Fr%26nk%3C1%3E&isUtf8=1",
    });
    expect(r.denied_response?.status?.code).toBe("OK");
    expect(deniedHeaders(r)["x-cas-decision"]).toBe("redirect-sso");
    expect(deniedHeaders(r)["x-cas-rules"]).toContain("R-OWA-3");
    const body = r.denied_response?.body ?? "";
    expect(body).toContain('<form id="sso" method="post" action="https://europe.contoso.com/owa/auth.owa"');
    expect(body).toContain('name="username" value="frank@contoso.com"');
    expect(body).toContain('name="password" value="Fr&#x26;nk&#x3C;1&#x3E;"');
    expect(deniedHeaders(r)["content-security-policy"]).toMatch(/script-src 'nonce-[A-Za-z0-9+/=]+'/);
    expect(meta(r)).toBe("redirect-sso");
  });

  it("R-EAS-4 451: frank's ActiveSync at usa → 403 carrier + X-MS-Location + metadata redirect-451", async () => {
    const r = await check({ host: "usa.contoso.com", method: "POST", path: "/Microsoft-Server-ActiveSync?Cmd=Sync&User=frank&DeviceId=d2&DeviceType=Android", headers: basic("frank@contoso.com") });
    expect(r.status?.code).toBe(7);
    expect(r.denied_response?.status?.code).toBe("Forbidden");
    expect(deniedHeaders(r)).toMatchObject({ "x-cas-decision": "redirect-451", "x-ms-location": "https://europe.contoso.com/Microsoft-Server-ActiveSync" });
    expect(deniedHeaders(r)["x-cas-rules"]).toContain("R-EAS-4");
    expect(meta(r)).toBe("redirect-451");
  });

  it("R-2013-4 error: a path that is no Exchange application → the engine's 404 and reason", async () => {
    const r = await check({ host: "usa.contoso.com", path: "/wp-login.php", headers: basic("alice@contoso.com") });
    expect(r.status?.code).toBe(7);
    expect(r.denied_response?.status?.code).toBe("NotFound");
    expect(deniedHeaders(r)["x-cas-decision"]).toBe("error");
    expect(deniedHeaders(r)["x-cas-rules"]).toContain("R-2013-4");
    expect(r.denied_response?.body).toMatch(/^404 \S/);
    expect(meta(r)).toBe("error");
  });

  it("R-ENG-UNKNOWN-SITE error: a Host no site serves → refused, never guessed", async () => {
    const r = await check({ host: "evil.example", path: "/owa/", headers: basic("frank@contoso.com") });
    expect(r.status?.code).toBe(7);
    expect(deniedHeaders(r)["x-cas-decision"]).toBe("error");
    expect(deniedHeaders(r).location).toBeUndefined();
  });

  it("R-LB-2 affinity: a valid pin is kept (no new cookie); a tampered or foreign pin gets a fresh one", async () => {
    const pin = signer.setCookie("usa-cas02", "usa.contoso.com", "/EWS").split(";")[0];
    const kept = await check({ host: "usa.contoso.com", method: "POST", path: "/EWS/Exchange.asmx", headers: { ...basic("alice@contoso.com"), cookie: pin } });
    expect(okHeaders(kept)).toMatchObject({ "x-cas-target-server": "usa-cas02", "x-cas-cluster": "server/usa-cas02/ews" });
    expect(cookiesOf(kept)).toEqual([]);
    const forged = await check({ host: "usa.contoso.com", method: "POST", path: "/EWS/Exchange.asmx", headers: { ...basic("alice@contoso.com"), cookie: `${pin.slice(0, -3)}AAA` } });
    expect(okHeaders(forged)["x-cas-target-server"]).toBe("usa-cas01");
    expect(cookiesOf(forged)[0]).toMatch(/Path=\/EWS;/);
    const foreign = signer.setCookie("usa-cas02", "europe.contoso.com", "/EWS").split(";")[0];
    const r3 = await check({ host: "usa.contoso.com", method: "POST", path: "/EWS/Exchange.asmx", headers: { ...basic("alice@contoso.com"), cookie: foreign } });
    expect(okHeaders(r3)["x-cas-target-server"]).toBe("usa-cas01");
    expect(cookiesOf(r3)).toHaveLength(1);
  });

  it("R-EWS-4: GetEvents in the SOAP body (raw_body bytes) → the internalNLBBypassUrl server, pinned", async () => {
    const soap =
      '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Body><m:GetEvents><m:SubscriptionId>abc</m:SubscriptionId><m:Watermark>w</m:Watermark></m:GetEvents></soap:Body></soap:Envelope>';
    const r = await check({ host: "usa.contoso.com", method: "POST", path: "/EWS/Exchange.asmx", headers: { ...basic("alice@contoso.com"), "content-type": "text/xml; charset=utf-8" }, rawBody: Buffer.from(soap) });
    expect(okHeaders(r)["x-cas-rules"]).toContain("R-EWS-4");
    expect(okHeaders(r)["x-cas-target-server"]).toBe("usa-cas01");
    expect(cookiesOf(r)).toHaveLength(1);
  });

  it("client-sent x-cas-* headers never steer the decision and are removed or overwritten", async () => {
    const plain = await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("jun@contoso.com") });
    const spoofed = await check({
      host: "usa.contoso.com",
      path: "/owa/",
      headers: { ...basic("jun@contoso.com"), "x-cas-cluster": "server/usa-cas01/owa", "x-cas-target-server": "usa-cas01", "x-cas-decision": "local", "x-cas-rewrite": "eas-proxy", "x-cas-x": "1" },
    });
    expect(okHeaders(spoofed)).toEqual(okHeaders(plain));
    expect(spoofed.ok_response?.headers_to_remove).toEqual(["x-cas-rewrite", "x-cas-x"]);
  });

  it("directory unreachable: fail-closed → 503; --on-directory-failure local → served locally", async () => {
    const down: MailboxDirectory = { lookup: async () => ({ status: "unavailable", reason: "LDAP server down" }) };
    const closed = await start(down);
    const r1 = await closed.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: basic("frank@contoso.com") }));
    expect(r1.denied_response?.status?.code).toBe("ServiceUnavailable");
    expect(r1.denied_response?.body ?? "").not.toContain("LDAP");
    const hang: MailboxDirectory = { lookup: () => new Promise(() => {}) };
    const local = await start(hang, "local");
    const r2 = await local.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: basic("frank@contoso.com") }));
    expect(headerMap(r2.ok_response?.headers)).toMatchObject({ "x-cas-decision": "local", "x-cas-target-site": "usa" });
  });
});
