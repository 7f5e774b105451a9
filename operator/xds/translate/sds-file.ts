// The file a file-based SDS subscription reads (ListenerTls { sdsFile }): one Secret resource, the
// front-door certificate, naming the PEM files of the mounted Kubernetes Secret. Kubernetes renews a
// Secret volume by writing a new timestamped directory and renaming the `..data` symlink onto it;
// the files Envoy was given (tls.crt -> ..data/tls.crt) do not change, only a move happens in the
// mount directory. TlsCertificate.watched_directory names that directory, so Envoy re-reads the pair
// on that move (and checks they were read consistently). The chart ships this file in the bootstrap
// ConfigMap; standalone and render can write it next to the bootstrap.
import { stringify } from "yaml";
import { sharedCodec } from "./translate.js";

/** The SDS secret's name in listeners' tls_certificate_sds_secret_configs and in the file. */
export const FRONT_DOOR_SDS_SECRET = "cas-gateway/front-door";

export interface FrontDoorSdsFile {
  /** proto3 JSON of the DiscoveryResponse-shaped file. */
  readonly value: Record<string, unknown>;
  readonly yaml: string;
}

const dir = (f: string) => f.slice(0, f.lastIndexOf("/")) || "/";

function checked(value: Record<string, unknown>, what: string): FrontDoorSdsFile {
  const { violations } = sharedCodec().encode("envoy.service.discovery.v3.DiscoveryResponse", value);
  if (violations.length) throw new Error(`${what} fails Envoy's validation: ${violations.map((v) => `${v.path}: ${v.message}`).join("; ")}`);
  return { value, yaml: stringify(value) };
}

/** SDS secret names of Envoy's own xDS client certificate and of the CA that signs the operator's. */
export const XDS_CLIENT_SDS_SECRET = "cas-gateway/xds-client";
export const XDS_CA_SDS_SECRET = "cas-gateway/xds-ca";

/**
 * Envoy's side of ADS over mutual TLS, as file-based SDS too (Envoy's documented way to rotate the
 * certificates of the xDS connection itself, which an SDS server cannot serve): one file with the
 * client certificate, one with the CA (an SDS file holds exactly one secret). Both watch the mounted
 * xDS client Secret's directory.
 */
export function xdsClientSdsFiles(certFile: string, keyFile: string, caFile: string): { client: FrontDoorSdsFile; ca: FrontDoorSdsFile } {
  if (![certFile, keyFile, caFile].every((f) => f.startsWith("/"))) throw new Error("xDS client SDS files: paths must be absolute");
  if (dir(certFile) !== dir(keyFile) || dir(caFile) !== dir(certFile)) throw new Error("xDS client SDS files: certificate, key and CA must be in one directory (one Secret volume)");
  const watched = { path: dir(certFile) };
  const type = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
  return {
    client: checked(
      { resources: [{ "@type": type, name: XDS_CLIENT_SDS_SECRET, tls_certificate: { certificate_chain: { filename: certFile }, private_key: { filename: keyFile }, watched_directory: watched } }] },
      "xDS client SDS file",
    ),
    ca: checked({ resources: [{ "@type": type, name: XDS_CA_SDS_SECRET, validation_context: { trusted_ca: { filename: caFile }, watched_directory: watched } }] }, "xDS CA SDS file"),
  };
}

export function frontDoorSdsFile(certFile: string, keyFile: string): FrontDoorSdsFile {
  if (!certFile.startsWith("/") || !keyFile.startsWith("/")) throw new Error("front-door SDS file: certificate and key paths must be absolute");
  if (dir(certFile) !== dir(keyFile)) throw new Error("front-door SDS file: certificate and key must be in one directory (one Secret volume)");
  const secret = {
    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
    name: FRONT_DOOR_SDS_SECRET,
    tls_certificate: {
      certificate_chain: { filename: certFile },
      private_key: { filename: keyFile },
      watched_directory: { path: dir(certFile) },
    },
  };
  return checked({ resources: [secret] }, "front-door SDS file");
}
