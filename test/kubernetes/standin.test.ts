// The kube-apiserver stand-in's own protocol behaviour, checked with plain HTTP, so the operator
// tests rest on a stand-in that behaves like the real server where it matters.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KubeApiserverStandin } from "../kube-apiserver-standin/server.js";
import { waitFor } from "../kube-apiserver-standin/helpers.js";

const SITES = "/apis/casgateway.io/v1alpha1/namespaces/mail/adsites";
const site = (name: string, description = "x") => ({
  apiVersion: "casgateway.io/v1alpha1",
  kind: "ADSite",
  metadata: { name, namespace: "mail" },
  spec: { hostnames: [], description },
});

describe("kube-apiserver stand-in", () => {
  let api: KubeApiserverStandin;
  beforeEach(async () => {
    api = new KubeApiserverStandin();
    await api.start();
  });
  afterEach(() => api.stop());

  const call = async (method: string, path: string, body?: unknown, contentType = "application/json") => {
    const res = await fetch(api.url + path, { method, headers: body ? { "content-type": contentType } : {}, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, body: (await res.json()) as any };
  };

  it("create, list with resourceVersion, 409 on a stale update, generation only on spec changes", async () => {
    const created = await call("POST", SITES, site("usa"));
    expect(created.status).toBe(201);
    expect(created.body.metadata).toMatchObject({ generation: 1, uid: expect.any(String), resourceVersion: expect.any(String) });
    expect((await call("POST", SITES, site("usa"))).status).toBe(409);
    const list = await call("GET", SITES);
    expect(list.body).toMatchObject({ kind: "ADSiteList", metadata: { resourceVersion: api.currentResourceVersion } });
    const stale = { ...site("usa", "changed"), metadata: { ...site("usa").metadata, resourceVersion: "1" } };
    expect((await call("PUT", `${SITES}/usa`, stale)).status).toBe(409);
    const put = await call("PUT", `${SITES}/usa`, { ...stale, metadata: { ...stale.metadata, resourceVersion: created.body.metadata.resourceVersion } });
    expect(put.body.metadata.generation).toBe(2);
    const labelsOnly = await call("PUT", `${SITES}/usa`, { ...put.body, metadata: { ...put.body.metadata, labels: { a: "b" } } });
    expect(labelsOnly.body.metadata.generation).toBe(2);
  });

  it("/status takes only merge patches, changes only status, and checks resourceVersion when given", async () => {
    const created = (await call("POST", SITES, site("usa"))).body;
    expect((await call("PATCH", `${SITES}/usa/status`, { status: {} }, "application/json-patch+json")).status).toBe(415);
    expect((await call("PATCH", `${SITES}/usa/status`, { metadata: { resourceVersion: "1" }, status: {} }, "application/merge-patch+json")).status).toBe(409);
    const ok = await call(
      "PATCH",
      `${SITES}/usa/status`,
      { metadata: { resourceVersion: created.metadata.resourceVersion }, spec: { description: "ignored" }, status: { observedGeneration: 1, conditions: [] } },
      "application/merge-patch+json",
    );
    expect(ok.status).toBe(200);
    expect(ok.body.spec.description).toBe("x");
    expect(ok.body.status).toEqual({ observedGeneration: 1, conditions: [] });
    expect(ok.body.metadata.generation).toBe(1);
  });

  it("watch: events after the resourceVersion, ERROR 410 once compacted, bookmarks only when asked", async () => {
    await call("POST", SITES, site("a"));
    const rv = api.currentResourceVersion;
    await call("POST", SITES, site("b"));
    const read = async (query: string, n: number) => {
      const ctl = new AbortController();
      const res = await fetch(`${api.url}${SITES}?watch=true&${query}`, { signal: ctl.signal });
      const reader = res.body!.getReader();
      const lines: any[] = [];
      let buf = "";
      while (lines.length < n) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += new TextDecoder().decode(value);
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          lines.push(JSON.parse(buf.slice(0, i)));
          buf = buf.slice(i + 1);
        }
      }
      ctl.abort();
      return lines;
    };
    const ev = await read(`resourceVersion=${rv}`, 1);
    expect(ev[0]).toMatchObject({ type: "ADDED", object: { metadata: { name: "b" } } });
    api.compact();
    const gone = await read(`resourceVersion=${rv}`, 1);
    expect(gone[0]).toMatchObject({ type: "ERROR", object: { code: 410, reason: "Expired" } });
    const p = read(`resourceVersion=${api.currentResourceVersion}&allowWatchBookmarks=true`, 1);
    await waitFor("watch open", () => api.openWatches >= 1);
    api.bookmark();
    expect((await p)[0]).toMatchObject({ type: "BOOKMARK", object: { metadata: { resourceVersion: api.currentResourceVersion } } });
  });
});
