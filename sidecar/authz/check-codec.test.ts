// The hot-path codec against protobufjs's full codec over the same Envoy protos: a CheckRequest
// decoded by either maps to the same request, and a CheckResponse encoded by check-codec decodes
// (with proto-loader, as a grpc-js client would) to what protobufjs's own encoder gives.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { envoyCheckRequest } from "../../test/sidecar/envoy-request.js";
import { checkCodec, deserializeCheckResponse, loadEnvoyServices, serializeCheckRequest } from "../envoy-protos.js";
import { decodeCheckRequest, encodeCheckResponse } from "./check-codec.js";
import { BadRequestError, LIMITS, mapCheckRequest, type MappedRequest } from "./request.js";
import {
  APPEND_IF_EXISTS_OR_ADD,
  OVERWRITE_IF_EXISTS_OR_ADD,
  deniedResponse,
  okResponse,
  type CheckResponseOut,
} from "./response.js";

const slowDecode = (buf: Buffer): unknown => loadEnvoyServices().authorization.Check!.requestDeserialize(buf);

function mapOrError(raw: unknown): MappedRequest | string {
  try {
    return mapCheckRequest(raw);
  } catch (e) {
    return e instanceof BadRequestError ? `${e.status} ${e.message}` : `unexpected ${String(e)}`;
  }
}

/** Envoy's header_map form (encode_raw_headers): repeated HeaderValue with raw_value bytes. */
function withHeaderMap(req: Record<string, unknown>): Record<string, unknown> {
  const attrs = req.attributes as { request: { http: Record<string, unknown> } };
  const http = { ...attrs.request.http };
  const headers = http.headers as Record<string, string>;
  delete http.headers;
  http.header_map = { headers: Object.entries(headers).map(([key, v]) => ({ key, raw_value: Buffer.from(v, "latin1") })) };
  return { ...req, attributes: { ...attrs, request: { ...attrs.request, http } } };
}

