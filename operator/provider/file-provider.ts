// The file provider: a directory of multi-document YAML manifests plus the mailbox CSV, watched
// (chokidar, debounced) and re-read on every change.
//
// Last-good semantics (what stays in force when input is bad):
// - Manifests are taken as ONE configuration. A change is accepted only when the whole directory
//   reads without errors: no YAML syntax error, no schema violation, no topology error (dangling
//   reference, duplicate, R-GEN-6, ...). Otherwise every object of the configuration in force stays
//   in force, unchanged, and the errors are reported (file:line:column, kind/name, field). A half-done
//   edit across several files is never applied halfway. Topology warnings never block a change.
// - First load: when nothing is in force yet, the part that validates is put in force (objects with
//   schema errors left out; buildTopology leaves out objects with topology errors) so that a gateway
//   with one bad file still starts. From then on the rule above applies.
// - An empty or drastically shrunken organisation (no servers, or fewer than half the servers or
//   databases in force) or mailbox directory (no rows, or fewer than half) is never published over a
//   working one unless allowShrink says so (`--allow-shrink`): deleting files by mistake, a failed
//   git checkout or an unmounted volume must not empty the gateway.
// - A change is published only once it has settled: every file read is older than settleMs and
//   unchanged after the read (a writer that pauses between documents is not caught halfway), or it
//   arrived atomically: the directory is a Kubernetes ConfigMap volume, whose `..data` link the
//   kubelet swaps atomically, or the file was renamed in after it was written (renamedInAfterWriting).
// - The mailbox CSV is separate: a new file replaces the directory in force only if it parses
//   completely; otherwise the previous directory stays (none before the first good one). Decisions
//   keep using the directory in force while a new one loads.
// - Reading, parsing and validating happen in worker threads (one for manifests, one for the CSV),
//   within a size and count budget, so no input stalls the event loop; a change that arrives while a
//   read runs is read again after it, and a read that has run for long (a huge file) is cancelled at
//   once (the thread is terminated) and started again.
// - Unreadable or deleted directory/file, binary garbage, huge files, link loops: reported as errors,
//   never thrown.
// - onSnapshot is called with the first snapshot and whenever the objects in force or the reported
//   errors change (so a broken edit is announced with the old objects and the new errors).
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { watch, type FSWatcher } from "chokidar";
import pino, { type Logger } from "pino";
import { Counter, Gauge, type Registry } from "prom-client";
import type { ApiObject } from "../../crds/index.js";
import { buildTopology, contentVersion } from "../../model/topology/build.js";
import type { Topology } from "../../model/topology/types.js";
import { CsvDirectory } from "../../model/directory/csv-directory.js";
import type { LookupResult, MailboxDirectory } from "../../model/directory/types.js";
import type { CsvJobResult } from "./load-jobs.js";
import { LoadCancelled, LoadThread } from "./load-thread.js";
import { formatError, listManifestTree, type ManifestError } from "./manifests.js";
import { DEFAULT_MANIFEST_BUDGET, type FileStamp, type ManifestBudget, type ManifestDirRead } from "./read-manifests.js";
import type { Provider, ProviderSnapshot } from "./types.js";

/** Default limit for the mailbox CSV: a 1,000,000-mailbox Export-Csv is ~190 MB. */
export const DEFAULT_MAX_DIRECTORY_BYTES = 512 << 20;
/**
 * A read that a change has made stale is abandoned (and started again) once it has run this long; a
 * shorter one finishes first. Doubled after every abandoned read in a row and never below twice the
 * last finished read, so reads that are slow (a big organisation, a loaded machine) still finish
 * under steady churn.
 */
export const CANCEL_STALE_READS_AFTER_MS = 3000;
/** Default quiet time a file must have before it is taken. */
export const DEFAULT_SETTLE_MS = 1000;

