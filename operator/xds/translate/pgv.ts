// Proto3-JSON → protobuf encoder with protoc-gen-validate checking, driven by the loaded descriptors.
//
// Envoy rejects a resource whose fields break the `(validate.rules)` annotations of its protos
// (required messages, defined enums, ranges, string lengths and patterns, durations, repeated
// sizes, required oneofs …). We check the same rules here, generically, by reading the options
// protobufjs keeps on each field (`parsedOptions`), and recurse into google.protobuf.Any by type
// URL, so a bad resource is caught before it is ever served. Each message type is compiled once
// into a converter closure (field table + rule checks), which keeps a 20,000-resource
// translation well inside the benchmark budget.
import protobuf from "protobufjs";

export interface Violation {
  /** Dotted path inside the resource, Any payloads shown as `typed_config<Type>`. */
  readonly path: string;
  /** The rule broken, e.g. `string.min_len`, `message.required`, `oneof.required`, `json` for shape errors. */
  readonly rule: string;
  readonly message: string;
}

export interface EncodeResult {
  /** Serialized message; undefined when there were violations. */
  readonly bytes: Uint8Array | undefined;
  readonly violations: readonly Violation[];
}

type Json = unknown;
type Obj = Record<string, unknown>;
interface PathNode {
  readonly up: PathNode | null;
  /** Field name, array index, map key (quoted) or Any type (<Type>); joined only when reporting. */
  readonly seg: string | number;
}

const pathString = (n: PathNode | null): string => {
  const segs: string[] = [];
  for (let p = n; p; p = p.up) {
    const g = p.seg;
    if (g === "") continue;
    segs.push(typeof g === "number" ? `[${g}]` : g.startsWith("<") || g.startsWith("[") ? g : `.${g}`);
  }
  return segs.reverse().join("").replace(/^\./, "");
};
// Paths cost an allocation per field, so the first pass does not track them; only when it finds a
// violation is the value converted again with paths on, to say where.
const NO_PATH: PathNode = { up: null, seg: "" };
let tracking = false;
const child = (up: PathNode, seg: string | number): PathNode => (tracking ? { up, seg } : NO_PATH);

const INT32 = new Set(["int32", "sint32", "sfixed32"]);
const UINT32 = new Set(["uint32", "fixed32"]);
const INT64 = new Set(["int64", "sint64", "sfixed64"]);
const UINT64 = new Set(["uint64", "fixed64"]);
const FLOAT = new Set(["double", "float"]);

/** Wrapper type → the scalar rule family PGV applies to its value. */
const WRAPPERS: Record<string, string> = {
  "google.protobuf.DoubleValue": "double",
  "google.protobuf.FloatValue": "float",
  "google.protobuf.Int64Value": "int64",
  "google.protobuf.UInt64Value": "uint64",
  "google.protobuf.Int32Value": "int32",
  "google.protobuf.UInt32Value": "uint32",
  "google.protobuf.BoolValue": "bool",
  "google.protobuf.StringValue": "string",
  "google.protobuf.BytesValue": "bytes",
};

