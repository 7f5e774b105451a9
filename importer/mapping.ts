// From Exchange Management Shell objects to casgateway.io/v1alpha1 objects. The mapping follows
// Microsoft's cmdlet documentation; docs/import.md lists it field by field, with what is not imported.
import {
  API_VERSION,
  AUTH_METHODS,
  ApiObject,
  HOSTNAME_RE,
  SERVICES,
  httpUrl,
  type AuthMethod,
  type ConnectionSetting,
  type ExchangeVersion,
  type ServerRole,
  type Service,
} from "../crds/index.js";
import { listForm, stringForm, type PsObject, type PsValue } from "./clixml.js";
import { objectLabel, type Cmdlet, type ExportedObject, type ExportProblem, type ExportSet } from "./exports.js";
import { exchangeVersionOf, k8sNameOf, leafOfReference } from "./names.js";

/** Annotation that keeps an Exchange name the Kubernetes name could not carry. */
export const EXCHANGE_NAME_ANNOTATION = "casgateway.io/exchange-name";

/** A POP3/IMAP4 endpoint of Exchange 2003 servers, which no Exchange Management Shell cmdlet exports. */
export interface LegacyMailEndpoint {
  readonly port: number;
  readonly encryption: ConnectionSetting["encryption"];
}

export interface ImportOptions {
  /** metadata.namespace of every object. */
  readonly namespace?: string;
  /** Front-door host names to add, by site (Exchange or Kubernetes name, any case). */
  readonly hostnames?: ReadonlyArray<readonly [site: string, host: string]>;
  /** Site of servers whose export names none (Exchange 2003), by server name. */
  readonly serverSites?: ReadonlyArray<readonly [server: string, site: string]>;
  /** POP3/IMAP4 on every Exchange 2003 server, at its FQDN. */
  readonly exchange2003Mail?: Partial<Record<"Pop3" | "Imap4", LegacyMailEndpoint>>;
}

/** Exchange Online's public endpoints (what Microsoft documents for hybrid clients). */
export const EXCHANGE_ONLINE_OWA_URL = "https://outlook.office365.com/owa/";
export const EXCHANGE_ONLINE_ACTIVESYNC_URL = "https://outlook.office365.com/Microsoft-Server-ActiveSync";

export interface ImportedObject {
  readonly object: ApiObject;
  /** Output file (relative): site-<name>.yaml or databases.yaml. */
  readonly outFile: string;
  /** Where it came from, for the comment above it. */
  readonly source: string;
}

export interface ImportResult {
  readonly objects: readonly ImportedObject[];
  readonly errors: readonly ExportProblem[];
  readonly warnings: readonly ExportProblem[];
}

const HTTP_CMDLETS: ReadonlyArray<readonly [Cmdlet, Service]> = [
  ["Get-OwaVirtualDirectory", "Owa"],
  ["Get-EcpVirtualDirectory", "Ecp"],
  ["Get-ActiveSyncVirtualDirectory", "ActiveSync"],
  ["Get-WebServicesVirtualDirectory", "Ews"],
  ["Get-OabVirtualDirectory", "Oab"],
  ["Get-AutodiscoverVirtualDirectory", "Autodiscover"],
  ["Get-MapiVirtualDirectory", "Mapi"],
  ["Get-PowerShellVirtualDirectory", "PowerShell"],
];
const MAIL_CMDLETS: ReadonlyArray<readonly [Cmdlet, "Pop3" | "Imap4"]> = [
  ["Get-PopSettings", "Pop3"],
  ["Get-ImapSettings", "Imap4"],
];
/** Windows (connection-bound) methods: what CAS-to-CAS proxying and domain clients inside use. */
const WINDOWS_AUTH = new Set<AuthMethod>(["Ntlm", "Negotiate", "Kerberos", "WindowsIntegrated"]);
const AUTH_BY_LOWER = new Map<string, AuthMethod>(AUTH_METHODS.map((a) => [a.toLowerCase(), a]));
const VERSION_ORDER: readonly ExchangeVersion[] = ["2003", "2007", "2010", "2013", "2016", "2019"];
const atLeast = (v: ExchangeVersion, min: ExchangeVersion) => VERSION_ORDER.indexOf(v) >= VERSION_ORDER.indexOf(min);

interface SiteRec {
  readonly name: string;
  readonly exchangeName: string;
  readonly source: string;
}
interface ServerRec {
  readonly name: string;
  readonly exchangeName: string;
  readonly fqdn: string;
  readonly version: ExchangeVersion;
  readonly roles: ServerRole[];
  readonly site: SiteRec;
  readonly source: string;
  internalNLBBypassUrl?: string;
}
interface VdirRec {
  readonly server: ServerRec;
  readonly service: Service;
  readonly spec: Record<string, unknown>;
  readonly source: string;
  /** Preference among several of one service on one server: the Default Web Site's first. */
  readonly rank: number;
  /** The export file and object, for messages. */
  readonly file: string;
  readonly label: string;
}

