// R-LB-8: what the sidecar remembers about downstream connections that authenticate with NTLM or
// Negotiate. Those schemes authenticate the TCP connection, not a request, so the first request of
// such a connection decides where the whole connection goes and every later request on it (the
// AUTHENTICATE message, then requests that carry no credentials at all) follows. Envoy tells us the
// connection in the CheckRequest: the downstream source address and port.
//
// Bounded and expiring: at most `maxEntries` connections (the least recently used is forgotten
// first) and none idle longer than `idleMs`. A Map keeps insertion order; a use re-inserts the key,
// so the front of the map is always the idlest entry and expiry and eviction are O(1) each.
import type { ConnectionBinding } from "../decision/types.js";

export interface ConnectionMemoryOptions {
  /** Most connections remembered at once (default 100,000: ~20 MB at ~200 bytes each). */
  readonly maxEntries?: number;
  /**
   * Forget a connection idle this long (default 15 minutes: longer than Outlook's keep-alive, so a
   * live RPC/MAPI connection is never forgotten, and well under Envoy's 1-hour connection idle timeout
   * is not needed: a forgotten connection is decided afresh, which is what a new one would get).
   */
  readonly idleMs?: number;
  /** Clock in milliseconds (tests). */
  readonly now?: () => number;
}

interface Entry {
  binding: ConnectionBinding;
  used: number;
}

export const DEFAULT_CONNECTION_MEMORY = { maxEntries: 100_000, idleMs: 15 * 60_000 } as const;

export class ConnectionMemory {
  readonly maxEntries: number;
  readonly idleMs: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();
  /** Connections forgotten, by why (for the metric). */
  readonly forgotten = { expired: 0, evicted: 0 };

  constructor(o: ConnectionMemoryOptions = {}) {
    this.maxEntries = Math.max(1, o.maxEntries ?? DEFAULT_CONNECTION_MEMORY.maxEntries);
    this.idleMs = Math.max(1, o.idleMs ?? DEFAULT_CONNECTION_MEMORY.idleMs);
    this.now = o.now ?? (() => performance.now());
  }

  get size(): number {
    return this.entries.size;
  }

  /** The connection's binding, refreshed as just used; undefined when unknown or expired. */
  get(key: string): ConnectionBinding | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    const t = this.now();
    this.entries.delete(key);
    if (t - e.used > this.idleMs) {
      this.forgotten.expired++;
      return undefined;
    }
    e.used = t;
    this.entries.set(key, e);
    return e.binding;
  }

  /** The binding without refreshing it (explain reads, it does not use). */
  peek(key: string): ConnectionBinding | undefined {
    const e = this.entries.get(key);
    return e && this.now() - e.used <= this.idleMs ? e.binding : undefined;
  }

  set(key: string, binding: ConnectionBinding): void {
    const t = this.now();
    this.entries.delete(key);
    this.entries.set(key, { binding, used: t });
    this.sweep(t);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Forget idle entries from the front, then the least recently used past the bound. */
  private sweep(t: number): void {
    for (const [k, e] of this.entries) {
      if (t - e.used <= this.idleMs) break;
      this.entries.delete(k);
      this.forgotten.expired++;
    }
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.forgotten.evicted++;
    }
  }
}

/** The key of a request's downstream connection, or undefined when Envoy did not say (no port). */
export function connectionKey(sourceAddress: string | undefined, sourcePort: number | undefined, host: string): string | undefined {
  if (!sourceAddress || !sourcePort) return undefined;
  // The Host is part of the key: one connection decided for one front door is not reused for another
  // name coalesced onto it (HTTP/2).
  return `${sourceAddress.includes(":") ? `[${sourceAddress}]` : sourceAddress}:${sourcePort} ${host.toLowerCase()}`;
}
