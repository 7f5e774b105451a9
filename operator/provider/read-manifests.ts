// Read a whole manifest directory within a budget: what the file provider's worker thread runs.
// Every limit is reported as an error on the file it is about (never thrown), and what was read is
// stamped (size, mtime) so the provider can tell whether the files changed while they were read.
import { readFile, stat } from "node:fs/promises";
import type { ApiObject } from "../../crds/index.js";
import { buildTopology } from "../../model/topology/build.js";
import { listManifestTree, parseManifestText, type ManifestError, type ManifestSet, type SourcedObject } from "./manifests.js";
import { locateProblem } from "./organisation.js";

export interface ManifestBudget {
  /** A manifest file larger than this is refused. */
  readonly maxFileBytes: number;
  /** All manifest files together; files past it are refused. */
  readonly maxDirBytes: number;
  /** Manifest files in the directory (recursively); files past it are refused. */
  readonly maxFiles: number;
  /** YAML documents in one file. */
  readonly maxDocumentsPerFile: number;
}

/**
 * Big enough for a large organisation (a site's servers, databases and virtual directories are a
 * few hundred bytes each: 4 MiB is ~10,000 objects in one file), small enough that a stray export
 * dropped into the directory is refused instead of parsed for minutes.
 */
export const DEFAULT_MANIFEST_BUDGET: ManifestBudget = {
  maxFileBytes: 4 << 20,
  maxDirBytes: 16 << 20,
  maxFiles: 2000,
  maxDocumentsPerFile: 20_000,
};

export interface FileStamp {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

export interface ManifestDirRead {
  /** Validated objects (schema errors left out). */
  readonly objects: ApiObject[];
  /** Listing, reading, YAML, schema and topology errors, located. */
  readonly errors: ManifestError[];
  /** Topology warnings, located. */
  readonly warnings: ManifestError[];
  /** Every manifest file seen, as stat()ed before it was read. */
  readonly stamps: FileStamp[];
  readonly usage: { readonly files: number; readonly bytes: number; readonly documents: number };
  /** The directory is a Kubernetes ConfigMap/Secret volume (a `..data` link swapped atomically by the kubelet). */
  readonly atomicVolume: boolean;
}

export interface ReadManifestOptions {
  readonly budget?: ManifestBudget;
  readonly defaultNamespace?: string;
}

const DOC_MARKER_RE = /^---(?=[ \t\r\n]|$)/gm;

function errText(err: unknown): string {
  const code = err && typeof err === "object" && "code" in err ? (err as { code: unknown }).code : undefined;
  const msg = err instanceof Error ? err.message : String(err);
  return typeof code === "string" && !msg.startsWith(code) ? `${code}: ${msg}` : msg;
}

export async function readManifestDir(dir: string, opts: ReadManifestOptions = {}): Promise<ManifestDirRead> {
  const budget = opts.budget ?? DEFAULT_MANIFEST_BUDGET;
  const errors: ManifestError[] = [];
  const stamps: FileStamp[] = [];
  const usage = { files: 0, bytes: 0, documents: 0 };
  let listing;
  try {
    listing = await listManifestTree(dir);
  } catch (err) {
    errors.push({ file: dir, line: 1, column: 1, field: "(directory)", message: `cannot read: ${errText(err)}` });
    return { objects: [], errors, warnings: [], stamps, usage, atomicVolume: false };
  }
  const atomicVolume = await stat(`${dir}/..data`).then(
    (s) => s.isDirectory(),
    () => false,
  );
  errors.push(...listing.problems);
  const sourced: SourcedObject[] = [];
  const fileError = (file: string, message: string) => errors.push({ file, line: 1, column: 1, field: "(file)", message });
  for (const f of listing.files) {
    if (usage.files >= budget.maxFiles) {
      fileError(f, `more than ${budget.maxFiles} manifest files in ${dir} (--max-manifest-files); this one and the rest are not read`);
      break;
    }
    let s;
    try {
      s = await stat(f);
    } catch (err) {
      fileError(f, `cannot read: ${errText(err)}`);
      continue;
    }
    stamps.push({ path: f, size: s.size, mtimeMs: s.mtimeMs });
    usage.files++;
    if (s.size > budget.maxFileBytes) {
      fileError(f, `file is ${s.size} bytes; the limit is ${budget.maxFileBytes} (--max-manifest-file-bytes)`);
      continue;
    }
    if (usage.bytes + s.size > budget.maxDirBytes) {
      fileError(f, `the manifests would total more than ${budget.maxDirBytes} bytes (--max-manifest-dir-bytes); this file is not read`);
      continue;
    }
    usage.bytes += s.size;
    let text: string;
    try {
      text = await readFile(f, "utf8");
    } catch (err) {
      fileError(f, `cannot read: ${errText(err)}`);
      continue;
    }
    if (text.includes("\u0000")) {
      fileError(f, "binary data (NUL bytes); not a YAML manifest");
      continue;
    }
    let docs = 1;
    DOC_MARKER_RE.lastIndex = 0;
    while (DOC_MARKER_RE.exec(text)) docs++;
    usage.documents += docs;
    if (docs > budget.maxDocumentsPerFile) {
      fileError(f, `${docs} YAML documents; the limit is ${budget.maxDocumentsPerFile} per file (--max-manifest-documents)`);
      continue;
    }
    try {
      const set = parseManifestText(text, f, opts.defaultNamespace ? { defaultNamespace: opts.defaultNamespace } : {});
      sourced.push(...set.objects);
      errors.push(...set.errors);
    } catch (err) {
      errors.push({ file: f, line: 1, column: 1, field: "(yaml)", message: `cannot parse: ${errText(err)}` });
    }
  }
  const objects = sourced.map((o) => o.object);
  const set: ManifestSet = { objects: sourced, errors, files: listing.files };
  const warnings: ManifestError[] = [];
  for (const p of buildTopology(objects).problems) (p.severity === "error" ? errors : warnings).push(locateProblem(set, p));
  return { objects, errors, warnings, stamps, usage, atomicVolume };
}
