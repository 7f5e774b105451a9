// A small admin HTTP server (loopback by default): /metrics (Prometheus text), /healthz (the process
// answers), /readyz (the component has what it needs to serve). Shared by the sidecar and the control plane.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface AdminServerOptions {
  readonly registry: Registry;
  /** Ready when this returns true (or a reason string when not ready). */
  readonly ready: () => true | string;
  readonly host?: string;
  readonly port?: number;
  /** Further GET paths (exact match) → handler, e.g. the gateway pod's /shutdown/drained. */
  readonly routes?: ReadonlyMap<string, (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>>;
  /** Tried first, for any method (e.g. the sidecar's organisation page and POST /explain): true when it answered. */
  readonly handle?: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean>;
}

export class AdminServer {
  private server: http.Server | undefined;

  constructor(private readonly o: AdminServerOptions) {}

  async start(): Promise<{ host: string; port: number }> {
    const server = http.createServer((req, res) => {
      void this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end("internal error\n");
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.port ?? 0, this.o.host ?? "127.0.0.1", () => resolve());
    });
    const a = server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.o.handle && (await this.o.handle(req, res))) return;
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    const route = this.o.routes?.get(path);
    if (route) {
      await route(req, res);
    } else if (path === "/metrics") {
      const body = await this.o.registry.metrics();
      res.writeHead(200, { "content-type": this.o.registry.contentType }).end(body);
    } else if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const r = this.o.ready();
      if (r === true) res.writeHead(200, { "content-type": "text/plain" }).end("ready\n");
      else res.writeHead(503, { "content-type": "text/plain" }).end(`not ready: ${r}\n`);
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
