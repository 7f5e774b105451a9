// zod types for command-line flags that several commands take.
import { z } from "zod";

/** HOST:PORT (IPv6 in brackets) → { host, port }; port 0 means "any free port". */
export const HostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "expected HOST:PORT, e.g. 127.0.0.1:9001")
  .transform((s) => {
    const i = s.lastIndexOf(":");
    return { host: s.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(s.slice(i + 1)) };
  })
  .refine((a) => a.port <= 65535, "port must be 0-65535");
