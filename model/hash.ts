// One hash for content-derived versions: SHA-256 over the parts, each followed by a NUL so that
// ("ab", "c") and ("a", "bc") differ. Shared by the xDS snapshot versions and the gateway state's.
import { createHash } from "node:crypto";

export function hashHex(...parts: (string | Uint8Array)[]): string {
  const h = createHash("sha256");
  for (const p of parts) {
    h.update(p);
    h.update("\0");
  }
  return h.digest("hex");
}
