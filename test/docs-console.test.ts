// Every ```console block of README.md and docs/*.md runs as written: each `$ ` command (with its `\`
// continuation lines) runs in bash, `cas-gateway` / `npx cas-gateway` being this checkout's built
// bin/cas-gateway.js, and each output line the block shows must be printed (to stdout or stderr, in
// that order within the stream it went to; a `...` line stands for lines left out). Exit code 0
// unless the line before the block says `<!-- console: exit N -->`. Blocks of one document share
// a scratch directory that sees the repository's files (examples/, ...), so `import --out manifests`
// followed by `validate --manifests manifests` works as a reader would run it, and nothing is written
// into the checkout. The extractor is generic: a new document's console blocks are checked too.
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StandaloneFlags, startStandalone } from "../cli/commands/standalone.js";
import { EVERY_PORT_FREE } from "./standalone-ports.js";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "cas-gateway.js");

/**
 * Blocks that cannot run here, and why: only those that need a Kubernetes cluster, Docker or an Envoy
 * binary (none of which this machine has). Matched by document and the start of the block's first
 * command; an entry that matches no block fails the test, so the list cannot go stale.
 */
const SKIP: readonly { readonly doc: string; readonly command: string; readonly why: string }[] = [
  { doc: "docs/import.md", command: "kubectl apply -n exchange -f manifests/", why: "needs a Kubernetes cluster with the CRDs installed" },
];

/**
 * Addresses in the docs that stand for a process the reader started first. The test starts that
 * process itself on free ports and points the command there instead.
 */
const RUNNING_GATEWAY = "http://127.0.0.1:9902"; // `npm start`'s admin port (standalone on examples/contoso)

interface Block {
  readonly doc: string;
  readonly line: number;
  readonly exitCode: number;
  readonly commands: readonly { readonly command: string; readonly output: readonly string[] }[];
}

/** The console blocks of a markdown document. */
function consoleBlocks(doc: string, text: string): Block[] {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== "```console") continue;
    const exit = /^<!--\s*console:\s*exit\s+(\d+)\s*-->$/.exec(lines[i - 1]?.trim() ?? "");
    const commands: { command: string; output: string[] }[] = [];
    let j = i + 1;
    for (; j < lines.length && lines[j].trim() !== "```"; j++) {
      const l = lines[j];
      if (l.startsWith("$ ")) {
        let cmd = l.slice(2);
        while (cmd.endsWith("\\") && j + 1 < lines.length) cmd = `${cmd.slice(0, -1)} ${lines[++j].trim()}`;
        commands.push({ command: cmd.trim(), output: [] });
      } else if (commands.length > 0) commands.at(-1)!.output.push(l);
      else throw new Error(`${doc}:${j + 1}: a console block's first line must be a "$ " command`);
    }
    blocks.push({ doc, line: i + 1, exitCode: exit ? Number(exit[1]) : 0, commands });
    i = j;
  }
  return blocks;
}

const DOCS = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)];
const BLOCKS = DOCS.flatMap((d) => consoleBlocks(d, readFileSync(join(ROOT, d), "utf8")));
const skipOf = (b: Block) => SKIP.find((s) => s.doc === b.doc && b.commands[0]?.command.startsWith(s.command));

let tmp: string;
let shim: string;
let gateway: Awaited<ReturnType<typeof startStandalone>> | undefined;
const workspaces = new Map<string, string>();

/** A scratch directory per document that sees the repository's top-level files through symlinks. */
function workspace(doc: string): string {
  let w = workspaces.get(doc);
  if (w) return w;
  w = join(tmp, `ws-${workspaces.size}`);
  mkdirSync(w);
  for (const e of readdirSync(ROOT)) if (e !== ".git") symlinkSync(join(ROOT, e), join(w, e));
  workspaces.set(doc, w);
  return w;
}

function run(command: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn("bash", ["-c", command], { cwd, env: { ...process.env, PATH: `${shim}:${process.env.PATH ?? ""}`, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    p.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Shown lines not printed, in order within the stream each went to; `...` skips any number of lines. */
function missingLines(shown: readonly string[], out: { stdout: string; stderr: string }): string[] {
  const streams = [out.stdout, out.stderr].map((s) => s.split("\n").map((l) => l.trimEnd()));
  const pos = [0, 0];
  const missing: string[] = [];
  for (const raw of shown) {
    const l = raw.trimEnd();
    if (l === "..." || l === "") continue;
    let found = false;
    for (let k = 0; k < streams.length && !found; k++) {
      const at = streams[k].indexOf(l, pos[k]);
      if (at >= 0) {
        pos[k] = at + 1;
        found = true;
      }
    }
    if (!found) missing.push(l);
  }
  return missing;
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, "dist", "cli", "main.js"))) throw new Error("build first (npm run build): the docs run the built command");
  tmp = mkdtempSync(join(tmpdir(), "cas-docs-console-"));
  shim = join(tmp, "bin");
  mkdirSync(shim);
  // `npx cas-gateway` finds node_modules/.bin in a clone after `npm install`; here the shim is on PATH for both spellings.
  writeFileSync(join(shim, "cas-gateway"), `#!/bin/sh\nexec node ${JSON.stringify(BIN)} "$@"\n`);
  chmodSync(join(shim, "cas-gateway"), 0o755);
  if (BLOCKS.some((b) => b.commands.some((c) => c.command.includes(RUNNING_GATEWAY)))) {
    gateway = await startStandalone(
      StandaloneFlags.parse({
        manifests: join(ROOT, "examples", "contoso"),
        directory: join(ROOT, "examples", "contoso", "mailboxes.csv"),
        site: "usa",
        ...EVERY_PORT_FREE,
        healthChecks: false,
        envoy: "off",
        bootstrap: join(tmp, "envoy.yaml"),
        logLevel: "silent",
      }),
      pino({ level: "silent" }),
    );
    const admin = `http://127.0.0.1:${gateway.adminPort}`;
    for (let end = Date.now() + 30_000; (await fetch(`${admin}/readyz`)).status !== 200; ) {
      if (Date.now() > end) throw new Error("the gateway for the docs' --gateway examples did not become ready");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}, 120_000);

afterAll(async () => {
  await gateway?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("README and docs console examples run as written", () => {
  it("finds the blocks, and every skip entry still matches a block", () => {
    expect(BLOCKS.filter((b) => b.doc === "README.md").length).toBeGreaterThanOrEqual(5);
    for (const s of SKIP) expect(BLOCKS.some((b) => skipOf(b) === s), `skip entry ${s.doc}: ${s.command}`).toBe(true);
  });

  for (const b of BLOCKS) {
    const skip = skipOf(b);
    it.skipIf(skip !== undefined)(`${b.doc}:${b.line}: ${b.commands.map((c) => c.command.split(" ").slice(0, 3).join(" ")).join("; ")}${skip ? ` (skipped: ${skip.why})` : ""}`, async () => {
      const cwd = workspace(b.doc);
      for (const [n, c] of b.commands.entries()) {
        const command = gateway ? c.command.replaceAll(RUNNING_GATEWAY, `http://127.0.0.1:${gateway.adminPort}`) : c.command;
        const r = await run(command, cwd);
        const last = n === b.commands.length - 1;
        const context = `${b.doc}:${b.line}: $ ${c.command}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
        expect(r.code, context).toBe(last ? b.exitCode : 0);
        expect(missingLines(c.output, r), context).toEqual([]);
      }
    });
  }
});
