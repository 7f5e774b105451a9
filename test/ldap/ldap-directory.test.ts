// The LDAP mailbox directory against a real OpenLDAP slapd (loopback, ephemeral ports, own config),
// loaded with the example organisation's mailboxes in AD's shapes.
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import { promisify } from "node:util";
import { join } from "node:path";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Topology } from "../../model/topology/types.js";
import { CachedDirectory } from "../../sidecar/directory/cached-directory.js";
import { LdapDirectory, type LdapDirectoryOptions } from "../../sidecar/directory/ldap-directory.js";
import { openDirectory } from "../../sidecar/directory/open-directory.js";
import type { LookupResult, MailboxDirectory } from "../../model/directory/types.js";
import { mailboxGuidOf } from "../../sidecar/decision/identity.js";
import { contosoLdif, type FixtureUser, misreadGuid, YAMADA_GUID, YAMADA_GUID_AD_HEX } from "./fixtures.js";
import { BASE_DN, BIND_DN, BIND_PASSWORD, type Slapd, slapdMissing, startSlapd } from "./slapd.js";

const missing = slapdMissing();
const run = promisify(execFile);

const found = (r: LookupResult) => {
  if (r.status !== "found") throw new Error(`expected found, got ${JSON.stringify(r)}`);
  return r.mailbox;
};

