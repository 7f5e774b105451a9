// Property tests (fast-check) over the inputs the second round added (docs/rules.md): ActiveSync
// protocol versions (R-EAS-7, R-EAS-4), hostile cookies (R-SEC-1, R-EWS-6, R-LB-7) and the NTLM
// connection of R-LB-8 at the engine; the sidecar's memory of reused connections is
// property-tested in test/sidecar/connection-reuse.property.test.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ALL_HEALTHY } from "../../model/health.js";
import { encodeEasBase64Query } from "./eas-query.js";
import { decide } from "./engine.js";
import { NTLM_NEGOTIATE, basic, buildOrg, directoryOf, httpReq, mailbox, ntlmAuthenticate, vd } from "./test-org.js";
import type { ClientRequest, Decision } from "./types.js";

const A = "a.example.org";
const B = "b.example.org";
const T = buildOrg({
  sites: [{ name: "a", hostnames: [A] }, { name: "b", hostnames: [B] }],
  servers: [
    { name: "a-cas1", site: "a", version: "2010", vdirs: [vd("Owa"), vd("Ecp"), vd("Ews"), vd("ActiveSync", { externalUrl: `https://${A}/Microsoft-Server-ActiveSync` })] },
    { name: "a-cas2", site: "a", version: "2010", vdirs: [vd("Owa"), vd("Ecp"), vd("Ews"), vd("ActiveSync", { externalUrl: `https://${A}/Microsoft-Server-ActiveSync` })] },
    { name: "a-mbx", site: "a", version: "2010", roles: ["Mailbox"] },
    { name: "b-cas1", site: "b", version: "2010", vdirs: [vd("Owa"), vd("Ecp"), vd("Ews"), vd("ActiveSync", { externalUrl: `https://${B}/Microsoft-Server-ActiveSync` })] },
    { name: "b-mbx", site: "b", version: "2010", roles: ["Mailbox"] },
    { name: "b-e16", site: "b", version: "2016", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Owa"), vd("Ews"), vd("ActiveSync")] },
  ],
  databases: [{ name: "DB-A", active: "a-mbx" }, { name: "DB-B", active: "b-mbx" }, { name: "DB-B16", active: "b-e16" }],
});
const DIR = directoryOf([mailbox("ann", "DB-A"), mailbox("bea", "DB-B"), mailbox("six", "DB-B16")]);
const run = (req: ClientRequest): Decision => decide(req, T, DIR, ALL_HEALTHY);
const KNOWN = new Set([...T.servers.keys()]);
const OPTS = { numRuns: 500 };

/** A protocol version as a device may send it: well formed, or not. */
const versionText = fc.oneof(
  fc.constantFrom("2.0", "2.5", "12.0", "12.1", "14.0", "14.1", "16.0", "16.1", "9.9", "14", "14.1.0", "", "abc", "1e2"),
  fc.tuple(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 9 })).map(([a, b]) => `${a}.${b}`),
  fc.string({ maxLength: 8 }),
);
/** What a well-formed MS-ASProtocolVersion says, as the oracle reads it. */
function oracle(text: string): number | undefined {
  const m = /^\s*(\d{1,2})\.(\d)\s*$/.exec(text);
  return m ? Number(m[1]) + Number(m[2]) / 10 : undefined;
}

