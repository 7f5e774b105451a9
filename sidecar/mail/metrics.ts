// Prometheus metrics of the mail proxy, on a registry the caller owns (one per proxy instance, so
// several proxies in one process, e.g. tests, do not collide).
import { Counter, Gauge, Registry } from "prom-client";

export type LoginOutcome =
  | "local"
  | "proxy"
  | "auth_failed"
  | "unknown_user"
  | "refused"
  | "backend_unavailable"
  | "not_ready";

export class MailMetrics {
  readonly connections: Counter<"protocol" | "listener">;
  readonly active: Gauge<"protocol">;
  readonly logins: Counter<"protocol" | "outcome">;
  readonly bytes: Counter<"protocol" | "direction">;
  readonly limits: Counter<"protocol" | "limit">;

  constructor(readonly registry: Registry = new Registry()) {
    this.connections = new Counter({
      name: "cas_mail_connections_total",
      help: "Client connections accepted by the POP3/IMAP4 proxy.",
      labelNames: ["protocol", "listener"],
      registers: [registry],
    });
    this.active = new Gauge({
      name: "cas_mail_connections_active",
      help: "Client connections open now (before and after authentication).",
      labelNames: ["protocol"],
      registers: [registry],
    });
    this.logins = new Counter({
      name: "cas_mail_logins_total",
      help: "Login attempts by outcome (local/proxy = logged in at the mailbox server).",
      labelNames: ["protocol", "outcome"],
      registers: [registry],
    });
    this.bytes = new Counter({
      name: "cas_mail_relayed_bytes_total",
      help: "Bytes relayed after authentication (client_to_server, server_to_client).",
      labelNames: ["protocol", "direction"],
      registers: [registry],
    });
    this.limits = new Counter({
      name: "cas_mail_limit_hits_total",
      help: "Connections ended or commands refused by a limit (line, idle, deadline, pre_auth_bytes, auth_failures, bad_commands, connections).",
      labelNames: ["protocol", "limit"],
      registers: [registry],
    });
  }
}
