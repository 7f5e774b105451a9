// An Envoy-like ADS client for tests: opens SotW or Delta streams with grpc-js and Envoy's own
// discovery protos, queues responses, and lets a test ACK/NACK/subscribe step by step.
import * as grpc from "@grpc/grpc-js";
import { adsService, decodeEnvoy, encodeEnvoy } from "../../model/ads-protos.js";
import { TYPE_URLS, type XdsResource } from "../../operator/xds/server/resources.js";

export interface AnyMsg {
  type_url: string;
  value: Buffer;
}
export interface SotwResponse {
  version_info: string;
  resources: AnyMsg[];
  type_url: string;
  nonce: string;
}
export interface DeltaResponse {
  system_version_info: string;
  resources: { name: string; version: string; resource: AnyMsg }[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
}

type AdsClient = grpc.Client & {
  StreamAggregatedResources(): grpc.ClientDuplexStream<unknown, SotwResponse>;
  DeltaAggregatedResources(): grpc.ClientDuplexStream<unknown, DeltaResponse>;
};

export function adsClient(port: number): AdsClient {
  const Ctor = adsService();
  // Envoy takes big xDS messages; grpc-js would refuse anything over 4 MB by default.
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
  }) as unknown as AdsClient;
}

export class TestStream<Res> {
  private readonly queue: Res[] = [];
  private waiter: ((r: Res) => void) | undefined;
  private failer: ((e: Error) => void) | undefined;
  ended = false;
  error: Error | undefined;

  constructor(readonly call: grpc.ClientDuplexStream<unknown, Res>) {
    call.on("data", (r: Res) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(r);
      } else this.queue.push(r);
    });
    call.on("error", (e: Error) => {
      this.ended = true;
      this.error = e;
      this.failer?.(e);
    });
    call.on("end", () => (this.ended = true));
  }

  send(req: Record<string, unknown>): void {
    this.call.write(req);
  }

  next(timeoutMs = 10_000): Promise<Res> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.failer = (e) => {
        clearTimeout(t);
        this.waiter = undefined;
        reject(e);
      };
      const t = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (r) => {
        clearTimeout(t);
        this.failer = undefined;
        resolve(r);
      };
    });
  }

  /** Resolves true if nothing arrives within `ms` (used to show the server stays quiet). */
  async quiet(ms = 300): Promise<boolean> {
    if (this.queue.length) return false;
    await new Promise((r) => setTimeout(r, ms));
    return this.queue.length === 0;
  }

  close(): void {
    this.call.cancel();
  }
}

export const node = (id: string, cluster = "test") => ({ id, cluster });

export function cluster(name: string, connectTimeoutSeconds = 1): XdsResource {
  const encoded = encodeEnvoy("envoy.config.cluster.v3.Cluster", {
    name,
    type: "EDS",
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: "V3" } },
    connect_timeout: { seconds: connectTimeoutSeconds },
  });
  return { name, typeUrl: TYPE_URLS.cluster, encoded, version: "" };
}

export function endpoints(clusterName: string, port: number, address = "127.0.0.1"): XdsResource {
  const encoded = encodeEnvoy("envoy.config.endpoint.v3.ClusterLoadAssignment", {
    cluster_name: clusterName,
    endpoints: [
      {
        locality: { region: "test", zone: "a" },
        load_balancing_weight: { value: 1 },
        lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: port } } } }],
      },
    ],
  });
  return { name: clusterName, typeUrl: TYPE_URLS.endpoint, encoded, version: "" };
}

export function routeConfig(name: string, clusterName: string): XdsResource {
  const encoded = encodeEnvoy("envoy.config.route.v3.RouteConfiguration", {
    name,
    virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "" }, route: { cluster: clusterName } }] }],
  });
  return { name, typeUrl: TYPE_URLS.route, encoded, version: "" };
}

/** An API listener (what gRPC clients use): HttpConnectionManager with RDS over ADS. */
export function apiListener(name: string, routeName: string): XdsResource {
  const hcm = encodeEnvoy("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", {
    stat_prefix: name,
    rds: { route_config_name: routeName, config_source: { ads: {}, resource_api_version: "V3" } },
    http_filters: [
      {
        name: "envoy.filters.http.router",
        typed_config: {
          type_url: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
          value: encodeEnvoy("envoy.extensions.filters.http.router.v3.Router", {}),
        },
      },
    ],
  });
  const encoded = encodeEnvoy("envoy.config.listener.v3.Listener", {
    name,
    api_listener: {
      api_listener: {
        type_url: "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        value: hcm,
      },
    },
  });
  return { name, typeUrl: TYPE_URLS.listener, encoded, version: "" };
}

export function clusterName(any: AnyMsg): string {
  return String(decodeEnvoy("envoy.config.cluster.v3.Cluster", any.value).name);
}
export function connectTimeout(any: AnyMsg): unknown {
  return decodeEnvoy("envoy.config.cluster.v3.Cluster", any.value).connect_timeout;
}
