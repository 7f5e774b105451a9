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
type Convert = (v: Json, at: PathNode, out: Violation[]) => unknown;

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

/**
 * An already-encoded sub-message. A frozen (shared) value is converted, checked and encoded once;
 * the parent's encoder then copies its bytes (see installPreEncoded) instead of encoding it again.
 */
class PreEncoded {
  constructor(readonly bytes: Uint8Array) {}
}
// Like protobufjs' own writeBytes: a loop beats TypedArray#set for short arrays.
const copyBytes = (val: Uint8Array, buf: Uint8Array, pos: number) => {
  if (val.length < 128) for (let i = 0; i < val.length; i++) buf[pos + i] = val[i];
  else buf.set(val, pos);
};
type WriterInternals = protobuf.Writer & { _push(fn: (v: Uint8Array, b: Uint8Array, p: number) => void, len: number, val: Uint8Array): protobuf.Writer };

/** Wrap a type's generated encoder so that it writes PreEncoded values as raw bytes. */
function installPreEncoded(type: protobuf.Type): void {
  type.setup(); // generated encode/decode/... become own properties; later calls do not replace them
  const generated = type.encode;
  type.encode = function encodeOrCopy(this: protobuf.Type, m: unknown, w?: protobuf.Writer): protobuf.Writer {
    if (m instanceof PreEncoded) {
      const writer = (w ?? protobuf.Writer.create()) as WriterInternals;
      return m.bytes.length ? writer._push(copyBytes, m.bytes.length, m.bytes) : writer;
    }
    return generated.call(this, m as Obj, w);
  } as typeof type.encode;
}

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
  readonly oneof: string | undefined;
  readonly convert: Convert;
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
  readonly fieldList: FieldPlan[];
  readonly requiredOneofs: string[];
  readonly oneofs: Map<string, string[]>;
  readonly disabled: boolean;
}

export class ProtoCodec {
  private readonly plans = new Map<protobuf.Type, TypePlan>();
  private readonly converters = new Map<protobuf.Type, Convert>();
  private readonly types = new Map<string, protobuf.Type | null>();
  private readonly anyMemo = new WeakMap<object, unknown>();
  /**
   * Values already converted without violations, by identity, per message type. Builders share
   * sub-objects (TLS contexts, health checks, circuit breakers) between resources, so each is
   * converted, checked and (for Any) encoded once; values are treated as immutable once built.
   */
  private readonly memo = new Map<protobuf.Type, WeakMap<object, unknown>>();

  constructor(private readonly root: protobuf.Root) {}

