// LDIF for the test directory: the example organisation's mailboxes (examples/contoso/mailboxes.csv)
// as AD would hold them (homeMDB DNs in the layout of each Exchange version, msExchMailboxGuid as
// 16 raw bytes, proxyAddresses with SMTP:/smtp:), plus special users for edge cases, plus a bulk
// generator for the benchmark.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "csv-parse/sync";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import type { Topology } from "../../model/topology/types.js";
import { BASE_DN, BIND_DN, BIND_PASSWORD } from "./slapd.js";

const here = dirname(fileURLToPath(import.meta.url));
export const CONTOSO_DIR = join(here, "../../examples/contoso");

const CONFIG = "CN=Configuration,DC=contoso,DC=com";
const ORG = `CN=Contoso,CN=Microsoft Exchange,CN=Services,${CONFIG}`;
const AG_2007 = "Exchange Administrative Group (FYDIBOHF23SPDLT)";
const AG_2003 = "First Administrative Group";

/** One LDIF line; base64 when the value is not a SAFE-STRING (RFC 2849). */
export function ldifLine(attr: string, value: string | Buffer): string {
  const buf = Buffer.isBuffer(value) ? value : Buffer.from(value, "utf8");
  const text = buf.toString("utf8");
  const safe = !Buffer.isBuffer(value) && /^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*$/.test(text) && !text.endsWith(" ");
  return safe ? `${attr}: ${text}` : `${attr}:: ${buf.toString("base64")}`;
}

function entry(dn: string, attrs: [string, string | Buffer][]): string {
  return [ldifLine("dn", dn), ...attrs.map(([a, v]) => ldifLine(a, v))].join("\n") + "\n\n";
}

