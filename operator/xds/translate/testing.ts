// Test helpers shared by the translator's tests: the golden cases and their options.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { parseManifestText } from "../../provider/manifests.js";
import { buildTopology } from "../../../model/topology/build.js";
import type { TranslateOptions } from "./types.js";

const here = path.dirname(fileURLToPath(import.meta.url));
export const IN = path.join(here, "../testdata/in");
export const OUT = path.join(here, "../testdata/out");

export const GOLDEN_BASE_OPTIONS: TranslateOptions = {
  sidecar: { address: "127.0.0.1", port: 9001 },
  mailProxy: { address: "127.0.0.1", pop3Port: 1110, imap4Port: 1143 },
  tls: { certFile: "/etc/cas-gateway/tls/tls.crt", keyFile: "/etc/cas-gateway/tls/tls.key" },
};

export function goldenCase(name: string) {
  const file = path.join(IN, `${name}.yaml`);
  const set = parseManifestText(readFileSync(file, "utf8"), file);
  if (set.errors.length) throw new Error(`${name}: ${set.errors.map((e) => e.message).join("; ")}`);
  const optFile = path.join(IN, `${name}.options.yaml`);
  const options = { ...GOLDEN_BASE_OPTIONS, ...(existsSync(optFile) ? (parse(readFileSync(optFile, "utf8")) as Partial<TranslateOptions>) : {}) };
  const topology = buildTopology(set.objects.map((o) => o.object));
  return { topology, options };
}

