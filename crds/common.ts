// Shared pieces of the casgateway.io/v1alpha1 API: object metadata, conditions, enums.
// zod is the single source of truth; crds/generate.ts turns these schemas into CRD YAML.
import { z } from "zod";

export const API_GROUP = "casgateway.io";
export const API_VERSION_NAME = "v1alpha1";
export const API_VERSION = `${API_GROUP}/${API_VERSION_NAME}`;

/** Kubernetes object names: RFC 1123 subdomain. */
export const K8S_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const k8sName = z
  .string()
  .min(1)
  .max(253)
  .regex(K8S_NAME_RE, "must be a lowercase RFC 1123 name (a-z, 0-9, '-', '.')");

/** A DNS host name (FQDN or single label), no scheme, no port. */
export const HOSTNAME_RE = /^(?=.{1,253}$)([a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*\.?$/;
export const hostname = z.string().regex(HOSTNAME_RE, "must be a DNS host name without scheme or port");

/**
 * The URL rule below as CEL for the API server (x-kubernetes-validations on every URL field): an
 * http(s) scheme in any case, a host (a name or a bracketed IPv6 address) with no user:password@,
 * an optional port, then a path, query or fragment. A regular expression in the subset RE2 (the API
 * server) and JavaScript (crds/cel.test.ts, @bufbuild/cel) read alike.
 */
export const HTTP_URL_CEL = String.raw`self.matches(r'^[hH][tT][tT][pP][sS]?://([^/?#@:\[\]\s]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?#].*)?$')`;
export const HTTP_URL_MESSAGE = "must be an absolute http:// or https:// URL without credentials";

/** An absolute http(s) URL, as Exchange stores InternalUrl/ExternalUrl. */
export const httpUrl = z
  .string()
  .max(2048)
  .refine((s) => {
    try {
      // WHATWG URL parsing forgives "https:/host" and backslashes; the API server's rule does not.
      if (!/^https?:\/\/[^/\\]/i.test(s)) return false;
      const u = new URL(s);
      return (u.protocol === "https:" || u.protocol === "http:") && u.hostname.length > 0 && !u.username && !u.password;
    } catch {
      return false;
    }
  }, HTTP_URL_MESSAGE)
  .meta({ format: "uri", "x-kubernetes-validations": [{ rule: HTTP_URL_CEL, message: HTTP_URL_MESSAGE }] });

export const EXCHANGE_VERSIONS = ["2003", "2007", "2010", "2013", "2016", "2019"] as const;
export const ExchangeVersion = z.enum(EXCHANGE_VERSIONS);
export type ExchangeVersion = z.infer<typeof ExchangeVersion>;

export const SERVER_ROLES = ["ClientAccess", "Mailbox"] as const;
export const ServerRole = z.enum(SERVER_ROLES);
export type ServerRole = z.infer<typeof ServerRole>;

export const SERVICES = [
  "Owa",
  "Ecp",
  "ActiveSync",
  "Ews",
  "Oab",
  "Autodiscover",
  "Mapi",
  "RpcHttp",
  "PowerShell",
  "Pop3",
  "Imap4",
  "Public",
] as const;
export const Service = z.enum(SERVICES);
export type Service = z.infer<typeof Service>;
/** Services reached over TCP mail protocols rather than HTTP. */
export const MAIL_SERVICES: readonly Service[] = ["Pop3", "Imap4"];

export const AUTH_METHODS = [
  "Basic",
  "Digest",
  "Fba",
  "Ntlm",
  "Negotiate",
  "Kerberos",
  "WindowsIntegrated",
  "OAuth",
  "Certificate",
] as const;
export const AuthMethod = z.enum(AUTH_METHODS);
export type AuthMethod = z.infer<typeof AuthMethod>;

export const ConditionStatus = z.enum(["True", "False", "Unknown"]);
export const Condition = z
  .object({
    type: z.string().min(1).max(316).describe("Type of condition in CamelCase, e.g. Accepted, ResolvedRefs, Programmed."),
    status: ConditionStatus.describe("Status of the condition: True, False or Unknown."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .describe("Programmatic identifier (CamelCase) for the condition's last transition."),
    message: z.string().max(32768).describe("Human-readable message with details about the transition."),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("The .metadata.generation the condition was set from."),
    lastTransitionTime: z
      .string()
      .meta({ format: "date-time" })
      .describe("Last time the condition changed status (RFC 3339)."),
  })
  .describe("A Kubernetes-style status condition.");
export type Condition = z.infer<typeof Condition>;

export const Status = z
  .object({
    conditions: z
      .array(Condition)
      .max(16)
      .optional()
      .describe("Current state of the object: Accepted, ResolvedRefs, Programmed and warnings.")
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] }),
    observedGeneration: z.number().int().min(0).optional().describe("The generation the status was computed from."),
  })
  .describe("Status written by the cas-gateway operator.");
export type Status = z.infer<typeof Status>;

/** Metadata as it arrives in a manifest; the API server fills in more, which passes through. */
export const ObjectMeta = z.looseObject({
  name: k8sName.describe("Object name."),
  namespace: k8sName.optional().describe("Namespace; manifests without one use the provider's default namespace."),
  generation: z.number().int().optional(),
  resourceVersion: z.string().optional(),
  uid: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ObjectMeta = z.infer<typeof ObjectMeta>;

/**
 * A cross-field rule, stated once: as CEL for the API server (x-kubernetes-validations) and as a
 * TypeScript check for every other way objects enter (files, the sidecar's xDS feed).
 */
export interface CrossFieldRule<T> {
  rule: string;
  message: string;
  /** Field path (relative to spec) that the error points at. */
  field: string;
  check: (spec: T) => boolean;
  /** The message with the values in it (files, the operator); the API server shows `message`. */
  explain?: (spec: T) => string;
}

export function withCrossFieldRules<S extends z.ZodType>(schema: S, rules: CrossFieldRule<z.output<S>>[]) {
  return schema
    .superRefine((spec, ctx) => {
      for (const r of rules) {
        if (!r.check(spec)) ctx.addIssue({ code: "custom", message: r.explain?.(spec) ?? r.message, path: r.field.split(".") });
      }
    })
    .meta({ "x-kubernetes-validations": rules.map(({ rule, message }) => ({ rule, message })) });
}
