// A list+watch cache for one resource type (one namespace or all), as client-go's reflector does:
// list, then watch from the list's resourceVersion with allowWatchBookmarks; follow BOOKMARKs; on
// 410 Gone (HTTP status or an ERROR event with code 410) re-list. Any other watch failure (5xx, 429,
// an ERROR event with another code, a dropped connection) backs off exponentially (with jitter,
// bounded) and re-opens the watch from the last resourceVersion seen: a full list is a quorum read
// of every object, which a struggling API server should not get from every replica at once. Only a
// failed list is retried as a list. client-node's ListWatch is not used because it
// neither asks for bookmarks nor retries after an error; its Watch (the streaming part) is.
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { z } from "zod";
import { KubeApiError, resourcePath, type KubeRest } from "./rest.js";

export const RawObject = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: z.looseObject({
    name: z.string().min(1),
    namespace: z.string().optional(),
    resourceVersion: z.string().optional(),
    generation: z.number().optional(),
    uid: z.string().optional(),
  }),
});
export type RawObject = z.infer<typeof RawObject>;

const ListResponse = z.looseObject({
  metadata: z.looseObject({ resourceVersion: z.string().optional(), continue: z.string().optional() }).optional(),
  items: z.array(z.unknown()).nullable().optional(),
});

const BookmarkObject = z.looseObject({ metadata: z.looseObject({ resourceVersion: z.string().optional() }) });

const WatchStatus = z.looseObject({ code: z.number().optional(), message: z.string().optional(), reason: z.string().optional() });

export interface ResourceRef {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
}

export interface InformerOptions extends ResourceRef {
  readonly kc: KubeConfig;
  readonly rest: KubeRest;
  /** Watch one namespace; all namespaces when undefined. */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly log: Logger;
  /** Server-side watch timeout; the watch is re-opened from the last resourceVersion after it. */
  readonly watchTimeoutSeconds?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** Objects per list page (limit/continue); default 500. */
  readonly pageSize?: number;
  /** Called for each list (reason "initial", "gone", "error"), for metrics. */
  readonly onRelist?: (reason: "initial" | "gone" | "error") => void;
  /** Called when a watch is re-opened from the last resourceVersion after an error (no relist). */
  readonly onResume?: () => void;
}

export type InformerChange = { type: "ADDED" | "MODIFIED" | "DELETED"; object: RawObject } | { type: "RELISTED" };

export const objectKey = (o: { metadata: { namespace?: string; name: string } }) => `${o.metadata.namespace ?? ""}/${o.metadata.name}`;

export class Informer {
  private readonly store = new Map<string, RawObject>();
  private rv = "";
  private stopped = false;
  private controller: AbortController | undefined;
  private wake: (() => void) | undefined;
  private readonly listeners = new Set<(c: InformerChange) => void>();
  private syncedResolve: (() => void) | undefined;
  readonly synced: Promise<void>;
  private loop: Promise<void> | undefined;
  private hasSynced = false;
  /** Statistics for tests and metrics. */
  readonly stats = { lists: 0, watches: 0, gone: 0, bookmarks: 0, errors: 0, resumes: 0 };

  constructor(private readonly o: InformerOptions) {
    this.synced = new Promise((r) => (this.syncedResolve = r));
  }

  get resource(): string {
    return `${this.o.plural}${this.o.group ? `.${this.o.group}` : ""}`;
  }

  /** True once the first list has completed. */
  get isSynced(): boolean {
    return this.hasSynced;
  }

  get resourceVersion(): string {
    return this.rv;
  }

  list(): RawObject[] {
    return [...this.store.values()];
  }

  getByKey(namespace: string | undefined, name: string): RawObject | undefined {
    return this.store.get(`${namespace ?? ""}/${name}`);
  }

  onChange(listener: (c: InformerChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.loop) return;
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.controller?.abort();
    this.wake?.();
    await this.loop;
    this.loop = undefined;
  }

  private emit(c: InformerChange) {
    for (const l of this.listeners) {
      try {
        l(c);
      } catch (err) {
        this.o.log.error({ err, resource: this.resource }, "informer listener failed");
      }
    }
  }

  private async run(): Promise<void> {
    const initial = this.o.backoffInitialMs ?? 500;
    const max = this.o.backoffMaxMs ?? 30_000;
    let backoff = initial;
    let relistReason: "initial" | "gone" | "error" = "initial";
    while (!this.stopped) {
      try {
        if (!this.rv) {
          await this.relist(relistReason);
          backoff = initial;
        }
        const started = Date.now();
        const r = await this.watchOnce();
        if (this.stopped) break;
        if (r.outcome === "gone") {
          this.stats.gone++;
          this.o.log.info({ resource: this.resource }, "watch: resourceVersion too old (410 Gone); re-listing");
          this.rv = "";
          relistReason = "gone";
          continue;
        }
        if (r.outcome === "error") throw r.error;
        // A stream that closes at once with nothing on it is treated like a failure, so a misbehaving
        // server cannot make us spin.
        if (r.events === 0 && Date.now() - started < 1000) {
          await this.sleep(backoff);
          backoff = Math.min(backoff * 2, max);
        } else backoff = initial;
      } catch (err) {
        if (this.stopped) break;
        this.stats.errors++;
        if (err instanceof KubeApiError && err.statusCode === 410) {
          this.rv = "";
          relistReason = "gone";
          continue;
        }
        const wait = Math.round(backoff * (0.8 + Math.random() * 0.4));
        const resume = this.rv !== "";
        this.o.log.warn(
          { err: String(err), resource: this.resource, retryInMs: wait, ...(resume ? { resumeFrom: this.rv } : {}) },
          resume ? "watch failed; backing off, then resuming from the last resourceVersion" : "list failed; backing off",
        );
        await this.sleep(wait);
        backoff = Math.min(backoff * 2, max);
        if (resume) {
          // Resume, not relist: if the server no longer has that resourceVersion it answers 410 and
          // we list then.
          this.stats.resumes++;
          this.o.onResume?.();
        } else if (this.hasSynced) relistReason = "error";
      }
    }
  }

