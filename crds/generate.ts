// `npm run gen:crds`: the zod schemas (the single source of truth) → CustomResourceDefinition YAML,
// one file per kind: crds/casgateway.io_<plural>.yaml. z.toJSONSchema gives JSON Schema 2020-12;
// toStructural() turns that into the structural OpenAPI v3 subset the API server accepts
// (no anyOf/const/propertyNames, nullable instead of a null type, RE2-compatible patterns).
// Output is deterministic: running it twice gives the same bytes; crds/crds.test.ts fails when the
// committed files are stale.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { stringify } from "yaml";
import { z } from "zod";
import { API_GROUP, API_VERSION_NAME, KINDS, KIND_PLURALS, KIND_SCHEMAS, type Kind } from "./index.js";

export type JsonSchema = { [key: string]: unknown };

/** Keywords of apiextensions.k8s.io/v1 JSONSchemaProps that the generated schemas may use. */
const ALLOWED = new Set([
  "description",
  "type",
  "format",
  "enum",
  "default",
  "nullable",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "uniqueItems",
  "items",
  "properties",
  "required",
  "additionalProperties",
  "minProperties",
  "maxProperties",
  "x-kubernetes-validations",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-int-or-string",
  "x-kubernetes-embedded-resource",
]);
/** Canonical key order for readable, stable YAML. */
const ORDER = [...ALLOWED];

/** Patterns are compiled by the API server with Go's RE2: no look-around, no back-references. */
export function isRe2Compatible(pattern: string): boolean {
  return !/\(\?[=!<]|\\[1-9]/.test(pattern);
}

export class CrdGenerationError extends Error {}

/** JSON Schema (zod output) → structural OpenAPI v3 schema. Throws on anything it cannot express. */
export function toStructural(input: JsonSchema, path = "$"): JsonSchema {
  let s: JsonSchema = { ...input };
  delete s.$schema;
  delete s.id;

  // T | null  →  T with nullable: true (the only union the API allows here).
  if (Array.isArray(s.anyOf)) {
    const branches = s.anyOf as JsonSchema[];
    const nonNull = branches.filter((b) => b.type !== "null");
    if (nonNull.length !== 1 || branches.length !== 2) {
      throw new CrdGenerationError(`${path}: anyOf/union cannot be expressed in a structural schema`);
    }
    const { anyOf: _drop, ...outer } = s;
    s = { ...nonNull[0], ...outer, nullable: true };
  }
  if (s.oneOf || s.allOf || s.not || s.$ref) throw new CrdGenerationError(`${path}: oneOf/allOf/not/$ref are not structural`);

  if ("const" in s) {
    s.enum = [s.const];
    delete s.const;
  }
  delete s.propertyNames; // string keys are implied for objects
  if (s.additionalProperties === false || (s.additionalProperties !== undefined && s.properties !== undefined)) {
    delete s.additionalProperties; // unknown fields are pruned; "false" is not allowed
  } else if (
    s.additionalProperties !== undefined &&
    (s.additionalProperties === true || Object.keys(s.additionalProperties as object).length === 0)
  ) {
    delete s.additionalProperties;
    s["x-kubernetes-preserve-unknown-fields"] = true;
  }

  if (s.type === "integer") {
    if (s.minimum === -Number.MAX_SAFE_INTEGER) delete s.minimum;
    if (s.maximum === Number.MAX_SAFE_INTEGER) delete s.maximum;
    s.format ??= "int64";
  }
  if (typeof s.pattern === "string") {
    // zod's hostname-style length look-ahead: ^(?=.{1,N}$)… → minLength/maxLength.
    const m = /^\^\(\?=\.\{(\d+),(\d+)\}\$\)/.exec(s.pattern);
    if (m) {
      s.pattern = `^${s.pattern.slice(m[0].length)}`;
      s.minLength = Math.max(Number(s.minLength ?? 0), Number(m[1]));
      s.maxLength = Math.min(Number(s.maxLength ?? Infinity), Number(m[2]));
    }
    if (!isRe2Compatible(String(s.pattern))) throw new CrdGenerationError(`${path}: pattern ${s.pattern} is not RE2-compatible`);
  }

  if (s.properties) {
    const props = s.properties as Record<string, JsonSchema>;
    s.properties = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, toStructural(v, `${path}.${k}`)]));
  }
  if (s.items) {
    if (Array.isArray(s.items)) throw new CrdGenerationError(`${path}: tuple items are not structural`);
    s.items = toStructural(s.items as JsonSchema, `${path}[]`);
  }
  if (s.additionalProperties && typeof s.additionalProperties === "object") {
    s.additionalProperties = toStructural(s.additionalProperties as JsonSchema, `${path}.*`);
  }
  if (s.type === undefined && !s["x-kubernetes-preserve-unknown-fields"]) {
    throw new CrdGenerationError(`${path}: no type`);
  }
  for (const k of Object.keys(s)) {
    if (!ALLOWED.has(k)) throw new CrdGenerationError(`${path}: keyword "${k}" is not allowed in a CRD schema`);
  }
  return Object.fromEntries(Object.entries(s).sort(([a], [b]) => ORDER.indexOf(a) - ORDER.indexOf(b)));
}

interface KindInfo {
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly columns: readonly PrinterColumn[];
}
interface PrinterColumn {
  readonly name: string;
  readonly type: "string" | "boolean" | "integer" | "date";
  readonly jsonPath: string;
  readonly description: string;
  readonly priority?: number;
}

