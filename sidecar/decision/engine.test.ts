// Table-driven tests of the decision engine: at least one case per rule ID of docs/rules.md, each named
// by its ID, on examples/contoso plus small purpose-made organisations.
import { beforeAll, describe, expect, it } from "vitest";
import { loadManifestDir } from "../../operator/provider/manifests.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { buildTopology } from "../../model/topology/build.js";
import type { Topology } from "../../model/topology/types.js";
import type { ApiObject } from "../../crds/index.js";
import type { DirectoryView } from "../../model/directory/types.js";
import { healthFromDown } from "../../model/health.js";
import { decide, type EngineOptions } from "./engine.js";
import { buildNtlmAuthenticate } from "./ntlm.js";
import { basic, buildOrg, directoryOf, httpReq, mailbox, mailReq, vd } from "./test-org.js";
import { ALL_HEALTHY, type HealthView } from "../../model/health.js";
import type { ClientRequest, Decision } from "./types.js";

const EXAMPLE = new URL("../../examples/contoso/", import.meta.url).pathname;
let contoso: Topology;
let contosoDir: DirectoryView;
let contosoObjects: ApiObject[];
beforeAll(async () => {
  const org = await loadOrganisation(EXAMPLE, `${EXAMPLE}mailboxes.csv`);
  expect(org.errors).toEqual([]);
  contoso = org.topology;
  contosoDir = org.directory!;
  contosoObjects = (await loadManifestDir(EXAMPLE)).objects.map((o) => o.object);
});

const USA = "mail.contoso.com";
const EUR = "europe.contoso.com";
const GUID = { kenji: "155bad9d-288c-1bed-bb3f-c799d47b944f", jun: "6b5843ce-9d2d-0599-c3e3-ce6d59c1551f" };

function c(host: string, path: string, user?: string, over: Partial<ClientRequest> = {}): ClientRequest {
  return httpReq(host, path, { headers: user ? { authorization: basic(user) } : {}, ...over });
}
function run(req: ClientRequest, health: HealthView = ALL_HEALTHY, opts?: EngineOptions, topo?: Topology, dir?: DirectoryView) {
  return decide(req, topo ?? contoso, dir ?? contosoDir, health, opts);
}
function route(d: Decision) {
  if (d.outcome !== "local" && d.outcome !== "proxy") throw new Error(`expected a route, got ${JSON.stringify(d)}`);
  return d;
}
function redirect(d: Decision) {
  if (d.outcome !== "redirect") throw new Error(`expected a redirect, got ${JSON.stringify(d)}`);
  return d;
}
function error(d: Decision) {
  if (d.outcome !== "error") throw new Error(`expected an error, got ${JSON.stringify(d)}`);
  return d;
}
const AVAILABILITY = `<soap:Envelope><soap:Body><GetUserAvailabilityRequest xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"/></soap:Body></soap:Envelope>`;
const GET_EVENTS = `<soap:Envelope><soap:Body><m:GetEvents><m:SubscriptionId>x</m:SubscriptionId></m:GetEvents></soap:Body></soap:Envelope>`;

// Two sites, a and b; b's directories are configurable per test.
function twoSites(bVdirs: Parameters<typeof vd>[] , opts: { bFacing?: boolean; bServer?: Partial<Parameters<typeof buildOrg>[0]["servers"][number]> } = {}) {
  return buildOrg({
    sites: [
      { name: "a", hostnames: ["a.example.org"] },
      { name: "b", hostnames: ["b.example.org"], ...(opts.bFacing !== undefined ? { internetFacing: opts.bFacing } : {}) },
    ],
    servers: [
      { name: "a-cas", site: "a", version: "2010", vdirs: [vd("Owa", { externalUrl: "https://a.example.org/owa", internalAuth: ["Fba"], externalAuth: ["Fba"] }), vd("ActiveSync"), vd("Ews")] },
      { name: "a-mbx", site: "a", version: "2010", roles: ["Mailbox"] },
      { name: "b-cas", site: "b", version: "2010", vdirs: bVdirs.map((args) => vd(...args)), ...(opts.bServer ?? {}) },
      { name: "b-mbx", site: "b", version: "2010", roles: ["Mailbox"] },
    ],
    databases: [{ name: "db-a", active: "a-mbx" }, { name: "db-b", active: "b-mbx" }],
  });
}
const twoDir = directoryOf([mailbox("ann", "db-a"), mailbox("ben", "db-b")]);
const fromA = (path: string, user = "ben", over: Partial<ClientRequest> = {}) =>
  httpReq("a.example.org", path, { headers: { authorization: basic(user) }, ...over });