export interface FileProviderOptions {
  readonly manifestDir: string;
  /** Get-Mailbox | Export-Csv file. */
  readonly directoryFile?: string;
  /** Quiet time after the last watcher event before re-reading (default 200 ms). */
  readonly debounceMs?: number;
  /** A file is taken only once it is this old and unchanged by the read (default 1000 ms; 0 takes files as they are). */
  readonly settleMs?: number;
  /** Safety net re-scan (file list, sizes, mtimes) for changes a watcher missed, e.g. a directory that was deleted and re-created. 0 turns it off (default 5000 ms). */
  readonly rescanMs?: number;
  /** Size and count limits for the manifests (defaults: DEFAULT_MANIFEST_BUDGET). */
  readonly manifestBudget?: Partial<ManifestBudget>;
  /** A mailbox CSV larger than this is refused (default 512 MiB). */
  readonly maxDirectoryBytes?: number;
  /** Publish an empty or drastically shrunken organisation or directory over a working one. */
  readonly allowShrink?: boolean;
  /** Wait for the mailbox CSV before start() returns (default true); false: it loads in the background. */
  readonly waitForDirectory?: boolean;
  readonly defaultNamespace?: string;
  readonly logger?: Logger;
  /** Metrics: rejected input (cas_gateway_config_rejected) and loads. */
  readonly registry?: Registry;
  /** chokidar polling, for file systems without inotify. */
  readonly usePolling?: boolean;
}

export interface FileProviderState {
  /** Objects in force and the errors of the input on disk. */
  readonly snapshot: ProviderSnapshot;
  readonly topology: Topology;
  readonly directory: CsvDirectory | undefined;
  /** Topology warnings of the configuration in force. */
  readonly warnings: readonly ManifestError[];
  /** Bumped every time something is published. */
  readonly generation: number;
  /** What changed since the previous state. */
  readonly changed: { readonly objects: boolean; readonly directory: boolean; readonly errors: boolean };
}

/** What the provider holds and what it refused, for /readyz and /config_dump. */
export interface FileProviderStatus {
  readonly manifests: {
    readonly dir: string;
    /** A configuration has been put in force (possibly an empty one, at first load). */
    readonly inForce: boolean;
    /** The files on disk were refused (errors below); the configuration in force is the last good one. */
    readonly rejected: boolean;
    readonly errors: readonly ManifestError[];
    readonly usage: ManifestDirRead["usage"];
    readonly budget: ManifestBudget;
    readonly settleMs: number;
    readonly allowShrink: boolean;
    /** Reads abandoned because a change made them stale after they had run long. */
    readonly readsAbandoned: number;
  };
  readonly directory?: {
    readonly file: string;
    readonly loaded: boolean;
    readonly loading: boolean;
    readonly rows: number;
    readonly rejected: boolean;
    readonly errors: readonly ManifestError[];
    readonly maxBytes: number;
    readonly readsAbandoned: number;
  };
}

const EMPTY_TOPOLOGY = buildTopology([]);
const EMPTY_USAGE = { files: 0, bytes: 0, documents: 0 } as const;

/** One input (the manifests, or the CSV): its reads run one at a time; a change during one repeats it (and cancels it when it has run long). */
class Lane {
  running: Promise<void> | undefined;
  /** When the read in progress started, and its number (a cancel timer only cancels its own read). */
  startedAt = 0;
  read = 0;
  again = false;
  timer: NodeJS.Timeout | undefined;
  cancelTimer: NodeJS.Timeout | undefined;
  /** Reads abandoned since the last one that finished, and how long that one took. */
  cancelledInARow = 0;
  lastReadMs = 0;
  /** Reads abandoned in all (status, tests). */
  cancelled = 0;
  constructor(readonly thread: LoadThread) {}

  /** How long a stale read may go on before it is abandoned. */
  patienceMs(): number {
    return Math.max(CANCEL_STALE_READS_AFTER_MS * 2 ** Math.min(this.cancelledInARow, 8), 2 * this.lastReadMs);
  }
}