describe.skipIf(missing !== undefined)(`LDAP directory against slapd${missing ? ` (skipped: ${missing})` : ""}`, () => {
  let slapd: Slapd;
  let topology: Topology;
  let users: FixtureUser[];
  let dir: LdapDirectory;
  const open: MailboxDirectory[] = [];

  const make = (o: Partial<LdapDirectoryOptions> = {}) => {
    const d = new LdapDirectory({
      url: slapd.url,
      baseDn: BASE_DN,
      bindDn: BIND_DN,
      password: BIND_PASSWORD,
      timeoutMs: 5000,
      poolSize: 2,
      knownDatabase: (n) => topology.findDatabase(n) !== undefined,
      ...o,
    });
    open.push(d);
    return d;
  };

  beforeAll(async () => {
    const fx = await contosoLdif();
    topology = fx.topology;
    users = fx.users;
    slapd = await startSlapd({ ldif: fx.ldif });
    dir = make();
  });

  afterAll(async () => {
    await Promise.all(open.map((d) => d.close?.()));
    await slapd?.close();
  });

  it("finds every example user by primary SMTP address, and the database resolves in the topology", async () => {
    for (const u of users.filter((x) => x.database)) {
      const m = found(await dir.lookup(u.primary));
      expect(m.primarySmtpAddress).toBe(u.primary.toLowerCase());
      const db = topology.findDatabase(m.database);
      expect(db, `${u.primary}: database "${m.database}"`).toBeDefined();
      expect(db?.databaseName).toBe(u.database);
    }
  });

  it("finds by proxy address (alias), UPN, sAMAccountName, DOMAIN\\sam and GUID, case-insensitively", async () => {
    const alice = found(await dir.lookup("alice@contoso.com"));
    expect(alice).toMatchObject({
      primarySmtpAddress: "alice@contoso.com",
      userPrincipalName: "alice@contoso.com",
      samAccountName: "alice",
      domain: "CONTOSO",
      database: "DB-USA-2010",
      exchangeGuid: "6384e2b2-184b-cbf5-8ecc-f10ca7a6563c",
      displayName: "Alice Adams",
    });
    expect([...alice.emailAddresses].sort()).toEqual(["a.adams@contoso.com", "alice@contoso.com", "alice@usa.contoso.com"]);
    for (const id of [
      "A.Adams@Contoso.com",
      "alice@usa.contoso.com",
      "ALICE",
      "contoso\\alice",
      "CONTOSO\\Alice",
      "6384e2b2-184b-cbf5-8ecc-f10ca7a6563c",
      "{6384E2B2-184B-CBF5-8ECC-F10CA7A6563C}",
    ]) {
      expect(found(await dir.lookup(id)).primarySmtpAddress, id).toBe("alice@contoso.com");
    }
    // UPN different from the primary address.
    expect(found(await dir.lookup("kim.kang@asia.contoso.com")).primarySmtpAddress).toBe("kim.kang@contoso.com");
  });

  it("GUID look-up sends the AD escaped binary form (first three groups little-endian)", async () => {
    const { identityQuery } = await import("../../sidecar/directory/ldap-directory.js");
    const q = identityQuery("6384e2b2-184b-cbf5-8ecc-f10ca7a6563c");
    expect(q?.filter.toString()).toContain("(msExchMailboxGuid=\\b2\\e2\\84\\63\\4b\\18\\f5\\cb\\8e\\cc\\f1\\0c\\a7\\a6\\56\\3c)");
    expect(found(await dir.lookup("155bad9d-288c-1bed-bb3f-c799d47b944f")).primarySmtpAddress).toBe("kenji@contoso.com");
  });

  it("msExchMailboxGuid byte order both ways: yamada (only in LDAP) as AD stores her, found by the <GUID>@domain Outlook sends", async () => {
    // The bytes slapd holds, read with OpenLDAP's own client: AD's order, not the text's.
    const { stdout } = await run("ldapsearch", ["-x", "-LLL", "-o", "ldif-wrap=no", "-H", slapd.url, "-D", BIND_DN, "-w", BIND_PASSWORD, "-b", BASE_DN, "(sAMAccountName=yamada)", "msExchMailboxGuid"], { timeout: 10_000 });
    const b64 = /^msExchMailboxGuid:: (\S+)$/m.exec(stdout)?.[1];
    expect(Buffer.from(b64 ?? "", "base64").toString("hex")).toBe(YAMADA_GUID_AD_HEX);
    // Bytes → text: the record carries the GUID Outlook knows from Autodiscover.
    const y = found(await dir.lookup("yamada@contoso.com"));
    expect(y.exchangeGuid).toBe(YAMADA_GUID);
    // Text → bytes: MAPI's MailboxId and RPC/HTTP's target, as the sidecar extracts them, find her.
    for (const sent of [`${YAMADA_GUID}@contoso.com`, `${YAMADA_GUID.toUpperCase()}@contoso.com:6001`, `{${YAMADA_GUID}}@contoso.com`]) {
      const id = mailboxGuidOf(sent);
      expect(found(await dir.lookup(id ?? "")).primarySmtpAddress, sent).toBe("yamada@contoso.com");
    }
    // The same bytes taken in order name nobody: a reader with the wrong byte order would miss her.
    expect((await dir.lookup(misreadGuid(YAMADA_GUID))).status).toBe("not-found");
    // Every fixture user with a GUID, both ways.
    for (const u of users.filter((x) => x.guid)) {
      const m = found(await dir.lookup(u.guid as string));
      expect(m.primarySmtpAddress, u.guid).toBe(u.primary.toLowerCase());
      expect(m.exchangeGuid, u.primary).toBe(u.guid);
      expect((await dir.lookup(misreadGuid(u.guid as string))).status, `misread ${u.guid}`).toBe("not-found");
    }
  });

  it("the filters' escaped string form means the same to OpenLDAP's own ldapsearch (ldap-utils)", async () => {
    const { identityQuery } = await import("../../sidecar/directory/ldap-directory.js");
    const search = async (filter: string) => {
      const { stdout } = await run("ldapsearch", ["-x", "-LLL", "-o", "ldif-wrap=no", "-H", slapd.url, "-D", BIND_DN, "-w", BIND_PASSWORD, "-b", BASE_DN, filter, "mail"], { timeout: 10_000 });
      return stdout.split("\n").filter((l) => l.startsWith("mail: ")).map((l) => l.slice(6)).sort();
    };
    const f = (id: string) => identityQuery(id)?.filter.toString() ?? "";
    expect(await search(f("{6384E2B2-184B-CBF5-8ECC-F10CA7A6563C}"))).toEqual(["alice@contoso.com"]);
    expect(await search(f("*)(objectClass=*"))).toEqual(["hostile@contoso.com"]);
    expect(await search(f("*"))).toEqual([]);
    expect(await search(f("b.brown@contoso.com"))).toEqual(["bob@contoso.com"]);
    // Control: the same text unescaped would have matched every mailbox.
    expect((await search("(&(|(homeMDB=*)(msExchHomeServerName=*))(sAMAccountName=*))")).length).toBeGreaterThan(10);
  });

  it("DOMAIN\\sam picks the domain; a bare sam in two domains is ambiguous", async () => {
    expect(found(await dir.lookup("ASIA\\jun")).domain).toBe("ASIA");
    expect((await dir.lookup("CONTOSO\\jun")).status).toBe("not-found");
    expect((await dir.lookup("FABRIKAM\\alice")).status).toBe("not-found");
    expect(found(await dir.lookup("CONTOSO\\kim")).primarySmtpAddress).toBe("kim.k@contoso.com");
    expect(found(await dir.lookup("asia\\kim")).primarySmtpAddress).toBe("kim.kang@contoso.com");
    expect((await dir.lookup("kim")).status).toBe("not-found");
    // An explicit mapping overrides the DC-label guess.
    const mapped = make({ domains: { CORP: "DC=contoso,DC=com", ASIAPAC: "DC=asia,DC=contoso,DC=com" } });
    expect(found(await mapped.lookup("ASIAPAC\\jun")).domain).toBe("ASIAPAC");
    expect(found(await mapped.lookup("CORP\\alice")).domain).toBe("CORP");
    expect((await mapped.lookup("ASIA\\jun")).status).toBe("not-found");
  });

  it("Exchange 2003/2007 homeMDB DNs resolve to the topology's database names; msExchHomeServerName is the fallback", async () => {
    const dave = found(await dir.lookup("dave"));
    expect(dave.database).toBe("First Storage Group\\Mailbox Store (E2003)");
    expect(topology.findDatabase(dave.database)?.name).toBe("first-storage-group-mailbox-store-e2003");
    expect(found(await dir.lookup("carol")).database).toBe("DB-USA-2007");
    // Without the topology hook the record carries homeMDB's CN, as the contract says.
    const bare = make({ knownDatabase: undefined });
    expect(found(await bare.lookup("dave")).database).toBe("Mailbox Store (E2003)");
    const olga = found(await dir.lookup("olga@contoso.com"));
    expect(olga.database).toBe("");
    expect(olga.homeServer).toBe("/o=Contoso/ou=First Administrative Group/cn=Configuration/cn=Servers/cn=E2003");
    expect(topology.findServer(olga.homeServer ?? "")?.name).toBe("usa-e2003");
  });

  it("R-HYB-1: a remote mailbox (msExchRecipientTypeDetails RemoteUserMailbox, targetAddress) is found without homeMDB; a mail user is not a mailbox", async () => {
    const mia = found(await dir.lookup("CONTOSO\\mia"));
    expect(mia).toMatchObject({ primarySmtpAddress: "mia@contoso.com", database: "", remote: { targetAddress: "mia@contoso.mail.onmicrosoft.com", recipientTypeDetails: "RemoteUserMailbox" } });
    expect(found(await dir.lookup("mia@contoso.mail.onmicrosoft.com")).primarySmtpAddress).toBe("mia@contoso.com");
    expect((await dir.lookup("mark@contoso.com")).status).toBe("not-found");
  });

  it("unknown users and users without a mailbox are not-found", async () => {
    for (const id of ["nobody@contoso.com", "nobody", "CONTOSO\\nobody", "00000000-0000-0000-0000-000000000000", "nora@contoso.com", "nora", ""]) {
      expect((await dir.lookup(id)).status, id).toBe("not-found");
    }
  });

  it("unicode names are found", async () => {
    expect(found(await dir.lookup("山田@contoso.com")).displayName).toBe("山田 太郎");
    expect(found(await dir.lookup("JMÜLLER")).primarySmtpAddress).toBe("jose.mueller@contoso.com");
    expect(found(await dir.lookup("josé@contoso.com")).primarySmtpAddress).toBe("jose.mueller@contoso.com");
  });

  it("LDAP injection: hostile names match nothing, or only the user literally named so", async () => {
    const hostile = [
      "*",
      "**",
      "a*",
      "*@contoso.com",
      ")(",
      "alice)(sAMAccountName=*",
      "*)(objectClass=*)(",
      "alice*)(|(mail=*",
      "\\",
      "\\2a",
      "alice\\",
      "CONTOSO\\*",
      "CONTOSO\\a*",
      "alice\u0000",
      "\u0000",
      "*\u0000*",
      "alice@contoso.com)(mail=*",
      "x".repeat(1000),
      "*".repeat(5000),
      "y".repeat(100_000),
      "🙂*",
      "アリス*",
      "\u202ealice",
    ];
    for (const id of hostile) {
      const r = await dir.lookup(id);
      expect(r.status, JSON.stringify(id.slice(0, 40))).toBe("not-found");
    }
    // Filter syntax inside a real name matches exactly that entry and nothing else.
    expect(found(await dir.lookup("*)(objectClass=*")).primarySmtpAddress).toBe("hostile@contoso.com");
    expect(found(await dir.lookup("(x)*\\@contoso.com")).primarySmtpAddress).toBe("hostile@contoso.com");
    // The server is still fine afterwards.
    expect(found(await dir.lookup("bob")).primarySmtpAddress).toBe("bob@contoso.com");
  });

  it("a wrong bind password, or anonymous access the ACLs refuse, is `unavailable` (never not-found)", async () => {
    const bad = make({ password: "wrong" });
    const r = await bad.lookup("alice");
    expect(r.status).toBe("unavailable");
    if (r.status === "unavailable") expect(r.reason).toMatch(/credential|49/i);
    const anon = make({ bindDn: undefined, password: undefined });
    const a = await anon.lookup("alice");
    expect(a.status).toBe("unavailable");
    if (a.status === "unavailable") expect(a.reason).toMatch(/NoSuchObject|result code 32/);
  });

  it("LDAPS with the test CA works; an untrusted CA is refused", async () => {
    const tls = make({ url: slapd.ldapsUrl, ca: slapd.ca });
    expect(found(await tls.lookup("frank")).database).toBe("DB-EUR-2010");
    expect(found(await make({ url: slapd.ldapsUrl, ca: slapd.ca, tlsServerName: "localhost" }).lookup("frank")).displayName).toBe("Frank Fischer");
    expect((await make({ url: slapd.ldapsUrl, ca: slapd.ca, tlsServerName: "ldap.example.org" }).lookup("frank")).status).toBe("unavailable");
    const untrusted = make({ url: slapd.ldapsUrl, ca: slapd.otherCa });
    const r = await untrusted.lookup("frank");
    expect(r.status).toBe("unavailable");
  });

  it("StartTLS with the test CA works; a wrong server name is refused", async () => {
    const st = make({ startTls: true, ca: slapd.ca });
    expect(found(await st.lookup("greta@contoso.com")).database).toBe("DB-EUR-2010");
    const byName = make({ startTls: true, ca: slapd.ca, tlsServerName: "localhost" });
    expect(found(await byName.lookup("greta")).database).toBe("DB-EUR-2010");
    const wrongName = make({ startTls: true, ca: slapd.ca, tlsServerName: "ldap.example.org" });
    expect((await wrongName.lookup("greta")).status).toBe("unavailable");
  });

  it("openDirectory(ldaps://…/baseDN) with a password file and CA file gives a cached directory", async () => {
    const pw = join(slapd.dir, "bind-password");
    const ca = join(slapd.dir, "ca-for-gateway.pem");
    await writeFile(pw, `${BIND_PASSWORD}\n`);
    await writeFile(ca, slapd.ca);
    const d = await openDirectory(`${slapd.ldapsUrl}/${encodeURIComponent(BASE_DN)}`, {
      bindDn: BIND_DN,
      passwordFile: pw,
      caFile: ca,
      registry: new Registry(),
      knownDatabase: (n) => topology.findDatabase(n) !== undefined,
    });
    open.push(d);
    expect(d).toBeInstanceOf(CachedDirectory);
    expect(found(await d.lookup("hans")).database).toBe("DB-EUR-2007");
    expect(found(await d.lookup("HANS")).database).toBe("DB-EUR-2007");
    expect((d as CachedDirectory).stats).toMatchObject({ hits: 1, misses: 1 });
  });

  it("many concurrent look-ups share the pool's bound connections", async () => {
    const ids = users.filter((u) => u.database).map((u) => u.primary);
    const pooled = make({ poolSize: 3 });
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => pooled.lookup(ids[i % ids.length])));
    expect(results.every((r) => r.status === "found")).toBe(true);
    expect(pooled.stats).toEqual({ connects: 3, failures: 0 });
  });

  it("a pooled connection cut just as a search is sent is retried once on a new connection", async () => {
    // A loopback TCP proxy in front of slapd that can drop a connection on its next request,
    // as a server closing an idle connection at the wrong moment would.
    const slapdPort = Number(new URL(slapd.url).port);
    let cutNext = false;
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = connect({ host: "127.0.0.1", port: slapdPort });
      sockets.add(client).add(upstream);
      client.on("data", (b) => {
        if (cutNext) {
          cutNext = false;
          client.destroy();
          upstream.destroy();
          return;
        }
        upstream.write(b);
      });
      upstream.on("data", (b) => client.write(b));
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    try {
      const registry = new Registry();
      const viaProxy = make({ url: `ldap://127.0.0.1:${(proxy.address() as AddressInfo).port}`, poolSize: 1, registry });
      expect(found(await viaProxy.lookup("alice")).database).toBe("DB-USA-2010");
      cutNext = true;
      expect(found(await viaProxy.lookup("bob")).database).toBe("DB-USA-2010");
      expect(viaProxy.stats).toEqual({ connects: 2, failures: 0 });
      const text = await registry.metrics();
      expect(text).toContain('cas_directory_ldap_connects_total{result="ok"} 2');
      expect(text).toContain('cas_directory_ldap_lookup_seconds_count{result="found"} 2');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  // Last: stops and restarts slapd.
  it("server stopped: stale answers are served, new users fail by policy; restarted: recovery without a new directory", async () => {
    const registry = new Registry();
    let now = 1_000_000;
    const ldap = make({ timeoutMs: 2000 });
    const cached = new CachedDirectory(ldap, {
      ttlMs: 60_000,
      negativeTtlMs: 10_000,
      maxEntries: 1000,
      maxStaleMs: 3_600_000,
      errorBackoffMs: 0,
      registry,
      now: () => now,
    });
    const policyNotFound = new CachedDirectory(ldap, {
      ttlMs: 60_000, negativeTtlMs: 10_000, maxEntries: 1000, maxStaleMs: 3_600_000, errorBackoffMs: 0,
      failPolicy: "not-found", registry, name: "second", now: () => now,
    });
    expect(found(await cached.lookup("ines")).database).toBe("DB-EUR-2013");
    expect((await cached.lookup("ghost@contoso.com")).status).toBe("not-found");

    await slapd.stop();
    try {
      now += 120_000; // both entries expired
      expect(found(await cached.lookup("ines")).database).toBe("DB-EUR-2013");
      expect((await cached.lookup("ghost@contoso.com")).status).toBe("not-found");
      const fresh = await cached.lookup("jun");
      expect(fresh.status).toBe("unavailable");
      expect((await policyNotFound.lookup("jun")).status).toBe("not-found");
      expect(cached.stats.staleServed).toBe(2);
      expect(cached.stats.errors).toBeGreaterThanOrEqual(3);
      const text = await registry.metrics();
      expect(text).toMatch(/cas_directory_cache_stale_served_total\{directory="default"\} 2/);
      expect(text).toMatch(/cas_directory_errors_total\{directory="default"\} [3-9]/);
    } finally {
      await slapd.start();
    }
    // Same LdapDirectory object: its pool reconnects and rebinds by itself.
    let r: LookupResult = { status: "unavailable", reason: "not tried" };
    for (let i = 0; i < 50 && r.status !== "found"; i++) {
      r = await cached.lookup("jun");
      if (r.status !== "found") await new Promise((res) => setTimeout(res, 100));
    }
    expect(found(r).database).toBe("DB-ASIA-2010");
    expect(found(await ldap.lookup("ines@contoso.com")).database).toBe("DB-EUR-2013");
    // The pool opened new connections after the restart (at most one per slot per attempt).
    expect(ldap.stats.connects).toBeGreaterThan(2);
  });
  it("the same outage through openDirectory with default backoff and a real clock: stale served, then recovery", async () => {
    const pw = join(slapd.dir, "bind-password-2");
    await writeFile(pw, BIND_PASSWORD);
    const registry = new Registry();
    const d = (await openDirectory(slapd.url, {
      baseDn: BASE_DN,
      bindDn: BIND_DN,
      passwordFile: pw,
      timeoutMs: 1000,
      cacheTtlMs: 100,
      negativeTtlMs: 100,
      registry,
    })) as CachedDirectory;
    open.push(d);
    expect(found(await d.lookup("erin")).database).toBe("DB-USA-2013");
    await slapd.stop();
    try {
      await new Promise((r) => setTimeout(r, 150)); // the entry is now expired
      for (let i = 0; i < 5; i++) expect(found(await d.lookup("erin")).database).toBe("DB-USA-2013");
      expect((await d.lookup("lina")).status).toBe("unavailable");
      expect(d.stats.staleServed).toBe(5);
    } finally {
      await slapd.start();
    }
    let r: LookupResult = { status: "unavailable", reason: "not tried" };
    for (let i = 0; i < 60 && r.status !== "found"; i++) {
      r = await d.lookup("lina");
      if (r.status !== "found") await new Promise((res) => setTimeout(res, 100));
    }
    expect(found(r).database).toBe("DB-ASIA-2016");
    expect(await registry.metrics()).toMatch(/cas_directory_cache_stale_served_total\{directory="ldap:\/\/127\.0\.0\.1:\d+"\} 5/);
  });
});
