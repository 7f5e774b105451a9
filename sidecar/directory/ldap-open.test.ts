// openDirectory: choosing the implementation by spec, validating options and flags.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CachedDirectory } from "./cached-directory.js";
import { CsvDirectory } from "../../model/directory/csv-directory.js";
import { DirectoryConfigError, openDirectory } from "./open-directory.js";

const CSV = new URL("../../examples/contoso/mailboxes.csv", import.meta.url).pathname;

describe("openDirectory", () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "cas-open-dir-"));
    await writeFile(join(tmp, "pw"), "secret\n");
    await writeFile(join(tmp, "not-a-ca.pem"), "hello");
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("a .csv path opens the CSV directory", async () => {
    const d = await openDirectory(CSV);
    expect(d).toBeInstanceOf(CsvDirectory);
    expect(await d.lookup("alice")).toMatchObject({ status: "found", mailbox: { database: "DB-USA-2010" } });
    expect(await openDirectory(`file://${CSV}`)).toBeInstanceOf(CsvDirectory);
  });

  it("an ldap:// URL opens a cached LDAP directory (no connection until the first look-up)", async () => {
    const d = await openDirectory("ldap://127.0.0.1:1/DC=contoso,DC=com", { registry: new Registry(), timeoutMs: 500 });
    expect(d).toBeInstanceOf(CachedDirectory);
    // Port 1 on loopback refuses: a clear `unavailable`, not a throw.
    expect((await d.lookup("alice")).status).toBe("unavailable");
    await d.close?.();
  });

  it.each([
    ["ldap://127.0.0.1:389", {}, /--ldap-base-dn is required/],
    ["ldap://127.0.0.1:389", { baseDn: "dc=x", bindDn: "cn=a" }, /needs --ldap-password-file/],
    ["ldap://127.0.0.1:389", { baseDn: "dc=x", passwordFile: "/nonexistent" }, /needs --ldap-bind-dn/],
    ["ldap://127.0.0.1:389", { baseDn: "dc=x", bindDn: "cn=a", passwordFile: "/nonexistent/pw" }, /--ldap-password-file: cannot read \/nonexistent\/pw: ENOENT/],
    ["ldaps://127.0.0.1", { baseDn: "dc=x", startTls: true }, /--ldap-starttls is for ldap:\/\//],
    ["ldap://127.0.0.1", { baseDn: "dc=x", timeoutMs: -1 }, /timeoutMs/],
    ["ldap://127.0.0.1", { baseDn: "dc=x", poolSize: 0 }, /poolSize/],
    ["ldap://127.0.0.1", { baseDn: "dc=x", failPolicy: "open" }, /failPolicy/],
    ["ldap://127.0.0.1", { baseDn: "dc=x", bogus: 1 }, /bogus|unrecognized/i],
    ["http://dc.contoso.com", {}, /unsupported scheme/],
    ["mailboxes.txt", {}, /neither a \.csv file nor an ldap/],
    ["/nonexistent/mailboxes.csv", {}, /ENOENT/],
  ])("%s %j is refused with a clear error", async (spec, opts, msg) => {
    await expect(openDirectory(spec, opts as never)).rejects.toThrow(msg);
  });

  it("a CA file without a certificate is refused", async () => {
    await expect(openDirectory("ldaps://127.0.0.1/dc=x", { caFile: join(tmp, "not-a-ca.pem") })).rejects.toThrow(DirectoryConfigError);
  });

  it("password file: read, trailing newline dropped (checked via a bound look-up in test/ldap)", async () => {
    const d = await openDirectory("ldap://127.0.0.1:1", { baseDn: "dc=x", bindDn: "cn=a", passwordFile: join(tmp, "pw"), registry: new Registry() });
    await d.close?.();
  });
});
