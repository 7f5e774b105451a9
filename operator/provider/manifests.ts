// Manifests → validated API objects, with file/line/field for every problem.
// Reads the same multi-document YAML an administrator would `kubectl apply`. Objects of other API
// groups (Secrets, ConfigMaps, ...) are passed over; casgateway.io objects must validate.
import { readdir, readFile, stat } from "node:fs/promises";
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

/**
 * Parse one file's text. Never throws on bad input: problems come back as errors.
 *
 * Linear in the text's size: the file is cut at its document markers first, a document whose
 * top-level apiVersion names another API group (a ConfigMap, a Deployment) is passed over without
 * being parsed, and duplicate keys are found with a Set per mapping (the yaml library's own
 * uniqueKeys check compares every key with every earlier one: 20,000 keys took 8.7 s).
 */
export function parseManifestText(text: string, file: string, opts: ManifestOptions = {}): ManifestSet {
  const objects: SourcedObject[] = [];
  const errors: ManifestError[] = [];
  for (const chunk of documentChunks(text)) {
    if (isForeignChunk(chunk.text)) continue;
    parseChunk(chunk.text, chunk.line - 1, file, opts, objects, errors);
  }
  return { objects, errors, files: [file] };
}

interface Chunk {
  readonly text: string;
  /** 1-based line of the chunk's first line in the file. */
  readonly line: number;
}

// A line that starts a document: "---" followed by a blank or the end of the line. ("..." ends a
// document; what follows it stays in the same piece and is parsed with it.)
const MARKER_RE = /^---(?=[ \t\r\n]|$)/gm;

/** The file cut before every "---" line (YAML allows no such line inside a scalar at column 0). */
function* documentChunks(text: string): Generator<Chunk> {
  let from = 0;
  let line = 1;
  MARKER_RE.lastIndex = 0;
  for (let m = MARKER_RE.exec(text); m; m = MARKER_RE.exec(text)) {
    if (m.index === from) continue;
    const piece = text.slice(from, m.index);
    yield { text: piece, line };
    line += countLines(piece);
    from = m.index;
  }
  yield { text: text.slice(from), line };
}

function countLines(s: string): number {
  let n = 0;
  for (let i = s.indexOf("\n"); i !== -1; i = s.indexOf("\n", i + 1)) n++;
  return n;
}

const TOP_API_VERSION_RE = /^apiVersion:[ \t]*(?:"([^"\n]*)"|'([^'\n]*)'|([^ \t\r\n#"'][^ \t\r\n#]*))[ \t]*(?:#[^\n]*)?\r?$/gm;

/**
 * Whether a document plainly belongs to another API group: exactly one top-level (column 0)
 * `apiVersion:` with a plain or quoted value outside casgateway.io. Anything less plain (flow style,
 * JSON, anchors, two apiVersion keys) is parsed in full and judged there.
 */
function isForeignChunk(text: string): boolean {
  TOP_API_VERSION_RE.lastIndex = 0;
  const m = TOP_API_VERSION_RE.exec(text);
  if (!m) return false;
  if (TOP_API_VERSION_RE.exec(text)) return false;
  if (/^apiVersion[ \t]*:/gm.exec(text.slice(0, m.index) + text.slice(m.index + m[0].length))) return false;
  const value = m[1] ?? m[2] ?? m[3] ?? "";
  if (value.startsWith("&") || value.startsWith("*") || value.startsWith("!")) return false;
  return value !== API_GROUP && !value.startsWith(`${API_GROUP}/`);
}

/** Unknown fields named one by one per document; the rest are counted in one more error. */
export const MAX_UNKNOWN_FIELDS_NAMED = 20;