const HEADER_NAME_STRICT = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
const HEADER_VALUE_STRICT = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;
const HOSTNAME = /^(?=.{1,253}$)([a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*\.?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const isIpv6 = (s: string) => /^[0-9a-fA-F:.]+$/.test(s) && s.includes(":") && (() => {
  try {
    return new URL(`http://[${s}]/`).hostname.length > 0;
  } catch {
    return false;
  }
})();

export const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

/** Parse a proto3 JSON Duration ("1.5s") into seconds and nanos. */
export function parseDuration(s: string): { seconds: number; nanos: number } | undefined {
  const m = DURATION_RE.exec(s);
  if (!m) return undefined;
  const sign = m[1] ? -1 : 1;
  const seconds = Number(m[2]) * sign;
  const nanos = m[3] ? Number(m[3].padEnd(9, "0")) * sign : 0;
  // Zero fields are left out, as a canonical proto3 encoder would.
  return { ...(seconds !== 0 ? { seconds } : {}), ...(nanos !== 0 ? { nanos } : {}) } as { seconds: number; nanos: number };
}
const durNanos = (d: { seconds?: number | string; nanos?: number } | undefined) =>
  d ? Number(d.seconds ?? 0) * 1e9 + (d.nanos ?? 0) : 0;

/** Deep-merge every `(validate.rules)` entry protobufjs kept for a field (it splits them per option line). */
function rulesOf(parsed: Array<Record<string, unknown>> | null | undefined, key: string): Obj | undefined {
  if (!parsed) return undefined;
  let merged: Obj | undefined;
  for (const entry of parsed) {
    if (!(key in entry)) continue;
    merged = deepMerge(merged ?? {}, entry[key] as Obj);
  }
  return merged;
}
function deepMerge(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = prev && typeof prev === "object" && v && typeof v === "object" && !Array.isArray(v) ? deepMerge(prev as Obj, v as Obj) : v;
  }
  return out;
}

interface FieldPlan {
  readonly name: string;
  /** Field number: fields are written in this order (canonical encoding). */
  readonly id: number;
  readonly oneof: string | undefined;
  /** Writes tag(s) and value. */
  readonly write: Write;
  /** Checks rules on the JSON value (already converted values are not needed: rules read JSON). */
  readonly check: ((v: Json, at: PathNode, out: Violation[]) => void) | undefined;
  /** Value when absent (proto3 default) for scalar rule checks; undefined for messages. */
  readonly defaultValue: unknown;
  readonly isDefault: (v: unknown) => boolean;
  readonly required: boolean;
  readonly kind: "scalar" | "message" | "repeated" | "map";
}

interface TypePlan {
  readonly fields: Map<string, FieldPlan>;
  fieldList: FieldPlan[];
  readonly requiredOneofs: string[];
  readonly oneofs: Map<string, string[]>;
  readonly disabled: boolean;
}

/**
 * A growable protobuf writer. Nested messages are written in place: one byte is reserved for the
 * length and the body is shifted in the rare case its length needs more (≥ 128 bytes).
 */
const SLAB = 1 << 20;

class Buf {
  // A plain Uint8Array (slices of a Buffer go through Buffer's species constructor, which is slow)
  // plus a Buffer view of the same memory for UTF-8 and fixed-width writes.
  // Resources are written one after another into the same buffer and handed out as views
  // (take), so a resource costs no copy; a full buffer is left to the views and a new one started.
  buf = new Uint8Array(SLAB);
  node = Buffer.from(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  pos = 0;
  /** Where the resource being written starts; positions held by callers are relative to it. */
  base = 0;

  private grow(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const used = this.pos - this.base;
    let size = SLAB;
    while (size < (used + n) * 2) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(this.base, this.pos));
    this.buf = next;
    this.node = Buffer.from(next.buffer, next.byteOffset, next.byteLength);
    this.pos = used;
    this.base = 0;
  }
  /** Start a resource (a fresh buffer when little room is left). */
  start(): void {
    if (this.buf.length - this.pos < SLAB / 16) {
      this.buf = new Uint8Array(SLAB);
      this.node = Buffer.from(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
      this.pos = 0;
    }
    this.base = this.pos;
  }
  /** Forget what was written for the current resource. */
  discard(): void {
    this.pos = this.base;
  }
  /** Position relative to the current resource's start. */
  mark(): number {
    return this.pos - this.base;
  }
  varint(n: number): void {
    this.grow(10);
    const b = this.buf;
    if (n < 0) return this.negative(n);
    while (n > 127) {
      b[this.pos++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    b[this.pos++] = n;
  }
  private negative(n: number): void {
    // Two's complement over 64 bits: ten bytes, as protobuf writes negative int32/int64.
    let x = BigInt.asUintN(64, BigInt(n));
    for (let i = 0; i < 9; i++) {
      this.buf[this.pos++] = Number(x & 127n) | 128;
      x >>= 7n;
    }
    this.buf[this.pos++] = Number(x);
  }
  tag(id: number, wire: number): void {
    this.varint(id * 8 + wire);
  }
  fixed32(n: number): void {
    this.grow(4);
    this.node.writeUInt32LE(n >>> 0, this.pos);
    this.pos += 4;
  }
  sfixed32(n: number): void {
    this.grow(4);
    this.node.writeInt32LE(n | 0, this.pos);
    this.pos += 4;
  }
  fixed64(n: number): void {
    this.grow(8);
    this.node.writeBigUInt64LE(BigInt.asUintN(64, BigInt(n)), this.pos);
    this.pos += 8;
  }
  float(n: number): void {
    this.grow(4);
    this.node.writeFloatLE(n, this.pos);
    this.pos += 4;
  }
  double(n: number): void {
    this.grow(8);
    this.node.writeDoubleLE(n, this.pos);
    this.pos += 8;
  }
  string(s: string): void {
    const len = s.length < 64 && /^[\x00-\x7f]*$/.test(s) ? s.length : Buffer.byteLength(s);
    this.varint(len);
    this.grow(len);
    if (len === s.length) for (let i = 0; i < len; i++) this.buf[this.pos + i] = s.charCodeAt(i);
    else this.node.write(s, this.pos, "utf8");
    this.pos += len;
  }
  bytes(u: Uint8Array): void {
    this.varint(u.length);
    this.raw(u);
  }
  raw(u: Uint8Array): void {
    this.grow(u.length);
    if (u.length < 64) for (let i = 0; i < u.length; i++) this.buf[this.pos + i] = u[i];
    else this.buf.set(u, this.pos);
    this.pos += u.length;
  }
  /** Reserve a one-byte length; returns where the body starts (relative). */
  begin(): number {
    this.grow(1);
    this.pos++;
    return this.pos - this.base;
  }
  end(rel: number): void {
    const start = rel + this.base;
    const len = this.pos - start;
    if (len < 128) {
      this.buf[start - 1] = len;
      return;
    }
    let size = 1;
    for (let x = len; x > 127; x = Math.floor(x / 128)) size++;
    this.grow(size - 1);
    this.buf.copyWithin(start - 1 + size, start, this.pos);
    const end = this.pos + size - 1;
    this.pos = start - 1;
    this.varint(len);
    this.pos = end;
  }
  take(): Uint8Array {
    const view = this.buf.subarray(this.base, this.pos);
    this.base = this.pos;
    return view;
  }
}

// Encoded results are views into 1 MiB slabs: one ArrayBuffer per resource costs far more
// (allocation and external-memory accounting) than the encoding itself.
let slab = new Uint8Array(SLAB);
let slabPos = 0;
function copyOut(src: Uint8Array, from: number, to: number): Uint8Array {
  const len = to - from;
  if (len > SLAB / 4) return src.slice(from, to);
  if (slabPos + len > SLAB) {
    slab = new Uint8Array(SLAB);
    slabPos = 0;
  }
  slab.set(src.subarray(from, to), slabPos);
  const view = slab.subarray(slabPos, slabPos + len);
  slabPos += len;
  return view;
}

/** Write one value's body (a message) or wire value (a scalar); returns what rule checks need. */
type Write = (v: Json, at: PathNode, out: Violation[], w: Buf) => unknown;

const WIRE: Record<string, number> = {
  double: 1, float: 5, int32: 0, int64: 0, uint32: 0, uint64: 0, sint32: 0, sint64: 0,
  fixed32: 5, fixed64: 1, sfixed32: 5, sfixed64: 1, bool: 0, string: 2, bytes: 2,
};

export class ProtoCodec {
  private readonly plans = new Map<protobuf.Type, TypePlan>();
  private readonly writers = new Map<protobuf.Type, Write>();
  private readonly types = new Map<string, protobuf.Type | null>();
  /**
   * Bodies of frozen values already written without violations, by identity, per message type.
   * Builders share frozen sub-objects (TLS contexts, health checks, circuit breakers) between
   * resources, so each is converted, checked and encoded once, then copied.
   */
  private readonly memo = new Map<protobuf.Type, WeakMap<object, Uint8Array>>();
  private readonly anyMemo = new WeakMap<object, Uint8Array>();
  private readonly w = new Buf();

  constructor(private readonly root: protobuf.Root) {}

  /** Convert a proto3-JSON value (snake_case field names) of `typeName`, check PGV rules, and encode. */
  encode(typeName: string, json: Json): EncodeResult {
    const type = this.lookup(typeName);
    if (!type) return { bytes: undefined, violations: [{ path: "", rule: "type", message: `unknown message type ${typeName}` }] };
    const write = this.writer(type);
    const w = this.w;
    w.start();
    this.storing = 0; // a previous encode that threw may have left it raised
    let out: Violation[] = [];
    write(json, NO_PATH, out, w);
    if (out.length > 0) {
      tracking = true;
      try {
        out = [];
        w.discard();
        write(json, { up: null, seg: "" }, out, w);
      } finally {
        tracking = false;
        w.discard();
      }
      return { bytes: undefined, violations: out };
    }
    return { bytes: w.take(), violations: out };
  }

  /** Only the checks (the conversion runs too: a value that cannot be converted is a violation). */
  validate(typeName: string, json: Json): Violation[] {
    return [...this.encode(typeName, json).violations];
  }

  private lookup(typeName: string): protobuf.Type | undefined {
    let t = this.types.get(typeName);
    if (t === undefined) {
      try {
        t = this.root.lookupType(typeName);
      } catch {
        t = null;
      }
      this.types.set(typeName, t);
    }
    return t ?? undefined;
  }

  private writer(type: protobuf.Type): Write {
    let c = this.writers.get(type);
    if (c) return c;
    // Placeholder first: message types are recursive.
    let real: Write | undefined;
    c = (v, at, out, w) => real!(v, at, out, w);
    this.writers.set(type, c);
    real = this.buildWriter(type);
    this.writers.set(type, real);
    return real;
  }

  private buildWriter(type: protobuf.Type): Write {
    const name = type.fullName.replace(/^\./, "");
    switch (name) {
      case "google.protobuf.Duration":
        return (v, at, out, w) => {
          let d: { seconds?: number; nanos?: number } | undefined;
          if (typeof v === "string") d = parseDuration(v);
          else if (v && typeof v === "object" && "seconds" in (v as Obj)) d = v as { seconds: number; nanos?: number };
          if (!d) {
            out.push({ path: pathString(at), rule: "json", message: `not a duration: ${JSON.stringify(v)}` });
            return { seconds: 0, nanos: 0 };
          }
          if (d.seconds) {
            w.tag(1, 0);
            w.varint(Number(d.seconds));
          }
          if (d.nanos) {
            w.tag(2, 0);
            w.varint(d.nanos);
          }
          return d;
        };
      case "google.protobuf.Any":
        return (v, at, out, w) => this.writeAny(v, at, out, w);
      case "google.protobuf.Struct":
        return (v, at, out, w) => this.writeStruct(v, at, out, w);
      case "google.protobuf.Value":
        return (v, at, out, w) => this.writeValue(v, at, out, w);
      case "google.protobuf.ListValue":
        return (v, at, out, w) => {
          if (!Array.isArray(v)) return out.push({ path: pathString(at), rule: "json", message: "expected an array (ListValue)" });
          v.forEach((x, i) => {
            w.tag(1, 2);
            const s = w.begin();
            this.writeValue(x, child(at, i), out, w);
            w.end(s);
          });
        };
      case "google.protobuf.Empty":
        return () => undefined;
    }
    if (name in WRAPPERS) {
      const scalar = WRAPPERS[name];
      const write = scalarWriter(scalar);
      const def = scalarDefault(scalar);
      return (v, at, out, w) => {
        if (v !== def && !(def === 0 && v === "0")) {
          w.tag(1, WIRE[scalar]);
          write(v, at, out, w);
        }
      };
    }
    const plan = this.plan(type);
    const memo = new WeakMap<object, Uint8Array>();
    this.memo.set(type, memo);
    // Absent scalars are checked at their default; that outcome never changes, so only fields
    // whose default breaks a rule (e.g. a required name) are looked at when absent.
    const failsAtDefault = (f: FieldPlan) => {
      if (!f.check || f.kind === "message" || f.oneof !== undefined) return false;
      const probe: Violation[] = [];
      f.check(f.kind === "map" ? {} : f.kind === "repeated" ? [] : f.defaultValue, NO_PATH, probe);
      return probe.length > 0;
    };
    const checked = plan.fieldList
      .filter((f) => f.required || f.check)
      .map((f) => ({ f, checkAbsent: failsAtDefault(f) }));
    const requiredOneofs = [...plan.oneofs].filter(([name]) => plan.requiredOneofs.includes(name));
    return (v, at, out, w) => {
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        out.push({ path: pathString(at), rule: "json", message: `expected an object for ${name}` });
        return;
      }
      const src = v as Obj;
      const present: FieldPlan[] = [];
      for (const k in src) {
        const fv = src[k];
        if (fv === undefined || fv === null) continue;
        const f = plan.fields.get(k);
        if (!f) {
          out.push({ path: pathString(child(at, k)), rule: "json", message: `${name} has no field "${k}"` });
          continue;
        }
        if (f.kind === "scalar" && f.oneof === undefined && f.isDefault(fv)) continue; // proto3: defaults are not written
        if (f.kind === "repeated" && (fv as unknown[]).length === 0) continue;
        // Kept in field-number order as it grows: a handful of fields, often a few out of place;
        // an insertion here is cheaper than calling sort with a comparator per message.
        let j = present.length;
        present.push(f);
        for (; j > 0 && present[j - 1]!.id > f.id; j--) present[j] = present[j - 1]!;
        present[j] = f;
      }
      let seenOneofs: string[] | undefined;
      let reported: string[] | undefined;
      for (const f of present) {
        f.write(src[f.name], child(at, f.name), out, w);
        const oneof = f.oneof;
        if (oneof === undefined) continue;
        if (!seenOneofs) seenOneofs = [oneof];
        else if (!seenOneofs.includes(oneof)) seenOneofs.push(oneof);
        else if (!reported?.includes(oneof)) {
          (reported ??= []).push(oneof);
          out.push({ path: pathString(child(at, oneof)), rule: "oneof", message: `only one of ${plan.oneofs.get(oneof)!.join(", ")} may be set` });
        }
      }
      if (plan.disabled) return;
      for (const { f, checkAbsent } of checked) {
        const fv = src[f.name];
        const has = fv !== undefined && fv !== null;
        if (has) {
          if (f.check) f.check(fv, child(at, f.name), out);
          continue;
        }
        if (f.required && f.oneof === undefined) {
          out.push({ path: pathString(child(at, f.name)), rule: "message.required", message: "value is required" });
          continue;
        }
        if (checkAbsent) f.check!(f.kind === "map" ? {} : f.kind === "repeated" ? [] : f.defaultValue, child(at, f.name), out);
      }
      for (const [oneof, members] of requiredOneofs) {
        let set = 0;
        for (const m of members) if (src[m] !== undefined && src[m] !== null) set++;
        if (set === 0) out.push({ path: pathString(child(at, oneof)), rule: "oneof.required", message: `one of ${members.join(", ")} is required` });
      }
    };
  }

  /** Write a nested message field's value (tag written by the caller): length-prefixed body, memoised when frozen. */
  private messageValue(type: protobuf.Type): Write {
    const body = this.writer(type);
    const getMemo = () => this.memo.get(type);
    return (v, at, out, w) => {
      const frozen = v !== null && typeof v === "object" && Object.isFrozen(v);
      const memo = frozen ? getMemo() : undefined;
      if (memo) {
        const hit = memo.get(v as object);
        if (hit) {
          w.bytes(hit);
          return undefined;
        }
      }
      const before = out.length;
      const s = w.begin();
      // Inside a frozen value being memoised, nested frozen values are looked up but not stored:
      // they are reached again through their (now memoised) parent, so storing each would cost a
      // WeakMap entry and a copy for nothing. Shared ones met directly elsewhere are stored there.
      if (memo) this.storing++;
      const res = body(v, at, out, w);
      w.end(s);
      if (memo && --this.storing === 0 && out.length === before) memo.set(v as object, this.lastBody(w, s));
      return res;
    };
  }
  /** Depth of frozen values being memoised (see messageValue). */
  private storing = 0;

  /** The body just written after `start` (adjusted when end() widened the length prefix). */
  private lastBody(w: Buf, rel: number): Uint8Array {
    // end() leaves the body right after its (possibly multi-byte) length varint at start-1.
    let p = rel + w.base - 1;
    let len = 0;
    let mul = 1;
    for (;;) {
      const b = w.buf[p++];
      len += (b & 127) * mul;
      if (b < 128) break;
      mul *= 128;
    }
    return copyOut(w.buf, p, p + len);
  }

  private plan(type: protobuf.Type): TypePlan {
    const cachedPlan = this.plans.get(type);
    if (cachedPlan) return cachedPlan;
    const opts = (type.options ?? {}) as Obj;
    const disabled = opts["(validate.disabled)"] === true || opts["(validate.ignored)"] === true;
    const fields = new Map<string, FieldPlan>();
    const oneofs = new Map<string, string[]>();
    const requiredOneofs: string[] = [];
    const plan: TypePlan = { fields, fieldList: [], oneofs, requiredOneofs, disabled };
    this.plans.set(type, plan);
    for (const o of type.oneofsArray) {
      oneofs.set(o.name, o.fieldsArray.map((f) => f.name));
      const oo = (o.options ?? {}) as Obj;
      if (oo["(validate.required)"] === true || rulesOf(o.parsedOptions as never, "(validate.required)") !== undefined) requiredOneofs.push(o.name);
    }
    for (const f of type.fieldsArray) {
      f.resolve();
      const rules = rulesOf(f.parsedOptions as never, "(validate.rules)");
      fields.set(f.name, this.fieldPlan(f, rules));
    }
    plan.fieldList.push(...fields.values());
    return plan;
  }

  private fieldPlan(f: protobuf.Field, rules: Obj | undefined): FieldPlan {
    const oneof = f.partOf?.name;
    const id = f.id;
    if (f instanceof protobuf.MapField || (f as { map?: boolean }).map) {
      const mf = f as unknown as protobuf.MapField;
      const mapRules = rules?.map as Obj | undefined;
      const valueWrite = this.elementWriter(mf as unknown as protobuf.FieldBase, mapRules?.values as Obj | undefined);
      const valueWire = this.wireOf(mf as unknown as protobuf.FieldBase);
      const keyType = mf.keyType;
      const keyWrite = scalarWriter(keyType);
      return {
        name: f.name, id, oneof, kind: "map", required: false, defaultValue: undefined, isDefault: () => false,
        write: (v, at, out, w) => {
          if (!v || typeof v !== "object") return out.push({ path: pathString(at), rule: "json", message: "expected an object (map)" });
          for (const k of Object.keys(v as Obj).sort()) {
            w.tag(id, 2);
            const s = w.begin();
            w.tag(1, WIRE[keyType]);
            keyWrite(keyType === "string" ? k : Number(k), at, out, w);
            w.tag(2, valueWire);
            valueWrite((v as Obj)[k], child(at, `[${JSON.stringify(k)}]`), out, w);
            w.end(s);
          }
          return undefined;
        },
        check: mapRules
          ? (v, at, out) => {
              const n = Object.keys(v as Obj).length;
              if (mapRules.ignore_empty && n === 0) return;
              if (mapRules.min_pairs !== undefined && n < Number(mapRules.min_pairs))
                out.push({ path: pathString(at), rule: "map.min_pairs", message: `needs at least ${mapRules.min_pairs} entries` });
              if (mapRules.max_pairs !== undefined && n > Number(mapRules.max_pairs))
                out.push({ path: pathString(at), rule: "map.max_pairs", message: `at most ${mapRules.max_pairs} entries` });
              const keyRules = mapRules.keys as Obj | undefined;
              if (keyRules?.string) for (const k of Object.keys(v as Obj)) checkString(k, keyRules.string as Obj, child(at, `[${JSON.stringify(k)}]`), out);
            }
          : undefined,
      };
    }
    if (f.repeated) {
      const repRules = rules?.repeated as Obj | undefined;
      const item = this.elementWriter(f, repRules?.items as Obj | undefined);
      const wire = this.wireOf(f);
      const packed = wire !== 2; // proto3 packs repeated numeric and enum fields
      return {
        name: f.name, id, oneof, kind: "repeated", required: false, defaultValue: undefined, isDefault: () => false,
        write: (v, at, out, w) => {
          if (!Array.isArray(v)) return out.push({ path: pathString(at), rule: "json", message: "expected an array" });
          if (packed) {
            w.tag(id, 2);
            const s = w.begin();
            for (let i = 0; i < v.length; i++) item(v[i], child(at, i), out, w);
            w.end(s);
          } else {
            for (let i = 0; i < v.length; i++) {
              w.tag(id, wire);
              item(v[i], child(at, i), out, w);
            }
          }
          return undefined;
        },
        check: repRules
          ? (v, at, out) => {
              const arr = v as unknown[];
              if (repRules.ignore_empty && arr.length === 0) return;
              if (repRules.min_items !== undefined && arr.length < Number(repRules.min_items))
                out.push({ path: pathString(at), rule: "repeated.min_items", message: `needs at least ${repRules.min_items} item(s)` });
              if (repRules.max_items !== undefined && arr.length > Number(repRules.max_items))
                out.push({ path: pathString(at), rule: "repeated.max_items", message: `at most ${repRules.max_items} item(s)` });
              if (repRules.unique) {
                const seen = new Set(arr.map((x) => JSON.stringify(x)));
                if (seen.size !== arr.length) out.push({ path: pathString(at), rule: "repeated.unique", message: "items must be unique" });
              }
            }
          : undefined,
      };
    }
    const rt = f.resolvedType;
    const scalarLike = !(rt instanceof protobuf.Type);
    // Scalars and enums: written without rules, rules checked separately so that an absent
    // field is checked at its proto3 default (PGV does that: `min_len: 1` makes a string required).
    const elem = this.elementWriter(f, scalarLike ? undefined : rules);
    const wire = this.wireOf(f);
    let check: ((v: Json, at: PathNode, out: Violation[]) => void) | undefined;
    if (scalarLike && rules) {
      if (rt instanceof protobuf.Enum) {
        const er = rules.enum as Obj | undefined;
        if (er) check = (v, at, out) => checkEnum(rt, typeof v === "string" ? rt.values[v] : (v as number), er, at, out);
      } else {
        const r = rules[scalarFamily(f.type)] as Obj | undefined;
        if (r) check = (v, at, out) => checkScalar(f.type, v, r, at, out);
      }
    }
    const isMessage = rt instanceof protobuf.Type;
    const required =
      isMessage &&
      ((rules?.message as Obj | undefined)?.required === true ||
        (rules?.duration as Obj | undefined)?.required === true ||
        (rules?.any as Obj | undefined)?.required === true ||
        (rules?.timestamp as Obj | undefined)?.required === true);
    const def = isMessage ? undefined : rt instanceof protobuf.Enum ? 0 : scalarDefault(f.type);
    return {
      name: f.name, id, oneof, kind: isMessage ? "message" : "scalar", required, defaultValue: def,
      isDefault: isMessage
        ? () => false
        : rt instanceof protobuf.Enum
          ? (v) => v === 0 || (typeof v === "string" && (rt as protobuf.Enum).values[v] === 0)
          : (v) => v === def || (def === 0 && v === "0"),
      write: (v, at, out, w) => {
        w.tag(id, wire);
        return elem(v, at, out, w);
      },
      check,
    };
  }

  private wireOf(f: protobuf.FieldBase): number {
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) return 2;
    if (rt instanceof protobuf.Enum) return 0;
    return WIRE[f.type];
  }

  /** Writer for one value of a field (an item, for repeated fields), checking the field's rules. */
  private elementWriter(f: protobuf.FieldBase, rules: Obj | undefined): Write {
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) {
      const full = rt.fullName.replace(/^\./, "");
      const skip = (rules?.message as Obj | undefined)?.skip === true;
      const value = this.messageValue(rt);
      const wrapped = WRAPPERS[full];
      const wrapperRules = wrapped ? (rules?.[wrapped] as Obj | undefined) : undefined;
      const durRules = full === "google.protobuf.Duration" ? (rules?.duration as Obj | undefined) : undefined;
      const anyRules = full === "google.protobuf.Any" ? (rules?.any as Obj | undefined) : undefined;
      if (!skip && !wrapperRules && !durRules && !anyRules) return value;
      return (v, at, out, w) => {
        let res: unknown;
        if (skip) {
          const scratch: Violation[] = [];
          res = value(v, at, scratch, w);
          for (const x of scratch) if (x.rule === "json") out.push(x);
        } else res = value(v, at, out, w);
        if (wrapperRules) checkScalar(wrapped, v, wrapperRules, at, out);
        if (durRules) checkDuration(typeof v === "string" ? parseDuration(v) : (v as { seconds: number; nanos: number }), durRules, at, out);
        if (anyRules) {
          const url = (v as Obj)?.["@type"];
          if (Array.isArray(anyRules.in) && !anyRules.in.includes(url))
            out.push({ path: pathString(at), rule: "any.in", message: `type ${String(url)} not allowed` });
          if (Array.isArray(anyRules.not_in) && anyRules.not_in.includes(url))
            out.push({ path: pathString(at), rule: "any.not_in", message: `type ${String(url)} not allowed` });
        }
        return res;
      };
    }
    if (rt instanceof protobuf.Enum) {
      const en = rt;
      const enumRules = rules?.enum as Obj | undefined;
      return (v, at, out, w) => {
        let n: number | undefined;
        if (typeof v === "number") n = v;
        else if (typeof v === "string") n = en.values[v];
        if (n === undefined) {
          out.push({ path: pathString(at), rule: "json", message: `${JSON.stringify(v)} is not a value of ${en.name}` });
          return 0;
        }
        if (enumRules) checkEnum(en, n, enumRules, at, out);
        w.varint(n);
        return n;
      };
    }
    const write = scalarWriter(f.type);
    const r = rules?.[scalarFamily(f.type)] as Obj | undefined;
    if (!r) return write;
    return (v, at, out, w) => {
      checkScalar(f.type, v, r, at, out);
      return write(v, at, out, w);
    };
  }

  private writeAny(v: Json, at: PathNode, out: Violation[], w: Buf): unknown {
    const o = v as Obj;
    const url = o && typeof o === "object" ? o["@type"] : undefined;
    if (typeof url !== "string") return out.push({ path: pathString(at), rule: "json", message: "Any needs an @type" });
    const frozen = Object.isFrozen(o);
    const hit = frozen ? this.anyMemo.get(o) : undefined;
    if (hit) return w.raw(hit);
    const typeName = url.slice(url.lastIndexOf("/") + 1);
    const inner = this.lookup(typeName);
    if (!inner) return out.push({ path: pathString(at), rule: "any.type", message: `unknown type ${url}` });
    const startAll = w.mark();
    w.tag(1, 2);
    w.string(url);
    w.tag(2, 2);
    const s = w.begin();
    const wkt = typeName in WRAPPERS || typeName === "google.protobuf.Duration" || typeName === "google.protobuf.Struct" || typeName === "google.protobuf.Value";
    const innerAt = child(at, `<${typeName.slice(typeName.lastIndexOf(".") + 1)}>`);
    const before = out.length;
    let payload: Json = o;
    if (wkt) payload = o.value;
    else if ("@type" in o) {
      const { ["@type"]: _t, ...rest } = o;
      payload = rest;
    }
    this.writer(inner)(payload, innerAt, out, w);
    w.end(s);
    if (frozen && out.length === before) this.anyMemo.set(o, copyOut(w.buf, startAll + w.base, w.pos));
    return undefined;
  }

  private writeStruct(v: Json, at: PathNode, out: Violation[], w: Buf): unknown {
    if (!v || typeof v !== "object" || Array.isArray(v)) return out.push({ path: pathString(at), rule: "json", message: "expected an object (Struct)" });
    for (const k of Object.keys(v as Obj).sort()) {
      w.tag(1, 2);
      const s = w.begin();
      w.tag(1, 2);
      w.string(k);
      w.tag(2, 2);
      const s2 = w.begin();
      this.writeValue((v as Obj)[k], child(at, k), out, w);
      w.end(s2);
      w.end(s);
    }
    return undefined;
  }

  private writeValue(v: Json, at: PathNode, out: Violation[], w: Buf): unknown {
    if (v === null) {
      w.tag(1, 0);
      w.varint(0);
    } else if (typeof v === "number") {
      w.tag(2, 1);
      w.double(v);
    } else if (typeof v === "string") {
      w.tag(3, 2);
      w.string(v);
    } else if (typeof v === "boolean") {
      w.tag(4, 0);
      w.varint(v ? 1 : 0);
    } else if (Array.isArray(v)) {
      w.tag(6, 2);
      const s = w.begin();
      v.forEach((x, i) => {
        w.tag(1, 2);
        const s2 = w.begin();
        this.writeValue(x, child(at, i), out, w);
        w.end(s2);
      });
      w.end(s);
    } else {
      w.tag(5, 2);
      const s = w.begin();
      this.writeStruct(v, at, out, w);
      w.end(s);
    }
    return undefined;
  }
}

/** Writer of one scalar's wire value (the tag is written by the caller). */
function scalarWriter(type: string): Write {
  return (v, at, out, w) => {
    if (type === "string") {
      if (typeof v !== "string") return out.push({ path: pathString(at), rule: "json", message: "expected a string" });
      return w.string(v);
    }
    if (type === "bool") {
      if (typeof v !== "boolean") return out.push({ path: pathString(at), rule: "json", message: "expected a boolean" });
      return w.varint(v ? 1 : 0);
    }
    if (type === "bytes") {
      if (typeof v === "string") return w.bytes(Buffer.from(v, "base64"));
      if (v instanceof Uint8Array) return w.bytes(v);
      return out.push({ path: pathString(at), rule: "json", message: "expected base64 bytes" });
    }
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    if (typeof n !== "number" || Number.isNaN(n)) return out.push({ path: pathString(at), rule: "json", message: `expected a number, got ${JSON.stringify(v)}` });
    if (!FLOAT.has(type) && !Number.isInteger(n)) return out.push({ path: pathString(at), rule: "json", message: `expected an integer, got ${n}` });
    if (UINT32.has(type) && (n < 0 || n > 0xffffffff)) return out.push({ path: pathString(at), rule: "json", message: `${n} is out of uint32 range` });
    if (INT32.has(type) && (n < -0x80000000 || n > 0x7fffffff)) return out.push({ path: pathString(at), rule: "json", message: `${n} is out of int32 range` });
    if (UINT64.has(type) && n < 0) return out.push({ path: pathString(at), rule: "json", message: `${n} is negative` });
    switch (type) {
      case "double":
        return w.double(n);
      case "float":
        return w.float(n);
      case "fixed32":
        return w.fixed32(n);
      case "sfixed32":
        return w.sfixed32(n);
      case "fixed64":
      case "sfixed64":
        return w.fixed64(n);
      case "sint32":
      case "sint64":
        return w.varint(n >= 0 ? 2 * n : -2 * n - 1);
      default:
        return w.varint(n); // int32/int64 negatives become ten bytes, as protobuf requires
    }
  };
}

function scalarDefault(type: string): unknown {
  if (type === "string") return "";
  if (type === "bool") return false;
  if (type === "bytes") return undefined;
  return 0;
}

function scalarFamily(type: string): string {
  return type;
}

function checkScalar(type: string, v: Json, r: Obj, at: PathNode, out: Violation[]): void {
  if (v === undefined || v === null) return;
  if (type === "string") return checkString(String(v), r, at, out);
  if (type === "bool") {
    if (r.const !== undefined && v !== r.const) out.push({ path: pathString(at), rule: "bool.const", message: `must be ${String(r.const)}` });
    return;
  }
  if (type === "bytes") {
    const len = typeof v === "string" ? Buffer.from(v, "base64").length : (v as Uint8Array).length;
    if (r.min_len !== undefined && len < Number(r.min_len)) out.push({ path: pathString(at), rule: "bytes.min_len", message: `at least ${r.min_len} bytes` });
    if (r.max_len !== undefined && len > Number(r.max_len)) out.push({ path: pathString(at), rule: "bytes.max_len", message: `at most ${r.max_len} bytes` });
    return;
  }
  const n = Number(v);
  if (r.ignore_empty && n === 0) return;
  const fam = type;
  if (r.const !== undefined && n !== Number(r.const)) out.push({ path: pathString(at), rule: `${fam}.const`, message: `must be ${r.const}` });
  // PGV: gt/gte with lt/lte; when the lower bound is above the upper one the range is exclusive (outside).
  const lo = r.gt !== undefined ? { v: Number(r.gt), incl: false } : r.gte !== undefined ? { v: Number(r.gte), incl: true } : undefined;
  const hi = r.lt !== undefined ? { v: Number(r.lt), incl: false } : r.lte !== undefined ? { v: Number(r.lte), incl: true } : undefined;
  const aboveLo = lo ? (lo.incl ? n >= lo.v : n > lo.v) : true;
  const belowHi = hi ? (hi.incl ? n <= hi.v : n < hi.v) : true;
  const ok = lo && hi && lo.v > hi.v ? aboveLo || belowHi : aboveLo && belowHi;
  if (!ok) {
    const parts = [lo && `${lo.incl ? ">=" : ">"} ${lo.v}`, hi && `${hi.incl ? "<=" : "<"} ${hi.v}`].filter(Boolean);
    out.push({ path: pathString(at), rule: `${fam}.range`, message: `${n} must be ${parts.join(lo && hi && lo.v > hi.v ? " or " : " and ")}` });
  }
  if (Array.isArray(r.in) && !r.in.map(Number).includes(n)) out.push({ path: pathString(at), rule: `${fam}.in`, message: `must be one of ${r.in.join(", ")}` });
  if (Array.isArray(r.not_in) && r.not_in.map(Number).includes(n)) out.push({ path: pathString(at), rule: `${fam}.not_in`, message: `must not be ${n}` });
}

const regexCache = new Map<string, RegExp>();
function re(pattern: string): RegExp {
  let r = regexCache.get(pattern);
  if (!r) {
    // RE2 and JavaScript agree on the patterns Envoy's protos use; (?i) is RE2-only and becomes a flag.
    const ci = pattern.startsWith("(?i)");
    r = new RegExp(ci ? pattern.slice(4) : pattern, ci ? "iu" : "u");
    regexCache.set(pattern, r);
  }
  return r;
}

function checkEnum(en: protobuf.Enum, n: number | undefined, r: Obj, at: PathNode, out: Violation[]): void {
  if (n === undefined) return;
  if (r.defined_only && en.valuesById[n] === undefined)
    out.push({ path: pathString(at), rule: "enum.defined_only", message: `${n} is not a defined ${en.name}` });
  if (r.const !== undefined && n !== Number(r.const)) out.push({ path: pathString(at), rule: "enum.const", message: `must be ${r.const}` });
  if (Array.isArray(r.in) && !r.in.map(Number).includes(n)) out.push({ path: pathString(at), rule: "enum.in", message: `must be one of ${r.in.join(", ")}` });
  if (Array.isArray(r.not_in) && r.not_in.map(Number).includes(n)) out.push({ path: pathString(at), rule: "enum.not_in", message: `must not be ${n}` });
}

function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) n--;
  }
  return n;
}

