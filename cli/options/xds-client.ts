// TLS to the operator's ADS server, for the components that take their state from it (--xds):
// the sidecar and the mail proxy. The chart mounts the gateway's client certificate Secret.
import { defineOptions, opt } from "./define.js";
import type { XdsClientTls } from "../../model/xds-tls.js";

export const xdsClientOptions = defineOptions("control-plane TLS", {
  xdsCa: {
    flags: "--xds-ca <file>",
    help: "CA bundle (PEM) that signs the operator's ADS server certificate: turns on TLS to --xds",
    schema: opt.file.optional(),
  },
  xdsCert: { flags: "--xds-cert <file>", help: "client certificate (PEM) presented to the ADS server (mutual TLS; with --xds-key)", schema: opt.file.optional() },
  xdsKey: { flags: "--xds-key <file>", help: "private key (PEM) of --xds-cert", schema: opt.file.optional() },
  xdsServerName: {
    flags: "--xds-server-name <name>",
    help: "name the ADS server's certificate must carry (default: the host of --xds)",
    schema: opt.text.optional(),
  },
});

export interface XdsClientFlagValues {
  readonly xdsCa?: string | undefined;
  readonly xdsCert?: string | undefined;
  readonly xdsKey?: string | undefined;
  readonly xdsServerName?: string | undefined;
}

/** zod refine arguments: the TLS flags need --xds-ca, and the certificate and key go together. */
export const xdsClientTlsRule = [
  (f: XdsClientFlagValues) => (f.xdsCert === undefined) === (f.xdsKey === undefined) && (f.xdsCa !== undefined || (f.xdsCert === undefined && f.xdsServerName === undefined)),
  { message: "--xds-cert and --xds-key go together, and need --xds-ca", path: ["xdsCa"] as PropertyKey[] },
] as const;

export function xdsClientTls(f: XdsClientFlagValues): XdsClientTls | undefined {
  if (!f.xdsCa) return undefined;
  return {
    caFile: f.xdsCa,
    ...(f.xdsCert ? { certFile: f.xdsCert } : {}),
    ...(f.xdsKey ? { keyFile: f.xdsKey } : {}),
    ...(f.xdsServerName ? { serverName: f.xdsServerName } : {}),
  };
}
