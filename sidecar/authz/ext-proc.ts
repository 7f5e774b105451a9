// envoy.service.ext_proc.v3.ExternalProcessor/Process: the same decision as ext_authz, for
// deployments that wire ext_proc instead. Request headers (or, when Envoy buffers bodies, the request
// body) → header mutation or ImmediateResponse; the affinity Set-Cookie goes on the response headers.
import type * as grpc from "@grpc/grpc-js";
import { z } from "zod";
import type { DecisionService } from "./decision-service.js";
import type { CheckResponseOut, HeaderValueOption } from "./response.js";

const HeaderMap = z.object({
  headers: z
    .array(z.object({ key: z.string(), value: z.string().optional(), raw_value: z.instanceof(Uint8Array).optional() }))
    .optional(),
});
const ProcessingRequest = z.object({
  request_headers: z.object({ headers: HeaderMap.optional(), end_of_stream: z.boolean().optional() }).optional(),
  request_body: z.object({ body: z.instanceof(Uint8Array).optional(), end_of_stream: z.boolean().optional() }).optional(),
  response_headers: z.object({ headers: HeaderMap.optional() }).optional(),
  response_body: z.object({}).optional(),
  request_trailers: z.object({}).optional(),
  response_trailers: z.object({}).optional(),
});

const MAX_BUFFERED_BODY = 64 * 1024;

const hv = (o: HeaderValueOption) => ({
  header: { key: o.header.key, raw_value: Buffer.from(o.header.value, "utf8") },
  append_action: o.append_action,
});

/** Header list → the CheckRequest shape mapCheckRequest reads (pseudo-headers become fields). */
function asCheckRequest(headers: { key: string; value?: string; raw_value?: Uint8Array }[], body?: Buffer): unknown {
  const plain: Record<string, string> = {};
  const pseudo: Record<string, string> = {};
  for (const h of headers) {
    const v = h.value ?? (h.raw_value ? Buffer.from(h.raw_value).toString("latin1") : "");
    const k = h.key.toLowerCase();
    if (k.startsWith(":")) pseudo[k] = v;
    else plain[k] = k in plain ? `${plain[k]},${v}` : v;
  }
  return {
    attributes: {
      request: {
        http: {
          method: pseudo[":method"],
          host: pseudo[":authority"] ?? plain.host,
          path: pseudo[":path"],
          scheme: pseudo[":scheme"],
          headers: plain,
          ...(body ? { raw_body: body } : {}),
        },
      },
    },
  };
}

/** CheckResponse → ext_proc answer for the request phase. */
function toProcessing(r: CheckResponseOut, phase: "request_headers" | "request_body"): Record<string, unknown> {
  if (r.ok_response) {
    return {
      [phase]: {
        response: {
          status: "CONTINUE",
          header_mutation: { set_headers: r.ok_response.headers.map(hv), remove_headers: r.ok_response.headers_to_remove },
          clear_route_cache: true,
        },
      },
      dynamic_metadata: r.dynamic_metadata,
    };
  }
  const d = r.denied_response!;
  return {
    immediate_response: {
      status: { code: d.status.code },
      headers: { set_headers: d.headers.map(hv) },
      body: Buffer.from(d.body, "utf8"),
      details: r.status.message ?? "cas-gateway",
    },
    dynamic_metadata: r.dynamic_metadata,
  };
}

export interface ExtProcOptions {
  /** Envoy's ext_proc config buffers request bodies (request_body_mode BUFFERED): decide on the body. */
  readonly bufferedBody?: boolean;
}

export function extProcHandler(svc: DecisionService, opts: ExtProcOptions = {}): grpc.handleBidiStreamingCall<unknown, unknown> {
  return (call) => {
    let pendingHeaders: { key: string; value?: string; raw_value?: Uint8Array }[] | undefined;
    let cookies: HeaderValueOption[] = [];
    let chain: Promise<void> = Promise.resolve();
    const send = (msg: unknown) => {
      if (!call.destroyed && call.writable) call.write(msg);
    };
    const decide = async (headers: typeof pendingHeaders, phase: "request_headers" | "request_body", body?: Buffer) => {
      const ev = await svc.evaluateRaw(asCheckRequest(headers ?? [], body), "ext_proc");
      cookies = ev.response.ok_response?.response_headers_to_add ?? [];
      send(toProcessing(ev.response, phase));
    };
    const onMessage = async (raw: unknown) => {
      const p = ProcessingRequest.safeParse(raw);
      if (!p.success) {
        send({ immediate_response: { status: { code: 400 }, body: Buffer.from("400 malformed request\n"), details: "cas-gateway: malformed ProcessingRequest" } });
        return;
      }
      const m = p.data;
      if (m.request_headers) {
        const hs = m.request_headers.headers?.headers ?? [];
        if (opts.bufferedBody && m.request_headers.end_of_stream === false) {
          pendingHeaders = hs;
          send({ request_headers: { response: { status: "CONTINUE" } } });
        } else await decide(hs, "request_headers");
      } else if (m.request_body) {
        if (pendingHeaders) {
          const b = Buffer.from(m.request_body.body ?? new Uint8Array());
          const hs = pendingHeaders;
          pendingHeaders = undefined;
          await decide(hs, "request_body", b.subarray(0, MAX_BUFFERED_BODY));
        } else send({ request_body: { response: { status: "CONTINUE" } } });
      } else if (m.response_headers) {
        send({ response_headers: { response: { status: "CONTINUE", ...(cookies.length ? { header_mutation: { set_headers: cookies.map(hv) } } : {}) } } });
      } else if (m.response_body) send({ response_body: { response: { status: "CONTINUE" } } });
      else if (m.request_trailers) send({ request_trailers: {} });
      else if (m.response_trailers) send({ response_trailers: {} });
    };
    call.on("data", (raw: unknown) => {
      // Answers go back in order: one message at a time.
      chain = chain.then(() => onMessage(raw)).catch(() => {
        call.destroy();
      });
    });
    call.on("end", () => {
      void chain.finally(() => call.end());
    });
    call.on("error", () => {
      /* Envoy went away: nothing to answer */
    });
  };
}
