// The Kubernetes provider: informers for the four casgateway.io kinds and for the Secrets/ConfigMaps
// they reference, turned into validated snapshots. Each object is validated with its zod schema
// (KIND_SCHEMAS); invalid ones are left out of the snapshot and reported as rejections (the status
// writer turns them into Accepted=False). Snapshots are coalesced: a burst of watch events gives one.
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { z } from "zod";
import { API_GROUP, API_VERSION_NAME, KINDS, KIND_PLURALS, KIND_SCHEMAS, type ApiObject, type Kind } from "../../crds/index.js";
import { findUnknownFields, unknownFieldMessage } from "../../crds/unknown-fields.js";
import type { ManifestError } from "../provider/manifests.js";
import type { Provider, ProviderSnapshot } from "../provider/types.js";
import type { Problem } from "../../model/topology/types.js";
import { CsvDirectoryError, parseCsvDirectory } from "../../model/directory/csv-directory.js";
import { Informer, type InformerOptions, type RawObject } from "./informer.js";
import { KubeRest } from "./rest.js";

/** ADSite annotation naming the TLS Secret (kubernetes.io/tls) for its host names: "name" or "namespace/name". */
export const TLS_SECRET_ANNOTATION = "casgateway.io/tls-secret";

export interface ObjectRecord {
  readonly kind: Kind;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly uid: string | undefined;
  readonly generation: number | undefined;
  readonly resourceVersion: string | undefined;
  /** status as stored in the API server (what the status writer compares against). */
  readonly status: unknown;
}

/** An object that failed schema validation: left out, reported with Accepted=False. */
export interface Rejection {
  readonly kind: Kind;
  readonly namespace: string | undefined;
  readonly name: string;
  /** Dotted path of the first failing field, e.g. spec.fqdn. */
  readonly field: string;
  readonly message: string;
}

export interface TlsCertificate {
  readonly secret: string;
  readonly cert: string;
  readonly key: string;
}

export interface KubernetesSnapshot extends ProviderSnapshot {
  /** Every casgateway.io object seen, valid or not, sorted by kind/namespace/name. */
  readonly records: readonly ObjectRecord[];
  readonly rejections: readonly Rejection[];
  /** Problems with references to Secrets/ConfigMaps (ResolvedRefs=False on the referencing object). */
  readonly refProblems: readonly Problem[];
  /** TLS certificates by ADSite name. */
  readonly tlsBySite: ReadonlyMap<string, TlsCertificate>;
  /** The mailbox CSV from the configured ConfigMap, when there is one. */
  readonly mailboxCsv?: { readonly source: string; readonly text: string };
  /** Highest resourceVersion seen across informers, for logs. */
  readonly resourceVersions: Readonly<Record<string, string>>;
}

export interface ConfigMapKeyRef {
  readonly namespace: string;
  readonly name: string;
  readonly key: string;
}

export interface KubernetesProviderOptions {
  readonly kc: KubeConfig;
  /** One namespace, or all when undefined. */
  readonly namespace?: string;
  readonly log: Logger;
  /** ConfigMap key holding the mailbox CSV (Get-Mailbox | Export-Csv). */
  readonly mailboxConfigMap?: ConfigMapKeyRef;
  /** Coalescing delay for snapshots (ms). */
  readonly debounceMs?: number;
  readonly watchTimeoutSeconds?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** List page size (limit/continue). */
  readonly pageSize?: number;
  readonly onRelist?: (resource: string, reason: string) => void;
  readonly onResume?: (resource: string) => void;
}

const kindLess = (k: Kind) => KINDS.indexOf(k);

export class KubernetesProvider implements Provider {
  readonly rest: KubeRest;
  readonly informers: ReadonlyMap<Kind, Informer>;
  readonly secrets: Informer;
  readonly configMaps: Informer | undefined;
  private readonly all: Informer[];
  private timer: NodeJS.Timeout | undefined;
  private onSnapshot: ((s: KubernetesSnapshot) => void) | undefined;
  private started = false;
  private last: KubernetesSnapshot | undefined;
  private readonly cache = new ValidationCache();

