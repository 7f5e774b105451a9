// The option groups: commander options from one definition, parsing with the group's schemas.
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { directoryOptionsFromFlags } from "../../sidecar/directory/open-directory.js";
import { addOptions, defineOptions, directoryOptions, mailProxyOptions, mailProxySettings, parseFlags, sidecarOptions } from "./index.js";

describe("option groups", () => {
  it("an option whose key is not commander's attribute name is refused when added", () => {
    const g = defineOptions("bad", { lookupTimeout: { flags: "--lookup-timeout-ms <ms>", help: "x", schema: z.string() } });
    expect(() => addOptions(new Command(), g)).toThrow(/defined under "lookupTimeout" but commander calls it "lookupTimeoutMs"/);
  });

  it("schemas apply the flag defaults for programmatic callers and name the flag in errors", () => {
    const schema = z.object({ ...directoryOptions.shape, ...sidecarOptions.shape, ...mailProxyOptions.shape });
    const f = parseFlags(schema, { directory: "x.csv" });
    expect(f).toMatchObject({ lookupTimeoutMs: 150, onDirectoryFailure: "fail-closed", affinityTtl: 28800, starttls: true, ldapTimeoutMs: "5000" });
    expect(() => parseFlags(schema, { directory: "x.csv", onDirectoryFailure: "open" })).toThrow(/^--on-directory-failure: /);
    expect(() => parseFlags(schema, { directory: "x.csv", lookupTimeoutMs: "soon" })).toThrow(/^--lookup-timeout-ms: /);
  });

  it("a command gets the defaults from the same definition", () => {
    const cmd = addOptions(new Command().exitOverride(), directoryOptions, mailProxyOptions);
    cmd.parse(["--directory", "x.csv", "--no-starttls", "--max-connections", "5"], { from: "user" });
    expect(cmd.opts()).toMatchObject({ lookupTimeoutMs: "150", onDirectoryFailure: "fail-closed", starttls: false, maxConnections: "5", ldapDomain: [] });
  });

  it("mail proxy settings: unreadable or non-PEM certificate files are refused naming the flag", () => {
    expect(() => mailProxySettings({ backendCa: "/nonexistent/ca.pem" })).toThrow(/^--backend-ca: cannot read \/nonexistent\/ca.pem: ENOENT/);
    expect(() => mailProxySettings({ backendCa: "package.json" })).toThrow(/^--backend-ca: package.json holds no PEM certificate/);
    expect(() => mailProxySettings({ tlsCert: "package.json", tlsKey: "package.json" })).toThrow(/^--tls-cert: /);
    const s = mailProxySettings({ starttls: false, maxConnections: 5, frontDoorHost: "mail.contoso.com", proxyProtocol: true });
    expect(s.options).toEqual({ limits: { maxConnections: 5 }, policy: { starttls: false } });
    expect(s.listener).toEqual({ frontDoorHost: "mail.contoso.com", tlsTerminatedByEnvoy: false, proxyProtocol: true });
  });
});

describe("directory flags", () => {
  it("commander flags -> options, with seconds -> milliseconds and repeatable --ldap-domain", () => {
    const cmd = addOptions(new Command().exitOverride(), directoryOptions);
    cmd.parse(
      [
        "--directory", "ldaps://dc1.contoso.com",
        "--ldap-base-dn", "DC=contoso,DC=com",
        "--ldap-bind-dn", "CN=svc-cas,OU=Service Accounts,DC=contoso,DC=com",
        "--ldap-password-file", "/var/run/secrets/ldap/password",
        "--ldap-ca-file", "/etc/cas/ldap-ca.pem",
        "--ldap-timeout-ms", "2000",
        "--ldap-domain", "CONTOSO=DC=contoso,DC=com",
        "--ldap-domain", "asia=DC=asia,DC=contoso,DC=com",
        "--directory-cache-ttl", "120",
        "--directory-negative-ttl", "15",
        "--directory-fail-policy", "not-found",
      ],
      { from: "user" },
    );
    const o = directoryOptionsFromFlags(cmd.opts());
    expect(o).toEqual({
      baseDn: "DC=contoso,DC=com",
      bindDn: "CN=svc-cas,OU=Service Accounts,DC=contoso,DC=com",
      passwordFile: "/var/run/secrets/ldap/password",
      caFile: "/etc/cas/ldap-ca.pem",
      startTls: false,
      timeoutMs: 2000,
      poolSize: 4,
      domains: { CONTOSO: "DC=contoso,DC=com", ASIA: "DC=asia,DC=contoso,DC=com" },
      cacheTtlMs: 120_000,
      negativeTtlMs: 15_000,
      cacheSize: 100_000,
      maxStaleMs: 86_400_000,
      failPolicy: "not-found",
      maxInFlight: 64,
    });
    expect(cmd.opts().directory).toBe("ldaps://dc1.contoso.com");
  });

  it("bad flag values say which flag", () => {
    expect(() => directoryOptionsFromFlags({ ldapTimeoutMs: "soon" })).toThrow(/--ldap-timeout-ms: "soon"/);
    expect(() => directoryOptionsFromFlags({ ldapDomain: ["CONTOSO"] })).toThrow(/--ldap-domain/);
    expect(() => directoryOptionsFromFlags({ directoryFailPolicy: "open" })).toThrow(/--directory-fail-policy/);
  });
});
