import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ADSite, ApiObject, ClientAccessServer, MailboxDatabase, VirtualDirectory } from "../../crds/index.js";
import { buildTopology, commonNameOf, normaliseHost, versionClassOf } from "./build.js";
import type { Problem } from "./types.js";

const API = "casgateway.io/v1alpha1" as const;

function site(name: string, hostnames: string[] = [], extra: Partial<ADSite["spec"]> = {}, namespace?: string): ADSite {
  return { apiVersion: API, kind: "ADSite", metadata: { name, ...(namespace ? { namespace } : {}) }, spec: { hostnames, ...extra } };
}
function server(
  name: string,
  siteName: string,
  version: ClientAccessServer["spec"]["exchangeVersion"],
  roles: ClientAccessServer["spec"]["roles"] = ["ClientAccess"],
  extra: Partial<ClientAccessServer["spec"]> = {},
): ClientAccessServer {
  return {
    apiVersion: API,
    kind: "ClientAccessServer",
    metadata: { name },
    spec: {
      site: siteName,
      fqdn: `${name}.contoso.com`,
      exchangeVersion: version,
      roles,
      maintenance: false,
      tls: { insecureSkipVerify: false },
      ...extra,
    },
  };
}
function vdir(name: string, srv: string, service: VirtualDirectory["spec"]["service"], extra: Partial<VirtualDirectory["spec"]> = {}): VirtualDirectory {
  const mail = service === "Pop3" || service === "Imap4";
  return {
    apiVersion: API,
    kind: "VirtualDirectory",
    metadata: { name },
    spec: {
      server: srv,
      service,
      ...(mail
        ? { internalConnectionSettings: [{ hostname: `${srv}.contoso.com`, port: service === "Pop3" ? 995 : 993, encryption: "Ssl" }] }
        : { internalUrl: `https://${srv}.contoso.com/${service.toLowerCase()}` }),
      internalAuthenticationMethods: ["Ntlm"],
      externalAuthenticationMethods: [],
      ...extra,
    },
  };
}
function db(name: string, active: string, servers = [active], databaseName?: string): MailboxDatabase {
  return {
    apiVersion: API,
    kind: "MailboxDatabase",
    metadata: { name },
    spec: { activeServer: active, servers, ...(databaseName ? { databaseName } : {}) },
  };
}

/** A small valid organisation: two sites, 2010 and 2016. */
function base(): ApiObject[] {
  return [
    site("usa", ["usa.contoso.com", "mail.contoso.com"]),
    site("asia", [], { internetFacing: false }),
    server("usa-cas01", "usa", "2010"),
    server("usa-mbx01", "usa", "2010", ["Mailbox"]),
    server("asia-e2016", "asia", "2016", ["ClientAccess", "Mailbox"]),
    vdir("usa-cas01-owa", "usa-cas01", "Owa", { externalUrl: "https://usa.contoso.com/owa" }),
    vdir("usa-cas01-pop3", "usa-cas01", "Pop3"),
    vdir("asia-e2016-owa", "asia-e2016", "Owa"),
    vdir("asia-e2016-mapi", "asia-e2016", "Mapi"),
    db("db-usa", "usa-mbx01", ["usa-mbx01"], "DB-USA"),
    db("db-asia", "asia-e2016"),
  ];
}

const reasons = (ps: readonly Problem[]) => ps.map((p) => `${p.severity}:${p.kind}/${p.name}:${p.field}:${p.reason}`);

