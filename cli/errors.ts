// How the command line ends on an error: exit code 2 for usage (a missing or malformed option, an
// unknown command), 1 for input that was read and found wrong or a failure while running, and a
// message that says what to do next rather than only what broke.
import { CommanderError, type Command } from "commander";
import { ZodError } from "zod";

/** The command line itself is wrong (exit 2); thrown by flag parsing. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export interface Ending {
  readonly exitCode: 0 | 1 | 2;
  /** Already printed (commander writes its own errors), or the text to print. */
  readonly message?: string;
}

/** The exit code and message for an error that ended the command; cmd is the subcommand that ran. */
export function ending(err: unknown, cmd: Command | undefined): Ending {
  if (err instanceof CommanderError) return { exitCode: err.exitCode === 0 ? 0 : 2 }; // commander printed it
  if (err instanceof UsageError || err instanceof ZodError) return { exitCode: 2, message: usageText(err, cmd) };
  const inUse = addressInUse(err);
  if (inUse) {
    const flag = cmd ? flagForPort(cmd, inUse.port) : undefined;
    const next = flag ? `choose another port with ${flag} (0 picks a free one where the command allows it)` : "choose another port";
    return { exitCode: 1, message: `${inUse.address}:${inUse.port} is already in use (another cas-gateway still running?); stop that process or ${next}` };
  }
  return { exitCode: 1, message: err instanceof Error ? err.message : String(err) };
}

function usageText(err: Error, cmd: Command | undefined): string {
  const msg = err instanceof ZodError ? err.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`).join("; ") : err.message;
  return `${msg}\n(${helpHint(cmd)})`;
}

export function helpHint(cmd: Command | undefined): string {
  const names: string[] = [];
  for (let c: Command | null | undefined = cmd; c; c = c.parent) names.unshift(c.name());
  return `run '${names.join(" ") || "cas-gateway"} --help' for the options`;
}

/** EADDRINUSE from net/http (err.code, err.port) or from grpc-js (only in the message text). */
function addressInUse(err: unknown): { address: string; port: number } | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & { code?: string; address?: string; port?: number };
  if (e.code === "EADDRINUSE" && typeof e.port === "number") return { address: e.address ?? "", port: e.port };
  const m = /EADDRINUSE: address already in use (\S+):(\d+)/.exec(e.message);
  return m ? { address: m[1], port: Number(m[2]) } : undefined;
}

/** The option of cmd whose value is that port (--admin-port 9902, --admin 127.0.0.1:9090). */
function flagForPort(cmd: Command, port: number): string | undefined {
  for (const o of cmd.options) {
    const v = cmd.getOptionValue(o.attributeName()) as unknown;
    if (typeof v !== "string" && typeof v !== "number") continue;
    const s = String(v);
    if (s === String(port) || s.endsWith(`:${port}`)) return o.long;
  }
  return undefined;
}
