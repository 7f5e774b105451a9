// The Check hot path's wire codec, over Envoy's own protos (field numbers and types are read from
// the protobufjs reflection of envoy/service/auth/v3/external_auth.proto at start-up, never written
// down here). Decoding walks the CheckRequest once and keeps only what the sidecar reads
// (attributes.request.http, the source address, context_extensions), skipping the rest on the wire
// instead of building objects for it; encoding writes a CheckResponse from pre-encoded pieces
// (x-cas-* header options, the headers_to_remove list, dynamic metadata), cached by content, so
// the constant parts of an answer are encoded once. Both are checked against protobufjs's full
// codec in check-codec.test.ts.
import protobuf from "protobufjs";
import { checkCodec } from "../envoy-protos.js";
import type { CheckResponseOut, HeaderValueOption } from "./response.js";

/** One entry of HttpRequest.header_map (Envoy's `encode_raw_headers` form). */
export interface WireHeader {
  readonly key: string;
  readonly value: string;
  readonly raw_value?: Uint8Array;
}

/**
 * The fields of a CheckRequest the sidecar reads, as decoded from the wire. Every value has the
 * type the proto gives it (the decoder guarantees it), so no schema pass is needed after this.
 */
export class DecodedCheckRequest {
  hasHttp = false;
  method = "";
  host = "";
  path = "";
  scheme = "";
  query = "";
  body = "";
  rawBody: Uint8Array | undefined = undefined;
  /**
   * HttpRequest.headers (map<string,string>; a repeated key keeps the last value, as protobuf maps
   * do), as a null-prototype record this request owns: request mapping may adopt it in place.
   */
  headers: Record<string, string> | undefined = undefined;
  readonly headersOwned = true;
  /** HttpRequest.header_map.headers, when Envoy sends that form instead. */
  headerList: WireHeader[] | undefined = undefined;
  sourceAddress = "";
  /** SocketAddress.port_value of the downstream connection (0 when absent): with the address, the connection's key (R-LB-8). */
  sourcePort = 0;
  contextExtensions: Record<string, string> = EMPTY;
}

const EMPTY: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>);

// Wire types (protobuf encoding spec).
const VARINT = 0;
const LEN = 2;

function fieldId(t: protobuf.Type, name: string): number {
  const f = t.fields[name];
  if (!f) throw new Error(`${t.fullName} has no field ${name}`);
  return f.id;
}
function sub(t: protobuf.Type, name: string): protobuf.Type {
  const f = t.fields[name];
  f?.resolve();
  if (!f || !(f.resolvedType instanceof protobuf.Type)) throw new Error(`${t.fullName}.${name} is not a message`);
  return f.resolvedType;
}

interface Ids {
  req: { attributes: number };
  attrs: { source: number; request: number; context_extensions: number };
  peer: { address: number };
  address: { socket_address: number };
  socket: { address: number; port_value: number };
  request: { http: number };
  http: {
    method: number;
    headers: number;
    header_map: number;
    path: number;
    host: number;
    scheme: number;
    query: number;
    body: number;
    raw_body: number;
  };
  headerMap: { headers: number };
  headerValue: { key: number; value: number; raw_value: number };
  res: { status: number; denied_response: number; ok_response: number; dynamic_metadata: number };
  status: { code: number; message: number };
  denied: { status: number; headers: number; body: number };
  httpStatus: { code: number };
  ok: { headers: number; headers_to_remove: number; response_headers_to_add: number };
  hvo: { header: number; append_action: number };
  struct: { fields: number };
  value: { string_value: number };
}

let ids: Ids | undefined;

