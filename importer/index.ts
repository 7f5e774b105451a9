// `cas-gateway import`: Exchange Management Shell exports (CLIXML) in, casgateway.io manifests out.
// Reads only the export directory; imports crds/ and nothing of operator/ or sidecar/.
import { readExportDir, type ExportProblem } from "./exports.js";
import { mapExports, type ImportOptions, type ImportedObject } from "./mapping.js";
import { renderManifests, writeManifestsAtomically } from "./output.js";

export { parseClixml, type PsObject, type PsValue } from "./clixml.js";
export { CMDLETS, CMDLET_TYPES, type Cmdlet } from "./exports.js";
export { EXCHANGE_NAME_ANNOTATION, type ImportOptions, type LegacyMailEndpoint } from "./mapping.js";
export { GENERATED_MARK } from "./output.js";

export interface ImportOutcome {
  readonly objects: readonly ImportedObject[];
  /** Rendered files, name → text (empty when there are errors). */
  readonly files: ReadonlyMap<string, string>;
  readonly errors: readonly ExportProblem[];
  readonly warnings: readonly ExportProblem[];
}

/** "file: object: message", leaving out the parts a problem does not have. */
export function formatProblem(p: ExportProblem): string {
  return [p.file, p.object, p.message].filter((x) => x.length > 0).join(": ");
}

/** Read and map the exports in `from`; nothing is written. */
export async function importExports(from: string, opts: ImportOptions = {}): Promise<ImportOutcome> {
  const set = await readExportDir(from);
  if (set.objects.length === 0 && set.errors.length === 0) {
    const error = { file: from, object: "", message: "no export of a cmdlet cas-gateway import reads (Get-ExchangeServer.xml, Get-OwaVirtualDirectory.xml, ...)" };
    return { objects: [], files: new Map(), errors: [error], warnings: set.warnings };
  }
  const r = mapExports(set, opts);
  return { ...r, files: r.errors.length > 0 ? new Map() : renderManifests(r.objects) };
}

/** Import and, when there is no error, replace `out` with the manifests. */
export async function importToDirectory(from: string, out: string, opts: ImportOptions = {}): Promise<ImportOutcome> {
  const r = await importExports(from, opts);
  if (r.errors.length === 0) await writeManifestsAtomically(out, r.files);
  return r;
}