describe("general rules", () => {
  it("R-GEN-1: one site only: everything is local", () => {
    const t = buildOrg({
      sites: [{ name: "only", hostnames: ["mail.example.org"] }],
      servers: [
        { name: "cas1", site: "only", version: "2010", vdirs: [vd("Owa"), vd("ActiveSync")] },
        { name: "mbx1", site: "only", version: "2010", roles: ["Mailbox"] },
      ],
      databases: [{ name: "db1", active: "mbx1" }],
    });
    const d = route(run(httpReq("mail.example.org", "/owa", { headers: { authorization: basic("u1") } }), ALL_HEALTHY, {}, t, directoryOf([mailbox("u1", "db1")])));
    expect(d.outcome).toBe("local");
    expect(d.rules[0]).toBe("R-GEN-1");
    expect(d.targetServer).toBe("cas1");
  });

  it("R-GEN-2: never sent to a CAS of another version: a 2010 mailbox in a site with only 2013 CAS is an error", () => {
    const t = buildOrg({
      sites: [{ name: "a", hostnames: ["a.example.org"] }, { name: "b" }],
      servers: [
        { name: "a-cas", site: "a", version: "2010", vdirs: [vd("Ews")] },
        { name: "b-e2013", site: "b", version: "2013", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Ews")] },
        { name: "b-mbx", site: "b", version: "2010", roles: ["Mailbox"] },
      ],
      databases: [{ name: "db-b", active: "b-mbx" }],
    });
    const d = error(run(fromA("/EWS/Exchange.asmx"), ALL_HEALTHY, {}, t, twoDir));
    expect(d.status).toBe(502);
    expect(d.rules).toContain("R-GEN-2");
    expect(d.reason).not.toMatch(/b-e2013|example\.org/);
  });

  it("R-GEN-3: cross-site traffic is HTTPS: an http InternalUrl is refused; insecureSkipVerify is reported", () => {
    const t = twoSites([["Ews", { internalUrl: "http://b-cas.b.example.org/EWS/Exchange.asmx" }]]);
    const d = error(run(fromA("/EWS/Exchange.asmx"), ALL_HEALTHY, {}, t, twoDir));
    expect(d.rules).toContain("R-GEN-3");
    const t2 = twoSites([["Ews", {}]], { bServer: { insecure: true } });
    const d2 = route(run(fromA("/EWS/Exchange.asmx"), ALL_HEALTHY, {}, t2, twoDir));
    expect(d2.outcome).toBe("proxy");
    expect(d2.rules).toContain("R-GEN-3");
    expect(d2.trace.join("\n")).toMatch(/insecureSkipVerify/);
  });

  it("R-GEN-4: a site that is not internet facing is reached by proxy even when a directory has an ExternalUrl", () => {
    const t = twoSites([["Owa", { externalUrl: "https://b.example.org/owa" }]], { bFacing: false });
    const d = route(run(fromA("/owa"), ALL_HEALTHY, {}, t, twoDir));
    expect(d.outcome).toBe("proxy");
    expect(d.targetSite).toBe("b");
    expect(d.rules).toContain("R-GEN-4");
    // Contoso's asia (internetFacing: false) is reached by proxy from usa.
    expect(route(run(c(USA, "/owa", "jun"))).targetSite).toBe("asia");
  });

  it("R-GEN-5: ExternalUrl + redirectable protocol → redirect; no ExternalUrl → proxy", () => {
    const r = redirect(run(c(USA, "/owa", "frank")));
    expect(r.rules).toContain("R-GEN-5");
    const p = route(run(c(USA, "/owa", "jun")));
    expect(p.outcome).toBe("proxy");
    expect(p.rules).toContain("R-GEN-5");
  });

  it("R-GEN-5: an ExternalUrl on one of the receiving site's own host names is not redirected to (it would loop): proxy", () => {
    const t = twoSites([["Owa", { externalUrl: "https://a.example.org/owa" }], ["ActiveSync", { externalUrl: "https://a.example.org/Microsoft-Server-ActiveSync" }]]);
    for (const path of ["/owa", "/Microsoft-Server-ActiveSync"]) {
      const d = route(run(fromA(path), ALL_HEALTHY, {}, t, twoDir));
      expect(d).toMatchObject({ outcome: "proxy", targetSite: "b" });
      expect(d.trace.join("\n")).toMatch(/would loop/);
    }
  });

  it("R-GEN-6: a mailbox site without a CAS is an error naming nothing internal", () => {
    const t = buildOrg({
      sites: [{ name: "a", hostnames: ["a.example.org"] }, { name: "b" }],
      servers: [
        { name: "a-cas", site: "a", version: "2010", vdirs: [vd("Owa")] },
        { name: "b-mbx", site: "b", version: "2010", roles: ["Mailbox"] },
      ],
      databases: [{ name: "db-b", active: "b-mbx" }],
    });
    expect(t.problems.some((p) => p.message.startsWith("R-GEN-6"))).toBe(true);
    const d = error(run(fromA("/owa"), ALL_HEALTHY, {}, t, twoDir));
    expect(d.rules).toContain("R-GEN-6");
    expect(d.reason).not.toMatch(/b-mbx/);
  });

  it("R-GEN-7: Basic-only directories cannot be proxied; POP3/IMAP4 can", () => {
    const t = twoSites([["Owa", { internalAuth: ["Basic"] }], ["Pop3", {}]]);
    const d = error(run(fromA("/owa"), ALL_HEALTHY, {}, t, twoDir));
    expect(d.status).toBe(403);
    expect(d.rules).toContain("R-GEN-7");
    const m = route(run(mailReq("a.example.org", "Pop3", "ben"), ALL_HEALTHY, {}, t, twoDir));
    expect(m.outcome).toBe("proxy");
    expect(m.mailBackend?.encryption).toBe("Ssl");
  });
});

describe("OWA", () => {
  it("R-OWA-1: 2010 mailbox in the receiving site is served locally", () => {
    const d = route(run(c(USA, "/owa/", "alice")));
    expect(d.outcome).toBe("local");
    expect(["usa-cas01", "usa-cas02"]).toContain(d.targetServer);
    expect(d.cluster).toBe(`server/${d.targetServer}/owa`);
    expect(d.rules).toContain("R-OWA-1");
  });

  it("R-OWA-2: mailbox in another site with an OWA ExternalUrl: Manual page or Silent redirect per the receiving directory", () => {
    // europe's directories are Manual (the default).
    const m = redirect(run(c(EUR, "/owa", "alice")));
    expect(m.kind).toBe("manual");
    expect(m.url).toBe("https://usa.contoso.com/owa");
    expect(m.rules).toContain("R-OWA-2");
    // usa's are Silent (and FBA both ends: see R-OWA-3); without a password it is a plain 302.
    const s = redirect(run(httpReq(USA, "/owa", { headers: { "x-anchormailbox": "SMTP:frank@contoso.com" } })));
    expect(s.kind).toBe("silent");
    expect(s.url).toBe("https://europe.contoso.com/owa");
  });

  it("R-OWA-3: Silent + FBA at both ends over HTTPS with credentials → single sign-on form", () => {
    const d = redirect(run(c(USA, "/owa", "frank")));
    expect(d.kind).toBe("sso");
    expect(d.rules).toContain("R-OWA-3");
    const post = redirect(run(httpReq(USA, "/owa/auth.owa", { method: "POST", body: "destination=x&flags=4&username=contoso%5Cfrank&password=pw" })));
    expect(post.kind).toBe("sso");
    expect(post.identity).toEqual({ value: "contoso\\frank", source: "owa-fba-username" });
    // Plain HTTP: no SSO.
    expect(redirect(run(c(USA, "/owa", "frank", { scheme: "http" }))).kind).toBe("silent");
  });

  it("R-OWA-4: another site without ExternalUrl, target uses IWA → proxy to its InternalUrl", () => {
    const d = route(run(c(USA, "/owa", "jun")));
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "asia", targetServer: "asia-cas01", cluster: "server/asia-cas01/owa", affinity: "set" });
    expect(d.rules).toContain("R-OWA-4");
  });

  it("R-OWA-5: another site without ExternalUrl and without IWA → error", () => {
    const t = twoSites([["Owa", { internalAuth: ["Fba"] }]]);
    const d = error(run(fromA("/owa"), ALL_HEALTHY, {}, t, twoDir));
    expect(d.status).toBe(403);
    expect(d.rules).toContain("R-OWA-5");
  });

  it("R-OWA-6: 2003 mailbox → exchange2003Url if the receiving directory has one, else error", () => {
    // With credentials and an FBA receiving directory it is the R-OWA-9 single sign-on; without, a 302.
    const plain = redirect(run(httpReq(USA, "/owa", { headers: { "x-anchormailbox": "dave@contoso.com" } })));
    expect(plain).toMatchObject({ kind: "silent", url: "https://legacy.contoso.com/exchange" });
    expect(plain.rules).toEqual(["R-OWA-6", "R-OWA-9"]);
    const e = error(run(c(EUR, "/owa", "dave")));
    expect(e.rules).toContain("R-OWA-6");
  });

  it("R-OWA-7: 2007 mailbox in the same site → redirect to a 2007 CAS, steps (a) to (d)", () => {
    const a = redirect(run(c(USA, "/owa", "carol")));
    expect(a).toMatchObject({ kind: "sso", url: "https://legacy.usa.contoso.com/owa" });
    expect(a.trace.join("\n")).toMatch(/step \(a\)/);
    const site = (e2007: Parameters<typeof vd>[1]) =>
      buildOrg({
        sites: [{ name: "a", hostnames: ["a.example.org"] }],
        servers: [
          { name: "cas10", site: "a", version: "2010", vdirs: [vd("Owa", { internalAuth: ["Fba"], externalAuth: ["Fba"], externalUrl: "https://a.example.org/owa" })] },
          { name: "cas07", site: "a", version: "2007", vdirs: [vd("Owa", e2007)] },
          { name: "mbx07", site: "a", version: "2007", roles: ["Mailbox"] },
        ],
        databases: [{ name: "db07", active: "mbx07" }],
      });
    const dir = directoryOf([mailbox("old", "db07")]);
    const req = httpReq("a.example.org", "/owa", { headers: { authorization: basic("old") } });
    // (b) ExternalUrl with other authentication: the user signs in again.
    const b = redirect(run(req, ALL_HEALTHY, {}, site({ externalUrl: "https://legacy.example.org/owa", externalAuth: ["Basic"], internalAuth: ["Ntlm"] }), dir));
    expect(b).toMatchObject({ kind: "silent", url: "https://legacy.example.org/owa" });
    expect(b.trace.join("\n")).toMatch(/step \(b\)/);
    // (c) no ExternalUrl; InternalUrl with the same (FBA) authentication: single sign-on.
    const cc = redirect(run(req, ALL_HEALTHY, {}, site({ internalAuth: ["Fba"] }), dir));
    expect(cc).toMatchObject({ kind: "sso", url: "https://cas07.a.example.org/owa" });
    // (d) InternalUrl with other authentication.
    const dd = redirect(run(req, ALL_HEALTHY, {}, site({ internalAuth: ["Ntlm"] }), dir));
    expect(dd).toMatchObject({ kind: "silent", url: "https://cas07.a.example.org/owa" });
    expect(dd.trace.join("\n")).toMatch(/step \(d\)/);
  });

  it("R-OWA-8: 2007 mailbox in another site: redirect if it has an ExternalUrl, else proxy if IWA, else error", () => {
    const r = redirect(run(c(USA, "/owa", "hans")));
    expect(r.url).toBe("https://europe.contoso.com/owa");
    expect(r.rules).toContain("R-OWA-8");
    const t = (auth: ("Ntlm" | "Fba")[]) =>
      buildOrg({
        sites: [{ name: "a", hostnames: ["a.example.org"] }, { name: "b" }],
        servers: [
          { name: "a-cas", site: "a", version: "2010", vdirs: [vd("Owa")] },
          { name: "b-cas07", site: "b", version: "2007", vdirs: [vd("Owa", { internalAuth: auth })] },
          { name: "b-mbx07", site: "b", version: "2007", roles: ["Mailbox"] },
        ],
        databases: [{ name: "db-b", active: "b-mbx07" }],
      });
    const p = route(run(fromA("/owa"), ALL_HEALTHY, {}, t(["Ntlm"]), twoDir));
    expect(p).toMatchObject({ outcome: "proxy", targetServer: "b-cas07" });
    expect(p.rules).toContain("R-OWA-8");
    expect(error(run(fromA("/owa"), ALL_HEALTHY, {}, t(["Fba"]), twoDir)).rules).toContain("R-OWA-5");
  });
});

