// Human/golden forms of translated resources: a DiscoveryResponse-like listing per type (what
// Envoy would receive over ADS), in proto3 JSON with Any values shown by @type.
import { stringify } from "yaml";
import type { EnvoyResource, EnvoyResources } from "./types.js";

export interface DiscoveryListing {
  readonly version_info: string;
  readonly type_url: string;
  readonly resources: readonly Record<string, unknown>[];
}

const asAny = (r: EnvoyResource) => ({ "@type": r.typeUrl, ...r.value });

export function toDiscoveryListing(res: EnvoyResources): DiscoveryListing[] {
  const groups: Array<readonly EnvoyResource[]> = [res.listeners, res.routes, res.clusters, res.endpoints];
  return groups
    .filter((g) => g.length > 0)
    .map((g) => ({ version_info: res.version, type_url: g[0].typeUrl, resources: g.map(asAny) }));
}

export function resourcesToYaml(res: EnvoyResources): string {
  return stringify(
    {
      version: res.version,
      topology_version: res.topologyVersion,
      problems: res.problems.map((p) => `${p.severity} ${p.kind}/${p.name}: ${p.message}`),
      listing: toDiscoveryListing(res),
    },
    { lineWidth: 0, aliasDuplicateObjects: false },
  );
}
