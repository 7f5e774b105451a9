// The Topology: an immutable, indexed view of the organisation, built by a pure function from
// validated API objects (see build.ts). Everything downstream (decision engine, xDS translator,
// status) reads this, never the raw objects.
import type { AuthMethod, ConnectionSetting, ExchangeVersion, Kind, Service } from "../../crds/index.js";

/** Numeric Exchange version, for comparisons (R-GEN-2). */
export type VersionNumber = 2003 | 2007 | 2010 | 2013 | 2016 | 2019;

/**
 * Which CAS can serve a mailbox: 2003, 2007 and 2010 need their own version; every 2013-or-later
 * CAS serves every 2013-or-later mailbox (R-GEN-2).
 */
export type VersionClass = "2003" | "2007" | "2010" | "2013+";

export interface VirtualDirectoryInfo {
  /** metadata.name of the VirtualDirectory object. */
  readonly name: string;
  readonly server: string;
  readonly service: Service;
  readonly internalUrl: string | undefined;
  readonly externalUrl: string | null;
  readonly internalAuthenticationMethods: readonly AuthMethod[];
  readonly externalAuthenticationMethods: readonly AuthMethod[];
  /** Owa/Ecp: defaults to Manual (R-OWA-2). */
  readonly crossSiteRedirectType: "Manual" | "Silent";
  readonly exchange2003Url: string | undefined;
  /** Owa: how a redirect to a 2007 CAS or 2003 front end is made without FBA (R-OWA-10); default Silent. */
  readonly legacyRedirectType: "Silent" | "Manual";
  /** Owa: false never redirects a cross-site user (R-OWA-11); default true. */
  readonly redirectToOptimalOwaServer: boolean;
  readonly internalConnectionSettings: readonly ConnectionSetting[];
  readonly externalConnectionSettings: readonly ConnectionSetting[];
}

export interface ServerInfo {
  readonly name: string;
  readonly site: string;
  readonly fqdn: string;
  readonly exchangeVersion: ExchangeVersion;
  readonly version: VersionNumber;
  readonly versionClass: VersionClass;
  readonly clientAccess: boolean;
  readonly mailbox: boolean;
  /** Host (or host:port) to connect to; defaults to the FQDN. */
  readonly address: string;
  readonly internalNLBBypassUrl: string | undefined;
  readonly maintenance: boolean;
  readonly insecureSkipVerify: boolean;
  /** PEM CA bundle for this server's certificate (spec.tls.caBundle); the gateway's bundle when undefined. */
  readonly caBundle?: string;
  /** Virtual directories by service (at most one per service per server). */
  readonly vdirs: ReadonlyMap<Service, VirtualDirectoryInfo>;
}

export interface SiteInfo {
  readonly name: string;
  readonly hostnames: readonly string[];
  /** Explicit spec.internetFacing, else true when any vdir in the site has an ExternalUrl. */
  readonly internetFacing: boolean;
  readonly description: string | undefined;
  /** Server names, sorted. */
  readonly servers: readonly string[];
  /** Servers with the ClientAccess role, sorted. */
  readonly casServers: readonly string[];
  /** Servers with the Mailbox role, sorted. */
  readonly mailboxServers: readonly string[];
}

export interface DatabaseInfo {
  readonly name: string;
  /** Exchange Name (spec.databaseName or metadata.name). */
  readonly databaseName: string;
  readonly activeServer: string;
  readonly servers: readonly string[];
  /** Offline address books generated in a mailbox of this database (R-OAB-2); guid lower-case. */
  readonly offlineAddressBooks: readonly OfflineAddressBookInfo[];
}

export interface OfflineAddressBookInfo {
  /** Lower-case GUID: the path segment of /OAB/<guid>/. */
  readonly guid: string;
  readonly name?: string;
  /** The organisation (arbitration) mailbox that generates it. */
  readonly generatingMailbox: string;
}

/** R-HYB-1: the organisation relationship with Exchange Online: its domains and cloud endpoints. */
export interface OrganizationRelationshipInfo {
  readonly name: string;
  /** Lower-case domains of the cloud organisation (the tenant's routing domain among them). */
  readonly domainNames: readonly string[];
  readonly targetOwaUrl: string;
  readonly targetActiveSyncUrl: string;
  readonly targetAutodiscoverEpr?: string;
}

export type ProblemSeverity = "error" | "warning";

/** A referential or semantic problem with one object; the object is left out if severity is error. */
export interface Problem {
  readonly kind: Kind;
  readonly name: string;
  readonly namespace?: string;
  /** Dotted field path, e.g. spec.server. */
  readonly field: string;
  /** CamelCase reason for status conditions, e.g. UnknownServer. */
  readonly reason: string;
  readonly message: string;
  readonly severity: ProblemSeverity;
  /** Condition type the problem belongs to: Accepted (bad object) or ResolvedRefs (bad reference), or a warning type. */
  readonly condition: string;
}

export interface Topology {
  /** Content-derived version: same objects, same version. */
  readonly version: string;
  readonly sites: ReadonlyMap<string, SiteInfo>;
  readonly servers: ReadonlyMap<string, ServerInfo>;
  /** By metadata.name. */
  readonly databases: ReadonlyMap<string, DatabaseInfo>;
  /** Lower-cased host name → site name. */
  readonly hostToSite: ReadonlyMap<string, string>;
  /** R-HYB-1: enabled organisation relationships with Exchange Online, by name. */
  readonly organizationRelationships: ReadonlyMap<string, OrganizationRelationshipInfo>;
  /** Problems found while building; objects with errors are not in the indexes above. */
  readonly problems: readonly Problem[];
  /** Find a database by Exchange name, metadata.name or DN CN, case-insensitively. */
  findDatabase(name: string): DatabaseInfo | undefined;
  /** Find a server by metadata.name, FQDN or NetBIOS name (first FQDN label), case-insensitively. */
  findServer(name: string): ServerInfo | undefined;
  /** Site for a Host header / SNI value (port and trailing dot ignored, case-insensitive). */
  siteForHost(host: string): string | undefined;
}
