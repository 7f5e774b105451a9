// The layers stand on each other one way (docs/architecture.md): crds/ at the bottom, model/ on it,
// operator/ and sidecar/ on model/ and never on each other, cli/ on top wiring both. Every import of
// the shipped source (tests left out) is read with the TypeScript scanner, so `import type`,
// `export … from` and dynamic `import()` count too, and checked against that order.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** What each top-level layer may import besides itself (and node_modules). */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  crds: [],
  model: ["crds"],
  operator: ["model", "crds"],
  sidecar: ["model", "crds"],
  // `cas-gateway import`: Exchange exports to manifests, beside the wings, wired from cli/.
  importer: ["model", "crds"],
  cli: ["operator", "sidecar", "importer", "model", "crds"],
};

const isTestFile = (file: string): boolean => /\.test\.ts$/.test(file);

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mts)$/.test(e.name) && !e.name.endsWith(".d.ts") && !isTestFile(e.name)) out.push(p);
  }
  return out;
}

interface Violation {
  readonly file: string;
  readonly line: number;
  readonly specifier: string;
  readonly message: string;
}

/** The imports of `file` (a path relative to ROOT) that leave its layer for one it may not use. */
function violations(file: string, source: string): Violation[] {
  const layer = file.split("/")[0]!;
  const allowed = MAY_IMPORT[layer];
  if (!allowed) return [];
  const info = ts.preProcessFile(source, true, true);
  const lineOf = (pos: number) => source.slice(0, pos).split("\n").length;
  const out: Violation[] = [];
  for (const imp of info.importedFiles) {
    if (!imp.fileName.startsWith(".")) continue;
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), imp.fileName));
    const targetLayer = target.split("/")[0]!;
    if (targetLayer === layer || allowed.includes(targetLayer)) continue;
    out.push({
      file,
      line: lineOf(imp.pos),
      specifier: imp.fileName,
      message: `${file}:${lineOf(imp.pos)} imports ${imp.fileName} (${targetLayer}/); ${layer}/ may import only ${[layer, ...allowed].join(", ")}`,
    });
  }
  return out;
}

describe("one-way structure", () => {
  it("the checker sees static, type-only, re-export and dynamic imports across the wings", () => {
    const src = [
      'import { a } from "../../sidecar/x.js";',
      'import type { B } from "../../sidecar/y.js";',
      'export { c } from "../../sidecar/z.js";',
      'const d = await import("../../sidecar/w.js");',
      'import { e } from "../../model/health.js";',
      'import { f } from "./local.js";',
      'import pino from "pino";',
    ].join("\n");
    const v = violations("operator/xds/fake.ts", src);
    expect(v.map((x) => x.specifier)).toEqual([
      "../../sidecar/x.js",
      "../../sidecar/y.js",
      "../../sidecar/z.js",
      "../../sidecar/w.js",
    ]);
    expect(v[1]!.message).toBe(
      "operator/xds/fake.ts:2 imports ../../sidecar/y.js (sidecar/); operator/ may import only operator, model, crds",
    );
    expect(violations("sidecar/fake.ts", 'import { T } from "../operator/topology/types.js";')).toHaveLength(1);
    expect(violations("model/fake.ts", 'import { T } from "../sidecar/state.js";')).toHaveLength(1);
    expect(violations("cli/fake.ts", 'import "../operator/a.js"; import "../sidecar/b.js";')).toEqual([]);
  });

  it("no shipped source imports across operator/ and sidecar/, and model/ and crds/ import neither", () => {
    const found: string[] = [];
    let files = 0;
    for (const layer of Object.keys(MAY_IMPORT)) {
      for (const abs of sourceFiles(path.join(ROOT, layer))) {
        const rel = path.relative(ROOT, abs).split(path.sep).join("/");
        files++;
        found.push(...violations(rel, readFileSync(abs, "utf8")).map((v) => v.message));
      }
    }
    // Guard against a walk that silently finds nothing (a moved root, a wrong glob).
    expect(files).toBeGreaterThan(100);
    expect(found).toEqual([]);
  });
});