describe("check-codec: CheckRequest decoding", () => {
  const cases: [string, Record<string, unknown>][] = [
    ["plain GET", envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/?ae=Folder", requestId: "r1" })],
    [
      "Basic auth, cookie, context_extensions",
      envoyCheckRequest({
        host: "usa.contoso.com",
        path: "/owa/",
        headers: { authorization: `Basic ${Buffer.from("jun@contoso.com:pw").toString("base64")}`, cookie: "a=b; c=d", "x-cas-target-server": "evil" },
        contextExtensions: { cas_site: "europe" },
        source: "198.51.100.9",
      }),
    ],
    ["body", envoyCheckRequest({ method: "POST", host: "usa.contoso.com", path: "/EWS/Exchange.asmx", body: "<soap>ü</soap>" })],
    ["raw_body", envoyCheckRequest({ method: "POST", host: "usa.contoso.com", path: "/EWS/Exchange.asmx", rawBody: Buffer.from("<x>\u00e9</x>") })],
    ["header_map form", withHeaderMap(envoyCheckRequest({ host: "europe.contoso.com", path: "/ecp/", headers: { cookie: "z=1" } }))],
    ["no http", { attributes: { source: { address: { socket_address: { address: "203.0.113.1" } } } } }],
    ["empty", {}],
  ];
  for (const [name, req] of cases) {
    it(`maps ${name} exactly as the full protobufjs decode does`, () => {
      const buf = serializeCheckRequest(req);
      expect(mapOrError(decodeCheckRequest(buf))).toEqual(mapOrError(slowDecode(buf)));
    });
  }

  it("random requests: same mapping as the full decode", () => {
    const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/);
    fc.assert(
      fc.property(
        fc.record({
          method: fc.constantFrom("GET", "POST", "get", "PROPFIND", "", "G ET"),
          host: fc.oneof(fc.constantFrom("usa.contoso.com", "europe.contoso.com:443", ""), fc.string({ maxLength: 20 })),
          path: fc.oneof(fc.constantFrom("/owa/", "/EWS/Exchange.asmx", "/Microsoft-Server-ActiveSync?Cmd=Sync"), fc.string({ maxLength: 30 })),
          headers: fc.dictionary(fc.oneof(token, fc.constant("x-cas-rules"), fc.constant("Cookie")), fc.string({ maxLength: 40 }), { maxKeys: 8 }),
          ext: fc.dictionary(token, fc.string({ maxLength: 10 }), { maxKeys: 3 }),
          body: fc.option(fc.string({ maxLength: 60 }), { nil: undefined }),
          headerMap: fc.boolean(),
        }),
        (r) => {
          let req = envoyCheckRequest({
            method: r.method,
            host: r.host,
            path: r.path,
            headers: r.headers,
            contextExtensions: r.ext,
            ...(r.body !== undefined ? { body: r.body } : {}),
          });
          if (r.headerMap) req = withHeaderMap(req);
          const buf = serializeCheckRequest(req);
          expect(mapOrError(decodeCheckRequest(buf))).toEqual(mapOrError(slowDecode(buf)));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("header limits: every way a request is mapped (decoded record used in place, plain object, header_map) accepts the limit and refuses one past it with 431", () => {
    // envoyCheckRequest's own headers (pseudo-headers included) count towards both limits.
    const base = Object.keys((envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }).attributes as { request: { http: { headers: object } } }).request.http.headers);
    const withCount = (n: number) =>
      envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: Object.fromEntries(Array.from({ length: n - base.length }, (_, i) => [`x-h${i}`, "v"])) });
    const bytesOf = (req: Record<string, unknown>) =>
      Object.entries((req.attributes as { request: { http: { headers: Record<string, string> } } }).request.http.headers).reduce((a, [k, v]) => a + k.length + v.length, 0);
    const withBytes = (n: number) => {
      const probe = envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { "x-big": "" } });
      return envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { "x-big": "a".repeat(n - bytesOf(probe)) } });
    };
    const paths = (req: Record<string, unknown>) => [mapOrError(decodeCheckRequest(serializeCheckRequest(req))), mapOrError(req), mapOrError(withHeaderMap(req))];
    for (const r of paths(withCount(LIMITS.maxHeaderCount))) expect(typeof r).toBe("object");
    expect(paths(withCount(LIMITS.maxHeaderCount + 1))).toEqual(Array(3).fill("431 too many request headers"));
    expect(bytesOf(withBytes(LIMITS.maxHeaderBytes))).toBe(LIMITS.maxHeaderBytes);
    for (const r of paths(withBytes(LIMITS.maxHeaderBytes))) expect(typeof r).toBe("object");
    expect(paths(withBytes(LIMITS.maxHeaderBytes + 1))).toEqual(Array(3).fill("431 request headers too large"));
  });

  it("malformed wire data throws (grpc-js answers INTERNAL), never hangs or returns garbage silently", () => {
    const good = serializeCheckRequest(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/" }));
    expect(() => decodeCheckRequest(good.subarray(0, good.length - 7))).toThrow();
    expect(() => decodeCheckRequest(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]))).toThrow();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          const d = decodeCheckRequest(bytes);
          mapOrError(d);
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("check-codec: CheckResponse encoding", () => {
  const { CheckResponse } = checkCodec();
  const reference = (r: CheckResponseOut): Buffer => Buffer.from(CheckResponse.encode(CheckResponse.fromObject(r)).finish());
  // Proto3 semantics: an explicitly encoded empty string equals an absent one; compare with defaults filled in.
  const read = (buf: Buffer): unknown => CheckResponse.toObject(CheckResponse.decode(buf), { defaults: true, enums: String, longs: String });

  const ok = okResponse(
    {
      outcome: "proxy",
      targetSite: "europe",
      targetServer: "ex2010-eu",
      cluster: "server-ex2010-eu-owa",
      rules: ["R-OWA-4", "R-LB-2"],
      trace: [],
      affinity: "set",
      service: "Owa",
    } as Parameters<typeof okResponse>[0],
    ["x-cas-foo"],
    ["cas-affinity=abc.def; Path=/owa; Max-Age=28800; Secure; HttpOnly; SameSite=Lax"],
  );
  const responses: [string, CheckResponseOut][] = [
    ["ok with cookie", ok],
    ["ok again (cached pieces)", ok],
    ["denied 302", deniedResponse("redirect-silent", ["R-OWA-2"], 302, { location: "https://europe.contoso.com/owa/" }, "", "redirect-silent")],
    ["denied page", deniedResponse("error", ["R-OWA-5"], 503, { "content-type": "text/html; charset=utf-8" }, "<p>ü</p>", "error")],
    ["451 carrier", deniedResponse("redirect-451", ["R-EAS-4"], 403, { "x-ms-location": "https://e/x" }, "", "redirect-451")],
    [
      "append actions",
      {
        status: { code: 0 },
        ok_response: {
          headers: [{ header: { key: "a", value: "" }, append_action: APPEND_IF_EXISTS_OR_ADD }],
          headers_to_remove: [],
          response_headers_to_add: [{ header: { key: "b", value: "1" }, append_action: OVERWRITE_IF_EXISTS_OR_ADD }],
        },
        dynamic_metadata: { fields: {} },
      },
    ],
  ];
  for (const [name, r] of responses) {
    it(`${name}: decodes to what protobufjs encodes`, () => {
      expect(read(encodeCheckResponse(r))).toEqual(read(reference(r)));
    });
  }

  it("random header values and bodies round-trip", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 300 })), { maxLength: 6 }),
        fc.string({ maxLength: 2000 }),
        fc.integer({ min: 100, max: 599 }),
        (hs, body, status) => {
          const r = deniedResponse("error", ["R-X-1"], status, Object.fromEntries(hs), body, "m");
          expect(read(encodeCheckResponse(r))).toEqual(read(reference(r)));
        },
      ),
      { numRuns: 300 },
    );
  });
});
