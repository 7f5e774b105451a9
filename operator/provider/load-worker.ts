// The file provider's worker thread: reads and validates the manifest directory, or loads the
// mailbox CSV, so that neither a big nor a hostile input stalls the event loop that answers Checks,
// health probes and signals. One job at a time; the owner terminates the thread to cancel one.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { parentPort } from "node:worker_threads";
import { CsvDirectoryError, loadCsvDirectory } from "../../model/directory/csv-directory.js";
import { readManifestDir } from "./read-manifests.js";
import type { CsvJobResult, LoadJob, WorkerReply } from "./load-jobs.js";

const port = parentPort;
if (!port) throw new Error("load-worker.ts runs as a worker thread");

async function fileHash(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

async function csvJob(id: number, job: Extract<LoadJob, { kind: "csv" }>): Promise<CsvJobResult> {
  const before = await stat(job.file);
  if (before.size > job.maxBytes) {
    return { kind: "csv", error: { file: job.file, line: 1, field: "(file)", message: `file is ${before.size} bytes; the limit is ${job.maxBytes} (--max-directory-bytes)` } };
  }
  const hash = await fileHash(job.file);
  if (hash === job.knownHash) return { kind: "csv", hash, unchanged: true };
  try {
    const dir = await loadCsvDirectory(job.file);
    const parts = dir.parts();
    // Text first, one piece a message, the next only once the receiver has taken the last: it copies
    // each in well under a millisecond, but messages that are all queued at once are all taken in one
    // turn of its event loop (200 MB of a 1M-row export: a 0.77 s stall).
    for (let i = 0; i < parts.pieces.length; i++) {
      const taken = new Promise<void>((resolve) => acks.set(id, resolve));
      port!.postMessage({ id, piece: i, text: parts.pieces[i] } satisfies WorkerReply);
      await taken;
    }
    const { pieces: _pieces, ...rest } = parts;
    return { kind: "csv", hash, parts: { ...rest, pieceCount: parts.pieces.length } };
  } catch (err) {
    if (err instanceof CsvDirectoryError) {
      const prefix = `${err.file}:${err.line}: ${err.field}: `;
      const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
      return { kind: "csv", hash, error: { file: err.file, line: err.line, field: err.field, message } };
    }
    throw err;
  }
}

/** Jobs waiting for the receiver to take a piece. */
const acks = new Map<number, () => void>();

port.on("message", (msg: { id: number; job: LoadJob } | { ack: number }) => {
  if ("ack" in msg) {
    acks.get(msg.ack)?.();
    acks.delete(msg.ack);
    return;
  }
  const { id, job } = msg;
  const run = job.kind === "manifests" ? readManifestDir(job.dir, job.options).then((r) => ({ kind: "manifests" as const, read: r })) : csvJob(id, job);
  run.then(
    (result) => {
      const transfer = result.kind === "csv" && result.parts ? [result.parts.meta.buffer, result.parts.index.slots.buffer] : [];
      port.postMessage({ id, result } satisfies WorkerReply, transfer);
    },
    (err: unknown) => port.postMessage({ id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) } satisfies WorkerReply),
  );
});
