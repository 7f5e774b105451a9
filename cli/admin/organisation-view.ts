// What the organisation page shows, as plain data: built from the topology and health view in force,
// the configuration problems and the recent decision counts. Kept apart from the HTML so that the
// standalone gateway and the sidecar (which holds only the state the control plane sends it) can
// both fill it, and so that tests can check the page against a view they build.
import type { Topology } from "../../model/topology/types.js";
import { databaseViews, type DatabaseView } from "./databases.js";
import type { RecentSummary } from "./recent-decisions.js";

export interface SiteRow {
  readonly name: string;
  readonly hostnames: readonly string[];
  readonly internetFacing: boolean;
  readonly description: string | undefined;
  readonly servers: number;
}

export interface ServerRow {
  readonly name: string;
  readonly site: string;
  readonly fqdn: string;
  /** Exchange version as configured (2003…2019). */
  readonly exchangeVersion: string;
  readonly roles: string;
  /** Services it has a virtual directory for (Owa, ActiveSync, ...). */
  readonly services: readonly string[];
  readonly maintenance: boolean;
  /** "healthy", "down" (the whole server), or the services that are down. */
  readonly health: { readonly state: "healthy" | "down" | "partly-down"; readonly servicesDown: readonly string[] };
}

export interface ProblemRow {
  /** Where it comes from: "rejected edit", "in force", "Envoy configuration", "mailbox directory". */
  readonly source: string;
  readonly severity: "error" | "warning";
  readonly text: string;
}

export interface OrganisationView {
  /** Which process serves the page (standalone gateway, sidecar). */
  readonly component: string;
  readonly generatedAt: Date;
  readonly topologyVersion: string | undefined;
  /** true, or why the gateway is not ready. */
  readonly ready: true | string;
  /** false when the health prober is off (every server is treated as healthy). */
  readonly healthChecks: boolean;
  readonly sites: readonly SiteRow[];
  readonly servers: readonly ServerRow[];
  readonly databases: readonly DatabaseView[];
  readonly problems: readonly ProblemRow[];
  /** When the problems last changed (undefined: none seen since start). */
  readonly problemsSince: Date | undefined;
  readonly decisions: (RecentSummary & { readonly windowMinutes: number }) | undefined;
  /** Components that are not running, with the reason. */
  readonly notRunning: readonly string[];
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function siteRows(t: Topology | undefined): SiteRow[] {
  if (!t) return [];
  return [...t.sites.values()]
    .sort((a, b) => byName(a.name, b.name))
    .map((s) => ({ name: s.name, hostnames: s.hostnames, internetFacing: s.internetFacing, description: s.description, servers: s.servers.length }));
}

/** Servers by site, then by Exchange version (newest first), then by name. */
export function serverRows(t: Topology | undefined, down: readonly string[]): ServerRow[] {
  if (!t) return [];
  const downSet = new Set(down);
  return [...t.servers.values()]
    .sort((a, b) => byName(a.site, b.site) || b.version - a.version || byName(a.name, b.name))
    .map((s) => {
      const servicesDown = down.filter((k) => k.startsWith(`${s.name}/`)).map((k) => k.slice(s.name.length + 1)).sort(byName);
      const roles = [s.clientAccess ? "Client Access" : "", s.mailbox ? "Mailbox" : ""].filter(Boolean).join(" + ") || "none";
      return {
        name: s.name,
        site: s.site,
        fqdn: s.fqdn,
        exchangeVersion: s.exchangeVersion,
        roles,
        services: [...s.vdirs.keys()].sort(byName),
        maintenance: s.maintenance,
        health: { state: downSet.has(s.name) ? "down" : servicesDown.length > 0 ? "partly-down" : "healthy", servicesDown },
      };
    });
}

export { databaseViews };

/**
 * Remembers when a list of problems last changed, so the page can say "since 12:04:31" for the
 * problems it shows (the providers report the current set, not when it appeared).
 */
export class ProblemClock {
  private signature = "";
  private since: Date | undefined;
  constructor(private readonly now: () => Date = () => new Date()) {}
  observe(problems: readonly ProblemRow[]): Date | undefined {
    const sig = problems.map((p) => `${p.source}\u0000${p.severity}\u0000${p.text}`).join("\n");
    if (sig !== this.signature) {
      this.signature = sig;
      this.since = this.now();
    }
    return problems.length > 0 ? this.since : undefined;
  }
}
