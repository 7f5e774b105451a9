// The rules added from Microsoft's public Exchange documentation (docs/rules.md, "Additions"): one or
// more cases per rule ID, each named by it, on small purpose-made organisations.
import { describe, expect, it } from "vitest";
import { ALL_HEALTHY, healthFromDown, type HealthView } from "../../model/health.js";
import type { Topology } from "../../model/topology/types.js";
import { encodeEasBase64Query } from "./eas-query.js";
import { decide } from "./engine.js";
import { exploitPattern } from "./security.js";
import { easLocation, easProtocolVersion } from "./rules/eas.js";
import { backEndOverrideServer } from "./rules/ews.js";
import { basic, buildOrg, directoryOf, httpReq, mailbox, vd, type VdirSpec } from "./test-org.js";
import type { ClientRequest, Decision } from "./types.js";

const A = "a.example.org";
const B = "b.example.org";
const FBA = { internalAuth: ["Fba" as const, "Ntlm" as const], externalAuth: ["Fba" as const] };

function org(opts: { aOwa?: Partial<VdirSpec>; bEasExt?: string | null; bEasAuth?: ("Basic" | "Ntlm")[]; bEasExt2?: string | null } = {}): Topology {
  return buildOrg({
    sites: [
      { name: "a", hostnames: [A] },
      { name: "b", hostnames: [B] },
    ],
    servers: [
      {
        name: "a-cas",
        site: "a",
        version: "2010",
        vdirs: [
          vd("Owa", { externalUrl: `https://${A}/owa`, exchange2003Url: "https://legacy.example.org/exchange", ...FBA, ...opts.aOwa }),
          vd("Ecp", { externalUrl: `https://${A}/ecp`, ...FBA }),
          vd("ActiveSync", { externalUrl: `https://${A}/Microsoft-Server-ActiveSync` }),
          vd("Ews"),
        ],
      },
      { name: "a-e2007", site: "a", version: "2007", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Owa", { internalUrl: "https://a-e2007.a.example.org/owa" })] },
      { name: "a-e2003", site: "a", version: "2003", roles: ["Mailbox"] },
      {
        name: "b-cas1",
        site: "b",
        version: "2010",
        vdirs: [
          vd("Owa", { externalUrl: `https://${B}/owa`, ...FBA }),
          vd("Ecp", { externalUrl: `https://${B}/ecp`, ...FBA }),
          vd("ActiveSync", { externalUrl: opts.bEasExt === undefined ? `https://${B}/Microsoft-Server-ActiveSync` : opts.bEasExt, internalAuth: opts.bEasAuth ?? ["Ntlm"] }),
          vd("Ews"),
        ],
      },
      {
        name: "b-cas2",
        site: "b",
        version: "2010",
        vdirs: [
          vd("Owa", { externalUrl: `https://${B}/owa`, ...FBA }),
          vd("Ecp", { externalUrl: `https://${B}/ecp`, ...FBA }),
          vd("ActiveSync", { externalUrl: opts.bEasExt2 === undefined ? (opts.bEasExt === undefined ? `https://${B}/Microsoft-Server-ActiveSync` : opts.bEasExt) : opts.bEasExt2, internalAuth: opts.bEasAuth ?? ["Ntlm"] }),
          vd("Ews"),
        ],
      },
      { name: "b-mbx", site: "b", version: "2010", roles: ["Mailbox"] },
      { name: "b-e16a", site: "b", version: "2016", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Owa"), vd("Ews"), vd("ActiveSync")] },
      { name: "b-e16b", site: "b", version: "2016", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Owa"), vd("Ews"), vd("ActiveSync")] },
      { name: "a-e16", site: "a", version: "2016", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Ews")] },
    ],
    databases: [
      { name: "DB-A2003", active: "a-e2003" },
      { name: "DB-A2007", active: "a-e2007" },
      { name: "DB-B", active: "b-mbx" },
      { name: "DB-B16", active: "b-e16a", servers: ["b-e16a", "b-e16b"] },
      { name: "DB-A16", active: "a-e16" },
    ],
  });
}
const DIR = directoryOf([mailbox("old", "DB-A2003"), mailbox("seven", "DB-A2007"), mailbox("bea", "DB-B"), mailbox("sixteen", "DB-B16"), mailbox("ann", "DB-A16")]);
const T = org();
expect(T.problems.filter((p) => p.severity === "error")).toEqual([]);

export function run(req: ClientRequest, topo: Topology = T, health: HealthView = ALL_HEALTHY): Decision {
  return decide(req, topo, DIR, health);
}
const eas = (host: string, user: string, headers: Record<string, string> = {}, query?: string) =>
  httpReq(host, `/Microsoft-Server-ActiveSync?${query ?? `Cmd=Sync&User=${user}&DeviceId=d1&DeviceType=phone`}`, { method: "POST", headers: { authorization: basic(`${user}@example.org`), ...headers } });

describe("R-SEC-1, R-SEC-3: attack shapes are refused before anything else", () => {
  const refused = (req: ClientRequest, rule: string, cve: string) => {
    const d = run(req);
    expect(d.outcome).toBe("error");
    if (d.outcome !== "error") return;
    expect(d.status).toBe(403);
    expect(d.rules).toEqual([rule]);
    expect(d.exploit?.cve).toBe(cve);
    expect(d.trace.join("\n")).toContain(cve);
  };

  it("R-SEC-1: ProxyLogon's X-BEResource and X-AnonResource-Backend cookies (CVE-2021-26855)", () => {
    refused(httpReq(A, "/ecp/y.js", { headers: { cookie: "X-BEResource=localhost~1942062522" } }), "R-SEC-1", "CVE-2021-26855");
    refused(httpReq(A, "/owa/auth/x.js", { headers: { cookie: "X-AnonResource=true; X-AnonResource-Backend=localhost/ecp/default.flt?~3; X-BEResource=localhost/owa/auth/logon.aspx?~3" } }), "R-SEC-1", "CVE-2021-26855");
    refused(httpReq(A, "/ecp/DDI/DDIService.svc/GetList", { headers: { cookie: "session=Administrator@ex01.lab.local:444/autodiscover/autodiscover.xml?a=~1942062522" } }), "R-SEC-1", "CVE-2021-26855");
    refused(httpReq(A, "/owa/", { headers: { "x-beresource": "ex01/owa~1" } }), "R-SEC-1", "CVE-2021-26855");
  });

  it("R-SEC-3: ProxyShell (CVE-2021-34473), ProxyNotShell (CVE-2022-41040) and OWASSRF (CVE-2022-41080)", () => {
    refused(httpReq(A, "/autodiscover/autodiscover.json?@evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@evil.com"), "R-SEC-3", "CVE-2021-34473");
    refused(httpReq(A, "/autodiscover/autodiscover.json?@evil.com/ews/exchange.asmx?&Email=autodiscover/autodiscover.json%3F@evil.com"), "R-SEC-3", "CVE-2021-34473");
    refused(httpReq(A, "/autodiscover/autodiscover.json?a=%2540evil.com%252Fowa%252F"), "R-SEC-3", "CVE-2021-34473");
    refused(httpReq(A, "/autodiscover/autodiscover.json?@evil.com/owa/&Email=autodiscover/autodiscover.json%3f@evil.com&Protocol=XYZ&FooProtocol=Powershell"), "R-SEC-3", "CVE-2022-41040");
    refused(httpReq(A, "/autodiscover/autodiscover.json?@evil.com/%50owershell/?&Email=x"), "R-SEC-3", "CVE-2022-41040");
    refused(httpReq(A, "/owa/mastermailbox%40outlook.com/powershell"), "R-SEC-3", "CVE-2022-41080");
  });

  it("R-SEC-3: ordinary Autodiscover, OWA and ActiveSync requests are not touched", () => {
    for (const path of [
      "/autodiscover/autodiscover.json/v1.0/bea@example.org?Protocol=ActiveSync",
      "/autodiscover/autodiscover.json?Email=bea@example.org&Protocol=EWS",
      "/Autodiscover/Autodiscover.xml",
      "/owa/?ae=Item&t=IPM.Note&id=RgAAAAD%2bQ",
      "/ecp/?rfr=owa&p=PersonalSettings/Password.aspx",
      "/Microsoft-Server-ActiveSync?Cmd=Sync&User=bea@example.org&DeviceId=1&DeviceType=x",
    ]) {
      expect(exploitPattern(httpReq(A, path, { headers: { cookie: "cadata=abc; X-BackEndCookie=S-1-5-21-1=u56Lnp2ejJqBz8nI; PrivateComputer=true" } })), path).toBeUndefined();
    }
  });
});

describe("R-EAS-7, R-EAS-8: the protocol version decides the 451", () => {
  it("R-EAS-7: a 14.0+ device (header, base64 byte or nothing named) gets the 451", () => {
    for (const h of [{ "ms-asprotocolversion": "14.1" }, { "ms-asprotocolversion": "16.1" }, {}] as Record<string, string>[]) {
      const d = run(eas(A, "bea", h));
      expect(d).toMatchObject({ outcome: "redirect", kind: "eas451", url: `https://${B}/Microsoft-Server-ActiveSync` });
      expect(d.rules).toEqual(expect.arrayContaining(["R-EAS-7", "R-EAS-4", "R-EAS-8"]));
    }
    const q = encodeEasBase64Query({ protocolVersion: 141, command: "Sync", deviceId: "d1", deviceType: "phone", user: "bea@example.org" });
    expect(run(eas(A, "bea", {}, q))).toMatchObject({ outcome: "redirect", kind: "eas451" });
    expect(run(eas(A, "bea", {})).trace.join("\n")).toContain("14.0 or later (none named");
  });

  it("R-EAS-7: a 12.1 device is proxied as R-EAS-5, from the header or the base64 query's version byte", () => {
    const d = run(eas(A, "bea", { "ms-asprotocolversion": "12.1" }));
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "b", upstreamPath: expect.stringMatching(/^\/Microsoft-Server-ActiveSync\/Proxy\?/) });
    expect(d.rules).toEqual(expect.arrayContaining(["R-EAS-7", "R-EAS-5"]));
    expect(d.trace.join("\n")).toContain("ActiveSync 12.1 (MS-ASProtocolVersion header)");
    const q = encodeEasBase64Query({ protocolVersion: 121, command: "Sync", deviceId: "d1", deviceType: "phone", user: "bea@example.org" });
    const b = run(eas(A, "bea", {}, q));
    expect(b).toMatchObject({ outcome: "proxy", targetSite: "b" });
    expect(b.trace.join("\n")).toContain("ActiveSync 12.1 (base64 query)");
    expect(easProtocolVersion(eas(A, "bea", { "ms-asprotocolversion": "2.5" })).version).toBe(2.5);
  });

  it("R-EAS-7: a 12.1 device whose proxy hop is impossible (Basic only) gets a clear refusal", () => {
    const t = org({ bEasAuth: ["Basic"] });
    const d = run(eas(A, "bea", { "ms-asprotocolversion": "12.0" }), t);
    expect(d).toMatchObject({ outcome: "error", status: 403 });
    expect(d.rules).toContain("R-EAS-7");
    if (d.outcome === "error") expect(d.reason).toMatch(/ActiveSync version too old/);
  });

  it("R-EAS-8: X-MS-Location is the complete ActiveSync URL even when the ExternalUrl lacks the path", () => {
    const t = org({ bEasExt: `https://${B}/` });
    const d = run(eas(A, "bea"), t);
    expect(d).toMatchObject({ outcome: "redirect", kind: "eas451", url: `https://${B}/Microsoft-Server-ActiveSync` });
    expect(easLocation("https://m.example.org/microsoft-server-activesync/?x=1")).toBe("https://m.example.org/microsoft-server-activesync");
  });
});

describe("R-OWA-9, R-OWA-10, R-OWA-11: legacy redirects and redirectToOptimalOwaServer", () => {
  it("R-OWA-9: a 2003 mailbox with credentials at an FBA receiving directory gets a sign-on form to owaauth.dll", () => {
    const d = run(httpReq(A, "/owa/", { headers: { authorization: basic("old@example.org") } }));
    expect(d).toMatchObject({ outcome: "redirect", kind: "sso", url: "https://legacy.example.org/exchange", ssoPostUrl: "https://legacy.example.org/exchweb/bin/auth/owaauth.dll" });
    expect(d.rules).toEqual(["R-OWA-6", "R-OWA-9"]);
  });

  it("R-OWA-9: without credentials to hand on it is a plain redirect", () => {
    const d = run(httpReq(A, "/owa/", { headers: { "x-anchormailbox": "old@example.org" } }));
    expect(d).toMatchObject({ outcome: "redirect", kind: "silent", url: "https://legacy.example.org/exchange" });
  });

  it("R-OWA-10: a receiving directory without FBA follows legacyRedirectType (Manual: the page; default Silent: 302)", () => {
    const manual = org({ aOwa: { internalAuth: ["Ntlm"], externalAuth: ["Ntlm"], legacyRedirect: "Manual" } });
    const d = run(httpReq(A, "/owa/", { headers: { authorization: basic("old@example.org") } }), manual);
    expect(d).toMatchObject({ outcome: "redirect", kind: "manual", url: "https://legacy.example.org/exchange" });
    expect(d.rules).toEqual(["R-OWA-6", "R-OWA-9", "R-OWA-10"]);
    const seven = run(httpReq(A, "/owa/", { headers: { authorization: basic("seven@example.org") } }), manual);
    expect(seven, seven.trace.join("\n")).toMatchObject({ outcome: "redirect", kind: "manual", url: "https://a-e2007.a.example.org/owa" });
    expect(seven.rules).toEqual(expect.arrayContaining(["R-OWA-7", "R-OWA-10"]));
    const silent = org({ aOwa: { internalAuth: ["Ntlm"], externalAuth: ["Ntlm"] } });
    expect(run(httpReq(A, "/owa/", { headers: { authorization: basic("seven@example.org") } }), silent)).toMatchObject({ kind: "silent" });
  });

  it("R-OWA-11: redirectToOptimalOwaServer false proxies a cross-site user instead of redirecting", () => {
    const t = org({ aOwa: { optimal: false } });
    const d = run(httpReq(A, "/owa/", { headers: { authorization: basic("bea@example.org") } }), t);
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "b" });
    expect(d.rules).toEqual(expect.arrayContaining(["R-OWA-11", "R-OWA-4"]));
    // The default redirects.
    expect(run(httpReq(A, "/owa/", { headers: { authorization: basic("bea@example.org") } }))).toMatchObject({ outcome: "redirect" });
  });
});

