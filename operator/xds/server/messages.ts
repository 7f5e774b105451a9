// Discovery requests as they arrive from grpc-js (proto-loader with keepCase), validated with zod,
// and the response shapes we write back.
import { z } from "zod";
import type { SnapshotResource } from "./snapshot.js";

const NodeMsg = z
  .object({ id: z.string().default(""), cluster: z.string().default("") })
  .loose()
  .nullish();
const Status = z.object({ code: z.number().default(0), message: z.string().default("") }).loose().nullish();

export const DiscoveryRequest = z
  .object({
    version_info: z.string().default(""),
    node: NodeMsg,
    resource_names: z.array(z.string()).default([]),
    type_url: z.string().default(""),
    response_nonce: z.string().default(""),
    error_detail: Status,
  })
  .loose();
export type DiscoveryRequest = z.infer<typeof DiscoveryRequest>;

export const DeltaDiscoveryRequest = z
  .object({
    node: NodeMsg,
    type_url: z.string().default(""),
    resource_names_subscribe: z.array(z.string()).default([]),
    resource_names_unsubscribe: z.array(z.string()).default([]),
    initial_resource_versions: z.record(z.string(), z.string()).default({}),
    response_nonce: z.string().default(""),
    error_detail: Status,
  })
  .loose();
export type DeltaDiscoveryRequest = z.infer<typeof DeltaDiscoveryRequest>;

/** A NACK carries a google.rpc.Status with a non-OK code or a message. */
export function isNack(s: { code: number; message: string } | null | undefined): boolean {
  return !!s && (s.code !== 0 || s.message !== "");
}

// Responses are encoded by hand: the resources are already serialized, so a response is mostly one
// copy of their bytes into a buffer sized in advance. (proto-loader's generic encode, and even
// protobufjs' Writer, cost 30-60x more on a 12 MB CDS response.)

const varintLen = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

/** A tiny length-delimited protobuf writer over a pre-sized Buffer (wire type 2 fields only). */
class Out {
  constructor(
    readonly buf: Buffer,
    public pos: number,
  ) {}
  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }
  tagLen(field: number, len: number): void {
    this.varint((field << 3) | 2);
    this.varint(len);
  }
  str(field: number, s: string, len: number): void {
    this.tagLen(field, len);
    this.pos += this.buf.write(s, this.pos, "utf8");
  }
  bytes(field: number, b: Uint8Array): void {
    this.tagLen(field, b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  /** Bytes already encoded (a whole field). */
  raw(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

/** A length-delimited string field (tag, length, UTF-8), encoded once to be copied many times. */
function stringField(field: number, s: string): Buffer {
  const len = Buffer.byteLength(s);
  const o = new Out(Buffer.allocUnsafe(fieldLen(len)), 0);
  o.str(field, s, len);
  return o.buf;
}

/** Size of a length-delimited field (tag + length + body) with field number < 16. */
const fieldLen = (bodyLen: number): number => 1 + varintLen(bodyLen) + bodyLen;

function anyLen(typeUrlLen: number, value: Uint8Array): number {
  return fieldLen(typeUrlLen) + fieldLen(value.length);
}

/**
 * A response's wire bytes, written on demand: `byteLength` is known up front and `copy` writes
 * them into a target (the Buffer method's shape). grpc-js serializes a message by reading
 * byteLength, allocating the framed message and calling copy(output, 5), so the server writes a
 * 12 MB CDS response straight into grpc-js' frame: one copy of the resources, not two.
 */
export class ResponseBytes {
  constructor(
    readonly byteLength: number,
    private readonly writeTo: (o: Out) => void,
    private readonly what: string,
  ) {}
  copy(target: Buffer, targetStart = 0): number {
    const o = new Out(target, targetStart);
    this.writeTo(o);
    if (o.pos - targetStart !== this.byteLength) throw new Error(`${this.what} size mismatch: ${o.pos - targetStart} != ${this.byteLength}`);
    return this.byteLength;
  }
  toBuffer(): Buffer {
    const b = Buffer.allocUnsafe(this.byteLength);
    this.copy(b, 0);
    return b;
  }
}

/** A response built when grpc-js serializes it (AdsServer's responseSerialize); its resources are immutable snapshot entries. */
export class LazyResponse {
  constructor(readonly make: () => ResponseBytes) {}
}

/** envoy.service.discovery.v3.DiscoveryResponse. */
export function discoveryResponse(
  versionInfo: string,
  typeUrl: string,
  resources: readonly SnapshotResource[],
  nonce: string,
  identifier: string,
): ResponseBytes {
  const vl = Buffer.byteLength(versionInfo);
  const tl = Buffer.byteLength(typeUrl);
  const nl = Buffer.byteLength(nonce);
  const il = Buffer.byteLength(identifier);
  let size = fieldLen(vl) + fieldLen(tl) + fieldLen(nl) + fieldLen(fieldLen(il));
  for (const r of resources) size += fieldLen(anyLen(tl, r.encoded));
  return new ResponseBytes(
    size,
    (o) => {
      o.str(1, versionInfo, vl);
      const anyType = stringField(1, typeUrl); // Any.type_url, the same in every resource
      for (const r of resources) {
        o.tagLen(2, anyLen(tl, r.encoded));
        o.raw(anyType);
        o.bytes(2, r.encoded);
      }
      o.str(4, typeUrl, tl);
      o.str(5, nonce, nl);
      o.tagLen(6, fieldLen(il));
      o.str(1, identifier, il);
    },
    "DiscoveryResponse",
  );
}

/** envoy.service.discovery.v3.DeltaDiscoveryResponse. */
export function deltaDiscoveryResponse(
  systemVersionInfo: string,
  typeUrl: string,
  resources: readonly SnapshotResource[],
  removed: readonly string[],
  nonce: string,
  identifier: string,
): ResponseBytes {
  const sl = Buffer.byteLength(systemVersionInfo);
  const tl = Buffer.byteLength(typeUrl);
  const nl = Buffer.byteLength(nonce);
  const il = Buffer.byteLength(identifier);
  // envoy.service.discovery.v3.Resource: version = 1, resource (Any) = 2, name = 3
  const items = resources.map((r) => {
    const vl = Buffer.byteLength(r.version);
    const nameLen = Buffer.byteLength(r.name);
    const al = anyLen(tl, r.encoded);
    return { r, vl, nameLen, al, len: fieldLen(vl) + fieldLen(al) + fieldLen(nameLen) };
  });
  const removedLens = removed.map((n) => Buffer.byteLength(n));
  let size = fieldLen(sl) + fieldLen(tl) + fieldLen(nl) + fieldLen(fieldLen(il));
  for (const it of items) size += fieldLen(it.len);
  for (const l of removedLens) size += fieldLen(l);
  return new ResponseBytes(
    size,
    (o) => {
      o.str(1, systemVersionInfo, sl);
      const anyType = stringField(1, typeUrl);
      for (const it of items) {
        o.tagLen(2, it.len);
        o.str(1, it.r.version, it.vl);
        o.tagLen(2, it.al);
        o.raw(anyType);
        o.bytes(2, it.r.encoded);
        o.str(3, it.r.name, it.nameLen);
      }
      o.str(4, typeUrl, tl);
      o.str(5, nonce, nl);
      removed.forEach((n, i) => o.str(6, n, removedLens[i]!));
      o.tagLen(7, fieldLen(il));
      o.str(1, identifier, il);
    },
    "DeltaDiscoveryResponse",
  );
}
