// Small purpose-made organisations for the decision engine's tests, property tests and benchmark.
import type { ApiObject, AuthMethod, ConnectionSetting, ExchangeVersion, Service } from "../../crds/index.js";
import { API_VERSION } from "../../crds/index.js";
import { buildTopology } from "../../model/topology/build.js";
import type { Topology } from "../../model/topology/types.js";
import { CsvDirectory } from "../../model/directory/csv-directory.js";
import type { DirectoryView, MailboxRecord } from "../../model/directory/types.js";
import { buildNtlmAuthenticate } from "./ntlm.js";
import type { ClientRequest } from "./types.js";

export interface VdirSpec {
  service: Service;
  internalUrl?: string;
  externalUrl?: string | null;
  internalAuth?: AuthMethod[];
  externalAuth?: AuthMethod[];
  redirect?: "Manual" | "Silent";
  exchange2003Url?: string;
  /** R-OWA-10 */
  legacyRedirect?: "Silent" | "Manual";
  /** R-OWA-11 */
  optimal?: boolean;
  conn?: ConnectionSetting[];
}
export interface ServerSpec {
  name: string;
  site: string;
  version: ExchangeVersion;
  roles?: ("ClientAccess" | "Mailbox")[];
  nlb?: string;
  maintenance?: boolean;
  insecure?: boolean;
  vdirs?: VdirSpec[];
}
export interface OrgSpec {
  sites: { name: string; hostnames?: string[]; internetFacing?: boolean }[];
  servers: ServerSpec[];
  /** R-HYB-1 */
  orgRels?: { name: string; domainNames: string[]; targetOwaUrl: string; targetActiveSyncUrl: string; targetAutodiscoverEpr?: string; enabled?: boolean }[];
  databases: { name: string; active: string; servers?: string[]; oabs?: { guid: string; name?: string; generatingMailbox: string }[] }[];
}

const PATHS: Record<Service, string> = {
  Owa: "/owa",
  Ecp: "/ecp",
  ActiveSync: "/Microsoft-Server-ActiveSync",
  Ews: "/EWS/Exchange.asmx",
  Oab: "/OAB",
  Autodiscover: "/Autodiscover/Autodiscover.xml",
  Mapi: "/mapi",
  RpcHttp: "/rpc/rpcproxy.dll",
  PowerShell: "/powershell",
  Pop3: "",
  Imap4: "",
  Public: "/public",
};

/** A vdir with sensible defaults: https InternalUrl on the server's FQDN, IWA inside. */
export function vd(service: Service, over: Partial<VdirSpec> = {}): VdirSpec {
  return { service, ...over };
}

export function buildOrg(spec: OrgSpec): Topology {
  const objs: ApiObject[] = [];
  const meta = (name: string) => ({ name });
  for (const s of spec.sites) {
    objs.push({
      apiVersion: API_VERSION,
      kind: "ADSite",
      metadata: meta(s.name),
      spec: { hostnames: s.hostnames ?? [], ...(s.internetFacing !== undefined ? { internetFacing: s.internetFacing } : {}) },
    });
  }
  for (const s of spec.servers) {
    const fqdn = `${s.name}.${s.site}.example.org`;
    objs.push({
      apiVersion: API_VERSION,
      kind: "ClientAccessServer",
      metadata: meta(s.name),
      spec: {
        site: s.site,
        fqdn,
        exchangeVersion: s.version,
        roles: s.roles ?? ["ClientAccess"],
        ...(s.nlb ? { internalNLBBypassUrl: s.nlb } : {}),
        maintenance: s.maintenance ?? false,
        tls: { insecureSkipVerify: s.insecure ?? false },
      },
    });
    for (const v of s.vdirs ?? []) {
      const mail = v.service === "Pop3" || v.service === "Imap4";
      objs.push({
        apiVersion: API_VERSION,
        kind: "VirtualDirectory",
        metadata: meta(`${s.name}-${v.service.toLowerCase()}`),
        spec: {
          server: s.name,
          service: v.service,
          ...(mail
            ? { internalConnectionSettings: v.conn ?? [{ hostname: fqdn, port: v.service === "Pop3" ? 995 : 993, encryption: "Ssl" }] }
            : { internalUrl: v.internalUrl ?? `https://${fqdn}${PATHS[v.service]}` }),
          externalUrl: v.externalUrl ?? null,
          internalAuthenticationMethods: v.internalAuth ?? (mail ? ["Basic"] : ["Ntlm", "Negotiate"]),
          externalAuthenticationMethods: v.externalAuth ?? [],
          ...(v.redirect ? { crossSiteRedirectType: v.redirect } : {}),
          ...(v.exchange2003Url ? { exchange2003Url: v.exchange2003Url } : {}),
          ...(v.legacyRedirect ? { legacyRedirectType: v.legacyRedirect } : {}),
          ...(v.optimal !== undefined ? { redirectToOptimalOwaServer: v.optimal } : {}),
        },
      });
    }
  }
  for (const d of spec.databases) {
    objs.push({
      apiVersion: API_VERSION,
      kind: "MailboxDatabase",
      metadata: meta(d.name),
      spec: { activeServer: d.active, servers: d.servers ?? [d.active], ...(d.oabs ? { offlineAddressBooks: d.oabs } : {}) },
    });
  }
  for (const r of spec.orgRels ?? []) {
    const { name, ...rest } = r;
    objs.push({ apiVersion: API_VERSION, kind: "OrganizationRelationship", metadata: meta(name), spec: { enabled: true, ...rest } });
  }
  return buildTopology(objs);
}

export function mailbox(user: string, database: string, guid?: string): MailboxRecord {
  const smtp = `${user}@example.org`;
  return {
    primarySmtpAddress: smtp,
    userPrincipalName: smtp,
    samAccountName: user,
    database,
    ...(guid ? { exchangeGuid: guid } : {}),
    emailAddresses: [smtp],
  };
}

export function directoryOf(records: MailboxRecord[]): DirectoryView {
  return new CsvDirectory(records);
}

/** An NTLM NEGOTIATE (type 1) message: names no user (R-LB-8). */
export const NTLM_NEGOTIATE = "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==";
/** An NTLM AUTHENTICATE (type 3) message for `user`, the Authorization header's value. */
export const ntlmAuthenticate = (user: string, domain = "CONTOSO") => `NTLM ${buildNtlmAuthenticate(user, domain).toString("base64")}`;

export const basic = (user: string, password = "secret") =>
  `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`;

export function httpReq(host: string, path: string, over: Partial<ClientRequest> = {}): ClientRequest {
  return { method: "GET", host, path, scheme: "https", headers: {}, ...over };
}

export function mailReq(host: string, protocol: "Pop3" | "Imap4", user: string, mechanism = "PLAIN"): ClientRequest {
  return { method: "LOGIN", host, path: "", scheme: "https", headers: {}, mail: { protocol, user, mechanism } };
}
