// Manifests → validated API objects, with file/line/field for every problem.
// Reads the same multi-document YAML an administrator would `kubectl apply`. Objects of other API
// groups (Secrets, ConfigMaps, ...) are passed over; casgateway.io objects must validate.
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { LineCounter, isMap, isScalar, isSeq, parseAllDocuments, type Document, type Node } from "yaml";
import { z } from "zod";
import { API_GROUP, API_VERSION, KIND_SCHEMAS, isKind, type ApiObject, type Kind } from "../../crds/index.js";
import { findUnknownFields, unknownFieldMessage } from "../../crds/unknown-fields.js";

export interface SourceLocation {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
}

export interface ManifestError extends SourceLocation {
  readonly kind?: string;
  readonly name?: string;
  /** Dotted field path, e.g. spec.hostnames.0; "(yaml)" for syntax errors. */
  readonly field: string;
  readonly message: string;
}

export interface SourcedObject {
  readonly object: ApiObject;
  readonly location: SourceLocation;
  /** Where a field of this object is written (nearest existing ancestor when the field is absent). */
  fieldLocation(field: string): SourceLocation;
}

export interface ManifestSet {
  readonly objects: readonly SourcedObject[];
  readonly errors: readonly ManifestError[];
  /** Files read, relative to the directory, sorted. */
  readonly files: readonly string[];
}

export interface ManifestOptions {
  /** Namespace for objects that name none. */
  readonly defaultNamespace?: string;
}

export function formatError(e: ManifestError): string {
  const what = e.kind && e.name ? `${e.kind}/${e.name}: ` : "";
  return `${e.file}:${e.line}:${e.column}: ${what}${e.field}: ${e.message}`;
}

/** Parse one file's text. Never throws on bad input: problems come back as errors. */
export function parseManifestText(text: string, file: string, opts: ManifestOptions = {}): ManifestSet {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const objects: SourcedObject[] = [];
  const errors: ManifestError[] = [];
  const pos = (offset: number): SourceLocation => {
    const p = lc.linePos(offset);
    return { file, line: p.line, column: p.col };
  };
  const docList: Document.Parsed[] = Array.isArray(docs) ? docs : [docs as unknown as Document.Parsed];
  for (const doc of docList) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) errors.push({ ...pos(e.pos[0]), field: "(yaml)", message: e.message.split("\n")[0] });
      continue;
    }
    if (doc.contents === null) continue; // empty document between separators
    const start = pos(doc.contents.range?.[0] ?? 0);
    const fieldLocation = (field: string): SourceLocation => {
      const path = field === "" ? [] : field.split(".");
      for (let n = path.length; n >= 0; n--) {
        const node = nodeAt(doc, path.slice(0, n));
        if (node?.range) return pos(node.range[0]);
      }
      return start;
    };
    let raw: unknown;
    try {
      raw = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      errors.push({ ...start, field: "(yaml)", message: err instanceof Error ? err.message : String(err) });
      continue;
    }
    if (raw === null || raw === undefined) continue; // empty document: only comments, or "---" twice
    if (typeof raw !== "object" || Array.isArray(raw)) {
      errors.push({ ...start, field: "(document)", message: "a manifest must be a YAML mapping (an object)" });
      continue;
    }
    const r = raw as Record<string, unknown>;
    const apiVersion = typeof r.apiVersion === "string" ? r.apiVersion : undefined;
    if (!apiVersion || !apiVersion.startsWith(`${API_GROUP}/`)) continue; // another API group: not ours
    const kind = r.kind;
    const meta = r.metadata as Record<string, unknown> | undefined;
    const name = typeof meta?.name === "string" ? meta.name : undefined;
    const ident = { ...(typeof kind === "string" ? { kind } : {}), ...(name ? { name } : {}) };
    if (apiVersion !== API_VERSION) {
      errors.push({ ...fieldLocation("apiVersion"), ...ident, field: "apiVersion", message: `unsupported version "${apiVersion}"; this gateway serves ${API_VERSION}` });
      continue;
    }
    if (!isKind(kind)) {
      errors.push({ ...fieldLocation("kind"), ...ident, field: "kind", message: `unknown kind ${JSON.stringify(kind)}; expected one of ${Object.keys(KIND_SCHEMAS).join(", ")}` });
      continue;
    }
    if (meta && opts.defaultNamespace && meta.namespace === undefined) r.metadata = { ...meta, namespace: opts.defaultNamespace };
    // Strict, as kubectl's field validation: a misspelt field is an error, not a silently dropped key.
    const unknown = findUnknownFields(KIND_SCHEMAS[kind], r);
    for (const u of unknown) {
      errors.push({ ...keyLocation(doc, u.path, pos, fieldLocation), ...ident, field: u.path.join("."), message: unknownFieldMessage(u) });
    }
    const parsed = (KIND_SCHEMAS[kind] as z.ZodType<ApiObject>).safeParse(r);
    if (unknown.length > 0 && parsed.success) continue;
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field = issue.path.map(String).join(".");
        errors.push({ ...fieldLocation(field), ...ident, field: field || "(object)", message: issueMessage(issue) });
      }
      continue;
    }
    objects.push({ object: parsed.data, location: start, fieldLocation });
  }
  return { objects, errors, files: [file] };
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type" && issue.message.includes("received undefined")) return "is required";
  return issue.message;
}

/** Where the key itself is written (the value's position is the fallback). */
function keyLocation(
  doc: Document.Parsed,
  path: readonly string[],
  pos: (offset: number) => SourceLocation,
  fieldLocation: (field: string) => SourceLocation,
): SourceLocation {
  const parent = nodeAt(doc, path.slice(0, -1));
  const key = path[path.length - 1];
  if (isMap(parent)) {
    const pair = parent.items.find((p) => (isScalar(p.key) ? String(p.key.value) : p.key) === key);
    const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
    if (range) return pos(range[0]);
  }
  return fieldLocation(path.join("."));
}

function nodeAt(doc: Document.Parsed, path: readonly string[]): Node | undefined {
  let node: unknown = doc.contents;
  for (const key of path) {
    if (isMap(node)) node = node.get(key, true);
    else if (isSeq(node)) node = node.get(Number(key), true);
    else return undefined;
    if (node === undefined) return undefined;
  }
  return node as Node;
}

const MANIFEST_RE = /\.(ya?ml|json)$/i;

/** Every *.yaml, *.yml and *.json file below dir (recursively, sorted, hidden entries skipped). */
export async function listManifestFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith(".")) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && MANIFEST_RE.test(e.name)) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

/** Read and validate every manifest file below dir. Paths in errors are relative to dir's parent-less form given. */
export async function loadManifestDir(dir: string, opts: ManifestOptions = {}): Promise<ManifestSet> {
  const files = await listManifestFiles(dir);
  const objects: SourcedObject[] = [];
  const errors: ManifestError[] = [];
  for (const f of files) {
    const display = join(dir, relative(dir, f));
    let text: string;
    try {
      text = await readFile(f, "utf8");
    } catch (err) {
      errors.push({ file: display, line: 1, column: 1, field: "(file)", message: err instanceof Error ? err.message : String(err) });
      continue;
    }
    const set = parseManifestText(text, display, opts);
    objects.push(...set.objects);
    errors.push(...set.errors);
  }
  return { objects, errors, files };
}

/** Find the source of an object by kind and name (for mapping topology problems to file:line). */
export function locate(set: ManifestSet, kind: Kind, name: string): SourcedObject | undefined {
  return set.objects.find((o) => o.object.kind === kind && o.object.metadata.name === name);
}
