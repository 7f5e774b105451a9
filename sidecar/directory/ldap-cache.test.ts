// CachedDirectory (cache in front of the LDAP directory) with a scripted inner directory and a fake clock.
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { CachedDirectory, type CachedDirectoryOptions } from "./cached-directory.js";
import type { LookupResult, MailboxDirectory, MailboxRecord } from "../../model/directory/types.js";

const rec = (addr: string, database = "DB1"): MailboxRecord => ({ primarySmtpAddress: addr, database, emailAddresses: [addr] });

class Scripted implements MailboxDirectory {
  calls: string[] = [];
  down = false;
  db = "DB1";
  readonly known = new Set(["alice@x", "bob@x", "carol@x", "dave@x"]);
  gate?: Promise<void>;
  async lookup(id: string): Promise<LookupResult> {
    this.calls.push(id);
    if (this.gate) await this.gate;
    if (this.down) return { status: "unavailable", reason: "connect ECONNREFUSED" };
    const k = id.toLowerCase();
    return this.known.has(k) ? { status: "found", mailbox: rec(k, this.db) } : { status: "not-found" };
  }
}

function setup(o: Partial<CachedDirectoryOptions> = {}) {
  const inner = new Scripted();
  const clock = { now: 0 };
  const registry = new Registry();
  const cache = new CachedDirectory(inner, {
    ttlMs: 1000,
    negativeTtlMs: 100,
    maxEntries: 3,
    maxStaleMs: 10_000,
    errorBackoffMs: 0,
    registry,
    now: () => clock.now,
    ...o,
  });
  return { inner, clock, cache, registry };
}

