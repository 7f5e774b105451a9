// Health views: which servers (or one service on a server) are known to be down. The operator's
// prober writes them, the gateway state carries them, the decision engine reads them.
import type { Service } from "../crds/index.js";

/** Which servers/services are known to be down. Absent = healthy. */
export interface HealthView {
  isServerHealthy(server: string): boolean;
  isServiceHealthy(server: string, service: Service): boolean;
}

export const ALL_HEALTHY: HealthView = {
  isServerHealthy: () => true,
  isServiceHealthy: () => true,
};

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