describe("second-round properties", () => {
  it("R-EAS-7: a cross-site device gets the 451 exactly when it speaks 14.0 or later (or names no version); never otherwise", () => {
    fc.assert(
      fc.property(fc.oneof(versionText.map((v) => ({ header: v })), fc.integer({ min: 0, max: 255 }).map((b) => ({ byte: b }))), (v) => {
        let req: ClientRequest;
        let expected: number | undefined;
        if ("header" in v) {
          req = httpReq(A, "/Microsoft-Server-ActiveSync?Cmd=Sync&User=bea&DeviceId=d1&DeviceType=p", { method: "POST", headers: { authorization: basic("bea@example.org"), "ms-asprotocolversion": v.header } });
          expected = oracle(v.header);
        } else {
          const q = encodeEasBase64Query({ protocolVersion: v.byte, command: "Sync", deviceId: "d1", deviceType: "p", user: "bea@example.org" });
          req = httpReq(A, `/Microsoft-Server-ActiveSync?${q}`, { method: "POST", headers: { authorization: basic("bea@example.org") } });
          expected = v.byte >= 10 ? Math.floor(v.byte / 10) + (v.byte % 10) / 10 : undefined;
        }
        const d = run(req);
        const is451 = d.outcome === "redirect" && d.kind === "eas451";
        expect(is451, JSON.stringify(v)).toBe(expected === undefined || expected >= 14);
        expect(d.rules).toContain("R-EAS-7");
        if (is451 && d.outcome === "redirect") expect(d.url).toBe(`https://${B}/Microsoft-Server-ActiveSync`);
      }),
      OPTS,
    );
  });

  it("R-SEC-1, R-EWS-6, R-LB-7: no cookie a client writes ever selects a server outside the topology, or a back end the client named unless it is known", () => {
    const name = fc.constantFrom("a-cas1", "b-cas1", "b-e16", "b-e16.b.example.org", "evil.example.com", "localhost", "127.0.0.1", "a-mbx", "../x", "");
    const cookiePart = fc.oneof(
      fc.tuple(name, fc.string({ maxLength: 10 })).map(([n, s]) => `X-BackEndOverrideCookie=${n}~${s}`),
      fc.tuple(name, fc.string({ maxLength: 20 })).map(([n, s]) => `X-BEResource=${n}${s}`),
      fc.tuple(name, fc.string({ maxLength: 20 })).map(([n, s]) => `X-AnonResource-Backend=${n}/${s}`),
      fc.string({ maxLength: 40 }).map((s) => `cas-affinity=${s}`),
      fc.string({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(
        fc.array(cookiePart, { maxLength: 4 }),
        fc.constantFrom("/owa/", "/ecp/", "/EWS/Exchange.asmx"),
        fc.constantFrom("ann", "bea", "six"),
        fc.boolean(),
        fc.option(name, { nil: undefined }),
        (parts, path, user, prefer, pinned) => {
          const cookie = parts.join("; ");
          const req = httpReq(A, path, {
            method: "POST",
            body: "<soap:Envelope><soap:Body><m:GetStreamingEvents/></soap:Body></soap:Envelope>",
            headers: { authorization: basic(`${user}@example.org`), cookie, ...(prefer ? { "x-preferserveraffinity": "true" } : {}) },
            ...(pinned ? { pinnedServer: pinned } : {}),
          });
          const d = run(req);
          if (d.outcome === "local" || d.outcome === "proxy") {
            if (d.targetServer !== undefined) expect(KNOWN.has(d.targetServer), d.targetServer).toBe(true);
            expect(d.cluster).not.toMatch(/evil|localhost|127\.0\.0\.1|\.\./);
          } else if (d.outcome === "error" && d.exploit) {
            expect(d.status).toBe(403);
          }
        },
      ),
      OPTS,
    );
  });

  it("R-LB-8: on a connection, the AUTHENTICATE message's user never changes where its first request went", () => {
    fc.assert(
      fc.property(fc.constantFrom("ann", "bea", "six", "nobody"), fc.constantFrom("/EWS/Exchange.asmx", "/owa/", "/mapi/emsmdb/", "/Microsoft-Server-ActiveSync?Cmd=Ping"), fc.constantFrom("CONTOSO", ""), (user, path, domain) => {
        const connection = { key: "192.0.2.1:40000 a.example.org" };
        const negotiate = run(httpReq(A, path, { method: "POST", headers: { authorization: NTLM_NEGOTIATE }, connection }));
        const authenticate = run(httpReq(A, path, { method: "POST", headers: { authorization: ntlmAuthenticate(user, domain) }, connection }));
        const where = (d: Decision) => (d.outcome === "local" || d.outcome === "proxy" ? `${d.targetSite}` : d.outcome);
        expect(where(authenticate)).toBe(where(negotiate));
        if (negotiate.outcome === "local" || negotiate.outcome === "proxy") expect(negotiate.targetServer).toBeDefined();
      }),
      OPTS,
    );
  });
});