function loadIds(): Ids {
  if (ids) return ids;
  const { CheckRequest, CheckResponse } = checkCodec();
  const attrs = sub(CheckRequest, "attributes");
  const peer = sub(attrs, "source");
  const address = sub(peer, "address");
  const socket = sub(address, "socket_address");
  const request = sub(attrs, "request");
  const http = sub(request, "http");
  const headerMap = sub(http, "header_map");
  const headerValue = sub(headerMap, "headers");
  const status = sub(CheckResponse, "status");
  const denied = sub(CheckResponse, "denied_response");
  const httpStatus = sub(denied, "status");
  const ok = sub(CheckResponse, "ok_response");
  const hvo = sub(ok, "headers");
  const struct = sub(CheckResponse, "dynamic_metadata");
  const structFields = struct.fields.fields;
  structFields?.resolve();
  const value = structFields?.resolvedType;
  if (!(value instanceof protobuf.Type)) throw new Error("google.protobuf.Struct.fields has no message value type");
  const f = (t: protobuf.Type, ...names: string[]) => Object.fromEntries(names.map((n) => [n, fieldId(t, n)]));
  // protobufjs ships google/protobuf/struct.proto with camelCase names (stringValue); accept either.
  const stringValue = value.fields.string_value ?? value.fields.stringValue;
  if (!stringValue) throw new Error("google.protobuf.Value has no string_value");
  ids = {
    req: f(CheckRequest, "attributes") as Ids["req"],
    attrs: f(attrs, "source", "request", "context_extensions") as Ids["attrs"],
    peer: f(peer, "address") as Ids["peer"],
    address: f(address, "socket_address") as Ids["address"],
    socket: f(socket, "address", "port_value") as Ids["socket"],
    request: f(request, "http") as Ids["request"],
    http: f(http, "method", "headers", "header_map", "path", "host", "scheme", "query", "body", "raw_body") as Ids["http"],
    headerMap: f(headerMap, "headers") as Ids["headerMap"],
    headerValue: f(headerValue, "key", "value", "raw_value") as Ids["headerValue"],
    res: f(CheckResponse, "status", "denied_response", "ok_response", "dynamic_metadata") as Ids["res"],
    status: f(status, "code", "message") as Ids["status"],
    denied: f(denied, "status", "headers", "body") as Ids["denied"],
    httpStatus: f(httpStatus, "code") as Ids["httpStatus"],
    ok: f(ok, "headers", "headers_to_remove", "response_headers_to_add") as Ids["ok"],
    hvo: f(hvo, "header", "append_action") as Ids["hvo"],
    struct: f(struct, "fields") as Ids["struct"],
    value: { string_value: stringValue.id },
  };
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Decoding: straight-line loops over one cursor (the decoder is synchronous, so module state is
// safe); a known field with an unexpected wire type is skipped, as protobuf's own parsers treat it.

class WireError extends Error {}

let B: Buffer = Buffer.alloc(0);
let P = 0;
const utf8 = (s: number, e: number): string => (B as unknown as { utf8Slice(s: number, e: number): string }).utf8Slice(s, e);

function varint(end: number): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (P >= end) throw new WireError("truncated varint");
    const b = B[P++]!;
    result += (b & 0x7f) * mul;
    if (b < 0x80) return result;
    mul *= 128;
  }
  throw new WireError("varint longer than 10 bytes");
}

/** Reads a length prefix; returns the end offset of the length-delimited field. */
function lenEnd(end: number): number {
  const n = varint(end);
  const e = P + n;
  if (e > end) throw new WireError("length-delimited field runs past its message");
  return e;
}

function readString(end: number): string {
  const e = lenEnd(end);
  const s = e > P ? utf8(P, e) : "";
  P = e;
  return s;
}

function readBytes(end: number): Uint8Array {
  const e = lenEnd(end);
  const b = B.subarray(P, e);
  P = e;
  return b;
}

function skip(wire: number, end: number): void {
  switch (wire) {
    case VARINT:
      varint(end);
      return;
    case 1:
      P += 8;
      break;
    case LEN:
      P = lenEnd(end);
      return;
    case 5:
      P += 4;
      break;
    default:
      // 3/4: proto2 groups, which no Envoy message uses; 6/7 do not exist.
      throw new WireError(`unsupported wire type ${wire}`);
  }
  if (P > end) throw new WireError("field runs past its message");
}

function done(end: number): void {
  if (P !== end) throw new WireError("message length mismatch");
}

/** A map<string,string> entry (key = 1, value = 2 by the protobuf map encoding) into `into`. */
function readMapEntry(end: number, into: Record<string, string> | Map<string, string>): void {
  const e = lenEnd(end);
  let k = "";
  let v = "";
  while (P < e) {
    const tag = varint(e);
    const wire = tag % 8;
    const id = (tag - wire) / 8;
    if (id === 1 && wire === LEN) k = readString(e);
    else if (id === 2 && wire === LEN) v = readString(e);
    else skip(wire, e);
  }
  done(e);
  if (into instanceof Map) into.set(k, v);
  else into[k] = v;
}

function readHeaderValue(end: number, I: Ids): WireHeader {
  const e = lenEnd(end);
  let key = "";
  let value = "";
  let raw: Uint8Array | undefined;
  while (P < e) {
    const tag = varint(e);
    const wire = tag % 8;
    const id = (tag - wire) / 8;
    if (wire !== LEN) skip(wire, e);
    else if (id === I.headerValue.key) key = readString(e);
    else if (id === I.headerValue.value) value = readString(e);
    else if (id === I.headerValue.raw_value) raw = readBytes(e);
    else skip(wire, e);
  }
  done(e);
  return raw ? { key, value, raw_value: raw } : { key, value };
}

