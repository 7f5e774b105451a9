// Regenerates operator/xds/envoy-extensions.json: the extensions the pinned Envoy release registers,
// extracted from Envoy's own source (see operator/xds/translate/envoy-registry.ts for what is read).
//
//   npm run gen:envoy-extensions -- --envoy-src ~/src/envoy --release v1.39.3
//
// --envoy-src is a checkout of envoyproxy/envoy at the release tag (git checkout v1.39.3). When it
// is a git checkout, its commit and `git describe` are recorded and the data is marked tied to the
// release only if HEAD is exactly the tag. Single files can be given instead (--build-config,
// --metadata, --extensions-check, --api) with --from saying where each came from; then the data
// says it is not tied to the release unless --tied is given. Nothing is fetched: no network here.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  REGISTRY_FILE,
  RegistrySchema,
  buildExtensions,
  parseBuildConfig,
  parseBuiltins,
  parseMetadata,
  protoExtensionTags,
  type Registry,
} from "../operator/xds/translate/envoy-registry.js";

const { values: a } = parseArgs({
  options: {
    "envoy-src": { type: "string" },
    "build-config": { type: "string" },
    metadata: { type: "string" },
    "extensions-check": { type: "string" },
    builtin: { type: "string", multiple: true },
    api: { type: "string" },
    release: { type: "string" },
    from: { type: "string", multiple: true },
    tied: { type: "boolean", default: false },
    summary: { type: "string" },
    checked: { type: "string", multiple: true },
    out: { type: "string", default: REGISTRY_FILE },
    help: { type: "boolean", default: false },
  },
  strict: true,
});

function usage(msg?: string): never {
  if (msg) process.stderr.write(`envoy-extensions: ${msg}\n`);
  process.stderr.write(
    "usage: envoy-extensions --release vX.Y.Z (--envoy-src DIR | --build-config F --metadata F [--extensions-check F | --builtin NAME...] [--api DIR])\n" +
      "       [--from PATH=ORIGIN ...] [--tied] [--summary TEXT] [--checked TEXT ...] [--out FILE]\n",
  );
  process.exit(msg ? 2 : 0);
}
if (a.help) usage();
if (!a.release || !/^v\d+\.\d+\.\d+$/.test(a.release)) usage("--release vX.Y.Z is required (the Envoy pin, charts/cas-gateway/values.yaml gateway.envoy.image.tag)");

const src = a["envoy-src"];
const file = (flag: string | undefined, rel: string): string | undefined => flag ?? (src ? path.join(src, rel) : undefined);
const BZL = "source/extensions/extensions_build_config.bzl";
const META = "source/extensions/extensions_metadata.yaml";
const CHECK = "tools/extensions/extensions_check.py";
const bzlFile = file(a["build-config"], BZL);
const metaFile = file(a.metadata, META);
if (!bzlFile || !metaFile) usage("give --envoy-src, or --build-config and --metadata");
for (const f of [bzlFile, metaFile]) if (!existsSync(f)) usage(`${f}: no such file`);
const checkFile = file(a["extensions-check"], CHECK);
// The API tree: the checkout's api/, else the one the translator validates against (@grpc/grpc-js-xds).
const require = createRequire(import.meta.url);
const xdsApi = path.join(path.dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps", "envoy-api");
const apiDir = a.api ?? (src && existsSync(path.join(src, "api")) ? path.join(src, "api") : xdsApi);

const read = (f: string) => readFileSync(f, "utf8");
const builtins = a.builtin?.length ? a.builtin : checkFile && existsSync(checkFile) ? parseBuiltins(read(checkFile), checkFile) : usage(`no ${CHECK}: give --extensions-check or --builtin`);

const origins = new Map((a.from ?? []).map((s) => [s.slice(0, s.indexOf("=")), s.slice(s.indexOf("=") + 1)] as const));
const gitBlob = (text: Buffer) => createHash("sha1").update(`blob ${text.length}\0`).update(text).digest("hex");
const git = (...args: string[]) => {
  try {
    return src ? execFileSync("git", ["-C", src, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() : undefined;
  } catch {
    return undefined;
  }
};
const head = git("rev-parse", "HEAD");
const describe = git("describe", "--tags", "--exact-match");
const describeFile = (rel: string, f: string) => {
  const bytes = readFileSync(f);
  const from = origins.get(rel) ?? (head ? `envoyproxy/envoy@${head}${describe ? ` (${describe})` : ""}` : f);
  return { path: rel, from, gitBlob: gitBlob(bytes), bytes: bytes.length };
};
const apiFrom = apiDir === xdsApi ? `@grpc/grpc-js-xds ${(require("@grpc/grpc-js-xds/package.json") as { version: string }).version} deps/envoy-api` : apiDir;
const files: Registry["provenance"]["files"] = [
  describeFile(BZL, bzlFile),
  describeFile(META, metaFile),
  ...(a.builtin?.length ? [{ path: CHECK, from: origins.get(CHECK) ?? "given with --builtin" }] : [describeFile(CHECK, checkFile!)]),
  { path: "api/**/*.proto ([#extension:] tags)", from: origins.get("api") ?? apiFrom },
];
const tied = a.tied || (describe === a.release);

const data: Registry = {
  release: a.release,
  generatedBy: "scripts/envoy-extensions.ts",
  provenance: {
    tiedToRelease: tied,
    summary: a.summary ?? (tied ? `Extracted from Envoy ${a.release}.` : `NOT tied to ${a.release}: extracted from the files listed (see "from").`),
    files,
    checked: a.checked ?? [],
  },
  extensions: buildExtensions({
    buildConfig: parseBuildConfig(read(bzlFile), bzlFile),
    metadata: parseMetadata(read(metaFile), metaFile),
    builtins,
    protoTags: protoExtensionTags(apiDir),
  }),
};
RegistrySchema.parse(data);
writeFileSync(a.out, `${JSON.stringify(data, null, 2)}\n`);
const exts = Object.values(data.extensions);
process.stdout.write(`${a.out}: ${exts.length} extensions, ${exts.filter((e) => e.registered).length} registered by default (${tied ? "tied to" : "NOT tied to"} ${a.release})\n`);
