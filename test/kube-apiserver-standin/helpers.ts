// Test helpers around the stand-in: a KubeConfig pointing at it, the example organisation as the
// raw objects `kubectl apply -n <ns> -f examples/contoso` would create, and a bounded wait.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "./server.js";

export function standinKubeConfig(server: string, token = "standin-token"): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    // client-node only allows plain http:// with skipTLSVerify (there is no TLS to verify on loopback).
    clusters: [{ name: "standin", server, skipTLSVerify: true }],
    users: [{ name: "test", token }],
    contexts: [{ name: "standin", cluster: "standin", user: "test", namespace: "mail" }],
    currentContext: "standin",
  });
  return kc;
}

const EXAMPLES = join(import.meta.dirname, "..", "..", "examples", "contoso");

/** The example organisation's casgateway.io objects, as raw manifests in `namespace`. */
export function contosoObjects(namespace = "mail"): KubeObject[] {
  const out: KubeObject[] = [];
  for (const f of readdirSync(EXAMPLES).filter((n) => n.endsWith(".yaml")).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(EXAMPLES, f), "utf8"))) {
      const o = doc.toJS() as KubeObject | null;
      if (!o || typeof o !== "object" || !String(o.apiVersion).startsWith("casgateway.io/")) continue;
      o.metadata = { ...o.metadata, namespace };
      out.push(o);
    }
  }
  return out;
}

export async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
