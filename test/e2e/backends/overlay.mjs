// For the kind end-to-end run: turns examples/contoso into what a kind cluster can serve.
//  - org.yaml: the example's casgateway.io objects in namespace `mail`, each ClientAccessServer
//    pointed (spec.address) at its stand-in backend Service and told not to verify the stand-in's
//    self-signed certificate (spec.tls.insecureSkipVerify, reported as a warning condition), and each
//    POP3/IMAP4 directory's connection settings pointed at its site's Dovecot.
//  - backends.yaml: namespace cas-backends with one HTTPS stand-in per server (exchange-standin.mjs,
//    answering with the server's name) and one Dovecot per site (a folder named Site-<site> tells
//    which site a login reached).
// Usage: node test/e2e/backends/overlay.mjs <out-dir> <cas-gateway image>
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, stringify } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..", "..");
const [outDir, image] = process.argv.slice(2);
if (!outDir || !image) {
  process.stderr.write("usage: overlay.mjs <out-dir> <cas-gateway image>\n");
  process.exit(2);
}
const BACKENDS_NS = "cas-backends";
const ORG_NS = "mail";
const DOVECOT_IMAGE = "dovecot/dovecot:2.3.21";
const svcHost = (name) => `${name}.${BACKENDS_NS}.svc.cluster.local`;

const exampleDir = join(repo, "examples", "contoso");
const objects = [];
for (const f of readdirSync(exampleDir).filter((n) => n.endsWith(".yaml")).sort()) {
  for (const doc of parseAllDocuments(readFileSync(join(exampleDir, f), "utf8"))) {
    const o = doc.toJS();
    if (o && typeof o === "object" && String(o.apiVersion).startsWith("casgateway.io/")) objects.push(o);
  }
}
const servers = objects.filter((o) => o.kind === "ClientAccessServer");
const sites = objects.filter((o) => o.kind === "ADSite").map((s) => s.metadata.name);
const siteOf = new Map(servers.map((s) => [s.metadata.name, s.spec.site]));

const org = objects.map((o) => {
  const c = structuredClone(o);
  c.metadata = { ...c.metadata, namespace: ORG_NS };
  if (c.kind === "ClientAccessServer") {
    c.spec.address = `${svcHost(`exch-${c.metadata.name}`)}:443`;
    c.spec.tls = { ...(c.spec.tls ?? {}), insecureSkipVerify: true };
  }
  if (c.kind === "VirtualDirectory" && (c.spec.service === "Pop3" || c.spec.service === "Imap4")) {
    const dovecot = svcHost(`dovecot-${siteOf.get(c.spec.server)}`);
    for (const key of ["internalConnectionSettings", "externalConnectionSettings"]) {
      if (Array.isArray(c.spec[key]) && key === "internalConnectionSettings") {
        c.spec[key] = c.spec[key].map((s) => ({ ...s, hostname: dovecot }));
      }
    }
  }
  return c;
});

const labels = (app) => ({ "app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "cas-gateway-e2e" });
const backends = [
  { apiVersion: "v1", kind: "Namespace", metadata: { name: BACKENDS_NS } },
  {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "exchange-standin", namespace: BACKENDS_NS },
    data: { "server.mjs": readFileSync(join(here, "exchange-standin.mjs"), "utf8") },
  },
];
for (const s of servers) {
  const name = `exch-${s.metadata.name}`;
  backends.push(
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: BACKENDS_NS, labels: labels(name) },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels(name) },
        template: {
          metadata: { labels: labels(name) },
          spec: {
            containers: [
              {
                name: "iis",
                image,
                imagePullPolicy: "Never",
                command: ["node", "/app-backend/server.mjs"],
                env: [{ name: "BACKEND_NAME", value: s.metadata.name }, { name: "PORT", value: "8443" }],
                ports: [{ name: "https", containerPort: 8443 }],
                readinessProbe: { tcpSocket: { port: "https" }, periodSeconds: 2 },
                resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } },
                securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
                volumeMounts: [
                  { name: "code", mountPath: "/app-backend", readOnly: true },
                  { name: "tls", mountPath: "/tls", readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: "code", configMap: { name: "exchange-standin" } },
              { name: "tls", secret: { secretName: "backend-tls" } },
            ],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: BACKENDS_NS, labels: labels(name) },
      spec: { selector: labels(name), ports: [{ name: "https", port: 443, targetPort: "https" }] },
    },
  );
}
for (const site of sites) {
  const name = `dovecot-${site}`;
  const conf = `# Dovecot stand-in for the ${site} site's POP3/IMAP4 (kind e2e only).
protocols = imap pop3
listen = *
log_path = /dev/stderr
info_log_path = /dev/stdout
ssl = yes
ssl_cert = </tls/tls.crt
ssl_key = </tls/tls.key
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = static
  args = password=Passw0rd!
}
userdb {
  driver = static
  args = uid=1000 gid=1000 home=/tmp/mail/%u
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
  mailbox Site-${site} {
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    port = 143
  }
  inet_listener imaps {
    port = 993
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 110
  }
  inet_listener pop3s {
    port = 995
    ssl = yes
  }
}
`;
  backends.push(
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: BACKENDS_NS }, data: { "dovecot.conf": conf } },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: BACKENDS_NS, labels: labels(name) },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels(name) },
        template: {
          metadata: { labels: labels(name) },
          spec: {
            containers: [
              {
                name: "dovecot",
                image: DOVECOT_IMAGE,
                command: ["dovecot", "-F", "-c", "/etc/dovecot-e2e/dovecot.conf"],
                ports: [
                  { name: "imap", containerPort: 143 },
                  { name: "imaps", containerPort: 993 },
                  { name: "pop3", containerPort: 110 },
                  { name: "pop3s", containerPort: 995 },
                ],
                readinessProbe: { tcpSocket: { port: "imap" }, periodSeconds: 2 },
                resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } },
                volumeMounts: [
                  { name: "conf", mountPath: "/etc/dovecot-e2e", readOnly: true },
                  { name: "tls", mountPath: "/tls", readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: "conf", configMap: { name } },
              { name: "tls", secret: { secretName: "backend-tls" } },
            ],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: BACKENDS_NS, labels: labels(name) },
      spec: {
        selector: labels(name),
        ports: [
          { name: "imap", port: 143, targetPort: "imap" },
          { name: "imaps", port: 993, targetPort: "imaps" },
          { name: "pop3", port: 110, targetPort: "pop3" },
          { name: "pop3s", port: 995, targetPort: "pop3s" },
        ],
      },
    },
  );
}

mkdirSync(outDir, { recursive: true });
const dump = (docs) => docs.map((d) => stringify(d)).join("---\n");
writeFileSync(join(outDir, "org.yaml"), dump(org));
writeFileSync(join(outDir, "backends.yaml"), dump(backends));
writeFileSync(join(outDir, "backend-names.txt"), `${servers.map((s) => `exch-${s.metadata.name}`).join("\n")}\n${sites.map((s) => `dovecot-${s}`).join("\n")}\n`);
process.stdout.write(`overlay: ${org.length} objects in ${ORG_NS}, ${servers.length} server stand-ins, ${sites.length} Dovecots → ${outDir}\n`);
