// The sidecar on examples/contoso with every server healthy, as the gRPC and property tests start it.
import pino from "pino";
import { ALL_HEALTHY } from "../../model/health.js";
import { SettableStateSource } from "../../model/state.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { SidecarServer, type SidecarServerOptions } from "../../sidecar/authz/server.js";

/** A SidecarServer (not started) deciding with examples/contoso; `affinityKeyByte` fills its 32-byte affinity key. */
export async function contosoSidecar(
  affinityKeyByte: number,
  over: Omit<Partial<SidecarServerOptions>, "state" | "directory" | "affinityKey"> = {},
): Promise<SidecarServer> {
  const org = await loadOrganisation("examples/contoso", "examples/contoso/mailboxes.csv");
  return new SidecarServer({
    state: new SettableStateSource({ topology: org.topology, health: ALL_HEALTHY, version: org.topology.version }),
    directory: org.directory!,
    affinityKey: Buffer.alloc(32, affinityKeyByte),
    logger: pino({ level: "silent" }),
    ...over,
  });
}
