// The Envoy extension registry of the pinned release, as data (operator/xds/envoy-extensions.json),
// and the check that every extension name and typed_config type the translator emits is one that
// release registers. The data is extracted from Envoy's own source by scripts/envoy-extensions.ts:
//   source/extensions/extensions_build_config.bzl  the EXTENSIONS dict: what a default build compiles in
//   source/extensions/extensions_metadata.yaml     status, categories, security posture, config types
//   tools/extensions/extensions_check.py           BUILTIN_EXTENSIONS: always built, not in the .bzl
//   api/**/*.proto                                 "[#extension: name]" tags: types the metadata omits
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { typeNameOf } from "./protos.js";

// ---------------------------------------------------------------------------------------------
// Parsing Envoy's files (used by the script; pure functions so they are tested on small inputs).

export interface BuildConfigEntry {
  readonly name: string;
  readonly target: string;
  /** Comment lines right above the entry (e.g. "Disabled by default. ..."). */
  readonly note?: string;
}

/** The EXTENSIONS dict of extensions_build_config.bzl; commented-out entries are not in it. */
export function parseBuildConfig(text: string, file = "extensions_build_config.bzl"): BuildConfigEntry[] {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => /^EXTENSIONS\s*=\s*\{\s*$/.test(l));
  if (start < 0) throw new Error(`${file}: no "EXTENSIONS = {" line`);
  const out: BuildConfigEntry[] = [];
  let comments: string[] = [];
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\}\s*$/.test(line)) return out;
    const t = line.trim();
    if (t === "") {
      comments = [];
      continue;
    }
    // A bare "#" frames a section heading ("#", "# HTTP filters", "#"): not a note on the next entry.
    if (/^#+$/.test(t)) {
      comments = [];
      continue;
    }
    if (t.startsWith("#")) {
      const c = t.replace(/^#+\s?/, "").trim();
      if (c) comments.push(c);
      continue;
    }
    const m = /^"([^"]+)"\s*:\s*"([^"]+)"\s*,?\s*(?:#.*)?$/.exec(t);
    if (!m) throw new Error(`${file}:${i + 1}: not a "name": "//target" entry: ${t}`);
    out.push({ name: m[1]!, target: m[2]!, ...(comments.length ? { note: comments.join(" ") } : {}) });
    comments = [];
  }
  throw new Error(`${file}: EXTENSIONS dict not closed`);
}

const MetadataEntry = z.object({
  categories: z.array(z.string()).min(1),
  security_posture: z.string().min(1),
  status: z.string().min(1),
  status_upstream: z.string().optional(),
  undocumented: z.boolean().optional(),
  type_urls: z.array(z.string()).optional(),
});
export type MetadataEntry = z.infer<typeof MetadataEntry>;

/** extensions_metadata.yaml: name → entry (checked; a bad entry names itself). */
export function parseMetadata(text: string, file = "extensions_metadata.yaml"): Record<string, MetadataEntry> {
  const raw = parseYaml(text) as unknown;
  if (!raw || typeof raw !== "object") throw new Error(`${file}: not a mapping`);
  const out: Record<string, MetadataEntry> = {};
  for (const [name, v] of Object.entries(raw)) {
    const r = MetadataEntry.safeParse(v);
    if (!r.success) throw new Error(`${file}: ${name}: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    out[name] = r.data;
  }
  return out;
}

/** BUILTIN_EXTENSIONS = ( "a", "b", ... ) of tools/extensions/extensions_check.py. */
export function parseBuiltins(text: string, file = "extensions_check.py"): string[] {
  const m = /^BUILTIN_EXTENSIONS\s*=\s*\(([^)]*)\)/m.exec(text);
  if (!m) throw new Error(`${file}: no BUILTIN_EXTENSIONS tuple`);
  return [...m[1]!.matchAll(/"([^"]+)"/g)].map((x) => x[1]!);
}

/**
 * "[#extension: name]" tags of the API protos under `apiDir`: every top-level message of a file
 * that carries exactly one tag is a config type of that extension (how Envoy's docs read the tag).
 */
export function protoExtensionTags(apiDir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".proto")) {
        const text = readFileSync(p, "utf8");
        const tags = [...text.matchAll(/^\/\/ \[#extension: ([a-z0-9_.]+)\]\s*$/gm)].map((m) => m[1]!);
        const pkg = /^package\s+([\w.]+)\s*;/m.exec(text)?.[1];
        if (new Set(tags).size !== 1 || !pkg) continue;
        for (const m of text.matchAll(/^message\s+(\w+)\s*\{/gm)) out.set(`${pkg}.${m[1]}`, tags[0]!);
      }
    }
  };
  walk(apiDir);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The data file.

const ExtensionSchema = z.object({
  /** Compiled into the release's default build. */
  registered: z.boolean(),
  /** Where that comes from: the .bzl EXTENSIONS dict, the built-in list, or only the metadata. */
  source: z.enum(["build_config", "builtin", "metadata_only"]),
  note: z.string().optional(),
  status: z.string().optional(),
  statusUpstream: z.string().optional(),
  securityPosture: z.string().optional(),
  categories: z.array(z.string()).optional(),
  /** Config message types (full names), from the metadata's type_urls. */
  typeUrls: z.array(z.string()).optional(),
  /** Config message types from the API's [#extension:] tags, for extensions the metadata gives none. */
  protoTypes: z.array(z.string()).optional(),
});

export const RegistrySchema = z.object({
  release: z.string().regex(/^v\d+\.\d+\.\d+$/),
  generatedBy: z.string(),
  /** Exactly which files the data was extracted from, and how far they are tied to `release`. */
  provenance: z.object({
    tiedToRelease: z.boolean(),
    summary: z.string(),
    files: z.array(z.object({ path: z.string(), from: z.string(), gitBlob: z.string().optional(), bytes: z.number().int().optional() })),
    checked: z.array(z.string()),
  }),
  extensions: z.record(z.string(), ExtensionSchema),
});
export type Registry = z.infer<typeof RegistrySchema>;
export type RegistryExtension = z.infer<typeof ExtensionSchema>;

export interface RegistryInputs {
  readonly buildConfig: readonly BuildConfigEntry[];
  readonly metadata: Readonly<Record<string, MetadataEntry>>;
  readonly builtins: readonly string[];
  readonly protoTags: ReadonlyMap<string, string>;
}

/** The extensions part of the data: sorted by name so the file is byte-identical for the same inputs. */
export function buildExtensions(inp: RegistryInputs): Registry["extensions"] {
  const built = new Map(inp.buildConfig.map((e) => [e.name, e]));
  const builtins = new Set(inp.builtins);
  const byExt = new Map<string, string[]>();
  for (const [type, ext] of inp.protoTags) byExt.set(ext, [...(byExt.get(ext) ?? []), type]);
  const names = [...new Set([...built.keys(), ...builtins, ...Object.keys(inp.metadata)])].sort();
  const out: Registry["extensions"] = {};
  for (const name of names) {
    const b = built.get(name);
    const md = inp.metadata[name];
    // An entry the .bzl comments as disabled by default is not in the prebuilt images.
    const disabled = b?.note !== undefined && /disabled by default/i.test(b.note);
    const source = b ? "build_config" : builtins.has(name) ? "builtin" : "metadata_only";
    const typeUrls = md?.type_urls ? [...md.type_urls].sort() : undefined;
    // Tags fill in only where the metadata lists no config type, and only v3 (what Envoy accepts);
    // a tagged file's other messages (helpers, v2 copies) would be wrongly admitted otherwise.
    const protoTypes = typeUrls?.length ? [] : (byExt.get(name) ?? []).filter((t) => /\.v3\.[A-Z]\w*$/.test(t)).sort();
    out[name] = {
      registered: source !== "metadata_only" && !disabled,
      source,
      ...(b?.note ? { note: b.note } : {}),
      ...(md ? { status: md.status, securityPosture: md.security_posture, categories: [...md.categories].sort() } : {}),
      ...(md?.status_upstream ? { statusUpstream: md.status_upstream } : {}),
      ...(typeUrls?.length ? { typeUrls } : {}),
      ...(protoTypes.length ? { protoTypes } : {}),
    };
  }
  return out;
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** The committed data file. */
export const REGISTRY_FILE = path.join(here, "..", "envoy-extensions.json");

export function loadRegistry(file = REGISTRY_FILE): Registry {
  const r = RegistrySchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!r.success) throw new Error(`${file}: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return r.data;
}

// ---------------------------------------------------------------------------------------------
// What a configuration uses, and the check against the registry.

/** xDS resource and bootstrap types: Envoy's core API, not extensions. */
export const CORE_TYPES = new Set([
  "envoy.config.listener.v3.Listener",
  "envoy.config.route.v3.RouteConfiguration",
  "envoy.config.cluster.v3.Cluster",
  "envoy.config.endpoint.v3.ClusterLoadAssignment",
  "envoy.config.bootstrap.v3.Bootstrap",
]);

/** Cluster discovery types → the extension implementing them (the .bzl names). */
const CLUSTER_TYPE_EXTENSIONS: Record<string, string> = {
  STATIC: "envoy.clusters.static",
  STRICT_DNS: "envoy.clusters.strict_dns",
  LOGICAL_DNS: "envoy.clusters.logical_dns",
  EDS: "envoy.clusters.eds",
  ORIGINAL_DST: "envoy.clusters.original_dst",
};
/** HealthCheck oneof members → health checker extensions. */
const HEALTH_CHECKER_EXTENSIONS: Record<string, string> = {
  http_health_check: "envoy.health_checkers.http",
  tcp_health_check: "envoy.health_checkers.tcp",
  grpc_health_check: "envoy.health_checkers.grpc",
};

export interface ExtensionUse {
  readonly kind: "type" | "name" | "implied";
  /** A message type (kind "type") or an extension name. */
  readonly value: string;
  /** For a typed_config: the extension name it is given under (filter name, map key), if any. */
  readonly givenAs?: string;
  readonly path: string;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Every extension a proto3-JSON resource uses: each Any's @type (with the name it is given under),
 * filter / transport socket names, typed_per_filter_config and typed_extension_protocol_options
 * keys, and extensions implied by fields (cluster discovery type, health checkers).
 */
export function extensionUses(resource: unknown, at = ""): ExtensionUse[] {
  const out: ExtensionUse[] = [];
  const walk = (v: unknown, p: string, givenAs?: string) => {
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${p}[${i}]`));
    if (!isObj(v)) return;
    if (typeof v["@type"] === "string") out.push({ kind: "type", value: typeNameOf(v["@type"]), path: p, ...(givenAs ? { givenAs } : {}) });
    if (typeof v.name === "string" && isObj(v.typed_config)) out.push({ kind: "name", value: v.name, path: `${p}.name` });
    // A Cluster: its discovery type (absent = STATIC) is an extension.
    if (typeof v["@type"] === "string" && typeNameOf(v["@type"]) === "envoy.config.cluster.v3.Cluster" && !isObj(v.cluster_type)) {
      const t = typeof v.type === "string" ? v.type : "STATIC";
      out.push({ kind: "implied", value: CLUSTER_TYPE_EXTENSIONS[t] ?? `(cluster type ${t})`, path: `${p}.type` });
    }
    for (const [k, x] of Object.entries(v)) {
      const q = p ? `${p}.${k}` : k;
      if (k === "typed_config" && typeof v.name === "string") walk(x, q, v.name);
      else if ((k === "typed_per_filter_config" || k === "typed_extension_protocol_options") && isObj(x)) {
        for (const [key, y] of Object.entries(x)) {
          out.push({ kind: "name", value: key, path: `${q}[${key}]` });
          walk(y, `${q}[${key}]`, key);
        }
      } else {
        if (k in HEALTH_CHECKER_EXTENSIONS && /health_checks\[\d+\]$/.test(p)) out.push({ kind: "implied", value: HEALTH_CHECKER_EXTENSIONS[k]!, path: q });
        walk(x, q);
      }
    }
  };
  walk(resource, at);
  return out;
}

export interface RegistryProblem {
  readonly path: string;
  readonly message: string;
}

/** Indexes of a registry: type → extensions declaring it. */
export function typeIndex(reg: Registry): Map<string, string[]> {
  const idx = new Map<string, string[]>();
  for (const [name, e] of Object.entries(reg.extensions)) {
    for (const t of [...(e.typeUrls ?? []), ...(e.protoTypes ?? [])]) idx.set(t, [...(idx.get(t) ?? []), name]);
  }
  return idx;
}

/** Problems: a use the release does not register, or a config type given under another extension's name. */
export function checkUses(uses: readonly ExtensionUse[], reg: Registry): RegistryProblem[] {
  const idx = typeIndex(reg);
  const problems: RegistryProblem[] = [];
  const registered = (n: string) => reg.extensions[n]?.registered === true;
  for (const u of uses) {
    if (u.kind === "type") {
      if (CORE_TYPES.has(u.value)) continue;
      const owners = idx.get(u.value) ?? [];
      if (owners.length === 0) {
        problems.push({ path: u.path, message: `type ${u.value} is no extension's configuration in Envoy ${reg.release}` });
        continue;
      }
      if (!owners.some(registered)) {
        problems.push({ path: u.path, message: `type ${u.value} belongs to ${owners.join(", ")}, which Envoy ${reg.release} does not build by default` });
        continue;
      }
      // Given under a name: that name must be (one of) the type's extensions, or the type itself.
      if (u.givenAs && u.givenAs !== u.value && !owners.includes(u.givenAs)) {
        problems.push({ path: u.path, message: `type ${u.value} is given as "${u.givenAs}" but belongs to ${owners.join(", ")}` });
      }
      continue;
    }
    // Names: an extension name, or (typed_extension_protocol_options keys) a registered config type.
    if (registered(u.value)) continue;
    if ((idx.get(u.value) ?? []).some(registered)) continue;
    const e = reg.extensions[u.value];
    problems.push({
      path: u.path,
      message: e ? `extension ${u.value} is not built by default in Envoy ${reg.release}${e.note ? ` (${e.note})` : ""}` : `extension ${u.value} is not registered by Envoy ${reg.release}`,
    });
  }
  return problems;
}