describe("CachedDirectory", () => {
  it("serves hits until the TTL, case-insensitively, then asks again (follows a database move)", async () => {
    const { inner, clock, cache } = setup();
    expect(await cache.lookup("alice@x")).toMatchObject({ status: "found" });
    expect(await cache.lookup("ALICE@x")).toMatchObject({ status: "found" });
    expect(inner.calls).toEqual(["alice@x"]);
    inner.db = "DB2";
    clock.now = 999;
    expect(await cache.lookup("alice@x")).toMatchObject({ mailbox: { database: "DB1" } });
    clock.now = 1000;
    expect(await cache.lookup("alice@x")).toMatchObject({ mailbox: { database: "DB2" } });
    expect(cache.stats).toMatchObject({ hits: 2, misses: 2 });
  });

  it("caches not-found for the shorter negative TTL", async () => {
    const { inner, clock, cache } = setup();
    expect((await cache.lookup("new@x")).status).toBe("not-found");
    clock.now = 50;
    expect((await cache.lookup("new@x")).status).toBe("not-found");
    expect(inner.calls).toHaveLength(1);
    inner.known.add("new@x");
    clock.now = 100;
    expect((await cache.lookup("new@x")).status).toBe("found");
  });

  it("is bounded: least recently used entries go first", async () => {
    const { inner, cache } = setup();
    for (const id of ["alice@x", "bob@x", "carol@x"]) await cache.lookup(id);
    await cache.lookup("alice@x"); // alice is now most recent; bob is the oldest
    await cache.lookup("dave@x");
    expect(cache.size).toBe(3);
    inner.calls = [];
    await cache.lookup("alice@x");
    await cache.lookup("carol@x");
    await cache.lookup("dave@x");
    expect(inner.calls).toEqual([]);
    await cache.lookup("bob@x");
    expect(inner.calls).toEqual(["bob@x"]);
  });

  it("stale-on-error: earlier answers keep being served (found and not-found), new users get the policy", async () => {
    const { inner, clock, cache, registry } = setup();
    await cache.lookup("alice@x");
    await cache.lookup("ghost@x");
    inner.down = true;
    clock.now = 5000; // both expired
    expect(await cache.lookup("alice@x")).toMatchObject({ status: "found", mailbox: { primarySmtpAddress: "alice@x" } });
    expect((await cache.lookup("ghost@x")).status).toBe("not-found");
    const fresh = await cache.lookup("bob@x");
    expect(fresh).toEqual({ status: "unavailable", reason: "connect ECONNREFUSED" });
    expect(cache.stats).toMatchObject({ staleServed: 2, errors: 3 });
    // Past maxStale, an old answer is no longer served.
    clock.now = 1000 + 10_000;
    expect((await cache.lookup("alice@x")).status).toBe("unavailable");
    // Back up: fresh answers, no more stale.
    inner.down = false;
    expect((await cache.lookup("bob@x")).status).toBe("found");
    const text = await registry.metrics();
    expect(text).toContain('cas_directory_cache_stale_served_total{directory="default"} 2');
    expect(text).toContain('cas_directory_errors_total{directory="default"} 4');
    expect(text).not.toMatch(/cas_directory_cache_hits_total\{directory="default"\}/);
    expect(text).toMatch(/cas_directory_cache_misses_total\{directory="default"\} 7/);
  });

  it("fail policy not-found answers unseen users not-found while the directory is down", async () => {
    const { inner, cache } = setup({ failPolicy: "not-found" });
    inner.down = true;
    expect((await cache.lookup("alice@x")).status).toBe("not-found");
  });

  it("unavailable answers are never cached", async () => {
    const { inner, cache } = setup();
    inner.down = true;
    await cache.lookup("alice@x");
    inner.down = false;
    expect((await cache.lookup("alice@x")).status).toBe("found");
    expect(inner.calls).toHaveLength(2);
  });

  it("after failures in a row the directory is not asked again for errorBackoffMs; one failure does not back off", async () => {
    const { inner, clock, cache } = setup({ errorBackoffMs: 500, errorBackoffAfter: 2 });
    inner.down = true;
    await cache.lookup("alice@x");
    inner.down = false;
    expect((await cache.lookup("bob@x")).status).toBe("found"); // a single failure: still asked
    inner.down = true;
    await cache.lookup("carol@x");
    await cache.lookup("dave@x"); // second in a row: backs off from now (t=0) to t=500
    inner.calls = [];
    clock.now = 100;
    expect((await cache.lookup("zed@x")).status).toBe("unavailable");
    expect(inner.calls).toEqual([]);
    inner.down = false;
    clock.now = 500;
    expect((await cache.lookup("carol@x")).status).toBe("found");
    expect(inner.calls).toEqual(["carol@x"]);
  });

  it("coalesces concurrent look-ups of one identity into one directory call", async () => {
    const { inner, cache } = setup();
    let open!: () => void;
    inner.gate = new Promise((r) => (open = r));
    const all = Promise.all([cache.lookup("alice@x"), cache.lookup("Alice@X"), cache.lookup("alice@x "), cache.lookup("bob@x")]);
    open();
    const rs = await all;
    expect(rs.map((r) => r.status)).toEqual(["found", "found", "found", "found"]);
    expect(inner.calls).toEqual(["alice@x", "bob@x"]);
    expect(cache.stats.coalesced).toBe(2);
  });

  it("an inner directory that throws is treated as unavailable", async () => {
    const cache = new CachedDirectory(
      { lookup: () => Promise.reject(new Error("boom")) },
      { ttlMs: 1, negativeTtlMs: 1, maxEntries: 1, maxStaleMs: 1, registry: new Registry() },
    );
    expect(await cache.lookup("x")).toEqual({ status: "unavailable", reason: "boom" });
  });

  it("two caches can share one registry (labelled by name)", async () => {
    const registry = new Registry();
    const a = new CachedDirectory(new Scripted(), { ttlMs: 1000, negativeTtlMs: 1, maxEntries: 10, maxStaleMs: 0, registry, name: "a" });
    const b = new CachedDirectory(new Scripted(), { ttlMs: 1000, negativeTtlMs: 1, maxEntries: 10, maxStaleMs: 0, registry, name: "b" });
    await a.lookup("alice@x");
    await a.lookup("alice@x");
    await b.lookup("alice@x");
    const text = await registry.metrics();
    expect(text).toContain('cas_directory_cache_hits_total{directory="a"} 1');
    expect(text).toContain('cas_directory_cache_misses_total{directory="b"} 1');
    expect(text).toContain('cas_directory_cache_entries{directory="a"} 1');
  });

  describe("a hung directory (its searches never answer while `gate` is held)", () => {
    const hang = (inner: Scripted) => {
      let release!: () => void;
      inner.gate = new Promise<void>((r) => (release = r));
      return () => {
        inner.gate = undefined;
        release();
      };
    };

    it("a look-up that misses the caller's deadline gets the stale entry at once; the search goes on and fills the cache", async () => {
      const { inner, clock, cache, registry } = setup({ maxEntries: 100 });
      expect(await cache.lookup("alice@x")).toMatchObject({ status: "found" });
      clock.now = 5000; // expired, within maxStale
      const release = hang(inner);
      const started = performance.now();
      const r = await cache.lookup("alice@x", { deadlineMs: 30 });
      expect(performance.now() - started).toBeLessThan(1000);
      expect(r).toMatchObject({ status: "found", mailbox: { database: "DB1" } });
      expect(cache.stats).toMatchObject({ staleServed: 1, deadlineMissed: 1 });
      // An unseen user gets the fail policy at the deadline, not after the directory's own timeout.
      expect(await cache.lookup("bob@x", { deadlineMs: 30 })).toMatchObject({ status: "unavailable", reason: "directory did not answer within 30 ms" });
      inner.db = "DB2";
      release();
      await new Promise((x) => setTimeout(x, 10));
      expect(await cache.lookup("alice@x", { deadlineMs: 30 })).toMatchObject({ mailbox: { database: "DB2" } });
      expect(cache.stats.hits).toBeGreaterThanOrEqual(1);
      expect(await registry.metrics()).toMatch(/cas_directory_deadline_missed_total\{directory="default"\} 2/);
    });

    it("deadline misses count for the back-off: after 3 the directory is not asked again for errorBackoffMs", async () => {
      const { inner, clock, cache } = setup({ maxEntries: 100, errorBackoffMs: 1000 });
      const release = hang(inner);
      try {
        for (const id of ["a@x", "b@x", "c@x"]) expect((await cache.lookup(id, { deadlineMs: 5 })).status).toBe("unavailable");
        expect(inner.calls).toEqual(["a@x", "b@x", "c@x"]);
        // Backing off: answered at once, the hung directory is not asked.
        expect((await cache.lookup("d@x", { deadlineMs: 5000 })).status).toBe("unavailable");
        expect(inner.calls).toHaveLength(3);
        clock.now = 1001;
        expect((await cache.lookup("e@x", { deadlineMs: 5 })).status).toBe("unavailable");
        expect(inner.calls).toHaveLength(4);
      } finally {
        release();
      }
      // The late answers neither count again nor clear the count; an answer in time does.
      await new Promise((x) => setTimeout(x, 10));
      clock.now = 5000;
      expect(await cache.lookup("alice@x", { deadlineMs: 1000 })).toMatchObject({ status: "found" });
      expect((await cache.lookup("zed@x", { deadlineMs: 1000 })).status).toBe("not-found");
    });

    it("at most maxInFlight searches run at once; further misses are answered as if the directory were down", async () => {
      const { inner, cache, registry } = setup({ maxEntries: 100, maxInFlight: 4, errorBackoffAfter: 1000 });
      const release = hang(inner);
      try {
        const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => cache.lookup(`user${i}@x`, { deadlineMs: 20 })));
        expect(answers.every((a) => a.status === "unavailable")).toBe(true);
        expect(inner.calls).toHaveLength(4);
        expect(cache.stats.shed).toBe(16);
        expect(await registry.metrics()).toMatch(/cas_directory_shed_total\{directory="default"\} 16/);
      } finally {
        release();
      }
      await new Promise((x) => setTimeout(x, 10));
      expect(await cache.lookup("alice@x", { deadlineMs: 1000 })).toMatchObject({ status: "found" });
    });
  });
});
