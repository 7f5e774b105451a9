// buildTopology on a generated large organisation: 100 sites, 1,000 servers, 10,000 virtual
// directories (10 services per server), 500 databases. Median of several runs.
import type { ApiObject, Service } from "../crds/index.js";
import { buildTopology } from "../model/topology/build.js";
import { median, percentile, type BenchRow } from "./types.js";

const API = "casgateway.io/v1alpha1" as const;
const SERVICES: Service[] = ["Owa", "Ecp", "ActiveSync", "Ews", "Oab", "Autodiscover", "RpcHttp", "PowerShell", "Pop3", "Imap4"];

export function generateOrganisation(sites = 100, serversPerSite = 10): ApiObject[] {
  const objs: ApiObject[] = [];
  for (let s = 0; s < sites; s++) {
    const site = `site${s}`;
    objs.push({ apiVersion: API, kind: "ADSite", metadata: { name: site }, spec: { hostnames: [`${site}.contoso.com`] } });
    for (let k = 0; k < serversPerSite; k++) {
      const name = `${site}-srv${k}`;
      const fqdn = `srv${k}.${site}.contoso.com`;
      const version = k % 2 === 0 ? "2010" : "2016";
      objs.push({
        apiVersion: API,
        kind: "ClientAccessServer",
        metadata: { name },
        spec: {
          site,
          fqdn,
          exchangeVersion: version,
          roles: k % 2 === 0 ? ["ClientAccess"] : ["ClientAccess", "Mailbox"],
          maintenance: false,
          tls: { insecureSkipVerify: false },
        },
      });
      for (const service of SERVICES) {
        const mail = service === "Pop3" || service === "Imap4";
        objs.push({
          apiVersion: API,
          kind: "VirtualDirectory",
          metadata: { name: `${name}-${service.toLowerCase()}` },
          spec: {
            server: name,
            service,
            ...(mail
              ? { internalConnectionSettings: [{ hostname: fqdn, port: service === "Pop3" ? 995 : 993, encryption: "Ssl" as const }] }
              : { internalUrl: `https://${fqdn}/${service.toLowerCase()}`, externalUrl: s % 3 === 0 ? null : `https://${site}.contoso.com/${service.toLowerCase()}` }),
            internalAuthenticationMethods: ["Ntlm", "Negotiate"],
            externalAuthenticationMethods: ["Fba"],
          },
        });
      }
      if (k % 2 === 1) {
        objs.push({ apiVersion: API, kind: "MailboxDatabase", metadata: { name: `db-${name}` }, spec: { activeServer: name, servers: [name] } });
      }
    }
  }
  return objs;
}

export default async function bench(): Promise<BenchRow[]> {
  const objs = generateOrganisation();
  const shuffled = [...objs].reverse();
  const times: number[] = [];
  let version = "";
  for (let run = 0; run < 9; run++) {
    const t0 = performance.now();
    const t = buildTopology(run % 2 ? shuffled : objs);
    times.push(performance.now() - t0);
    if (t.problems.length) throw new Error(`unexpected problems: ${t.problems[0].message}`);
    if (t.servers.size !== 1000) throw new Error(`${t.servers.size} servers`);
    if (version && t.version !== version) throw new Error("version depends on input order");
    version = t.version;
  }
  const vdirs = objs.filter((o) => o.kind === "VirtualDirectory").length;
  return [
    {
      suite: "topology",
      metric: `buildTopology 100 sites / 1,000 servers / ${vdirs.toLocaleString("en-US")} vdirs`,
      value: median(times),
      unit: "ms",
      note: `9 runs, p90 ${percentile(times, 90).toFixed(0)} ms; same version for reversed input`,
    },
  ];
}
