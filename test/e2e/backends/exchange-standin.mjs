// A STAND-IN for one Exchange server's IIS, for the kind end-to-end run only: answers every request
// over HTTPS with its own name (body and `x-backend` header), including /<vdir>/healthcheck.htm, so
// the test can see which server Envoy picked. An ActiveSync Ping (Cmd=Ping) is held open for
// PING_HOLD_SECONDS (default 45) before the answer, as Exchange holds a Ping for its heartbeat
// interval: the e2e run rolls the gateway out while one is open. Runs in the cas-gateway image
// (node, no dependencies).
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const name = process.env.BACKEND_NAME;
const port = Number(process.env.PORT ?? 8443);
const tlsDir = process.env.TLS_DIR ?? "/tls";
const pingHoldMs = Number(process.env.PING_HOLD_SECONDS ?? 45) * 1000;
if (!name) throw new Error("BACKEND_NAME is required");
const server = createServer({ cert: readFileSync(`${tlsDir}/tls.crt`), key: readFileSync(`${tlsDir}/tls.key`) }, (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const path = req.url ?? "/";
    const [pathname, query = ""] = path.split("?");
    const health = /\/healthcheck\.htm$/i.test(pathname);
    const ping = /^\/Microsoft-Server-ActiveSync/i.test(pathname) && new URLSearchParams(query).get("Cmd") === "Ping";
    const started = Date.now();
    const answer = () => {
      const body = health ? `200 OK ${name}\n` : ping ? `${name} Ping answered after ${Date.now() - started} ms\n` : `${name} ${req.method} ${path}\n`;
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "x-backend": name, "content-length": Buffer.byteLength(body) });
      res.end(body);
      if (!health) process.stdout.write(`${JSON.stringify({ backend: name, method: req.method, path, host: req.headers.host, bytes: Buffer.concat(chunks).length, ms: Date.now() - started })}\n`);
    };
    if (ping) {
      const t = setTimeout(answer, pingHoldMs);
      res.on("close", () => clearTimeout(t));
    } else answer();
  });
});
server.listen(port, "0.0.0.0", () => process.stdout.write(`${name} listening on ${server.address().port}\n`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
