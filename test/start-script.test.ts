// `npm start` (scripts/start.sh) reuses an up-to-date build: with dist/ built from the sources in the
// tree (npm test builds first), it starts the gateway without compiling anything. Here the gateway
// is only asked for its --help, so nothing listens; the build's files must be left untouched.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const info = join(ROOT, "dist", ".tsbuildinfo");
const main = join(ROOT, "dist", "cli", "main.js");
// start.sh runs `npm ci` first when package-lock.json is newer than the installed tree: not here.
const installStale = !existsSync(join(ROOT, "node_modules", ".package-lock.json")) || statSync(join(ROOT, "package-lock.json")).mtimeMs > statSync(join(ROOT, "node_modules", ".package-lock.json")).mtimeMs;

describe.skipIf(installStale)("npm start reuses an up-to-date build", () => {
  it("compiles nothing when dist/ is newer than every source", () => {
    expect(existsSync(info), "dist/.tsbuildinfo: run npm run build first").toBe(true);
    const before = { info: statSync(info).mtimeMs, main: statSync(main).mtimeMs };
    const r = spawnSync("bash", ["scripts/start.sh", "--help"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("Usage: cas-gateway standalone");
    expect(statSync(info).mtimeMs).toBe(before.info);
    expect(statSync(main).mtimeMs).toBe(before.main);
  });
});
