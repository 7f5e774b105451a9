// CheckRequest (envoy.service.auth.v3, decoded with keepCase) → ClientRequest. Reads the request as
// Envoy sends it: attributes.request.http (method, host, path with query, lower-case headers or
// header_map, scheme, body / raw_body), attributes.source.address, context_extensions.
// Client-sent x-cas-* headers are dropped here, so the engine never sees them.
import { z } from "zod";
import type { ClientRequest } from "../decision/types.js";
import { DecodedCheckRequest, MalformedCheckRequest } from "./check-codec.js";

export const LIMITS = {
  /** Total header bytes accepted (Envoy's own default limit is 60 KiB). */
  maxHeaderBytes: 64 * 1024,
  maxHeaderCount: 200,
  /** Body bytes handed to the engine (EWS SOAP, Autodiscover, FBA logon); the rest is cut off. */
  maxBodyBytes: 64 * 1024,
  maxPathBytes: 16 * 1024,
} as const;

const str = z.string();
// A decoded message's unset bytes field reads as the prototype default, an empty array.
const bytes = z.union([z.instanceof(Uint8Array), z.array(z.number()).max(0)]);
/**
 * A map<string,string> as decoded: checked in place (every key and value a string, bounded count)
 * rather than rebuilt entry by entry, which is what an object/record schema would do per request.
 */
const stringMap = z.custom<Record<string, string>>((v) => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  let n = 0;
  for (const k in v) {
    if (++n > 10_000 || typeof (v as Record<string, unknown>)[k] !== "string") return false;
  }
  return true;
}, "expected a map of strings");

const HeaderValue = z.object({ key: str, value: str.optional(), raw_value: bytes.optional() });

const HttpRequest = z.object({
  id: str.optional(),
  method: str.optional(),
  headers: stringMap.optional(),
  header_map: z.object({ headers: z.array(HeaderValue).optional() }).nullish(),
  path: str.optional(),
  host: str.optional(),
  scheme: str.optional(),
  query: str.optional(),
  body: str.optional(),
  raw_body: bytes.optional(),
});

const SocketAddress = z.object({ address: str.optional(), port_value: z.union([z.number(), str]).optional() });

// Message-typed fields are `.nullish()`: a decoded protobufjs message reads unset ones as null.
// Plain z.object (strip): it reads only the keys named here, where a loose object would walk every
// enumerable key of a decoded message, prototype defaults included, several times slower.

export const CheckRequestSchema = z.object({
  attributes: z
    .object({
      source: z.object({ address: z.object({ socket_address: SocketAddress.nullish() }).nullish() }).nullish(),
      request: z.object({ http: HttpRequest.nullish() }).nullish(),
      context_extensions: stringMap.optional(),
    })
    .nullish(),
});
export type CheckRequestIn = z.infer<typeof CheckRequestSchema>;

export class BadRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "BadRequestError";
  }
}

export interface MappedRequest {
  readonly request: ClientRequest;
  /** x-request-id from Envoy, if any. */
  readonly requestId?: string;
  readonly contextExtensions: Readonly<Record<string, string>>;
  /** Client-sent x-cas-* header names (dropped; Envoy is told to remove them). */
  readonly casHeadersSent: readonly string[];
  /** Whether the body was longer than the limit and cut. */
  readonly bodyTruncated: boolean;
}

const METHOD_RE = /^[A-Z][A-Z0-9_-]{0,31}$/;
const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/**
 * The parts of a CheckRequest the sidecar reads, flattened: what check-codec.ts decodes from the
 * wire (DecodedCheckRequest has this shape) and what a nested object is reduced to after its schema.
 */
export interface CheckFields {
  readonly hasHttp: boolean;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly scheme: string;
  readonly query: string;
  readonly body: string;
  readonly rawBody?: Uint8Array | undefined;
  /** A map or a plain record (check-codec decodes a null-prototype record). */
  readonly headers?: ReadonlyMap<string, string> | Readonly<Record<string, string>> | undefined;
  /** The headers record belongs to this request (a fresh decode): mapping may use it in place. */
  readonly headersOwned?: boolean;
  readonly headerList?: readonly { key: string; value?: string | undefined; raw_value?: Uint8Array | readonly number[] | undefined }[] | undefined;
  readonly sourceAddress: string;
  /** Downstream connection's source port (0 or absent when unknown). */
  readonly sourcePort?: number;
  readonly contextExtensions: Readonly<Record<string, string>>;
}