describe("ECP", () => {
  it("R-ECP-1: ECP opened from OWA: local in the mailbox site, proxied to another site", () => {
    const local = route(run(c(USA, "/ecp/", "alice", { headers: { authorization: basic("alice"), referer: "https://mail.contoso.com/owa/" } })));
    expect(local.outcome).toBe("local");
    expect(local.rules).toContain("R-ECP-1");
    const p = route(run(c(USA, "/ecp/", "jun", { headers: { authorization: basic("jun"), referer: "https://mail.contoso.com/owa/#path=/mail" } })));
    expect(p).toMatchObject({ outcome: "proxy", targetSite: "asia", cluster: "server/asia-cas01/ecp" });
    expect(p.rules).toContain("R-ECP-1");
  });

  it("R-ECP-2: ECP navigated to directly (no Referer, or one outside /owa) redirects like OWA", () => {
    const d = redirect(run(c(USA, "/ecp/", "frank")));
    expect(d.url).toBe("https://europe.contoso.com/ecp");
    expect(d.rules).toContain("R-ECP-2");
    const other = redirect(run(c(USA, "/ecp/", "frank", { headers: { authorization: basic("frank"), referer: "https://intranet.contoso.com/links" } })));
    expect(other.rules).toContain("R-ECP-2");
  });
});

