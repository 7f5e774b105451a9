// Mailbox directory on LDAP / Active Directory (ldapts). One search per look-up, filters built as
// ldapts Filter objects (sent as BER, so a user name can never become filter syntax; their string
// form is RFC 4515-escaped for logs). A small pool of bound connections, each used concurrently
// (LDAP multiplexes by message id), replaced when it fails. Every operation has a timeout.
import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";
import { AndFilter, Client, EqualityFilter, type Entry, type Filter, OrFilter, PresenceFilter, ResultCodeError } from "ldapts";
import type { Logger } from "pino";
import { Counter, Histogram, type Registry } from "prom-client";
import { REMOTE_RECIPIENT_TYPES, targetAddressOf, type LookupResult, type MailboxDirectory, type MailboxRecord } from "../../model/directory/types.js";

export interface LdapDirectoryOptions {
  /** ldap://host:port or ldaps://host:port (no path; the base DN is separate). */
  readonly url: string;
  readonly baseDn: string;
  /** Simple bind; anonymous when absent. */
  readonly bindDn?: string;
  readonly password?: string;
  /** PEM CA bundle to trust for LDAPS / StartTLS (otherwise Node's default CAs). */
  readonly ca?: string | Buffer;
  /** TLS server name to check, when it differs from the URL's host. */
  readonly tlsServerName?: string;
  readonly startTls?: boolean;
  /** Per LDAP operation (connect, StartTLS, bind, search). */
  readonly timeoutMs?: number;
  /** Bound connections kept open and shared. */
  readonly poolSize?: number;
  /** NetBIOS domain name -> the domain's DN, for DOMAIN\user look-ups. Default: first DC label, upper-cased. */
  readonly domains?: Readonly<Record<string, string>>;
  /**
   * Whether the topology knows a database name. homeMDB gives a DN; for Exchange 2003/2007
   * (CN=Store,CN=Storage Group,CN=InformationStore,CN=Server,...) the name Exchange reports may be
   * "Storage Group\Store" or "Server\Storage Group\Store": the first known candidate wins; default the CN.
   */
  readonly knownDatabase?: (name: string) => boolean;
  readonly logger?: Logger;
  /** prom-client registry for LDAP latency and connection metrics (none when absent). */
  readonly registry?: Registry;
}

/** Longest identity sent to the server; longer ones are not-found without a query. */
export const MAX_IDENTITY_LENGTH = 1024;

const GUID_RE = /^\{?([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})\}?$/i;

const ATTRIBUTES = [
  "mail",
  "proxyAddresses",
  "userPrincipalName",
  "sAMAccountName",
  "msExchMailboxGuid",
  "homeMDB",
  "msExchHomeServerName",
  "displayName",
  // R-HYB-1: remote (Exchange Online) mailboxes.
  "msExchRecipientTypeDetails",
  "targetAddress",
];

/** GUID text -> the 16 bytes AD stores (first three groups little-endian, as Windows' GUID struct). */
export function guidToBytes(guid: string): Buffer | undefined {
  const m = GUID_RE.exec(guid.trim());
  if (!m) return undefined;
  const le = (hex: string) => Buffer.from(hex, "hex").reverse();
  return Buffer.concat([le(m[1]), le(m[2]), le(m[3]), Buffer.from(m[4] + m[5], "hex")]);
}

export function bytesToGuid(b: Buffer): string | undefined {
  if (b.length !== 16) return undefined;
  const h = (s: number, e: number, rev: boolean) => {
    const part = Buffer.from(b.subarray(s, e));
    return (rev ? part.reverse() : part).toString("hex");
  };
  return `${h(0, 4, true)}-${h(4, 6, true)}-${h(6, 8, true)}-${h(8, 10, false)}-${h(10, 16, false)}`;
}

export interface IdentityQuery {
  /** Full search filter (mailbox users only, and the identity clause). */
  readonly filter: Filter;
  readonly form: "guid" | "smtp" | "sam" | "domain-sam";
  /** Requested NetBIOS domain for DOMAIN\sam (upper-case). */
  readonly domain?: string;
  readonly value: string;
}

const eq = (attribute: string, value: string | Buffer) => new EqualityFilter({ attribute, value });

