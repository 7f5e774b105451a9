// One way to open the mailbox directory for every component (sidecar, mail proxy, CLI):
// `--directory <spec>` where spec is a Get-Mailbox CSV export (a path ending in .csv) or an
// ldap:// / ldaps:// URL (optionally with the base DN as its path, RFC 4516 style), plus flags.
// LDAP directories always get the cache (cached-directory.ts) in front.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { type Registry, register as defaultRegistry } from "prom-client";
import { z } from "zod";
import { CachedDirectory } from "./cached-directory.js";
import { loadCsvDirectory } from "../../model/directory/csv-directory.js";
import { LdapDirectory } from "./ldap-directory.js";
import type { MailboxDirectory } from "../../model/directory/types.js";

const ms = (max: number) => z.number().int().nonnegative().max(max);

export const DirectoryOptionsSchema = z
  .object({
    /** Search base, e.g. DC=contoso,DC=com (or the global catalog root). */
    baseDn: z.string().trim().min(1).optional(),
    bindDn: z.string().trim().min(1).optional(),
    /** File holding the bind password (a mounted Kubernetes Secret). */
    passwordFile: z.string().min(1).optional(),
    /** PEM CA bundle that signed the directory's certificate. */
    caFile: z.string().min(1).optional(),
    tlsServerName: z.string().min(1).optional(),
    startTls: z.boolean().default(false),
    timeoutMs: ms(120_000).min(1).default(5_000),
    poolSize: z.number().int().min(1).max(64).default(4),
    /** NetBIOS domain -> domain DN, for DOMAIN\user (default: the first DC label). */
    domains: z.record(z.string().min(1), z.string().min(1)).optional(),
    cacheTtlMs: ms(86_400_000).default(300_000),
    negativeTtlMs: ms(86_400_000).default(60_000),
    cacheSize: z.number().int().min(1).max(10_000_000).default(100_000),
    maxStaleMs: ms(7 * 86_400_000).default(86_400_000),
    failPolicy: z.enum(["unavailable", "not-found"]).default("unavailable"),
    errorBackoffMs: ms(60_000).default(1_000),
    /** Most LDAP look-ups in flight at once (a hung server must not collect one per request). */
    maxInFlight: z.number().int().min(1).max(100_000).default(64),
    /** Runtime hooks (not from flags). */
    knownDatabase: z.custom<(name: string) => boolean>((v) => typeof v === "function").optional(),
    registry: z.custom<Registry>((v) => typeof v === "object" && v !== null).optional(),
    logger: z.custom<Logger>((v) => typeof v === "object" && v !== null).optional(),
  })
  .strict();

export type DirectoryOptions = z.input<typeof DirectoryOptionsSchema>;

export class DirectoryConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DirectoryConfigError";
  }
}

/** Is `spec` an LDAP directory (ldap:// or ldaps:// URL) rather than a CSV file? */
export function isLdapDirectorySpec(spec: string): boolean {
  return /^ldaps?:\/\//i.test(spec.trim());
}

