// The standalone development certificate: when `standalone` is given no front-door certificate
// (--tls-cert/--tls-key), it makes a self-signed one for every site host name in the manifests
// plus localhost, so `npm start` + `envoy -c <bootstrap>` answers https://localhost:8443/owa.
// Built with @peculiar/x509 (WebCrypto), never hand-made DER. An existing one beside the bootstrap
// is kept while it is valid for at least a day more and names every host asked for, so a restart
// does not change the fingerprint a browser was told to accept.
import { X509Certificate as NodeX509, createHash, webcrypto } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
// @peculiar/x509 resolves its services with tsyringe, which needs the Reflect metadata API.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

export interface DevCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  /** SHA-256 of the certificate's DER, colon-separated hex (what browsers and openssl show). */
  readonly sha256: string;
  readonly names: readonly string[];
  readonly notAfter: Date;
  /** False when an existing, still-fitting certificate was reused. */
  readonly created: boolean;
}

const DAY_MS = 86_400_000;
/** Short-lived on purpose: this is for a developer's machine, never a deployment. */
const VALID_DAYS = 90;

export const fingerprint = (der: Uint8Array): string =>
  createHash("sha256").update(der).digest("hex").toUpperCase().match(/../g)!.join(":");

/** Names the certificate must carry: the site host names (lower-case, sorted, unique), then localhost. */
export function devCertificateNames(hostnames: Iterable<string>): string[] {
  const hosts = [...new Set([...hostnames].map((h) => h.toLowerCase()).filter((h) => h !== "localhost"))].sort();
  return [...hosts, "localhost"];
}

async function reusable(certFile: string, keyFile: string, names: readonly string[]): Promise<DevCertificate | undefined> {
  try {
    const [pem] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
    const cert = new NodeX509(pem);
    const notAfter = new Date(cert.validTo);
    if (notAfter.getTime() - Date.now() < DAY_MS) return undefined;
    const san = cert.subjectAltName ?? "";
    if (!names.every((n) => san.split(", ").includes(`DNS:${n}`))) return undefined;
    return { certFile, keyFile, sha256: cert.fingerprint256, names, notAfter, created: false };
  } catch {
    return undefined;
  }
}

/** Write (or reuse) `front-door-dev.crt` / `front-door-dev.key` in `dir`. */
export async function ensureDevCertificate(dir: string, hostnames: Iterable<string>): Promise<DevCertificate> {
  const names = devCertificateNames(hostnames);
  const certFile = join(dir, "front-door-dev.crt");
  const keyFile = join(dir, "front-door-dev.key");
  const existing = await reusable(certFile, keyFile, names);
  if (existing) return existing;

  const crypto = webcrypto as unknown as Crypto;
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await crypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
  const notBefore = new Date(Date.now() - 5 * 60_000); // a little clock skew
  const notAfter = new Date(notBefore.getTime() + VALID_DAYS * DAY_MS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("hex").replace(/^[89a-f]/, "1"),
      name: `CN=cas-gateway development certificate (${names[0]}), O=cas-gateway standalone`,
      notBefore,
      notAfter,
      signingAlgorithm: alg,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          ...names.map((n) => ({ type: "dns" as const, value: n })),
          { type: "ip" as const, value: "127.0.0.1" },
          { type: "ip" as const, value: "::1" },
        ]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  await mkdir(dir, { recursive: true });
  // The key first, owner-only; then the certificate that goes with it.
  await writeFile(keyFile, x509.PemConverter.encode(pkcs8, "PRIVATE KEY"), { mode: 0o600 });
  await writeFile(certFile, cert.toString("pem") + "\n");
  return { certFile, keyFile, sha256: fingerprint(new Uint8Array(cert.rawData)), names, notAfter, created: true };
}
