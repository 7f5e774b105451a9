// One-shot load of an organisation: manifests → Topology, plus the mailbox CSV. What `validate`,
// `explain`, `render` and the tests use; the watching file provider builds on the same pieces.
import { buildTopology } from "../../model/topology/build.js";
import type { Problem, Topology } from "../../model/topology/types.js";
import { CsvDirectory, CsvDirectoryError, loadCsvDirectory } from "../../model/directory/csv-directory.js";
import { loadManifestDir, locate, type ManifestError, type ManifestOptions, type ManifestSet } from "./manifests.js";

export interface Organisation {
  readonly manifests: ManifestSet;
  readonly topology: Topology;
  /** Manifest errors, then topology problems (errors and warnings) located in their files. */
  readonly errors: readonly ManifestError[];
  readonly warnings: readonly ManifestError[];
  readonly directory?: CsvDirectory;
}

/** Place a topology problem at the file and line of the field it is about. */
export function locateProblem(set: ManifestSet, p: Problem): ManifestError {
  const src = locate(set, p.kind, p.name);
  const where = src ? src.fieldLocation(p.field) : { file: "(unknown)", line: 0, column: 0 };
  return { ...where, kind: p.kind, name: p.name, field: p.field, message: p.message };
}

export async function loadOrganisation(
  manifestDir: string,
  directoryFile?: string,
  opts: ManifestOptions = {},
): Promise<Organisation> {
  const manifests = await loadManifestDir(manifestDir, opts);
  const topology = buildTopology(manifests.objects.map((o) => o.object));
  const errors: ManifestError[] = [...manifests.errors];
  const warnings: ManifestError[] = [];
  for (const p of topology.problems) (p.severity === "error" ? errors : warnings).push(locateProblem(manifests, p));
  let directory: CsvDirectory | undefined;
  if (directoryFile) {
    try {
      directory = await loadCsvDirectory(directoryFile);
    } catch (err) {
      if (err instanceof CsvDirectoryError) {
        errors.push({ file: err.file, line: err.line, column: 1, field: err.field, message: err.message.split(": ").slice(2).join(": ") });
      } else {
        errors.push({ file: directoryFile, line: 1, column: 1, field: "(file)", message: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  return { manifests, topology, errors, warnings, ...(directory ? { directory } : {}) };
}
