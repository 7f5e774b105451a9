import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { loadManifestDir, parseManifestText } from "../operator/provider/manifests.js";
import { CRD_DIR, CrdGenerationError, crd, generateCrds, isRe2Compatible, kindSchema, toStructural, type JsonSchema } from "./generate.js";
import { KINDS, KIND_PLURALS, type Kind } from "./index.js";

type Visit = (schema: JsonSchema, path: string) => void;
function walk(schema: JsonSchema, path: string, visit: Visit): void {
  visit(schema, path);
  for (const [k, v] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>)) walk(v, `${path}.${k}`, visit);
  if (schema.items) walk(schema.items as JsonSchema, `${path}[]`, visit);
  if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
    walk(schema.additionalProperties as JsonSchema, `${path}.*`, visit);
  }
}

/** Minimal OpenAPI v3 validator (the structural subset we generate; CEL rules excluded). */
function conforms(value: unknown, s: JsonSchema, path: string, out: string[]): void {
  if (value === null) {
    if (!s.nullable) out.push(`${path}: null not allowed`);
    return;
  }
  const t = s.type;
  const actual = Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value;
  if (t && !(t === actual || (t === "number" && actual === "integer"))) out.push(`${path}: ${actual} is not ${String(t)}`);
  if (s.enum && !(s.enum as unknown[]).includes(value)) out.push(`${path}: ${String(value)} not in enum`);
  if (typeof value === "string") {
    if (s.pattern && !new RegExp(s.pattern as string).test(value)) out.push(`${path}: does not match pattern`);
    if (s.maxLength !== undefined && value.length > (s.maxLength as number)) out.push(`${path}: too long`);
    if (s.minLength !== undefined && value.length < (s.minLength as number)) out.push(`${path}: too short`);
  }
  if (Array.isArray(value)) {
    if (s.maxItems !== undefined && value.length > (s.maxItems as number)) out.push(`${path}: too many items`);
    value.forEach((v, i) => conforms(v, s.items as JsonSchema, `${path}[${i}]`, out));
  }
  if (actual === "object" && s.properties) {
    const o = value as Record<string, unknown>;
    for (const r of (s.required ?? []) as string[]) if (!(r in o)) out.push(`${path}.${r}: required`);
    for (const [k, v] of Object.entries(o)) {
      const p = (s.properties as Record<string, JsonSchema>)[k];
      if (p) conforms(v, p, `${path}.${k}`, out);
      else out.push(`${path}.${k}: unknown field (would be pruned)`);
    }
  }
}

