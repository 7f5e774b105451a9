// A STAND-IN for one Exchange server's IIS, for the kind end-to-end run only: answers every request
// over HTTPS with its own name (body and `x-backend` header), including /<vdir>/healthcheck.htm, so
// the test can see which server Envoy picked. Runs in the cas-gateway image (node, no dependencies).
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const name = process.env.BACKEND_NAME;
const port = Number(process.env.PORT ?? 8443);
if (!name) throw new Error("BACKEND_NAME is required");
const server = createServer({ cert: readFileSync("/tls/tls.crt"), key: readFileSync("/tls/tls.key") }, (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const path = req.url ?? "/";
    const health = /\/healthcheck\.htm$/i.test(path.split("?")[0]);
    const body = health ? `200 OK ${name}\n` : `${name} ${req.method} ${path}\n`;
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "x-backend": name, "content-length": Buffer.byteLength(body) });
    res.end(body);
    if (!health) process.stdout.write(`${JSON.stringify({ backend: name, method: req.method, path, host: req.headers.host, bytes: Buffer.concat(chunks).length })}\n`);
  });
});
server.listen(port, "0.0.0.0", () => process.stdout.write(`${name} listening on ${port}\n`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
