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
  /** HttpRequest.headers (map<string,string>; a repeated key keeps the last value, as protobuf maps do). */
  headers: Record<string, string> | undefined = undefined;
  /** HttpRequest.header_map.headers, when Envoy sends that form instead. */
  headerList: WireHeader[] | undefined = undefined;
  sourceAddress = "";
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
  socket: { address: number };
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
    socket: f(socket, "address") as Ids["socket"],
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
// Decoding

class WireError extends Error {}

/** Read a length-delimited field's end offset, checked against the enclosing end. */
function lenEnd(r: protobuf.Reader, end: number): number {
  const n = r.uint32();
  const e = r.pos + n;
  if (e > end) throw new WireError("length-delimited field runs past its message");
  return e;
}

function expect(wire: number, want: number, what: string): void {
  if (wire !== want) throw new WireError(`${what}: wrong wire type ${wire}`);
}

function readString(r: protobuf.Reader, end: number): string {
  const e = lenEnd(r, end);
  // decodeCheckRequest always reads a Buffer.
  const s = (r.buf as Buffer).toString("utf8", r.pos, e);
  r.pos = e;
  return s;
}

function readBytes(r: protobuf.Reader, end: number): Uint8Array {
  const e = lenEnd(r, end);
  const b = r.buf.subarray(r.pos, e);
  r.pos = e;
  return b;
}

function skip(r: protobuf.Reader, wire: number, end: number): void {
  r.skipType(wire);
  if (r.pos > end) throw new WireError("field runs past its message");
}

/** A map<string,string> entry (key = 1, value = 2 by the protobuf map encoding) into `into`. */
function readMapEntry(r: protobuf.Reader, end: number, into: Record<string, string>): void {
  const e = lenEnd(r, end);
  let k = "";
  let v = "";
  while (r.pos < e) {
    const tag = r.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    if (id === 1 && wire === LEN) k = readString(r, e);
    else if (id === 2 && wire === LEN) v = readString(r, e);
    else skip(r, wire, e);
  }
  into[k] = v;
}

/** Walk a nested message: call `field` for each tag; unknown fields are skipped. */
function message(r: protobuf.Reader, end: number, field: (id: number, wire: number, end: number) => boolean): void {
  const e = lenEnd(r, end);
  while (r.pos < e) {
    const tag = r.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    if (!field(id, wire, e)) skip(r, wire, e);
  }
  if (r.pos !== e) throw new WireError("message length mismatch");
}

/** Decode a serialized envoy.service.auth.v3.CheckRequest. Throws on malformed wire data. */
export function decodeCheckRequest(buf: Uint8Array): DecodedCheckRequest {
  const I = loadIds();
  const out = new DecodedCheckRequest();
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const r = protobuf.Reader.create(b);
  const end = b.length;

  const http = (id: number, wire: number, e: number): boolean => {
    const H = I.http;
    if (wire !== LEN) return false;
    switch (id) {
      case H.method:
        out.method = readString(r, e);
        return true;
      case H.host:
        out.host = readString(r, e);
        return true;
      case H.path:
        out.path = readString(r, e);
        return true;
      case H.scheme:
        out.scheme = readString(r, e);
        return true;
      case H.query:
        out.query = readString(r, e);
        return true;
      case H.body:
        out.body = readString(r, e);
        return true;
      case H.raw_body:
        out.rawBody = readBytes(r, e);
        return true;
      case H.headers:
        if (!out.headers) out.headers = Object.create(null) as Record<string, string>;
        readMapEntry(r, e, out.headers);
        return true;
      case H.header_map:
        message(r, e, (hid, hwire, he) => {
          if (hid !== I.headerMap.headers) return false;
          expect(hwire, LEN, "header_map.headers");
          let key = "";
          let value = "";
          let raw: Uint8Array | undefined;
          message(r, he, (vid, vwire, ve) => {
            if (vwire !== LEN) return false;
            if (vid === I.headerValue.key) key = readString(r, ve);
            else if (vid === I.headerValue.value) value = readString(r, ve);
            else if (vid === I.headerValue.raw_value) raw = readBytes(r, ve);
            else return false;
            return true;
          });
          (out.headerList ??= []).push(raw ? { key, value, raw_value: raw } : { key, value });
          return true;
        });
        return true;
      default:
        return false;
    }
  };

  const attributes = (id: number, wire: number, e: number): boolean => {
    if (id === I.attrs.request) {
      expect(wire, LEN, "attributes.request");
      message(r, e, (rid, rwire, re) => {
        if (rid !== I.request.http) return false;
        expect(rwire, LEN, "request.http");
        out.hasHttp = true;
        message(r, re, http);
        return true;
      });
      return true;
    }
    if (id === I.attrs.source) {
      expect(wire, LEN, "attributes.source");
      message(r, e, (pid, pwire, pe) => {
        if (pid !== I.peer.address || pwire !== LEN) return false;
        message(r, pe, (aid, awire, ae) => {
          if (aid !== I.address.socket_address || awire !== LEN) return false;
          message(r, ae, (sid, swire, se) => {
            if (sid !== I.socket.address || swire !== LEN) return false;
            out.sourceAddress = readString(r, se);
            return true;
          });
          return true;
        });
        return true;
      });
      return true;
    }
    if (id === I.attrs.context_extensions) {
      expect(wire, LEN, "attributes.context_extensions");
      if (out.contextExtensions === EMPTY) out.contextExtensions = Object.create(null) as Record<string, string>;
      readMapEntry(r, e, out.contextExtensions);
      return true;
    }
    return false;
  };

  while (r.pos < end) {
    const tag = r.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    if (id === I.req.attributes) {
      expect(wire, LEN, "attributes");
      message(r, end, attributes);
    } else skip(r, wire, end);
  }
  return out;
}

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

