// LDAP mailbox directory speed: cold look-ups (no cache) per second against a real slapd holding
// 10,000 mailboxes (loaded with slapadd), and cache-hit look-ups per second. Medians over runs.
import { Registry } from "prom-client";
import { CachedDirectory } from "../sidecar/directory/cached-directory.js";
import { LdapDirectory } from "../sidecar/directory/ldap-directory.js";
import { bulkGuid, bulkLdif } from "../test/ldap/fixtures.js";
import { BASE_DN, BIND_DN, BIND_PASSWORD, slapdMissing, startSlapd } from "../test/ldap/slapd.js";
import { type BenchRow, median, percentile } from "./types.js";

const USERS = 10_000;
const RUNS = 5;
const COLD_PER_RUN = 2_000;
const HITS_PER_RUN = 200_000;
const CONCURRENCY = 32;

/** Identity forms spread like real traffic: SMTP, UPN-ish alias, DOMAIN\sam, GUID. */
function identity(i: number): string {
  const n = i % USERS;
  const id = `user${String(n).padStart(5, "0")}`;
  switch (i % 4) {
    case 0:
      return `${id}@contoso.com`;
    case 1:
      return `${id}@bulk.contoso.com`;
    case 2:
      return `CONTOSO\\${id}`;
    default:
      return bulkGuid(n);
  }
}

async function runConcurrent(total: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) await fn(next++);
    }),
  );
  return (performance.now() - t0) / 1000;
}

export default async function bench(): Promise<BenchRow[]> {
  const missing = slapdMissing();
  if (missing) {
    process.stderr.write(`bench ldap: skipped: ${missing}\n`);
    return [];
  }
  const t0 = performance.now();
  const { ldif, topology } = await bulkLdif(USERS);
  const slapd = await startSlapd({ ldif });
  const loadSeconds = (performance.now() - t0) / 1000;
  const ldap = new LdapDirectory({
    url: slapd.url,
    baseDn: BASE_DN,
    bindDn: BIND_DN,
    password: BIND_PASSWORD,
    poolSize: 4,
    timeoutMs: 5000,
    knownDatabase: (n) => topology.findDatabase(n) !== undefined,
  });
  try {
    // Warm the pool, and check the data answers before measuring.
    for (let i = 0; i < 8; i++) {
      const r = await ldap.lookup(identity(i));
      if (r.status !== "found") throw new Error(`bench data broken: ${identity(i)} -> ${JSON.stringify(r)}`);
    }
    const coldRates: number[] = [];
    const coldLat: number[] = [];
    let failures = 0;
    for (let run = 0; run < RUNS; run++) {
      const offset = run * 7919;
      const secs = await runConcurrent(COLD_PER_RUN, async (i) => {
        const s = performance.now();
        const r = await ldap.lookup(identity(offset + i * 13));
        coldLat.push(performance.now() - s);
        if (r.status !== "found") failures++;
      });
      coldRates.push(COLD_PER_RUN / secs);
    }

    const cached = new CachedDirectory(ldap, {
      ttlMs: 3_600_000,
      negativeTtlMs: 60_000,
      maxEntries: 100_000,
      maxStaleMs: 0,
      registry: new Registry(),
    });
    const hot = Array.from({ length: 1000 }, (_, i) => identity(i * 10));
    for (const id of hot) await cached.lookup(id);
    const hitRates: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const s = performance.now();
      for (let i = 0; i < HITS_PER_RUN; i++) await cached.lookup(hot[i % hot.length]);
      hitRates.push(HITS_PER_RUN / ((performance.now() - s) / 1000));
    }
    if (cached.stats.misses !== hot.length) throw new Error(`cache-hit bench missed: ${JSON.stringify(cached.stats)}`);

    return [
      {
        suite: "directory",
        metric: `ldap cold look-ups (slapd, ${USERS.toLocaleString("en-US")} mailboxes, ${CONCURRENCY} concurrent, pool 4)`,
        value: median(coldRates),
        unit: "look-ups/s",
        note: `${RUNS} runs x ${COLD_PER_RUN}; latency p50 ${median(coldLat).toFixed(2)} ms p99 ${percentile(coldLat, 99).toFixed(2)} ms; not found ${failures}; slapadd+start ${loadSeconds.toFixed(1)} s`,
      },
      {
        suite: "directory",
        metric: "ldap cache-hit look-ups (CachedDirectory, 1,000 hot identities)",
        value: median(hitRates),
        unit: "look-ups/s",
        note: `${RUNS} runs x ${HITS_PER_RUN.toLocaleString("en-US")}, sequential awaits`,
      },
    ];
  } finally {
    await ldap.close();
    await slapd.close();
  }
}