/** Only entries with a mailbox: homeMDB (2000+) or, for old data, msExchHomeServerName. */
const HAS_MAILBOX = new OrFilter({
  filters: [
    new PresenceFilter({ attribute: "homeMDB" }),
    new PresenceFilter({ attribute: "msExchHomeServerName" }),
    // R-HYB-1: a remote mailbox has a target address and a Remote* recipient type instead.
    new AndFilter({ filters: [new PresenceFilter({ attribute: "targetAddress" }), new PresenceFilter({ attribute: "msExchRecipientTypeDetails" })] }),
  ],
});

/** The search for one identity, or undefined when it cannot name anybody (empty, too long). */
export function identityQuery(identity: string): IdentityQuery | undefined {
  const id = identity.trim();
  if (id.length === 0 || id.length > MAX_IDENTITY_LENGTH) return undefined;
  const guid = guidToBytes(id);
  let clause: Filter;
  let form: IdentityQuery["form"];
  let domain: string | undefined;
  let value = id;
  if (guid) {
    form = "guid";
    clause = eq("msExchMailboxGuid", guid);
  } else if (id.includes("@")) {
    form = "smtp";
    clause = new OrFilter({
      filters: [eq("mail", id), eq("proxyAddresses", `smtp:${id}`), eq("userPrincipalName", id)],
    });
  } else {
    const slash = id.indexOf("\\");
    if (slash > 0 && slash < id.length - 1) {
      form = "domain-sam";
      domain = id.slice(0, slash).toUpperCase();
      value = id.slice(slash + 1);
    } else {
      form = "sam";
    }
    clause = eq("sAMAccountName", value);
  }
  return { filter: new AndFilter({ filters: [HAS_MAILBOX, clause] }), form, domain, value };
}

export interface Rdn {
  readonly type: string;
  readonly value: string;
}

/** RFC 4514 DN -> RDNs (first = leaf). Handles \, \+ \\ \"  and \XX escapes; multi-valued RDNs keep their first AVA. */
export function parseDn(dn: string): Rdn[] {
  const out: Rdn[] = [];
  let i = 0;
  const n = dn.length;
  while (i < n) {
    while (i < n && dn[i] === " ") i++;
    const eqAt = dn.indexOf("=", i);
    if (eqAt < 0) break;
    const type = dn.slice(i, eqAt).trim();
    i = eqAt + 1;
    const bytes: number[] = [];
    while (i < n && dn[i] !== "," && dn[i] !== ";") {
      const c = dn[i];
      if (c === "\\" && i + 1 < n) {
        const hex = dn.slice(i + 1, i + 3);
        if (/^[0-9a-fA-F]{2}$/.test(hex)) {
          bytes.push(parseInt(hex, 16));
          i += 3;
        } else {
          bytes.push(...Buffer.from(dn[i + 1], "utf8"));
          i += 2;
        }
      } else if (c === "+") {
        // Multi-valued RDN: skip the other AVAs up to the next separator.
        while (i < n && dn[i] !== "," && dn[i] !== ";") i += dn[i] === "\\" ? 2 : 1;
      } else {
        bytes.push(...Buffer.from(c, "utf8"));
        i++;
      }
    }
    out.push({ type: type.toLowerCase(), value: Buffer.from(bytes).toString("utf8").trim() });
    i++;
  }
  return out;
}

/** Candidate database names for a homeMDB DN, most likely first. */
export function databaseCandidates(homeMdb: string): string[] {
  const rdns = parseDn(homeMdb);
  if (rdns.length === 0) return [homeMdb.trim()];
  const cn = rdns[0].value;
  const out = [cn];
  // Exchange 2003/2007: CN=<store>,CN=<storage group>,CN=InformationStore,CN=<server>,CN=Servers,...
  if (rdns.length >= 4 && rdns[2].value.toLowerCase() === "informationstore") {
    out.push(`${rdns[1].value}\\${cn}`, `${rdns[3].value}\\${rdns[1].value}\\${cn}`);
  }
  return out;
}

export function databaseNameOf(homeMdb: string, known?: (name: string) => boolean): string {
  const c = databaseCandidates(homeMdb);
  return (known && c.find((x) => known(x))) || c[0];
}

