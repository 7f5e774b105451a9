// The benchmark's ADS client, in its own thread (Envoy runs in its own process): subscribes like
// Envoy, ACKs every response at once, and reports when each response arrived. Resource bodies are
// skipped, not decoded (Envoy decodes in C++; a JS decode would measure protobufjs, not the server).
import { parentPort, workerData } from "node:worker_threads";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { adsService } from "../operator/xds/server/protos.js";

interface Init {
  port: number;
  mode: "sotw" | "delta";
  types: string[];
  names: Record<string, string[]>;
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
    if (field === 1 && (tag & 7) === 2) out.version = r.string();
    else if (field === 4 && (tag & 7) === 2) out.typeUrl = r.string();
    else if (field === 5 && (tag & 7) === 2) out.nonce = r.string();
    else r.skipType(tag & 7);
  }
  return out;
}

const init = workerData as Init;
const svc = adsService().service;
const method = init.mode === "sotw" ? svc.StreamAggregatedResources! : svc.DeltaAggregatedResources!;
const Ctor = grpc.makeGenericClientConstructor({ ads: { ...method, responseDeserialize: lightDecode } }, "Ads");
// Envoy's HTTP/2 windows default to 256 MiB; grpc-js' to 64 KiB.
const client = new Ctor(`127.0.0.1:${init.port}`, grpc.credentials.createInsecure(), {
  "grpc.max_receive_message_length": -1,
  "grpc-node.flow_control_window": 256 * 1024 * 1024,
}) as unknown as grpc.Client & { ads(): grpc.ClientDuplexStream<unknown, Light> };
const call = client.ads();
const names = (t: string) => init.names[t] ?? [];
const ack = (r: Light) =>
  call.write(
    init.mode === "sotw"
      ? { type_url: r.typeUrl, version_info: r.version, response_nonce: r.nonce, resource_names: names(r.typeUrl) }
      : { type_url: r.typeUrl, response_nonce: r.nonce },
  );
let subscribing = 0;
const subscribeNext = () => {
  const t = init.types[subscribing];
  if (t === undefined) {
    parentPort!.postMessage({ ready: true });
    return;
  }
  const node = subscribing === 0 ? { node: { id: `bench-${init.mode}`, cluster: "bench" } } : {};
  call.write(init.mode === "sotw" ? { ...node, type_url: t, resource_names: names(t) } : { ...node, type_url: t, resource_names_subscribe: ["*"] });
};
call.on("data", (r: Light) => {
  const at = performance.timeOrigin + performance.now();
  ack(r);
  if (subscribing < init.types.length) {
    subscribing++;
    subscribeNext();
    return;
  }
  parentPort!.postMessage({ typeUrl: r.typeUrl, at, bytes: r.bytes });
});
call.on("error", (e: Error) => parentPort!.postMessage({ error: e.message }));
parentPort!.on("message", (m: { stop?: boolean }) => {
  if (m.stop) {
    call.cancel();
    client.close();
    parentPort!.close();
  }
});
subscribeNext();
