// Exchange 2003's paths at the front door (docs/rules.md R-OWA-6, R-OWA-9, R-EWS-3): /exchange,
// /exchweb and /public are decided, never a bare 404.
import { describe, expect, it } from "vitest";
import { ALL_HEALTHY } from "../../model/health.js";
import type { Topology } from "../../model/topology/types.js";
import { decide } from "./engine.js";
import { basic, buildOrg, directoryOf, httpReq, mailbox, vd } from "./test-org.js";
import type { ClientRequest, Decision } from "./types.js";

const A = "a.example.org";
const FBA = { internalAuth: ["Fba" as const, "Ntlm" as const], externalAuth: ["Fba" as const] };

function org(withPublic = true, exchange2003Url: string | null = "https://legacy.example.org/exchange"): Topology {
  return buildOrg({
    sites: [{ name: "a", hostnames: [A] }, { name: "b", hostnames: ["b.example.org"] }],
    servers: [
      { name: "a-cas", site: "a", version: "2010", vdirs: [vd("Owa", { externalUrl: `https://${A}/owa`, ...(exchange2003Url ? { exchange2003Url } : {}), ...FBA })] },
      { name: "a-e2007", site: "a", version: "2007", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Owa"), ...(withPublic ? [vd("Public")] : [])] },
      { name: "a-e2003", site: "a", version: "2003", roles: ["Mailbox"], vdirs: withPublic ? [vd("Owa"), vd("Public")] : [vd("Owa")] },
      { name: "b-e2003", site: "b", version: "2003", roles: ["Mailbox"], vdirs: [vd("Owa"), vd("Public", { internalUrl: "http://b-e2003.b.example.org/public" })] },
      { name: "b-cas", site: "b", version: "2010", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Owa")] },
    ],
    databases: [
      { name: "DB-A2003", active: "a-e2003" },
      { name: "DB-B2003", active: "b-e2003" },
      { name: "DB-A2007", active: "a-e2007" },
      { name: "DB-B", active: "b-cas" },
    ],
  });
}
const DIR = directoryOf([mailbox("old", "DB-A2003"), mailbox("oldb", "DB-B2003"), mailbox("seven", "DB-A2007"), mailbox("ten", "DB-B")]);
const run = (req: ClientRequest, t: Topology = org()): Decision => decide(req, t, DIR, ALL_HEALTHY);
const as = (user: string, path: string, over: Partial<ClientRequest> = {}) => httpReq(A, path, { headers: { authorization: basic(`${user}@example.org`) }, ...over });

describe("Exchange 2003's OWA paths /exchange and /exchweb (R-OWA-6, R-OWA-9)", () => {
  it("R-OWA-6, R-OWA-9: a 2003 mailbox at /exchange follows exchange2003Url with single sign-on, as at /owa", () => {
    for (const path of ["/exchange/", "/Exchange/old/Inbox/?Cmd=contents", "/exchweb/bin/auth/owalogon.asp?url=x"]) {
      const d = run(as("old", path));
      expect(d, path).toMatchObject({ outcome: "redirect", kind: "sso", url: "https://legacy.example.org/exchange", ssoPostUrl: "https://legacy.example.org/exchweb/bin/auth/owaauth.dll" });
      expect(d.rules).toEqual(["R-OWA-6", "R-OWA-9"]);
      expect(d.trace.join("\n")).toContain("Exchange 2003's OWA path");
    }
  });

  it("R-OWA-6: a 2003 mailbox at /exchange without exchange2003Url is refused clearly (403), not 404", () => {
    const d = run(as("old", "/exchange/"), org(true, null));
    expect(d).toMatchObject({ outcome: "error", status: 403 });
    expect(d.rules).toEqual(["R-OWA-6"]);
  });

  it("R-OWA-6: a newer mailbox at /exchange or /exchweb is sent to the receiving site's OWA", () => {
    for (const user of ["seven", "ten"]) {
      const d = run(as(user, "/exchange/"));
      expect(d, user).toMatchObject({ outcome: "redirect", kind: "silent", url: `https://${A}/owa` });
      expect(d.rules).toEqual(["R-OWA-6"]);
    }
    expect(run(as("ten", "/exchweb/img/logo.gif"))).toMatchObject({ outcome: "redirect", url: `https://${A}/owa` });
  });

  it("R-OWA-6: /exchange without an identity (or with an unknown one) goes to OWA, which signs the user in", () => {
    const d = run(httpReq(A, "/exchange"));
    expect(d).toMatchObject({ outcome: "redirect", kind: "silent", url: `https://${A}/owa` });
    expect(d.rules).toEqual(["R-OWA-6"]);
    expect(run(as("nobody", "/exchange/"))).toMatchObject({ outcome: "redirect", url: `https://${A}/owa` });
  });
});

describe("Exchange 2003's public folders at /public (R-EWS-3)", () => {
  it("R-EWS-3: a 2003 mailbox's /public goes to its own 2003 server's /Public", () => {
    const d = run(as("old", "/public/Folder/"));
    expect(d).toMatchObject({ outcome: "local", targetServer: "a-e2003", cluster: "server/a-e2003/public" });
    expect(d.rules).toContain("R-EWS-3");
  });

  it("R-EWS-3: across sites only over https (R-GEN-3)", () => {
    const d = run(as("oldb", "/public/"));
    expect(d).toMatchObject({ outcome: "error", status: 502 });
    expect(d.rules).toEqual(expect.arrayContaining(["R-EWS-3", "R-GEN-3"]));
  });

  it("R-EWS-3: a 2007 mailbox's /public is served by a 2007 CAS; a 2010+ mailbox is sent to OWA", () => {
    expect(run(as("seven", "/public/"))).toMatchObject({ outcome: "local", cluster: "pool/a/v2007/public" });
    const d = run(as("ten", "/public/"));
    expect(d).toMatchObject({ outcome: "redirect", kind: "silent", url: `https://${A}/owa` });
    expect(d.rules).toEqual(["R-EWS-3"]);
  });

  it("R-EWS-3: /public with no identity: the receiving site's /Public servers challenge; without any, OWA", () => {
    const d = run(httpReq(A, "/public/"));
    expect(d).toMatchObject({ outcome: "local", targetSite: "a" });
    expect(d.rules).toEqual(expect.arrayContaining(["R-EWS-3", "R-ENG-NO-IDENTITY"]));
    expect(run(httpReq(A, "/public/"), org(false))).toMatchObject({ outcome: "redirect", url: `https://${A}/owa` });
  });
});
