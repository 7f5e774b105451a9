// The gateway's own xDS type: what a sidecar needs to decide, so sidecars are stateless and need no
// Kubernetes API access. The value is JSON (not protobuf): the accepted API objects, the health
// down-list and the topology version. The sidecar validates it with zod and rebuilds the Topology
// with the same pure buildTopology the operator uses.
import { z } from "zod";
import { ApiObject } from "../crds/index.js";
import { buildTopology, canonicalJson } from "./topology/build.js";
import { healthFromDown } from "./health.js";
import type { GatewayState } from "./state.js";
import { hashHex } from "./hash.js";

/** The gateway's own xDS type URL (the control plane's TYPE_URLS.gatewayState is this). */
export const GATEWAY_STATE_TYPE_URL = "type.googleapis.com/casgateway.io.v1alpha1.GatewayState";
/** The single resource name of the type. */
export const GATEWAY_STATE_NAME = "gateway-state";

export const GatewayStateMessage = z.object({
  apiVersion: z.literal("casgateway.io/v1alpha1"),
  topologyVersion: z.string().min(1),
  /** Health keys: "server" or "server/Service" (model/health.ts). */
  down: z.array(z.string()),
  objects: z.array(ApiObject),
});
export type GatewayStateMessage = z.infer<typeof GatewayStateMessage>;

export function gatewayStateVersion(topologyVersion: string, down: readonly string[]): string {
  return `${topologyVersion}/${hashHex(...[...down].sort()).slice(0, 12)}`;
}

// Each object's canonical JSON, kept while the object is in use (API objects are immutable values;
// a change arrives as a new object), and the JSON of runs of CHUNK consecutive objects, reused while
// the run holds the same objects: a one-object change re-serialises one object and re-joins one run.
const OBJECT_JSON = new WeakMap<ApiObject, string>();
const CHUNK = 128;
interface Chunk {
  readonly objects: readonly ApiObject[];
  readonly bytes: Buffer;
}
let lastChunks: Chunk[] = [];
const COMMA = Buffer.from(",");

function objectJson(o: ApiObject): string {
  let j = OBJECT_JSON.get(o);
  if (j === undefined) OBJECT_JSON.set(o, (j = canonicalJson(o)));
  return j;
}

/** The "objects" array's JSON as runs of objects, separated by commas. */
function objectChunks(objects: readonly ApiObject[]): Buffer[] {
  const chunks: Chunk[] = [];
  for (let start = 0, c = 0; start < objects.length; start += CHUNK, c++) {
    const end = Math.min(objects.length, start + CHUNK);
    const prev = lastChunks[c];
    if (prev && prev.objects.length === end - start && prev.objects.every((o, i) => o === objects[start + i])) {
      chunks.push(prev);
      continue;
    }
    const run = objects.slice(start, end);
    chunks.push({ objects: run, bytes: Buffer.from(run.map(objectJson).join(",")) });
  }
  lastChunks = chunks;
  const parts: Buffer[] = [];
  chunks.forEach((c, i) => {
    if (i > 0) parts.push(COMMA);
    parts.push(c.bytes);
  });
  return parts;
}

/** The shape of an xDS resource the control plane serves (its XdsResource), without depending on it. */
export interface GatewayStateResource {
  readonly name: string;
  readonly typeUrl: typeof GATEWAY_STATE_TYPE_URL;
  readonly encoded: Buffer;
  readonly version: string;
}

/**
 * The xDS resource carrying the objects a Topology was built from plus the health down-list. The
 * bytes are the canonical JSON of a GatewayStateMessage (keys sorted), assembled from per-object
 * pieces: the same as canonicalJson(message). They are assembled (one copy of some MB on a large
 * organisation) when first read, i.e. when a sidecar is subscribed; the version needs no bytes.
 */
export function gatewayStateResource(objects: readonly ApiObject[], topologyVersion: string, down: readonly string[]): GatewayStateResource {
  const sortedDown = [...new Set(down)].sort();
  let bytes: Buffer | undefined;
  return {
    name: GATEWAY_STATE_NAME,
    typeUrl: GATEWAY_STATE_TYPE_URL,
    get encoded(): Buffer {
      bytes ??= Buffer.concat([
        Buffer.from(`{"apiVersion":"casgateway.io/v1alpha1","down":${canonicalJson(sortedDown)},"objects":[`),
        ...objectChunks(objects),
        Buffer.from(`],"topologyVersion":${JSON.stringify(topologyVersion)}}`),
      ]);
      return bytes;
    },
    version: gatewayStateVersion(topologyVersion, sortedDown),
  };
}

export class GatewayStateError extends Error {}

/** Decode and validate the bytes received over xDS; throws GatewayStateError saying what is wrong. */
export function decodeGatewayState(bytes: Uint8Array): { state: GatewayState; message: GatewayStateMessage; versionMismatch: boolean } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new GatewayStateError(`GatewayState is not UTF-8 JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = GatewayStateMessage.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new GatewayStateError(`GatewayState invalid at ${first?.path.join(".") || "(root)"}: ${first?.message ?? "invalid"}`);
  }
  const message = parsed.data;
  const topology = buildTopology(message.objects);
  return {
    message,
    // Same builder, same objects → same version; a mismatch means operator and sidecar builds differ.
    versionMismatch: topology.version !== message.topologyVersion,
    state: { topology, health: healthFromDown(message.down), version: gatewayStateVersion(topology.version, message.down) },
  };
}
