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
// - The mailbox CSV is separate: a new file replaces the directory in force only if it parses
//   completely; otherwise the previous directory stays (none before the first good one).
// - Unreadable or deleted directory/file, binary garbage, huge files: reported as errors, never thrown.
// - onSnapshot is called with the first snapshot and whenever the objects in force or the reported
//   errors change (so a broken edit is announced with the old objects and the new errors).
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { basename } from "node:path";
import { watch, type FSWatcher } from "chokidar";
import pino, { type Logger } from "pino";
import type { ApiObject } from "../../crds/index.js";
import { buildTopology, contentVersion } from "../../model/topology/build.js";
import type { Topology } from "../../model/topology/types.js";
import { CsvDirectory, CsvDirectoryError, parseCsvDirectory } from "../../model/directory/csv-directory.js";
import type { LookupResult, MailboxDirectory } from "../../model/directory/types.js";
import { formatError, listManifestFiles, parseManifestText, type ManifestError, type ManifestSet, type SourcedObject } from "./manifests.js";
import { locateProblem } from "./organisation.js";
import type { Provider, ProviderSnapshot } from "./types.js";

export interface FileProviderOptions {
  readonly manifestDir: string;
  /** Get-Mailbox | Export-Csv file. */
  readonly directoryFile?: string;
  /** Quiet time after the last change before re-reading (default 200 ms). */
  readonly debounceMs?: number;
  /** Safety net re-scan (file list, sizes, mtimes) for changes a watcher missed, e.g. a directory that was deleted and re-created. 0 turns it off (default 5000 ms). */
  readonly rescanMs?: number;
  /** Files larger than this are refused (default 32 MiB). */
  readonly maxFileBytes?: number;
  readonly defaultNamespace?: string;
  readonly logger?: Logger;
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

const EMPTY_TOPOLOGY = buildTopology([]);

export class FileProvider implements Provider, MailboxDirectory {
  private readonly opts: Required<Omit<FileProviderOptions, "directoryFile" | "defaultNamespace" | "logger">> &
    Pick<FileProviderOptions, "directoryFile" | "defaultNamespace">;
  private readonly log: Logger;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private fingerprint = "";
  private readonly listeners = new Set<(s: FileProviderState) => void>();
  private onSnapshot: ((s: ProviderSnapshot) => void) | undefined;

  private objects: readonly ApiObject[] = [];
  private inForce = false;
  private topo: Topology = EMPTY_TOPOLOGY;
  private dir: CsvDirectory | undefined;
  private manifestErrors: readonly ManifestError[] = [];
  private csvErrors: readonly ManifestError[] = [];
  private warns: readonly ManifestError[] = [];
  private gen = 0;
  private objectsKey = "";
  private errorsKey = "";
  private csvKey = "";

  constructor(options: FileProviderOptions) {
    this.opts = {
      manifestDir: options.manifestDir,
      directoryFile: options.directoryFile,
      defaultNamespace: options.defaultNamespace,
      debounceMs: options.debounceMs ?? 200,
      rescanMs: options.rescanMs ?? 5000,
      maxFileBytes: options.maxFileBytes ?? 32 * 1024 * 1024,
      usePolling: options.usePolling ?? false,
    };
    this.log = options.logger ?? pino({ level: "silent" });
  }

  /** Reads everything once, publishes the first snapshot, then watches. */
  async start(onSnapshot: (snapshot: ProviderSnapshot) => void): Promise<void> {
    this.onSnapshot = onSnapshot;
    this.stopped = false;
    await this.reload();
    const paths = [this.opts.manifestDir, ...(this.opts.directoryFile ? [this.opts.directoryFile] : [])];
    const watcher = watch(paths, {
      ignoreInitial: true,
      usePolling: this.opts.usePolling,
      interval: 100,
      ignored: (p: string) => basename(p).startsWith(".") && !paths.includes(p),
    });
    watcher.on("all", (event, path) => {
      this.log.debug({ event, path }, "file change");
      this.schedule();
    });
    watcher.on("error", (err) => this.log.warn({ err }, "file watcher error"));
    await new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
    this.watcher = watcher;
    if (this.opts.rescanMs > 0) {
      this.rescanTimer = setInterval(() => {
        void this.fingerprintNow().then((fp) => {
          if (fp !== this.fingerprint && !this.stopped) this.schedule();
        });
      }, this.opts.rescanMs);
      this.rescanTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.timer = this.rescanTimer = undefined;
    await this.watcher?.close();
    this.watcher = undefined;
    await this.running;
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

  /** MailboxDirectory over the last good CSV. */
  async lookup(identity: string): Promise<LookupResult> {
    if (!this.dir) return { status: "unavailable", reason: "no mailbox directory has been loaded" };
    return this.dir.find(identity);
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload();
    }, this.opts.debounceMs);
  }