  private path(): string {
    return resourcePath(this.o.group, this.o.version, this.o.plural, this.o.namespace);
  }

  private async relist(reason: "initial" | "gone" | "error"): Promise<void> {
    this.stats.lists++;
    this.o.onRelist?.(reason);
    // Paged (limit/continue), as client-go does: a large organisation does not come in one response.
    const items: unknown[] = [];
    let listRv: string | undefined;
    let cont: string | undefined;
    do {
      const page = ListResponse.parse(
        await this.o.rest.get(this.path(), {
          labelSelector: this.o.labelSelector,
          fieldSelector: this.o.fieldSelector,
          limit: String(this.o.pageSize ?? 500),
          continue: cont,
        }),
      );
      items.push(...(page.items ?? []));
      listRv ??= page.metadata?.resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont && !this.stopped);
    const next = new Map<string, RawObject>();
    for (const item of items) {
      const p = RawObject.safeParse(item);
      if (!p.success) {
        this.o.log.warn({ resource: this.resource, issue: p.error.issues[0]?.message }, "list item without metadata.name ignored");
        continue;
      }
      next.set(objectKey(p.data), p.data);
    }
    this.store.clear();
    for (const [k, v] of next) this.store.set(k, v);
    this.rv = listRv ?? "";
    this.hasSynced = true;
    this.emit({ type: "RELISTED" });
    this.syncedResolve?.();
    this.syncedResolve = undefined;
  }

  private watchOnce(): Promise<{ outcome: "closed" | "gone" | "error"; events: number; error?: unknown }> {
    this.stats.watches++;
    return new Promise((resolve) => {
      let events = 0;
      let gone = false;
      let errorEvent: Error | undefined;
      const query: Record<string, string | number | boolean> = {
        allowWatchBookmarks: true,
        resourceVersion: this.rv,
        timeoutSeconds: this.o.watchTimeoutSeconds ?? 300,
      };
      if (this.o.labelSelector) query.labelSelector = this.o.labelSelector;
      if (this.o.fieldSelector) query.fieldSelector = this.o.fieldSelector;
      const onEvent = (type: string, obj: unknown) => {
        events++;
        if (type === "ERROR") {
          const s = WatchStatus.safeParse(obj);
          if (s.success && s.data.code === 410) gone = true;
          else errorEvent = new Error(`watch ERROR event: ${s.success ? `${s.data.code} ${s.data.message ?? ""}` : "malformed"}`);
          this.controller?.abort();
          return;
        }
        if (type === "BOOKMARK") {
          // A bookmark carries only metadata.resourceVersion: where to resume after a reconnect.
          const rv = BookmarkObject.safeParse(obj);
          if (rv.success && rv.data.metadata.resourceVersion) this.rv = rv.data.metadata.resourceVersion;
          this.stats.bookmarks++;
          return;
        }
        const p = RawObject.safeParse(obj);
        if (!p.success) return;
        const o = p.data;
        if (o.metadata.resourceVersion) this.rv = o.metadata.resourceVersion;
        if (type === "ADDED" || type === "MODIFIED") {
          this.store.set(objectKey(o), o);
          this.emit({ type, object: o });
        } else if (type === "DELETED") {
          this.store.delete(objectKey(o));
          this.emit({ type, object: o });
        }
      };
      // Client-side guard in case the server never ends the stream (a dead connection).
      const guardMs = ((this.o.watchTimeoutSeconds ?? 300) + 30) * 1000;
      const guard = setTimeout(() => this.controller?.abort(), guardMs);
      const done = (err: unknown) => {
        clearTimeout(guard);
        this.controller = undefined;
        if (gone) return resolve({ outcome: "gone", events });
        const code = (err as { statusCode?: number } | null)?.statusCode;
        if (code === 410) return resolve({ outcome: "gone", events });
        if (errorEvent) return resolve({ outcome: "error", events, error: errorEvent });
        if (err && !this.stopped && !isAbort(err)) return resolve({ outcome: "error", events, error: err });
        resolve({ outcome: "closed", events });
      };
      new Watch(this.o.kc)
        .watch(this.path(), query, onEvent, done)
        .then((c) => {
          this.controller = c;
          if (this.stopped) c.abort();
        })
        .catch((err: unknown) => done(err));
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || /aborted/i.test(err.message));
}