export class FileProvider implements Provider, MailboxDirectory {
  private readonly opts: {
    readonly manifestDir: string;
    readonly directoryFile: string | undefined;
    readonly defaultNamespace: string | undefined;
    readonly debounceMs: number;
    readonly settleMs: number;
    readonly rescanMs: number;
    readonly budget: ManifestBudget;
    readonly maxDirectoryBytes: number;
    readonly allowShrink: boolean;
    readonly waitForDirectory: boolean;
    readonly usePolling: boolean;
  };
  private readonly log: Logger;
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private started = false;
  private fingerprint = "";
  private readonly listeners = new Set<(s: FileProviderState) => void>();
  private onSnapshot: ((s: ProviderSnapshot) => void) | undefined;
  private readonly manifestLane = new Lane(new LoadThread("manifests"));
  private readonly csvLane = new Lane(new LoadThread("mailbox CSV"));

  private objects: readonly ApiObject[] = [];
  private inForce = false;
  private topo: Topology = EMPTY_TOPOLOGY;
  private dir: CsvDirectory | undefined;
  private dirLoading = false;
  private manifestErrors: readonly ManifestError[] = [];
  private csvErrors: readonly ManifestError[] = [];
  private warns: readonly ManifestError[] = [];
  private usage: ManifestDirRead["usage"] = EMPTY_USAGE;
  private gen = 0;
  private objectsKey = "";
  private errorsKey = "";
  private csvKey = "";
  private pendingChange = { objects: false, directory: false };
  private readonly metrics: { rejected: Gauge<"input">; rejections: Counter<"input"> } | undefined;

  constructor(options: FileProviderOptions) {
    this.opts = {
      manifestDir: options.manifestDir,
      directoryFile: options.directoryFile,
      defaultNamespace: options.defaultNamespace,
      debounceMs: options.debounceMs ?? 200,
      settleMs: options.settleMs ?? DEFAULT_SETTLE_MS,
      rescanMs: options.rescanMs ?? 5000,
      budget: { ...DEFAULT_MANIFEST_BUDGET, ...options.manifestBudget },
      maxDirectoryBytes: options.maxDirectoryBytes ?? DEFAULT_MAX_DIRECTORY_BYTES,
      allowShrink: options.allowShrink ?? false,
      waitForDirectory: options.waitForDirectory ?? true,
      usePolling: options.usePolling ?? false,
    };
    this.log = options.logger ?? pino({ level: "silent" });
    if (options.registry) {
      const rejected = new Gauge({
        name: "cas_gateway_config_rejected",
        help: "1 while the input on disk is refused and the last good one stays in force (input: manifests | directory)",
        labelNames: ["input"],
        registers: [options.registry],
        collect: () => {
          rejected.set({ input: "manifests" }, this.manifestErrors.length > 0 ? 1 : 0);
          if (this.opts.directoryFile) rejected.set({ input: "directory" }, this.csvErrors.length > 0 ? 1 : 0);
        },
      });
      const rejections = new Counter({
        name: "cas_gateway_config_rejections_total",
        help: "Reads of the input that were refused (errors, budget, shrink guard)",
        labelNames: ["input"],
        registers: [options.registry],
      });
      this.metrics = { rejected, rejections };
    }
  }