/** Map a CheckRequest: a nested object (schema-checked here) or the wire decoder's fields. Throws BadRequestError (never anything else) on unusable input. */
export function mapCheckRequest(raw: unknown): MappedRequest {
  if (raw instanceof DecodedCheckRequest) return mapCheckFields(raw);
  if (raw instanceof MalformedCheckRequest) throw new BadRequestError(400, `malformed CheckRequest: ${raw.reason}`);
  const parsed = CheckRequestSchema.safeParse(raw);
  if (!parsed.success) throw new BadRequestError(400, `malformed CheckRequest: ${parsed.error.issues[0]?.path.join(".") ?? "?"}`);
  const attrs = parsed.data.attributes ?? {};
  const http = attrs.request?.http;
  const rb = http?.raw_body;
  return mapCheckFields({
    hasHttp: !!http,
    method: http?.method ?? "",
    host: http?.host ?? "",
    path: http?.path ?? "",
    scheme: http?.scheme ?? "",
    query: http?.query ?? "",
    body: http?.body ?? "",
    rawBody: rb instanceof Uint8Array ? rb : undefined,
    headers: http?.headers,
    headerList: http?.header_map?.headers,
    sourceAddress: attrs.source?.address?.socket_address?.address ?? "",
    sourcePort: portOf(attrs.source?.address?.socket_address?.port_value),
    contextExtensions: attrs.context_extensions ?? {},
  });
}

