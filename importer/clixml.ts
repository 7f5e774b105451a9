// A reader for CLIXML, PowerShell's object serialization (MS-PSRP 2.2.5), as Export-Clixml writes
// it: <Objs> of <Obj> with type names (<TN>, later <TNRef>), <ToString>, adapted (<Props>) and
// extended (<MS>) properties, primitive values, enums (an Obj with ToString and its integer),
// collections (<LST>, <IE>, <STK>, <QUE>), dictionaries (<DCT>) and references (<Ref>).
// The XML itself is parsed by fast-xml-parser; this module only walks the element tree.
import { XMLParser, XMLValidator } from "fast-xml-parser";

/** A primitive value: strings, numbers, booleans; dates, GUIDs, URIs, versions as their text. */
export type PsPrimitive = string | number | boolean | bigint;
export type PsValue = PsPrimitive | null | PsObject;

/** One deserialized object. Collections and dictionaries are objects too (their type names say which). */
export interface PsObject {
  readonly typeNames: readonly string[];
  /** The object's string form (<ToString>), e.g. an enum's "Mailbox, ClientAccess". */
  readonly str: string | undefined;
  /** Adapted and extended properties by name, in file order (a name in both: <MS> wins). */
  readonly props: ReadonlyMap<string, PsValue>;
  /** Items of a list, enumerable, stack or queue. */
  readonly items: readonly PsValue[] | undefined;
  /** Entries of a dictionary, keyed by the key's string form. */
  readonly dict: ReadonlyMap<string, PsValue> | undefined;
  /** The wrapped value of an enum or of a primitive with notes (the integer of an enum). */
  readonly value: PsPrimitive | undefined;
}

export class ClixmlError extends Error {
  constructor(
    readonly file: string,
    readonly where: string,
    readonly detail: string,
  ) {
    super(`${file}: ${where ? `${where}: ` : ""}${detail}`);
    this.name = "ClixmlError";
  }
}

// fast-xml-parser's preserveOrder tree: one single-key record per element (plus ":@" attributes).
type Node = Record<string, unknown>;

const PRIMITIVES: Record<string, (text: string) => PsPrimitive> = {
  S: (t) => decodeString(t),
  C: (t) => String.fromCharCode(Number(t)),
  B: (t) => t.trim().toLowerCase() === "true",
  DT: (t) => t.trim(),
  TS: (t) => t.trim(),
  By: (t) => Number(t),
  SB: (t) => Number(t),
  U16: (t) => Number(t),
  I16: (t) => Number(t),
  U32: (t) => Number(t),
  I32: (t) => Number(t),
  U64: (t) => bigOrNumber(t),
  I64: (t) => bigOrNumber(t),
  Sg: (t) => Number(t),
  Db: (t) => Number(t),
  D: (t) => Number(t),
  BA: (t) => t.trim(),
  G: (t) => t.trim(),
  URI: (t) => decodeString(t),
  Version: (t) => t.trim(),
  XD: (t) => decodeString(t),
  SBK: (t) => decodeString(t),
  SS: (t) => t.trim(),
  PR: (t) => decodeString(t),
};

const COLLECTIONS = new Set(["LST", "IE", "STK", "QUE"]);

function bigOrNumber(t: string): number | bigint {
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : BigInt(t.trim());
}

/** MS-PSRP 2.2.5.3.2: characters XML cannot carry are written _xHHHH_ (and "_" before such a pattern as _x005F_). */
export function decodeString(s: string): string {
  return s.replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Export-Clixml writes UTF-16 LE with a BOM by default (Windows PowerShell); -Encoding UTF8 writes UTF-8. */
export function decodeFileBytes(bytes: Uint8Array): string {
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder("utf-16le").decode(bytes.subarray(2));
  if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder("utf-16be").decode(bytes.subarray(2));
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return new TextDecoder("utf-8").decode(bytes.subarray(3));
  // No BOM: UTF-16 still shows as every other byte zero in "<O"...
  if (bytes.length >= 4 && bytes[0] === 0x3c && bytes[1] === 0 && bytes[2] !== 0 && bytes[3] === 0) return new TextDecoder("utf-16le").decode(bytes);
  return new TextDecoder("utf-8").decode(bytes);
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  htmlEntities: false,
});

function tagOf(n: Node): string | undefined {
  for (const k of Object.keys(n)) if (k !== ":@") return k;
  return undefined;
}
function childrenOf(n: Node, tag: string): Node[] {
  const c = n[tag];
  return Array.isArray(c) ? (c as Node[]) : [];
}
function attrsOf(n: Node): Record<string, string> {
  const a = n[":@"];
  return a && typeof a === "object" ? (a as Record<string, string>) : {};
}
/** Text content of a leaf element (entities already resolved by the parser). */
function textOf(n: Node, tag: string): string {
  return childrenOf(n, tag)
    .map((c) => (typeof c["#text"] === "string" || typeof c["#text"] === "number" ? String(c["#text"]) : ""))
    .join("");
}
/** Element children only (whitespace between elements dropped). */
function elements(n: Node, tag: string): Node[] {
  return childrenOf(n, tag).filter((c) => tagOf(c) !== "#text" && tagOf(c) !== "#comment");
}