const condition = (type: string): PrinterColumn => ({
  name: type,
  type: "string",
  jsonPath: `.status.conditions[?(@.type=="${type}")].status`,
  description: `Status of the ${type} condition.`,
});
const AGE: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp", description: "Time since creation." };

export const KIND_INFO: Record<Kind, KindInfo> = {
  ADSite: {
    singular: "adsite",
    shortNames: ["ads"],
    columns: [
      { name: "Hostnames", type: "string", jsonPath: ".spec.hostnames", description: "Front-door host names." },
      { name: "InternetFacing", type: "boolean", jsonPath: ".spec.internetFacing", description: "Explicitly internet facing (empty: derived from ExternalUrls)." },
      condition("Accepted"),
      AGE,
    ],
  },
  ClientAccessServer: {
    singular: "clientaccessserver",
    shortNames: ["cas"],
    columns: [
      { name: "Site", type: "string", jsonPath: ".spec.site", description: "ADSite of the server." },
      { name: "Version", type: "string", jsonPath: ".spec.exchangeVersion", description: "Exchange version." },
      { name: "Roles", type: "string", jsonPath: ".spec.roles", description: "Installed roles." },
      { name: "FQDN", type: "string", jsonPath: ".spec.fqdn", description: "Fully qualified domain name.", priority: 1 },
      condition("Accepted"),
      condition("Programmed"),
      AGE,
    ],
  },
  VirtualDirectory: {
    singular: "virtualdirectory",
    shortNames: ["vdir"],
    columns: [
      { name: "Server", type: "string", jsonPath: ".spec.server", description: "Hosting server." },
      { name: "Service", type: "string", jsonPath: ".spec.service", description: "Exchange service." },
      { name: "ExternalUrl", type: "string", jsonPath: ".spec.externalUrl", description: "Public URL (empty: not internet facing)." },
      { name: "InternalUrl", type: "string", jsonPath: ".spec.internalUrl", description: "Internal URL.", priority: 1 },
      condition("Accepted"),
      AGE,
    ],
  },
  MailboxDatabase: {
    singular: "mailboxdatabase",
    shortNames: ["mbdb"],
    columns: [
      { name: "ActiveServer", type: "string", jsonPath: ".spec.activeServer", description: "Server with the active copy." },
      { name: "DatabaseName", type: "string", jsonPath: ".spec.databaseName", description: "Exchange database name.", priority: 1 },
      condition("Accepted"),
      AGE,
    ],
  },
  OrganizationRelationship: {
    singular: "organizationrelationship",
    shortNames: ["orgrel"],
    columns: [
      { name: "Domains", type: "string", jsonPath: ".spec.domainNames", description: "Exchange Online organisation domains." },
      { name: "OwaUrl", type: "string", jsonPath: ".spec.targetOwaUrl", description: "Cloud OWA URL." },
      { name: "Enabled", type: "boolean", jsonPath: ".spec.enabled", description: "In force.", priority: 1 },
      condition("Accepted"),
      AGE,
    ],
  },
};

/** The openAPIV3Schema of one kind. */
export function kindSchema(kind: Kind): JsonSchema {
  const json = z.toJSONSchema(KIND_SCHEMAS[kind], { io: "input", unrepresentable: "throw" }) as JsonSchema;
  const props = json.properties as Record<string, JsonSchema>;
  const spec = toStructural(props.spec, `${kind}.spec`);
  const status = toStructural(props.status, `${kind}.status`);
  return {
    description: `${kind}: ${String(spec.description ?? "")}`.trim(),
    type: "object",
    properties: {
      apiVersion: {
        description:
          "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.",
        type: "string",
      },
      kind: {
        description:
          "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. In CamelCase.",
        type: "string",
      },
      metadata: { description: "Standard object metadata.", type: "object" },
      spec,
      status,
    },
    required: ["spec"],
  };
}

export function crd(kind: Kind): JsonSchema {
  const plural = KIND_PLURALS[kind];
  const info = KIND_INFO[kind];
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${plural}.${API_GROUP}`,
      labels: { "app.kubernetes.io/name": "cas-gateway", "app.kubernetes.io/part-of": "cas-gateway" },
    },
    spec: {
      group: API_GROUP,
      names: {
        kind,
        listKind: `${kind}List`,
        plural,
        singular: info.singular,
        shortNames: [...info.shortNames],
        categories: ["casgateway"],
      },
      scope: "Namespaced",
      versions: [
        {
          name: API_VERSION_NAME,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: info.columns.map((c) => ({ ...c })),
          schema: { openAPIV3Schema: kindSchema(kind) },
        },
      ],
    },
  };
}

export const HEADER =
  "# Generated by `npm run gen:crds` (crds/generate.ts) from the zod schemas in crds/*.ts. Do not edit by hand.\n";

/** File name → YAML text, for every kind. */
export function generateCrds(): Map<string, string> {
  const out = new Map<string, string>();
  for (const kind of KINDS) {
    const text = stringify(crd(kind), { lineWidth: 0, aliasDuplicateObjects: false, sortMapEntries: false });
    out.set(`${API_GROUP}_${KIND_PLURALS[kind]}.yaml`, HEADER + text);
  }
  return out;
}

export const CRD_DIR = dirname(fileURLToPath(import.meta.url));

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [file, text] of generateCrds()) {
    writeFileSync(join(CRD_DIR, file), text);
    process.stdout.write(`wrote crds/${file}\n`);
  }
}
