// A worker thread running load-worker.ts, one job at a time. Cancelling a job terminates the thread
// (V8 stops it even inside a tight parse loop); the next job starts a fresh one. A crash or an
// out-of-memory in the thread fails the job, never the process.
import { Worker } from "node:worker_threads";
import type { LoadJob, LoadResult, WorkerReply } from "./load-jobs.js";

export class LoadCancelled extends Error {
  constructor() {
    super("load cancelled");
    this.name = "LoadCancelled";
  }
}

interface Pending {
  readonly resolve: (r: { result: LoadResult; pieces: string[] }) => void;
  readonly reject: (err: Error) => void;
  readonly pieces: string[];
}

/** The worker's module: load-worker.js next to this file when built; from source, through tsx. */
function spawn(): Worker {
  const here = import.meta.url;
  if (here.endsWith(".ts")) {
    const url = new URL("./load-worker.ts", here).href;
    return new Worker(`const { tsImport } = await import("tsx/esm/api"); await tsImport(${JSON.stringify(url)}, ${JSON.stringify(url)});`, { eval: true });
  }
  return new Worker(new URL("./load-worker.js", here));
}

export class LoadThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(readonly name: string) {}

  run(job: LoadJob): Promise<{ result: LoadResult; pieces: string[] }> {
    const w = this.ensure();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, pieces: [] });
      w.ref(); // a job keeps the process alive; an idle thread does not
      w.postMessage({ id, job });
    });
  }

  /** Stop whatever runs now (its promise rejects with LoadCancelled). */
  async cancel(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new LoadCancelled());
    if (w) await w.terminate();
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = spawn();
    w.unref();
    w.on("message", (m: WorkerReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      if ("piece" in m) {
        p.pieces[m.piece] = m.text;
        // Ask for the next piece on a later turn: other work (Checks, probes) runs in between.
        setImmediate(() => w.postMessage({ ack: m.id }));
      }
      else {
        this.pending.delete(m.id);
        if (this.pending.size === 0) w.unref();
        if ("error" in m) p.reject(new Error(`${this.name} worker: ${m.error}`));
        else p.resolve({ result: m.result, pieces: p.pieces });
      }
    });
    // A thread already replaced (cancelled) has no jobs left to fail.
    w.on("error", (err) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.failAll(new Error(`${this.name} worker failed: ${err.message}`));
    });
    w.on("exit", (code) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.failAll(new Error(`${this.name} worker exited (code ${code})`));
    });
    this.worker = w;
    return w;
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
