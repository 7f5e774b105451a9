// Discovery requests as they arrive from grpc-js (proto-loader with keepCase), validated with zod,
// and the response shapes we write back.
import { z } from "zod";

const NodeMsg = z
  .object({ id: z.string().default(""), cluster: z.string().default("") })
  .loose()
  .nullish();
const Status = z.object({ code: z.number().default(0), message: z.string().default("") }).loose().nullish();

export const DiscoveryRequest = z
  .object({
    version_info: z.string().default(""),
    node: NodeMsg,
    resource_names: z.array(z.string()).default([]),
    type_url: z.string().default(""),
    response_nonce: z.string().default(""),
    error_detail: Status,
  })
  .loose();
export type DiscoveryRequest = z.infer<typeof DiscoveryRequest>;

export const DeltaDiscoveryRequest = z
  .object({
    node: NodeMsg,
    type_url: z.string().default(""),
    resource_names_subscribe: z.array(z.string()).default([]),
    resource_names_unsubscribe: z.array(z.string()).default([]),
    initial_resource_versions: z.record(z.string(), z.string()).default({}),
    response_nonce: z.string().default(""),
    error_detail: Status,
  })
  .loose();
export type DeltaDiscoveryRequest = z.infer<typeof DeltaDiscoveryRequest>;

export interface AnyMsg {
  type_url: string;
  value: Uint8Array;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: AnyMsg[];
  type_url: string;
  nonce: string;
  control_plane: { identifier: string };
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: { name: string; version: string; resource: AnyMsg }[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
  control_plane: { identifier: string };
}

/** A NACK carries a google.rpc.Status with a non-OK code or a message. */
export function isNack(s: { code: number; message: string } | null | undefined): boolean {
  return !!s && (s.code !== 0 || s.message !== "");
}
