// The LDAP directory wired into the commands: `cas-gateway sidecar --directory ldap://...` as a real
// process against a real slapd holding the example organisation in AD's shapes, asked by a grpc-js
// client speaking Envoy's ext_authz protos. Users that exist only in LDAP (not in mailboxes.csv)
// are routed by their homeMDB; with slapd stopped, cached answers still serve and unseen users get
// the sidecar's fail-closed 503.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SidecarFlags, startSidecar } from "../../cli/commands/sidecar.js";
import { StandaloneFlags, startStandalone } from "../../cli/commands/standalone.js";
import { directoryOptionsFromFlags } from "../../sidecar/directory/open-directory.js";
import { authzClient, envoyCheckRequest, headerMap, type CheckResponseIn } from "../sidecar/envoy-request.js";
import { contosoLdif, misreadGuid, YAMADA_GUID } from "./fixtures.js";
import { BASE_DN, BIND_DN, BIND_PASSWORD, type Slapd, slapdMissing, startSlapd } from "./slapd.js";

const missing = slapdMissing();
const basic = (user: string) => ({ authorization: `Basic ${Buffer.from(`${user}:P@ssw0rd`).toString("base64")}` });

describe.skipIf(missing !== undefined)(`cas-gateway sidecar/standalone --directory ldap:// against slapd${missing ? ` (skipped: ${missing})` : ""}`, () => {
  let slapd: Slapd;
  let child: ChildProcess | undefined;
  let client: ReturnType<typeof authzClient>;
  let adminUrl = "";
  let log = "";
  const tmp = mkdtempSync(path.join(tmpdir(), "cas-ldap-cmd-"));

  beforeAll(async () => {
    const fx = await contosoLdif();
    slapd = await startSlapd({ ldif: fx.ldif });
    const pw = path.join(tmp, "bind-password");
    writeFileSync(pw, `${BIND_PASSWORD}\n`);
    child = spawn(
      process.execPath,
      [
        "--import", "tsx", "cli/main.ts", "sidecar",
        "--manifests", "examples/contoso",
        "--directory", `${slapd.url}/${BASE_DN}`,
        "--ldap-bind-dn", BIND_DN,
        "--ldap-password-file", pw,
        "--ldap-timeout-ms", "2000",
        "--ldap-domain", "ASIA=DC=asia,DC=contoso,DC=com",
        // A generous deadline: the first query binds a fresh connection on a busy machine.
        "--lookup-timeout-ms", "5000",
        "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-level", "warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    const end = Date.now() + 60_000;
    let m: RegExpExecArray | null = null;
    while (!(m = /sidecar gRPC on 127\.0\.0\.1:(\d+), admin on 127\.0\.0\.1:(\d+)/.exec(log))) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`sidecar did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    client = authzClient(Number(m[1]));
    adminUrl = `http://127.0.0.1:${m[2]}`;
  }, 90_000);

  afterAll(async () => {
    client?.close();
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await gone;
    }
    await slapd?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const check = (init: Parameters<typeof envoyCheckRequest>[0]) => client.check(envoyCheckRequest(init));
  const ok = (r: CheckResponseIn) => headerMap(r.ok_response?.headers);
  const denied = (r: CheckResponseIn) => headerMap(r.denied_response?.headers);

  it("R-OWA-4: yamada (only in LDAP, homeMDB DB-ASIA-2016) at usa → proxy to asia", async () => {
    const r = await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("yamada@contoso.com") });
    expect(ok(r)).toMatchObject({ "x-cas-decision": "proxy", "x-cas-target-site": "asia" });
    expect(ok(r)["x-cas-rules"]).toContain("R-OWA-4");
    // The same database as kenji (in the CSV and in LDAP): the same target.
    const k = await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("kenji@contoso.com") });
    expect(ok(k)["x-cas-target-server"]).toBe(ok(r)["x-cas-target-server"]);
  }, 30_000);

  it("R-OUT-1: Outlook's <GUID>@domain for yamada (only in LDAP: the GUID comes from msExchMailboxGuid) at usa → proxy to asia; the byte-swapped GUID names nobody", async () => {
    const kenji = ok(await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("kenji@contoso.com") }));
    for (const path of [`/mapi/emsmdb/?MailboxId=${YAMADA_GUID}@contoso.com`, `/rpc/rpcproxy.dll?${YAMADA_GUID.toUpperCase()}@contoso.com:6001`]) {
      // No Authorization: the GUID is the only identity the request carries.
      const r = await check({ host: "usa.contoso.com", method: "POST", path, headers: {} });
      expect(ok(r), path).toMatchObject({ "x-cas-decision": "proxy", "x-cas-target-site": "asia" });
      expect(ok(r)["x-cas-target-server"], path).toBe(kenji["x-cas-target-server"]);
    }
    const wrong = await check({ host: "usa.contoso.com", method: "POST", path: `/mapi/emsmdb/?MailboxId=${misreadGuid(YAMADA_GUID)}@contoso.com`, headers: {} });
    expect(headerMap(wrong.ok_response?.headers ?? wrong.denied_response?.headers)["x-cas-target-site"]).not.toBe("asia");
  }, 30_000);

  it("R-OWA-1: kim.k (only in LDAP, DB-USA-2013) at usa → local; ASIA\\kim (child domain) → asia", async () => {
    const r = await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("kim.k@contoso.com") });
    expect(ok(r)).toMatchObject({ "x-cas-decision": "local", "x-cas-target-site": "usa" });
    const a = await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("ASIA\\kim") });
    expect(ok(a)).toMatchObject({ "x-cas-target-site": "asia" });
  }, 30_000);

  it("R-EAS-4: josé (only in LDAP, DB-EUR-2010) ActiveSync at usa → 451 to europe", async () => {
    const r = await check({
      host: "usa.contoso.com",
      method: "POST",
      path: "/Microsoft-Server-ActiveSync?Cmd=Sync&User=jose.mueller&DeviceId=d9&DeviceType=Android",
      headers: basic("jose.mueller@contoso.com"),
    });
    expect(denied(r)).toMatchObject({ "x-cas-decision": "redirect-451", "x-ms-location": "https://europe.contoso.com/Microsoft-Server-ActiveSync" });
  }, 30_000);

  it("exports the LDAP and cache metrics on the sidecar's admin port", async () => {
    const text = await (await fetch(`${adminUrl}/metrics`)).text();
    expect(text).toMatch(/cas_sidecar_decisions_total\{decision="proxy"\} [1-9]/);
    expect(text).toMatch(/^cas_directory_ldap_lookup_seconds_count\{[^}]*\} [1-9]/m);
    expect(text).toMatch(/^cas_directory_cache_entries\{[^}]*\} [1-9]/m);
  });

  it("cas-gateway standalone (in process) with --directory ldap://: the sidecar routes an LDAP-only user", async () => {
    const flags = StandaloneFlags.parse({
      manifests: "examples/contoso",
      directory: `${slapd.url}/${BASE_DN}`,
      site: "usa",
      xdsPort: "0", authzPort: "0", adminPort: "0", pop3Port: "0", imap4Port: "0",
      // Envoy's ports only go into the translated config and bootstrap (no Envoy here); nothing binds them.
      envoyAdminPort: "9901", httpPort: "8080", httpsPort: "8443",
      healthChecks: false,
      envoy: "off",
      bootstrap: path.join(tmp, "envoy.yaml"),
      // As for the sidecar above: the first query binds a fresh connection on a busy machine.
      lookupTimeoutMs: "5000",
      logLevel: "silent",
    });
    const pw = path.join(tmp, "bind-password");
    const running = await startStandalone(flags, pino({ level: process.env.DBG ? "info" : "silent" }), directoryOptionsFromFlags({ ldapBindDn: BIND_DN, ldapPasswordFile: pw }));
    const c = authzClient(running.authzPort);
    try {
      // The control plane loads the manifests asynchronously: wait until the sidecar is ready.
      const until = Date.now() + 20_000;
      let r = await c.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: basic("kim.k@contoso.com") }));
      while (headerMap(r.denied_response?.headers)["x-cas-rules"]?.includes("R-SIDECAR-not-ready") && Date.now() < until) {
        await new Promise((x) => setTimeout(x, 200));
        r = await c.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: basic("kim.k@contoso.com") }));
      }
      expect(ok(r)).toMatchObject({ "x-cas-decision": "local", "x-cas-target-site": "usa" });
      const y = await c.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: basic("yamada@contoso.com") }));
      expect(ok(y)).toMatchObject({ "x-cas-decision": "proxy", "x-cas-target-site": "asia" });
    } finally {
      c.close();
      await running.stop();
    }
  }, 60_000);

  it("slapd down: cached users still served, unseen users get the fail-closed 503", async () => {
    await slapd.stop();
    try {
      const cached = await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("yamada@contoso.com") });
      expect(ok(cached)).toMatchObject({ "x-cas-target-site": "asia" });
      const unseen = await check({ host: "usa.contoso.com", path: "/owa/", headers: basic("lina@contoso.com") });
      expect(unseen.denied_response?.status?.code).toBe("ServiceUnavailable");
      expect(denied(unseen)["x-cas-decision"]).toBe("error");
    } finally {
      await slapd.start();
    }
  }, 30_000);

  it("slapd frozen (SIGSTOP, a hung domain controller): expired users get their stale answer within the request deadline, unseen users the 503, nothing waits for --ldap-timeout-ms", async () => {
    const pw = path.join(tmp, "bind-password");
    const LOOKUP_MS = 300;
    const flags = SidecarFlags.parse({
      manifests: "examples/contoso",
      nodeCluster: "cas-gateway",
      directory: `${slapd.url}/${BASE_DN}`,
      ldapBindDn: BIND_DN,
      ldapPasswordFile: pw,
      ldapTimeoutMs: "5000",
      directoryCacheTtl: "1",
      lookupTimeoutMs: String(LOOKUP_MS),
      listen: "127.0.0.1:0",
      admin: "127.0.0.1:0",
      down: [],
      logLevel: "silent",
    });
    const running = await startSidecar(flags, directoryOptionsFromFlags(flags));
    const c = authzClient(running.grpcPort);
    const timed = async (user: string) => {
      const started = performance.now();
      const r = await c.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: basic(user) }));
      return { r, ms: performance.now() - started };
    };
    try {
      // Warm the cache (the first search binds a connection; a late answer still fills the cache).
      const until = Date.now() + 20_000;
      let warm = await timed("yamada@contoso.com");
      while (ok(warm.r)["x-cas-target-site"] !== "asia" && Date.now() < until) {
        await new Promise((x) => setTimeout(x, 200));
        warm = await timed("yamada@contoso.com");
      }
      expect(ok(warm.r)["x-cas-target-site"]).toBe("asia");
      await new Promise((x) => setTimeout(x, 1300)); // the entry expires (--directory-cache-ttl 1)
      slapd.freeze();
      try {
        // The deadline is 300 ms; the bound below leaves room for a loaded machine but is far
        // under the 5 s LDAP timeout that every request waited for before.
        const stale = await timed("yamada@contoso.com");
        expect(ok(stale.r)).toMatchObject({ "x-cas-decision": "proxy", "x-cas-target-site": "asia" });
        expect(stale.ms).toBeLessThan(LOOKUP_MS + 1500);
        const unseen = await timed("lina@contoso.com");
        expect(unseen.r.denied_response?.status?.code).toBe("ServiceUnavailable");
        expect(unseen.ms).toBeLessThan(LOOKUP_MS + 1500);
        // Many requests at once during the hang: all answered within the deadline, stale ones correctly.
        const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => timed(i % 2 ? "yamada@contoso.com" : `nobody${i}@contoso.com`)));
        for (const [i, b] of burst.entries()) {
          expect(b.ms).toBeLessThan(LOOKUP_MS + 2500);
          if (i % 2) expect(ok(b.r)["x-cas-target-site"]).toBe("asia");
          else expect(b.r.denied_response?.status?.code).toBe("ServiceUnavailable");
        }
        const metrics = await (await fetch(`http://127.0.0.1:${running.adminPort}/metrics`)).text();
        expect(metrics).toMatch(/^cas_directory_deadline_missed_total\{[^}]*\} [1-9]/m);
        expect(metrics).toMatch(/^cas_directory_cache_stale_served_total\{[^}]*\} [1-9]/m);
      } finally {
        slapd.thaw();
      }
      // Back: fresh answers again, from the same process (the pool's searches complete or are replaced).
      const back = Date.now() + 20_000;
      let r = await timed("lina@contoso.com");
      while (!r.r.ok_response && Date.now() < back) {
        await new Promise((x) => setTimeout(x, 200));
        r = await timed("lina@contoso.com");
      }
      expect(r.r.ok_response).toBeDefined();
    } finally {
      c.close();
      await running.stop();
    }
  }, 90_000);
});