/** Property access on one exported object, collecting errors with the file and the object's name. */
class Source {
  readonly label: string;
  constructor(
    readonly rec: ExportedObject,
    private readonly errors: ExportProblem[],
  ) {
    this.label = objectLabel(rec.object, rec.index);
  }
  get file(): string {
    return this.rec.file;
  }
  get object(): PsObject {
    return this.rec.object;
  }
  error(message: string): void {
    this.errors.push({ file: this.rec.file, object: this.label, message });
  }
  has(name: string): boolean {
    return this.rec.object.props.has(name);
  }
  raw(name: string): PsValue | undefined {
    return this.rec.object.props.get(name);
  }
  /** A required property: missing is an error (undefined returned); Nil gives null. */
  required(name: string): PsValue | undefined {
    if (!this.rec.object.props.has(name)) {
      this.error(`missing property ${name} (export the cmdlet's whole output, without Select-Object)`);
      return undefined;
    }
    return this.rec.object.props.get(name) ?? null;
  }
  /** A required string property; empty or Nil is an error too. */
  requiredString(name: string): string | undefined {
    const v = this.required(name);
    if (v === undefined) return undefined;
    const s = stringForm(v)?.trim();
    if (!s) {
      this.error(`property ${name} is empty`);
      return undefined;
    }
    return s;
  }
  optionalString(name: string): string | undefined {
    const s = stringForm(this.rec.object.props.get(name))?.trim();
    return s ? s : undefined;
  }
  /** The property as deserialized (undefined: not in the object; null: Nil). */
  rawProp(name: string): PsValue | undefined {
    return this.rec.object.props.get(name);
  }
  optionalBool(name: string): boolean | undefined {
    const v = this.rec.object.props.get(name);
    if (typeof v === "boolean") return v;
    const s = stringForm(v)?.trim().toLowerCase();
    return s === "true" ? true : s === "false" ? false : undefined;
  }
  /** A URL property: absent (when optional) or Nil → null; not an http(s) URL → error. */
  url(name: string, required: boolean): string | null | undefined {
    const v = required ? this.required(name) : (this.rec.object.props.get(name) ?? null);
    if (v === undefined) return undefined;
    const s = stringForm(v)?.trim();
    if (!s) return null;
    if (!httpUrl.safeParse(s).success) {
      this.error(`${name} "${s}" is not an absolute http:// or https:// URL`);
      return undefined;
    }
    return s;
  }
  strings(name: string): string[] {
    return listForm(this.rec.object.props.get(name))
      .map((v) => stringForm(v)?.trim() ?? "")
      .filter((s) => s.length > 0);
  }
  get where(): string {
    return `${this.rec.file}: ${this.label}`;
  }
}

/** Collects "left out" notes per topic so a big organisation gets one warning per kind of loss. */
class Losses {
  private readonly byKey = new Map<string, { message: (names: string[]) => string; names: string[] }>();
  add(key: string, name: string, message: (names: string[]) => string): void {
    const e = this.byKey.get(key) ?? { message, names: [] };
    if (!e.names.includes(name)) e.names.push(name);
    this.byKey.set(key, e);
  }
  flush(into: ExportProblem[], file: string): void {
    for (const [, e] of [...this.byKey].sort(([a], [b]) => (a < b ? -1 : 1))) into.push({ file, object: "", message: e.message(e.names) });
  }
}

const listOf = (names: string[], max = 6) =>
  names.length <= max ? names.join(", ") : `${names.slice(0, max).join(", ")} and ${names.length - max} more`;

