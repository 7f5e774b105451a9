// The sidecar's gRPC server: envoy.service.auth.v3.Authorization/Check,
// envoy.service.ext_proc.v3.ExternalProcessor/Process and grpc.health.v1.Health (SERVING only once
// a GatewayState is present), on one @grpc/grpc-js server.
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import { decide } from "../decision/engine.js";
import { identityCandidates } from "../decision/identity.js";
import type { MailboxDirectory } from "../../model/directory/types.js";
import { loadEnvoyServices } from "../envoy-protos.js";
import type { StateSource } from "../../model/state.js";
import { AffinitySigner, randomAffinityKey } from "./affinity.js";
import { decodeCheckRequestOrMalformed, encodeCheckResponse } from "./check-codec.js";
import {
  DecisionService,
  type DecisionEngine,
  type DirectoryFailurePolicy,
} from "./decision-service.js";
import { extProcHandler } from "./ext-proc.js";
import type { CheckResponseOut } from "./response.js";
import { createSidecarLogger } from "./logging.js";
import { SidecarMetrics } from "./metrics.js";
import { ConnectionMemory, type ConnectionMemoryOptions } from "./connections.js";

export interface SidecarServerOptions {
  readonly state: StateSource;
  readonly directory: MailboxDirectory;
  /** Defaults to the real engine (sidecar/decision/engine.ts + identity.ts). */
  readonly engine?: DecisionEngine;
  /** HMAC key for affinity cookies (>= 32 bytes). A random key is made (and a warning logged) when absent. */
  readonly affinityKey?: Buffer;
  readonly affinityTtlSeconds?: number;
  readonly logger?: Logger;
  readonly metrics?: SidecarMetrics;
  readonly lookupTimeoutMs?: number;
  readonly directoryFailurePolicy?: DirectoryFailurePolicy;
  readonly defaultSite?: string;
  /** Envoy's ext_proc config buffers request bodies. */
  readonly extProcBufferedBody?: boolean;
  /** Bounds of the per-connection memory of NTLM/Negotiate connections (R-LB-8). */
  readonly connectionMemory?: ConnectionMemoryOptions;
}

/** Service names the health service reports: "" (overall) and the two Envoy services. */
export const HEALTH_SERVICES = ["", "envoy.service.auth.v3.Authorization", "envoy.service.ext_proc.v3.ExternalProcessor"];

/** The real decision engine (sidecar/decision/engine.ts, identity.ts): the default. */
export const DEFAULT_ENGINE: DecisionEngine = { decide, identityCandidates };

/**
 * envoy.service.auth.v3.Authorization with the hot-path codec (check-codec.ts) for Check: the same
 * protos and wire format, decoded once into the fields the sidecar reads and encoded from cached pieces.
 */
export function sidecarAuthorizationService(): grpc.ServiceDefinition {
  const base = loadEnvoyServices().authorization;
  const check = base.Check!;
  return {
    ...base,
    Check: {
      ...check,
      requestDeserialize: (buf: Buffer) => decodeCheckRequestOrMalformed(buf),
      responseSerialize: (msg: unknown) => encodeCheckResponse(msg as CheckResponseOut),
    },
  };
}

export class SidecarServer {
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  private server: grpc.Server | undefined;
  private service: DecisionService | undefined;
  private readonly health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, "NOT_SERVING"])));
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly o: SidecarServerOptions) {
    this.logger = o.logger ?? createSidecarLogger();
    this.metrics = o.metrics ?? new SidecarMetrics();
  }

  /** The per-request pipeline (also used in-process by the fuzz test). */
  async decisionService(): Promise<DecisionService> {
    if (this.service) return this.service;
    let key = this.o.affinityKey;
    if (!key) {
      this.logger.warn("no affinity key given (--affinity-key-file): using a random key; pins will not survive a restart or be shared between replicas");
      key = randomAffinityKey();
    }
    this.service = new DecisionService({
      state: this.o.state,
      directory: this.o.directory,
      engine: this.o.engine ?? DEFAULT_ENGINE,
      affinity: new AffinitySigner(key, this.o.affinityTtlSeconds),
      logger: this.logger,
      metrics: this.metrics,
      ...(this.o.lookupTimeoutMs !== undefined ? { lookupTimeoutMs: this.o.lookupTimeoutMs } : {}),
      ...(this.o.directoryFailurePolicy ? { directoryFailurePolicy: this.o.directoryFailurePolicy } : {}),
      ...(this.o.defaultSite ? { defaultSite: this.o.defaultSite } : {}),
      connections: new ConnectionMemory(this.o.connectionMemory),
    });
    return this.service;
  }

  ready(): true | string {
    return this.o.state.current() ? true : "no gateway state yet";
  }

  private updateHealth(): void {
    const status = this.o.state.current() ? "SERVING" : "NOT_SERVING";
    for (const s of HEALTH_SERVICES) this.health.setStatus(s, status);
  }

  /** Listen on host:port (port 0 = ephemeral); returns the bound port. */
  async start(port = 0, host = "127.0.0.1"): Promise<number> {
    const svc = await this.decisionService();
    const envoy = loadEnvoyServices();
    const server = new grpc.Server({
      "grpc.max_receive_message_length": 4 * 1024 * 1024,
      // Nothing here serves grpc.channelz.v1, so grpc-js's per-call channelz bookkeeping would
      // never be read; off, it costs nothing on every Check (about 1 us per call measured).
      "grpc.enable_channelz": 0,
    });
    server.addService(sidecarAuthorizationService(), {
      Check: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const ev = svc.evaluateAny(call.request, "ext_authz");
        if (ev instanceof Promise) {
          ev.then(
            (e) => callback(null, e.response),
            // evaluateAny never rejects; this is the last guard so a call always gets an answer.
            () => callback({ code: grpc.status.INTERNAL, details: "cas-gateway sidecar failure" }),
          );
        } else callback(null, ev.response);
      },
    });
    server.addService(envoy.externalProcessor, {
      Process: extProcHandler(svc, { bufferedBody: this.o.extProcBufferedBody ?? false }),
    });
    this.health.addToServer(server);
    this.updateHealth();
    this.unsubscribe = this.o.state.subscribe(() => this.updateHealth());
    const bound = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    this.server = server;
    this.logger.info({ host, port: bound }, "sidecar gRPC listening");
    return bound;
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.service?.flushDecisionLines();
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        s.forceShutdown();
        resolve();
      }, 2000);
      s.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