describe("buildTopology", () => {
  it("builds a valid organisation without problems", () => {
    const t = buildTopology(base());
    expect(t.problems).toEqual([]);
    expect([...t.sites.keys()]).toEqual(["asia", "usa"]);
    expect(t.sites.get("usa")).toMatchObject({
      internetFacing: true,
      casServers: ["usa-cas01"],
      mailboxServers: ["usa-mbx01"],
      hostnames: ["usa.contoso.com", "mail.contoso.com"],
    });
    expect(t.sites.get("asia")?.internetFacing).toBe(false);
    expect(t.servers.get("asia-e2016")).toMatchObject({ versionClass: "2013+", clientAccess: true, mailbox: true, address: "asia-e2016.contoso.com" });
    expect([...t.servers.get("usa-cas01")!.vdirs.keys()]).toEqual(["Owa", "Pop3"]);
    expect(t.servers.get("usa-cas01")!.vdirs.get("Owa")).toMatchObject({ crossSiteRedirectType: "Manual", externalUrl: "https://usa.contoso.com/owa" });
  });

  it("UnknownSite: a server in a site that does not exist is left out; the rest still builds", () => {
    const t = buildTopology([...base(), server("ghost", "mars", "2010"), vdir("ghost-owa", "ghost", "Owa")]);
    expect(reasons(t.problems)).toEqual([
      "error:ClientAccessServer/ghost:spec.site:UnknownSite",
      "error:VirtualDirectory/ghost-owa:spec.server:UnknownServer",
    ]);
    expect(t.problems[0]).toMatchObject({ condition: "ResolvedRefs", message: 'ADSite "mars" does not exist' });
    expect(t.servers.has("ghost")).toBe(false);
    expect(t.servers.size).toBe(3);
  });

  it("UnknownServer: virtual directory and database references, with the index of a bad copy", () => {
    const t = buildTopology([
      ...base(),
      vdir("nobody-owa", "nobody", "Owa"),
      db("db-x", "nosuch"),
      db("db-y", "usa-mbx01", ["usa-mbx01", "nosuch"]),
    ]);
    expect(reasons(t.problems)).toEqual([
      "error:VirtualDirectory/nobody-owa:spec.server:UnknownServer",
      "error:MailboxDatabase/db-x:spec.activeServer:UnknownServer",
      "error:MailboxDatabase/db-y:spec.servers.1:UnknownServer",
    ]);
    expect(t.databases.has("db-x")).toBe(false);
    expect(t.databases.has("db-y")).toBe(false);
    expect(t.databases.size).toBe(2);
  });

  it("ServiceNotOnVersion: Mapi before 2013, Ecp on 2007, Public after 2007, Ews on 2003", () => {
    const t = buildTopology([
      ...base(),
      server("usa-e2007", "usa", "2007", ["ClientAccess", "Mailbox"]),
      server("usa-e2003", "usa", "2003", ["Mailbox"]),
      vdir("a", "usa-cas01", "Mapi"),
      vdir("b", "usa-e2007", "Ecp"),
      vdir("c", "usa-cas01", "Public"),
      vdir("d", "usa-e2003", "Ews"),
      vdir("ok-public", "usa-e2003", "Public"),
    ]);
    expect(reasons(t.problems)).toEqual([
      "error:VirtualDirectory/a:spec.service:ServiceNotOnVersion",
      "error:VirtualDirectory/b:spec.service:ServiceNotOnVersion",
      "error:VirtualDirectory/c:spec.service:ServiceNotOnVersion",
      "error:VirtualDirectory/d:spec.service:ServiceNotOnVersion",
    ]);
    expect(t.problems.every((p) => p.condition === "Accepted")).toBe(true);
    expect(t.servers.get("usa-e2003")!.vdirs.has("Public")).toBe(true);
  });

  it("ServerNotClientAccess: 2007/2010 Mailbox-only servers host no directories (2003 and 2013+ do)", () => {
    const t = buildTopology([
      ...base(),
      server("usa-e2003", "usa", "2003", ["Mailbox"]),
      vdir("mbx-owa", "usa-mbx01", "Owa"),
      vdir("e2003-owa", "usa-e2003", "Owa"),
    ]);
    expect(reasons(t.problems)).toEqual(["error:VirtualDirectory/mbx-owa:spec.server:ServerNotClientAccess"]);
    expect(t.servers.get("usa-e2003")!.vdirs.has("Owa")).toBe(true);
  });

  it("DuplicateService: one directory per service per server; the first by name wins", () => {
    const t = buildTopology([...base(), vdir("usa-cas01-owa2", "usa-cas01", "Owa", { externalUrl: null })]);
    expect(reasons(t.problems)).toEqual(["error:VirtualDirectory/usa-cas01-owa2:spec.service:DuplicateService"]);
    expect(t.servers.get("usa-cas01")!.vdirs.get("Owa")!.name).toBe("usa-cas01-owa");
  });

  it("DuplicateName: the same kind and name twice (other namespace), and clashing database names", () => {
    const t = buildTopology([
      ...base(),
      site("usa", ["other.contoso.com"], {}, "team-b"),
      db("db-usa-copy", "usa-mbx01", ["usa-mbx01"], "db-usa"),
    ]);
    expect(reasons(t.problems)).toEqual([
      "error:ADSite/usa:metadata.name:DuplicateName",
      "error:MailboxDatabase/db-usa-copy:spec.databaseName:DuplicateName",
    ]);
    expect(t.problems[0]).toMatchObject({ namespace: "team-b", condition: "Accepted" });
    expect(t.siteForHost("other.contoso.com")).toBeUndefined();
  });

  it("NotMailboxServer: a database whose active copy is on a CAS-only server", () => {
    const t = buildTopology([...base(), db("db-bad", "usa-cas01")]);
    expect(reasons(t.problems)).toEqual(["error:MailboxDatabase/db-bad:spec.activeServer:NotMailboxServer"]);
  });

  it("R-GEN-6: a site with Mailbox servers and no Client Access server is reported (site kept)", () => {
    const t = buildTopology([...base(), site("africa"), server("africa-mbx01", "africa", "2010", ["Mailbox"])]);
    expect(reasons(t.problems)).toEqual(["error:ADSite/africa:spec:NoClientAccessServer"]);
    expect(t.problems[0].message).toContain("R-GEN-6");
    expect(t.problems[0].condition).toBe("Accepted");
    expect(t.sites.get("africa")?.mailboxServers).toEqual(["africa-mbx01"]);
  });

  it("R-GEN-3: insecureSkipVerify is a warning, and the server stays", () => {
    const t = buildTopology([...base(), server("usa-cas02", "usa", "2010", ["ClientAccess"], { tls: { insecureSkipVerify: true } })]);
    expect(reasons(t.problems)).toEqual(["warning:ClientAccessServer/usa-cas02:spec.tls.insecureSkipVerify:InsecureSkipVerify"]);
    expect(t.problems[0].condition).toBe("InsecureUpstreamTLS");
    expect(t.servers.get("usa-cas02")?.insecureSkipVerify).toBe(true);
  });

  it("DuplicateHostname: a host name claimed by two sites stays with the first (by name), warning on the second", () => {
    const t = buildTopology([...base(), site("zulu", ["MAIL.contoso.com.", "zulu.contoso.com"])]);
    expect(reasons(t.problems)).toEqual(["warning:ADSite/zulu:spec.hostnames.0:DuplicateHostname"]);
    expect(t.siteForHost("mail.contoso.com")).toBe("usa");
    expect(t.siteForHost("zulu.contoso.com")).toBe("zulu");
    expect(t.sites.get("zulu")?.hostnames).toEqual(["zulu.contoso.com"]);
  });

  it("same input, same version, whatever the order; any change gives a new version", () => {
    const objs = base();
    const v = buildTopology(objs).version;
    fc.assert(
      fc.property(fc.shuffledSubarray(objs, { minLength: objs.length, maxLength: objs.length }), (shuffled) => {
        expect(buildTopology(shuffled).version).toBe(v);
      }),
      { numRuns: 50 },
    );
    const changed = base().map((o) => (o.kind === "MailboxDatabase" && o.metadata.name === "db-asia" ? { ...o, spec: { ...o.spec, databaseName: "X" } } : o));
    expect(buildTopology(changed).version).not.toBe(v);
    expect(v).toMatch(/^[0-9a-f]{16}$/);
  });

  it("find a server by name, FQDN or NetBIOS name; a database by name, Exchange name or DN; a site by host", () => {
    const t = buildTopology(base());
    expect(t.findServer("USA-CAS01")?.name).toBe("usa-cas01");
    expect(t.findServer("usa-cas01.contoso.com")?.name).toBe("usa-cas01");
    expect(t.findServer("CN=asia-e2016,CN=Servers,CN=Exchange Administrative Group")?.name).toBe("asia-e2016");
    expect(t.findServer("/o=Contoso/ou=Exchange Administrative Group/cn=Configuration/cn=Servers/cn=USA-MBX01")?.name).toBe("usa-mbx01");
    expect(t.findDatabase("db-usa")?.name).toBe("db-usa");
    expect(t.findDatabase("DB-USA")?.databaseName).toBe("DB-USA");
    expect(t.findDatabase("CN=DB-USA,CN=Databases,CN=Exchange Administrative Group")?.name).toBe("db-usa");
    expect(t.findDatabase("nope")).toBeUndefined();
    expect(t.siteForHost("Mail.Contoso.com:443")).toBe("usa");
    expect(t.siteForHost("usa.contoso.com.")).toBe("usa");
    expect(t.siteForHost("evil.example")).toBeUndefined();
  });

  it("helpers: version classes, common names, host normalisation", () => {
    expect([2003, 2007, 2010, 2013, 2016, 2019].map((v) => versionClassOf(v as 2003))).toEqual(["2003", "2007", "2010", "2013+", "2013+", "2013+"]);
    expect(commonNameOf("CN=Mailbox Database 01,CN=Databases")).toBe("Mailbox Database 01");
    expect(commonNameOf("plain")).toBe("plain");
    expect(normaliseHost("[::1]:443")).toBe("[::1]");
    expect(normaliseHost("Host.Example.:8443")).toBe("host.example");
  });

  it("the topology and its parts are frozen", () => {
    const t = buildTopology(base());
    expect(Object.isFrozen(t)).toBe(true);
    expect(Object.isFrozen(t.servers.get("usa-cas01"))).toBe(true);
    expect(Object.isFrozen(t.problems)).toBe(true);
  });
});

