// Offline address books (docs/rules.md R-OAB-1, R-OAB-2): from Exchange 2013 the generation mailbox's
// database decides where a download goes; before, and for OABs nobody configured, the receiving site.
import { describe, expect, it } from "vitest";
import { ALL_HEALTHY, healthFromDown } from "../../model/health.js";
import { decide } from "./engine.js";
import { oabGuidOf } from "./rules/other.js";
import { buildOrg, directoryOf, httpReq, vd } from "./test-org.js";

const A = "a.example.org";
const OAB13 = "8a3f3e5e-1c1e-4d55-9c62-2f3c2b8a4e11";
const OAB10 = "0f0e0d0c-0b0a-4909-8807-060504030201";
const GEN = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@example.org";
const topo = (dupe = false) =>
  buildOrg({
    sites: [{ name: "a", hostnames: [A] }, { name: "b", hostnames: ["b.example.org"] }],
    servers: [
      { name: "a-cas", site: "a", version: "2010", vdirs: [vd("Oab")] },
      { name: "a-mbx", site: "a", version: "2010", roles: ["Mailbox"] },
      { name: "b-e16a", site: "b", version: "2016", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Oab")] },
      { name: "b-e16b", site: "b", version: "2016", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Oab")] },
    ],
    databases: [
      { name: "db-a", active: "a-mbx", oabs: [{ guid: OAB10, generatingMailbox: "oab-2010@example.org" }, ...(dupe ? [{ guid: OAB13.toUpperCase(), generatingMailbox: GEN }] : [])] },
      { name: "db-b16", active: "b-e16a", servers: ["b-e16a", "b-e16b"], oabs: [{ guid: OAB13, name: "Default Offline Address Book (Ex2013)", generatingMailbox: GEN }] },
    ],
  });
const T = topo();
const DIR = directoryOf([]);
const get = (path: string, t = T, health = ALL_HEALTHY) => decide(httpReq(A, path), t, DIR, health);

describe("R-OAB-2: the generation mailbox decides (2013+)", () => {
  it("R-OAB-2: a download of a 2013+ OAB goes to the server holding its generation mailbox's database, in another site", () => {
    const d = get(`/OAB/${OAB13}/oab.xml`);
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "b", targetServer: "b-e16a", cluster: "server/b-e16a/oab" });
    expect(d.rules).toContain("R-OAB-2");
    expect(d.rules).not.toContain("R-OAB-1");
    expect(d.trace.join("\n")).toContain(GEN);
  });

  it("R-OAB-2: it follows a failover of that database", () => {
    const d = get(`/oab/${OAB13.toUpperCase()}/Default%20Offline%20Address%20Book-lzx`, T, healthFromDown(["b-e16a"]));
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "b" });
    expect(d.outcome === "proxy" && d.targetServer).not.toBe("b-e16a");
  });

  it("R-OAB-1: an OAB generated on Exchange 2010, or one nobody configured, is served by the receiving site", () => {
    for (const path of [`/OAB/${OAB10}/oab.xml`, "/OAB/11111111-2222-3333-4444-555555555555/oab.xml", "/OAB/"]) {
      const d = get(path);
      expect(d, path).toMatchObject({ outcome: "local", targetSite: "a" });
      expect(d.rules).toContain("R-OAB-1");
    }
    expect(oabGuidOf(`/OAB/{${OAB13}}/oab.xml`)).toBe(OAB13);
    expect(oabGuidOf("/OAB/../x")).toBeUndefined();
  });

  it("R-OAB-2: validation warns on an OAB GUID generated in two databases and on a database before 2013", () => {
    const t = topo(true);
    const reasons = t.problems.filter((p) => p.kind === "MailboxDatabase").map((p) => `${p.name} ${p.reason} ${p.severity}`);
    expect(reasons).toEqual(expect.arrayContaining(["db-b16 DuplicateOfflineAddressBook warning", "db-a OfflineAddressBookBefore2013 warning"]));
    // The first database by name keeps it; its active server is 2010, so R-OAB-1.
    expect(get(`/OAB/${OAB13}/oab.xml`, t).rules).toContain("R-OAB-1");
  });
});
