// pino logger for the sidecar: JSON, every request line carries `rid` (x-request-id from Envoy, else
// generated). Credentials never reach a log line: the handler logs chosen fields only, and redaction
// catches anything that slips into an object anyway.
import pino, { type DestinationStream, type Logger } from "pino";
import { BufferedDestination } from "./log-destination.js";

// Explicit paths only: wildcard redaction costs several times more per line on the hot path.
export const REDACT_PATHS = [
  "authorization",
  "password",
  "cookie",
  "body",
  "credentials",
  "headers.authorization",
  "headers.cookie",
  "req.headers.authorization",
  "req.headers.cookie",
  "req.body",
  "request.headers.authorization",
  "request.headers.cookie",
  "request.body",
  "creds.password",
];

export function createSidecarLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      name: "cas-sidecar",
      level: opts.level ?? "info",
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    },
    // Batched writes (log-destination.ts): one syscall per line costs more than the decision itself.
    opts.destination ?? new BufferedDestination(1),
  );
}