  constructor(private readonly o: KubernetesProviderOptions) {
    this.rest = new KubeRest(o.kc);
    const base = (extra: Partial<InformerOptions> & Pick<InformerOptions, "group" | "version" | "plural">): InformerOptions => ({
      kc: o.kc,
      rest: this.rest,
      namespace: o.namespace,
      log: o.log,
      watchTimeoutSeconds: o.watchTimeoutSeconds,
      backoffInitialMs: o.backoffInitialMs,
      backoffMaxMs: o.backoffMaxMs,
      pageSize: o.pageSize,
      onRelist: (reason) => o.onRelist?.(`${extra.plural}`, reason),
      onResume: () => o.onResume?.(`${extra.plural}`),
      ...extra,
    });
    const informers = new Map<Kind, Informer>();
    for (const kind of KINDS) {
      informers.set(kind, new Informer(base({ group: API_GROUP, version: API_VERSION_NAME, plural: KIND_PLURALS[kind] })));
    }
    this.informers = informers;
    // Only TLS secrets: the operator has no business reading other secrets' data.
    this.secrets = new Informer(base({ group: "", version: "v1", plural: "secrets", fieldSelector: "type=kubernetes.io/tls" }));
    const cm = o.mailboxConfigMap;
    this.configMaps = cm
      ? new Informer(base({ group: "", version: "v1", plural: "configmaps", namespace: cm.namespace, fieldSelector: `metadata.name=${cm.name}` }))
      : undefined;
    this.all = [...informers.values(), this.secrets, ...(this.configMaps ? [this.configMaps] : [])];
  }

  async start(onSnapshot: (snapshot: ProviderSnapshot) => void): Promise<void> {
    return this.startK8s(onSnapshot);
  }

  /** As start(), with the Kubernetes-specific snapshot (records, rejections, certificates). */
  async startK8s(onSnapshot: (snapshot: KubernetesSnapshot) => void): Promise<void> {
    if (this.started) throw new Error("KubernetesProvider already started");
    this.started = true;
    this.onSnapshot = onSnapshot;
    for (const inf of this.all) {
      inf.onChange(() => this.schedule());
      inf.start();
    }
    await Promise.all(this.all.map((i) => i.synced));
    this.flush();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.onSnapshot = undefined;
    await Promise.all(this.all.map((i) => i.stop()));
  }

  /** The most recent snapshot (undefined before the first sync). */
  current(): KubernetesSnapshot | undefined {
    return this.last;
  }

  /** Raw object from the cache (what the API server last said), for the status writer. */
  raw(kind: Kind, namespace: string | undefined, name: string): RawObject | undefined {
    return this.informers.get(kind)?.getByKey(namespace, name);
  }

  private schedule() {
    if (!this.onSnapshot) return;
    // Before every informer has synced, a snapshot would be partial: wait for start() to flush.
    if (!this.all.every((i) => i.isSynced)) return;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.o.debounceMs ?? 50);
  }

  private flush() {
    const snap = buildKubernetesSnapshot({
      objects: Object.fromEntries([...this.informers].map(([k, i]) => [k, i.list()])) as Record<Kind, RawObject[]>,
      secrets: this.secrets.list(),
      configMaps: this.configMaps?.list() ?? [],
      mailboxConfigMap: this.o.mailboxConfigMap,
      resourceVersions: Object.fromEntries(this.all.map((i) => [i.resource, i.resourceVersion])),
    }, this.cache);
    this.last = snap;
    this.onSnapshot?.(snap);
  }
}

export interface SnapshotInput {
  readonly objects: Record<Kind, readonly RawObject[]>;
  readonly secrets: readonly RawObject[];
  readonly configMaps: readonly RawObject[];
  readonly mailboxConfigMap?: ConfigMapKeyRef;
  readonly resourceVersions?: Record<string, string>;
}

type ParseResult = { ok: true; object: ApiObject } | { ok: false; field: string; message: string };

/**
 * Validation results by object content. A status write changes resourceVersion but not what we
 * validate (generation, labels, annotations), so re-validating on every status echo is avoided.
 */
