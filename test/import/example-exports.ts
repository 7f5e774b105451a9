// Generates examples/exports/ (what scripts/Export-CasTopology.ps1 would write for the Contoso
// organisation) from examples/contoso. Run `npx tsx test/import/example-exports.ts` after changing
// examples/contoso; test/import/roundtrip.test.ts checks the files are current and import back.
// The generator refuses what an Exchange organisation cannot export, rather than inventing it.
import { readdir, readFile, mkdir, writeFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { ApiObject, type ADSite, type ClientAccessServer, type MailboxDatabase, type VirtualDirectory } from "../../crds/index.js";
import { B, DT, Enum, G, I32, MVP, Nil, Obj, S, URI, writeClixml, type W } from "./clixml-writer.js";

const DOMAIN = "contoso.local";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CONTOSO_DIR = join(ROOT, "examples/contoso");
export const EXPORTS_DIR = join(ROOT, "examples/exports");
/** What the exports cannot say, given on the command line (docs/import.md shows the same). */
export const CONTOSO_IMPORT_ARGS = {
  hostname: ["usa=mail.contoso.com"],
  exchange2003Pop3: "995:SSL",
  exchange2003Imap4: "993:SSL",
} as const;

const NS = "Microsoft.Exchange.Data.Directory.SystemConfiguration";
const AD_BASE = ["Microsoft.Exchange.Data.Directory.ADConfigurationObject", "Microsoft.Exchange.Data.Directory.ADObject", "Microsoft.Exchange.Data.Directory.ADRawEntry", "Microsoft.Exchange.Data.ConfigurableObject", "System.Object"];
const VDIR_BASE = [`${NS}.ExchangeWebAppVirtualDirectory`, `${NS}.ExchangeVirtualDirectory`, ...AD_BASE];
const AUTH_TYPE = "Microsoft.Exchange.Data.Directory.AuthenticationMethod, Microsoft.Exchange.Data.Directory, Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35";
const ADOBJECTID_TYPE = "Microsoft.Exchange.Data.Directory.ADObjectId, Microsoft.Exchange.Data.Directory, Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35";
const STRING_TYPE = "System.String, mscorlib, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089";
const CONN_TYPE = "Microsoft.Exchange.Data.ProtocolConnectionSettings, Microsoft.Exchange.Data, Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35";

const BUILDS: Record<string, { display: string; major: number; minor: number; build: number; revision: number; exchangeVersion: string }> = {
  "2003": { display: "Version 6.5 (Build 7638.2: Service Pack 2)", major: 6, minor: 5, build: 7638, revision: 2, exchangeVersion: "0.0 (6.5.6500.0)" },
  "2007": { display: "Version 8.3 (Build 83.6)", major: 8, minor: 3, build: 83, revision: 6, exchangeVersion: "0.1 (8.0.535.0)" },
  "2010": { display: "Version 14.3 (Build 123.4)", major: 14, minor: 3, build: 123, revision: 4, exchangeVersion: "0.1 (14.0.100.0)" },
  "2013": { display: "Version 15.0 (Build 1497.2)", major: 15, minor: 0, build: 1497, revision: 2, exchangeVersion: "0.1 (15.0.0.0)" },
  "2016": { display: "Version 15.1 (Build 2507.6)", major: 15, minor: 1, build: 2507, revision: 6, exchangeVersion: "0.1 (15.0.0.0)" },
  "2019": { display: "Version 15.2 (Build 1118.7)", major: 15, minor: 2, build: 1118, revision: 7, exchangeVersion: "0.1 (15.0.0.0)" },
};
const ROLE_FLAGS: Record<string, number> = { None: 0, Mailbox: 2, ClientAccess: 4, HubTransport: 32 };
const VDIR_NAMES: Record<string, string> = {
  Owa: "owa",
  Ecp: "ecp",
  ActiveSync: "Microsoft-Server-ActiveSync",
  Ews: "EWS",
  Oab: "OAB",
  Autodiscover: "Autodiscover",
  Mapi: "mapi",
  PowerShell: "PowerShell",
  Public: "Public",
};
const CMDLET_OF: Record<string, string> = {
  Owa: "Get-OwaVirtualDirectory",
  Public: "Get-OwaVirtualDirectory",
  Ecp: "Get-EcpVirtualDirectory",
  ActiveSync: "Get-ActiveSyncVirtualDirectory",
  Ews: "Get-WebServicesVirtualDirectory",
  Oab: "Get-OabVirtualDirectory",
  Autodiscover: "Get-AutodiscoverVirtualDirectory",
  Mapi: "Get-MapiVirtualDirectory",
  PowerShell: "Get-PowerShellVirtualDirectory",
};
const TYPE_OF: Record<string, string> = {
  "Get-OwaVirtualDirectory": "ADOwaVirtualDirectory",
  "Get-EcpVirtualDirectory": "ADEcpVirtualDirectory",
  "Get-ActiveSyncVirtualDirectory": "ADMobileVirtualDirectory",
  "Get-WebServicesVirtualDirectory": "ADWebServicesVirtualDirectory",
  "Get-OabVirtualDirectory": "ADOabVirtualDirectory",
  "Get-AutodiscoverVirtualDirectory": "ADAutodiscoverVirtualDirectory",
  "Get-MapiVirtualDirectory": "ADMapiVirtualDirectory",
  "Get-PowerShellVirtualDirectory": "ADPowerShellVirtualDirectory",
};
const WINDOWS = new Set(["Ntlm", "Negotiate", "Kerberos", "WindowsIntegrated"]);
const AUTH_ORDER = ["Basic", "Digest", "Fba", "Ntlm", "Negotiate", "Kerberos", "WindowsIntegrated", "OAuth", "Certificate"];

/** A stable GUID from a name, so the generated files do not change from run to run. */
function guidOf(name: string): string {
  let h = 2166136261;
  const bytes: number[] = [];
  for (let i = 0; i < 16; i++) {
    for (const c of `${name}#${i}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
    bytes.push(h & 0xff);
  }
  const hex = bytes.map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function fail(what: string): never {
  throw new Error(`examples/contoso cannot come from Exchange exports: ${what}`);
}

export async function readContoso(dir = CONTOSO_DIR): Promise<ApiObject[]> {
  const out: ApiObject[] = [];
  for (const f of (await readdir(dir)).filter((n) => n.endsWith(".yaml")).sort()) {
    for (const d of parseAllDocuments(await readFile(join(dir, f), "utf8"))) {
      const js = d.toJS() as unknown;
      if (js) out.push(ApiObject.parse(js));
    }
  }
  return out;
}

/** The exports (file name → bytes) an Exchange organisation shaped like `objects` gives. */
export function exportsOf(objects: readonly ApiObject[]): Map<string, Buffer> {
  const sites = objects.filter((o): o is ADSite => o.kind === "ADSite");
  const servers = objects.filter((o): o is ClientAccessServer => o.kind === "ClientAccessServer").sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  const vdirs = objects.filter((o): o is VirtualDirectory => o.kind === "VirtualDirectory");
  const dbs = objects.filter((o): o is MailboxDatabase => o.kind === "MailboxDatabase");
  const siteName = (k8s: string) => (k8s === "usa" ? "USA" : k8s.charAt(0).toUpperCase() + k8s.slice(1));
  const siteRef = (k8s: string) => `${DOMAIN}/Configuration/Sites/${siteName(k8s)}`;
  const serverName = (k8s: string) => k8s.toUpperCase();
  const serverOf = new Map(servers.map((s) => [s.metadata.name, s]));
  const dn = (cn: string, rest: string) => `CN=${cn},${rest},CN=Configuration,DC=contoso,DC=local`;
  const ORG = "CN=Contoso,CN=Microsoft Exchange,CN=Services";
  const serverDn = (k8s: string) => dn(serverName(k8s), `CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,${ORG}`);
  const files = new Map<string, W[]>();
  const add = (file: string, w: W) => files.set(file, [...(files.get(file) ?? []), w]);
  const when = DT("2011-03-14T09:26:53+00:00");

  // Get-ADSite: every AD site, also one without Exchange servers.
  const siteNames = [...sites.map((s) => s.metadata.name), "default-first-site-name"];
  for (const k8s of siteNames) {
    const name = k8s === "default-first-site-name" ? "Default-First-Site-Name" : siteName(k8s);
    add(
      "Get-ADSite",
      Obj([`${NS}.ADSite`, ...AD_BASE], name, [
        ["HubSiteEnabled", B(false)],
        ["InboundMailEnabled", B(true)],
        ["PartnerId", I32(-1)],
        ["MinorPartnerId", I32(-1)],
        ["ResponsibleForSites", MVP(ADOBJECTID_TYPE, [])],
        ["AdminDisplayName", Nil],
        ["ExchangeVersion", S("0.0 (6.5.6500.0)")],
        ["Name", S(name)],
        ["DistinguishedName", S(`CN=${name},CN=Sites,CN=Configuration,DC=contoso,DC=local`)],
        ["Identity", S(`${DOMAIN}/Configuration/Sites/${name}`)],
        ["Guid", G(guidOf(`site ${name}`))],
        ["ObjectCategory", S(`${DOMAIN}/Configuration/Schema/Site`)],
        ["ObjectClass", MVP(STRING_TYPE, ["top", "site"])],
        ["WhenChanged", when],
        ["WhenCreated", when],
        ["OriginatingServer", S(`dc01.${DOMAIN}`)],
        ["IsValid", B(true)],
      ]),
    );
  }

  // Get-ExchangeServer.
  for (const s of servers) {
    const v = s.spec.exchangeVersion;
    const b = BUILDS[v];
    const name = serverName(s.metadata.name);
    let roles: string[] = [...s.spec.roles].sort((a, c) => ROLE_FLAGS[a] - ROLE_FLAGS[c]);
    if (v === "2003") {
      if (roles.join() !== "Mailbox") fail(`${s.metadata.name}: an Exchange 2003 server is a back end (Mailbox) only`);
      roles = ["None"];
    } else if (v === "2016" || v === "2019") {
      if (roles.join() !== "Mailbox,ClientAccess") fail(`${s.metadata.name}: Exchange ${v} has only the Mailbox role, which includes Client Access`);
      roles = ["Mailbox"];
    } else if ((v === "2007" || v === "2010") && roles.join() === "ClientAccess") {
      roles = ["ClientAccess", "HubTransport"]; // the usual pairing; the importer ignores the transport role
    }
    if (s.spec.address !== undefined || s.spec.maintenance || s.spec.tls.insecureSkipVerify) fail(`${s.metadata.name}: address, maintenance and tls are not Exchange settings`);
    const flags = roles.reduce((n, r) => n | ROLE_FLAGS[r], 0);
    add(
      "Get-ExchangeServer",
      Obj(["Microsoft.Exchange.Data.Directory.Management.ExchangeServer", ...AD_BASE.slice(1)], name, [
        ["Name", S(name)],
        ["DataPath", v === "2003" ? Nil : S(`C:\\Program Files\\Microsoft\\Exchange Server\\V${b.major}\\Mailbox`)],
        ["Domain", S(s.spec.fqdn.split(".").slice(1).join("."))],
        ["Edition", Enum("Microsoft.Exchange.Data.Directory.SystemConfiguration.ServerEditionType", "Enterprise", 2)],
        ["ExchangeLegacyDN", S(`/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=${name}`)],
        ["Fqdn", S(s.spec.fqdn)],
        ["IsHubTransportServer", B(roles.includes("HubTransport"))],
        ["IsClientAccessServer", B(roles.includes("ClientAccess"))],
        ["IsExchange2007OrLater", B(v !== "2003")],
        ["IsEdgeServer", B(false)],
        ["IsMailboxServer", B(roles.includes("Mailbox"))],
        ["IsProvisionedServer", B(false)],
        ["IsUnifiedMessagingServer", B(false)],
        ["OrganizationalUnit", S(`${s.spec.fqdn.split(".").slice(1).join(".")}/Computers/${name}`)],
        ["AdminDisplayVersion", Obj(["Microsoft.Exchange.Data.ServerVersion", "System.Object"], b.display, [
          ["Major", I32(b.major)],
          ["Minor", I32(b.minor)],
          ["Build", I32(b.build)],
          ["Revision", I32(b.revision)],
        ])],
        ["Site", S(siteRef(s.spec.site))],
        ["ServerRole", Enum("Microsoft.Exchange.Data.Directory.SystemConfiguration.ServerRole", roles.join(", "), flags)],
        ["ExchangeVersion", S(b.exchangeVersion)],
        ["DistinguishedName", S(serverDn(s.metadata.name))],
        ["Identity", S(name)],
        ["Guid", G(guidOf(`server ${name}`))],
        ["ObjectClass", MVP(STRING_TYPE, ["top", "server", "msExchExchangeServer"])],
        ["WhenChanged", when],
        ["WhenCreated", when],
        ["OriginatingServer", S(`dc01.${DOMAIN}`)],
        ["IsValid", B(true)],
      ]),
    );
  }

  // The HTTP virtual directories, RPC over HTTP and POP3/IMAP4.
  const owaRedirect = new Map<string, string | undefined>();
  for (const v of vdirs) if (v.spec.service === "Owa") owaRedirect.set(v.spec.server, v.spec.crossSiteRedirectType);
  const auth = (m: readonly string[]) => MVP(AUTH_TYPE, m);
  for (const srv of servers) {
    const mine = vdirs.filter((v) => v.spec.server === srv.metadata.name);
    const ver = srv.spec.exchangeVersion;
    const b = BUILDS[ver];
    const name = serverName(srv.metadata.name);
    const vpath = ver === "2003" ? "C:\\Program Files\\Exchsrvr" : `C:\\Program Files\\Microsoft\\Exchange Server\\V${b.major}`;
    for (const v of mine) {
      const sp = v.spec;
      const extAuth = sp.externalUrl ? sp.externalAuthenticationMethods : [];
      if (sp.externalAuthenticationMethods.length > 0 && !sp.externalUrl) fail(`${v.metadata.name}: external authentication methods without an ExternalUrl are never used`);
      const common = (dirName: string): Array<readonly [string, W]> => [
        ["Name", S(`${dirName} (Default Web Site)`)],
        ["Server", S(name)],
        ["InternalUrl", URI(sp.internalUrl)],
        ["ExternalUrl", URI(sp.externalUrl)],
        ["InternalAuthenticationMethods", auth(sp.internalAuthenticationMethods)],
        ["ExternalAuthenticationMethods", auth(extAuth)],
        ["MetabasePath", S(`IIS://${srv.spec.fqdn}/W3SVC/1/ROOT/${dirName}`)],
        ["Path", S(`${vpath}\\ClientAccess\\${dirName}`)],
        ["ExtendedProtectionTokenChecking", ver === "2003" || ver === "2007" ? Nil : Enum("Microsoft.Exchange.Data.Directory.ExtendedProtectionTokenCheckingMode", "None", 0)],
        ["AdminDisplayName", Nil],
        ["ExchangeVersion", S(b.exchangeVersion)],
        ["DistinguishedName", S(`CN=${dirName} (Default Web Site),CN=HTTP,CN=Protocols,${serverDn(srv.metadata.name)}`)],
        ["Identity", S(`${name}\\${dirName} (Default Web Site)`)],
        ["Guid", G(guidOf(`${v.metadata.name}`))],
        ["WhenChanged", when],
        ["WhenCreated", when],
        ["OriginatingServer", S(`dc01.${DOMAIN}`)],
        ["IsValid", B(true)],
      ];
      if (sp.service === "Pop3" || sp.service === "Imap4") {
        if (ver === "2003") continue; // no cmdlet exports it; the import gets it from --exchange2003-pop3/-imap4
        const cmdlet = sp.service === "Pop3" ? "Get-PopSettings" : "Get-ImapSettings";
        const type = sp.service === "Pop3" ? "Pop3AdConfiguration" : "Imap4AdConfiguration";
        if (sp.internalAuthenticationMethods.join() !== "Basic" || sp.externalAuthenticationMethods.length > 0) fail(`${v.metadata.name}: POP3/IMAP4 log on with a user name and password (Basic)`);
        const conn = (c: { hostname: string; port: number; encryption: string }) => `${c.hostname}:${c.port}${c.encryption === "None" ? "" : `:${c.encryption.toUpperCase()}`}`;
        const internal = sp.internalConnectionSettings ?? [];
        const props: Array<readonly [string, W]> = [
          ["Name", S("1")],
          ["Server", S(name)],
          ["LoginType", Enum(`${NS}.LoginOptions`, "SecureLogin", 2)],
        ];
        if (ver === "2007") {
          // Exchange 2007 has bindings only: the importer puts them on the server's FQDN.
          if (internal.some((c) => c.hostname !== srv.spec.fqdn || c.encryption !== "Ssl") || (sp.externalConnectionSettings ?? []).length > 0) {
            fail(`${v.metadata.name}: Exchange 2007 POP3/IMAP4 has bindings, not host names or external settings`);
          }
          props.push(["SSLBindings", MVP("Microsoft.Exchange.Data.IPBinding", internal.map((c) => `0.0.0.0:${c.port}`))]);
          props.push(["UnencryptedOrTLSBindings", MVP("Microsoft.Exchange.Data.IPBinding", [])]);
        } else {
          props.push(["SSLBindings", MVP("Microsoft.Exchange.Data.IPBinding", internal.filter((c) => c.encryption === "Ssl").flatMap((c) => [`[::]:${c.port}`, `0.0.0.0:${c.port}`]))]);
          props.push(["UnencryptedOrTLSBindings", MVP("Microsoft.Exchange.Data.IPBinding", [])]);
          props.push(["InternalConnectionSettings", MVP(CONN_TYPE, internal.map(conn))]);
          props.push(["ExternalConnectionSettings", MVP(CONN_TYPE, (sp.externalConnectionSettings ?? []).map(conn))]);
        }
        props.push(["X509CertificateName", S(srv.spec.fqdn)]);
        props.push(["ExchangeVersion", S(b.exchangeVersion)]);
        props.push(["Identity", S(`${name}\\1`)]);
        props.push(["Guid", G(guidOf(v.metadata.name))]);
        props.push(["IsValid", B(true)]);
        add(cmdlet, Obj([`${NS}.${type}`, `${NS}.PopImapAdConfiguration`, ...AD_BASE], "1", props));
        continue;
      }
      if (sp.service === "RpcHttp") {
        const iu = new URL(sp.internalUrl!);
        const eu = sp.externalUrl ? new URL(sp.externalUrl) : undefined;
        if (iu.pathname !== "/rpc/rpcproxy.dll" || (eu && eu.pathname !== "/rpc/rpcproxy.dll")) fail(`${v.metadata.name}: Outlook Anywhere is /rpc/rpcproxy.dll`);
        const modern = ver !== "2003" && ver !== "2007" && ver !== "2010";
        if (!modern && iu.hostname !== srv.spec.fqdn) fail(`${v.metadata.name}: before Exchange 2013 Outlook Anywhere has no InternalHostname`);
        const iis = AUTH_ORDER.filter((m) => sp.internalAuthenticationMethods.includes(m as never) || extAuth.includes(m as never));
        const internalClient = sp.internalAuthenticationMethods.find((m) => WINDOWS.has(m)) ?? "Ntlm";
        const expectInternal = AUTH_ORDER.filter((m) => (WINDOWS.has(m) && iis.includes(m)) || (modern && m === internalClient));
        if (expectInternal.join() !== sp.internalAuthenticationMethods.join()) fail(`${v.metadata.name}: Outlook Anywhere's internal methods are the Windows ones IIS accepts`);
        add(
          "Get-OutlookAnywhere",
          Obj([`${NS}.ADRpcHttpVirtualDirectory`, `${NS}.ExchangeVirtualDirectory`, ...AD_BASE], "Rpc (Default Web Site)", [
            ["Name", S("Rpc (Default Web Site)")],
            ["Server", S(name)],
            ["SSLOffloading", B(false)],
            ["ExternalHostname", eu ? S(eu.hostname) : Nil],
            ...(modern ? ([["InternalHostname", S(iu.hostname)]] as const) : []),
            ["ExternalClientAuthenticationMethod", Enum("Microsoft.Exchange.Data.Directory.AuthenticationMethod", eu ? (extAuth.includes("Ntlm") ? "Ntlm" : extAuth[0] ?? "Ntlm") : "Ntlm", 4)],
            ...(modern
              ? ([
                  ["InternalClientAuthenticationMethod", Enum("Microsoft.Exchange.Data.Directory.AuthenticationMethod", internalClient, 4)],
                  ["ExternalClientsRequireSsl", B(eu ? eu.protocol === "https:" : true)],
                  ["InternalClientsRequireSsl", B(iu.protocol === "https:")],
                ] as const)
              : []),
            ["IISAuthenticationMethods", auth(iis)],
            ["MetabasePath", S(`IIS://${srv.spec.fqdn}/W3SVC/1/ROOT/Rpc`)],
            ["Path", S("C:\\Windows\\System32\\RpcProxy")],
            ["ExchangeVersion", S(b.exchangeVersion)],
            ["Identity", S(`${name}\\Rpc (Default Web Site)`)],
            ["Guid", G(guidOf(v.metadata.name))],
            ["IsValid", B(true)],
          ]),
        );
        continue;
      }
      const cmdlet = CMDLET_OF[sp.service];
      const legacy = ver === "2003";
      if (legacy && sp.service === "ActiveSync") {
        // Not exported: the importer derives it from the server's Exchange directory.
        const owa = mine.find((x) => x.spec.service === "Owa");
        const derivedUrl = owa ? new URL("/Microsoft-Server-ActiveSync", owa.spec.internalUrl).href : undefined;
        if (!owa || derivedUrl !== sp.internalUrl || owa.spec.internalAuthenticationMethods.join() !== sp.internalAuthenticationMethods.join() || (sp.externalUrl ?? null) !== (owa.spec.externalUrl ? new URL("/Microsoft-Server-ActiveSync", owa.spec.externalUrl).href : null)) {
          fail(`${v.metadata.name}: Exchange 2003 ActiveSync lives beside /exchange, with its authentication`);
        }
        continue;
      }
      if (legacy && sp.service !== "Owa" && sp.service !== "Public") fail(`${v.metadata.name}: the shell lists only Exchange, Public and Exchweb of an Exchange 2003 server`);
      const dirName = legacy ? (sp.service === "Owa" ? "Exchange" : "Public") : VDIR_NAMES[sp.service];
      const props = common(dirName);
      const type = TYPE_OF[cmdlet];
      if (cmdlet === "Get-OwaVirtualDirectory") {
        const owaVersion = legacy ? ["Exchange2003or2000", 0] : ver === "2007" ? ["Exchange2007", 1] : ver === "2010" ? ["Exchange2010", 2] : ["Exchange2013", 3];
        props.push(["OwaVersion", Enum(`${NS}.OwaVersions`, owaVersion[0] as string, owaVersion[1] as number)]);
        if (sp.service === "Owa") {
          const cross = sp.crossSiteRedirectType;
          if (cross && (ver === "2003" || ver === "2007")) fail(`${v.metadata.name}: CrossSiteRedirectType came with Exchange 2010`);
          props.push(["CrossSiteRedirectType", cross ? Enum(`${NS}.CrossSiteRedirectTypeOptions`, cross, cross === "Silent" ? 0 : 1) : Nil]);
          props.push(["Exchange2003Url", URI(sp.exchange2003Url)]);
          const legacyType = sp.legacyRedirectType;
          if (legacyType && (ver === "2003" || ver === "2007")) fail(`${v.metadata.name}: LegacyRedirectType came with Exchange 2010`);
          props.push(["LegacyRedirectType", legacyType ? Enum(`${NS}.LegacyRedirectTypeOptions`, legacyType, legacyType === "Silent" ? 0 : 1) : Nil]);
          if (sp.redirectToOptimalOwaServer === false && ver === "2003") fail(`${v.metadata.name}: an Exchange 2003 directory has no RedirectToOptimalOWAServer`);
          props.push(["RedirectToOptimalOWAServer", B(sp.redirectToOptimalOwaServer ?? true)]);
          props.push(["FormsAuthentication", B(sp.internalAuthenticationMethods.includes("Fba"))]);
          props.push(["WindowsAuthentication", B(sp.internalAuthenticationMethods.some((m) => WINDOWS.has(m)))]);
        }
      }
      if (sp.service === "Ecp" && (sp.crossSiteRedirectType ?? undefined) !== owaRedirect.get(srv.metadata.name)) {
        fail(`${v.metadata.name}: ECP has no CrossSiteRedirectType of its own, it follows the server's OWA directory`);
      }
      if (sp.service === "Ews") props.push(["InternalNLBBypassUrl", URI(srv.spec.internalNLBBypassUrl)]);
      add(cmdlet, Obj([`${NS}.${type}`, ...VDIR_BASE], `${dirName} (Default Web Site)`, props));
      if (legacy && sp.service === "Owa") {
        // OWA 2003's images and scripts: listed too, and not a directory of its own for cas-gateway.
        const ex = common("Exchweb").map(([k, w]) => (k === "InternalUrl" ? ([k, URI(new URL("/exchweb", sp.internalUrl).href)] as const) : k === "ExternalUrl" ? ([k, Nil] as const) : ([k, w] as const)));
        ex.push(["OwaVersion", Enum(`${NS}.OwaVersions`, "Exchange2003or2000", 0)]);
        add(cmdlet, Obj([`${NS}.${type}`, ...VDIR_BASE], "Exchweb (Default Web Site)", ex));
      }
    }
    if (srv.spec.internalNLBBypassUrl && !mine.some((v) => v.spec.service === "Ews")) fail(`${srv.metadata.name}: InternalNLBBypassUrl is a property of the EWS directory`);
  }

  // Get-MailboxDatabase -IncludePreExchange2010.
  for (const d of [...dbs].sort((a, c) => (a.metadata.name < c.metadata.name ? -1 : 1))) {
    const exName = d.spec.databaseName ?? d.metadata.name;
    const active = serverOf.get(d.spec.activeServer) ?? fail(`${d.metadata.name}: unknown server ${d.spec.activeServer}`);
    const ver = active.spec.exchangeVersion;
    const old = ver === "2003" || ver === "2007";
    let name = exName;
    let group: string | undefined;
    if (ver === "2003") {
      const i = exName.indexOf("\\");
      if (i < 0) fail(`${d.metadata.name}: an Exchange 2003 store is named <storage group>\\<store>`);
      group = exName.slice(0, i);
      name = exName.slice(i + 1);
    } else if (ver === "2007") group = "First Storage Group";
    if (old && d.spec.servers.length !== 1) fail(`${d.metadata.name}: Exchange ${ver} databases have one server`);
    const srvName = serverName(active.metadata.name);
    add(
      "Get-MailboxDatabase",
      Obj([`${NS}.MailboxDatabase`, `${NS}.Database`, ...AD_BASE], old ? `${srvName}\\${group}\\${name}` : name, [
        ["Name", S(name)],
        ["Server", S(srvName)],
        ...(old ? [] : ([["Servers", MVP(ADOBJECTID_TYPE, d.spec.servers.map(serverName))], ["MasterServerOrAvailabilityGroup", S(d.spec.servers.length > 1 ? "DAG-ASIA" : srvName)]] as const)),
        ...(group ? ([["StorageGroup", S(`${srvName}\\${group}`)], ["StorageGroupName", S(group)]] as const) : []),
        ["Recovery", B(false)],
        ["EdbFilePath", S(ver === "2003" ? `C:\\Program Files\\Exchsrvr\\mdbdata\\priv1.edb` : `C:\\Program Files\\Microsoft\\Exchange Server\\V${BUILDS[ver].major}\\Mailbox\\${name}\\${name}.edb`)],
        ["ExchangeVersion", S(BUILDS[ver].exchangeVersion)],
        ["Identity", S(old ? `${srvName}\\${group}\\${name}` : name)],
        ["Guid", G(guidOf(`db ${exName}`))],
        ["WhenChanged", when],
        ["WhenCreated", when],
        ["OriginatingServer", S(`dc01.${DOMAIN}`)],
        ["IsValid", B(true)],
      ]),
    );
  }
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : 1)).map(([f, list]) => [`${f}.xml`, writeClixml(list)]));
}

async function main(): Promise<void> {
  const files = exportsOf(await readContoso());
  await mkdir(EXPORTS_DIR, { recursive: true });
  for (const old of (await readdir(EXPORTS_DIR)).filter((n) => n.endsWith(".xml"))) await rm(join(EXPORTS_DIR, old));
  for (const [name, bytes] of files) await writeFile(join(EXPORTS_DIR, name), bytes);
  process.stdout.write(`wrote ${files.size} files to ${EXPORTS_DIR}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