  /** Reads everything once, publishes the first snapshot, then watches. */
  async start(onSnapshot: (snapshot: ProviderSnapshot) => void): Promise<void> {
    this.onSnapshot = onSnapshot;
    this.stopped = false;
    this.fingerprint = await this.fingerprintNow();
    const csv = this.opts.directoryFile ? this.reloadDirectory() : Promise.resolve();
    await this.reloadManifests();
    if (this.opts.waitForDirectory) await csv;
    this.started = true;
    this.publish();
    const paths = [this.opts.manifestDir, ...(this.opts.directoryFile ? [this.opts.directoryFile] : [])];
    const watcher = watch(paths, {
      ignoreInitial: true,
      usePolling: this.opts.usePolling,
      interval: 100,
      // Hidden entries are not manifests, except the ConfigMap volume's "..data" link, swapped on every update.
      ignored: (p: string) => {
        const b = basename(p);
        return b.startsWith(".") && b !== "..data" && !paths.includes(p);
      },
    });
    watcher.on("all", (event, path) => {
      this.log.debug({ event, path }, "file change");
      if (this.opts.directoryFile && path === this.opts.directoryFile) this.schedule(this.csvLane);
      else this.schedule(this.manifestLane);
    });
    watcher.on("error", (err) => this.log.warn({ err }, "file watcher error"));
    await new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
    this.watcher = watcher;
    if (this.opts.rescanMs > 0) {
      this.rescanTimer = setInterval(() => {
        void this.fingerprintNow().then((fp) => {
          if (fp !== this.fingerprint && !this.stopped) {
            this.fingerprint = fp;
            this.schedule(this.manifestLane);
            if (this.opts.directoryFile) this.schedule(this.csvLane);
          }
        });
      }, this.opts.rescanMs);
      this.rescanTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const lane of [this.manifestLane, this.csvLane]) {
      if (lane.timer) clearTimeout(lane.timer);
      lane.timer = undefined;
    }
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.rescanTimer = undefined;
    await this.watcher?.close();
    this.watcher = undefined;
    // Reads in progress are abandoned: the threads are terminated, even mid-parse.
    await Promise.all([this.manifestLane.thread.cancel(), this.csvLane.thread.cancel()]);
    await Promise.all([this.manifestLane.running, this.csvLane.running]);
  }

  /** Listen to every published state (first, accepted changes, changed errors). */
  subscribe(listener: (s: FileProviderState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  state(): FileProviderState {
    return this.makeState({ objects: false, directory: false, errors: false });
  }
  topology(): Topology {
    return this.topo;
  }
  directory(): CsvDirectory | undefined {
    return this.dir;
  }
  errors(): readonly ManifestError[] {
    return [...this.manifestErrors, ...this.csvErrors];
  }
  warnings(): readonly ManifestError[] {
    return this.warns;
  }

  status(): FileProviderStatus {
    const f = this.opts.directoryFile;
    return {
      manifests: {
        dir: this.opts.manifestDir,
        inForce: this.inForce,
        rejected: this.manifestErrors.length > 0,
        errors: this.manifestErrors,
        usage: this.usage,
        budget: this.opts.budget,
        settleMs: this.opts.settleMs,
        allowShrink: this.opts.allowShrink,
        readsAbandoned: this.manifestLane.cancelled,
      },
      ...(f
        ? {
            directory: {
              file: f,
              loaded: this.dir !== undefined,
              loading: this.dirLoading,
              rows: this.dir?.size ?? 0,
              rejected: this.csvErrors.length > 0,
              errors: this.csvErrors,
              maxBytes: this.opts.maxDirectoryBytes,
              readsAbandoned: this.csvLane.cancelled,
            },
          }
        : {}),
    };
  }

  /** MailboxDirectory over the last good CSV. */
  async lookup(identity: string): Promise<LookupResult> {
    if (!this.dir) return { status: "unavailable", reason: this.dirLoading ? "the mailbox directory is still loading" : "no mailbox directory has been loaded" };
    return this.dir.find(identity);
  }

  /** Re-read both inputs now (each serialised as on a change). */
  async reload(): Promise<void> {
    await Promise.all([this.reloadManifests(), this.opts.directoryFile ? this.reloadDirectory() : undefined]);
  }

  private schedule(lane: Lane, delayMs = this.opts.debounceMs): void {
    if (this.stopped) return;
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      void (lane === this.manifestLane ? this.reloadManifests() : this.reloadDirectory());
    }, delayMs);
  }

