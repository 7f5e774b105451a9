// Pure parts of the LDAP directory (filters, GUIDs, DNs, entry mapping) and its timeouts against
// loopback TCP peers that never answer. The slapd tests are in test/ldap/.
import { createServer, type Server, type Socket } from "node:net";
import fc from "fast-check";
import { AndFilter, EqualityFilter, FilterParser, OrFilter } from "ldapts";
import { afterEach, describe, expect, it } from "vitest";
import {
  bytesToGuid,
  databaseCandidates,
  databaseNameOf,
  domainOf,
  guidToBytes,
  identityQuery,
  LdapDirectory,
  MAX_IDENTITY_LENGTH,
  parseDn,
  recordFromEntry,
} from "./ldap-directory.js";

describe("GUIDs", () => {
  it("msExchMailboxGuid bytes: first three groups little-endian, last two as written", () => {
    const b = guidToBytes("6384e2b2-184b-cbf5-8ecc-f10ca7a6563c");
    expect(b?.toString("hex")).toBe("b2e284634b18f5cb8eccf10ca7a6563c");
    expect(guidToBytes("{6384E2B2-184B-CBF5-8ECC-F10CA7A6563C}")?.equals(b as Buffer)).toBe(true);
    expect(guidToBytes("not-a-guid")).toBeUndefined();
  });

  it("round-trips any 16 bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (a) => {
        const g = bytesToGuid(Buffer.from(a));
        expect(g).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        expect(guidToBytes(g as string)?.equals(Buffer.from(a))).toBe(true);
      }),
    );
    expect(bytesToGuid(Buffer.alloc(15))).toBeUndefined();
  });
});

/** The identity clause (second operand of the AND) of a filter. */
function clause(id: string) {
  const q = identityQuery(id);
  if (!q) throw new Error("no query");
  expect(q.filter).toBeInstanceOf(AndFilter);
  return { q, c: (q.filter as AndFilter).filters[1] };
}