function pushString(out: Violation[], at: PathNode, rule: string, message: string): void {
  out.push({ path: pathString(at), rule: `string.${rule}`, message });
}

function checkString(s: string, r: Obj, at: PathNode, out: Violation[]): void {
  if (r.ignore_empty && s === "") return;
  if (r.const !== undefined && s !== r.const) pushString(out, at, "const", `must be ${JSON.stringify(r.const)}`);
  // A code point is one or two UTF-16 units: count only when the length alone cannot decide.
  if (r.len !== undefined && codePoints(s) !== Number(r.len)) pushString(out, at, "len", `must be ${r.len} characters`);
  if (r.min_len !== undefined && s.length < 2 * Number(r.min_len) && codePoints(s) < Number(r.min_len))
    pushString(out, at, "min_len", `must be at least ${r.min_len} character(s)`);
  if (r.max_len !== undefined && s.length > Number(r.max_len) && codePoints(s) > Number(r.max_len))
    pushString(out, at, "max_len", `must be at most ${r.max_len} characters`);
  // UTF-8 needs 1-3 bytes per UTF-16 unit: only count bytes when the length cannot decide.
  if (r.min_bytes !== undefined && s.length < Number(r.min_bytes) && Buffer.byteLength(s) < Number(r.min_bytes))
    pushString(out, at, "min_bytes", `must be at least ${r.min_bytes} bytes`);
  if (r.max_bytes !== undefined && s.length * 3 > Number(r.max_bytes) && Buffer.byteLength(s) > Number(r.max_bytes))
    pushString(out, at, "max_bytes", `must be at most ${r.max_bytes} bytes`);
  if (typeof r.pattern === "string" && !re(r.pattern).test(s)) pushString(out, at, "pattern", `${JSON.stringify(s)} does not match ${r.pattern}`);
  if (typeof r.prefix === "string" && !s.startsWith(r.prefix)) pushString(out, at, "prefix", `must start with ${JSON.stringify(r.prefix)}`);
  if (typeof r.suffix === "string" && !s.endsWith(r.suffix)) pushString(out, at, "suffix", `must end with ${JSON.stringify(r.suffix)}`);
  if (typeof r.contains === "string" && !s.includes(r.contains)) pushString(out, at, "contains", `must contain ${JSON.stringify(r.contains)}`);
  if (typeof r.not_contains === "string" && s.includes(r.not_contains)) pushString(out, at, "not_contains", `must not contain ${JSON.stringify(r.not_contains)}`);
  if (Array.isArray(r.in) && !r.in.includes(s)) pushString(out, at, "in", `must be one of ${r.in.join(", ")}`);
  if (Array.isArray(r.not_in) && r.not_in.includes(s)) pushString(out, at, "not_in", `must not be ${JSON.stringify(s)}`);
  if (r.hostname && !HOSTNAME.test(s)) pushString(out, at, "hostname", `${JSON.stringify(s)} is not a host name`);
  if (r.ipv4 && !IPV4.test(s)) pushString(out, at, "ipv4", `${JSON.stringify(s)} is not an IPv4 address`);
  if (r.ipv6 && !isIpv6(s)) pushString(out, at, "ipv6", `${JSON.stringify(s)} is not an IPv6 address`);
  if (r.ip && !IPV4.test(s) && !isIpv6(s)) pushString(out, at, "ip", `${JSON.stringify(s)} is not an IP address`);
  if (r.address && !IPV4.test(s) && !isIpv6(s) && !HOSTNAME.test(s)) pushString(out, at, "address", `${JSON.stringify(s)} is not an address`);
  if (r.uri) {
    try {
      new URL(s);
    } catch {
      pushString(out, at, "uri", `${JSON.stringify(s)} is not an absolute URI`);
    }
  }
  if (r.uuid && !/^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$/.test(s)) pushString(out, at, "uuid", `${JSON.stringify(s)} is not a UUID`);
  if (r.well_known_regex !== undefined) {
    const strict = r.strict !== false;
    const which = String(r.well_known_regex);
    const rx = which === "HTTP_HEADER_NAME" || which === "1" ? (strict ? HEADER_NAME_STRICT : /^[^\u0000\u000A\u000D]+$/) : strict ? HEADER_VALUE_STRICT : HEADER_LOOSE;
    if (!rx.test(s)) pushString(out, at, "well_known_regex", `${JSON.stringify(s)} is not a valid ${which === "HTTP_HEADER_NAME" || which === "1" ? "header name" : "header value"}`);
  }
}

