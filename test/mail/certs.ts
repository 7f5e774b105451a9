// Test certificates made with the openssl CLI: one CA, and a server certificate for 127.0.0.1 /
// localhost signed by it. Used by the Dovecot back ends and by the proxy's own listeners.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestCerts {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export function makeTestCerts(dir: string, cn = "localhost"): TestCerts {
  mkdirSync(dir, { recursive: true });
  const p = (f: string) => join(dir, f);
  const ossl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
  ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=cas-gateway test CA", "-keyout", p("ca.key"), "-out", p("ca.crt"));
  ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`, "-keyout", p("server.key"), "-out", p("server.csr"));
  writeFileSync(p("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  ossl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", p("ext.cnf"), "-out", p("server.crt"));
  return {
    dir,
    caFile: p("ca.crt"),
    certFile: p("server.crt"),
    keyFile: p("server.key"),
    ca: readFileSync(p("ca.crt"), "utf8"),
    cert: readFileSync(p("server.crt"), "utf8"),
    key: readFileSync(p("server.key"), "utf8"),
  };
}
