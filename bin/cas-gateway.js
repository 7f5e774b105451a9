#!/usr/bin/env node
// Launcher: runs the compiled CLI. `npm run build` (run by the README's set-up commands) creates dist/.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const entry = join(root, "dist", "cli", "main.js");
if (!existsSync(entry)) {
  process.stderr.write(`cas-gateway: ${entry} is missing; run "npm ci && npm run build" in ${root} first\n`);
  process.exit(2);
}
await import(pathToFileURL(entry).href);
