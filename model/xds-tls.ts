// TLS for the ADS connection between the operator and its clients (Envoy's bootstrap has its own
// in operator/xds/translate/bootstrap.ts). Both ends read their PEM files through grpc-js'
// FileWatcherCertificateProvider, which reads them again every `refreshMs`: a Secret renewed in
// place (the kubelet swaps the mounted files) takes effect for new connections without a restart.
// Files are read once up front, so a wrong path fails at start with the flag's name, not later on
// every connection.
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";

export interface XdsServerTls {
  /** The ADS server's certificate chain and key (PEM files). */
  readonly certFile: string;
  readonly keyFile: string;
  /** CA bundle that signs the clients' certificates: a client without one is refused. */
  readonly clientCaFile: string;
}

export interface XdsClientTls {
  /** CA bundle that signs the ADS server's certificate. */
  readonly caFile: string;
  /** This client's certificate and key (mutual TLS). */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** Name the server's certificate must carry (default: the host of the address). */
  readonly serverName?: string;
}

const DEFAULT_REFRESH_MS = 60_000;

function mustRead(file: string, what: string): void {
  try {
    const text = readFileSync(file, "utf8");
    if (!/-----BEGIN [A-Z ]+-----/.test(text)) throw new Error("no PEM block in it");
  } catch (err) {
    throw new Error(`${what} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Server credentials, and a promise that settles once the files have been read: grpc-js reads them
 * asynchronously after the bind, and drops connections that arrive before.
 */
export function xdsServerCredentials(tls: XdsServerTls, refreshMs = DEFAULT_REFRESH_MS): { credentials: grpc.ServerCredentials; loaded: Promise<void> } {
  mustRead(tls.certFile, "--xds-tls-cert");
  mustRead(tls.keyFile, "--xds-tls-key");
  mustRead(tls.clientCaFile, "--xds-client-ca");
  // One provider for both roles: grpc-js 1.14's createCertificateProviderServerCredentials(ca,
  // identity) hands its arguments to the constructor the other way round (identity, ca), so two
  // providers would serve the CA as the server's identity and every handshake would fail.
  const files = new grpc.experimental.FileWatcherCertificateProvider({
    certificateFile: tls.certFile,
    privateKeyFile: tls.keyFile,
    caCertificateFile: tls.clientCaFile,
    refreshIntervalMs: refreshMs,
  });
  const loaded = new Promise<void>((resolve) => {
    let identity = false;
    let ca = false;
    const done = () => {
      if (!identity || !ca) return;
      files.removeIdentityCertificateListener(onIdentity);
      files.removeCaCertificateListener(onCa);
      resolve();
    };
    const onIdentity = (u: unknown) => {
      identity = u !== null;
      done();
    };
    const onCa = (u: unknown) => {
      ca = u !== null;
      done();
    };
    files.addIdentityCertificateListener(onIdentity);
    files.addCaCertificateListener(onCa);
  });
  return { credentials: grpc.experimental.createCertificateProviderServerCredentials(files, files, true), loaded };
}

/** Channel credentials and options for an ADS client (the sidecar's and mail proxy's state stream). */
export function xdsChannel(tls: XdsClientTls | undefined, refreshMs = DEFAULT_REFRESH_MS): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (!tls) return { credentials: grpc.credentials.createInsecure(), options: {} };
  mustRead(tls.caFile, "--xds-ca");
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) throw new Error("--xds-cert and --xds-key go together");
  if (tls.certFile) mustRead(tls.certFile, "--xds-cert");
  if (tls.keyFile) mustRead(tls.keyFile, "--xds-key");
  const ca = new grpc.experimental.FileWatcherCertificateProvider({ caCertificateFile: tls.caFile, refreshIntervalMs: refreshMs });
  const identity = tls.certFile
    ? new grpc.experimental.FileWatcherCertificateProvider({ certificateFile: tls.certFile, privateKeyFile: tls.keyFile, refreshIntervalMs: refreshMs })
    : null;
  const credentials = grpc.experimental.createCertificateProviderChannelCredentials(ca, identity);
  const options: grpc.ChannelOptions = tls.serverName ? { "grpc.ssl_target_name_override": tls.serverName, "grpc.default_authority": tls.serverName } : {};
  return { credentials, options };
}