describe("ActiveSync", () => {
  it("R-EAS-1: 2003 mailbox → straight to the 2003 server's ActiveSync, which must use IWA", () => {
    const d = route(run(c(USA, "/Microsoft-Server-ActiveSync?Cmd=Sync&User=dave&DeviceId=1&DeviceType=x", "dave")));
    expect(d).toMatchObject({ targetServer: "usa-e2003", cluster: "server/usa-e2003/activesync" });
    expect(d.rewrite).toBeUndefined();
    expect(d.rules).toContain("R-EAS-1");
    const t = buildOrg({
      sites: [{ name: "a", hostnames: ["a.example.org"] }],
      servers: [
        { name: "cas", site: "a", version: "2010", vdirs: [vd("ActiveSync")] },
        { name: "e2003", site: "a", version: "2003", roles: ["Mailbox"], vdirs: [vd("ActiveSync", { internalAuth: ["Basic"] })] },
      ],
      databases: [{ name: "db3", active: "e2003" }],
    });
    const e = error(run(httpReq("a.example.org", "/Microsoft-Server-ActiveSync", { headers: { authorization: basic("x") } }), ALL_HEALTHY, {}, t, directoryOf([mailbox("x", "db3")])));
    expect(e.rules).toContain("R-EAS-1");
  });

  it("R-EAS-2: 2007 mailbox → a 2007 CAS of the mailbox site (even the receiving one) at /Proxy", () => {
    const d = route(run(c(USA, "/Microsoft-Server-ActiveSync?Cmd=Sync", "carol")));
    expect(d).toMatchObject({ outcome: "local", cluster: "pool/usa/v2007/activesync", rewrite: "eas-proxy", upstreamPath: "/Microsoft-Server-ActiveSync/Proxy?Cmd=Sync" });
    expect(d.rules).toContain("R-EAS-2");
    const x = route(run(c(USA, "/microsoft-server-activesync?Cmd=Ping", "hans")));
    expect(x).toMatchObject({ outcome: "proxy", targetSite: "europe", cluster: "pool/europe/v2007/activesync", upstreamPath: "/Microsoft-Server-ActiveSync/Proxy?Cmd=Ping" });
  });

  it("R-EAS-3: 2010+ mailbox in the receiving site is served locally", () => {
    const d = route(run(c(USA, "/Microsoft-Server-ActiveSync?Cmd=Sync", "alice")));
    expect(d).toMatchObject({ outcome: "local", cluster: "pool/usa/v2010/activesync", affinity: "none" });
    expect(d.rules).toContain("R-EAS-3");
  });

  it("R-EAS-4: cross-site mailbox with an ExternalUrl gets 451 + X-MS-Location", () => {
    const d = redirect(run(c(USA, "/Microsoft-Server-ActiveSync?Cmd=Sync", "frank")));
    expect(d).toMatchObject({ kind: "eas451", url: "https://europe.contoso.com/Microsoft-Server-ActiveSync" });
    expect(d.rules).toContain("R-EAS-4");
  });

  it("R-EAS-5: cross-site mailbox without an ExternalUrl → proxy to the target's InternalUrl /Proxy (IWA)", () => {
    const d = route(run(c(USA, "/Microsoft-Server-ActiveSync?Cmd=Sync", "jun")));
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "asia", cluster: "pool/asia/v2010/activesync", rewrite: "eas-proxy" });
    expect(d.rules).toContain("R-EAS-5");
    const t = twoSites([["ActiveSync", { internalAuth: ["Basic"] }]]);
    const e = error(run(fromA("/Microsoft-Server-ActiveSync"), ALL_HEALTHY, {}, t, twoDir));
    expect(e.rules).toEqual(expect.arrayContaining(["R-EAS-5", "R-GEN-7"]));
  });

  it("R-EAS-6: the ActiveSync target does not answer → 503, no retry in another site", () => {
    const d = error(run(c(USA, "/Microsoft-Server-ActiveSync?Cmd=Sync", "jun"), healthFromDown(["asia-cas01"])));
    expect(d.status).toBe(503);
    expect(d.rules).toContain("R-EAS-6");
    expect(d.reason).not.toMatch(/asia-cas01|contoso/);
  });
});

