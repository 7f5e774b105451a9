// CheckRequests shaped exactly as Envoy's ext_authz filter sends them (envoy.service.auth.v3,
// snake_case as in the proto): pseudo-headers in the header map, lower-case names, path with query,
// body as `body` (UTF-8) or `raw_body` (pack_as_bytes), source address, context_extensions.
import * as grpc from "@grpc/grpc-js";
import { loadEnvoyServices } from "../../sidecar/envoy-protos.js";

export interface EnvoyRequestInit {
  method?: string;
  host: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  rawBody?: Buffer;
  scheme?: "https" | "http";
  source?: string;
  /** Downstream source port: the connection (R-LB-8). Default: a new one per request (a new connection each time). */
  sourcePort?: number;
  contextExtensions?: Record<string, string>;
  requestId?: string;
}

let seq = 0;
let portSeq = 0;

export function envoyCheckRequest(init: EnvoyRequestInit): Record<string, unknown> {
  const method = init.method ?? "GET";
  const scheme = init.scheme ?? "https";
  const rid = init.requestId ?? `00000000-0000-4000-8000-${String(++seq).padStart(12, "0")}`;
  const headers: Record<string, string> = {
    ":authority": init.host,
    ":method": method,
    ":path": init.path,
    ":scheme": scheme,
    "user-agent": "test-client/1.0",
    "x-forwarded-proto": scheme,
    "x-request-id": rid,
  };
  for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = v;
  const bodyLen = init.rawBody?.length ?? (init.body !== undefined ? Buffer.byteLength(init.body) : 0);
  if (bodyLen) headers["content-length"] = String(bodyLen);
  return {
    attributes: {
      source: { address: { socket_address: { address: init.source ?? "203.0.113.7", port_value: init.sourcePort ?? 20000 + (++portSeq % 40000) } } },
      destination: { address: { socket_address: { address: "10.0.0.10", port_value: 443 } } },
      request: {
        time: { seconds: String(Math.floor(Date.now() / 1000)), nanos: 0 },
        http: {
          id: String(1000 + seq),
          method,
          headers,
          path: init.path,
          host: init.host,
          scheme,
          protocol: "HTTP/1.1",
          size: String(bodyLen || -1),
          ...(init.body !== undefined ? { body: init.body } : {}),
          ...(init.rawBody ? { raw_body: init.rawBody } : {}),
        },
      },
      context_extensions: init.contextExtensions ?? {},
      metadata_context: {},
    },
  };
}

export interface CheckResponseIn {
  status?: { code?: number; message?: string };
  ok_response?: {
    headers?: { header: { key: string; value: string } }[];
    headers_to_remove?: string[];
    response_headers_to_add?: { header: { key: string; value: string } }[];
  };
  denied_response?: { status?: { code?: string | number }; headers?: { header: { key: string; value: string } }[]; body?: string };
  dynamic_metadata?: { fields?: Record<string, { stringValue?: string }> };
}

/** A grpc-js Authorization client speaking Envoy's proto. */
export function authzClient(port: number): { check(req: unknown): Promise<CheckResponseIn>; close(): void } {
  const { AuthorizationClient } = loadEnvoyServices();
  const client = new AuthorizationClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    check: (req) =>
      new Promise((resolve, reject) => {
        (client as unknown as { Check: (r: unknown, cb: (e: Error | null, r: CheckResponseIn) => void) => void }).Check(req, (e, r) =>
          e ? reject(e) : resolve(r),
        );
      }),
    close: () => client.close(),
  };
}

export const headerMap = (hs: { header: { key: string; value: string } }[] | undefined) =>
  Object.fromEntries((hs ?? []).map((h) => [h.header.key, h.header.value]));

/** The headers of a Check answer, allowed or denied. */
export const checkResponseHeaders = (r: CheckResponseIn) => headerMap(r.ok_response ? r.ok_response.headers : r.denied_response?.headers);