function durationBound(r: Obj, k: string): number | undefined {
  return r[k] !== undefined ? durNanos(r[k] as never) : undefined;
}

function checkDuration(d: { seconds: number; nanos: number } | undefined, r: Obj, at: PathNode, out: Violation[]): void {
  if (!d) return;
  const n = durNanos(d);
  const gt = durationBound(r, "gt");
  const gte = durationBound(r, "gte");
  const lt = durationBound(r, "lt");
  const lte = durationBound(r, "lte");
  const c = durationBound(r, "const");
  if (c !== undefined && n !== c) out.push({ path: pathString(at), rule: "duration.const", message: `must be ${c / 1e9}s` });
  if (gt !== undefined && !(n > gt)) out.push({ path: pathString(at), rule: "duration.gt", message: `must be longer than ${gt / 1e9}s` });
  if (gte !== undefined && !(n >= gte)) out.push({ path: pathString(at), rule: "duration.gte", message: `must be at least ${gte / 1e9}s` });
  if (lt !== undefined && !(n < lt)) out.push({ path: pathString(at), rule: "duration.lt", message: `must be shorter than ${lt / 1e9}s` });
  if (lte !== undefined && !(n <= lte)) out.push({ path: pathString(at), rule: "duration.lte", message: `must be at most ${lte / 1e9}s` });
}