  /** Convert a proto3-JSON value (snake_case field names) of `typeName`, check PGV rules, and encode. */
  encode(typeName: string, json: Json): EncodeResult {
    const type = this.lookup(typeName);
    if (!type) return { bytes: undefined, violations: [{ path: "", rule: "type", message: `unknown message type ${typeName}` }] };
    const conv = this.converter(type);
    let out: Violation[] = [];
    const obj = conv(json, NO_PATH, out);
    if (out.length > 0) {
      tracking = true;
      try {
        out = [];
        conv(json, { up: null, seg: "" }, out);
      } finally {
        tracking = false;
      }
      return { bytes: undefined, violations: out };
    }
    return { bytes: type.encode(obj as Obj).finish(), violations: out };
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

  private converter(type: protobuf.Type): Convert {
    const key = type;
    let c = this.converters.get(key);
    if (c) return c;
    // Placeholder first: message types are recursive.
    let real: Convert | undefined;
    c = (v, at, out) => real!(v, at, out);
    this.converters.set(key, c);
    real = this.buildConverter(type);
    this.converters.set(key, real);
    return real;
  }

  private buildConverter(type: protobuf.Type): Convert {
    const name = type.fullName.replace(/^\./, "");
    switch (name) {
      case "google.protobuf.Duration":
        return (v, at, out) => {
          if (typeof v === "string") {
            const d = parseDuration(v);
            if (d) return d;
          } else if (v && typeof v === "object" && "seconds" in (v as Obj)) return v;
          out.push({ path: pathString(at), rule: "json", message: `not a duration: ${JSON.stringify(v)}` });
          return {};
        };
      case "google.protobuf.Any":
        return (v, at, out) => this.convertAny(v, at, out);
      case "google.protobuf.Struct":
        return (v, at, out) => this.convertStruct(v, at, out);
      case "google.protobuf.Value":
        return (v, at, out) => this.convertValue(v, at, out);
      case "google.protobuf.ListValue":
        return (v, at, out) => ({ values: Array.isArray(v) ? v.map((x, i) => this.convertValue(x, child(at, i), out)) : [] });
      case "google.protobuf.Empty":
        return () => ({});
    }
    if (name in WRAPPERS) {
      const scalar = this.scalarConverter(WRAPPERS[name], undefined);
      return (v, at, out) => ({ value: scalar(v, at, out) });
    }
    const plan = this.plan(type);
    installPreEncoded(type);
    const memo = new WeakMap<object, unknown>();
    this.memo.set(type, memo);
    const checked = plan.fieldList.filter((f) => f.required || f.check);
    const oneofs = [...plan.oneofs];
    return (v, at, out) => {
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        out.push({ path: pathString(at), rule: "json", message: `expected an object for ${name}` });
        return {};
      }
      // Only frozen values are shared between resources (and immutable): memoise those.
      const frozen = Object.isFrozen(v);
      if (frozen) {
        const hit = memo.get(v);
        if (hit !== undefined) return hit;
      }
      const before = out.length;
      const src = v as Obj;
      const result: Obj = {};
      for (const k in src) {
        const fv = src[k];
        if (fv === undefined) continue;
        const f = plan.fields.get(k);
        if (!f) {
          out.push({ path: pathString(child(at, k)), rule: "json", message: `${name} has no field "${k}"` });
          continue;
        }
        if (fv === null) continue;
        if (f.kind === "scalar" && f.oneof === undefined && f.isDefault(fv)) continue; // proto3: defaults are not written
        if (f.kind === "repeated" && (fv as unknown[]).length === 0) continue;
        result[k] = f.convert(fv, child(at, k), out);
      }
      if (plan.disabled) return result;
      for (const f of checked) {
        const fv = src[f.name];
        const present = fv !== undefined && fv !== null;
        if (f.required && !present && f.oneof === undefined) {
          out.push({ path: pathString(child(at, f.name)), rule: "message.required", message: "value is required" });
          continue;
        }
        if (!f.check) continue;
        if (present) f.check(fv, child(at, f.name), out);
        else if (f.kind === "scalar" && f.oneof === undefined) f.check(f.defaultValue, child(at, f.name), out);
        else if (f.kind === "repeated" || f.kind === "map") f.check(f.kind === "map" ? {} : [], child(at, f.name), out);
      }
      for (const [oneof, members] of oneofs) {
        let set = 0;
        for (const m of members) if (src[m] !== undefined && src[m] !== null) set++;
        if (set > 1) out.push({ path: pathString(child(at, oneof)), rule: "oneof", message: `only one of ${members.join(", ")} may be set` });
        else if (set === 0 && plan.requiredOneofs.includes(oneof))
          out.push({ path: pathString(child(at, oneof)), rule: "oneof.required", message: `one of ${members.join(", ")} is required` });
      }
      if (frozen && out.length === before) {
        const pre = new PreEncoded(type.encode(result).finish());
        memo.set(v, pre);
        return pre;
      }
      return result;
    };
  }

  private plan(type: protobuf.Type): TypePlan {
    const cachedPlan = this.plans.get(type);
    if (cachedPlan) return cachedPlan;
    const opts = (type.options ?? {}) as Obj;
    const disabled = opts["(validate.disabled)"] === true || opts["(validate.ignored)"] === true;
    const fields = new Map<string, FieldPlan>();
    const oneofs = new Map<string, string[]>();
    const requiredOneofs: string[] = [];
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
    const plan: TypePlan = { fields, fieldList: [...fields.values()], oneofs, requiredOneofs, disabled };
    this.plans.set(type, plan);
    return plan;
  }