describe("EWS and Availability", () => {
  it("R-EWS-1: EWS never redirects, even to a site with an ExternalUrl", () => {
    const d = route(run(c(USA, "/EWS/Exchange.asmx", "frank", { method: "POST", body: "<FindItem/>" })));
    expect(d.outcome).toBe("proxy");
    expect(d.targetSite).toBe("europe");
    expect(d.rules).toContain("R-EWS-1");
  });

  it("R-EWS-2: local in the mailbox site; otherwise the target site's EWS InternalUrl", () => {
    const l = route(run(c(USA, "/ews/exchange.asmx", "alice")));
    expect(l.outcome).toBe("local");
    expect(l.rules).toContain("R-EWS-2");
    const p = route(run(c(USA, "/ews/exchange.asmx", "jun")));
    expect(p).toMatchObject({ outcome: "proxy", cluster: "server/asia-cas01/ews" });
  });

  it("R-EWS-3: Availability for 2003 → the 2003 server's /Public; for 2007 → error", () => {
    const d = route(run(c(USA, "/EWS/Exchange.asmx", "dave", { method: "POST", body: AVAILABILITY })));
    expect(d).toMatchObject({ targetServer: "usa-e2003", cluster: "server/usa-e2003/public", rewrite: "public-freebusy", upstreamPath: "/public" });
    expect(d.rules).toContain("R-EWS-3");
    const e = error(run(c(USA, "/EWS/Exchange.asmx", "carol", { method: "POST", body: AVAILABILITY })));
    expect(e.rules).toContain("R-EWS-3");
  });

  it("R-EWS-4: GetEvents goes to one server's internalNLBBypassUrl and pins it", () => {
    const d = route(run(c(USA, "/EWS/Exchange.asmx", "frank", { method: "POST", body: GET_EVENTS })));
    expect(["europe-cas01", "europe-cas02"]).toContain(d.targetServer);
    expect(d.cluster).toBe(`server/${d.targetServer}/ews`);
    expect(d.affinity).toBe("set");
    expect(d.rules).toContain("R-EWS-4");
    const kept = route(run(c(USA, "/EWS/Exchange.asmx", "frank", { method: "POST", body: GET_EVENTS.replace(/GetEvents/g, "Unsubscribe"), pinnedServer: "europe-cas02" })));
    expect(kept).toMatchObject({ targetServer: "europe-cas02", affinity: "keep" });
  });

  it("R-EWS-5: Availability is round robin across the target site, no affinity", () => {
    const d = route(run(c(USA, "/EWS/Exchange.asmx", "frank", { method: "POST", body: AVAILABILITY, pinnedServer: "europe-cas01" })));
    expect(d).toMatchObject({ outcome: "proxy", cluster: "pool/europe/v2010/ews", affinity: "none" });
    expect(d.targetServer).toBeUndefined();
    expect(d.rules).toEqual(expect.arrayContaining(["R-EWS-5", "R-LB-4"]));
  });
});