/**
 * Parse a CLIXML document into its top-level values (one per object Export-Clixml was given).
 * `file` names the source in errors.
 */
export function parseClixml(text: string, file: string): PsValue[] {
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new ClixmlError(file, `line ${valid.err.line}, column ${valid.err.col}`, `not well-formed XML: ${valid.err.msg}`);
  }
  const tree = parser.parse(text) as Node[];
  const root = tree.find((n) => tagOf(n) !== "#text" && tagOf(n) !== "#comment");
  if (!root || tagOf(root) !== "Objs") {
    throw new ClixmlError(file, "", `not a CLIXML file: the root element is <${root ? tagOf(root) : "nothing"}>, Export-Clixml writes <Objs>`);
  }
  const r = new Reader(file);
  return elements(root, "Objs").map((e, i) => r.value(e, `object ${i + 1}`));
}

class Reader {
  private readonly typeNames = new Map<string, readonly string[]>();
  private readonly objects = new Map<string, PsObject>();
  constructor(private readonly file: string) {}

  private fail(where: string, message: string): never {
    throw new ClixmlError(this.file, where, message);
  }

  value(n: Node, where: string): PsValue {
    const tag = tagOf(n);
    if (tag === undefined) this.fail(where, "empty element");
    if (tag === "Nil") return null;
    if (tag === "Obj") return this.object(n, where);
    if (tag === "Ref") {
      const id = attrsOf(n).RefId;
      const o = id === undefined ? undefined : this.objects.get(id);
      if (!o) this.fail(where, `<Ref RefId="${id ?? ""}"> refers to no earlier <Obj>`);
      return o;
    }
    const prim = PRIMITIVES[tag];
    if (!prim) this.fail(where, `unknown CLIXML element <${tag}>`);
    const text = textOf(n, tag);
    const v = prim(text);
    if (typeof v === "number" && Number.isNaN(v)) this.fail(where, `<${tag}> holds "${text}", not a number`);
    return v;
  }

  private object(n: Node, where: string): PsObject {
    let typeNames: readonly string[] = [];
    let str: string | undefined;
    const props = new Map<string, PsValue>();
    let items: PsValue[] | undefined;
    let dict: Map<string, PsValue> | undefined;
    let value: PsPrimitive | undefined;
    const refId = attrsOf(n).RefId;
    for (const c of elements(n, "Obj")) {
      const tag = tagOf(c)!;
      if (tag === "TN") {
        typeNames = elements(c, "TN").map((t) => decodeString(textOf(t, tagOf(t)!)));
        const id = attrsOf(c).RefId;
        if (id !== undefined) this.typeNames.set(id, typeNames);
      } else if (tag === "TNRef") {
        const id = attrsOf(c).RefId;
        const t = id === undefined ? undefined : this.typeNames.get(id);
        if (!t) this.fail(where, `<TNRef RefId="${id ?? ""}"> refers to no earlier <TN>`);
        typeNames = t;
      } else if (tag === "ToString") {
        str = decodeString(textOf(c, "ToString"));
      } else if (tag === "Props" || tag === "MS") {
        for (const p of elements(c, tag)) {
          const name = attrsOf(p).N;
          if (name === undefined) this.fail(where, `a property in <${tag}> has no N attribute`);
          const pn = decodeString(name);
          props.set(pn, this.value(p, `${where}, property ${pn}`));
        }
      } else if (COLLECTIONS.has(tag)) {
        items = elements(c, tag).map((e, i) => this.value(e, `${where}, item ${i + 1}`));
      } else if (tag === "DCT") {
        dict = new Map();
        for (const en of elements(c, "DCT")) {
          let key: PsValue = null;
          let val: PsValue = null;
          for (const kv of elements(en, tagOf(en)!)) {
            const k = attrsOf(kv).N;
            if (k === "Key") key = this.value(kv, `${where}, dictionary key`);
            else if (k === "Value") val = this.value(kv, `${where}, dictionary value`);
          }
          dict.set(stringForm(key) ?? "", val);
        }
      } else {
        // A primitive directly inside <Obj>: an enum's integer or a primitive with notes.
        const v = this.value(c, where);
        if (v !== null && typeof v !== "object") value = v;
      }
    }
    const o: PsObject = { typeNames, str, props, items, dict, value };
    if (refId !== undefined) this.objects.set(refId, o);
    return o;
  }
}

/** Type names without the "Deserialized." prefix that objects from a remote session carry. */
export function plainTypeNames(o: PsObject): string[] {
  return o.typeNames.map((t) => t.replace(/^(Deserialized\.)+/, ""));
}

/** A value's string form: primitives as text, objects by their ToString (enums, ADObjectId, ServerVersion). */
export function stringForm(v: PsValue | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object") return String(v);
  if (v.str !== undefined) return v.str;
  if (v.value !== undefined) return String(v.value);
  return undefined;
}

/** A multi-valued property's items (an Obj holding <LST>), a single value as one item, null as none. */
export function listForm(v: PsValue | undefined): PsValue[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "object" && v.items !== undefined) return [...v.items];
  return [v];
}