/** NetBIOS name of the domain an entry lives in. */
export function domainOf(entryDn: string, domains?: Readonly<Record<string, string>>): string | undefined {
  const rdns = parseDn(entryDn);
  const norm = (dn: string) =>
    parseDn(dn)
      .map((r) => `${r.type}=${r.value.toLowerCase()}`)
      .join(",");
  const full = rdns.map((r) => `${r.type}=${r.value.toLowerCase()}`).join(",");
  if (domains) {
    let best: { name: string; len: number } | undefined;
    for (const [name, dn] of Object.entries(domains)) {
      const d = norm(dn);
      if ((full === d || full.endsWith(`,${d}`)) && (!best || d.length > best.len)) best = { name: name.toUpperCase(), len: d.length };
    }
    if (best) return best.name;
  }
  const dc = rdns.find((r) => r.type === "dc");
  return dc ? dc.value.toUpperCase() : undefined;
}

type Attrs = Map<string, (string | Buffer)[]>;

function attrsOf(e: Entry): Attrs {
  const m: Attrs = new Map();
  for (const [k, v] of Object.entries(e)) {
    if (k === "dn") continue;
    m.set(k.toLowerCase(), Array.isArray(v) ? v : [v]);
  }
  return m;
}
const strs = (a: Attrs, k: string) => (a.get(k.toLowerCase()) ?? []).map((v) => (Buffer.isBuffer(v) ? v.toString("utf8") : v));
const str = (a: Attrs, k: string) => strs(a, k)[0];

/** An LDAP entry -> MailboxRecord; undefined when it has no SMTP address or mailbox location. */
export function recordFromEntry(
  e: Entry,
  opts: Pick<LdapDirectoryOptions, "domains" | "knownDatabase"> = {},
): MailboxRecord | undefined {
  const a = attrsOf(e);
  const proxies = strs(a, "proxyAddresses");
  const smtp = proxies.filter((p) => /^smtp:/i.test(p));
  const primaryProxy = smtp.find((p) => p.startsWith("SMTP:"));
  const mail = str(a, "mail");
  const primary = (primaryProxy?.slice(5) ?? mail ?? smtp[0]?.slice(5))?.toLowerCase();
  const homeMdb = str(a, "homeMDB");
  const homeServer = str(a, "msExchHomeServerName");
  const remoteType = REMOTE_RECIPIENT_TYPES.get((str(a, "msExchRecipientTypeDetails") ?? "").trim());
  const target = remoteType ? targetAddressOf(str(a, "targetAddress") ?? "") : undefined;
  if (!primary || (!homeMdb && !homeServer && !target)) return undefined;
  const addresses = new Set<string>([primary]);
  if (mail) addresses.add(mail.toLowerCase());
  for (const p of smtp) addresses.add(p.slice(5).toLowerCase());
  const guidRaw = a.get("msexchmailboxguid")?.[0];
  const guid = Buffer.isBuffer(guidRaw) ? bytesToGuid(guidRaw) : guidRaw ? (GUID_RE.test(guidRaw) ? guidRaw.replace(/[{}]/g, "").toLowerCase() : undefined) : undefined;
  const upn = str(a, "userPrincipalName");
  const record: MailboxRecord = {
    primarySmtpAddress: primary,
    userPrincipalName: upn ? upn.toLowerCase() : undefined,
    samAccountName: str(a, "sAMAccountName"),
    domain: domainOf(e.dn, opts.domains),
    database: homeMdb ? databaseNameOf(homeMdb, opts.knownDatabase) : "",
    exchangeGuid: guid,
    emailAddresses: Object.freeze([...addresses]),
    displayName: str(a, "displayName"),
    homeServer,
    ...(remoteType && target ? { remote: { targetAddress: target, recipientTypeDetails: remoteType } } : {}),
  };
  return Object.freeze(record);
}

/** Of several entries, the one the identity names best; undefined when still ambiguous. */
function pick(records: MailboxRecord[], q: IdentityQuery): MailboxRecord | undefined {
  let rs = records;
  if (q.form === "domain-sam") rs = rs.filter((r) => r.domain?.toUpperCase() === q.domain);
  if (rs.length <= 1) return rs[0];
  if (q.form === "smtp") {
    const v = q.value.toLowerCase();
    for (const test of [
      (r: MailboxRecord) => r.primarySmtpAddress === v,
      (r: MailboxRecord) => r.emailAddresses.includes(v),
      (r: MailboxRecord) => r.userPrincipalName === v,
    ]) {
      const hit = rs.filter(test);
      if (hit.length === 1) return hit[0];
      if (hit.length > 1) return undefined;
    }
  }
  return undefined;
}