  /** Re-read now (serialised: a reload asked for while one runs happens right after it). */
  reload(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.reloadOnce();
        } while (this.again && !this.stopped);
      } catch (err) {
        // Defensive: reloadOnce reports input problems as errors; anything else is a bug, logged, not fatal.
        this.log.error({ err }, "reload failed");
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async reloadOnce(): Promise<void> {
    this.fingerprint = await this.fingerprintNow();

    // Manifests.
    const set = await this.readManifests();
    const errors: ManifestError[] = [...set.errors];
    const candidate = set.objects.map((o) => o.object);
    const topology = buildTopology(candidate);
    const warnings: ManifestError[] = [];
    for (const p of topology.problems) (p.severity === "error" ? errors : warnings).push(locateProblem(set, p));
    const readable = !errors.some((e) => e.field === "(directory)");
    let objectsChanged = false;
    if (errors.length === 0 || (!this.inForce && readable)) {
      const key = contentVersion(candidate);
      objectsChanged = key !== this.objectsKey;
      if (objectsChanged) {
        this.objects = candidate;
        this.objectsKey = key;
        this.topo = topology;
        this.warns = warnings;
      }
      this.inForce = true;
    }
    this.manifestErrors = errors;
    if (errors.length > 0) this.log.warn({ errors: errors.map(formatError) }, "manifests rejected; last good configuration stays in force");

    // Mailbox directory: re-parsed only when its bytes change.
    let directoryChanged = false;
    if (this.opts.directoryFile) {
      const errs: ManifestError[] = [];
      const text = await this.readText(this.opts.directoryFile, errs);
      if (text === undefined) {
        this.csvErrors = errs;
        this.csvKey = "";
      } else {
        const key = createHash("sha256").update(text).digest("hex");
        if (key !== this.csvKey) {
          this.csvKey = key;
          const r = this.parseCsv(text, this.opts.directoryFile);
          if (r.directory) {
            this.dir = r.directory;
            directoryChanged = true;
          }
          this.csvErrors = r.errors;
        }
      }
      if (this.csvErrors.length > 0) this.log.warn({ errors: this.csvErrors.map(formatError) }, "mailbox CSV rejected; last good directory stays");
    }

    const errorsKey = this.errors().map(formatError).join("\n");
    const changed = { objects: objectsChanged, directory: directoryChanged, errors: errorsKey !== this.errorsKey };
    this.errorsKey = errorsKey;
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

  private async readManifests(): Promise<ManifestSet> {
    const dir = this.opts.manifestDir;
    let files: string[];
    try {
      files = await listManifestFiles(dir);
    } catch (err) {
      return { objects: [], errors: [{ file: dir, line: 1, column: 1, field: "(directory)", message: `cannot read: ${errText(err)}` }], files: [] };
    }
    const objects: SourcedObject[] = [];
    const errors: ManifestError[] = [];
    for (const f of files) {
      const text = await this.readText(f, errors);
      if (text === undefined) continue;
      if (text.includes("\u0000")) {
        errors.push({ file: f, line: 1, column: 1, field: "(file)", message: "binary data (NUL bytes); not a YAML manifest" });
        continue;
      }
      try {
        const set = parseManifestText(text, f, this.opts.defaultNamespace ? { defaultNamespace: this.opts.defaultNamespace } : {});
        objects.push(...set.objects);
        errors.push(...set.errors);
      } catch (err) {
        errors.push({ file: f, line: 1, column: 1, field: "(yaml)", message: `cannot parse: ${errText(err)}` });
      }
    }
    return { objects, errors, files };
  }

  private async readText(file: string, errors: ManifestError[]): Promise<string | undefined> {
    try {
      const s = await stat(file);
      if (s.size > this.opts.maxFileBytes) {
        errors.push({ file, line: 1, column: 1, field: "(file)", message: `file is ${s.size} bytes; the limit is ${this.opts.maxFileBytes}` });
        return undefined;
      }
      return await readFile(file, "utf8");
    } catch (err) {
      errors.push({ file, line: 1, column: 1, field: "(file)", message: `cannot read: ${errText(err)}` });
      return undefined;
    }
  }

  private parseCsv(text: string, file: string): { directory?: CsvDirectory; errors: ManifestError[] } {
    try {
      return { directory: parseCsvDirectory(text, file), errors: [] };
    } catch (err) {
      if (err instanceof CsvDirectoryError) {
        const prefix = `${err.file}:${err.line}: ${err.field}: `;
        const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
        return { errors: [{ file: err.file, line: err.line, column: 1, field: err.field, message }] };
      }
      return { errors: [{ file, line: 1, column: 1, field: "(csv)", message: errText(err) }] };
    }
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
      for (const f of await listManifestFiles(this.opts.manifestDir)) await add(f);
    } catch {
      parts.push("dir:missing");
    }
    if (this.opts.directoryFile) await add(this.opts.directoryFile);
    return parts.join("\n");
  }
}

function errText(err: unknown): string {
  if (err && typeof err === "object" && "code" in err && typeof (err as { code: unknown }).code === "string") {
    return `${(err as { code: string }).code}: ${err instanceof Error ? err.message : String(err)}`;
  }
  return err instanceof Error ? err.message : String(err);
}