describe("POP3 and IMAP4", () => {
  it("R-POP-1: 2003 mailbox → the 2003 server's own POP3", () => {
    const d = route(run(mailReq(USA, "Pop3", "dave")));
    expect(d).toMatchObject({ targetServer: "usa-e2003", mailBackend: { host: "e2003.usa.contoso.com", port: 995, encryption: "Ssl" } });
    expect(d.rules).toContain("R-POP-1");
  });

  it("R-POP-2: 2007 mailbox → a 2007 CAS of the mailbox site", () => {
    const d = route(run(mailReq(USA, "Imap4", "hans")));
    expect(d).toMatchObject({ outcome: "proxy", targetServer: "europe-e2007-cas", mailBackend: { port: 993 } });
    expect(d.rules).toContain("R-POP-2");
  });

  it("R-POP-3: 2010+ in the receiving site is local; elsewhere the target CAS's internalConnectionSettings", () => {
    const l = route(run(mailReq(USA, "Pop3", "alice")));
    expect(l.outcome).toBe("local");
    expect(l.rules).toContain("R-POP-3");
    const p = route(run(mailReq(USA, "Pop3", "frank")));
    expect(p.outcome).toBe("proxy");
    expect(p.mailBackend?.host).toMatch(/^cas0[12]\.europe\.contoso\.com$/);
  });

  it("R-POP-4: IMAP4 with NTLM to a mailbox in another site is refused", () => {
    const d = error(run(mailReq(USA, "Imap4", "frank", "NTLM")));
    expect(d.status).toBe(403);
    expect(d.rules).toContain("R-POP-4");
    expect(route(run(mailReq(USA, "Imap4", "alice", "NTLM"))).outcome).toBe("local");
  });

  it("R-POP-5: only servers whose POP3 service answers", () => {
    const d = route(run(mailReq(USA, "Pop3", "frank"), healthFromDown(["europe-cas01/Pop3"])));
    expect(d.targetServer).toBe("europe-cas02");
    expect(d.rules).toContain("R-POP-5");
    const e = error(run(mailReq(USA, "Pop3", "frank"), healthFromDown(["europe-cas01/Pop3", "europe-cas02/Pop3"])));
    expect(e.status).toBe(503);
  });
});

describe("OAB, Autodiscover, Outlook", () => {
  it("R-OAB-1: OAB is served locally even for a mailbox in another site", () => {
    const d = route(run(c(USA, "/OAB/abc/oab.xml", "frank")));
    expect(d).toMatchObject({ outcome: "local", targetSite: "usa", cluster: "pool/usa/v2013plus/oab" });
    expect(d.rules).toContain("R-OAB-1");
  });

  it("R-AUTOD-1: Autodiscover is routed by the EMailAddress in its body", () => {
    const body = `<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>jun@contoso.com</EMailAddress><AcceptableResponseSchema>x</AcceptableResponseSchema></Request></Autodiscover>`;
    const d = route(run(c(USA, "/Autodiscover/Autodiscover.xml", "alice", { method: "POST", body })));
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "asia", cluster: "pool/asia/v2010/autodiscover", identity: { source: "autodiscover-emailaddress" } });
    expect(d.rules).toContain("R-AUTOD-1");
  });

  it("R-OUT-1: MAPI MailboxId and RPC <guid>@<domain>:6001 name the mailbox to route to", () => {
    const m = route(run(c(USA, `/mapi/emsmdb/?MailboxId=${GUID.kenji}@contoso.com`, "alice", { method: "POST" })));
    expect(m).toMatchObject({ outcome: "proxy", targetServer: "asia-e2016-01", cluster: "server/asia-e2016-01/mapi" });
    expect(m.rules).toContain("R-OUT-1");
    const r = route(run(c(USA, `/rpc/rpcproxy.dll?${GUID.jun}@contoso.com:6001`, undefined, { method: "RPC_IN_DATA" })));
    // One server for a 2010 mailbox's RPC channels (R-OUT-3), not the pool.
    expect(r).toMatchObject({ outcome: "proxy", targetSite: "asia", cluster: expect.stringMatching(/^server\/asia-cas0[12]\/rpchttp$/) });
    expect(r.rules).toContain("R-OUT-1");
  });
});

