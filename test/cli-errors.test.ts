// The command line's endings as a user meets them (BUILT CLI, `npm run build` first): exit 2 for a
// wrong command line with a short pointer to --help, exit 1 for bad input, and errors that say what
// to do next (a port in use names its flag, a ';' CSV names both delimiters, no cluster says how to
// get one).
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKubeConfig, NO_CLUSTER } from "../cli/kubeconfig.js";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "cas-gateway.js");
const BUILT = existsSync(join(ROOT, "dist", "cli", "main.js"));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000, env }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 99) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "cas-cli-errors-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!BUILT)("exit codes and messages (built CLI)", () => {
  it("a missing required option or an unknown option: exit 2, one short message, not the whole help", async () => {
    const missing = await cli(["validate"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("error: required option '-m, --manifests <dir>' not specified\n(add --help for the options)\n");
    const unknown = await cli(["validate", "--manifests", "examples/contoso", "--manifest-dir", "x"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.split("\n").length).toBeLessThan(4);
    expect((await cli(["no-such-command"])).code).toBe(2);
    const badValue = await cli(["standalone", "--manifests", "examples/contoso", "--directory", "examples/contoso/mailboxes.csv", "--log-level", "chatty"]);
    expect(badValue.code).toBe(2);
    expect(badValue.stderr).toContain("--log-level");
    expect(badValue.stderr).toContain("run 'cas-gateway standalone --help' for the options");
  });

  it("invalid input is exit 1; --help and render --bootstrap (which needs no manifests) exit 0", async () => {
    expect((await cli(["validate", "--manifests", join(tmp, "nope")])).code).toBe(1);
    expect((await cli(["--help"])).code).toBe(0);
    const boot = await cli(["render", "--bootstrap"]);
    expect(boot.code).toBe(0);
    expect(boot.stdout).toContain("ads_config");
    expect((await cli(["render"])).code).toBe(2);
  });

  it("a semicolon-delimited CSV says which delimiter was expected and which was found", async () => {
    const csv = join(tmp, "semi.csv");
    writeFileSync(csv, readFileSync(join(ROOT, "examples", "contoso", "mailboxes.csv"), "utf8").replaceAll('","', '";"'));
    const r = await cli(["validate", "--manifests", "examples/contoso", "--directory", csv]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${csv}:2:1: (csv): expected "," as the delimiter (Export-Csv's default) but the header is delimited by ";"`);
  });

  it("a port in use names the flag to change, exit 1", async () => {
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await cli([
        "standalone", "--manifests", "examples/contoso", "--directory", "examples/contoso/mailboxes.csv", "--site", "usa",
        "--no-health-checks", "--envoy", "off", "--log-level", "error",
        "--xds-port", "0", "--authz-port", "0", "--pop3-port", "0", "--imap4-port", "0", "--admin-port", String(port),
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`127.0.0.1:${port} is already in use (another cas-gateway still running?); stop that process or choose another port with --admin-port`);
    } finally {
      busy.close();
    }
  }, 90_000);

  it("operator without any kubeconfig says what to do and stops (exit 1), instead of retrying", async () => {
    const env = { PATH: process.env.PATH ?? "", HOME: tmp };
    const r = await cli(["operator", "--all-namespaces", "--admin", "127.0.0.1:0", "--xds-listen", "127.0.0.1:0"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`cas-gateway: ${NO_CLUSTER}\n`);
  }, 60_000);
});

describe("loadKubeConfig", () => {
  it("no kubeconfig anywhere and not in a pod: the what-to-do message", () => {
    expect(() => loadKubeConfig(undefined, {}, tmp)).toThrow(NO_CLUSTER);
  });
  it("a kubeconfig with a plain-HTTP server and no insecure-skip-tls-verify is refused with the way out", () => {
    const f = join(tmp, "kc.yaml");
    writeFileSync(
      f,
      `apiVersion: v1
kind: Config
clusters: [{ name: local, cluster: { server: "http://127.0.0.1:8080" } }]
users: [{ name: u, user: {} }]
contexts: [{ name: c, context: { cluster: local, user: u } }]
current-context: c
`,
    );
    expect(() => loadKubeConfig(f, {}, tmp)).toThrow(/cluster "local" is at http:\/\/127\.0\.0\.1:8080, plain HTTP.*https:\/\//);
    expect(() => loadKubeConfig(join(tmp, "missing.yaml"), {}, tmp)).toThrow("--kubeconfig");
  });
});
