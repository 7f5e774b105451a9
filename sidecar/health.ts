// Health views: which servers (or one service on a server) are known to be down.
import type { Service } from "../crds/index.js";
import type { HealthView } from "./decision/types.js";

/** Keys: "server" (the whole server is down) or "server/Service" (one service is down). */
export function healthFromDown(down: Iterable<string>): HealthView & { readonly down: ReadonlySet<string> } {
  const set = new Set(down);
  return {
    down: set,
    isServerHealthy: (server) => !set.has(server),
    isServiceHealthy: (server: string, service: Service) => !set.has(server) && !set.has(`${server}/${service}`),
  };
}

export function healthKey(server: string, service?: Service): string {
  return service ? `${server}/${service}` : server;
}
