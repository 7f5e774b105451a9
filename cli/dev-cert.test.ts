import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { devCertificateNames, ensureDevCertificate } from "./dev-cert.js";

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe("standalone development certificate", () => {
  it("covers every site host name and localhost, key and certificate match, fingerprint is the DER's SHA-256", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cas-devcert-"));
    dirs.push(dir);
    const c = await ensureDevCertificate(dir, ["Mail.Contoso.com", "eu.contoso.com", "mail.contoso.com"]);
    expect(c.created).toBe(true);
    expect(c.names).toEqual(["eu.contoso.com", "mail.contoso.com", "localhost"]);
    const cert = new X509Certificate(await readFile(c.certFile));
    expect(cert.subjectAltName).toContain("DNS:mail.contoso.com");
    expect(cert.subjectAltName).toContain("DNS:localhost");
    expect(cert.subjectAltName).toContain("IP Address:127.0.0.1");
    expect(cert.checkHost("eu.contoso.com")).toBe("eu.contoso.com");
    expect(cert.fingerprint256).toBe(c.sha256);
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(c.keyFile)))).toBe(true);
    expect(cert.verify(createPublicKey(cert.publicKey.export({ type: "spki", format: "pem" })))).toBe(true);
    expect(cert.ca).toBe(false);
    // Reused while it fits; a new host name makes a new one.
    const again = await ensureDevCertificate(dir, ["mail.contoso.com", "eu.contoso.com"]);
    expect(again).toMatchObject({ created: false, sha256: c.sha256 });
    const more = await ensureDevCertificate(dir, ["mail.contoso.com", "eu.contoso.com", "asia.contoso.com"]);
    expect(more.created).toBe(true);
    expect(more.sha256).not.toBe(c.sha256);
  });

  it("names: localhost always, once, last", () => {
    expect(devCertificateNames([])).toEqual(["localhost"]);
    expect(devCertificateNames(["LOCALHOST", "b", "a"])).toEqual(["a", "b", "localhost"]);
  });
});