describe("load balancing and affinity", () => {
  it("R-LB-1: a combined CAS+Mailbox server holding the active copy is the target", () => {
    const t = buildOrg({
      sites: [{ name: "a", hostnames: ["a.example.org"] }, { name: "b" }],
      servers: [
        { name: "a-cas", site: "a", version: "2010", vdirs: [vd("Owa"), vd("ActiveSync")] },
        { name: "b-cas1", site: "b", version: "2010", vdirs: [vd("Owa"), vd("ActiveSync")] },
        { name: "b-combo", site: "b", version: "2010", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Owa"), vd("ActiveSync")] },
      ],
      databases: [{ name: "db-b", active: "b-combo" }],
    });
    for (const path of ["/owa", "/Microsoft-Server-ActiveSync"]) {
      const d = route(run(fromA(path, "ben", { pinnedServer: "b-cas1" }), ALL_HEALTHY, {}, t, twoDir));
      expect(d.targetServer).toBe("b-combo");
      expect(d.rules).toContain("R-LB-1");
    }
  });

  it("R-LB-2: OWA keeps its pin while the server is usable; moves (affinity set) when it is not", () => {
    const kept = route(run(c(USA, "/owa/", "alice", { pinnedServer: "usa-cas01" })));
    expect(kept).toMatchObject({ targetServer: "usa-cas01", affinity: "keep" });
    expect(kept.rules).toContain("R-LB-2");
    const moved = route(run(c(USA, "/owa/", "alice", { pinnedServer: "usa-cas01" }), healthFromDown(["usa-cas01"])));
    expect(moved).toMatchObject({ targetServer: "usa-cas02", affinity: "set" });
    // A pin to a server in maintenance moves too.
    const objs = contosoObjects.map((o) => (o.kind === "ClientAccessServer" && o.metadata.name === "usa-cas02" ? { ...o, spec: { ...o.spec, maintenance: true } } : o));
    const maint = route(run(c(USA, "/owa/", "alice", { pinnedServer: "usa-cas02" }), ALL_HEALTHY, {}, buildTopology(objs)));
    expect(maint).toMatchObject({ targetServer: "usa-cas01", affinity: "set" });
  });

  it("R-LB-3: ActiveSync goes to the target's pool, round robin, no affinity", () => {
    const d = route(run(c(USA, "/Microsoft-Server-ActiveSync?Cmd=Sync", "jun", { pinnedServer: "asia-cas01" })));
    expect(d).toMatchObject({ cluster: "pool/asia/v2010/activesync", affinity: "none" });
    expect(d.rules).toContain("R-LB-3");
  });

  it("R-LB-4: Availability is stateless round robin", () => {
    const d = route(run(c(USA, "/EWS/Exchange.asmx", "alice", { method: "POST", body: AVAILABILITY })));
    expect(d).toMatchObject({ cluster: "pool/usa/v2010/ews", affinity: "none" });
    expect(d.rules).toContain("R-LB-4");
  });

  it("R-LB-5: affinity by cookie pin or, without identity, by client address", () => {
    const pinned = route(run(httpReq(USA, "/owa/", { pinnedServer: "usa-cas02" })));
    expect(pinned).toMatchObject({ targetServer: "usa-cas02", affinity: "keep" });
    expect(pinned.rules).toContain("R-LB-5");
    const t = buildOrg({
      sites: [{ name: "a", hostnames: ["a.example.org"] }],
      servers: [
        { name: "cas1", site: "a", version: "2010", vdirs: [vd("Owa")] },
        { name: "cas2", site: "a", version: "2010", vdirs: [vd("Owa")] },
      ],
      databases: [],
    });
    const byIp = (ip: string) => route(run(httpReq("a.example.org", "/owa", { sourceAddress: ip }), ALL_HEALTHY, {}, t, twoDir));
    const first = byIp("192.0.2.10");
    expect(first.affinity).toBe("set");
    expect(first.rules).toContain("R-LB-5");
    expect(byIp("192.0.2.10").targetServer).toBe(first.targetServer);
  });

  it("R-LB-6: pools hold the servers of one site only: the cluster names the target site", () => {
    const d = route(run(c(USA, "/Microsoft-Server-ActiveSync?Cmd=Sync", "jun")));
    expect(d.cluster.startsWith("pool/asia/")).toBe(true);
    expect(d.rules).toContain("R-LB-6");
  });
});

describe("Exchange 2013 and later", () => {
  it("R-2013-1: no affinity for 2013+ mailboxes: an old pin is cleared", () => {
    const d = route(run(c(USA, "/owa/", "erin", { pinnedServer: "usa-cas01" })));
    expect(d).toMatchObject({ targetServer: "usa-e2013", affinity: "clear" });
    expect(d.rules).toContain("R-2013-1");
  });

  it("R-2013-2: requests follow the database's active copy after a failover", () => {
    const before = route(run(c(USA, "/owa/", "kenji")));
    expect(before.targetServer).toBe("asia-e2016-01");
    const failedOver = contosoObjects.map((o) =>
      o.kind === "MailboxDatabase" && o.metadata.name === "db-asia-2016" ? { ...o, spec: { ...o.spec, activeServer: "asia-e2016-02" } } : o,
    );
    const after = route(run(c(USA, "/owa/", "kenji"), ALL_HEALTHY, {}, buildTopology(failedOver)));
    expect(after.targetServer).toBe("asia-e2016-02");
    expect(after.rules).toContain("R-2013-2");
    // The active server down: any 2013+ server of the site takes it (R-2013-1).
    const down = route(run(c(USA, "/owa/", "kenji"), healthFromDown(["asia-e2016-01"])));
    expect(down.cluster).toBe("pool/asia/v2013plus/owa");
  });

  it("R-2013-3: back-end connections are pooled: users of one server share one upstream cluster", () => {
    const a = route(run(c(USA, "/mapi/emsmdb/", "kenji")));
    const b = route(run(c(USA, "/mapi/emsmdb/", "lina")));
    expect(a.cluster).toBe(b.cluster);
    expect(a.rules).toContain("R-2013-3");
  });

  it("R-2013-4: the front door takes HTTP(S) applications, POP3 and IMAP4 only", () => {
    const d = error(run(c(USA, "/wp-admin/", "alice")));
    expect(d).toMatchObject({ status: 404, rules: ["R-2013-4"] });
    expect(route(run(mailReq(USA, "Imap4", "alice"))).service).toBe("Imap4");
  });
});

describe("engine choices (docs/decisions.md)", () => {
  it("no identity → the receiving site's pool, so the server challenges", () => {
    const d = route(run(httpReq(EUR, "/Microsoft-Server-ActiveSync?Cmd=Options", { method: "OPTIONS" })));
    expect(d).toMatchObject({ outcome: "local", targetSite: "europe", rules: ["R-ENG-NO-IDENTITY", "R-LB-6"] });
  });

  it("unknown mailbox → local, so the local CAS answers (no account enumeration)", () => {
    const d = route(run(c(USA, "/owa/", "nobody@contoso.com")));
    expect(d.outcome).toBe("local");
    expect(d.rules).toContain("R-ENG-UNKNOWN-MAILBOX");
  });

  it("directory unavailable → 503", () => {
    const down: DirectoryView = { find: () => ({ status: "unavailable", reason: "ldap timeout" }) };
    const d = error(run(c(USA, "/owa/", "alice"), ALL_HEALTHY, {}, contoso, down));
    expect(d).toMatchObject({ status: 503, rules: ["R-ENG-DIRECTORY-UNAVAILABLE"] });
  });

  it("R-ENG-UNKNOWN-DATABASE: a mailbox on a database the topology does not have → 502, never a guess", () => {
    const dir = directoryOf([mailbox("lost", "DB-NOWHERE")]);
    const d = error(run(c(USA, "/owa/", "lost@example.org"), ALL_HEALTHY, {}, contoso, dir));
    expect(d).toMatchObject({ status: 502, rules: ["R-ENG-UNKNOWN-DATABASE"] });
    expect(d.trace.join("\n")).toContain("DB-NOWHERE");
  });

  it("R-ENG-UNKNOWN-SITE: unknown host uses the default site, else 421", () => {
    expect(route(run(c("10.0.0.1", "/owa/", "frank"), ALL_HEALTHY, { defaultSite: "europe" })).outcome).toBe("local");
    expect(error(run(c("10.0.0.1", "/owa/", "frank"))).status).toBe(421);
  });

  it("never throws: an internal failure is a 503 error decision", () => {
    const broken: HealthView = { isServerHealthy: () => { throw new Error("boom"); }, isServiceHealthy: () => true };
    const d = error(run(c(USA, "/owa/", "alice"), broken));
    expect(d).toMatchObject({ status: 503, rules: ["R-ENG-INTERNAL"] });
  });

  it("identity precedence: X-AnchorMailbox before Basic; NTLM type 3 identities resolve", () => {
    const d = redirect(run(httpReq(USA, "/owa/", { headers: { "x-anchormailbox": "SMTP:frank@contoso.com", authorization: basic("alice") } })));
    expect(d.identity).toEqual({ value: "frank@contoso.com", source: "x-anchormailbox" });
    const ntlm = `NTLM ${buildNtlmAuthenticate("jun", "CONTOSO").toString("base64")}`;
    const n = route(run(httpReq(USA, "/EWS/Exchange.asmx", { headers: { authorization: ntlm } })));
    expect(n).toMatchObject({ targetSite: "asia", identity: { value: "CONTOSO\\jun", source: "ntlm" } });
  });

  it("trace names the receiving site, identity, mailbox, database, active server and version", () => {
    const d = run(c(USA, "/owa/", "jun"));
    const t = d.trace.join("\n");
    for (const s of ["receiving site usa", "identity jun from basic", "mailbox jun@contoso.com", "DB-ASIA-2010", "asia-mbx01", "Exchange 2010", "R-OWA-4"]) {
      expect(t).toContain(s);
    }
  });
});
