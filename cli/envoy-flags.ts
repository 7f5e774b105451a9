// Flags that shape the Envoy configuration, taken alike by `render` (to print it) and `operator` (to
// serve it): where Envoy reaches the sidecar and the mail proxy, the front-door certificate, health
// checks. One zod shape, one set of commander options, one mapping to TranslateOptions.
import type { Command } from "commander";
import { z } from "zod";
import type { TranslateOptions } from "../operator/xds/translate/index.js";
import { HostPort } from "./flags.js";

const port = z.coerce.number().int().min(1).max(65535);

export const envoyFlagShape = {
  sidecar: HostPort.prefault("127.0.0.1:9001"),
  mailProxy: z.string().min(1).default("127.0.0.1"),
  pop3Port: port.default(1110),
  imap4Port: port.default(1143),
  mailProxyProtocol: z.boolean().optional(),
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  tlsSdsFile: z.string().regex(/^\/\S*[^/\s]$/, "must be an absolute path on Envoy's file system").optional(),
  upstreamCa: z.string().regex(/^\/\S*[^/\s]$/, "must be an absolute path on Envoy's file system").optional(),
  healthChecks: z.boolean().default(true),
};

const EnvoyFlags = z.object(envoyFlagShape);
export type EnvoyFlags = z.output<typeof EnvoyFlags>;

/** The cross-field rule of the shape above (add with .refine on the command's object). */
export const tlsPair = [
  (f: { tlsCert?: string; tlsKey?: string; tlsSdsFile?: string }) => (!(f.tlsCert || f.tlsKey) || Boolean(f.tlsCert && f.tlsKey)) && !(f.tlsSdsFile && f.tlsCert),
  { message: "--tls-cert and --tls-key go together; --tls-sds-file is their alternative" },
] as const;

export function addEnvoyFlags(cmd: Command): Command {
  return cmd
    .option("--sidecar <host:port>", "the sidecar's ext_authz gRPC address, as Envoy reaches it", "127.0.0.1:9001")
    .option("--mail-proxy <host>", "the POP3/IMAP4 proxy host, as Envoy reaches it", "127.0.0.1")
    .option("--pop3-port <port>", "mail proxy POP3 port", "1110")
    .option("--imap4-port <port>", "mail proxy IMAP4 port", "1143")
    .option("--mail-proxy-protocol", "Envoy sends PROXY protocol v2 to the mail proxy (its --proxy-protocol listeners)")
    .option("--tls-cert <file>", "front-door certificate chain (PEM file on Envoy's file system)")
    .option("--tls-key <file>", "front-door private key (PEM file on Envoy's file system)")
    .option("--tls-sds-file <file>", "front-door certificate over file-based SDS: the SDS file on Envoy's file system (naming the mounted Secret's files); a renewed Secret needs no restart")
    .option("--upstream-ca <file>", "CA bundle (PEM, on Envoy's file system) that validates the Exchange servers' certificates (default: the system bundle)")
    .option("--no-health-checks", "no active health checks on the virtual directories");
}

/** The TranslateOptions these flags give (commands add their own on top). */
export function envoyTranslateOptions(f: EnvoyFlags): TranslateOptions {
  return {
    sidecar: { address: f.sidecar.host, port: f.sidecar.port },
    mailProxy: { address: f.mailProxy, pop3Port: f.pop3Port, imap4Port: f.imap4Port, ...(f.mailProxyProtocol ? { proxyProtocol: true } : {}) },
    ...(f.tlsCert && f.tlsKey ? { tls: { certFile: f.tlsCert, keyFile: f.tlsKey } } : {}),
    ...(f.tlsSdsFile ? { tls: { sdsFile: f.tlsSdsFile } } : {}),
    ...(f.upstreamCa ? { upstreamCaFile: f.upstreamCa } : {}),
    healthChecks: f.healthChecks,
  };
}
