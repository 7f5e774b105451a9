// The pages the sidecar answers with: the "wrong URL" page (R-OWA-2 Manual) and the single sign-on
// form (R-OWA-3). Every value is escaped with `he`; the only script carries a per-response CSP nonce.
import { randomBytes } from "node:crypto";
import he from "he";

export interface Page {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const esc = (s: string) => he.encode(s, { useNamedReferences: false, allowUnsafeSymbols: false });

export function newNonce(): string {
  return randomBytes(16).toString("base64");
}

const STYLE = "body{font-family:system-ui,sans-serif;margin:3em auto;max-width:40em;line-height:1.5;padding:0 1em}a,button{font-size:1.1em}";

const COMMON_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** R-OWA-2 Manual: tell the user the URL is wrong and link to the right one. */
export function manualRedirectPage(url: string, nonce = newNonce()): Page {
  const u = esc(url);
  const body = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Use a different address for Outlook Web App</title>
<style nonce="${esc(nonce)}">${STYLE}</style>
</head>
<body>
<main>
<h1>Use a different address</h1>
<p>Your mailbox is served from another location. Please use the following address to open Outlook Web App, and update your bookmarks:</p>
<p><a id="target" href="${u}">${u}</a></p>
</main>
</body>
</html>
`;
  return {
    status: 200,
    headers: {
      ...COMMON_HEADERS,
      "content-security-policy": `default-src 'none'; style-src 'nonce-${nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    },
    body,
  };
}

/** Credentials the SSO form carries (from the FBA logon POST or a Basic header). */
export interface FbaCredentials {
  readonly username: string;
  readonly password: string;
}

/** Where OWA's forms-based authentication posts: <vdir>/auth.owa. */
export function fbaPostUrl(target: string): string {
  const u = new URL(target);
  if (!/\/auth\.owa$/i.test(u.pathname)) u.pathname = `${u.pathname.replace(/\/+$/, "")}/auth.owa`;
  u.search = "";
  u.hash = "";
  return u.toString();
}

/**
 * R-OWA-3: a form that posts the user's credentials and FBA settings to the target's auth.owa and
 * submits itself (a nonce'd script; a visible button when scripts are off). HTTPS targets only:
 * the caller falls back to the manual page otherwise.
 */
export function ssoFormPage(target: string, creds: FbaCredentials, nonce = newNonce(), postUrl?: string): Page {
  const u = new URL(target);
  if (u.protocol !== "https:") throw new Error("single sign-on only posts credentials to https targets");
  // R-OWA-9: an Exchange 2003 front end signs in at /exchweb/bin/auth/owaauth.dll, same origin.
  const action = postUrl ?? fbaPostUrl(target);
  const a = new URL(action);
  if (a.protocol !== "https:" || a.origin !== u.origin) throw new Error("the sign-on form posts only to the target's own https origin");
  const fields: [string, string][] = postUrl
    ? [
        ["destination", target],
        ["flags", "0"],
        ["username", creds.username],
        ["password", creds.password],
        ["trusted", "0"],
      ]
    : [
        ["destination", target],
        ["flags", "4"],
        ["forcedownlevel", "0"],
        ["isUtf8", "1"],
        ["username", creds.username],
        ["password", creds.password],
      ];
  const inputs = fields.map(([n, v]) => `<input type="hidden" name="${esc(n)}" value="${esc(v)}">`).join("\n");
  const body = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signing you in to Outlook Web App</title>
<style nonce="${esc(nonce)}">${STYLE}</style>
</head>
<body>
<main>
<h1>Signing you in</h1>
<form id="sso" method="post" action="${esc(action)}" aria-labelledby="sso-label">
<p id="sso-label">Your mailbox is served from <span>${esc(u.host)}</span>. You are being signed in there.</p>
${inputs}
<button type="submit" id="continue">Continue</button>
</form>
</main>
<script nonce="${esc(nonce)}">document.getElementById("sso").submit();</script>
</body>
</html>
`;
  return {
    status: 200,
    headers: {
      ...COMMON_HEADERS,
      "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; form-action ${u.origin}; base-uri 'none'; frame-ancestors 'none'`,
    },
    body,
  };
}

/** Error answer: the status and a short reason, plain text (reasons are engine-written, never request input). */
export function errorPage(status: number, reason: string): Page {
  return {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" },
    body: `${status} ${reason}\n`,
  };
}