class DeadlineError extends Error {}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** Result codes that say the query was answered (so the connection is fine). */
function isAnswer(err: unknown): boolean {
  return err instanceof ResultCodeError && ![51 /* busy */, 52 /* unavailable */, 49 /* invalid credentials */, 1 /* operations */].includes(err.code);
}

function describeError(err: unknown): string {
  if (err instanceof ResultCodeError) return `${err.constructor.name} (result code ${err.code})`;
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ? `${err.message} (${(err as NodeJS.ErrnoException).code})` : err.message;
  return String(err);
}

interface Slot {
  client?: Client;
  ready?: Promise<Client>;
}

interface Acquired {
  readonly slot: Slot;
  readonly ready: Promise<Client>;
  /** Connected for this look-up (not reused from the pool). */
  readonly fresh: boolean;
  readonly client: Client;
}

interface LdapMetrics {
  seconds: Histogram<"result">;
  connects: Counter<"result">;
}

const ldapMetricsByRegistry = new WeakMap<Registry, LdapMetrics>();

function ldapMetricsFor(registry: Registry): LdapMetrics {
  let m = ldapMetricsByRegistry.get(registry);
  if (!m) {
    m = {
      seconds:
        (registry.getSingleMetric("cas_directory_ldap_lookup_seconds") as Histogram<"result"> | undefined) ??
        new Histogram({
          name: "cas_directory_ldap_lookup_seconds",
          help: "LDAP mailbox look-ups (cache misses), by result: found, not-found, unavailable",
          labelNames: ["result"],
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers: [registry],
        }),
      connects:
        (registry.getSingleMetric("cas_directory_ldap_connects_total") as Counter<"result"> | undefined) ??
        new Counter({
          name: "cas_directory_ldap_connects_total",
          help: "LDAP connections opened for the pool (connect, StartTLS, bind), by result: ok, error",
          labelNames: ["result"],
          registers: [registry],
        }),
    };
    ldapMetricsByRegistry.set(registry, m);
  }
  return m;
}

export class LdapDirectory implements MailboxDirectory {
  private readonly slots: Slot[];
  private next = 0;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly clientUrl: string;
  private readonly tls: ConnectionOptions;
  /** Connections opened (and bound) so far, and look-ups that failed. */
  readonly stats = { connects: 0, failures: 0 };
  private readonly metrics?: LdapMetrics;

