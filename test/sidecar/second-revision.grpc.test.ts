// The rules added from Microsoft's public Exchange documentation (docs/rules.md, "Additions"), through
// the sidecar's gRPC Check API on examples/contoso with the real engine and the CSV directory: what
// Envoy is told (x-cas-* headers, denied answers, pages, cookies) and the warning log of R-SEC-1/3.
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiObject } from "../../crds/index.js";
import { ALL_HEALTHY } from "../../model/health.js";
import { SettableStateSource } from "../../model/state.js";
import { buildTopology } from "../../model/topology/build.js";
import { loadManifestDir } from "../../operator/provider/manifests.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { SidecarServer } from "../../sidecar/authz/server.js";
import { encodeEasBase64Query } from "../../sidecar/decision/eas-query.js";
import { authzClient, envoyCheckRequest, headerMap, type CheckResponseIn, type EnvoyRequestInit } from "./envoy-request.js";

const KEY = Buffer.alloc(32, 5);
const basic = (user: string, pw = "P@ssw0rd") => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}` });
const logLines: { level: number; msg: string; cve?: string; attack?: string; rules?: string }[] = [];
const sink = new Writable({
  write(chunk: Buffer, _e, cb) {
    for (const l of chunk.toString("utf8").split("\n")) if (l) logLines.push(JSON.parse(l));
    cb();
  },
});

const servers: { server: SidecarServer; client: ReturnType<typeof authzClient> }[] = [];
async function start(edit?: (objs: ApiObject[]) => void) {
  const org = await loadOrganisation("examples/contoso", "examples/contoso/mailboxes.csv");
  let topology = org.topology;
  if (edit) {
    const objs = (await loadManifestDir("examples/contoso")).objects.map((o) => structuredClone(o.object));
    edit(objs);
    topology = buildTopology(objs);
  }
  const server = new SidecarServer({
    state: new SettableStateSource({ topology, health: ALL_HEALTHY, version: topology.version }),
    directory: org.directory!,
    affinityKey: KEY,
    logger: pino({ level: "info" }, sink),
  });
  const client = authzClient(await server.start(0));
  servers.push({ server, client });
  return (init: EnvoyRequestInit) => client.check(envoyCheckRequest(init));
}
let check: Awaited<ReturnType<typeof start>>;
beforeAll(async () => {
  check = await start();
});
afterAll(async () => {
  for (const s of servers) {
    s.client.close();
    await s.server.stop();
  }
});
const ok = (r: CheckResponseIn) => headerMap(r.ok_response?.headers);
const denied = (r: CheckResponseIn) => headerMap(r.denied_response?.headers);
const cookiesOf = (r: CheckResponseIn) => (r.ok_response?.response_headers_to_add ?? []).filter((h) => h.header.key === "set-cookie").map((h) => h.header.value);
const rulesOf = (r: CheckResponseIn) => (r.ok_response ? ok(r) : denied(r))["x-cas-rules"] ?? "";

async function warned(cve: string): Promise<{ msg: string; cve?: string; rules?: string } | undefined> {
  await new Promise((r) => setTimeout(r, 20));
  return logLines.find((l) => l.level === 40 && l.cve === cve);
}

describe("second-revision rules through the gRPC Check API (contoso)", () => {
  it("R-SEC-1: ProxyLogon's X-BEResource cookie → 403 and a warning log line naming CVE-2021-26855", async () => {
    const r = await check({ host: "usa.contoso.com", path: "/ecp/y.js", headers: { cookie: "X-BEResource=Administrator@usa-e2016-01:444/autodiscover/autodiscover.xml?a=~1942062522" } });
    expect(r.denied_response?.status?.code).toBe("Forbidden");
    expect(denied(r)["x-cas-decision"]).toBe("error");
    expect(rulesOf(r)).toBe("R-SEC-1");
    expect(r.denied_response?.body).not.toContain("usa-e2016");
    const line = await warned("CVE-2021-26855");
    expect(line?.msg).toMatch(/ProxyLogon/);
  });

  it("R-SEC-3: ProxyShell (CVE-2021-34473) and ProxyNotShell (CVE-2022-41040) → 403 and warning lines", async () => {
    const shell = await check({ host: "usa.contoso.com", path: "/autodiscover/autodiscover.json?@evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@evil.com" });
    expect(shell.denied_response?.status?.code).toBe("Forbidden");
    expect(rulesOf(shell)).toBe("R-SEC-3");
    expect((await warned("CVE-2021-34473"))?.msg).toMatch(/ProxyShell/);
    const notshell = await check({ host: "usa.contoso.com", path: "/autodiscover/autodiscover.json?@evil.com/owa/&Email=autodiscover/autodiscover.json%3F@evil.com&Protocol=XYZ&FooProtocol=Powershell", headers: basic("alice@contoso.com") });
    expect(rulesOf(notshell)).toBe("R-SEC-3");
    expect((await warned("CVE-2022-41040"))?.msg).toMatch(/ProxyNotShell/);
  });

  it("R-EAS-7 and R-EAS-8: a 14.1 device gets the 451 with the complete URL; a 12.1 device (base64 query) is not sent a 451", async () => {
    const r = await check({ host: "usa.contoso.com", method: "POST", path: "/Microsoft-Server-ActiveSync?Cmd=Sync&User=frank&DeviceId=d2&DeviceType=Android", headers: { ...basic("frank@contoso.com"), "ms-asprotocolversion": "14.1" } });
    expect(denied(r)).toMatchObject({ "x-cas-decision": "redirect-451", "x-ms-location": "https://europe.contoso.com/Microsoft-Server-ActiveSync" });
    expect(rulesOf(r)).toContain("R-EAS-7");
    expect(rulesOf(r)).toContain("R-EAS-8");
    const q = encodeEasBase64Query({ protocolVersion: 121, command: "Sync", deviceId: "d2", deviceType: "WM", user: "frank@contoso.com" });
    const old = await check({ host: "usa.contoso.com", method: "POST", path: `/Microsoft-Server-ActiveSync?${q}`, headers: basic("frank@contoso.com") });
    expect(rulesOf(old)).toContain("R-EAS-7");
    expect((old.ok_response ? ok(old) : denied(old))["x-cas-decision"]).not.toBe("redirect-451");
  });

  it("R-OWA-9: a 2003 mailbox at an FBA front door gets a sign-on form posted to the 2003 front end's owaauth.dll", async () => {
    const r = await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("dave@contoso.com") });
    expect(rulesOf(r)).toContain("R-OWA-9");
    expect(denied(r)["x-cas-decision"]).toBe("redirect-sso");
    expect(r.denied_response?.body).toContain('action="https://legacy.contoso.com/exchweb/bin/auth/owaauth.dll"');
    expect(r.denied_response?.body).toContain('name="destination" value="https://legacy.contoso.com/exchange"');
  });

  it("R-LB-7: the OWA pin is a cookie for / and ECP keeps it", async () => {
    const owa = await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("alice@contoso.com") });
    const set = cookiesOf(owa)[0];
    expect(set).toMatch(/; Path=\/;/);
    expect(rulesOf(owa)).toContain("R-LB-7");
    const server = ok(owa)["x-cas-target-server"];
    const ecp = await check({ host: "usa.contoso.com", path: "/ecp/", headers: { ...basic("alice@contoso.com"), cookie: set!.split(";")[0]!, referer: "https://usa.contoso.com/owa/" } });
    expect(ok(ecp)["x-cas-target-server"]).toBe(server);
    expect(cookiesOf(ecp)).toEqual([]);
    expect(rulesOf(ecp)).toContain("R-LB-7");
  });

  it("R-EWS-6: X-PreferServerAffinity + X-BackEndOverrideCookie to a known healthy server of the mailbox's site; an unknown one is ignored (R-SEC-1)", async () => {
    const soap = '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Body><m:GetStreamingEvents/></soap:Body></soap:Envelope>';
    const base = { host: "usa.contoso.com", method: "POST", path: "/EWS/Exchange.asmx", rawBody: Buffer.from(soap) };
    const r = await check({ ...base, headers: { ...basic("kenji@contoso.com"), "x-anchormailbox": "kenji@contoso.com", "x-preferserveraffinity": "true", cookie: "X-BackEndOverrideCookie=e2016-02.asia.contoso.com~1941997017" } });
    expect(rulesOf(r)).toContain("R-EWS-6");
    expect(ok(r)["x-cas-target-server"]).toBe("asia-e2016-02");
    const evil = await check({ ...base, headers: { ...basic("kenji@contoso.com"), "x-preferserveraffinity": "true", cookie: "X-BackEndOverrideCookie=evil.example.com~1" } });
    expect(rulesOf(evil)).toContain("R-SEC-1");
    expect(ok(evil)["x-cas-target-server"]).toBe("asia-e2016-01");
  });

  it("R-OWA-10 and R-OWA-11: legacyRedirectType Manual and redirectToOptimalOwaServer false on usa's OWA directories", async () => {
    const edited = await start((objs) => {
      for (const o of objs) {
        if (o.kind !== "VirtualDirectory" || o.spec.service !== "Owa" || !o.metadata.name.startsWith("usa-")) continue;
        const spec = o.spec as Record<string, unknown>;
        spec.legacyRedirectType = "Manual";
        spec.redirectToOptimalOwaServer = false;
        spec.internalAuthenticationMethods = ["Ntlm", "Negotiate"];
        spec.externalAuthenticationMethods = ["Ntlm"];
      }
    });
    const dave = await edited({ host: "usa.contoso.com", path: "/owa/", headers: basic("dave@contoso.com") });
    expect(denied(dave)["x-cas-decision"]).toBe("redirect-manual");
    expect(rulesOf(dave)).toContain("R-OWA-10");
    const frank = await edited({ host: "usa.contoso.com", path: "/owa/", headers: basic("frank@contoso.com") });
    expect(rulesOf(frank)).toContain("R-OWA-11");
    expect((frank.ok_response ? ok(frank) : denied(frank))["x-cas-decision"]).not.toMatch(/^redirect/);
  });
});
