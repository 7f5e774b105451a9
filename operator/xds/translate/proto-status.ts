// Fields, messages and enum values a configuration sets that Envoy's protos mark as deprecated,
// work in progress or hidden as not implemented. Read from the loaded descriptors: the field option
// `deprecated`, `(envoy.annotations.deprecated_at_minor_version)` (and `_enum` on enum values),
// `(xds.annotations.v3.field_status).work_in_progress`, the message and file status annotations,
// and the "[#not-implemented-hide:]" doc tag of the field's comment.
import protobuf from "protobufjs";
import { envoyRootWithComments, typeNameOf } from "./protos.js";

export type StatusKind = "deprecated" | "work_in_progress" | "not_implemented_hide";

export interface StatusFinding {
  /** Message.field (or Enum.VALUE, or a message name) the finding is about: what an allow-list names. */
  readonly subject: string;
  readonly kind: StatusKind;
  /** Where in the resource (for the report). */
  readonly path: string;
  /** The annotation, as written in the proto. */
  readonly detail: string;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function fieldStatus(f: protobuf.Field): { kind: StatusKind; detail: string }[] {
  const o = (f.options ?? {}) as Record<string, unknown>;
  const out: { kind: StatusKind; detail: string }[] = [];
  if (o.deprecated === true || o["(envoy.annotations.deprecated_at_minor_version)"] !== undefined) {
    const at = o["(envoy.annotations.deprecated_at_minor_version)"];
    out.push({ kind: "deprecated", detail: `deprecated${at !== undefined ? ` (deprecated_at_minor_version ${String(at)})` : ""}` });
  }
  if (o["(xds.annotations.v3.field_status).work_in_progress"] === true) out.push({ kind: "work_in_progress", detail: "(xds.annotations.v3.field_status).work_in_progress" });
  if (f.comment?.includes("[#not-implemented-hide:]")) out.push({ kind: "not_implemented_hide", detail: "[#not-implemented-hide:]" });
  return out;
}

function typeStatus(t: protobuf.Type): { kind: StatusKind; detail: string }[] {
  const out: { kind: StatusKind; detail: string }[] = [];
  const o = (t.options ?? {}) as Record<string, unknown>;
  if (o.deprecated === true) out.push({ kind: "deprecated", detail: "message deprecated" });
  if (o["(xds.annotations.v3.message_status).work_in_progress"] === true) out.push({ kind: "work_in_progress", detail: "(xds.annotations.v3.message_status).work_in_progress" });
  // File options land on the package namespace in protobufjs (shared by the package's files).
  const fo = (t.parent?.options ?? {}) as Record<string, unknown>;
  if (fo["(xds.annotations.v3.file_status).work_in_progress"] === true) out.push({ kind: "work_in_progress", detail: "(xds.annotations.v3.file_status).work_in_progress" });
  if (t.comment?.includes("[#not-implemented-hide:]")) out.push({ kind: "not_implemented_hide", detail: "message [#not-implemented-hide:]" });
  return out;
}

function enumValueStatus(e: protobuf.Enum, name: string): { kind: StatusKind; detail: string }[] {
  const o = (e.valuesOptions?.[name] ?? {}) as Record<string, unknown>;
  const out: { kind: StatusKind; detail: string }[] = [];
  if (o.deprecated === true || o["(envoy.annotations.deprecated_at_minor_version_enum)"] !== undefined) out.push({ kind: "deprecated", detail: "enum value deprecated" });
  if (e.comments?.[name]?.includes("[#not-implemented-hide:]")) out.push({ kind: "not_implemented_hide", detail: "enum value [#not-implemented-hide:]" });
  return out;
}

/** Findings for a proto3-JSON value of message `typeName` (Any values followed by their @type). */
export function protoStatusFindings(typeName: string, value: unknown, root: protobuf.Root = envoyRootWithComments()): StatusFinding[] {
  const out: StatusFinding[] = [];
  const visit = (t: protobuf.Type, v: Json, p: string) => {
    const name = t.fullName.replace(/^\./, "");
    for (const s of typeStatus(t)) out.push({ subject: name, kind: s.kind, path: p || name, detail: s.detail });
    for (const [k, x] of Object.entries(v)) {
      if (k === "@type") continue;
      const f = t.fields[k];
      if (!f) continue; // unknown fields are the validator's business (pgv.ts)
      const q = p ? `${p}.${k}` : k;
      for (const s of fieldStatus(f)) out.push({ subject: `${name}.${k}`, kind: s.kind, path: q, detail: s.detail });
      f.resolve();
      const rt = f.resolvedType;
      const items: [unknown, string][] = f.map && isObj(x) ? Object.entries(x).map(([mk, mv]) => [mv, `${q}[${mk}]`]) : Array.isArray(x) ? x.map((y, i) => [y, `${q}[${i}]`]) : [[x, q]];
      for (const [item, ip] of items) {
        if (rt instanceof protobuf.Enum && typeof item === "string") {
          for (const s of enumValueStatus(rt, item)) out.push({ subject: `${rt.fullName.replace(/^\./, "")}.${item}`, kind: s.kind, path: ip, detail: s.detail });
        } else if (rt instanceof protobuf.Type && isObj(item)) visitValue(rt, item, ip);
      }
    }
  };
  const visitValue = (t: protobuf.Type, v: Json, p: string) => {
    const name = t.fullName.replace(/^\./, "");
    if (name === "google.protobuf.Any") {
      if (typeof v["@type"] === "string") visit(root.lookupType(typeNameOf(v["@type"])), v, p);
      return;
    }
    if (name.startsWith("google.protobuf.")) return; // well-known types (Duration, wrappers, Struct): JSON forms
    visit(t, v, p);
  };
  if (!isObj(value)) return out;
  visitValue(root.lookupType(typeName), value, "");
  return out;
}