function readHeaderMap(end: number, out: DecodedCheckRequest, I: Ids): void {
  const e = lenEnd(end);
  while (P < e) {
    const tag = varint(e);
    const wire = tag % 8;
    const id = (tag - wire) / 8;
    if (id === I.headerMap.headers && wire === LEN) (out.headerList ??= []).push(readHeaderValue(e, I));
    else skip(wire, e);
  }
  done(e);
}

function readHttp(end: number, out: DecodedCheckRequest, I: Ids): void {
  const e = lenEnd(end);
  const H = I.http;
  out.hasHttp = true;
  while (P < e) {
    const tag = varint(e);
    const wire = tag % 8;
    const id = (tag - wire) / 8;
    if (wire !== LEN) skip(wire, e);
    else if (id === H.headers) readMapEntry(e, (out.headers ??= Object.create(null) as Record<string, string>));
    else if (id === H.method) out.method = readString(e);
    else if (id === H.path) out.path = readString(e);
    else if (id === H.host) out.host = readString(e);
    else if (id === H.scheme) out.scheme = readString(e);
    else if (id === H.query) out.query = readString(e);
    else if (id === H.body) out.body = readString(e);
    else if (id === H.raw_body) out.rawBody = readBytes(e);
    else if (id === H.header_map) readHeaderMap(e, out, I);
    else skip(wire, e);
  }
  done(e);
}

function readRequest(end: number, out: DecodedCheckRequest, I: Ids): void {
  const e = lenEnd(end);
  while (P < e) {
    const tag = varint(e);
    const wire = tag % 8;
    const id = (tag - wire) / 8;
    if (id === I.request.http && wire === LEN) readHttp(e, out, I);
    else skip(wire, e);
  }
  done(e);
}

/** attributes.source: Peer.address → Address.socket_address → SocketAddress.address. */
function readSource(end: number, out: DecodedCheckRequest, I: Ids): void {
  const e = lenEnd(end);
  while (P < e) {
    const tag = varint(e);
    const wire = tag % 8;
    const id = (tag - wire) / 8;
    if (id === I.peer.address && wire === LEN) {
      const ae = lenEnd(e);
      while (P < ae) {
        const t2 = varint(ae);
        const w2 = t2 % 8;
        const id2 = (t2 - w2) / 8;
        if (id2 === I.address.socket_address && w2 === LEN) {
          const se = lenEnd(ae);
          while (P < se) {
            const t3 = varint(se);
            const w3 = t3 % 8;
            const id3 = (t3 - w3) / 8;
            if (id3 === I.socket.address && w3 === LEN) out.sourceAddress = readString(se);
            else if (id3 === I.socket.port_value && w3 === VARINT) out.sourcePort = varint(se);
            else skip(w3, se);
          }
          done(se);
        } else skip(w2, ae);
      }
      done(ae);
    } else skip(wire, e);
  }
  done(e);
}

function readAttributes(end: number, out: DecodedCheckRequest, I: Ids): void {
  const e = lenEnd(end);
  while (P < e) {
    const tag = varint(e);
    const wire = tag % 8;
    const id = (tag - wire) / 8;
    if (wire !== LEN) skip(wire, e);
    else if (id === I.attrs.request) readRequest(e, out, I);
    else if (id === I.attrs.source) readSource(e, out, I);
    else if (id === I.attrs.context_extensions) {
      if (out.contextExtensions === EMPTY) out.contextExtensions = Object.create(null) as Record<string, string>;
      readMapEntry(e, out.contextExtensions);
    } else skip(wire, e);
  }
  done(e);
}

/**
 * Bytes that are not a CheckRequest, kept as a request value: grpc-js answers INTERNAL when a
 * deserializer throws, and the sidecar's contract is a CheckResponse for every Check (a 400 here).
 */
export class MalformedCheckRequest {
  constructor(readonly reason: string) {}
}

/** decodeCheckRequest for the gRPC service: malformed bytes give a MalformedCheckRequest instead of a throw. */
export function decodeCheckRequestOrMalformed(buf: Uint8Array): DecodedCheckRequest | MalformedCheckRequest {
  try {
    return decodeCheckRequest(buf);
  } catch (err) {
    return new MalformedCheckRequest(err instanceof Error ? err.message : String(err));
  }
}

