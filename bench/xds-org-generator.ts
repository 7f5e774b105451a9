// A generated organisation for the xDS benchmarks: N sites × M servers × K virtual directories,
// validated with the real API schemas (so defaults are applied as for manifests).
import { ApiObject, type Service } from "../crds/index.js";

const HTTP_PATHS: Partial<Record<Service, string>> = {
  Owa: "/owa",
  Ecp: "/ecp",
  Ews: "/EWS/Exchange.asmx",
  ActiveSync: "/Microsoft-Server-ActiveSync",
  Oab: "/OAB",
  Autodiscover: "/Autodiscover/Autodiscover.xml",
  RpcHttp: "/rpc/rpcproxy.dll",
  Mapi: "/mapi",
  PowerShell: "/PowerShell",
};
const SERVICES: Service[] = ["Owa", "Ecp", "Ews", "ActiveSync", "Oab", "Autodiscover", "RpcHttp", "Mapi", "PowerShell", "Imap4"];

export interface GeneratedOrg {
  readonly objects: ApiObject[];
  /** Index of every VirtualDirectory object in `objects` (what the benchmarks change one at a time). */
  readonly vdirIndexes: number[];
}

export function generateOrganisation(sites = 100, serversPerSite = 10, vdirsPerServer = 10): GeneratedOrg {
  const raw: unknown[] = [];
  for (let s = 0; s < sites; s++) {
    const site = `site${String(s).padStart(3, "0")}`;
    raw.push({
      apiVersion: "casgateway.io/v1alpha1",
      kind: "ADSite",
      metadata: { name: site },
      spec: { hostnames: [`${site}.example.com`], description: `generated site ${s}` },
    });
    for (let v = 0; v < serversPerSite; v++) {
      const server = `${site}-cas${String(v).padStart(2, "0")}`;
      const fqdn = `${server}.${site}.example.com`;
      raw.push({
        apiVersion: "casgateway.io/v1alpha1",
        kind: "ClientAccessServer",
        metadata: { name: server },
        spec: { site, fqdn, exchangeVersion: v % 5 === 0 ? "2010" : "2016", roles: ["ClientAccess", "Mailbox"] },
      });
      raw.push({
        apiVersion: "casgateway.io/v1alpha1",
        kind: "MailboxDatabase",
        metadata: { name: `${server}-db` },
        spec: { activeServer: server, servers: [server] },
      });
      for (let k = 0; k < vdirsPerServer; k++) {
        let service = SERVICES[k % SERVICES.length]!;
        if (service === "Mapi" && v % 5 === 0) service = "Pop3"; // Exchange 2010 has no MAPI over HTTP
        const path = HTTP_PATHS[service];
        raw.push({
          apiVersion: "casgateway.io/v1alpha1",
          kind: "VirtualDirectory",
          metadata: { name: `${server}-${service.toLowerCase()}` },
          spec: path
            ? { server, service, internalUrl: `https://${fqdn}${path}`, externalUrl: `https://${site}.example.com${path}` }
            : { server, service, internalConnectionSettings: [{ hostname: fqdn, port: service === "Pop3" ? 995 : 993, encryption: "Ssl" }] },
        });
      }
    }
  }
  const objects = raw.map((r, i) => {
    const p = ApiObject.safeParse(r);
    if (!p.success) throw new Error(`generated object ${i} invalid: ${p.error.message}`);
    return p.data;
  });
  const vdirIndexes = objects.flatMap((o, i) => (o.kind === "VirtualDirectory" && o.spec.internalUrl ? [i] : []));
  return { objects, vdirIndexes };
}

/** A copy of `objects` with one HTTP virtual directory's internalUrl port changed (a one-object change). */
export function changeOne(objects: readonly ApiObject[], index: number, port: number): ApiObject[] {
  const copy = [...objects];
  const o = copy[index]!;
  if (o.kind !== "VirtualDirectory" || !o.spec.internalUrl) throw new Error(`object ${index} is not an HTTP virtual directory`);
  const u = new URL(o.spec.internalUrl);
  u.port = String(port);
  copy[index] = { ...o, spec: { ...o.spec, internalUrl: u.toString() } };
  return copy;
}