/** A bounded memo: encoded pieces keyed by their content (cleared when it grows past its bound). */
class PieceCache {
  private readonly m = new Map<string, Buffer>();
  constructor(private readonly max: number) {}
  get(key: string, make: () => Buffer): Buffer {
    let b = this.m.get(key);
    if (!b) {
      if (this.m.size >= this.max) this.m.clear();
      b = make();
      this.m.set(key, b);
    }
    return b;
  }
}

const hvoCache = new PieceCache(4096);
const removeCache = new PieceCache(256);
const metadataCache = new PieceCache(64);

/** One HeaderValueOption as a field `id` of its parent: cached by (field, action, key, value). */
function headerOption(id: number, o: HeaderValueOption): Buffer {
  const I = loadIds();
  const key = `${id}\u0000${o.append_action}\u0000${o.header.key}\u0000${o.header.value}`;
  return hvoCache.get(key, () => encodeHeaderOption(id, o));
}

function encodeHeaderOption(id: number, o: HeaderValueOption): Buffer {
  const I = loadIds();
  const header = Buffer.concat([stringField(I.headerValue.key, o.header.key), stringField(I.headerValue.value, o.header.value)]);
  const parts = [lenField(I.hvo.header, header)];
  if (o.append_action !== 0) parts.push(varintField(I.hvo.append_action, o.append_action));
  return lenField(id, Buffer.concat(parts));
}

function headerOptions(id: number, list: readonly HeaderValueOption[]): Buffer[] {
  const out: Buffer[] = [];
  for (const o of list) out.push(headerOption(id, o));
  return out;
}

/** CheckResponse.dynamic_metadata (a Struct of string values), cached by content. */
function dynamicMetadata(fields: Readonly<Record<string, { stringValue: string }>>): Buffer {
  const I = loadIds();
  const names = Object.keys(fields);
  const key = names.map((n) => `${n}\u0000${fields[n]!.stringValue}`).join("\u0001");
  return metadataCache.get(key, () => {
    const entries = names.map((n) => {
      const value = stringField(I.value.string_value, fields[n]!.stringValue);
      // map entry: key = 1, value = 2 (the protobuf map encoding).
      return lenField(I.struct.fields, Buffer.concat([stringField(1, n), lenField(2, value)]));
    });
    return lenField(I.res.dynamic_metadata, Buffer.concat(entries));
  });
}

/** Encode a CheckResponseOut (the shape response.ts builds) as an envoy.service.auth.v3.CheckResponse. */
export function encodeCheckResponse(r: CheckResponseOut): Buffer {
  const I = loadIds();
  const parts: Buffer[] = [];
  const status: Buffer[] = [];
  if (r.status.code !== 0) status.push(varintField(I.status.code, r.status.code));
  if (r.status.message) status.push(stringField(I.status.message, r.status.message));
  parts.push(lenField(I.res.status, Buffer.concat(status)));
  if (r.denied_response) {
    const d = r.denied_response;
    const inner: Buffer[] = [lenField(I.denied.status, d.status.code !== 0 ? varintField(I.httpStatus.code, d.status.code) : Buffer.alloc(0))];
    inner.push(...headerOptions(I.denied.headers, d.headers));
    if (d.body) inner.push(stringField(I.denied.body, d.body));
    parts.push(lenField(I.res.denied_response, Buffer.concat(inner)));
  }
  if (r.ok_response) {
    const o = r.ok_response;
    const inner = headerOptions(I.ok.headers, o.headers);
    if (o.headers_to_remove.length) {
      inner.push(
        removeCache.get(o.headers_to_remove.join("\u0000"), () =>
          Buffer.concat(o.headers_to_remove.map((h) => stringField(I.ok.headers_to_remove, h))),
        ),
      );
    }
    // Set-Cookie values differ per user and second: encoded directly, not cached.
    for (const h of o.response_headers_to_add) inner.push(encodeHeaderOption(I.ok.response_headers_to_add, h));
    parts.push(lenField(I.res.ok_response, Buffer.concat(inner)));
  }
  parts.push(dynamicMetadata(r.dynamic_metadata.fields));
  return Buffer.concat(parts);
}