function portOf(v: number | string | undefined): number | undefined {
  const n = typeof v === "string" ? Number(v) : v;
  return n !== undefined && Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

function hasEntries(o: Readonly<Record<string, string>> | undefined): o is Readonly<Record<string, string>> {
  if (!o) return false;
  for (const _ in o) return true;
  return false;
}

/** The checks and normalisation every CheckRequest goes through, whichever way it was decoded. */
export function mapCheckFields(http: CheckFields): MappedRequest {
  if (!http.hasHttp) throw new BadRequestError(400, "CheckRequest carries no attributes.request.http");

  // Envoy sends either the headers map or (encode_raw_headers) header_map.
  const hs = http.headers;
  const adopted = http.headersOwned && !(hs instanceof Map) && hs ? adoptHeaders(hs as Record<string, string>) : undefined;
  let headers: Record<string, string>;
  let casHeadersSent: string[] | undefined;
  if (adopted) {
    headers = adopted.headers;
    casHeadersSent = adopted.cas;
  } else {
    const hc = new HeaderCollector();
    if (hs instanceof Map && hs.size > 0) for (const [k, v] of hs as ReadonlyMap<string, string>) hc.add(k, v);
    else if (!(hs instanceof Map) && hasEntries(hs as Readonly<Record<string, string>> | undefined)) {
      const rec = hs as Readonly<Record<string, string>>;
      for (const k in rec) hc.add(k, rec[k]!);
    } else if (http.headerList) {
      for (const h of http.headerList) {
        const raw = h.raw_value instanceof Uint8Array && h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString("latin1") : "";
        hc.add(h.key, h.value || raw);
      }
    }
    headers = hc.headers;
    casHeadersSent = hc.cas;
  }

  const method = http.method.toUpperCase();
  if (!METHOD_RE.test(method)) throw new BadRequestError(400, "missing or invalid HTTP method");
  const host = http.host.trim();
  if (!host || host.length > 255 || /[\s/\\@]/.test(host)) throw new BadRequestError(400, "missing or invalid Host");
  let path = http.path;
  if (!path.startsWith("/")) throw new BadRequestError(400, "missing or invalid path");
  if (path.length > LIMITS.maxPathBytes) throw new BadRequestError(414, "request path too long");
  // Envoy's path already includes the query; older versions also set `query` separately.
  if (http.query && !path.includes("?")) path = `${path}?${http.query}`;
  const scheme = http.scheme === "http" ? "http" : "https";

  let body: string | undefined;
  let bodyTruncated = false;
  const rb = http.rawBody;
  if (rb instanceof Uint8Array && rb.length > 0) {
    const b = Buffer.from(rb.buffer, rb.byteOffset, rb.byteLength);
    bodyTruncated = b.length > LIMITS.maxBodyBytes;
    body = b.subarray(0, LIMITS.maxBodyBytes).toString("utf8");
  } else if (http.body) {
    bodyTruncated = http.body.length > LIMITS.maxBodyBytes;
    body = http.body.slice(0, LIMITS.maxBodyBytes);
  }

  // Optional fields assigned, not spread: a conditional spread builds a throw-away object per request.
  const sa = http.sourceAddress;
  const request: { -readonly [K in keyof ClientRequest]: ClientRequest[K] } = { method, host, path, scheme, headers };
  if (body !== undefined) request.body = body;
  if (sa) request.sourceAddress = sa;
  const sp = http.sourcePort;
  if (sa && sp !== undefined && sp > 0 && sp < 65536) request.sourcePort = sp;
  const rid = headers["x-request-id"];
  const mapped: { -readonly [K in keyof MappedRequest]: MappedRequest[K] } = {
    request,
    contextExtensions: http.contextExtensions,
    casHeadersSent: casHeadersSent ? [...new Set<string>(casHeadersSent)] : NO_NAMES,
    bodyTruncated,
  };
  if (rid && rid.length <= 200) mapped.requestId = rid;
  return mapped;
}

const NO_NAMES: readonly string[] = Object.freeze([]);

/**
 * Envoy's usual headers map, used in place: when every name is already a lower-case token (or a
 * pseudo-header), HeaderCollector would copy it unchanged but for dropping the pseudo-headers and the
 * x-cas-* names, so those are deleted from the record instead of copying the rest. Same limits, same
 * result; undefined (HeaderCollector decides) when any name needs lower-casing or is not a token.
 */
function adoptHeaders(rec: Record<string, string>): { headers: Record<string, string>; cas: string[] | undefined } | undefined {
  const budget = new HeaderBudget();
  let drop: string[] | undefined;
  let cas: string[] | undefined;
  for (const k in rec) {
    budget.take(k, rec[k]!);
    if (k.charCodeAt(0) === 58 /* : */) (drop ??= []).push(k);
    else if (!HEADER_NAME_RE.test(k)) return undefined;
    else if (k.startsWith("x-cas-")) {
      (drop ??= []).push(k);
      (cas ??= []).push(k);
    }
  }
  if (drop) for (const k of drop) delete rec[k];
  return { headers: rec, cas };
}

/** The request header limits, counted over every header (pseudo-headers included): 431 past either. */
class HeaderBudget {
  private count = 0;
  private bytes = 0;

  take(name: string, value: string): void {
    if (++this.count > LIMITS.maxHeaderCount) throw new BadRequestError(431, "too many request headers");
    this.bytes += name.length + value.length;
    if (this.bytes > LIMITS.maxHeaderBytes) throw new BadRequestError(431, "request headers too large");
  }
}

/** Lower-cases, bounds and merges request headers; client-sent x-cas-* names are set aside. */
class HeaderCollector {
  readonly headers: Record<string, string> = Object.create(null) as Record<string, string>;
  cas: string[] | undefined;
  private readonly budget = new HeaderBudget();

  add(name: string, value: string): void {
    const k = name.toLowerCase();
    this.budget.take(k, value);
    if (k.startsWith("x-cas-")) {
      (this.cas ??= []).push(k);
      return;
    }
    // Pseudo-headers (:authority, :path, ...) are read from their own fields; odd names are dropped.
    if (!HEADER_NAME_RE.test(k)) return;
    const h = this.headers;
    const prev = h[k];
    h[k] = prev !== undefined ? (k === "cookie" ? `${prev}; ${value}` : `${prev},${value}`) : value;
  }
}

/** Credentials for the SSO form: an FBA logon POST body (username/password) or a Basic header. */
export function credentialsOf(req: ClientRequest): { username: string; password: string } | undefined {
  const ct = req.headers["content-type"] ?? "";
  if (req.body && /application\/x-www-form-urlencoded/i.test(ct)) {
    try {
      const form = new URLSearchParams(req.body);
      const username = form.get("username");
      const password = form.get("password");
      if (username && password !== null) return { username, password };
    } catch {
      /* malformed form: no credentials */
    }
  }
  const auth = req.headers.authorization;
  if (auth && /^basic\s+/i.test(auth)) {
    const b64 = auth.replace(/^basic\s+/i, "").trim();
    if (b64.length > 4096 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
    const text = Buffer.from(b64, "base64").toString("utf8");
    const colon = text.indexOf(":");
    if (colon > 0) return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  return undefined;
}