export class ValidationCache {
  private readonly m = new Map<string, ParseResult>();
  /** The last mailbox CSV checked and its problem (a large CSV is parsed once per change, not per snapshot). */
  csv: { text: string; error: ManifestError | undefined; users: number } | undefined;
  get(key: string, parse: () => ParseResult): ParseResult {
    const hit = this.m.get(key);
    if (hit) return hit;
    const r = parse();
    this.m.set(key, r);
    return r;
  }
  /** Keep only the given keys (called once per snapshot, so the cache does not grow). */
  retain(keys: ReadonlySet<string>) {
    for (const k of this.m.keys()) if (!keys.has(k)) this.m.delete(k);
  }
}

function contentKey(kind: Kind, raw: RawObject): string {
  const m = raw.metadata;
  if (m.uid !== undefined && m.generation !== undefined) {
    return `${kind}|${m.namespace ?? ""}|${m.name}|${m.uid}|${m.generation}|${JSON.stringify(m.labels ?? null)}|${JSON.stringify(m.annotations ?? null)}`;
  }
  const { status: _s, ...rest } = raw as Record<string, unknown>;
  const { resourceVersion: _rv, managedFields: _mf, ...meta } = m as Record<string, unknown>;
  return `${kind}|${JSON.stringify({ ...rest, metadata: meta })}`;
}