function parseChunk(text: string, lineOffset: number, file: string, opts: ManifestOptions, objects: SourcedObject[], errors: ManifestError[]): void {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  const pos = (offset: number): SourceLocation => {
    const p = lc.linePos(offset);
    return { file, line: p.line + lineOffset, column: p.col };
  };
  const docList: Document.Parsed[] = Array.isArray(docs) ? docs : [docs as unknown as Document.Parsed];
  for (const doc of docList) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) errors.push({ ...pos(e.pos[0]), field: "(yaml)", message: e.message.split("\n")[0] });
      continue;
    }
    const dup = duplicateKey(doc.contents);
    if (dup) {
      errors.push({ ...pos(dup.offset), field: "(yaml)", message: `Map keys must be unique: ${JSON.stringify(dup.key)} is already on line ${pos(dup.firstOffset).line}` });
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
    const unknown = findUnknownFields(KIND_SCHEMAS[kind], r, MAX_UNKNOWN_FIELDS_NAMED);
    // The first few are named: each is located by a scan of its mapping, so naming all of a
    // document's 100,000 unknown keys would cost their square (minutes of CPU) and 100 MB of messages.
    for (const u of unknown.slice(0, MAX_UNKNOWN_FIELDS_NAMED)) {
      errors.push({ ...keyLocation(doc, u.path, pos, fieldLocation), ...ident, field: u.path.join("."), message: unknownFieldMessage(u) });
    }
    if (unknown.length > MAX_UNKNOWN_FIELDS_NAMED) {
      const next = unknown[MAX_UNKNOWN_FIELDS_NAMED];
      errors.push({
        ...keyLocation(doc, next.path, pos, fieldLocation),
        ...ident,
        field: next.path.join("."),
        message: `and ${unknown.length - MAX_UNKNOWN_FIELDS_NAMED} more unknown fields in this object (the first ${MAX_UNKNOWN_FIELDS_NAMED} are named)`,
      });
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
}

/** The first key written twice in one mapping, anywhere in the tree: one Set per mapping, one pass. */
function duplicateKey(root: unknown): { key: string; offset: number; firstOffset: number } | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Map<string, number>();
      for (const pair of node.items) {
        const k = pair.key;
        if (isScalar(k)) {
          const key = typeof k.value === "string" ? k.value : `${typeof k.value}:${String(k.value)}`;
          const at = k.range?.[0] ?? 0;
          const first = seen.get(key);
          if (first !== undefined) return { key: String(k.value), offset: at, firstOffset: first };
          seen.set(key, at);
        } else if (k !== null && k !== undefined) stack.push(k);
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return undefined;
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

export interface ManifestListing {
  /** Manifest files, sorted (paths as reached from dir, symbolic links not resolved). */
  readonly files: string[];
  /** Broken links and link loops, one error each. */
  readonly problems: ManifestError[];
}

/**
 * Every *.yaml, *.yml and *.json file below dir (recursively, sorted, hidden entries skipped).
 * Symbolic links are followed, as a Kubernetes ConfigMap volume needs (`x.yaml -> ..data/x.yaml`,
 * `..data -> ..2026_12_05_...`: the hidden entries themselves are reached only through the links); a
 * link that leads back into a directory being walked is a loop, refused with an error.
 */
export async function listManifestTree(dir: string): Promise<ManifestListing> {
  const files: string[] = [];
  const problems: ManifestError[] = [];
  const problem = (file: string, message: string) => problems.push({ file, line: 1, column: 1, field: "(file)", message });
  const walk = async (d: string, ancestors: ReadonlyMap<string, string>) => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith(".")) continue;
      const p = join(d, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        try {
          const s = await stat(p);
          isDir = s.isDirectory();
          isFile = s.isFile();
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === "ELOOP") problem(p, "symbolic link loop");
          else if (MANIFEST_RE.test(e.name)) problem(p, `broken symbolic link (${code ?? String(err)})`);
          continue;
        }
      }
      if (isDir) {
        const s = await stat(p);
        const id = `${s.dev}:${s.ino}`;
        const seen = ancestors.get(id);
        if (seen !== undefined) {
          problem(p, `symbolic link loop: leads back to ${seen}`);
          continue;
        }
        await walk(p, new Map(ancestors).set(id, p));
      } else if (isFile && MANIFEST_RE.test(e.name)) files.push(p);
    }
  };
  const top = await stat(dir);
  await walk(dir, new Map([[`${top.dev}:${top.ino}`, dir]]));
  return { files, problems };
}

/** Every manifest file below dir (see listManifestTree; broken links and loops left out). */
export async function listManifestFiles(dir: string): Promise<string[]> {
  return (await listManifestTree(dir)).files;
}

/** Read and validate every manifest file below dir. Paths in errors are relative to dir's parent-less form given. */
export async function loadManifestDir(dir: string, opts: ManifestOptions = {}): Promise<ManifestSet> {
  const { files, problems } = await listManifestTree(dir);
  const objects: SourcedObject[] = [];
  const errors: ManifestError[] = [...problems];
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