/** Decode a serialized envoy.service.auth.v3.CheckRequest. Throws on malformed wire data. */
export function decodeCheckRequest(buf: Uint8Array): DecodedCheckRequest {
  const I = loadIds();
  const out = new DecodedCheckRequest();
  B = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  P = 0;
  try {
    const end = B.length;
    while (P < end) {
      const tag = varint(end);
      const wire = tag % 8;
      const id = (tag - wire) / 8;
      if (id === I.req.attributes && wire === LEN) readAttributes(end, out, I);
      else skip(wire, end);
    }
    done(end);
  } finally {
    // Do not keep the last request's bytes alive.
    B = EMPTY_BUF;
  }
  return out;
}

const EMPTY_BUF = Buffer.alloc(0);

// ---------------------------------------------------------------------------------------------
// Encoding

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** tag + length + payload, for a length-delimited field. */
function lenField(id: number, payload: Buffer): Buffer {
  const tag = (id << 3) | LEN;
  const head = varintLength(tag) + varintLength(payload.length);
  const out = Buffer.allocUnsafe(head + payload.length);
  let p = writeVarint(out, 0, tag);
  p = writeVarint(out, p, payload.length);
  payload.copy(out, p);
  return out;
}

function varintField(id: number, value: number): Buffer {
  // int32/enum: negative values are sign-extended to 10 bytes; the sidecar's are never negative.
  if (value < 0 || !Number.isInteger(value)) throw new RangeError(`cannot encode ${value} as a non-negative varint`);
  const tag = (id << 3) | VARINT;
  const out = Buffer.allocUnsafe(varintLength(tag) + varintLength(value));
  writeVarint(out, writeVarint(out, 0, tag), value);
  return out;
}

const stringField = (id: number, s: string): Buffer => lenField(id, Buffer.from(s, "utf8"));

/** HeaderValueOption bytes as a field of its parent, by (field, action) → key → value; bounded. */
const hvoCache = new Map<number, Map<string, Map<string, Buffer>>>();
/** headers_to_remove bytes, by list identity (response.ts reuses its lists) or by content. */
const removeByList = new WeakMap<readonly string[], Buffer>();
const removeByContent = new Map<string, Buffer>();
/** dynamic_metadata bytes, by object identity (response.ts reuses one object per decision name) or content. */
const metadataByObject = new WeakMap<object, Buffer>();
const metadataByContent = new Map<string, Buffer>();
/** CheckResponse.status bytes by code and message. */
const statusCache = new Map<number, Map<string, Buffer>>();
/** DeniedHttpResponse.status bytes by HTTP code. */
const httpStatusCache = new Map<number, Buffer>();

function bounded<K, V>(m: Map<K, V>, max: number): Map<K, V> {
  if (m.size >= max) m.clear();
  return m;
}

function headerOption(id: number, o: HeaderValueOption): Buffer {
  const slot = id * 8 + o.append_action;
  let byKey = hvoCache.get(slot);
  if (!byKey) hvoCache.set(slot, (byKey = new Map()));
  let byValue = byKey.get(o.header.key);
  if (!byValue) bounded(byKey, 256).set(o.header.key, (byValue = new Map()));
  let b = byValue.get(o.header.value);
  if (!b) bounded(byValue, 1024).set(o.header.value, (b = encodeHeaderOption(id, o)));
  return b;
}

/** HeaderValueOption { header { key, value }, append_action } as field `id`, in one allocation. */
function encodeHeaderOption(id: number, o: HeaderValueOption): Buffer {
  const I = loadIds();
  const kLen = Buffer.byteLength(o.header.key, "utf8");
  const vLen = Buffer.byteLength(o.header.value, "utf8");
  const kTag = (I.headerValue.key << 3) | LEN;
  const vTag = (I.headerValue.value << 3) | LEN;
  const hTag = (I.hvo.header << 3) | LEN;
  const aTag = (I.hvo.append_action << 3) | VARINT;
  const outerTag = (id << 3) | LEN;
  if (o.append_action < 0) throw new RangeError("negative append_action");
  const headerLen = varintLength(kTag) + varintLength(kLen) + kLen + varintLength(vTag) + varintLength(vLen) + vLen;
  const actionLen = o.append_action !== 0 ? varintLength(aTag) + varintLength(o.append_action) : 0;
  const innerLen = varintLength(hTag) + varintLength(headerLen) + headerLen + actionLen;
  const out = Buffer.allocUnsafe(varintLength(outerTag) + varintLength(innerLen) + innerLen);
  let p = writeVarint(out, 0, outerTag);
  p = writeVarint(out, p, innerLen);
  p = writeVarint(out, p, hTag);
  p = writeVarint(out, p, headerLen);
  p = writeVarint(out, p, kTag);
  p = writeVarint(out, p, kLen);
  p += out.write(o.header.key, p, "utf8");
  p = writeVarint(out, p, vTag);
  p = writeVarint(out, p, vLen);
  p += out.write(o.header.value, p, "utf8");
  if (actionLen) {
    p = writeVarint(out, p, aTag);
    writeVarint(out, p, o.append_action);
  }
  return out;
}