  /**
   * Run `once` on the lane; a call while it runs makes it run again after, and abandons the read in
   * progress (terminating its thread) once that has run for the lane's patience: a huge or hostile
   * file is not parsed to the end after it was deleted or replaced. Cancelling every read on every
   * change starved the provider under steady churn (each abandoned read's successor starts a fresh
   * thread, slower still, and is abandoned in turn: the soak bench published 3 configurations in
   * 180 s of 36 edits).
   */
  private runLane(lane: Lane, once: () => Promise<void>): Promise<void> {
    if (lane.running) {
      lane.again = true;
      if (!lane.cancelTimer) {
        const read = lane.read;
        const wait = Math.max(0, lane.startedAt + lane.patienceMs() - Date.now());
        lane.cancelTimer = setTimeout(() => {
          lane.cancelTimer = undefined;
          if (lane.read !== read || !lane.running || this.stopped) return;
          lane.cancelled++;
          lane.cancelledInARow++;
          this.log.info({ input: lane.thread.name, ranMs: Date.now() - lane.startedAt }, "read abandoned: its input changed while it ran long");
          void lane.thread.cancel();
        }, wait);
        lane.cancelTimer.unref();
      }
      return lane.running;
    }
    lane.running = (async () => {
      try {
        do {
          lane.read++;
          lane.startedAt = Date.now();
          lane.again = false;
          if (lane.cancelTimer) clearTimeout(lane.cancelTimer);
          lane.cancelTimer = undefined;
          try {
            await once();
            lane.cancelledInARow = 0;
            lane.lastReadMs = Date.now() - lane.startedAt;
          } catch (err) {
            if (!(err instanceof LoadCancelled)) throw err;
          }
        } while (lane.again && !this.stopped);
      } catch (err) {
        // Input problems come back as errors; anything else is a bug, logged, not fatal.
        this.log.error({ err }, "reload failed");
      } finally {
        if (lane.cancelTimer) clearTimeout(lane.cancelTimer);
        lane.cancelTimer = undefined;
        lane.running = undefined;
      }
    })();
    return lane.running;
  }

  private reloadManifests(): Promise<void> {
    return this.runLane(this.manifestLane, () => this.manifestsOnce());
  }

  private reloadDirectory(): Promise<void> {
    return this.runLane(this.csvLane, () => this.directoryOnce());
  }

  /**
   * Whether stamped files are settled: unchanged by the read, and old enough unless they arrived
   * atomically (a ConfigMap volume's `..data` swap, or a file renamed in after it was written: see
   * renamedInAfterWriting). Else the ms to wait.
   */
  private async unsettled(stamps: readonly FileStamp[], atomic: boolean): Promise<number> {
    const now = Date.now();
    let wait = 0;
    for (const s of stamps) {
      const again = await stat(s.path).catch(() => undefined);
      if (!again || again.size !== s.size || again.mtimeMs !== s.mtimeMs) {
        wait = Math.max(wait, this.opts.settleMs, 1);
        continue;
      }
      const young = s.mtimeMs + this.opts.settleMs - now;
      if (!atomic && young > 0 && !(await renamedInAfterWriting(s.path))) wait = Math.max(wait, young);
    }
    return wait > 0 ? Math.ceil(wait) + 10 : 0;
  }

  private async manifestsOnce(): Promise<void> {
    const job = { kind: "manifests" as const, dir: this.opts.manifestDir, options: { budget: this.opts.budget, ...(this.opts.defaultNamespace ? { defaultNamespace: this.opts.defaultNamespace } : {}) } };
    const { result } = await this.manifestLane.thread.run(job);
    if (result.kind !== "manifests") throw new Error("internal: wrong reply");
    const read = result.read;
    const wait = await this.unsettled(read.stamps, read.atomicVolume);
    if (wait > 0 && !this.stopped) {
      // Still being written: try again once it has been quiet long enough (nothing is published meanwhile).
      this.log.debug({ waitMs: wait }, "manifests not settled yet");
      if (this.started) this.schedule(this.manifestLane, wait);
      else {
        await new Promise((r) => setTimeout(r, wait));
        this.manifestLane.again = true;
      }
      return;
    }
    this.usage = read.usage;
    const errors: ManifestError[] = [...read.errors];
    const readable = !errors.some((e) => e.field === "(directory)");
    if (errors.length === 0 || (!this.inForce && readable)) {
      const candidate = read.objects;
      const key = contentVersion(candidate);
      if (key !== this.objectsKey) {
        const topology = buildTopology(candidate);
        const shrink = this.inForce && !this.opts.allowShrink ? shrinkProblem(this.topo, topology, this.opts.manifestDir) : undefined;
        if (shrink) errors.push(shrink);
        else {
          this.objects = candidate;
          this.objectsKey = key;
          this.topo = topology;
          this.warns = read.warnings;
          this.pendingChange.objects = true;
        }
      }
      this.inForce = true;
    }
    this.manifestErrors = errors;
    if (errors.length > 0) {
      this.metrics?.rejections.inc({ input: "manifests" });
      this.log.warn({ errors: errors.slice(0, 50).map(formatError), count: errors.length }, "manifests rejected; last good configuration stays in force");
    }
    if (this.started) this.publish();
  }