  constructor(private readonly opts: LdapDirectoryOptions) {
    const u = new URL(opts.url);
    if (u.protocol !== "ldap:" && u.protocol !== "ldaps:") throw new Error(`LDAP URL must be ldap:// or ldaps://, not "${opts.url}"`);
    if (u.protocol === "ldaps:" && opts.startTls) throw new Error("StartTLS is for ldap:// URLs; ldaps:// is TLS already");
    this.clientUrl = `${u.protocol}//${u.host}`;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.metrics = opts.registry ? ldapMetricsFor(opts.registry) : undefined;
    this.slots = Array.from({ length: Math.max(1, opts.poolSize ?? 4) }, () => ({}));
    this.tls = {
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.tlsServerName ? { servername: opts.tlsServerName } : {}),
      minVersion: "TLSv1.2",
    };
  }

  private async connect(): Promise<Client> {
    const client = new Client({
      url: this.clientUrl,
      timeout: this.timeoutMs,
      connectTimeout: this.timeoutMs,
      // ldapts treats any tlsOptions as "connect with TLS": only for ldaps://.
      ...(this.clientUrl.startsWith("ldaps:") ? { tlsOptions: this.tls } : {}),
      strictDN: true,
    });
    try {
      if (this.opts.startTls) {
        // The upgraded socket has no host of its own: name the one the certificate must match
        // (SNI only for DNS names; RFC 6066 forbids IP addresses there).
        const host = new URL(this.opts.url).hostname.replace(/^\[|\]$/g, "");
        await client.startTLS({ ...this.tls, host, ...(this.tls.servername || isIP(host) ? {} : { servername: host }) });
      }
      if (this.opts.bindDn) await client.bind(this.opts.bindDn, this.opts.password ?? "");
      this.stats.connects++;
      this.metrics?.connects.inc({ result: "ok" });
      return client;
    } catch (err) {
      this.metrics?.connects.inc({ result: "error" });
      await client.unbind().catch(() => undefined);
      throw err;
    }
  }

  private async acquire(): Promise<Acquired> {
    const slot = this.slots[this.next];
    this.next = (this.next + 1) % this.slots.length;
    // Idle connections closed by the server (AD: MaxConnIdleTime) are replaced before use.
    if (slot.client && (!slot.client.isConnected || (this.opts.bindDn && !slot.client.isBound))) this.discard(slot, slot.ready);
    let fresh = false;
    if (!slot.ready) {
      fresh = true;
      const inner = this.connect();
      const ready = withDeadline(inner, this.timeoutMs * 3, "LDAP connect/bind");
      slot.ready = ready;
      ready.then(
        (c) => {
          if (slot.ready === ready) slot.client = c;
          else void c.unbind().catch(() => undefined);
        },
        () => {
          if (slot.ready === ready) slot.ready = undefined;
          // A connection that completes after its deadline is closed, not leaked.
          inner.then((c) => c.unbind().catch(() => undefined), () => undefined);
        },
      );
    }
    const ready = slot.ready;
    return { slot, ready, fresh, client: await ready };
  }

  /** Drop a slot's connection, unless another look-up already replaced it. */
  private discard(slot: Slot, ready: Promise<Client> | undefined): void {
    if (slot.ready !== ready) return;
    const c = slot.client;
    slot.client = undefined;
    slot.ready = undefined;
    if (c) void c.unbind().catch(() => undefined);
  }

  private async search(client: Client, q: IdentityQuery): Promise<Entry[]> {
    const { searchEntries } = await withDeadline(
      client.search(this.opts.baseDn, {
        scope: "sub",
        filter: q.filter,
        attributes: ATTRIBUTES,
        explicitBufferAttributes: ["msExchMailboxGuid"],
        sizeLimit: 10,
        timeLimit: Math.max(1, Math.ceil(this.timeoutMs / 1000)),
      }),
      this.timeoutMs + 500,
      "LDAP search",
    );
    return searchEntries;
  }

  async lookup(identity: string): Promise<LookupResult> {
    if (this.closed) return { status: "unavailable", reason: "directory is closed" };
    const q = identityQuery(identity);
    if (!q) return { status: "not-found" };
    const started = performance.now();
    const done = (result: LookupResult): LookupResult => {
      this.metrics?.seconds.observe({ result: result.status }, (performance.now() - started) / 1000);
      return result;
    };
    for (let attempt = 0; ; attempt++) {
      let acquired: Acquired | undefined;
      try {
        acquired = await this.acquire();
        const entries = await this.search(acquired.client, q);
        const records = entries.map((e) => recordFromEntry(e, this.opts)).filter((r): r is MailboxRecord => r !== undefined);
        const found = pick(records, q);
        if (!found && records.length > 1) {
          this.opts.logger?.warn({ filter: q.filter.toString(), matches: records.length }, "ambiguous directory look-up; treated as not found");
        }
        return done(found ? { status: "found", mailbox: found } : { status: "not-found" });
      } catch (err) {
        const answered = isAnswer(err);
        if (acquired && !answered) this.discard(acquired.slot, acquired.ready);
        // A pooled connection that died under us (closed between the liveness check and the
        // send) is retried once on a new connection; timeouts and server answers are not.
        if (attempt === 0 && acquired && !acquired.fresh && !answered && !(err instanceof DeadlineError) && !/time/i.test(String(err))) {
          this.opts.logger?.debug({ err }, "pooled LDAP connection failed; retrying on a new one");
          continue;
        }
        this.stats.failures++;
        const reason = `LDAP ${this.clientUrl}: ${describeError(err)}`;
        this.opts.logger?.warn({ err, filter: q.filter.toString() }, "directory look-up failed");
        return done({ status: "unavailable", reason });
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = this.slots.map(async (s) => {
      const ready = s.ready;
      s.ready = undefined;
      s.client = undefined;
      const c = await ready?.catch(() => undefined);
      await c?.unbind().catch(() => undefined);
    });
    await Promise.all(pending);
  }
}
