// The databases part of /config_dump (and the organisation page): where each database is active,
// where its copies are, and which of those servers are down in the health view in force, so that
// after a failover an administrator can see where a database is served from.
import type { Topology } from "../../model/topology/types.js";

export interface DatabaseView {
  readonly name: string;
  readonly databaseName: string;
  readonly activeServer: string;
  readonly activeSite: string | undefined;
  readonly activeServerDown: boolean;
  readonly copies: readonly { readonly server: string; readonly site: string | undefined; readonly down: boolean }[];
}

export function databaseViews(t: Topology, down: readonly string[]): DatabaseView[] {
  const isDown = new Set(down);
  return [...t.databases.values()]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((d) => ({
      name: d.name,
      databaseName: d.databaseName,
      activeServer: d.activeServer,
      activeSite: t.servers.get(d.activeServer)?.site,
      activeServerDown: isDown.has(d.activeServer),
      copies: d.servers.map((s) => ({ server: s, site: t.servers.get(s)?.site, down: isDown.has(s) })),
    }));
}
