// A STAND-IN for kube-apiserver, for tests only. There is no real API server on this machine, so this
// small HTTP server speaks the part of the Kubernetes REST protocol the operator uses, as the real one
// does: list with resourceVersion, watch streams (ADDED/MODIFIED/DELETED/BOOKMARK, ERROR with code 410
// once the requested resourceVersion is compacted away), optimistic concurrency (409 Conflict on a
// stale metadata.resourceVersion), JSON merge patch on the /status subresource (spec untouched,
// generation unchanged), leases (get/create/update) and events (POST). It is NOT a full API server:
// no admission, no CRD schema validation, no field managers, no authentication. The kind end-to-end
// run (test/e2e/kind.sh) is the real proof.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    generation?: number;
    uid?: string;
    creationTimestamp?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
};

interface ResourceType {
  /** "" for the core group. */
  group: string;
  version: string;
  plural: string;
  kind: string;
  /** Whether writes to the main resource bump metadata.generation when spec changes (CRDs with a status subresource). */
  hasStatus: boolean;
}

const TYPES: ResourceType[] = [
  { group: "casgateway.io", version: "v1alpha1", plural: "adsites", kind: "ADSite", hasStatus: true },
  { group: "casgateway.io", version: "v1alpha1", plural: "clientaccessservers", kind: "ClientAccessServer", hasStatus: true },
  { group: "casgateway.io", version: "v1alpha1", plural: "virtualdirectories", kind: "VirtualDirectory", hasStatus: true },
  { group: "casgateway.io", version: "v1alpha1", plural: "mailboxdatabases", kind: "MailboxDatabase", hasStatus: true },
  { group: "casgateway.io", version: "v1alpha1", plural: "organizationrelationships", kind: "OrganizationRelationship", hasStatus: true },
  { group: "", version: "v1", plural: "secrets", kind: "Secret", hasStatus: false },
  { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", hasStatus: false },
  { group: "", version: "v1", plural: "events", kind: "Event", hasStatus: false },
  { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", hasStatus: false },
  { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", hasStatus: false },
];

interface WatchEvent {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: KubeObject;
}

interface Watcher {
  type: ResourceType;
  namespace: string | undefined;
  res: ServerResponse;
  bookmarks: boolean;
  selector: Selector;
}

interface RecordedRequest {
  /** Authorization header, so tests can tell which client sent what. */
  auth: string | undefined;
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  body: unknown;
  status: number;
  /** When the answer was sent (Date.now()), to check retry pacing. */
  at: number;
}

type Selector = (o: KubeObject) => boolean;

/** What a test can make the server do on purpose. */
export interface StandinFaults {
  /** Reject the next N status patches with 409 Conflict regardless of resourceVersion. */
  conflictNextStatusPatches: number;
  /** Answer the next N list requests with 500. */
  failNextLists: number;
  /**
   * Answer the next status patches with these errors, one entry per patch, in order (e.g. 503, then
   * 429 with Retry-After: 1), as an overloaded API server or its priority-and-fairness limits do.
   */
  failNextStatusPatches: Array<{ code: number; retryAfter?: string }>;
  /** Leave the next N status patches unanswered (the client's timeout ends them). */
  hangNextStatusPatches: number;
  /** Answer the next N watch requests with this status instead of opening the stream. */
  failNextWatches: { count: number; code: number };
  /**
   * Network partition: requests carrying one of these Authorization headers are never answered (as
   * if the packets were dropped); the client sees nothing until its own timeout or abort. Remove the
   * header to heal; held requests stay unanswered.
   */
  partitioned: Set<string>;
}

const typeKey = (t: ResourceType) => `${t.group}/${t.version}/${t.plural}`;
const objKey = (ns: string | undefined, name: string) => `${ns ?? ""}/${name}`;
const clone = <T>(v: T): T => structuredClone(v);

export class KubeApiserverStandin {
  private server: Server | undefined;
  private rv = 100;
  private uidSeq = 0;
  private readonly store = new Map<string, Map<string, KubeObject>>();
  private readonly history = new Map<string, WatchEvent[]>();
  /** Watch requests below this resourceVersion get 410 Gone (etcd compaction). */
  private compactedBelow = new Map<string, number>();
  private readonly watchers = new Set<Watcher>();
  /** Continue token → the full list it pages through. */
  private readonly pagedLists = new Map<string, KubeObject[]>();
  readonly requests: RecordedRequest[] = [];
  readonly faults: StandinFaults = {
    conflictNextStatusPatches: 0,
    failNextLists: 0,
    failNextStatusPatches: [],
    hangNextStatusPatches: 0,
    failNextWatches: { count: 0, code: 500 },
    partitioned: new Set(),
  };
  /** Status patches left unanswered by hangNextStatusPatches. */
  hungRequests = 0;
  /** Requests from a partitioned client (test/kubernetes/leader-partition.test.ts). */
  droppedRequests = 0;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.sendStatus(res, 500, "InternalError", String(err));
        else res.end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    return this.url;
  }

  get url(): string {
    const a = this.server!.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  // ---- test-side operations (what kubectl apply/delete would do) ----

  /** Create or replace an object (server-side), as `kubectl apply` would; returns the stored copy. */
  apply(obj: KubeObject): KubeObject {
    const t = this.typeForObject(obj);
    const existing = this.bucket(t).get(objKey(obj.metadata.namespace, obj.metadata.name));
    if (!existing) return this.create(t, clone(obj));
    const next = clone(obj);
    next.metadata.resourceVersion = existing.metadata.resourceVersion;
    if (t.hasStatus) next.status = existing.status;
    return this.replace(t, next, existing);
  }

  delete(apiVersion: string, kind: string, namespace: string | undefined, name: string): boolean {
    const t = this.typeFor(apiVersion, kind);
    const b = this.bucket(t);
    const k = objKey(namespace, name);
    const existing = b.get(k);
    if (!existing) return false;
    b.delete(k);
    const gone = clone(existing);
    gone.metadata.resourceVersion = String(++this.rv);
    this.emit(t, { rv: this.rv, type: "DELETED", object: gone });
    return true;
  }

  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.bucket(this.typeFor(apiVersion, kind)).get(objKey(namespace, name));
    return o ? clone(o) : undefined;
  }

  list(apiVersion: string, kind: string): KubeObject[] {
    return [...this.bucket(this.typeFor(apiVersion, kind)).values()].map(clone);
  }

  /** Forget watch history: any watch from an older resourceVersion now gets 410 Gone. Open watches get an ERROR 410 event and are closed. */
  compact(): void {
    for (const t of TYPES) {
      this.compactedBelow.set(typeKey(t), this.rv + 1);
      this.history.set(typeKey(t), []);
    }
    this.pagedLists.clear();
    for (const w of [...this.watchers]) {
      this.writeEvent(w, { type: "ERROR", object: statusBody(410, "Expired", "too old resource version") });
      w.res.end();
      this.watchers.delete(w);
    }
  }

  /**
   * Fail every open watch with an ERROR event carrying `code` (not 410: e.g. 500 when etcd is briefly
   * unavailable, 429 when the server sheds load) and close it, as the real server does.
   */
  failWatches(code: number, message = "injected watch failure"): number {
    let n = 0;
    for (const w of [...this.watchers]) {
      this.writeEvent(w, { type: "ERROR", object: statusBody(code, code === 429 ? "TooManyRequests" : "InternalError", message) });
      w.res.end();
      this.watchers.delete(w);
      n++;
    }
    return n;
  }

  /** Send a BOOKMARK (current resourceVersion) on every watch that asked for bookmarks. */
  bookmark(): number {
    let sent = 0;
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      this.writeEvent(w, {
        type: "BOOKMARK",
        object: { apiVersion: apiVersionOf(w.type), kind: w.type.kind, metadata: { resourceVersion: String(this.rv) } },
      });
      sent++;
    }
    return sent;
  }

  /** End every open watch stream (as the API server does at its watch timeout). */
  closeWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  /** Advance the global resourceVersion without touching objects (unrelated writes elsewhere in the cluster). */
  bumpResourceVersion(by = 1): void {
    this.rv += by;
  }

  get currentResourceVersion(): string {
    return String(this.rv);
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.headers.authorization && this.faults.partitioned.has(req.headers.authorization)) {
      this.droppedRequests++;
      return; // never answered; stop() closes the connection
    }
    const url = new URL(req.url ?? "/", "http://standin");
    const query = Object.fromEntries(url.searchParams.entries());
    const method = req.method ?? "GET";
    const raw = await readBody(req);
    const contentType = req.headers["content-type"]?.split(";")[0]?.trim();
    this.currentAuth = req.headers.authorization;
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        this.record(method, url.pathname, query, contentType, raw, 400);
        return this.sendStatus(res, 400, "BadRequest", "request body is not JSON");
      }
    }
    const route = parsePath(url.pathname);
    const recordAndSend = (status: number, payload: unknown) => {
      this.record(method, url.pathname, query, contentType, body, status);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(payload));
    };
    if (!route) {
      this.record(method, url.pathname, query, contentType, body, 404);
      return this.sendStatus(res, 404, "NotFound", `no route for ${url.pathname}`);
    }
    const t = TYPES.find((x) => x.group === route.group && x.version === route.version && x.plural === route.plural);
    if (!t) {
      this.record(method, url.pathname, query, contentType, body, 404);
      return this.sendStatus(res, 404, "NotFound", `the server could not find the requested resource (${url.pathname})`);
    }
    const ns = route.namespace;
    if (!route.name) {
      if (method === "GET" && query.watch === "true") {
        if (this.faults.failNextWatches.count > 0) {
          this.faults.failNextWatches.count--;
          const code = this.faults.failNextWatches.code;
          this.record(method, url.pathname, query, contentType, body, code);
          return this.sendStatus(res, code, "InternalError", "injected watch failure");
        }
        this.record(method, url.pathname, query, contentType, body, 200);
        return this.watch(t, ns, query, res);
      }
      if (method === "GET") {
        if (this.faults.failNextLists > 0) {
          this.faults.failNextLists--;
          this.record(method, url.pathname, query, contentType, body, 500);
          return this.sendStatus(res, 500, "InternalError", "injected list failure");
        }
        const sel = selectorFrom(query);
        const items = [...this.bucket(t).values()].filter((o) => (ns === undefined || o.metadata.namespace === ns) && sel(o));
        items.sort((a, b) => objKey(a.metadata.namespace, a.metadata.name).localeCompare(objKey(b.metadata.namespace, b.metadata.name)));
        // Paging: the continue token carries the list's resourceVersion and the offset (a snapshot
        // of the list as of the first page, as the real server's etcd read at that revision).
        const limit = Number(query.limit) > 0 ? Number(query.limit) : Infinity;
        let offset = 0;
        let listRv = String(this.rv);
        if (query.continue) {
          const [rv, off] = Buffer.from(query.continue, "base64url").toString().split(":");
          const snap = this.pagedLists.get(`${url.pathname}?${query.continue}`);
          if (!snap) return recordAndSend(410, statusBody(410, "Expired", "the provided continue parameter is too old"));
          offset = Number(off);
          listRv = rv;
          items.splice(0, items.length, ...snap);
        }
        const page = items.slice(offset, offset + limit);
        const next = offset + page.length < items.length ? Buffer.from(`${listRv}:${offset + page.length}`).toString("base64url") : undefined;
        if (next) this.pagedLists.set(`${url.pathname}?${next}`, items.map(clone));
        return recordAndSend(200, {
          apiVersion: apiVersionOf(t),
          kind: `${t.kind}List`,
          metadata: { resourceVersion: listRv, ...(next ? { continue: next } : {}) },
          items: page,
        });
      }
      if (method === "POST") {
        const obj = body as KubeObject;
        if (!obj?.metadata) return recordAndSend(400, statusBody(400, "BadRequest", "metadata is required"));
        if (!obj.metadata.name && typeof obj.metadata.generateName === "string") {
          obj.metadata.name = `${obj.metadata.generateName}${(++this.uidSeq).toString(36).padStart(5, "0")}`;
        }
        if (!obj.metadata.name) return recordAndSend(422, statusBody(422, "Invalid", "metadata.name: Required value"));
        if (ns !== undefined) obj.metadata.namespace = ns;
        if (this.bucket(t).has(objKey(obj.metadata.namespace, obj.metadata.name))) {
          return recordAndSend(409, statusBody(409, "AlreadyExists", `${t.plural} "${obj.metadata.name}" already exists`));
        }
        obj.apiVersion ??= apiVersionOf(t);
        obj.kind ??= t.kind;
        return recordAndSend(201, this.create(t, obj));
      }
      return recordAndSend(405, statusBody(405, "MethodNotAllowed", method));
    }
    const key = objKey(ns, route.name);
    const existing = this.bucket(t).get(key);
    if (method === "GET") {
      if (!existing) return recordAndSend(404, statusBody(404, "NotFound", `${t.plural} "${route.name}" not found`));
      return recordAndSend(200, existing);
    }
    if (!existing) return recordAndSend(404, statusBody(404, "NotFound", `${t.plural} "${route.name}" not found`));
    if (method === "PUT" && !route.subresource) {
      const obj = body as KubeObject;
      if (obj?.metadata?.resourceVersion !== undefined && obj.metadata.resourceVersion !== existing.metadata.resourceVersion) {
        return recordAndSend(409, conflict(t, route.name));
      }
      obj.metadata.namespace = ns;
      if (t.hasStatus) obj.status = existing.status;
      return recordAndSend(200, this.replace(t, obj, existing));
    }
    if (method === "PATCH" && route.subresource === "status" && t.hasStatus) {
      if (contentType !== "application/merge-patch+json") {
        return recordAndSend(415, statusBody(415, "UnsupportedMediaType", `the body of the request was in an unknown format: ${contentType ?? "(none)"}; this stand-in accepts application/merge-patch+json`));
      }
      const patch = body as { metadata?: { resourceVersion?: string }; status?: unknown };
      if (this.faults.hangNextStatusPatches > 0) {
        this.faults.hangNextStatusPatches--;
        this.hungRequests++;
        this.record(method, url.pathname, query, contentType, body, 0);
        return; // never answered
      }
      const failure = this.faults.failNextStatusPatches.shift();
      if (failure) {
        this.record(method, url.pathname, query, contentType, body, failure.code);
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (failure.retryAfter !== undefined) headers["retry-after"] = failure.retryAfter;
        res.writeHead(failure.code, headers);
        res.end(JSON.stringify(statusBody(failure.code, failure.code === 429 ? "TooManyRequests" : "ServiceUnavailable", "injected status patch failure")));
        return;
      }
      if (this.faults.conflictNextStatusPatches > 0) {
        this.faults.conflictNextStatusPatches--;
        return recordAndSend(409, conflict(t, route.name));
      }
      if (patch?.metadata?.resourceVersion !== undefined && patch.metadata.resourceVersion !== existing.metadata.resourceVersion) {
        return recordAndSend(409, conflict(t, route.name));
      }
      // The status subresource ignores everything but .status (as the real one does).
      const next = clone(existing);
      next.status = mergePatch(existing.status, patch?.status) as KubeObject["status"];
      if (next.status === undefined) delete next.status;
      next.metadata.resourceVersion = String(++this.rv);
      this.bucket(t).set(key, next);
      this.emit(t, { rv: this.rv, type: "MODIFIED", object: clone(next) });
      return recordAndSend(200, next);
    }
    if (method === "DELETE" && !route.subresource) {
      this.delete(apiVersionOf(t), t.kind, ns, route.name);
      return recordAndSend(200, statusBody(200, "Success", "deleted"));
    }
    return recordAndSend(405, statusBody(405, "MethodNotAllowed", `${method} ${url.pathname}`));
  }

  private watch(t: ResourceType, ns: string | undefined, query: Record<string, string>, res: ServerResponse): void {
    const from = query.resourceVersion ? Number(query.resourceVersion) : undefined;
    const compacted = this.compactedBelow.get(typeKey(t)) ?? 0;
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders(); // as the real server: headers at once, events as they happen
    const sel = selectorFrom(query);
    const w: Watcher = { type: t, namespace: ns, res, bookmarks: query.allowWatchBookmarks === "true", selector: sel };
    if (from !== undefined && from !== 0 && from + 1 < compacted) {
      // As the real server: a watch from a compacted resourceVersion gets one ERROR event with a 410 Status.
      this.writeEvent(w, { type: "ERROR", object: statusBody(410, "Expired", `too old resource version: ${from} (${compacted - 1})`) });
      res.end();
      return;
    }
    this.watchers.add(w);
    res.on("close", () => this.watchers.delete(w));
    if (from === undefined || from === 0) {
      // No resourceVersion: synthetic ADDED for every existing object, then changes.
      for (const o of this.bucket(t).values()) {
        if ((ns === undefined || o.metadata.namespace === ns) && sel(o)) this.writeEvent(w, { type: "ADDED", object: o });
      }
    } else {
      for (const e of this.history.get(typeKey(t)) ?? []) {
        if (e.rv > from && this.matches(w, e.object)) this.writeEvent(w, { type: e.type, object: e.object });
      }
    }
    const timeout = Number(query.timeoutSeconds);
    if (Number.isFinite(timeout) && timeout > 0) {
      const timer = setTimeout(() => res.end(), timeout * 1000);
      timer.unref();
      res.on("close", () => clearTimeout(timer));
    }
  }

  private matches(w: Watcher, o: KubeObject): boolean {
    return (w.namespace === undefined || o.metadata.namespace === w.namespace) && w.selector(o);
  }

  private writeEvent(w: Watcher, e: { type: string; object: unknown }): void {
    if (!w.res.writableEnded) w.res.write(`${JSON.stringify(e)}\n`);
  }

  private emit(t: ResourceType, e: WatchEvent): void {
    const h = this.history.get(typeKey(t)) ?? [];
    h.push(e);
    this.history.set(typeKey(t), h);
    for (const w of this.watchers) {
      if (typeKey(w.type) === typeKey(t) && this.matches(w, e.object)) this.writeEvent(w, { type: e.type, object: e.object });
    }
  }

  private create(t: ResourceType, obj: KubeObject): KubeObject {
    const o = clone(obj);
    o.metadata.resourceVersion = String(++this.rv);
    o.metadata.uid = `00000000-0000-4000-8000-${String(++this.uidSeq).padStart(12, "0")}`;
    o.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    if (t.hasStatus) o.metadata.generation = 1;
    this.bucket(t).set(objKey(o.metadata.namespace, o.metadata.name), o);
    this.emit(t, { rv: this.rv, type: "ADDED", object: clone(o) });
    return clone(o);
  }

  private replace(t: ResourceType, obj: KubeObject, existing: KubeObject): KubeObject {
    const o = clone(obj);
    o.metadata.uid = existing.metadata.uid;
    o.metadata.creationTimestamp = existing.metadata.creationTimestamp;
    if (t.hasStatus) {
      const specChanged = JSON.stringify(o.spec) !== JSON.stringify(existing.spec);
      o.metadata.generation = (existing.metadata.generation ?? 1) + (specChanged ? 1 : 0);
    }
    o.metadata.resourceVersion = String(++this.rv);
    this.bucket(t).set(objKey(o.metadata.namespace, o.metadata.name), o);
    this.emit(t, { rv: this.rv, type: "MODIFIED", object: clone(o) });
    return clone(o);
  }

  private bucket(t: ResourceType): Map<string, KubeObject> {
    let b = this.store.get(typeKey(t));
    if (!b) this.store.set(typeKey(t), (b = new Map()));
    return b;
  }

  private typeFor(apiVersion: string, kind: string): ResourceType {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    const t = TYPES.find((x) => x.group === group && x.version === version && x.kind === kind);
    if (!t) throw new Error(`stand-in does not serve ${apiVersion} ${kind}`);
    return t;
  }

  private typeForObject(o: KubeObject): ResourceType {
    return this.typeFor(o.apiVersion, o.kind);
  }

  private currentAuth: string | undefined;

  private record(method: string, path: string, query: Record<string, string>, contentType: string | undefined, body: unknown, status: number) {
    this.requests.push({ auth: this.currentAuth, method, path, query, contentType, body, status, at: Date.now() });
  }

  private sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(statusBody(code, reason, message)));
  }
}