describe("CRD generation", () => {
  it("the committed crds/*.yaml are up to date (run `npm run gen:crds`)", () => {
    const generated = generateCrds();
    expect([...generated.keys()].sort()).toEqual(KINDS.map((k) => `casgateway.io_${KIND_PLURALS[k]}.yaml`).sort());
    for (const [file, text] of generated) {
      const committed = readFileSync(join(CRD_DIR, file), "utf8");
      expect(committed, `${file} is stale: run npm run gen:crds`).toBe(text);
    }
  });

  it("is deterministic", () => {
    expect([...generateCrds()]).toEqual([...generateCrds()]);
  });

  it.each(KINDS.map((k) => [k]))("%s: structural schema, every field has a type and a description", (kind) => {
    const schema = kindSchema(kind as Kind);
    const bad: string[] = [];
    walk(schema, kind, (s, path) => {
      if (typeof s.description !== "string" || s.description.length < 3) bad.push(`${path}: no description`);
      if (s.type === undefined && !s["x-kubernetes-preserve-unknown-fields"]) bad.push(`${path}: no type`);
      for (const k of ["anyOf", "oneOf", "allOf", "$ref", "const", "$schema", "propertyNames"]) {
        if (k in s) bad.push(`${path}: has ${k}`);
      }
      if (s.additionalProperties === false) bad.push(`${path}: additionalProperties false`);
      if (typeof s.pattern === "string" && !isRe2Compatible(s.pattern)) bad.push(`${path}: pattern not RE2`);
      if (s["x-kubernetes-list-type"] === "map") {
        const keys = s["x-kubernetes-list-map-keys"] as string[];
        const required = ((s.items as JsonSchema).required ?? []) as string[];
        for (const k of keys) if (!required.includes(k)) bad.push(`${path}: map key ${k} is not required`);
      }
      if (s["x-kubernetes-list-type"] === "set" && (s.items as JsonSchema).type === "object") bad.push(`${path}: set of objects`);
    });
    expect(bad).toEqual([]);
    expect((schema.properties as Record<string, JsonSchema>).metadata).toEqual({ description: "Standard object metadata.", type: "object" });
  });

  it("maps zod features to OpenAPI: nullable, defaults, enums, formats, limits, list types, CEL rules", () => {
    const vd = (kindSchema("VirtualDirectory").properties as Record<string, JsonSchema>).spec;
    const p = vd.properties as Record<string, JsonSchema>;
    expect(p.externalUrl).toMatchObject({ type: "string", nullable: true, format: "uri", maxLength: 2048 });
    expect(p.internalAuthenticationMethods).toMatchObject({ type: "array", default: [], maxItems: 9, "x-kubernetes-list-type": "set" });
    expect((p.service.enum as string[]).length).toBe(12);
    expect((p.internalConnectionSettings.items as JsonSchema).properties).toMatchObject({
      encryption: { default: "None", enum: ["None", "Ssl", "Tls"] },
      port: { type: "integer", minimum: 1, maximum: 65535 },
    });
    expect((vd["x-kubernetes-validations"] as { rule: string }[]).map((r) => r.rule)).toContain(
      "self.service in ['Pop3', 'Imap4'] || has(self.internalUrl)",
    );
    expect(vd.required).toEqual(["server", "service"]);

    const cas = (kindSchema("ClientAccessServer").properties as Record<string, JsonSchema>).spec;
    expect((cas.properties as Record<string, JsonSchema>).tls).toMatchObject({ default: { insecureSkipVerify: false } });
    // Hostname's look-ahead length check becomes minLength/maxLength (Go RE2 has no look-ahead).
    expect((cas.properties as Record<string, JsonSchema>).fqdn).toMatchObject({ minLength: 1, maxLength: 253 });
    const db = (kindSchema("MailboxDatabase").properties as Record<string, JsonSchema>).spec;
    expect(db["x-kubernetes-validations"]).toContainEqual({ rule: "self.activeServer in self.servers", message: "activeServer must be one of servers" });

    const status = (kindSchema("ADSite").properties as Record<string, JsonSchema>).status;
    const conditions = (status.properties as Record<string, JsonSchema>).conditions;
    expect(conditions).toMatchObject({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] });
    expect(((conditions.items as JsonSchema).properties as Record<string, JsonSchema>).lastTransitionTime).toMatchObject({
      format: "date-time",
    });
  });

  it("names, scope, categories, status subresource and printer columns", () => {
    const names = Object.fromEntries(KINDS.map((k) => [k, crd(k)]));
    const short = KINDS.map((k) => ((names[k].spec as JsonSchema).names as { shortNames: string[] }).shortNames);
    expect(short).toEqual([["ads"], ["cas"], ["vdir"], ["mbdb"], ["orgrel"]]);
    for (const k of KINDS) {
      const spec = names[k].spec as { scope: string; names: { categories: string[] }; versions: JsonSchema[] };
      expect(spec.scope).toBe("Namespaced");
      expect(spec.names.categories).toEqual(["casgateway"]);
      expect(spec.versions[0].subresources).toEqual({ status: {} });
    }
    const cols = (k: Kind) => ((names[k].spec as { versions: { additionalPrinterColumns: { name: string; jsonPath: string }[] }[] }).versions[0].additionalPrinterColumns);
    expect(cols("ClientAccessServer").map((c) => c.name)).toEqual(["Site", "Version", "Roles", "FQDN", "Accepted", "Programmed", "Age"]);
    expect(cols("VirtualDirectory").map((c) => c.name)).toEqual(expect.arrayContaining(["Server", "Service", "ExternalUrl"]));
    expect(cols("MailboxDatabase").map((c) => c.name)).toContain("ActiveServer");
    expect(cols("ADSite").map((c) => c.name)).toEqual(expect.arrayContaining(["Hostnames", "InternetFacing", "Accepted"]));
    expect(cols("ADSite").find((c) => c.name === "Accepted")?.jsonPath).toBe('.status.conditions[?(@.type=="Accepted")].status');
  });

  it("every example manifest conforms to its generated OpenAPI schema", async () => {
    const set = await loadManifestDir(join(CRD_DIR, "..", "examples", "contoso"));
    expect(set.errors).toEqual([]);
    const schemas = new Map(KINDS.map((k) => [k, kindSchema(k)]));
    for (const file of set.files) {
      for (const raw of (await import("yaml")).parseAllDocuments(readFileSync(file, "utf8"))) {
        const obj = raw.toJS() as { kind: Kind; metadata: { name: string } } | null;
        if (!obj) continue;
        const out: string[] = [];
        conforms(obj, schemas.get(obj.kind)!, `${obj.kind}/${obj.metadata.name}`, out);
        expect(out).toEqual([]);
      }
    }
  });

  it("the committed YAML parses to the generated object", () => {
    for (const k of KINDS) {
      const text = readFileSync(join(CRD_DIR, `casgateway.io_${KIND_PLURALS[k]}.yaml`), "utf8");
      expect(parse(text)).toEqual(JSON.parse(JSON.stringify(crd(k))));
    }
  });

  it("every YAML example in docs/api.md is a valid object of its kind", () => {
    const doc = readFileSync(join(CRD_DIR, "..", "docs", "api.md"), "utf8");
    const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    const kinds = new Set<string>();
    for (const b of blocks) {
      const set = parseManifestText(b, "docs/api.md");
      expect(set.errors).toEqual([]);
      for (const o of set.objects) kinds.add(o.object.kind);
    }
    expect([...kinds].sort()).toEqual([...KINDS].sort());
  });

  it("refuses what a structural schema cannot express", () => {
    expect(() => toStructural({ anyOf: [{ type: "string" }, { type: "integer" }] })).toThrow(CrdGenerationError);
    expect(() => toStructural({ type: "string", pattern: "^(?!x)" })).toThrow(/RE2/);
    expect(() => toStructural({ description: "x" })).toThrow(/no type/);
    expect(toStructural({ anyOf: [{ type: "string" }, { type: "null" }], description: "d" })).toEqual({
      description: "d",
      type: "string",
      nullable: true,
    });
  });
});
