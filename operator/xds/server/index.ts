export { AdsServer, type AdsServerOptions } from "./server.js";
export { SnapshotCache, DEFAULT_GROUP, byCluster, byNodeIdHash, type NodeGroupFn, type NodeInfo } from "./cache.js";
export { Snapshot, type SnapshotResource } from "./snapshot.js";
export { TYPE_URLS, PUSH_ORDER, type XdsResource } from "./resources.js";
export type { StreamStatus, TypeStatus } from "./stream.js";