/** Open the directory named by `spec`. Throws DirectoryConfigError (what and which flag) on bad config. */
export async function openDirectory(spec: string, options: DirectoryOptions = {}): Promise<MailboxDirectory> {
  const parsed = DirectoryOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join(".") || "(options)"}: ${i.message}`).join("; ");
    throw new DirectoryConfigError(`directory options: ${msg}`);
  }
  const o = parsed.data;
  const s = spec.trim();
  if (isLdapDirectorySpec(s)) {
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      throw new DirectoryConfigError(`--directory: "${s}" is not a valid LDAP URL`);
    }
    if (!url.hostname) throw new DirectoryConfigError(`--directory: "${s}" has no host`);
    const secure = url.protocol.toLowerCase() === "ldaps:";
    if (secure && o.startTls) throw new DirectoryConfigError("--ldap-starttls is for ldap:// URLs; ldaps:// is TLS already");
    const pathDn = decodeURIComponent(url.pathname.replace(/^\//, "")).split("?")[0];
    const baseDn = o.baseDn ?? (pathDn || undefined);
    if (!baseDn) throw new DirectoryConfigError("--ldap-base-dn is required for an LDAP directory (or give it as the URL path)");
    if (o.bindDn && !o.passwordFile) throw new DirectoryConfigError("--ldap-bind-dn needs --ldap-password-file");
    if (o.passwordFile && !o.bindDn) throw new DirectoryConfigError("--ldap-password-file needs --ldap-bind-dn");
    const password = o.passwordFile ? await readText(o.passwordFile, "--ldap-password-file") : undefined;
    const ca = o.caFile ? await readText(o.caFile, "--ldap-ca-file") : undefined;
    if (ca !== undefined && !ca.includes("-----BEGIN CERTIFICATE-----")) {
      throw new DirectoryConfigError(`--ldap-ca-file: ${o.caFile} holds no PEM certificate`);
    }
    const ldap = new LdapDirectory({
      url: `${url.protocol}//${url.host}`,
      baseDn,
      bindDn: o.bindDn,
      password: password?.replace(/\r?\n$/, ""),
      ca,
      tlsServerName: o.tlsServerName,
      startTls: o.startTls,
      timeoutMs: o.timeoutMs,
      poolSize: o.poolSize,
      domains: o.domains,
      knownDatabase: o.knownDatabase,
      logger: o.logger,
      registry: o.registry ?? defaultRegistry,
    });
    return new CachedDirectory(ldap, {
      ttlMs: o.cacheTtlMs,
      negativeTtlMs: o.negativeTtlMs,
      maxEntries: o.cacheSize,
      maxStaleMs: o.maxStaleMs,
      failPolicy: o.failPolicy,
      errorBackoffMs: o.errorBackoffMs,
      maxInFlight: o.maxInFlight,
      name: `${url.protocol}//${url.host}`,
      registry: o.registry,
      logger: o.logger,
    });
  }
  if (/^file:\/\//i.test(s)) return openDirectory(fileURLToPath(s), options);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    throw new DirectoryConfigError(`--directory: unsupported scheme in "${s}" (use a .csv file or an ldap:// or ldaps:// URL)`);
  }
  const file = s.replace(/^file:/i, "");
  if (!/\.csv$/i.test(file)) {
    throw new DirectoryConfigError(`--directory: "${s}" is neither a .csv file nor an ldap:// or ldaps:// URL`);
  }
  return loadCsvDirectory(file);
}

async function readText(file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    throw new DirectoryConfigError(`${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** Flags as commander gives them (camel-cased); defined in cli/options/directory.ts. */
export interface DirectoryFlags {
  directory?: string;
  ldapBaseDn?: string;
  ldapBindDn?: string;
  ldapPasswordFile?: string;
  ldapCaFile?: string;
  ldapTlsServerName?: string;
  ldapStarttls?: boolean;
  ldapTimeoutMs?: string;
  ldapPoolSize?: string;
  ldapDomain?: string[];
  directoryCacheTtl?: string;
  directoryNegativeTtl?: string;
  directoryCacheSize?: string;
  directoryMaxStale?: string;
  directoryFailPolicy?: string;
  directoryMaxInFlight?: string;
}

/** Flags -> openDirectory options (numbers checked by the zod schema in openDirectory). */
export function directoryOptionsFromFlags(f: DirectoryFlags): DirectoryOptions {
  const num = (v: string | undefined, flag: string, scale = 1): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new DirectoryConfigError(`${flag}: "${v}" is not a number`);
    return Math.round(n * scale);
  };
  let domains: Record<string, string> | undefined;
  for (const d of f.ldapDomain ?? []) {
    const at = d.indexOf("=");
    if (at <= 0) throw new DirectoryConfigError(`--ldap-domain: "${d}" is not NETBIOS=DN`);
    (domains ??= {})[d.slice(0, at).trim().toUpperCase()] = d.slice(at + 1).trim();
  }
  const policy = f.directoryFailPolicy;
  if (policy !== undefined && policy !== "unavailable" && policy !== "not-found") {
    throw new DirectoryConfigError(`--directory-fail-policy: "${policy}" is not unavailable or not-found`);
  }
  const o: DirectoryOptions = {
    baseDn: f.ldapBaseDn,
    bindDn: f.ldapBindDn,
    passwordFile: f.ldapPasswordFile,
    caFile: f.ldapCaFile,
    tlsServerName: f.ldapTlsServerName,
    startTls: f.ldapStarttls ?? false,
    timeoutMs: num(f.ldapTimeoutMs, "--ldap-timeout-ms"),
    poolSize: num(f.ldapPoolSize, "--ldap-pool-size"),
    domains,
    cacheTtlMs: num(f.directoryCacheTtl, "--directory-cache-ttl", 1000),
    negativeTtlMs: num(f.directoryNegativeTtl, "--directory-negative-ttl", 1000),
    cacheSize: num(f.directoryCacheSize, "--directory-cache-size"),
    maxStaleMs: num(f.directoryMaxStale, "--directory-max-stale", 1000),
    failPolicy: policy,
    maxInFlight: num(f.directoryMaxInFlight, "--directory-max-in-flight"),
  };
  // Drop undefined so schema defaults apply.
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as DirectoryOptions;
}
