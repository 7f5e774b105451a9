// Exchange names and references as they arrive in exports, and their Kubernetes forms.
import { K8S_NAME_RE, type ExchangeVersion } from "../crds/index.js";

/**
 * The lower-case RFC 1123 form of an Exchange name: "USA-CAS01" → "usa-cas01",
 * "First Storage Group\Mailbox Store (E2003)" → "first-storage-group-mailbox-store-e2003".
 * Undefined when nothing of the name is left.
 */
export function k8sNameOf(exchangeName: string): string | undefined {
  const n = exchangeName
    .normalize("NFKD")
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/\.{2,}/g, ".")
    .replace(/-?\.-?/g, ".")
    .replace(/^[-.]+|[-.]+$/g, "")
    .slice(0, 200)
    .replace(/[-.]+$/, "");
  return n && K8S_NAME_RE.test(n) ? n : undefined;
}

/**
 * The object an ADObjectId names, from any of its string forms: "USA-CAS01",
 * "contoso.local/Configuration/Sites/USA" (canonical name) or "CN=USA-CAS01,CN=Servers,..." (DN).
 */
export function leafOfReference(ref: string): string {
  const s = ref.trim();
  const dn = /^cn=((?:\\.|[^,])+)/i.exec(s);
  if (dn) return dn[1].replace(/\\(.)/g, "$1").trim();
  const slash = s.lastIndexOf("/");
  return (slash >= 0 ? s.slice(slash + 1) : s).trim();
}

/**
 * Exchange version from AdminDisplayVersion ("Version 14.3 (Build 123.4)", "Version 6.5 (Build
 * 7638.2: Service Pack 2)", or "14.3.123.4"): 6.5 → 2003, 8 → 2007, 14 → 2010, 15.0 → 2013,
 * 15.1 → 2016, 15.2 → 2019. Otherwise the major.minor that was found, for the message.
 */
export function exchangeVersionOf(display: string): { version: ExchangeVersion } | { unsupported: string } {
  const m = /(?:^|version\s+)(\d+)\.(\d+)/i.exec(display.trim());
  if (!m) return { unsupported: `"${display}"` };
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major === 6 && minor === 5) return { version: "2003" };
  if (major === 8) return { version: "2007" };
  if (major === 14) return { version: "2010" };
  if (major === 15 && minor === 0) return { version: "2013" };
  if (major === 15 && minor === 1) return { version: "2016" };
  if (major === 15 && minor === 2) return { version: "2019" };
  const known = major === 6 && minor === 0 ? " (Exchange 2000)" : "";
  return { unsupported: `${major}.${minor}${known}` };
}