  private fieldPlan(f: protobuf.Field, rules: Obj | undefined): FieldPlan {
    const oneof = f.partOf?.name;
    if (f instanceof protobuf.MapField || (f as { map?: boolean }).map) {
      const mf = f as unknown as protobuf.FieldBase;
      const valueConv = this.elementConverter(mf, (rules?.map as Obj | undefined)?.values as Obj | undefined);
      const mapRules = rules?.map as Obj | undefined;
      return {
        name: f.name,
        oneof,
        kind: "map",
        required: false,
        defaultValue: undefined,
        isDefault: () => false,
        convert: (v, at, out) => {
          const o: Obj = {};
          if (!v || typeof v !== "object") {
            out.push({ path: pathString(at), rule: "json", message: "expected an object (map)" });
            return o;
          }
          for (const k of Object.keys(v as Obj).sort()) o[k] = valueConv(((v as Obj)[k]), child(at, `[${JSON.stringify(k)}]`), out);
          return o;
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
      const itemConv = this.elementConverter(f, repRules?.items as Obj | undefined);
      return {
        name: f.name,
        oneof,
        kind: "repeated",
        required: false,
        defaultValue: undefined,
        isDefault: () => false,
        convert: (v, at, out) => {
          if (!Array.isArray(v)) {
            out.push({ path: pathString(at), rule: "json", message: "expected an array" });
            return [];
          }
          const arr = new Array(v.length);
          for (let i = 0; i < v.length; i++) arr[i] = itemConv(v[i], child(at, i), out);
          return arr;
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
    // Scalars and enums: convert without rules, check the rules separately so that an absent
    // field is checked at its proto3 default (PGV does that: `min_len: 1` makes a string required).
    const conv = this.elementConverter(f, scalarLike ? undefined : rules);
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
      (((rules?.message as Obj | undefined)?.required === true) ||
        ((rules?.duration as Obj | undefined)?.required === true) ||
        ((rules?.any as Obj | undefined)?.required === true) ||
        ((rules?.timestamp as Obj | undefined)?.required === true));
    const def = isMessage ? undefined : rt instanceof protobuf.Enum ? 0 : scalarDefault(f.type);
    return {
      name: f.name,
      oneof,
      kind: isMessage ? "message" : "scalar",
      required,
      defaultValue: def,
      isDefault: isMessage
        ? () => false
        : rt instanceof protobuf.Enum
          ? (v) => v === 0 || (typeof v === "string" && (rt as protobuf.Enum).values[v] === 0)
          : (v) => v === def || (def === 0 && v === "0"),
      convert: conv,
      check,
    };
  }

  /**
   * Converter for one value of a field (an item, for repeated fields), with the field's rules
   * checked on the JSON value as it converts.
   */
  private elementConverter(f: protobuf.FieldBase, rules: Obj | undefined): Convert {
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) {
      const inner = this.converter(rt);
      const full = rt.fullName.replace(/^\./, "");
      const skip = (rules?.message as Obj | undefined)?.skip === true;
      const wrapped = WRAPPERS[full];
      const wrapperRules = wrapped ? (rules?.[wrapped] as Obj | undefined) : undefined;
      const durRules = full === "google.protobuf.Duration" ? (rules?.duration as Obj | undefined) : undefined;
      const anyRules = full === "google.protobuf.Any" ? (rules?.any as Obj | undefined) : undefined;
      return (v, at, out) => {
        const res = skip ? this.convertUnchecked(rt, v, at, out) : inner(v, at, out);
        if (wrapperRules) checkScalar(wrapped, v, wrapperRules, at, out);
        if (durRules) checkDuration(res as { seconds: number; nanos: number }, durRules, at, out);
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
      return (v, at, out) => {
        let n: number | undefined;
        if (typeof v === "number") n = v;
        else if (typeof v === "string") n = en.values[v];
        if (n === undefined) {
          out.push({ path: pathString(at), rule: "json", message: `${JSON.stringify(v)} is not a value of ${en.name}` });
          return 0;
        }
        if (enumRules) checkEnum(en, n, enumRules, at, out);
        return n;
      };
    }
    return this.scalarConverter(f.type, rules?.[scalarFamily(f.type)] as Obj | undefined);
  }

  private convertUnchecked(rt: protobuf.Type, v: Json, at: PathNode, out: Violation[]): unknown {
    // message.skip: convert, but drop rule violations found below.
    const scratch: Violation[] = [];
    const res = this.converter(rt)(v, at, scratch);
    for (const x of scratch) if (x.rule === "json") out.push(x);
    return res;
  }

  private scalarConverter(type: string, rules: Obj | undefined): Convert {
    return (v, at, out) => {
      let res: unknown = v;
      if (type === "string") {
        if (typeof v !== "string") out.push({ path: pathString(at), rule: "json", message: "expected a string" });
      } else if (type === "bool") {
        if (typeof v !== "boolean") out.push({ path: pathString(at), rule: "json", message: "expected a boolean" });
      } else if (type === "bytes") {
        if (typeof v === "string") res = Buffer.from(v, "base64");
        else if (!(v instanceof Uint8Array)) out.push({ path: pathString(at), rule: "json", message: "expected base64 bytes" });
      } else {
        const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
        if (typeof n !== "number" || Number.isNaN(n)) out.push({ path: pathString(at), rule: "json", message: `expected a number, got ${JSON.stringify(v)}` });
        else {
          if (!FLOAT.has(type) && !Number.isInteger(n)) out.push({ path: pathString(at), rule: "json", message: `expected an integer, got ${n}` });
          if (UINT32.has(type) && (n < 0 || n > 0xffffffff)) out.push({ path: pathString(at), rule: "json", message: `${n} is out of uint32 range` });
          if (INT32.has(type) && (n < -0x80000000 || n > 0x7fffffff)) out.push({ path: pathString(at), rule: "json", message: `${n} is out of int32 range` });
          if (UINT64.has(type) && n < 0) out.push({ path: pathString(at), rule: "json", message: `${n} is negative` });
          res = n;
        }
      }
      if (rules) checkScalar(type, v, rules, at, out);
      return res;
    };
  }

  private convertAny(v: Json, at: PathNode, out: Violation[]): unknown {
    const o = v as Obj;
    const url = o && typeof o === "object" ? o["@type"] : undefined;
    if (typeof url !== "string") {
      out.push({ path: pathString(at), rule: "json", message: "Any needs an @type" });
      return {};
    }
    const frozen = Object.isFrozen(o);
    const hit = frozen ? this.anyMemo.get(o) : undefined;
    if (hit) return hit;
    const typeName = url.slice(url.lastIndexOf("/") + 1);
    const inner = this.lookup(typeName);
    if (!inner) {
      out.push({ path: pathString(at), rule: "any.type", message: `unknown type ${url}` });
      return {};
    }
    const { ["@type"]: _t, ...rest } = o;
    const wkt = typeName in WRAPPERS || typeName === "google.protobuf.Duration" || typeName === "google.protobuf.Struct" || typeName === "google.protobuf.Value";
    const innerAt = child(at, `<${typeName.slice(typeName.lastIndexOf(".") + 1)}>`);
    const before = out.length;
    const obj = this.converter(inner)(wkt ? rest.value : rest, innerAt, out);
    if (out.length > before) return { type_url: url, value: new Uint8Array() };
    const res = { type_url: url, value: inner.encode(obj as Obj).finish() };
    if (frozen) this.anyMemo.set(o, res);
    return res;
  }

  private convertStruct(v: Json, at: PathNode, out: Violation[]): unknown {
    if (!v || typeof v !== "object" || Array.isArray(v)) {
      out.push({ path: pathString(at), rule: "json", message: "expected an object (Struct)" });
      return {};
    }
    const fields: Obj = {};
    for (const k of Object.keys(v as Obj).sort()) fields[k] = this.convertValue((v as Obj)[k], child(at, k), out);
    return { fields };
  }

  private convertValue(v: Json, at: PathNode, out: Violation[]): unknown {
    if (v === null) return { null_value: 0 };
    if (typeof v === "number") return { number_value: v };
    if (typeof v === "string") return { string_value: v };
    if (typeof v === "boolean") return { bool_value: v };
    if (Array.isArray(v)) return { list_value: { values: v.map((x, i) => this.convertValue(x, child(at, i), out)) } };
    return { struct_value: this.convertStruct(v, at, out) };
  }
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