function apiVersionOf(t: ResourceType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

function statusBody(code: number, reason: string, message: string) {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: code < 400 ? "Success" : "Failure", message, reason, code };
}

function conflict(t: ResourceType, name: string) {
  return statusBody(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${t.plural}${t.group ? `.${t.group}` : ""} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
  );
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return clone(patch);
  const out: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

interface Route {
  group: string;
  version: string;
  namespace: string | undefined;
  plural: string;
  name: string | undefined;
  subresource: string | undefined;
}

function parsePath(path: string): Route | undefined {
  const p = path.split("/").filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (p[0] === "api" && p.length >= 2) {
    group = "";
    version = p[1];
    rest = p.slice(2);
  } else if (p[0] === "apis" && p.length >= 3) {
    group = p[1];
    version = p[2];
    rest = p.slice(3);
  } else return undefined;
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length < 1 || rest.length > 3) return undefined;
  return { group, version, namespace, plural: rest[0], name: rest[1], subresource: rest[2] };
}

/** Equality-based label and field selectors (a=b, a!=b, comma-separated), enough for the operator's use. */
function selectorFrom(query: Record<string, string>): Selector {
  const terms: Array<(o: KubeObject) => boolean> = [];
  const parse = (s: string | undefined, get: (o: KubeObject, k: string) => unknown) => {
    for (const term of (s ?? "").split(",").filter(Boolean)) {
      const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term);
      if (!m) {
        const key = term.trim();
        terms.push((o) => get(o, key) !== undefined);
        continue;
      }
      const [, k, op, v] = m;
      terms.push((o) => (op === "!=" ? get(o, k) !== v : get(o, k) === v));
    }
  };
  parse(query.labelSelector, (o, k) => (o.metadata.labels as Record<string, string> | undefined)?.[k]);
  parse(query.fieldSelector, (o, k) => k.split(".").reduce<unknown>((acc, part) => (acc as Record<string, unknown> | undefined)?.[part], o));
  return (o) => terms.every((f) => f(o));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
