// Test PKI for ADS over mutual TLS, made with the openssl CLI: a CA, the operator's server
// certificate (127.0.0.1, localhost and the in-cluster Service name), a gateway client certificate,
// and a client certificate from a different CA (must be refused).
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface XdsPki {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly rogueCert: string;
  readonly rogueKey: string;
  /** Issue another server certificate from the same CA (rotation); returns its cert and key paths. */
  reissueServer(name: string): { cert: string; key: string };
}

export const SERVICE_NAME = "cas-gateway-operator.cas-system.svc";

export function makeXdsPki(dir: string): XdsPki {
  mkdirSync(dir, { recursive: true });
  const p = (f: string) => join(dir, f);
  const ossl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
  const ca = (name: string) =>
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", p(`${name}.key`), "-out", p(`${name}.crt`));
  const leaf = (name: string, caName: string, ext: string) => {
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${name}`, "-keyout", p(`${name}.key`), "-out", p(`${name}.csr`));
    writeFileSync(p(`${name}.ext`), ext);
    ossl("x509", "-req", "-in", p(`${name}.csr`), "-CA", p(`${caName}.crt`), "-CAkey", p(`${caName}.key`), "-CAcreateserial", "-days", "2", "-extfile", p(`${name}.ext`), "-out", p(`${name}.crt`));
    return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
  };
  ca("xds-ca");
  ca("rogue-ca");
  const serverExt = `subjectAltName=DNS:localhost,DNS:${SERVICE_NAME},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n`;
  const server = leaf("operator", "xds-ca", serverExt);
  const client = leaf("gateway", "xds-ca", "extendedKeyUsage=clientAuth\n");
  const rogue = leaf("intruder", "rogue-ca", "extendedKeyUsage=clientAuth\n");
  return {
    dir,
    caFile: p("xds-ca.crt"),
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    rogueCert: rogue.cert,
    rogueKey: rogue.key,
    reissueServer: (name: string) => leaf(name, "xds-ca", serverExt),
  };
}
