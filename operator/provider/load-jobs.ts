// What the file provider asks its worker threads (load-worker.ts) and what they answer.
import type { CsvDirectoryParts } from "../../model/directory/csv-directory.js";
import type { ManifestDirRead, ReadManifestOptions } from "./read-manifests.js";

export type LoadJob =
  | { readonly kind: "manifests"; readonly dir: string; readonly options: ReadManifestOptions }
  /** knownHash: the SHA-256 of the directory in force; the same bytes are not parsed again. */
  | { readonly kind: "csv"; readonly file: string; readonly maxBytes: number; readonly knownHash: string };

export interface CsvJobResult {
  readonly kind: "csv";
  readonly hash?: string;
  readonly unchanged?: true;
  /** The loaded directory without its text, which came before in piece messages. */
  readonly parts?: Omit<CsvDirectoryParts, "pieces"> & { readonly pieceCount: number };
  readonly error?: { readonly file: string; readonly line: number; readonly field: string; readonly message: string };
}

export type LoadResult = { readonly kind: "manifests"; readonly read: ManifestDirRead } | CsvJobResult;

export type WorkerReply =
  | { readonly id: number; readonly piece: number; readonly text: string }
  | { readonly id: number; readonly result: LoadResult }
  | { readonly id: number; readonly error: string };
