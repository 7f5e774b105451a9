// docs/rules.md is the project's rule book: every rule ID the code can emit is defined there, every
// ID defined there is checked by some test, and nothing points at a rule book outside the repository.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const ID_RE = /\bR-[A-Z0-9]+(?:-[A-Za-z0-9]+)+\b/g;
// Source trees that make decisions, traces, statuses or validation warnings.
const SOURCE_DIRS = ["sidecar", "operator", "model", "cli", "crds"];
const SKIP_DIRS = new Set(["node_modules", "dist", "testdata", ".git"]);

function files(dir: string, keep: (p: string) => boolean, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    if (SKIP_DIRS.has(n)) continue;
    const p = join(dir, n);
    if (statSync(p).isDirectory()) files(p, keep, out);
    else if (keep(p)) out.push(p);
  }
  return out;
}

const isTest = (p: string) => p.endsWith(".test.ts");
// Test helpers beside the code (purpose-made organisations) are not the engine.
const isTestHelper = (p: string) => /(^|\/)test-[\w-]+\.ts$/.test(p);

interface BookEntry {
  readonly id: string;
  readonly implemented: boolean;
  readonly body: string;
}

function readBook(): Map<string, BookEntry> {
  const text = readFileSync(join(ROOT, "docs", "rules.md"), "utf8");
  const book = new Map<string, BookEntry>();
  const parts = text.split(/^### /m).slice(1);
  for (const part of parts) {
    const m = /^(R-[A-Z0-9]+(?:-[A-Za-z0-9]+)+) — \S/.exec(part);
    if (!m) throw new Error(`docs/rules.md: a rule heading must be "### R-ID — title": ${part.split("\n")[0]}`);
    if (book.has(m[1])) throw new Error(`docs/rules.md defines ${m[1]} twice`);
    const body = part.split(/^## /m)[0];
    book.set(m[1], { id: m[1], implemented: !/^State: not implemented/m.test(body), body });
  }
  return book;
}

function idsIn(paths: readonly string[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const p of paths) {
    for (const m of readFileSync(p, "utf8").matchAll(ID_RE)) {
      const list = found.get(m[0]) ?? [];
      const rel = relative(ROOT, p);
      if (!list.includes(rel)) list.push(rel);
      found.set(m[0], list);
    }
  }
  return found;
}

const book = readBook();
const allTs = SOURCE_DIRS.flatMap((d) => files(join(ROOT, d), (p) => p.endsWith(".ts")));
const sources = allTs.filter((p) => !isTest(p) && !isTestHelper(p));
const tests = [...allTs.filter(isTest), ...files(join(ROOT, "test"), isTest)].filter((p) => !p.endsWith("rules-book.test.ts"));

describe("docs/rules.md, the rule book", () => {
  it("defines each rule with what it means, its source and where the engine implements it", () => {
    expect(book.size).toBeGreaterThan(50);
    for (const e of book.values()) {
      expect(e.body, e.id).toMatch(/^Source: \[/m);
      // Implemented in the engine/sidecar/operator (Engine:) or in what Envoy is told (Envoy:).
      if (e.implemented) expect(e.body, e.id).toMatch(/(?:^|\. )(?:Engine|Envoy): `/m);
      // The meaning: at least one sentence of prose under the heading.
      expect(e.body.split("\n").slice(1).join(" ").trim().length, e.id).toBeGreaterThan(60);
    }
  });

  it("defines every rule ID the engine, the sidecar, the mail proxy, the operator and the CLI can emit", () => {
    const undefinedIds = [...idsIn(sources)].filter(([id]) => !book.has(id)).map(([id, where]) => `${id} (${where.join(", ")})`);
    expect(undefinedIds).toEqual([]);
  });

  it("has every implemented rule it defines checked by a test that names it", () => {
    const tested = idsIn(tests);
    const untested = [...book.values()].filter((e) => e.implemented && !tested.has(e.id)).map((e) => e.id);
    expect(untested).toEqual([]);
  });

  it("marks a rule 'not implemented' only when no source code emits it", () => {
    const emitted = idsIn(sources);
    const wrong = [...book.values()].filter((e) => !e.implemented && emitted.has(e.id)).map((e) => e.id);
    expect(wrong).toEqual([]);
  });

  it("is the rule book code, docs and tests point to: nothing points to ../shared", () => {
    const docs = [join(ROOT, "README.md"), ...files(join(ROOT, "docs"), (p) => p.endsWith(".md"))];
    const code = [...allTs, ...files(join(ROOT, "test"), (p) => p.endsWith(".ts"))].filter((p) => !p.endsWith("rules-book.test.ts"));
    const offenders = [...docs, ...code].filter((p) => /\.\.\/shared|shared\/RULES\.md|\bRULES\.md\b/.test(readFileSync(p, "utf8")));
    expect(offenders.map((p) => relative(ROOT, p))).toEqual([]);
  });
});