  private async directoryOnce(): Promise<void> {
    const file = this.opts.directoryFile;
    if (!file) return;
    const before = await stat(file).catch((err: unknown) => err as Error);
    if (before instanceof Error) {
      this.csvErrors = [{ file, line: 1, column: 1, field: "(file)", message: `cannot read: ${errText(before)}` }];
      this.csvKey = "";
      this.metrics?.rejections.inc({ input: "directory" });
      if (this.started) this.publish();
      return;
    }
    const young = before.mtimeMs + this.opts.settleMs - Date.now();
    if (young > 0 && !(await renamedInAfterWriting(file))) {
      const wait = Math.ceil(young) + 10;
      if (this.started) this.schedule(this.csvLane, wait);
      else {
        await new Promise((r) => setTimeout(r, wait));
        this.csvLane.again = true;
      }
      return;
    }
    this.dirLoading = true;
    let reply: { result: CsvJobResult; pieces: string[] };
    try {
      const r = await this.csvLane.thread.run({ kind: "csv", file, maxBytes: this.opts.maxDirectoryBytes, knownHash: this.csvKey });
      if (r.result.kind !== "csv") throw new Error("internal: wrong reply");
      reply = { result: r.result, pieces: r.pieces };
    } catch (err) {
      if (err instanceof LoadCancelled) throw err;
      reply = { result: { kind: "csv", error: { file, line: 1, field: "(csv)", message: errText(err) } }, pieces: [] };
    } finally {
      this.dirLoading = false;
    }
    const { result, pieces } = reply;
    if (result.unchanged) {
      // The bytes in force (back after a bad edit, or only touched): nothing to load, nothing refused.
      if (this.csvErrors.length > 0) {
        this.csvErrors = [];
        if (this.started) this.publish();
      }
      return;
    }
    const after = await stat(file).catch(() => undefined);
    if (!after || after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
      this.csvLane.again = true; // changed while it was read
      return;
    }
    const errors: ManifestError[] = [];
    if (result.error) errors.push({ ...result.error, column: 1 });
    else if (result.parts) {
      const next = CsvDirectory.fromParts({ ...result.parts, pieces });
      const old = this.dir;
      if (old && !this.opts.allowShrink && old.size > 0 && (next.size === 0 || next.size < old.size / 2)) {
        errors.push({
          file,
          line: 1,
          column: 1,
          field: "(directory)",
          message: `the new export has ${next.size} mailboxes, the directory in force ${old.size}: a directory that empties or loses more than half its mailboxes is not published over a working one; restore the file, or pass --allow-shrink`,
        });
      } else {
        this.dir = next;
        this.csvKey = result.hash ?? "";
        this.pendingChange.directory = true;
        this.log.info({ file, mailboxes: next.size }, "mailbox directory loaded");
      }
    }
    this.csvErrors = errors;
    if (errors.length > 0) {
      this.metrics?.rejections.inc({ input: "directory" });
      this.log.warn({ errors: errors.map(formatError) }, "mailbox CSV rejected; last good directory stays");
    }
    if (this.started) this.publish();
  }