function validate(kind: Kind, raw: RawObject): ParseResult {
  // Status is ours, not input: validate the object as the user wrote it.
  const { status: _status, ...input } = raw as Record<string, unknown>;
  const candidate = { ...input, kind, apiVersion: `${API_GROUP}/${API_VERSION_NAME}` };
  // The API server prunes fields its CRD does not declare; a field that still arrives is one this
  // operator's schema does not know (a CRD newer than the operator, or one that preserves unknown
  // fields): refused as the file provider refuses it, never silently dropped (docs/api.md).
  const unknown = findUnknownFields(KIND_SCHEMAS[kind], candidate);
  if (unknown.length > 0) {
    const message = unknown.slice(0, 5).map((u) => `${u.path.join(".")}: ${unknownFieldMessage(u)}`).join("; ");
    return { ok: false, field: unknown[0].path.join("."), message };
  }
  const parsed = (KIND_SCHEMAS[kind] as z.ZodType<ApiObject>).safeParse(candidate);
  if (parsed.success) return { ok: true, object: parsed.data };
  const issue = parsed.error.issues[0];
  const field = issue ? issue.path.map(String).join(".") || "(object)" : "(object)";
  const message = parsed.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join(".") || "(object)"}: ${i.message}`)
    .join("; ");
  return { ok: false, field, message };
}

/** Pure (given the cache): cached raw objects → validated snapshot. */
export function buildKubernetesSnapshot(input: SnapshotInput, cache = new ValidationCache()): KubernetesSnapshot {
  const used = new Set<string>();
  const records: ObjectRecord[] = [];
  const objects: ApiObject[] = [];
  const rejections: Rejection[] = [];
  const errors: ManifestError[] = [];
  for (const kind of KINDS) {
    for (const raw of input.objects[kind] ?? []) {
      const m = raw.metadata;
      records.push({
        kind,
        namespace: m.namespace,
        name: m.name,
        uid: m.uid,
        generation: m.generation,
        resourceVersion: m.resourceVersion,
        status: (raw as Record<string, unknown>).status,
      });
      const key = contentKey(kind, raw);
      used.add(key);
      const r = cache.get(key, () => validate(kind, raw));
      if (r.ok) {
        objects.push(r.object);
        continue;
      }
      rejections.push({ kind, namespace: m.namespace, name: m.name, field: r.field, message: r.message });
      errors.push({ file: `kubernetes:${m.namespace ?? ""}/${KIND_PLURALS[kind]}/${m.name}`, line: 1, column: 1, kind, name: m.name, field: r.field, message: r.message });
    }
  }
  cache.retain(used);
  records.sort((a, b) => kindLess(a.kind) - kindLess(b.kind) || cmp(a.namespace ?? "", b.namespace ?? "") || cmp(a.name, b.name));
  objects.sort((a, b) => kindLess(a.kind) - kindLess(b.kind) || cmp(a.metadata.namespace ?? "", b.metadata.namespace ?? "") || cmp(a.metadata.name, b.metadata.name));

  // TLS secret references from ADSites.
  const refProblems: Problem[] = [];
  const tlsBySite = new Map<string, TlsCertificate>();
  const secrets = new Map(input.secrets.map((s) => [`${s.metadata.namespace ?? ""}/${s.metadata.name}`, s]));
  for (const o of objects) {
    if (o.kind !== "ADSite") continue;
    const ref = o.metadata.annotations?.[TLS_SECRET_ANNOTATION];
    if (ref === undefined) continue;
    const field = `metadata.annotations.${TLS_SECRET_ANNOTATION}`;
    const [ns, name] = ref.includes("/") ? ref.split("/", 2) : [o.metadata.namespace ?? "", ref];
    const problem = (reason: string, message: string): Problem => ({
      kind: "ADSite",
      name: o.metadata.name,
      ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
      field,
      reason,
      message,
      severity: "error",
      condition: "ResolvedRefs",
    });
    const secret = secrets.get(`${ns}/${name}`);
    if (!secret) {
      refProblems.push(problem("SecretNotFound", `TLS Secret "${ns}/${name}" (type kubernetes.io/tls) does not exist or is not readable`));
      continue;
    }
    const data = (secret as Record<string, unknown>).data as Record<string, string> | undefined;
    const cert = decode(data?.["tls.crt"]);
    const key = decode(data?.["tls.key"]);
    if (!cert?.includes("-----BEGIN CERTIFICATE-----") || !key?.includes("PRIVATE KEY-----")) {
      refProblems.push(problem("InvalidCertificate", `TLS Secret "${ns}/${name}" has no PEM certificate in tls.crt and key in tls.key`));
      continue;
    }
    tlsBySite.set(o.metadata.name, { secret: `${ns}/${name}`, cert, key });
  }

  // The mailbox CSV.
  let mailboxCsv: KubernetesSnapshot["mailboxCsv"];
  const cmRef = input.mailboxConfigMap;
  if (cmRef) {
    const source = `configmap ${cmRef.namespace}/${cmRef.name} key ${cmRef.key}`;
    const cm = input.configMaps.find((c) => c.metadata.name === cmRef.name && (c.metadata.namespace ?? "") === cmRef.namespace);
    const text = ((cm as Record<string, unknown> | undefined)?.data as Record<string, string> | undefined)?.[cmRef.key];
    const file = `kubernetes:${cmRef.namespace}/configmaps/${cmRef.name}`;
    if (text === undefined) {
      errors.push({ file, line: 1, column: 1, field: `data.${cmRef.key}`, message: `${source} does not exist` });
    } else {
      if (cache.csv?.text !== text) cache.csv = { text, ...checkCsv(text, file, cmRef.key) };
      if (cache.csv.error) errors.push(cache.csv.error);
      else mailboxCsv = { source, text };
    }
  }

  return {
    objects,
    errors,
    records,
    rejections,
    refProblems,
    tlsBySite,
    ...(mailboxCsv ? { mailboxCsv } : {}),
    resourceVersions: input.resourceVersions ?? {},
  };
}

function checkCsv(text: string, file: string, key: string): { error: ManifestError | undefined; users: number } {
  try {
    return { error: undefined, users: parseCsvDirectory(text, `${file}/${key}`).size };
  } catch (err) {
    if (err instanceof CsvDirectoryError) return { error: { file, line: err.line, column: 1, field: `data.${key}: ${err.field}`, message: err.message }, users: 0 };
    return { error: { file, line: 1, column: 1, field: `data.${key}`, message: err instanceof Error ? err.message : String(err) }, users: 0 };
  }
}

function decode(b64: string | undefined): string | undefined {
  if (b64 === undefined) return undefined;
  return Buffer.from(b64, "base64").toString("utf8");
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
