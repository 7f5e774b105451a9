// A provider turns some source of truth (a directory of YAML, the Kubernetes API) into snapshots of
// validated API objects. Downstream stages (topology, xDS, status) only ever see snapshots.
import type { ApiObject } from "../../crds/index.js";
import type { ManifestError } from "./manifests.js";

export interface ProviderSnapshot {
  /** Validated objects that are in force. */
  readonly objects: readonly ApiObject[];
  /** Problems with input that was rejected (the objects above are the last good ones). */
  readonly errors: readonly ManifestError[];
}

export interface Provider {
  /** Start reading; `onSnapshot` is called with the first snapshot and on every accepted change. */
  start(onSnapshot: (snapshot: ProviderSnapshot) => void): Promise<void>;
  stop(): Promise<void>;
}
