// R-HYB-1: which organisation relationship (Exchange Online) a remote mailbox's target address
// belongs to. Shared by the engine (where to send the mailbox) and validate (a remote mailbox no
// relationship covers).
import type { OrganizationRelationshipInfo, Topology } from "./types.js";

/** The enabled relationship whose domains hold the address's domain or a parent of it; the first by name wins. */
export function relationshipForAddress(topology: Pick<Topology, "organizationRelationships">, address: string): OrganizationRelationshipInfo | undefined {
  const domain = address.slice(address.lastIndexOf("@") + 1).toLowerCase().replace(/\.$/, "");
  for (const r of topology.organizationRelationships.values()) {
    for (const d of r.domainNames) if (domain === d || domain.endsWith(`.${d}`)) return r;
  }
  return undefined;
}