/** Everything a topology holds, as plain data (maps as entry lists, in their order). */
function plain(t: ReturnType<typeof buildTopology>): unknown {
  const entries = <V>(m: ReadonlyMap<string, V>, f: (v: V) => unknown = (v) => v) => [...m].map(([k, v]) => [k, f(v)]);
  return {
    version: t.version,
    sites: entries(t.sites),
    servers: entries(t.servers, (s) => ({ ...s, vdirs: entries(s.vdirs) })),
    databases: entries(t.databases),
    hostToSite: entries(t.hostToSite),
    problems: t.problems,
    lookups: ["db-usa", "DB-USA", "db-asia", "usa-cas01", "asia-e2016.contoso.com", "usa-cas01"].map((n) => [t.findDatabase(n)?.name, t.findServer(n)?.name]),
  };
}

describe("buildTopology on a delivery that replaces a few objects (the change path)", () => {
  type Edit = (o: ApiObject) => ApiObject | undefined;
  const edits: Record<string, Edit> = {
    "vdir URL": (o) => (o.metadata.name === "asia-e2016-owa" && o.kind === "VirtualDirectory" ? { ...o, spec: { ...o.spec, internalUrl: "https://asia-e2016.contoso.com:8443/owa" } } : undefined),
    "vdir gains an external URL (site becomes internet-facing unless set)": (o) =>
      o.metadata.name === "asia-e2016-owa" && o.kind === "VirtualDirectory" ? { ...o, spec: { ...o.spec, externalUrl: "https://asia.contoso.com/owa" } } : undefined,
    "vdir loses its external URL (usa stops being internet-facing)": (o) =>
      o.metadata.name === "usa-cas01-owa" && o.kind === "VirtualDirectory" ? { ...o, spec: { ...o.spec, externalUrl: null } } : undefined,
    "vdir authentication": (o) =>
      o.metadata.name === "usa-cas01-owa" && o.kind === "VirtualDirectory" ? { ...o, spec: { ...o.spec, externalAuthenticationMethods: ["Fba", "Basic"] } } : undefined,
    "server drained": (o) => (o.kind === "ClientAccessServer" && o.metadata.name === "usa-cas01" ? { ...o, spec: { ...o.spec, maintenance: true } } : undefined),
    "server address and FQDN": (o) =>
      o.kind === "ClientAccessServer" && o.metadata.name === "asia-e2016" ? { ...o, spec: { ...o.spec, address: "10.0.0.9", fqdn: "e2016.asia.contoso.com" } } : undefined,
    "database fails over": (o) => (o.kind === "MailboxDatabase" && o.metadata.name === "db-asia" ? { ...o, spec: { activeServer: "asia-e2016", servers: ["asia-e2016", "usa-mbx01"] } } : undefined),
    "database fails over to a server without the Mailbox role (a problem)": (o) =>
      o.kind === "MailboxDatabase" && o.metadata.name === "db-usa" ? { ...o, spec: { ...o.spec, activeServer: "usa-cas01" } } : undefined,
    "database renamed in Exchange": (o) => (o.kind === "MailboxDatabase" && o.metadata.name === "db-usa" ? { ...o, spec: { ...o.spec, databaseName: "DB-USA-2" } } : undefined),
    "vdir moves to an unknown server (a problem)": (o) =>
      o.kind === "VirtualDirectory" && o.metadata.name === "usa-cas01-pop3" ? { ...o, spec: { ...o.spec, server: "nowhere" } } : undefined,
    "server loses the Mailbox role (its database is refused)": (o) =>
      o.kind === "ClientAccessServer" && o.metadata.name === "usa-mbx01" ? { ...o, spec: { ...o.spec, roles: ["ClientAccess"] } } : undefined,
    "server turns off certificate validation (a warning)": (o) =>
      o.kind === "ClientAccessServer" && o.metadata.name === "usa-cas01" ? { ...o, spec: { ...o.spec, tls: { insecureSkipVerify: true } } } : undefined,
    "site host names": (o) => (o.kind === "ADSite" && o.metadata.name === "asia" ? { ...o, spec: { ...o.spec, hostnames: ["asia.contoso.com"] } } : undefined),
    "server and one of its directories at once": (o) =>
      o.kind === "ClientAccessServer" && o.metadata.name === "asia-e2016"
        ? { ...o, spec: { ...o.spec, maintenance: true } }
        : o.kind === "VirtualDirectory" && o.metadata.name === "asia-e2016-mapi"
          ? { ...o, spec: { ...o.spec, internalUrl: "https://asia-e2016.contoso.com/mapi2" } }
          : undefined,
    "a rejected duplicate replaced (same version)": (o) => (o.kind === "VirtualDirectory" && o.metadata.name === "usa-cas01-owa2" ? { ...o, spec: { ...o.spec, internalUrl: "https://x.contoso.com/owa" } } : undefined),
    "every object a fresh copy, as a file provider re-reads (same version)": (o) => structuredClone(o),
  };
  const start = () => [...base(), vdir("usa-cas01-owa2", "usa-cas01", "Owa")].reverse(); // unsorted, with a DuplicateService
  for (const [name, edit] of Object.entries(edits)) {
    it(`${name}: the same topology as a build from scratch`, () => {
      const objects = start();
      const before = buildTopology(objects);
      const next = objects.map((o) => edit(o) ?? o);
      expect(next.some((o, i) => o !== objects[i])).toBe(true);
      const after = buildTopology(next);
      expect(plain(after)).toEqual(plain(buildTopology(structuredClone(next))));
      if (name.endsWith("(same version)")) expect(after.version).toBe(before.version);
      else expect(after.version).not.toBe(before.version);
      // Chains: back to the start gives the first version again.
      expect(buildTopology(objects.map((o) => structuredClone(o))).version).toBe(before.version);
    });
  }

  it("a chain of edits, each on the previous delivery, matches a build from scratch at every step", () => {
    let objects = start();
    buildTopology(objects);
    for (const edit of [...Object.values(edits), ...Object.values(edits)]) {
      objects = objects.map((o) => edit(o) ?? o);
      expect(plain(buildTopology(objects))).toEqual(plain(buildTopology(structuredClone(objects))));
    }
  });

  it("the same array again gives the same topology object", () => {
    const objects = start();
    expect(buildTopology(objects)).toBe(buildTopology(objects));
    expect(buildTopology([...objects])).toBe(buildTopology(objects));
  });
});
