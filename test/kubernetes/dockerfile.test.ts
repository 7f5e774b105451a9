// The Dockerfile cannot be built here (no Docker engine); test/e2e/kind.sh builds it. These checks
// catch the mistakes a build would: a source directory the compiler needs that is not copied (or
// is excluded by .dockerignore), a root runtime user, an unpinned or non-slim base.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { imageMallocEnv } from "../../bench/image-env.js";

const ROOT = join(import.meta.dirname, "..", "..");
const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
const ignore = readFileSync(join(ROOT, ".dockerignore"), "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"));
const buildConfig = JSON.parse(readFileSync(join(ROOT, "tsconfig.build.json"), "utf8")) as { include: string[] };

describe("Dockerfile (static checks; no Docker engine here)", () => {
  it("copies every directory the build compiles, and .dockerignore lets them in", () => {
    const dirs = [...new Set(buildConfig.include.map((p) => p.split("/")[0]))];
    for (const d of [...dirs, "bin"]) {
      expect(dockerfile, d).toMatch(new RegExp(`^COPY ${d} \\./${d}$`, "m"));
      expect(ignore, d).toContain(`!${d}/`);
    }
    expect(ignore[0]).toBe("*"); // allow-list: nothing else (no .git, no node_modules, no secrets)
  });

  it("is multi-stage on a supported Node LTS (node:24-bookworm-slim), prunes dev dependencies, runs as a non-root uid with ENTRYPOINT cas-gateway", () => {
    // Node 20 reached its end of life on 2026-04-30; 24 is LTS until 2028-04-30. Both stages alike.
    expect(dockerfile.match(/^FROM node:24-bookworm-slim AS \w+$/gm)).toHaveLength(2);
    expect(dockerfile).not.toMatch(/^FROM node:(1\d|20|21|23)\b/m);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    expect(dockerfile).toMatch(/^USER 10001:10001$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["cas-gateway"\]$/m);
    expect(dockerfile).toMatch(/ln -s \/app\/bin\/cas-gateway\.js \/usr\/local\/bin\/cas-gateway/);
    const bin = readFileSync(join(ROOT, "bin", "cas-gateway.js"), "utf8");
    expect(bin.startsWith("#!/usr/bin/env node")).toBe(true);
  });

  it("sets glibc malloc thresholds in the runtime stage, as the xds-server bench reads them", () => {
    // imageMallocEnv reads the runtime stage (the last FROM) only.
    // 32 MiB is glibc's largest MALLOC_MMAP_THRESHOLD_ on 64-bit (a larger value is ignored).
    expect(imageMallocEnv(dockerfile)).toEqual({ MALLOC_MMAP_THRESHOLD_: "33554432", MALLOC_TRIM_THRESHOLD_: "134217728" });
  });
});
