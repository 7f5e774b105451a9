// The benchmark's ADS client (it stands in for Envoy, in the bench process, while the control plane
// runs in its own): subscribes like Envoy, ACKs every response at once, and reports when each
// response arrived. Resource bodies are skipped, not decoded (Envoy decodes in C++; a JS decode
// would measure protobufjs, not the server); grpc-js still receives and reassembles every byte.
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { adsService } from "../model/ads-protos.js";

export interface Received {
  readonly typeUrl: string;
  /** performance.now() at receipt. */
  readonly at: number;
  readonly bytes: number;
}

interface Light {
  version: string;
  typeUrl: string;
  nonce: string;
  bytes: number;
}

function lightDecode(buf: Buffer): Light {
  const r = protobuf.Reader.create(buf);
  const out: Light = { version: "", typeUrl: "", nonce: "", bytes: buf.length };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    // DiscoveryResponse and DeltaDiscoveryResponse: version_info/system_version_info = 1, type_url = 4, nonce = 5.
    if (field === 1 && (tag & 7) === 2) out.version = r.string();
    else if (field === 4 && (tag & 7) === 2) out.typeUrl = r.string();
    else if (field === 5 && (tag & 7) === 2) out.nonce = r.string();
    else r.skipType(tag & 7);
  }
  return out;
}

/** Connects, subscribes to `types` in order (each after the previous one's first response), then reports every response. */
export function startAdsClient(opts: {
  port: number;
  mode: "sotw" | "delta";
  types: readonly string[];
  names: Readonly<Record<string, readonly string[]>>;
  onResponse: (r: Received) => void;
  onError: (e: Error) => void;
}): Promise<{ close: () => void }> {
  const svc = adsService().service;
  const method = opts.mode === "sotw" ? svc.StreamAggregatedResources! : svc.DeltaAggregatedResources!;
  const Ctor = grpc.makeGenericClientConstructor({ ads: { ...method, responseDeserialize: lightDecode } }, "Ads");
  // Envoy's HTTP/2 windows default to 256 MiB; grpc-js' to 64 KiB.
  const client = new Ctor(`127.0.0.1:${opts.port}`, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
    "grpc-node.flow_control_window": 256 * 1024 * 1024,
  }) as unknown as grpc.Client & { ads(): grpc.ClientDuplexStream<unknown, Light> };
  const call = client.ads();
  const names = (t: string) => [...(opts.names[t] ?? [])];
  const close = () => {
    call.cancel();
    client.close();
  };
  return new Promise((resolve) => {
    let subscribing = 0;
    const subscribeNext = () => {
      const t = opts.types[subscribing];
      if (t === undefined) return resolve({ close });
      const node = subscribing === 0 ? { node: { id: `bench-${opts.mode}`, cluster: "bench" } } : {};
      call.write(opts.mode === "sotw" ? { ...node, type_url: t, resource_names: names(t) } : { ...node, type_url: t, resource_names_subscribe: ["*"] });
    };
    call.on("data", (r: Light) => {
      const at = performance.now();
      call.write(
        opts.mode === "sotw"
          ? { type_url: r.typeUrl, version_info: r.version, response_nonce: r.nonce, resource_names: names(r.typeUrl) }
          : { type_url: r.typeUrl, response_nonce: r.nonce },
      );
      if (subscribing < opts.types.length) {
        subscribing++;
        subscribeNext();
        return;
      }
      opts.onResponse({ typeUrl: r.typeUrl, at, bytes: r.bytes });
    });
    call.on("error", (e: Error) => {
      if ((e as grpc.ServiceError).code !== grpc.status.CANCELLED) opts.onError(e);
    });
    subscribeNext();
  });
}