  private publish(): void {
    const errorsKey = this.errors().map(formatError).join("\n");
    const changed = { ...this.pendingChange, errors: errorsKey !== this.errorsKey };
    this.errorsKey = errorsKey;
    this.pendingChange = { objects: false, directory: false };
    if (this.gen > 0 && !changed.objects && !changed.directory && !changed.errors) return;
    this.gen++;
    const state = this.makeState(changed);
    this.log.info(
      { generation: this.gen, topologyVersion: this.topo.version, errors: state.snapshot.errors.length, mailboxes: this.dir?.size },
      "configuration published",
    );
    this.onSnapshot?.(state.snapshot);
    for (const l of this.listeners) {
      try {
        l(state);
      } catch (err) {
        this.log.error({ err }, "file provider listener failed");
      }
    }
  }

  private makeState(changed: FileProviderState["changed"]): FileProviderState {
    return {
      snapshot: { objects: this.objects, errors: this.errors() },
      topology: this.topo,
      directory: this.dir,
      warnings: this.warns,
      generation: this.gen,
      changed,
    };
  }

  /** File list with sizes and mtimes: cheap change detection for the safety re-scan. */
  private async fingerprintNow(): Promise<string> {
    const parts: string[] = [];
    const add = async (f: string) => {
      try {
        const s = await stat(f);
        parts.push(`${f}:${s.size}:${s.mtimeMs}`);
      } catch {
        parts.push(`${f}:missing`);
      }
    };
    try {
      const { files } = await listManifestTree(this.opts.manifestDir);
      for (const f of files.slice(0, this.opts.budget.maxFiles + 1)) await add(f);
    } catch {
      parts.push("dir:missing");
    }
    if (this.opts.directoryFile) await add(this.opts.directoryFile);
    return parts.join("\n");
  }
}

/**
 * A file whose inode changed after its content last did: on Linux file systems a write sets the
 * modification time and the change time to the same instant, and a rename (or chmod, link, utimes)
 * moves only the change time. A finished file renamed into the directory (`mv`, rename(2); rsync
 * and scripts that write a temporary file and rename it over the old one) so arrives complete: it
 * is taken without waiting for the settle time. A file still being
 * written has equal times (the last write set both) and waits. Where a file system keeps no such
 * distinction (coarse timestamps: the rename lands in the same tick as the last write; or no change
 * time update on rename) the times are equal too, and the settle time applies: never taken early
 * by mistake. What it cannot tell: a writer that renames or chmods a file and then goes on writing
 * through its open descriptor; a read between those two steps sees a part (the next write is seen
 * and read again, as with a writer that pauses longer than the settle time). docs/api.md.
 */
async function renamedInAfterWriting(path: string): Promise<boolean> {
  const s = await stat(path, { bigint: true }).catch(() => undefined);
  return s !== undefined && s.ctimeNs > s.mtimeNs;
}

/** Refuse a configuration that empties the organisation or loses more than half its servers or databases. */
function shrinkProblem(old: Topology, next: Topology, dir: string): ManifestError | undefined {
  const lost = (a: number, b: number) => a > 0 && (b === 0 || b < a / 2);
  if (!lost(old.servers.size, next.servers.size) && !lost(old.databases.size, next.databases.size)) return undefined;
  return {
    file: dir,
    line: 1,
    column: 1,
    field: "(organisation)",
    message:
      `the new configuration has ${next.servers.size} servers and ${next.databases.size} databases, the one in force ${old.servers.size} and ${old.databases.size}: ` +
      "an empty or drastically shrunken organisation is not published over a working one; restore the files, or pass --allow-shrink",
  };
}

function errText(err: unknown): string {
  if (err && typeof err === "object" && "code" in err && typeof (err as { code: unknown }).code === "string") {
    return `${(err as { code: string }).code}: ${err instanceof Error ? err.message : String(err)}`;
  }
  return err instanceof Error ? err.message : String(err);
}
