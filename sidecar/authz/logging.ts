// pino logger for the sidecar: JSON, every request line carries `rid` (x-request-id from Envoy, else
// generated). Credentials never reach a log line: the handler logs chosen fields only, and redaction
// catches anything that slips into an object anyway.
import pino, { type DestinationStream, type Logger } from "pino";

export const REDACT_PATHS = [
  "authorization",
  "password",
  "body",
  "cookie",
  "*.authorization",
  "*.password",
  "*.body",
  "*.cookie",
  "*.headers.authorization",
  "*.headers.cookie",
  "headers.authorization",
  "headers.cookie",
];

export function createSidecarLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      name: "cas-sidecar",
      level: opts.level ?? "info",
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    },
    opts.destination ?? pino.destination({ dest: 2, sync: false }),
  );
}
