// TranslateOptions with defaults filled in, checked with zod (they come from CLI flags and config).
import { z } from "zod";
import type { ListenerPorts, TranslateOptions } from "./types.js";

export const DEFAULT_PORTS: ListenerPorts = {
  https: 443,
  http: 80,
  pop3: 110,
  pop3s: 995,
  imap4: 143,
  imaps: 993,
  smtp: 25,
  submission: 587,
};

const port = z.number().int().min(1).max(65535);
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
    ])
    .optional(),
  ports: z
    .object({
      https: port,
      http: port,
      pop3: port,
      pop3s: port,
      imap4: port,
      imaps: port,
      smtp: port,
      submission: port,
    })
    .partial()
    .optional(),
  listenAddress: host.optional(),
  healthChecks: z.boolean().optional(),
  extAuthzTimeoutMs: z.number().int().min(1).max(60000).optional(),
  maxRequestBodyBytes: z.number().int().min(1).max(64 * 1024 * 1024).optional(),
  upstreamCaFile: z.string().min(1).optional(),
  extProc: z.boolean().optional(),
  smtpSite: z.string().min(1).optional(),
});

export interface ResolvedOptions extends Omit<TranslateOptions, "ports"> {
  readonly ports: ListenerPorts;
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
  return {
    ...o,
    ports: { ...DEFAULT_PORTS, ...(o.ports ?? {}) },
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