const escRdn = (v: string) => v.replace(/([,+"\\<>;=])/g, "\\$1").replace(/^([ #])/, "\\$1").replace(/ $/, "\\ ");

/** NetBIOS-style server name AD uses in configuration DNs (first FQDN label, upper-case). */
function serverCn(topology: Topology, server: string): string {
  const s = topology.servers.get(server);
  return (s ? s.fqdn.split(".")[0] : server).toUpperCase();
}

/** The homeMDB DN of a database, in the layout of the Exchange version that holds it. */
export function homeMdbDn(topology: Topology, databaseName: string): string {
  const db = [...topology.databases.values()].find((d) => d.databaseName === databaseName || d.name === databaseName);
  if (!db) return `CN=${escRdn(databaseName)},CN=Databases,CN=${AG_2007},CN=Administrative Groups,${ORG}`;
  const server = topology.servers.get(db.activeServer);
  const version = server?.version ?? 2010;
  const srv = serverCn(topology, db.activeServer);
  if (version >= 2010) return `CN=${escRdn(db.databaseName)},CN=Databases,CN=${AG_2007},CN=Administrative Groups,${ORG}`;
  const [sg, store] = db.databaseName.includes("\\") ? db.databaseName.split("\\", 2) : ["First Storage Group", db.databaseName];
  const ag = version >= 2007 ? AG_2007 : AG_2003;
  return `CN=${escRdn(store)},CN=${escRdn(sg)},CN=InformationStore,CN=${srv},CN=Servers,CN=${ag},CN=Administrative Groups,${ORG}`;
}

export function homeServerName(topology: Topology, server: string): string {
  const s = topology.servers.get(server);
  const ag = s && s.version < 2007 ? AG_2003 : AG_2007;
  return `/o=Contoso/ou=${ag}/cn=Configuration/cn=Servers/cn=${serverCn(topology, server)}`;
}

/**
 * The 16 bytes AD stores in msExchMailboxGuid for a GUID's text, written here independently of the
 * code under test (sidecar/directory/ldap-directory.ts): Windows' GUID struct (System.Guid's
 * ToByteArray) — Data1 as a 32-bit and Data2, Data3 as 16-bit little-endian integers, then Data4's
 * 8 bytes in order. 6384e2b2-184b-cbf5-8ecc-f10ca7a6563c → b2 e2 84 63 4b 18 f5 cb 8e cc f1 0c a7 a6 56 3c.
 */
export function adGuidBytes(guid: string): Buffer {
  const m = /^\{?([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4}-[0-9a-f]{12})\}?$/i.exec(guid);
  if (!m) throw new Error(`fixture GUID "${guid}" is not a GUID`);
  const b = Buffer.alloc(16);
  b.writeUInt32LE(parseInt(m[1], 16), 0);
  b.writeUInt16LE(parseInt(m[2], 16), 4);
  b.writeUInt16LE(parseInt(m[3], 16), 6);
  Buffer.from(m[4].replace("-", ""), "hex").copy(b, 8);
  return b;
}

/** The text a reader taking the bytes in order (the byte-order bug) would make of a GUID. */
export function misreadGuid(guid: string): string {
  const h = adGuidBytes(guid).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * yamada exists only in LDAP: nothing but msExchMailboxGuid can give the gateway this GUID. Its
 * bytes as AD holds them (ldifde shows them as msExchMailboxGuid:: q4gfhiXRU0edwFnH7S08Yw==; Python: uuid.UUID(YAMADA_GUID).bytes_le).
 */
export const YAMADA_GUID = "861f88ab-d125-4753-9dc0-59c7ed2d3c63";
export const YAMADA_GUID_AD_HEX = "ab881f8625d153479dc059c7ed2d3c63";

export interface FixtureUser {
  readonly cn: string;
  readonly sam: string;
  readonly domainDn: string;
  readonly ou: string;
  readonly primary: string;
  readonly proxies: readonly string[];
  readonly upn?: string;
  readonly guid?: string;
  readonly database?: string;
  readonly homeServer?: string;
  readonly displayName?: string;
  /** R-HYB-1: a remote mailbox (msExchRecipientTypeDetails, targetAddress). */
  readonly remote?: { readonly typeDetails: string; readonly targetAddress: string };
}

export function userEntry(topology: Topology, u: FixtureUser): string {
  const dn = `CN=${escRdn(u.cn)},OU=${u.ou},${u.domainDn}`;
  const attrs: [string, string | Buffer][] = [
    ["objectClass", "top"],
    ["objectClass", "person"],
    ["objectClass", "organizationalPerson"],
    ["objectClass", "inetOrgPerson"],
    ["objectClass", "casExchangeMailboxUser"],
    ["cn", u.cn],
    ["sn", u.cn.split(" ").slice(-1)[0]],
    ["sAMAccountName", u.sam],
    ["mail", u.primary],
    ["proxyAddresses", `SMTP:${u.primary}`],
    ...u.proxies.map((p): [string, string] => ["proxyAddresses", `smtp:${p}`]),
  ];
  if (u.upn) attrs.push(["userPrincipalName", u.upn]);
  if (u.displayName) attrs.push(["displayName", u.displayName]);
  if (u.guid) attrs.push(["msExchMailboxGuid", adGuidBytes(u.guid)]);
  if (u.database) attrs.push(["homeMDB", homeMdbDn(topology, u.database)]);
  if (u.homeServer) attrs.push(["msExchHomeServerName", homeServerName(topology, u.homeServer)]);
  if (u.remote) attrs.push(["msExchRecipientTypeDetails", u.remote.typeDetails], ["targetAddress", u.remote.targetAddress]);
  return entry(dn, attrs);
}

const ASIA_DN = `DC=asia,${BASE_DN.replace(/dc=/g, "DC=")}`;
const ROOT_DN = BASE_DN.replace(/dc=/g, "DC=");

function skeleton(): string {
  return (
    entry(ROOT_DN, [["objectClass", "top"], ["objectClass", "dcObject"], ["objectClass", "organization"], ["dc", "contoso"], ["o", "Contoso"]]) +
    entry(`OU=Service Accounts,${ROOT_DN}`, [["objectClass", "organizationalUnit"], ["ou", "Service Accounts"]]) +
    entry(BIND_DN, [["objectClass", "organizationalRole"], ["objectClass", "simpleSecurityObject"], ["cn", "svc-cas"], ["userPassword", BIND_PASSWORD]]) +
    entry(`OU=Users,${ROOT_DN}`, [["objectClass", "organizationalUnit"], ["ou", "Users"]]) +
    entry(ASIA_DN, [["objectClass", "domain"], ["dc", "asia"]]) +
    entry(`OU=Users,${ASIA_DN}`, [["objectClass", "organizationalUnit"], ["ou", "Users"]])
  );
}

export async function contosoTopology(): Promise<Topology> {
  return (await loadOrganisation(CONTOSO_DIR)).topology;
}

/** Users of examples/contoso/mailboxes.csv (asia's in the child domain ASIA) plus edge cases. */
export async function contosoUsers(topology: Topology): Promise<FixtureUser[]> {
  const text = await readFile(join(CONTOSO_DIR, "mailboxes.csv"), "utf8");
  const rows = parse(text.replace(/^\uFEFF?#[^\n]*\n/, ""), { columns: true, skip_empty_lines: true, bom: true }) as Record<string, string>[];
  const users: FixtureUser[] = rows.map((r) => {
    const asia = r.Database.startsWith("DB-ASIA");
    const addrs = r.EmailAddresses.split(/\s+/).filter((a) => /^smtp:/.test(a)).map((a) => a.slice(5));
    return {
      cn: r.DisplayName,
      sam: r.SamAccountName,
      domainDn: asia ? ASIA_DN : ROOT_DN,
      ou: "Users",
      primary: r.PrimarySmtpAddress,
      proxies: addrs,
      upn: r.UserPrincipalName,
      guid: r.ExchangeGuid,
      database: r.Database,
      displayName: r.DisplayName,
    };
  });
  const db = (n: string) => [...topology.databases.values()].find((d) => d.databaseName === n)?.databaseName ?? n;
  users.push(
    // Same sAMAccountName in two domains: bare "kim" is ambiguous, CONTOSO\kim and ASIA\kim are not.
    { cn: "Kim Kowalski", sam: "kim", domainDn: ROOT_DN, ou: "Users", primary: "kim.k@contoso.com", proxies: [], upn: "kim.k@contoso.com", guid: "0a0b0c0d-0e0f-1011-1213-141516171819", database: db("DB-USA-2013") },
    { cn: "Kim Kang", sam: "kim", domainDn: ASIA_DN, ou: "Users", primary: "kim.kang@contoso.com", proxies: [], upn: "kim.kang@asia.contoso.com", guid: "f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f", database: db("DB-ASIA-2010") },
    // Pre-2000-style mailbox: only msExchHomeServerName, no homeMDB.
    { cn: "Olga Old", sam: "olga", domainDn: ROOT_DN, ou: "Users", primary: "olga@contoso.com", proxies: [], upn: "olga@contoso.com", homeServer: "usa-e2003" },
    // R-HYB-1: moved to Exchange Online (RemoteUserMailbox): no homeMDB, a target address.
    { cn: "Mia Moved", sam: "mia", domainDn: ROOT_DN, ou: "Users", primary: "mia@contoso.com", proxies: ["mia@contoso.mail.onmicrosoft.com"], upn: "mia@contoso.com", remote: { typeDetails: "2147483648", targetAddress: "SMTP:mia@contoso.mail.onmicrosoft.com" } },
    // A mail user with a target address but no remote mailbox type (a MailUser, 128): no mailbox.
    { cn: "Mark Mailuser", sam: "mark", domainDn: ROOT_DN, ou: "Users", primary: "mark@contoso.com", proxies: [], upn: "mark@contoso.com", remote: { typeDetails: "128", targetAddress: "SMTP:mark@fabrikam.com" } },
    // A user without a mailbox: not a mailbox user for the gateway.
    { cn: "Nora Nomail", sam: "nora", domainDn: ROOT_DN, ou: "Users", primary: "nora@contoso.com", proxies: [], upn: "nora@contoso.com" },
    // Names made of filter syntax, which must match only themselves.
    { cn: "Hostile Name", sam: "*)(objectClass=*", domainDn: ROOT_DN, ou: "Users", primary: "hostile@contoso.com", proxies: ["(x)*\\@contoso.com"], upn: "hostile@contoso.com", database: db("DB-EUR-2013") },
    // Unicode names.
    { cn: "Yamada Taro", sam: "yamada", domainDn: ROOT_DN, ou: "Users", primary: "yamada@contoso.com", proxies: ["山田@contoso.com"], upn: "yamada@contoso.com", displayName: "山田 太郎", guid: YAMADA_GUID, database: db("DB-ASIA-2016") },
    { cn: "José Müller", sam: "jmüller", domainDn: ROOT_DN, ou: "Users", primary: "jose.mueller@contoso.com", proxies: ["josé@contoso.com"], upn: "jose.mueller@contoso.com", database: db("DB-EUR-2010") },
  );
  return users;
}

export async function contosoLdif(): Promise<{ ldif: string; topology: Topology; users: FixtureUser[] }> {
  const topology = await contosoTopology();
  const users = await contosoUsers(topology);
  return { ldif: skeleton() + users.map((u) => userEntry(topology, u)).join(""), topology, users };
}

/** Deterministic, distinct (version 4 shaped) GUID for bulk user i: every field of it differs from user to user. */
export function bulkGuid(i: number): string {
  for (let salt = 0; ; salt++) {
    const h = createHash("sha256").update(`bulk-user-${i}#${salt}`).digest("hex");
    const g = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${"89ab"[parseInt(h[16], 16) & 3]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
    // No field of one repeated digit (such a field reads the same in either byte order).
    if (!g.split("-").some((f) => /^(.)\1*$/.test(f))) return g;
  }
}

/** The example organisation's users plus n generated mailboxes spread over its databases. */
export async function bulkLdif(n: number): Promise<{ ldif: string; topology: Topology }> {
  const { ldif, topology } = await contosoLdif();
  const dbs = [...topology.databases.values()].map((d) => d.databaseName);
  const parts: string[] = [ldif, entry(`OU=Bulk,${ROOT_DN}`, [["objectClass", "organizationalUnit"], ["ou", "Bulk"]])];
  for (let i = 0; i < n; i++) {
    const id = `user${String(i).padStart(5, "0")}`;
    parts.push(
      userEntry(topology, {
        cn: `Bulk ${id}`,
        sam: id,
        domainDn: ROOT_DN,
        ou: "Bulk",
        primary: `${id}@contoso.com`,
        proxies: [`${id}@bulk.contoso.com`],
        upn: `${id}@contoso.com`,
        guid: bulkGuid(i),
        database: dbs[i % dbs.length],
      }),
    );
  }
  return { ldif: parts.join(""), topology };
}
