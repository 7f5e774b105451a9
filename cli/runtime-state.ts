// What the `sidecar` and `mail-proxy` commands both need before they can decide: a StateSource
// (topology + health from manifest files, or from the control plane over xDS) and a mailbox
// directory (a CSV, loaded with the files and swapped on reload; or LDAP, opened once, cached, live).
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { formatError } from "../operator/provider/manifests.js";
import { loadOrganisation } from "../operator/provider/organisation.js";
import { loadCsvDirectory } from "../model/directory/csv-directory.js";
import { isLdapDirectorySpec, openDirectory, type DirectoryOptions } from "../sidecar/directory/open-directory.js";
import type { DirectoryView, LookupResult, MailboxDirectory } from "../model/directory/types.js";
import { healthFromDown } from "../model/health.js";
import { SettableStateSource, type StateSource } from "../model/state.js";
import { XdsStateSource } from "../sidecar/state-xds-client.js";
import type { XdsClientTls } from "../model/xds-tls.js";

export interface RuntimeStateInput {
  /** Exactly one of manifests (standalone files) and xds (HOST:PORT of the control plane). */
  readonly manifests?: string;
  readonly xds?: string;
  /** TLS to the ADS server (with xds). */
  readonly xdsTls?: XdsClientTls;
  readonly node: { readonly id?: string; readonly idPrefix: string; readonly cluster: string };
  /** A CSV file or an ldap(s):// URL. */
  readonly directory: string;
  /** Servers (or server/Service) treated as down, with --manifests. */
  readonly down: readonly string[];
  readonly directoryOptions: DirectoryOptions;
  readonly registry: Registry;
  readonly logger: Logger;
}

export interface RuntimeState {
  readonly state: StateSource;
  readonly directory: MailboxDirectory;
  /** Re-read the files (SIGHUP); a bad reload keeps the last good state and returns false. */
  reload(): Promise<boolean>;
  stop(): Promise<void>;
}

/** A CSV directory whose content can be swapped on reload (keeps the synchronous find fast path). */
class SwappableDirectory implements MailboxDirectory, DirectoryView {
  constructor(private current: MailboxDirectory & DirectoryView) {}
  swap(d: MailboxDirectory & DirectoryView): void {
    this.current = d;
  }
  lookup(identity: string): Promise<LookupResult> {
    return this.current.lookup(identity);
  }
  find(identity: string): LookupResult {
    return this.current.find(identity);
  }
}

export async function openRuntimeState(input: RuntimeStateInput): Promise<RuntimeState> {
  const { logger } = input;
  const health = healthFromDown(input.down);
  const csvFile = isLdapDirectorySpec(input.directory) ? undefined : input.directory;
  const loadFiles = async (manifests: string) => {
    const org = await loadOrganisation(manifests, csvFile);
    for (const w of org.warnings) logger.warn({ problem: formatError(w) }, "manifest warning");
    if (org.errors.length || (csvFile && !org.directory)) {
      for (const e of org.errors) logger.error({ problem: formatError(e) }, "manifest error");
      throw new Error(`${org.errors.length} problem(s) in ${manifests}${csvFile ? ` / ${csvFile}` : ""}; see the log`);
    }
    return { topology: org.topology, directory: org.directory };
  };

  let state: StateSource | undefined;
  const first = input.manifests ? await loadFiles(input.manifests) : undefined;
  let swappable: SwappableDirectory | undefined;
  let directory: MailboxDirectory;
  if (csvFile) {
    swappable = new SwappableDirectory(first?.directory ?? (await loadCsvDirectory(csvFile)));
    directory = swappable;
  } else {
    directory = await openDirectory(input.directory, {
      ...input.directoryOptions,
      // homeMDB -> database name: prefer the name the current topology knows.
      knownDatabase: (n) => state?.current()?.topology.findDatabase(n) !== undefined,
      registry: input.registry,
      logger: logger.child({ component: "directory" }),
    });
  }
  let settable: SettableStateSource | undefined;
  let xds: XdsStateSource | undefined;
  if (first) {
    settable = new SettableStateSource({ topology: first.topology, health, version: `${first.topology.version}/0` });
    state = settable;
  } else {
    xds = new XdsStateSource({
      address: input.xds!,
      ...(input.xdsTls ? { tls: input.xdsTls } : {}),
      node: { id: input.node.id ?? `${input.node.idPrefix}-${hostname()}`, cluster: input.node.cluster },
      logger: logger.child({ component: "xds" }),
    }).start();
    state = xds;
  }

  return {
    state,
    directory,
    async reload() {
      try {
        if (input.manifests && settable) {
          const next = await loadFiles(input.manifests);
          if (swappable && next.directory) swappable.swap(next.directory);
          settable.set({ topology: next.topology, health, version: `${next.topology.version}/0` });
          logger.info({ topology: next.topology.version }, "reloaded");
        } else if (swappable && csvFile) {
          swappable.swap(await loadCsvDirectory(csvFile));
          logger.info("mailbox directory reloaded");
        }
        return true;
      } catch (err) {
        logger.error({ err: err instanceof Error ? err.message : String(err) }, "reload failed; keeping the last good state");
        return false;
      }
    },
    async stop() {
      await xds?.stop();
      await directory.close?.();
    },
  };
}
