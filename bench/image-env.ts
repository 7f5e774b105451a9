// The environment the image runs the gateway with: the `ENV NAME=value` lines of the Dockerfile's
// runtime stage (its last FROM). Benches that start a gateway process give it this environment, so
// they measure what the image runs (NODE_ENV, glibc malloc settings).
import { readFileSync } from "node:fs";

const DOCKERFILE = new URL("../Dockerfile", import.meta.url);

/** `ENV NAME=value` lines of the Dockerfile's last stage (the runtime one). */
export function imageRuntimeEnv(dockerfile = readFileSync(DOCKERFILE, "utf8")): Record<string, string> {
  const from = dockerfile.lastIndexOf("\nFROM ");
  const runtime = from < 0 ? dockerfile : dockerfile.slice(from);
  const env: Record<string, string> = {};
  for (const m of runtime.matchAll(/^ENV ([A-Z_]+)=(\S+)$/gm)) env[m[1]!] = m[2]!;
  return env;
}

/** The image's glibc malloc settings (its runtime `ENV MALLOC_*` lines). */
export function imageMallocEnv(dockerfile?: string): Record<string, string> {
  return Object.fromEntries(Object.entries(imageRuntimeEnv(dockerfile)).filter(([k]) => k.startsWith("MALLOC_")));
}