describe("R-LB-7: one pin for OWA and ECP", () => {
  it("R-LB-7: a pin set for OWA is the pin ECP keeps, and the other way round", () => {
    const t = org({ aOwa: { optimal: false } });
    const owa = run(httpReq(A, "/owa/", { headers: { authorization: basic("bea@example.org") } }), t);
    expect(owa).toMatchObject({ outcome: "proxy", affinity: "set" });
    expect(owa.rules).toContain("R-LB-7");
    const server = owa.outcome === "proxy" ? owa.targetServer : undefined;
    const ecp = run(httpReq(A, "/ecp/", { headers: { authorization: basic("bea@example.org"), referer: `https://${A}/owa/` }, pinnedServer: server }), t);
    expect(ecp).toMatchObject({ outcome: "proxy", targetServer: server, affinity: "keep" });
    expect(ecp.rules).toContain("R-LB-7");
  });
});

describe("R-EWS-6: EWS notification affinity", () => {
  const soap = (op: string) => `<soap:Envelope><soap:Body><m:${op} xmlns:m="x"/></soap:Body></soap:Envelope>`;
  const ews = (op: string, headers: Record<string, string>) =>
    httpReq(A, "/EWS/Exchange.asmx", { method: "POST", body: soap(op), headers: { "x-anchormailbox": "sixteen@example.org", ...headers } });

  it("R-EWS-6: 2013+ with X-PreferServerAffinity and X-BackEndOverrideCookie goes to that known, healthy server of the mailbox's site", () => {
    const d = run(ews("GetStreamingEvents", { "x-preferserveraffinity": "true", cookie: "X-BackEndOverrideCookie=b-e16b.b.example.org~1941997017" }));
    expect(d).toMatchObject({ outcome: "proxy", targetServer: "b-e16b" });
    expect(d.rules).toContain("R-EWS-6");
  });

  it("R-EWS-6 with R-SEC-1: an unknown, foreign-site or down server named by the client is never used", () => {
    for (const [cookie, health] of [
      ["X-BackEndOverrideCookie=evil.example.com~1", ALL_HEALTHY],
      ["X-BackEndOverrideCookie=a-e16~1", ALL_HEALTHY],
      ["X-BackEndOverrideCookie=b-e16b~1", healthFromDown(["b-e16b"])],
    ] as const) {
      const d = run(ews("Subscribe", { "x-preferserveraffinity": "true", cookie }), T, health);
      expect(d, cookie).toMatchObject({ outcome: "proxy", targetServer: "b-e16a" });
      expect(d.rules).toContain("R-SEC-1");
      expect(d.rules).not.toContain("R-EWS-6");
    }
    expect(backEndOverrideServer("X-BackEndOverrideCookie=../../etc~1")).toBeUndefined();
  });

  it("R-EWS-6: a 2010 mailbox's subscription is pinned to the CAS that took it", () => {
    const d = run(httpReq(A, "/EWS/Exchange.asmx", { method: "POST", body: soap("Subscribe"), headers: { authorization: basic("bea@example.org") } }));
    expect(d).toMatchObject({ outcome: "proxy", affinity: "set" });
    expect(d.rules).toContain("R-EWS-6");
  });
});

describe("R-EAS-9: a site's ActiveSync directories agree on ExternalUrl", () => {
  it("R-EAS-9: some 2010+ ActiveSync directories with an ExternalUrl and some without → a site warning (validate, status)", () => {
    const t = org({ bEasExt2: null });
    const w = t.problems.filter((p) => p.reason === "ActiveSyncExternalUrlMismatch");
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({ kind: "ADSite", name: "b", severity: "warning" });
    expect(w[0]!.message).toContain("R-EAS-9");
    expect(w[0]!.message).toContain("b-cas2-activesync");
  });
});
