// `cas-gateway envoy-drain --admin 127.0.0.1:9901 --timeout 320 --min-drain 10 --done-file FILE`:
// the gateway pod's preStop hook (sidecar container). Fails Envoy's health checks, starts a graceful
// listener drain and waits for Envoy's connections to end or the time bound, then writes FILE (see
// sidecar/drain/envoy-drain.ts). Always exits 0 when it could run: a failing preStop hook only adds
// an event, the pod is deleted anyway, and the wait bound is what protects the grace period.
import type { Command } from "commander";
import { z } from "zod";
import { drainEnvoy } from "../../sidecar/drain/envoy-drain.js";
import { HostPort } from "../flags.js";

const Flags = z.object({
  admin: HostPort,
  timeout: z.coerce.number().int().min(1).max(86_400),
  minDrain: z.coerce.number().int().min(0).max(3_600),
  doneFile: z.string().min(1).optional(),
});

export function register(program: Command): void {
  program
    .command("envoy-drain")
    .description("Drain the Envoy in this pod before it is stopped (preStop hook): fail health checks, drain listeners gracefully, wait for connections to end")
    .option("--admin <host:port>", "Envoy's admin address", "127.0.0.1:9901")
    .option("--timeout <seconds>", "longest wait for connections to end (keep below the pod's terminationGracePeriodSeconds)", "300")
    .option("--min-drain <seconds>", "wait at least this long before counting connections (endpoint removal propagates meanwhile)", "10")
    .option("--done-file <file>", "write the outcome here when done (the sidecar's /shutdown/drained waits for it)")
    .action(async (raw: Record<string, unknown>) => {
      const parsed = Flags.safeParse(raw);
      if (!parsed.success) {
        const i = parsed.error.issues[0];
        throw new Error(`--${String(i?.path[0] ?? "?").replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${i?.message}`);
      }
      const f = parsed.data;
      const r = await drainEnvoy({
        admin: f.admin,
        timeoutMs: f.timeout * 1000,
        minDrainMs: f.minDrain * 1000,
        ...(f.doneFile ? { doneFile: f.doneFile } : {}),
        log: (m) => process.stdout.write(`envoy-drain: ${m}\n`),
      });
      process.stdout.write(`${JSON.stringify(r)}\n`);
    });
}
