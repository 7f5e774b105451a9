// The control plane's glue: provider snapshots → buildTopology → xDS translation → snapshot cache
// (served by the ADS server), plus the health down-list → GatewayState (for sidecars over xDS) and
// an in-process StateSource (standalone mode). Health changes do not re-translate: they only change
// the GatewayState resource.
import { pino, type Logger } from "pino";
import type { ApiObject } from "../crds/index.js";
import type { ManifestError } from "./provider/manifests.js";
import type { Provider, ProviderSnapshot } from "./provider/types.js";
import { buildTopology } from "../model/topology/build.js";
import type { Topology } from "../model/topology/types.js";
import { DEFAULT_GROUP, type SnapshotCache } from "./xds/server/cache.js";
import { gatewayStateResource, gatewayStateVersion } from "../model/gateway-state.js";
import type { XdsResource } from "./xds/server/resources.js";
import { Snapshot } from "./xds/server/snapshot.js";
import type { EnvoyResources, TranslateOptions, XdsProblem } from "./xds/translate/types.js";
import { healthFromDown } from "../model/health.js";
import { SettableStateSource, type StateSource } from "../model/state.js";

/** What the control plane needs from a health prober: the current down-list, and changes to it. */
export interface DownListSource {
  /** Keys "server" or "server/Service" (model/health.ts). */
  down(): readonly string[];
  subscribe(listener: (down: readonly string[]) => void): () => void;
}

/** The translator's signature (operator/xds/translate), injected so this module does not depend on it being present. */
export type TranslateFn = (topology: Topology, options: TranslateOptions) => EnvoyResources;

export interface ControlPlaneOptions {
  readonly provider: Provider;
  readonly cache: SnapshotCache;
  /** Without a translator only the GatewayState type is served (sidecars work, Envoy gets nothing). */
  readonly translate?: { readonly fn: TranslateFn; readonly options: TranslateOptions };
  readonly health?: DownListSource;
  /** Node group to set (default: the default group, for every node). */
  readonly group?: string;
  readonly logger?: Logger;
}

export interface ControlPlaneView {
  readonly objects: readonly ApiObject[];
  readonly topology: Topology;
  readonly providerErrors: readonly ManifestError[];
  readonly translation: EnvoyResources | undefined;
  readonly translationProblems: readonly XdsProblem[];
  readonly down: readonly string[];
  readonly snapshot: Snapshot;
}

export class ControlPlane {
  private readonly log: Logger;
  private readonly stateSource = new SettableStateSource();
  private view: ControlPlaneView | undefined;
  private objects: readonly ApiObject[] = [];
  private topology: Topology | undefined;
  private translation: EnvoyResources | undefined;
  private providerErrors: readonly ManifestError[] = [];
  private down: readonly string[] = [];
  private unsubscribeHealth: (() => void) | undefined;
  private readonly listeners = new Set<(v: ControlPlaneView) => void>();

  private translator: ControlPlaneOptions["translate"];

  constructor(private readonly o: ControlPlaneOptions) {
    this.log = o.logger ?? pino({ name: "controlplane", level: process.env.LOG_LEVEL ?? "info" });
    this.translator = o.translate;
  }

  /** Set the translator before start() (when its options depend on ports bound after construction). */
  setTranslator(t: NonNullable<ControlPlaneOptions["translate"]>): void {
    this.translator = t;
  }

  /** The topology + health for an in-process sidecar (standalone mode). */
  get state(): StateSource {
    return this.stateSource;
  }

  current(): ControlPlaneView | undefined {
    return this.view;
  }

  /** Called after every snapshot published to the cache. */
  onUpdate(listener: (v: ControlPlaneView) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    if (this.o.health) {
      this.down = [...this.o.health.down()];
      this.unsubscribeHealth = this.o.health.subscribe((down) => {
        this.down = [...down];
        if (this.topology) this.publish("health");
      });
    }
    await this.o.provider.start((s) => this.onProviderSnapshot(s));
  }

  async stop(): Promise<void> {
    this.unsubscribeHealth?.();
    await this.o.provider.stop();
  }

  private onProviderSnapshot(s: ProviderSnapshot): void {
    this.providerErrors = s.errors;
    for (const e of s.errors) this.log.warn({ file: e.file, line: e.line, field: e.field, kind: e.kind, name: e.name }, e.message);
    const topology = buildTopology(s.objects);
    if (this.topology && topology.version === this.topology.version) {
      if (this.view) this.view = { ...this.view, providerErrors: s.errors };
      return; // only the reported errors changed: nothing to push
    }
    this.objects = s.objects;
    this.topology = topology;
    if (this.translator) {
      const started = performance.now();
      try {
        this.translation = this.translator.fn(topology, this.translator.options);
      } catch (err) {
        // Keep serving what was in force: a translator bug must not take the fleet's config away.
        this.log.error({ err, topologyVersion: topology.version }, "translation failed; previous resources stay in force");
        return;
      }
      for (const p of this.translation.problems) this.log.warn({ kind: p.kind, name: p.name, field: p.field, reason: p.reason }, p.message);
      this.log.info({ topologyVersion: topology.version, ms: Math.round(performance.now() - started) }, "translated");
    }
    this.publish("topology");
  }

  private publish(cause: "topology" | "health"): void {
    const topology = this.topology!;
    const t = this.translation;
    // The translator's lists go in as they are (sorted, marked so); the previous snapshot lets
    // unchanged resources (same objects from the translator's caches) be matched by identity.
    const lists: (readonly XdsResource[])[] = t ? [t.clusters, t.endpoints, t.listeners, t.routes, t.secrets] : [];
    lists.push([gatewayStateResource(this.objects, topology.version, this.down)]);
    const snapshot = new Snapshot({ lists }, topology.version, this.view?.snapshot);
    this.view = {
      objects: this.objects,
      topology,
      providerErrors: this.providerErrors,
      translation: t,
      translationProblems: t?.problems ?? [],
      down: this.down,
      snapshot,
    };
    this.o.cache.setSnapshot(this.o.group ?? DEFAULT_GROUP, snapshot);
    this.stateSource.set({ topology, health: healthFromDown(this.down), version: gatewayStateVersion(topology.version, this.down) });
    this.log.info({ cause, topologyVersion: topology.version, resources: snapshot.size(), down: this.down.length }, "snapshot published");
    for (const l of this.listeners) l(this.view);
  }
}