describe("identity -> filter", () => {
  it("picks the attribute by form", () => {
    expect(clause("Alice@Contoso.com").c.toString()).toBe(
      "(|(mail=Alice@Contoso.com)(proxyAddresses=smtp:Alice@Contoso.com)(userPrincipalName=Alice@Contoso.com))",
    );
    expect(clause("alice").c.toString()).toBe("(sAMAccountName=alice)");
    const d = clause("contoso\\alice");
    expect(d.c.toString()).toBe("(sAMAccountName=alice)");
    expect(d.q).toMatchObject({ form: "domain-sam", domain: "CONTOSO", value: "alice" });
    expect(clause("{6384e2b2-184b-cbf5-8ecc-f10ca7a6563c}").c.toString()).toBe(
      "(msExchMailboxGuid=\\b2\\e2\\84\\63\\4b\\18\\f5\\cb\\8e\\cc\\f1\\0c\\a7\\a6\\56\\3c)",
    );
    expect(identityQuery("alice")?.filter.toString()).toBe("(&(|(homeMDB=*)(msExchHomeServerName=*)(&(targetAddress=*)(msExchRecipientTypeDetails=*)))(sAMAccountName=alice))");
  });

  it("escapes filter syntax (RFC 4515) in the string form", () => {
    expect(clause("*)(objectClass=*").c.toString()).toBe("(sAMAccountName=\\2a\\29\\28objectClass=\\2a)");
    expect(clause("a\u0000b").c.toString()).toBe("(sAMAccountName=a\\00b)");
    expect(clause("\\").c.toString()).toBe("(sAMAccountName=\\5c)");
  });

  it("empty and over-long identities make no query", () => {
    expect(identityQuery("")).toBeUndefined();
    expect(identityQuery("   ")).toBeUndefined();
    expect(identityQuery("a".repeat(MAX_IDENTITY_LENGTH + 1))).toBeUndefined();
    expect(identityQuery("a".repeat(MAX_IDENTITY_LENGTH))).toBeDefined();
  });

  it("property: for any input, the filter parses back to the same structure with the value unchanged", () => {
    const hostile = fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 60 }),
      fc.string({ unit: fc.constantFrom("*", "(", ")", "\\", "\u0000", "=", "|", "&", "!", "a", "@", "é", "山"), maxLength: 40 }),
    );
    fc.assert(
      fc.property(hostile, (id) => {
        const q = identityQuery(id);
        if (!q) return;
        const back = FilterParser.parseString(q.filter.toString());
        expect(back.toString()).toBe(q.filter.toString());
        const c = (back as AndFilter).filters[1];
        if (q.form === "smtp") {
          const parts = (c as OrFilter).filters as EqualityFilter[];
          expect(parts.map((p) => [p.attribute, p.value])).toEqual([
            ["mail", q.value],
            ["proxyAddresses", `smtp:${q.value}`],
            ["userPrincipalName", q.value],
          ]);
        } else if (q.form !== "guid") {
          expect(c).toBeInstanceOf(EqualityFilter);
          expect((c as EqualityFilter).attribute).toBe("sAMAccountName");
          expect((c as EqualityFilter).value).toBe(q.value);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("DNs and database names", () => {
  const AG = "CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=com";

  it("parses escapes", () => {
    expect(parseDn("CN=Smith\\, John,OU=A\\2bB,DC=x")).toEqual([
      { type: "cn", value: "Smith, John" },
      { type: "ou", value: "A+B" },
      { type: "dc", value: "x" },
    ]);
    expect(parseDn("cn=caf\\c3\\a9 + uid=1,dc=x")[0]).toEqual({ type: "cn", value: "café" });
  });

  it("2010+ homeMDB -> the CN; 2003/2007 -> CN, SG\\CN, SERVER\\SG\\CN; the topology's name wins", () => {
    expect(databaseNameOf(`CN=DB-USA-2010,CN=Databases,${AG}`)).toBe("DB-USA-2010");
    const legacy = `CN=Mailbox Store (E2003),CN=First Storage Group,CN=InformationStore,CN=E2003,CN=Servers,${AG}`;
    expect(databaseCandidates(legacy)).toEqual([
      "Mailbox Store (E2003)",
      "First Storage Group\\Mailbox Store (E2003)",
      "E2003\\First Storage Group\\Mailbox Store (E2003)",
    ]);
    expect(databaseNameOf(legacy)).toBe("Mailbox Store (E2003)");
    expect(databaseNameOf(legacy, (n) => n === "First Storage Group\\Mailbox Store (E2003)")).toBe("First Storage Group\\Mailbox Store (E2003)");
    expect(databaseNameOf(legacy, () => false)).toBe("Mailbox Store (E2003)");
  });

  it("domain of an entry: explicit map (longest suffix), else first DC label", () => {
    expect(domainOf("cn=A,ou=Users,dc=asia,dc=contoso,dc=com")).toBe("ASIA");
    const map = { CORP: "DC=contoso,DC=com", APAC: "DC=Asia,DC=Contoso,DC=com" };
    expect(domainOf("cn=A,ou=Users,dc=asia,dc=contoso,dc=com", map)).toBe("APAC");
    expect(domainOf("CN=B,OU=Users,DC=contoso,DC=com", map)).toBe("CORP");
  });

  it("maps an entry to a MailboxRecord", () => {
    const r = recordFromEntry({
      dn: "CN=Alice,OU=Users,DC=contoso,DC=com",
      mail: "Alice@contoso.com",
      proxyAddresses: ["smtp:a@contoso.com", "SMTP:Alice@Contoso.com", "X500:/o=x", "sip:alice@contoso.com"],
      userPrincipalName: "Alice@Contoso.com",
      sAMAccountName: "alice",
      msExchMailboxGuid: guidToBytes("6384e2b2-184b-cbf5-8ecc-f10ca7a6563c") as Buffer,
      homeMDB: `CN=DB-USA-2010,CN=Databases,${AG}`,
    });
    expect(r).toEqual({
      primarySmtpAddress: "alice@contoso.com",
      userPrincipalName: "alice@contoso.com",
      samAccountName: "alice",
      domain: "CONTOSO",
      database: "DB-USA-2010",
      exchangeGuid: "6384e2b2-184b-cbf5-8ecc-f10ca7a6563c",
      emailAddresses: ["alice@contoso.com", "a@contoso.com"],
      displayName: undefined,
      homeServer: undefined,
    });
    expect(recordFromEntry({ dn: "CN=N,DC=x", mail: "n@x" })).toBeUndefined();
  });
});

describe("timeouts and failures against loopback peers", () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });
  const listen = async (onConn: (s: Socket) => void): Promise<number> => {
    const srv = createServer((s) => {
      sockets.push(s);
      onConn(s);
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    return (srv.address() as { port: number }).port;
  };

  it("a server that accepts and never answers: `unavailable` after the operation timeout", async () => {
    const port = await listen(() => undefined);
    const d = new LdapDirectory({ url: `ldap://127.0.0.1:${port}`, baseDn: "dc=x", bindDn: "cn=a,dc=x", password: "p", timeoutMs: 300 });
    const r = await d.lookup("alice");
    expect(r.status).toBe("unavailable");
    if (r.status === "unavailable") expect(r.reason).toMatch(/time/i);
    await d.close();
  });

  it("a server that closes the connection, and a closed port: `unavailable`, never a throw", async () => {
    const port = await listen((s) => s.destroy());
    const d = new LdapDirectory({ url: `ldap://127.0.0.1:${port}`, baseDn: "dc=x", timeoutMs: 1000 });
    expect((await d.lookup("alice")).status).toBe("unavailable");
    await d.close();
    const closedPort = await listen(() => undefined);
    await new Promise((r) => servers.pop()?.close(r));
    const e = new LdapDirectory({ url: `ldap://127.0.0.1:${closedPort}`, baseDn: "dc=x", timeoutMs: 1000 });
    const r = await e.lookup("bob@contoso.com");
    expect(r.status).toBe("unavailable");
    if (r.status === "unavailable") expect(r.reason).toMatch(/ECONNREFUSED/);
    await e.close();
    expect((await e.lookup("bob")).status).toBe("unavailable");
  });

  it("rejects bad URLs and ldaps:// with StartTLS", () => {
    expect(() => new LdapDirectory({ url: "http://x", baseDn: "dc=x" })).toThrow(/ldap:\/\//);
    expect(() => new LdapDirectory({ url: "ldaps://x", baseDn: "dc=x", startTls: true })).toThrow(/StartTLS/);
  });
});
