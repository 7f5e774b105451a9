// TranslateOptions with defaults filled in, checked with zod (they come from CLI flags and config).
import { z } from "zod";
import type { ListenerPorts, TranslateOptions } from "./types.js";

/**
 * Ports Envoy binds unless told otherwise: all unprivileged (>= 1024), so a non-root Envoy binds
 * them without CAP_NET_BIND_SERVICE; a Service (or a port forward) publishes the standard ones.
 */
export const DEFAULT_PORTS: ListenerPorts = {
  https: 8443,
  http: 8080,
  pop3: 8110,
  pop3s: 8995,
  imap4: 8143,
  imaps: 8993,
  smtp: 8025,
  submission: 8587,
};

/** The protocols' standard ports (what a Service publishes in front of DEFAULT_PORTS). */
export const STANDARD_PORTS: ListenerPorts = {
  https: 443,
  http: 80,
  pop3: 110,
  pop3s: 995,
  imap4: 143,
  imaps: 993,
  smtp: 25,
  submission: 587,
};

export const LISTENER_NAMES = Object.keys(DEFAULT_PORTS) as readonly (keyof ListenerPorts)[];

/** Exchange's internal-name response headers (R-SEC-2): removed from every response by default. */
export const INTERNAL_RESPONSE_HEADERS = ["x-feserver", "x-beserver", "x-calculatedbetarget", "x-diaginfo", "x-targetbeserver"] as const;

const port = z.number().int().min(1).max(65535);
const listenerPorts = z
  .object({ https: port, http: port, pop3: port, pop3s: port, imap4: port, imaps: port, smtp: port, submission: port })
  .partial()
  .strict();
const host = z.string().min(1).max(253).regex(/^[^\s/]+$/, "must be a host name or IP address");

export const TranslateOptionsSchema = z.object({
  sidecar: z.object({ address: host, port }),
  mailProxy: z.object({
    address: host,
    pop3Port: port,
    imap4Port: port,
    pop3TlsPort: port.optional(),
    imap4TlsPort: port.optional(),
    proxyProtocol: z.boolean().optional(),
  }),
  tls: z
    .union([
      z.object({ certFile: z.string().min(1), keyFile: z.string().min(1) }).strict(),
      z.object({ sdsSecret: z.string().min(1) }).strict(),
      z.object({ sdsFile: z.string().regex(/^\/[^\s]*[^/\s]$/, "must be an absolute file path") }).strict(),
    ])
    .optional(),
  ports: listenerPorts.optional(),
  publicPorts: listenerPorts.optional(),
  smtp: z.boolean().optional(),
  stripResponseHeaders: z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "must be an HTTP header name")).optional(),
  exposeDecisionHeaders: z.boolean().optional(),
  listenAddress: host.optional(),
  healthChecks: z.boolean().optional(),
  extAuthzTimeoutMs: z.number().int().min(1).max(60000).optional(),
  maxRequestBodyBytes: z.number().int().min(1).max(64 * 1024 * 1024).optional(),
  upstreamCaFile: z.string().min(1).optional(),
  extProc: z.boolean().optional(),
  smtpSite: z.string().min(1).optional(),
});

export interface ResolvedOptions extends Omit<TranslateOptions, "ports" | "publicPorts" | "stripResponseHeaders"> {
  readonly ports: ListenerPorts;
  readonly publicPorts: ListenerPorts;
  readonly smtp: boolean;
  /** Lower-case, sorted, without duplicates. */
  readonly stripResponseHeaders: readonly string[];
  readonly exposeDecisionHeaders: boolean;
  readonly listenAddress: string;
  readonly healthChecks: boolean;
  readonly extAuthzTimeoutMs: number;
  readonly maxRequestBodyBytes: number;
  readonly upstreamCaFile: string;
  readonly extProc: boolean;
}

/** Throws a zod error naming the bad option. */
export function resolveOptions(options: TranslateOptions): ResolvedOptions {
  const o = TranslateOptionsSchema.parse(options) as TranslateOptions;
  const ports = { ...DEFAULT_PORTS, ...(o.ports ?? {}) };
  // Naming the SMTP site is asking for SMTP.
  const smtp = o.smtp ?? Boolean(o.smtpSite);
  const bound = new Map<number, string>();
  for (const k of LISTENER_NAMES) {
    // Only listeners that can be built at the same time collide (SMTP ones only with smtp).
    if ((k === "smtp" || k === "submission") && !smtp) continue;
    const other = bound.get(ports[k]);
    if (other) throw new z.ZodError([{ code: "custom", path: ["ports", k], message: `port ${ports[k]} is already the ${other} listener's`, input: ports[k] }]);
    bound.set(ports[k], k);
  }
  return {
    ...o,
    ports,
    publicPorts: { ...ports, ...(o.publicPorts ?? {}) },
    smtp,
    stripResponseHeaders: [...new Set((o.stripResponseHeaders ?? INTERNAL_RESPONSE_HEADERS).map((h) => h.toLowerCase()))].sort(),
    exposeDecisionHeaders: o.exposeDecisionHeaders ?? false,
    listenAddress: o.listenAddress ?? "0.0.0.0",
    healthChecks: o.healthChecks ?? true,
    // Envoy's default of 200 ms is too tight for a directory (LDAP) look-up behind the decision.
    extAuthzTimeoutMs: o.extAuthzTimeoutMs ?? 1000,
    maxRequestBodyBytes: o.maxRequestBodyBytes ?? 65536,
    upstreamCaFile: o.upstreamCaFile ?? "/etc/ssl/certs/ca-certificates.crt",
    // Off by default: the sidecar sets the affinity cookie on ext_authz's OK response (response_headers_to_add).
    extProc: o.extProc ?? false,
  };
}
