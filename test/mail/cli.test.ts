// `cas-gateway mail-proxy` as a real process: manifests and CSV on disk, Dovecot behind it, a real
// client in front, /metrics on the admin port.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { MailProxyFlags, startMailProxy } from "../../cli/commands/mail-proxy.js";
import { StandaloneFlags, startStandalone } from "../../cli/commands/standalone.js";
import { gatewayStateResource } from "../../model/gateway-state.js";
import { AdsServer } from "../../operator/xds/server/server.js";
import { Snapshot } from "../../operator/xds/server/snapshot.js";
import { dovecotAvailable, freePort } from "./dovecot.js";
import { USERS, mailObjects, pyClient, sha256, startMailWorld, writeMailOrgFiles, type MailWorld } from "./fixture.js";
import { EVERY_PORT_FREE } from "../standalone-ports.js";

describe.skipIf(!dovecotAvailable())("cas-gateway mail-proxy command", () => {
  let w: MailWorld;
  let child: ChildProcess | undefined;
  let out = "";
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    w = await startMailWorld();
    const files = await writeMailOrgFiles(join(w.dir, "cli"), w.east, w.west);
    child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "cli/main.ts",
        "mail-proxy",
        "--manifests",
        files.manifests,
        "--directory",
        files.csv,
        "--imap",
        "127.0.0.1:0",
        "--pop3s",
        "127.0.0.1:0",
        "--tls-cert",
        w.certs.certFile,
        "--tls-key",
        w.certs.keyFile,
        "--backend-ca",
        w.certs.caFile,
        "--front-door-host",
        "east.contoso.test",
        "--admin",
        "127.0.0.1:0",
        "--log-level",
        "warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    const end = Date.now() + 60_000;
    while (!/admin on [\d.]+:(\d+)/.test(out)) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`mail-proxy did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const m of out.matchAll(/^(\w+) on [\d.]+:(\d+)$/gm)) ports[m[1]] = Number(m[2]);
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await gone;
    }
    await w?.stop();
  });

  it("R-POP-5: with --xds, topology and health come from the operator's ADS server; a service marked down is not used", async () => {
    const objects = mailObjects({ east: w.east, west: w.west, northImapPort: await freePort(), northPop3Port: await freePort() });
    const ads = new AdsServer({ logger: pino({ level: "silent" }) });
    const adsPort = await ads.listen(0);
    ads.cache.setSnapshot("*", new Snapshot([gatewayStateResource(objects, "v1", [])], "v1"));
    const running = await startMailProxy(
      MailProxyFlags.parse({
        xds: `127.0.0.1:${adsPort}`,
        nodeId: "mail-proxy-test",
        directory: join(w.dir, "cli", "mailboxes.csv"),
        imap: "127.0.0.1:0",
        backendCa: w.certs.caFile,
        frontDoorHost: "east.contoso.test",
        starttls: true,
        down: [],
        admin: "127.0.0.1:0",
        logLevel: "silent",
      }),
    );
    try {
      const port = running.proxy.addresses()[0].port;
      const until = Date.now() + 20_000;
      let r = await pyClient("imap", port, "plain", USERS.bob.user, USERS.bob.password);
      while (!r.ok && /starting/.test(r.error ?? "") && Date.now() < until) {
        await new Promise((x) => setTimeout(x, 200));
        r = await pyClient("imap", port, "plain", USERS.bob.user, USERS.bob.password);
      }
      expect(r.error).toBeUndefined();
      ads.cache.setSnapshot("*", new Snapshot([gatewayStateResource(objects, "v1", ["west-mbx/Imap4"])], "v2"));
      let down = await pyClient("imap", port, "plain", USERS.bob.user, USERS.bob.password);
      while (down.ok && Date.now() < until) {
        await new Promise((x) => setTimeout(x, 200));
        down = await pyClient("imap", port, "plain", USERS.bob.user, USERS.bob.password);
      }
      expect(down.error).toContain("[UNAVAILABLE]");
    } finally {
      await running.stop();
      ads.forceClose();
    }
  });

  it("serves IMAP4 and POP3 over implicit TLS from manifest files, and exposes metrics", async () => {
    const a = await pyClient("imap", ports.imap, "starttls", USERS.bob.user, USERS.bob.password, w.certs.caFile);
    expect(a.error).toBeUndefined();
    expect(a.sha256).toEqual(w.west.maildirMessages(USERS.bob.user).map(sha256));
    const b = await pyClient("pop3", ports.pop3s, "ssl", USERS.alice.user, USERS.alice.password, w.certs.caFile);
    expect(b.error).toBeUndefined();
    const res = await fetch(`http://127.0.0.1:${ports.admin}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/cas_mail_logins_total\{protocol="Imap4",outcome="proxy"\} 1/);
    expect(text).toMatch(/cas_mail_logins_total\{protocol="Pop3",outcome="local"\} 1/);
  });

  it("standalone takes the mail proxy's options: STARTTLS/STLS with --tls-cert/--tls-key, a private CA with --backend-ca", async () => {
    const files = await writeMailOrgFiles(join(w.dir, "standalone"), w.east, w.west);
    const flags = (backendCa: boolean) =>
      StandaloneFlags.parse({
        manifests: files.manifests,
        directory: files.csv,
        ...EVERY_PORT_FREE,
        healthChecks: false,
        envoy: "off",
        bootstrap: join(w.dir, "standalone", "envoy.yaml"),
        tlsCert: w.certs.certFile,
        tlsKey: w.certs.keyFile,
        ...(backendCa ? { backendCa: w.certs.caFile } : {}),
        frontDoorHost: "east.contoso.test",
        logLevel: "silent",
      });
    const login = async (running: Awaited<ReturnType<typeof startStandalone>>, proto: "imap" | "pop3", user: { user: string; password: string }) => {
      const port = running.mailPorts.find((m) => m.protocol === (proto === "imap" ? "Imap4" : "Pop3"))!.port;
      const until = Date.now() + 20_000;
      let r = await pyClient(proto, port, "starttls", user.user, user.password, w.certs.caFile);
      while (!r.ok && /starting/.test(r.error ?? "") && Date.now() < until) {
        await new Promise((x) => setTimeout(x, 200));
        r = await pyClient(proto, port, "starttls", user.user, user.password, w.certs.caFile);
      }
      return r;
    };
    // The mailbox CSV loads in the background; until /readyz says so the proxy answers [UNAVAILABLE]
    // for the directory, which must not be mistaken for the untrusted certificate below.
    const ready = async (running: Awaited<ReturnType<typeof startStandalone>>) => {
      const until = Date.now() + 30_000;
      for (;;) {
        const r = await fetch(`http://127.0.0.1:${running.adminPort}/readyz`).catch(() => undefined);
        if (r?.status === 200) return;
        if (Date.now() > until) throw new Error(`standalone not ready: ${r ? await r.text() : "no answer"}`);
        await new Promise((x) => setTimeout(x, 100));
      }
    };
    const withCa = await startStandalone(flags(true), pino({ level: "silent" }));
    try {
      await ready(withCa);
      // bob's mailbox is on west (cross-site, TLS to Dovecot signed by the test CA); alice's on east.
      const imap = await login(withCa, "imap", USERS.bob);
      expect(imap.error).toBeUndefined();
      expect(imap.sha256).toEqual(w.west.maildirMessages(USERS.bob.user).map(sha256));
      const pop3 = await login(withCa, "pop3", USERS.alice);
      expect(pop3.error).toBeUndefined();
    } finally {
      await withCa.stop();
    }
    // The same without --backend-ca: the mailbox server's certificate is not trusted.
    const withoutCa = await startStandalone(flags(false), pino({ level: "silent" }));
    try {
      await ready(withoutCa);
      const r = await login(withoutCa, "imap", USERS.bob);
      expect(r.error).toContain("[UNAVAILABLE]");
    } finally {
      await withoutCa.stop();
    }
  }, 120_000);
});
