// ext_proc Process over real gRPC: the stream Envoy's ext_proc filter opens per HTTP request.
import * as grpc from "@grpc/grpc-js";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { SidecarServer } from "../../sidecar/authz/server.js";
import type { Decision } from "../../sidecar/decision/types.js";
import { ALL_HEALTHY } from "../../model/health.js";
import { loadEnvoyServices } from "../../sidecar/envoy-protos.js";
import { SettableStateSource } from "../../model/state.js";
import { scriptedEngine } from "./scripted-engine.js";

let decision: Decision;
const engine = scriptedEngine(() => decision);
let server: SidecarServer;
let port: number;

beforeAll(async () => {
  const org = await loadOrganisation("examples/contoso");
  server = new SidecarServer({
    state: new SettableStateSource({ topology: org.topology, health: ALL_HEALTHY, version: "1" }),
    directory: { lookup: async () => ({ status: "not-found" }) },
    engine,
    affinityKey: Buffer.alloc(32, 3),
    logger: pino({ level: "silent" }),
  });
  port = await server.start(0);
});
afterAll(async () => server?.stop());

type Msg = Record<string, unknown>;

/** One ext_proc stream: send messages in order, collect one answer per message. */
async function exchange(msgs: Msg[]): Promise<Msg[]> {
  const { ExternalProcessorClient } = loadEnvoyServices();
  const client = new ExternalProcessorClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
    Process(): grpc.ClientDuplexStream<Msg, Msg>;
    close(): void;
  };
  const call = client.Process();
  const out: Msg[] = [];
  const done = new Promise<void>((resolve, reject) => {
    call.on("data", (m: Msg) => {
      out.push(m);
      if (out.length === msgs.length) call.end();
    });
    call.on("end", () => resolve());
    call.on("error", reject);
  });
  for (const m of msgs) call.write(m);
  await done;
  client.close();
  return out;
}

// Envoy >= 1.27 sends header values as raw_value bytes.
const hdrs = (h: Record<string, string>) => ({ headers: Object.entries(h).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) });
const setHeaders = (m: unknown) =>
  Object.fromEntries(
    ((m as { set_headers?: { header: { key: string; raw_value?: Buffer; value?: string } }[] })?.set_headers ?? []).map((h) => [
      h.header.key,
      h.header.raw_value ? Buffer.from(h.header.raw_value).toString() : h.header.value,
    ]),
  );

describe("ext_proc Process", () => {
  it("R-LB-2: request headers → CONTINUE with x-cas-* mutation and route cache cleared; response headers → Set-Cookie", async () => {
    decision = { outcome: "proxy", targetSite: "europe", targetServer: "europe-cas01", cluster: "server/europe-cas01/owa", affinity: "set", service: "Owa", rules: ["R-OWA-4", "R-LB-2"], trace: [] };
    const [req, res] = await exchange([
      { request_headers: { headers: hdrs({ ":authority": "usa.contoso.com", ":method": "GET", ":path": "/owa/", ":scheme": "https", "x-cas-cluster": "evil" }), end_of_stream: true } },
      { response_headers: { headers: hdrs({ ":status": "200" }) } },
    ]);
    const common = (req.request_headers as { response: { status?: string; header_mutation: unknown; clear_route_cache: boolean } }).response;
    expect(setHeaders(common.header_mutation)).toMatchObject({ "x-cas-decision": "proxy", "x-cas-cluster": "server/europe-cas01/owa", "x-cas-target-server": "europe-cas01" });
    expect(common.clear_route_cache).toBe(true);
    expect(Object.keys(engine.calls.at(-1)!.req.headers).some((k) => k.startsWith("x-cas-"))).toBe(false);
    const cookie = setHeaders((res.response_headers as { response: { header_mutation: unknown } }).response.header_mutation)["set-cookie"];
    expect(cookie).toMatch(/^cas-affinity=.+; Path=\/;/);
  });

  it("R-EAS-4: redirect-451 → ImmediateResponse 403 carrier with x-ms-location and dynamic metadata", async () => {
    decision = { outcome: "redirect", kind: "eas451", url: "https://europe.contoso.com/Microsoft-Server-ActiveSync", rules: ["R-EAS-4"], trace: [] };
    const [r] = await exchange([
      { request_headers: { headers: hdrs({ ":authority": "usa.contoso.com", ":method": "POST", ":path": "/Microsoft-Server-ActiveSync?Cmd=Ping", ":scheme": "https" }), end_of_stream: false } },
    ]);
    const ir = r.immediate_response as { status: { code: string }; headers: unknown };
    expect(ir.status.code).toBe("Forbidden");
    expect(setHeaders(ir.headers)).toMatchObject({ "x-ms-location": "https://europe.contoso.com/Microsoft-Server-ActiveSync", "x-cas-decision": "redirect-451" });
    expect((r.dynamic_metadata as { fields: Record<string, { stringValue: string }> }).fields.cas_decision.stringValue).toBe("redirect-451");
  });

  it("a malformed message gets a 400 ImmediateResponse, not a broken stream", async () => {
    const [r] = await exchange([{ request_headers: { headers: { headers: [{ key: ":path" }] } } }]);
    expect((r.immediate_response as { status: { code: string } }).status.code).toBe("BadRequest");
  });
});