function removeList(list: readonly string[]): Buffer {
  let b = removeByList.get(list);
  if (b) return b;
  const key = list.join("\u0000");
  b = removeByContent.get(key);
  if (!b) {
    const I = loadIds();
    b = Buffer.concat(list.map((h) => stringField(I.ok.headers_to_remove, h)));
    bounded(removeByContent, 256).set(key, b);
  }
  removeByList.set(list, b);
  return b;
}

/** CheckResponse.dynamic_metadata (a Struct of string values) as a field. */
function dynamicMetadata(md: CheckResponseOut["dynamic_metadata"]): Buffer {
  let b = metadataByObject.get(md);
  if (b) return b;
  const fields = md.fields;
  const names = Object.keys(fields);
  const key = names.map((n) => `${n}\u0000${fields[n]!.stringValue}`).join("\u0001");
  b = metadataByContent.get(key);
  if (!b) {
    const I = loadIds();
    const entries = names.map((n) => {
      const value = stringField(I.value.string_value, fields[n]!.stringValue);
      // map entry: key = 1, value = 2 (the protobuf map encoding).
      return lenField(I.struct.fields, Buffer.concat([stringField(1, n), lenField(2, value)]));
    });
    b = lenField(I.res.dynamic_metadata, Buffer.concat(entries));
    bounded(metadataByContent, 64).set(key, b);
  }
  metadataByObject.set(md, b);
  return b;
}

function statusField(code: number, message: string): Buffer {
  let byMessage = statusCache.get(code);
  if (!byMessage) bounded(statusCache, 32).set(code, (byMessage = new Map()));
  let b = byMessage.get(message);
  if (!b) {
    const I = loadIds();
    const parts: Buffer[] = [];
    if (code !== 0) parts.push(varintField(I.status.code, code));
    if (message) parts.push(stringField(I.status.message, message));
    b = lenField(I.res.status, Buffer.concat(parts));
    bounded(byMessage, 64).set(message, b);
  }
  return b;
}

function httpStatusField(code: number): Buffer {
  let b = httpStatusCache.get(code);
  if (!b) {
    const I = loadIds();
    b = lenField(I.denied.status, code !== 0 ? varintField(I.httpStatus.code, code) : Buffer.alloc(0));
    bounded(httpStatusCache, 128).set(code, b);
  }
  return b;
}

/**
 * Encode a CheckResponseOut (the shape response.ts builds) as an envoy.service.auth.v3.CheckResponse:
 * fields in proto order, every constant piece from the caches, one allocation for the result.
 */
export function encodeCheckResponse(r: CheckResponseOut): Buffer {
  const I = loadIds();
  const status = statusField(r.status.code, r.status.message ?? "");
  const md = dynamicMetadata(r.dynamic_metadata);
  const inner: Buffer[] = [];
  let innerId = 0;
  if (r.ok_response) {
    const o = r.ok_response;
    innerId = I.res.ok_response;
    for (const h of o.headers) inner.push(headerOption(I.ok.headers, h));
    if (o.headers_to_remove.length) inner.push(removeList(o.headers_to_remove));
    // Set-Cookie values differ per user and second: encoded directly, not cached.
    for (const h of o.response_headers_to_add) inner.push(encodeHeaderOption(I.ok.response_headers_to_add, h));
  } else if (r.denied_response) {
    const d = r.denied_response;
    innerId = I.res.denied_response;
    inner.push(httpStatusField(d.status.code));
    for (const h of d.headers) inner.push(headerOption(I.denied.headers, h));
    if (d.body) inner.push(stringField(I.denied.body, d.body));
  }
  let innerLen = 0;
  for (const b of inner) innerLen += b.length;
  const innerTag = (innerId << 3) | LEN;
  const head = innerId ? varintLength(innerTag) + varintLength(innerLen) : 0;
  const out = Buffer.allocUnsafe(status.length + head + innerLen + md.length);
  let p = status.copy(out, 0);
  if (innerId) {
    p = writeVarint(out, p, innerTag);
    p = writeVarint(out, p, innerLen);
    for (const b of inner) p += b.copy(out, p);
  }
  md.copy(out, p);
  return out;
}
