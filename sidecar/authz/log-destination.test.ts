import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BufferedDestination } from "./log-destination.js";
import { createSidecarLogger } from "./logging.js";

describe("BufferedDestination", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const file = () => {
    const d = mkdtempSync(path.join(tmpdir(), "cas-logdest-"));
    dirs.push(d);
    return path.join(d, "log");
  };

  it("writes every line in order, across batch boundaries, including lines larger than a batch and non-ASCII", () => {
    const f = file();
    const dest = new BufferedDestination(f, { bufferBytes: 1024 });
    const lines: string[] = [];
    for (let i = 0; i < 500; i++) lines.push(`{"i":${i},"s":"${"é€".repeat(i % 7)}"}\n`);
    lines.splice(250, 0, `{"big":"${"x".repeat(5000)}"}\n`);
    for (const l of lines) dest.write(l);
    dest.end();
    expect(readFileSync(f, "utf8")).toBe(lines.join(""));
  });

  it("nothing is written before a flush; flush (pino's logger.flush) writes what is pending", () => {
    const f = file();
    const dest = new BufferedDestination(f);
    dest.write("a\n");
    expect(readFileSync(f, "utf8")).toBe("");
    dest.flush();
    expect(readFileSync(f, "utf8")).toBe("a\n");
    dest.end();
  });

  it("the sidecar logger through it: one JSON line per call with its rid, credentials redacted", () => {
    const f = file();
    const dest = new BufferedDestination(f);
    const log = createSidecarLogger({ destination: dest });
    for (let i = 0; i < 1000; i++) log.info({ rid: `r${i}`, decision: "local", authorization: "Basic c2VjcmV0" }, "decision");
    dest.end();
    const out = readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(out).toHaveLength(1000);
    expect(out[999]).toMatchObject({ rid: "r999", msg: "decision", authorization: "[redacted]" });
  });
});
