// Topology → Envoy resources: build (clusters.ts, listeners.ts), encode with Envoy's protos and
// check their protoc-gen-validate rules (pgv.ts). Pure and deterministic: the same topology and
// options give byte-identical resources and versions.
import { createHash, hash as oneShotHash } from "node:crypto";
import type { Topology } from "../../../model/topology/types.js";
import { canonicalJson } from "../../../model/topology/build.js";
import { gatewayClusters, upstreamClusters, UpstreamCache, type Built } from "./clusters.js";
import { listeners, routeConfigs } from "./listeners.js";
import { resolveOptions, type ResolvedOptions } from "./options.js";
import { ProtoCodec } from "./pgv.js";
import { envoyRoot, typeNameOf } from "./protos.js";
import { markSortedByName } from "../server/resources.js";
import { TYPE_URLS, type EnvoyResource, type EnvoyResources, type TranslateOptions, type XdsProblem } from "./types.js";

let codec: ProtoCodec | undefined;
/** The shared codec (compiled converters are cached per message type). */
export function sharedCodec(): ProtoCodec {
  return (codec ??= new ProtoCodec(envoyRoot()));
}

const hash = (parts: readonly (string | Uint8Array)[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex").slice(0, 16);
};
const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

// Translation reuses work from the previous one (same options): upstream clusters are cached per
// server and per pool (UpstreamCache, keyed on Topology object identity), and each cached Built's
// encoding (bytes, violations, the EnvoyResource) is kept beside it. A one-object change then
// encodes only the clusters that object touches. The output is byte-identical to a translation
// from scratch (translate.test.ts checks that over random change sequences).
const CACHES = new Map<string, UpstreamCache>();
function upstreamCacheFor(opts: ResolvedOptions): UpstreamCache {
  const key = canonicalJson(opts);
  let c = CACHES.get(key);
  if (!c) {
    if (CACHES.size >= 4) CACHES.delete(CACHES.keys().next().value!); // a few option sets (tests, render) at most
    CACHES.set(key, (c = new UpstreamCache()));
  }
  return c;
}

/** Forget every cached piece: the next translation starts from scratch (benchmarks, tests). */
export function resetTranslationCaches(): void {
  CACHES.clear();
}

/** A translation that reuses nothing (the caches of the change path are left as they were): tests compare it with `translate`. */
export function translateFromScratch(topology: Topology, options: TranslateOptions): EnvoyResources {
  const saved = [...CACHES];
  CACHES.clear();
  try {
    return translate(topology, options);
  } finally {
    CACHES.clear();
    for (const [k, v] of saved) CACHES.set(k, v);
  }
}

// The order of the last translation's resources of each type, as built and as sorted: when the
// next one builds the same names in the same order (a one-object change replaces resources, it
// rarely adds or removes any), the sorted order is read off instead of sorting 10,000 names again.
const LAST_ORDER = new Map<string, { readonly names: readonly string[]; readonly order: Int32Array }>();

/** `g` sorted by name; throws on a duplicate name (the snapshot takes the list as is). */
function sortedByName(typeUrl: string, g: readonly EnvoyResource[]): EnvoyResource[] {
  const last = LAST_ORDER.get(typeUrl);
  if (last && last.names.length === g.length && g.every((r, i) => r.name === last.names[i])) return Array.from(last.order, (i) => g[i]!);
  const order = Int32Array.from(g.keys()).sort((a, b) => byName(g[a]!, g[b]!));
  for (let k = 1; k < order.length; k++) if (g[order[k - 1]!]!.name === g[order[k]!]!.name) throw new Error(`translate: duplicate ${typeUrl} resource "${g[order[k]!]!.name}"`);
  LAST_ORDER.set(typeUrl, { names: g.map((r) => r.name), order });
  return Array.from(order, (i) => g[i]!);
}

interface Encoded {
  readonly bytes: Uint8Array | undefined;
  readonly violations: ReturnType<ProtoCodec["encode"]>["violations"];
  res?: EnvoyResource;
}
/** Where a cached Built keeps its encoding (a property, cheaper than a WeakMap look-up per resource). */
const ENCODED = Symbol("encoded");
type WithEncoded = Built & { [ENCODED]?: Encoded };

export function translate(topology: Topology, options: TranslateOptions): EnvoyResources {
  const opts = resolveOptions(options);
  const c = sharedCodec();
  const built: Built[] = [...gatewayClusters(opts), ...upstreamClusters(topology, opts, upstreamCacheFor(opts)), ...routeConfigs(topology, opts), ...listeners(topology, opts)];
  const problems: XdsProblem[] = [];
  const ok = new Map<string, EnvoyResource[]>();
  const failedClusters = new Set<string>();
  for (const b of built) {
    const lazy = typeof b.value === "function" ? b.value : undefined;
    let enc = (b as WithEncoded)[ENCODED];
    let value: Record<string, unknown> | undefined;
    if (!enc) {
      value = lazy ? lazy() : (b.value as Record<string, unknown>);
      enc = c.encode(typeNameOf(b.typeUrl), value);
      // Only lazily built values are cached (upstream clusters); the others are rebuilt each time.
      if (lazy) (b as WithEncoded)[ENCODED] = enc;
    }
    const { bytes, violations } = enc;
    if (!bytes) {
      if (b.typeUrl === TYPE_URLS.cluster) failedClusters.add(b.name);
      const detail = violations.slice(0, 3).map((v) => `${v.path || "(root)"}: ${v.message} [${v.rule}]`).join("; ");
      const more = violations.length > 3 ? ` (and ${violations.length - 3} more)` : "";
      for (const s of b.sources) {
        problems.push({
          kind: s.kind,
          name: s.name,
          field: "spec",
          reason: "InvalidEnvoyResource",
          message: `${typeNameOf(b.typeUrl).split(".").pop()} "${b.name}" fails Envoy's validation and is not served: ${detail}${more}`,
          severity: "error",
          condition: "Programmed",
          resource: { typeUrl: b.typeUrl, name: b.name },
        });
      }
      continue;
    }
    // The encoding already depends on the type (and names the resource): hash the bytes alone.
    let res = enc.res;
    if (!res) {
      const version = oneShotHash("sha1", bytes, "hex").slice(0, 16);
      res = lazy
        ? (Object.defineProperty({ name: b.name, typeUrl: b.typeUrl, encoded: bytes, version } as Omit<EnvoyResource, "value">, "value", { get: lazy, enumerable: true }) as EnvoyResource)
        : { name: b.name, typeUrl: b.typeUrl, value: value!, encoded: bytes, version };
      if (lazy) enc.res = res;
    }
    let group = ok.get(b.typeUrl);
    if (!group) ok.set(b.typeUrl, (group = []));
    group.push(res);
  }
  const list = (typeUrl: string) => {
    const g = ok.get(typeUrl) ?? [];
    return markSortedByName(sortedByName(typeUrl, typeUrl === TYPE_URLS.endpoint && failedClusters.size ? g.filter((r) => !failedClusters.has(r.name)) : g));
  };
  const listenersOut = list(TYPE_URLS.listener);
  const routes = list(TYPE_URLS.route);
  const clusters = list(TYPE_URLS.cluster);
  const endpoints = list(TYPE_URLS.endpoint);
  const out = {
    topologyVersion: topology.version,
    listeners: listenersOut,
    routes,
    clusters,
    endpoints,
    secrets: [],
    problems,
  };
  // The overall version is for render and golden files, not for serving (the snapshot versions
  // each type): computed on first read, so the change path does not hash every resource again.
  let version: string | undefined;
  Object.defineProperty(out, "version", {
    enumerable: true,
    get: () => (version ??= hash([...listenersOut, ...routes, ...clusters, ...endpoints].map((r) => `${r.typeUrl} ${r.name} ${r.version}\n`))),
  });
  return out as unknown as EnvoyResources;
}