/** Map every exported object; errors leave the result unusable (the caller writes nothing then). */
export function mapExports(set: ExportSet, opts: ImportOptions = {}): ImportResult {
  const errors: ExportProblem[] = [...set.errors];
  const warnings: ExportProblem[] = [...set.warnings];
  const losses = new Losses();
  const by = (c: Cmdlet) => set.objects.filter((o) => o.cmdlet === c).map((o) => new Source(o, errors));
  const fileOf = (c: Cmdlet) => set.files.get(c)?.join(", ") ?? `${c}.xml`;

  // --- sites -------------------------------------------------------------------------------------
  const sites = new Map<string, SiteRec>(); // by lower-case Exchange name
  const haveSiteExport = set.files.has("Get-ADSite");
  for (const s of by("Get-ADSite")) {
    const exchangeName = s.requiredString("Name");
    if (!exchangeName) continue;
    const name = k8sNameOf(exchangeName);
    if (!name) {
      s.error(`site name "${exchangeName}" has no Kubernetes form`);
      continue;
    }
    if (sites.has(exchangeName.toLowerCase())) {
      s.error(`site ${exchangeName} is exported twice`);
      continue;
    }
    sites.set(exchangeName.toLowerCase(), { name, exchangeName, source: `${s.file}: ${exchangeName}` });
  }
  const siteFor = (s: Source, ref: string): SiteRec | undefined => {
    const leaf = leafOfReference(ref);
    const known = sites.get(leaf.toLowerCase());
    if (known) return known;
    if (haveSiteExport) {
      s.error(`refers to site "${leaf}", which is not in ${fileOf("Get-ADSite")}`);
      return undefined;
    }
    const name = k8sNameOf(leaf);
    if (!name) {
      s.error(`site name "${leaf}" has no Kubernetes form`);
      return undefined;
    }
    const rec = { name, exchangeName: leaf, source: `${s.file}: the Site of ${s.label}` };
    sites.set(leaf.toLowerCase(), rec);
    return rec;
  };

  // --- servers -----------------------------------------------------------------------------------
  const servers = new Map<string, ServerRec>(); // by lower-case Exchange name
  const skippedServers = new Map<string, string>(); // lower-case name → why
  const serverSiteOpt = new Map((opts.serverSites ?? []).map(([srv, site]) => [srv.toLowerCase(), site]));
  const usedServerSiteOpt = new Set<string>();
  const k8sServerNames = new Map<string, string>();
  const failedServers = new Set<string>(); // exported, but with an error already reported
  for (const s of by("Get-ExchangeServer")) {
    const before = errors.length;
    try {
      mapServer(s);
    } finally {
      const n = s.optionalString("Name");
      if (errors.length > before && n) failedServers.add(n.toLowerCase());
    }
  }
  function mapServer(s: Source): void {
    const exchangeName = s.requiredString("Name");
    const fqdn = s.requiredString("Fqdn");
    const display = s.requiredString("AdminDisplayVersion");
    const roleValue = s.required("ServerRole");
    const siteValue = s.required("Site");
    if (!exchangeName || !fqdn || !display || roleValue === undefined || siteValue === undefined) return;
    const key = exchangeName.toLowerCase();
    if (servers.has(key) || skippedServers.has(key)) {
      s.error(`server ${exchangeName} is exported twice`);
      return;
    }
    const v = exchangeVersionOf(display);
    if ("unsupported" in v) {
      skippedServers.set(key, `runs Exchange ${v.unsupported}, which cas-gateway does not route to`);
      warnings.push({ file: s.file, object: s.label, message: `not imported: AdminDisplayVersion ${display} is Exchange ${v.unsupported}; cas-gateway knows 2003, 2007, 2010, 2013, 2016 and 2019` });
      return;
    }
    const version = v.version;
    const exchangeRoles = (listForm(roleValue).length > 1 ? listForm(roleValue).map((x) => stringForm(x) ?? "") : (stringForm(roleValue) ?? "").split(","))
      .map((r) => r.trim())
      .filter(Boolean);
    const roles = new Set<ServerRole>();
    for (const r of exchangeRoles) {
      if (/^clientaccess$/i.test(r)) roles.add("ClientAccess");
      if (/^mailbox$/i.test(r)) roles.add("Mailbox");
    }
    // Exchange 2016 and 2019 have one role, Mailbox, which includes the Client Access services.
    if (atLeast(version, "2016") && roles.has("Mailbox")) roles.add("ClientAccess");
    // Exchange 2003 servers have no Exchange 2007 roles (ServerRole None): a 2003 back end holds mailboxes.
    if (version === "2003" && roles.size === 0) roles.add("Mailbox");
    if (roles.size === 0) {
      skippedServers.set(key, `has neither the ClientAccess nor the Mailbox role (${exchangeRoles.join(", ") || "None"})`);
      warnings.push({ file: s.file, object: s.label, message: `not imported: ServerRole ${exchangeRoles.join(", ") || "None"} has neither ClientAccess nor Mailbox` });
      return;
    }
    let siteRef = stringForm(siteValue)?.trim() ?? "";
    const optSite = serverSiteOpt.get(key);
    if (optSite !== undefined) {
      usedServerSiteOpt.add(key);
      if (siteRef && leafOfReference(siteRef).toLowerCase() !== optSite.toLowerCase()) {
        warnings.push({ file: s.file, object: s.label, message: `--server-site ${exchangeName}=${optSite} ignored: the export says site ${leafOfReference(siteRef)}` });
      } else siteRef = optSite;
    }
    if (!siteRef) {
      s.error(`has no Site (Exchange ${version} servers may not say); name it with --server-site ${exchangeName}=SITE`);
      return;
    }
    const site = siteFor(s, siteRef);
    if (!site) return;
    const name = k8sNameOf(exchangeName);
    if (!name) {
      s.error(`server name "${exchangeName}" has no Kubernetes form`);
      return;
    }
    const clash = k8sServerNames.get(name);
    if (clash) {
      s.error(`servers ${clash} and ${exchangeName} both become ${name}`);
      return;
    }
    k8sServerNames.set(name, exchangeName);
    if (!HOSTNAME_RE.test(fqdn)) {
      s.error(`Fqdn "${fqdn}" is not a DNS host name`);
      return;
    }
    servers.set(key, {
      name,
      exchangeName,
      fqdn: fqdn.toLowerCase(),
      version,
      roles: (["ClientAccess", "Mailbox"] as const).filter((r) => roles.has(r)),
      site,
      source: `${s.file}: ${exchangeName}`,
    });
  }
  for (const [srv, site] of opts.serverSites ?? []) {
    if (!usedServerSiteOpt.has(srv.toLowerCase())) errors.push({ file: fileOf("Get-ExchangeServer"), object: "", message: `--server-site ${srv}=${site}: no server ${srv} in the export` });
  }

  /** The server an object refers to; error when it is not exported, undefined (quietly) when it was skipped. */
  const serverOf = (s: Source, ref: string | undefined, what = "server"): ServerRec | undefined => {
    if (!ref) return undefined;
    const leaf = leafOfReference(ref);
    const rec = servers.get(leaf.toLowerCase());
    if (rec) return rec;
    if (failedServers.has(leaf.toLowerCase())) return undefined;
    const skipped = skippedServers.get(leaf.toLowerCase());
    if (skipped) {
      warnings.push({ file: s.file, object: s.label, message: `not imported: its ${what} ${leaf} ${skipped}` });
      return undefined;
    }
    if (set.files.has("Get-ExchangeServer")) s.error(`refers to ${what} "${leaf}", which is not in ${fileOf("Get-ExchangeServer")}`);
    else s.error(`refers to ${what} "${leaf}", but there is no Get-ExchangeServer export to say what it is`);
    return undefined;
  };
  const serverRefOf = (s: Source): string | undefined => {
    const direct = s.optionalString("Server") ?? s.optionalString("ServerName");
    if (direct) return direct;
    const id = s.optionalString("Identity");
    if (id && id.includes("\\")) return id.slice(0, id.indexOf("\\"));
    s.error("missing property Server (export the cmdlet's whole output, without Select-Object)");
    return undefined;
  };

  // --- authentication methods --------------------------------------------------------------------
  const authOf = (s: Source, values: readonly string[], vdirName: string): AuthMethod[] => {
    const out = new Set<AuthMethod>();
    for (const v of values) {
      const m = AUTH_BY_LOWER.get(v.toLowerCase());
      if (m) out.add(m);
      else losses.add(`auth:${v}`, vdirName, (names) => `authentication method ${v} is not one cas-gateway routes on; left out on ${listOf(names)}`);
    }
    return AUTH_METHODS.filter((m) => out.has(m));
  };
  const authProp = (s: Source, name: string, vdirName: string): AuthMethod[] | undefined => {
    if (s.required(name) === undefined) return undefined;
    return authOf(s, s.strings(name), vdirName);
  };

  // --- virtual directories -----------------------------------------------------------------------
  const vdirs = new Map<string, VdirRec[]>(); // `${server.name}/${service}`
  const addVdir = (r: VdirRec) => {
    const k = `${r.server.name}/${r.service}`;
    vdirs.set(k, [...(vdirs.get(k) ?? []), r]);
  };
  const owaRedirect = new Map<string, "Manual" | "Silent">(); // server name → OWA CrossSiteRedirectType
  for (const [cmdlet, defaultService] of HTTP_CMDLETS) {
    for (const s of by(cmdlet)) {
      const server = serverOf(s, serverRefOf(s));
      if (!server) continue;
      const dirName = s.optionalString("Name") ?? "";
      const base = dirName.replace(/\s*\([^)]*\)\s*$/, "").trim().toLowerCase();
      let service: Service = defaultService;
      if (cmdlet === "Get-OwaVirtualDirectory") {
        const legacy = /^exchange2003or2000$/i.test(s.optionalString("OwaVersion") ?? "") || (server.version === "2003" && ["exchange", "public", "exchweb"].includes(base));
        if (legacy) {
          if (server.version !== "2003") {
            losses.add(`legacy-on-${server.version}`, `${server.name} ${dirName}`, (n) => `Exchange 2003 directories on Exchange ${server.version} servers (${listOf(n)}) are not imported: cas-gateway sends Exchange 2003 mailboxes to the 2003 server's own directories`);
            continue;
          }
          if (base === "exchweb") continue; // OWA 2003's images and scripts: part of its Owa service
          if (base === "exchange") service = "Owa";
          else if (base === "public") service = "Public";
          else {
            losses.add("legacy-other", `${server.name} ${dirName}`, (n) => `Exchange 2003 directories other than Exchange, Public and Exchweb are not imported: ${listOf(n)}`);
            continue;
          }
        }
      }
      const name = `${server.name}-${service.toLowerCase()}`;
      const internalUrl = s.url("InternalUrl", true);
      const externalUrl = s.url("ExternalUrl", true);
      const internalAuth = authProp(s, "InternalAuthenticationMethods", name);
      const externalAuth = authProp(s, "ExternalAuthenticationMethods", name);
      if (internalUrl === undefined || externalUrl === undefined || !internalAuth || !externalAuth) continue;
      if (internalUrl === null) {
        warnings.push({ file: s.file, object: s.label, message: `not imported: no InternalUrl, so the gateway has no address for ${service} on ${server.exchangeName}` });
        continue;
      }
      const spec: Record<string, unknown> = {
        server: server.name,
        service,
        internalUrl,
        externalUrl,
        internalAuthenticationMethods: internalAuth,
        // Methods of an ExternalUrl that does not exist are never offered to anyone.
        externalAuthenticationMethods: externalUrl ? externalAuth : [],
      };
      if (service === "Owa") {
        const cross = s.optionalString("CrossSiteRedirectType");
        // CrossSiteRedirectType came with Exchange 2010; older servers' objects show the default.
        if (cross && atLeast(server.version, "2010")) {
          if (/^(manual|silent)$/i.test(cross)) {
            const t = cross.toLowerCase() === "silent" ? "Silent" : "Manual";
            spec.crossSiteRedirectType = t;
            owaRedirect.set(server.name, t);
          } else s.error(`CrossSiteRedirectType "${cross}" is neither Manual nor Silent`);
        }
        const e2003 = s.url("Exchange2003Url", false);
        if (e2003) spec.exchange2003Url = e2003;
        // LegacyRedirectType (Exchange 2010 and later; $null → absent, which means Silent): how
        // this directory sends users to a 2007 CAS or a 2003 front end without FBA (R-OWA-10).
        const legacyRedirect = s.optionalString("LegacyRedirectType");
        if (legacyRedirect && atLeast(server.version, "2010")) {
          if (/^(manual|silent)$/i.test(legacyRedirect)) spec.legacyRedirectType = legacyRedirect.toLowerCase() === "silent" ? "Silent" : "Manual";
          else s.error(`LegacyRedirectType "${legacyRedirect}" is neither Silent nor Manual`);
        }
        // RedirectToOptimalOWAServer is $true unless an administrator turned it off; only $false
        // says something the API's default does not (R-OWA-11).
        if (server.version !== "2003") {
          const optimal = s.rawProp("RedirectToOptimalOWAServer");
          const b = s.optionalBool("RedirectToOptimalOWAServer");
          if (b === false) spec.redirectToOptimalOwaServer = false;
          else if (b === undefined && optimal !== undefined && optimal !== null) s.error(`RedirectToOptimalOWAServer "${stringForm(optimal) ?? ""}" is neither $true nor $false`);
        }
      }
      if (service === "Ecp") {
        const cross = s.optionalString("CrossSiteRedirectType");
        if (cross && /^(manual|silent)$/i.test(cross) && atLeast(server.version, "2010")) spec.crossSiteRedirectType = cross.toLowerCase() === "silent" ? "Silent" : "Manual";
      }
      if (service === "Ews") {
        const bypass = s.url("InternalNLBBypassUrl", false);
        if (bypass && server.version !== "2003") server.internalNLBBypassUrl = bypass;
      }
      addVdir({ server, service, spec, source: `${s.file}: ${s.label.replace(/ \(object \d+\)$/, "")}`, rank: /\(default web site\)\s*$/i.test(dirName) ? 0 : 1, file: s.file, label: s.label });
    }
  }
  // ECP has no cross-site redirect setting of its own: it follows the server's OWA directory.
  for (const [k, list] of vdirs) {
    if (!k.endsWith("/Ecp")) continue;
    for (const r of list) {
      const t = owaRedirect.get(r.server.name);
      if (r.spec.crossSiteRedirectType === undefined && t) r.spec.crossSiteRedirectType = t;
    }
  }

  // Outlook Anywhere: the RPC over HTTP directory, /rpc/rpcproxy.dll on the host names it publishes.
  for (const s of by("Get-OutlookAnywhere")) {
    const server = serverOf(s, serverRefOf(s));
    if (!server) continue;
    const name = `${server.name}-rpchttp`;
    if (s.required("ExternalHostname") === undefined) continue;
    const iis = authProp(s, "IISAuthenticationMethods", name);
    if (!iis) continue;
    const externalHost = s.optionalString("ExternalHostname")?.toLowerCase();
    const internalHost = s.optionalString("InternalHostname")?.toLowerCase() ?? server.fqdn;
    for (const [prop, h] of [["ExternalHostname", externalHost], ["InternalHostname", internalHost]] as const) {
      if (h !== undefined && !HOSTNAME_RE.test(h)) s.error(`${prop} "${h}" is not a DNS host name`);
    }
    const scheme = (requireSsl: boolean | undefined) => (requireSsl === false ? "http" : "https");
    const one = (prop: string) => {
      const v = s.optionalString(prop);
      return v ? authOf(s, [v], name) : [];
    };
    const internalAuth = AUTH_METHODS.filter((m) => (WINDOWS_AUTH.has(m) && iis.includes(m)) || one("InternalClientAuthenticationMethod").includes(m));
    const externalAuth = externalHost ? AUTH_METHODS.filter((m) => iis.includes(m) || one("ExternalClientAuthenticationMethod").includes(m)) : [];
    addVdir({
      server,
      service: "RpcHttp",
      spec: {
        server: server.name,
        service: "RpcHttp",
        internalUrl: `${scheme(s.optionalBool("InternalClientsRequireSsl"))}://${internalHost}/rpc/rpcproxy.dll`,
        externalUrl: externalHost ? `${scheme(s.optionalBool("ExternalClientsRequireSsl"))}://${externalHost}/rpc/rpcproxy.dll` : null,
        internalAuthenticationMethods: internalAuth,
        externalAuthenticationMethods: externalAuth,
      },
      source: `${s.file}: ${s.label.replace(/ \(object \d+\)$/, "")}`,
      rank: 0,
      file: s.file,
      label: s.label,
    });
  }

  // POP3 and IMAP4: InternalConnectionSettings/ExternalConnectionSettings (2010 and later), or the
  // 2007 bindings on the server's own name.
  for (const [cmdlet, service] of MAIL_CMDLETS) {
    for (const s of by(cmdlet)) {
      const server = serverOf(s, serverRefOf(s));
      if (!server) continue;
      let internal: ConnectionSetting[] | undefined;
      const loginType = s.optionalString("LoginType") ?? "";
      if (s.has("InternalConnectionSettings")) internal = connectionSettings(s, "InternalConnectionSettings");
      else if (s.has("SSLBindings") || s.has("UnencryptedOrTLSBindings")) {
        const ports = (prop: string) => [...new Set(s.strings(prop).map((b) => Number(/:(\d+)$/.exec(b)?.[1] ?? NaN)).filter((p) => p > 0 && p < 65536))];
        internal = [
          ...ports("SSLBindings").map((port) => ({ hostname: server.fqdn, port, encryption: "Ssl" as const })),
          ...ports("UnencryptedOrTLSBindings").map((port) => ({ hostname: server.fqdn, port, encryption: /^securelogin$/i.test(loginType) ? ("Tls" as const) : ("None" as const) })),
        ];
      } else {
        s.error("missing property InternalConnectionSettings (or, from Exchange 2007, SSLBindings/UnencryptedOrTLSBindings)");
        continue;
      }
      const external = s.has("ExternalConnectionSettings") ? connectionSettings(s, "ExternalConnectionSettings") : [];
      if (!internal || !external) continue;
      if (internal.length === 0) {
        warnings.push({ file: s.file, object: s.label, message: `not imported: no InternalConnectionSettings, so the gateway has no address for ${service} on ${server.exchangeName}` });
        continue;
      }
      // Every LoginType is a user name and password; Exchange 2016+ may also take NTLM/GSSAPI.
      const auth: AuthMethod[] = s.optionalBool("EnableGSSAPIAndNTLMAuth") ? ["Basic", "Ntlm", "Negotiate"] : ["Basic"];
      const spec: Record<string, unknown> = { server: server.name, service, internalConnectionSettings: internal, internalAuthenticationMethods: auth };
      if (external.length > 0) {
        spec.externalConnectionSettings = external;
        spec.externalAuthenticationMethods = auth;
      }
      addVdir({ server, service, spec, source: `${s.file}: ${server.exchangeName} ${service === "Pop3" ? "POP3" : "IMAP4"} settings`, rank: 0, file: s.file, label: s.label });
    }
  }

  function connectionSettings(s: Source, prop: string): ConnectionSetting[] | undefined {
    const out: ConnectionSetting[] = [];
    for (const v of s.strings(prop)) {
      const m = /^(.+?):(\d{1,5})(?::(ssl|tls|none)?)?$/i.exec(v);
      if (!m || !HOSTNAME_RE.test(m[1]) || Number(m[2]) < 1 || Number(m[2]) > 65535) {
        s.error(`${prop} entry "${v}" is not host:port:SSL|TLS`);
        return undefined;
      }
      const enc = (m[3] ?? "none").toLowerCase();
      out.push({ hostname: m[1].toLowerCase(), port: Number(m[2]), encryption: enc === "ssl" ? "Ssl" : enc === "tls" ? "Tls" : "None" });
    }
    return out;
  }

  // Exchange 2003: the shell lists its Exchange/Public/Exchweb directories, nothing else.
  const e2003 = [...servers.values()].filter((s) => s.version === "2003");
  for (const srv of e2003) {
    const owa = vdirs.get(`${srv.name}/Owa`)?.[0];
    if (owa && !vdirs.has(`${srv.name}/ActiveSync`)) {
      // ActiveSync is part of every Exchange 2003 server, in the IIS site that serves /exchange.
      const internalUrl = new URL("/Microsoft-Server-ActiveSync", owa.spec.internalUrl as string).href;
      const ext = owa.spec.externalUrl as string | null;
      addVdir({
        server: srv,
        service: "ActiveSync",
        spec: {
          server: srv.name,
          service: "ActiveSync",
          internalUrl,
          externalUrl: ext ? new URL("/Microsoft-Server-ActiveSync", ext).href : null,
          internalAuthenticationMethods: owa.spec.internalAuthenticationMethods,
          externalAuthenticationMethods: owa.spec.externalAuthenticationMethods,
        },
        source: `derived from ${owa.source} (Exchange 2003 serves ActiveSync beside /exchange)`,
        rank: 0,
        file: owa.file,
        label: owa.label,
      });
      losses.add("e2003-eas", srv.name, (n) => `ActiveSync of Exchange 2003 servers (${listOf(n)}) is not in any export; derived from each one's Exchange directory (same site, same authentication)`);
    }
    for (const service of ["Pop3", "Imap4"] as const) {
      if (vdirs.has(`${srv.name}/${service}`)) continue;
      const ep = opts.exchange2003Mail?.[service];
      if (!ep) {
        const flag = service === "Pop3" ? "--exchange2003-pop3 995:SSL" : "--exchange2003-imap4 993:SSL";
        losses.add(`e2003-${service}`, srv.name, (n) => `${service} of Exchange 2003 servers (${listOf(n)}) is not in any export (the shell does not manage Exchange 2003 protocols); not imported, give it with ${flag}`);
        continue;
      }
      addVdir({
        server: srv,
        service,
        spec: { server: srv.name, service, internalConnectionSettings: [{ hostname: srv.fqdn, port: ep.port, encryption: ep.encryption }], internalAuthenticationMethods: ["Basic"] },
        source: `--exchange2003-${service.toLowerCase()} ${ep.port}:${ep.encryption.toUpperCase()} on ${srv.exchangeName}`,
        rank: 0,
        file: "",
        label: srv.exchangeName,
      });
    }
  }

  // One directory per service and server: the Default Web Site's, as Exchange's own proxying uses.
  const chosen: VdirRec[] = [];
  for (const [, list] of vdirs) {
    const sorted = [...list].sort((a, b) => a.rank - b.rank);
    chosen.push(sorted[0]);
    for (const other of sorted.slice(1)) {
      warnings.push({ file: other.file, object: other.label, message: `ignored: ${sorted[0].source} is the ${other.service} directory of ${other.server.exchangeName}` });
    }
  }

  // --- databases -----------------------------------------------------------------------------------
  const dbObjects: ImportedObject[] = [];
  const dbNames = new Map<string, string>();
  for (const s of by("Get-MailboxDatabase")) {
    const name = s.requiredString("Name");
    const serverRef = s.requiredString("Server");
    if (!name || !serverRef) continue;
    if (s.optionalBool("Recovery")) {
      warnings.push({ file: s.file, object: s.label, message: "not imported: a recovery database holds no mailbox users log on to" });
      continue;
    }
    const active = serverOf(s, serverRef, "server");
    if (!active) continue;
    const copies: ServerRec[] = [];
    let bad = false;
    for (const ref of s.strings("Servers")) {
      const c = serverOf(s, ref, "database copy server");
      if (c) copies.push(c);
      else bad = true;
    }
    if (bad) continue;
    if (!copies.includes(active)) copies.push(active);
    for (const c of copies) {
      if (!c.roles.includes("Mailbox")) s.error(`server ${c.exchangeName} holds a copy but has no Mailbox role`);
    }
    // Exchange 2003 store names repeat in every storage group: mailboxes name them "<group>\<store>".
    const group = s.optionalString("StorageGroupName") ?? (s.optionalString("StorageGroup") ? leafOfReference(s.optionalString("StorageGroup")!.replace(/\\/g, "/")) : undefined);
    const databaseName = active.version === "2003" && group ? `${group}\\${name}` : name;
    const k8s = k8sNameOf(databaseName);
    if (!k8s) {
      s.error(`database name "${databaseName}" has no Kubernetes form`);
      continue;
    }
    const clash = dbNames.get(k8s);
    if (clash !== undefined) {
      s.error(clash.toLowerCase() === databaseName.toLowerCase() ? `database ${databaseName} is exported twice` : `databases ${clash} and ${databaseName} both become ${k8s}`);
      continue;
    }
    dbNames.set(k8s, databaseName);
    dbObjects.push({
      outFile: "databases.yaml",
      source: `${s.file}: ${databaseName}`,
      object: {
        apiVersion: API_VERSION,
        kind: "MailboxDatabase",
        metadata: meta(k8s, opts, databaseName === k8s ? undefined : databaseName, false),
        spec: {
          ...(databaseName !== k8s ? { databaseName } : {}),
          activeServer: active.name,
          servers: copies.map((c) => c.name).sort(),
        },
      } as ApiObject,
    });
  }

  // --- organisation relationships with Exchange Online (R-HYB-1) ----------------------------------
  // Get-OrganizationRelationship lists every federated organisation; the one with the Exchange Online
  // tenant has a *.onmicrosoft.com domain (the tenant's routing domain, *.mail.onmicrosoft.com).
  // Exchange keeps no ActiveSync URL for it: Exchange Online's own is used, and said so.
  const relObjects: ImportedObject[] = [];
  for (const s of by("Get-OrganizationRelationship")) {
    const name = s.requiredString("Name");
    if (!name) continue;
    const domainNames = [...new Set(s.strings("DomainNames").map((d) => d.toLowerCase().replace(/\.$/, "")))];
    if (!domainNames.some((d) => d.endsWith(".onmicrosoft.com"))) {
      warnings.push({ file: s.file, object: s.label, message: "not imported: not a relationship with Exchange Online (no *.onmicrosoft.com domain in DomainNames)" });
      continue;
    }
    const k8s = k8sNameOf(name);
    if (!k8s) {
      s.error(`relationship name "${name}" has no Kubernetes form`);
      continue;
    }
    let targetOwaUrl = s.url("TargetOwaURL", false);
    if (targetOwaUrl === undefined) continue;
    if (targetOwaUrl === null) {
      targetOwaUrl = EXCHANGE_ONLINE_OWA_URL;
      warnings.push({ file: s.file, object: s.label, message: `TargetOwaURL is not set: OWA users of mailboxes in Exchange Online are sent to ${EXCHANGE_ONLINE_OWA_URL} (set it with Set-OrganizationRelationship, or edit hybrid.yaml)` });
    }
    const epr = s.url("TargetAutodiscoverEpr", false);
    if (epr === undefined) continue;
    warnings.push({ file: s.file, object: s.label, message: `targetActiveSyncUrl ${EXCHANGE_ONLINE_ACTIVESYNC_URL} (Exchange Online's; Exchange keeps none for the relationship): edit hybrid.yaml if the tenant uses another` });
    relObjects.push({
      outFile: "hybrid.yaml",
      source: `${s.file}: ${name}`,
      object: {
        apiVersion: API_VERSION,
        kind: "OrganizationRelationship",
        metadata: meta(k8s, opts, name),
        spec: {
          domainNames,
          targetOwaUrl,
          targetActiveSyncUrl: EXCHANGE_ONLINE_ACTIVESYNC_URL,
          ...(epr ? { targetAutodiscoverEpr: epr } : {}),
          enabled: s.optionalBool("Enabled") ?? true,
        },
      } as ApiObject,
    });
  }

  // --- sites: host names and internet facing -------------------------------------------------------
  const serverList = [...servers.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const siteList = [...new Map([...sites.values()].map((s) => [s.name, s])).values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const siteByAnyName = new Map<string, SiteRec>();
  for (const s of siteList) {
    siteByAnyName.set(s.name, s);
    siteByAnyName.set(s.exchangeName.toLowerCase(), s);
  }
  const explicit = new Map<string, string[]>(); // site name → hosts
  const explicitOwner = new Map<string, string>();
  for (const [siteArg, hostArg] of opts.hostnames ?? []) {
    const site = siteByAnyName.get(siteArg.toLowerCase());
    const host = hostArg.trim().toLowerCase().replace(/\.$/, "");
    if (!site) {
      errors.push({ file: "--hostname", object: `${siteArg}=${hostArg}`, message: `no site ${siteArg} among the imported sites (${siteList.map((s) => s.name).join(", ") || "none"})` });
      continue;
    }
    if (!HOSTNAME_RE.test(host)) {
      errors.push({ file: "--hostname", object: `${siteArg}=${hostArg}`, message: `"${hostArg}" is not a DNS host name` });
      continue;
    }
    const owner = explicitOwner.get(host);
    if (owner && owner !== site.name) {
      errors.push({ file: "--hostname", object: `${siteArg}=${hostArg}`, message: `${host} is already given to site ${owner}; a host name belongs to one site` });
      continue;
    }
    explicitOwner.set(host, site.name);
    const l = explicit.get(site.name) ?? [];
    if (!l.includes(host)) l.push(host);
    explicit.set(site.name, l);
  }
  const serversOfSite = (site: SiteRec) => serverList.filter((s) => s.site.name === site.name);
  const chosenOf = (srv: ServerRec) => chosen.filter((v) => v.server === srv);
  const derived = new Map<string, string[]>();
  const hostSites = new Map<string, string[]>();
  const facing = new Map<string, boolean>();
  for (const site of siteList) {
    const modern = new Set<string>();
    const legacy = new Map<string, ServerRec>(); // host → server
    let anyExternal = false;
    for (const srv of serversOfSite(site)) {
      for (const v of chosenOf(srv)) {
        const ext = v.spec.externalUrl;
        const extSettings = v.spec.externalConnectionSettings as ConnectionSetting[] | undefined;
        if (typeof ext === "string" || (extSettings?.length ?? 0) > 0) anyExternal = true;
        if (typeof ext !== "string") continue;
        const host = new URL(ext).hostname.toLowerCase();
        if (atLeast(srv.version, "2010")) modern.add(host);
        else if (!legacy.has(host)) legacy.set(host, srv);
      }
    }
    facing.set(site.name, anyExternal);
    let hosts: string[];
    if (modern.size > 0) {
      hosts = [...modern].sort();
      for (const [h, srv] of [...legacy].sort()) {
        if (modern.has(h) || explicit.get(site.name)?.includes(h)) continue;
        warnings.push({ file: "", object: `site ${site.name}`, message: `${h} (an ExternalUrl of ${srv.name}, Exchange ${srv.version}) is taken as a legacy namespace that server answers itself, not a front-door host name; add it with --hostname ${site.name}=${h} if the gateway should receive it` });
      }
    } else hosts = [...legacy.keys()].sort();
    derived.set(site.name, hosts);
    for (const h of hosts) hostSites.set(h, [...(hostSites.get(h) ?? []), site.name]);
  }
  const siteObjects: ImportedObject[] = [];
  for (const site of siteList) {
    const own = serversOfSite(site);
    if (own.length === 0) {
      warnings.push({ file: fileOf("Get-ADSite"), object: site.exchangeName, message: "not imported: no Exchange server of the export is in this site" });
      if (explicit.has(site.name)) errors.push({ file: "--hostname", object: site.name, message: `site ${site.name} has no Exchange server, so it is not imported` });
      continue;
    }
    const hosts: string[] = [];
    for (const h of derived.get(site.name) ?? []) {
      const owners = hostSites.get(h) ?? [];
      const claimed = explicitOwner.get(h);
      if (claimed !== undefined && claimed !== site.name) continue;
      if (owners.length > 1 && claimed === undefined) {
        if (owners[0] === site.name) warnings.push({ file: "", object: `host ${h}`, message: `an ExternalUrl host of several sites (${owners.join(", ")}); given to none: choose with --hostname SITE=${h}` });
        continue;
      }
      hosts.push(h);
    }
    for (const h of explicit.get(site.name) ?? []) if (!hosts.includes(h)) hosts.push(h);
    const spec: Record<string, unknown> = { hostnames: hosts };
    if (!facing.get(site.name)) {
      spec.internetFacing = false;
      warnings.push({ file: "", object: `site ${site.name}`, message: "imported as not internet facing: none of its directories has an ExternalUrl (its users come in through another site's front door)" });
    }
    siteObjects.push({
      outFile: `site-${site.name}.yaml`,
      source: site.source,
      object: { apiVersion: API_VERSION, kind: "ADSite", metadata: meta(site.name, opts, site.exchangeName), spec } as ApiObject,
    });
    for (const srv of own) {
      siteObjects.push({
        outFile: `site-${site.name}.yaml`,
        source: srv.internalNLBBypassUrl ? `${srv.source}; internalNLBBypassUrl from ${chosenOf(srv).find((v) => v.service === "Ews")?.source ?? "its EWS directory"}` : srv.source,
        object: {
          apiVersion: API_VERSION,
          kind: "ClientAccessServer",
          metadata: meta(srv.name, opts, srv.exchangeName),
          spec: {
            site: site.name,
            fqdn: srv.fqdn,
            exchangeVersion: srv.version,
            roles: srv.roles,
            ...(srv.internalNLBBypassUrl ? { internalNLBBypassUrl: srv.internalNLBBypassUrl } : {}),
          },
        } as ApiObject,
      });
      const mine = chosenOf(srv).sort((a, b) => SERVICES.indexOf(a.service) - SERVICES.indexOf(b.service));
      for (const v of mine) {
        siteObjects.push({
          outFile: `site-${site.name}.yaml`,
          source: v.source,
          object: { apiVersion: API_VERSION, kind: "VirtualDirectory", metadata: meta(`${srv.name}-${v.service.toLowerCase()}`, opts), spec: v.spec } as ApiObject,
        });
      }
    }
  }

  losses.flush(warnings, "");
  const byName = (a: ImportedObject, b: ImportedObject) => (a.object.metadata.name < b.object.metadata.name ? -1 : 1);
  const objects = [...siteObjects, ...dbObjects.sort(byName), ...relObjects.sort(byName)];
  // Every object must be what `validate` accepts: an error here names the export it came from.
  for (const o of objects) {
    const r = ApiObject.safeParse(o.object);
    if (!r.success) {
      for (const i of r.error.issues) {
        errors.push({ file: o.source.split(": ")[0], object: `${o.object.kind}/${o.object.metadata.name}`, message: `${i.path.join(".")}: ${i.message}` });
      }
    }
  }
  return { objects, errors, warnings };
}

/** Object metadata; the Exchange name is kept in an annotation when lower-casing alone does not give the name. */
function meta(name: string, opts: ImportOptions, exchangeName?: string, annotate = true): ApiObject["metadata"] {
  const annotations = annotate && exchangeName !== undefined && exchangeName.toLowerCase() !== name ? { [EXCHANGE_NAME_ANNOTATION]: exchangeName } : undefined;
  return {
    name,
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    ...(annotations ? { annotations } : {}),
  };
}
