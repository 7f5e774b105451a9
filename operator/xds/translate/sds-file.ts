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

export function frontDoorSdsFile(certFile: string, keyFile: string): FrontDoorSdsFile {
  const dir = (f: string) => f.slice(0, f.lastIndexOf("/")) || "/";
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
  const value = { resources: [secret] };
  const { violations } = sharedCodec().encode("envoy.service.discovery.v3.DiscoveryResponse", value);
  if (violations.length) throw new Error(`front-door SDS file fails Envoy's validation: ${violations.map((v) => `${v.path}: ${v.message}`).join("; ")}`);
  return { value, yaml: stringify(value) };
}
