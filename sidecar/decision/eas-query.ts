// ActiveSync query values [MS-ASHTTP 2.2.1.1.1]: the plain form (?Cmd=Sync&User=bob&...) and the
// base64 form of protocol 12.1+ (one base64 blob: version, command code, locale, device id,
// policy key, device type, then tag/length/value command parameters; tag 8 is User).
const COMMANDS: readonly string[] = [
  "Sync", "SendMail", "SmartForward", "SmartReply", "GetAttachment", "", "", "", "", "FolderSync",
  "FolderCreate", "FolderDelete", "FolderUpdate", "MoveItems", "GetItemEstimate", "MeetingResponse",
  "Search", "Settings", "Ping", "ItemOperations", "Provision", "ResolveRecipients", "ValidateCert",
];
const PARAM_USER = 8;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

export interface EasQuery {
  readonly form: "plain" | "base64";
  readonly command?: string;
  readonly user?: string;
  readonly deviceId?: string;
  readonly deviceType?: string;
  /** Base64 form: protocol version as MS-ASHTTP writes it (e.g. 141 = 14.1). */
  readonly protocolVersion?: number;
}

function decodeComponent(s: string): string | undefined {
  if (s.indexOf("%") < 0 && s.indexOf("+") < 0) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return undefined;
  }
}

/** Parse an ActiveSync query string (without "?"); undefined when it is neither form. */
export function parseEasQuery(query: string): EasQuery | undefined {
  if (query.length === 0 || query.length > 4096) return undefined;
  // Plain when some "=" is followed by more text (base64 has "=" only as trailing padding).
  const eq = query.indexOf("=");
  if (eq >= 0 && (query.indexOf("&") >= 0 || query.replace(/=+$/, "").indexOf("=") >= 0)) return parsePlain(query);
  return parseBase64(query) ?? parsePlain(query);
}

function parsePlain(query: string): EasQuery | undefined {
  let command: string | undefined;
  let user: string | undefined;
  let deviceId: string | undefined;
  let deviceType: string | undefined;
  for (const part of query.split("&")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const key = part.slice(0, eq).toLowerCase();
    if (key !== "cmd" && key !== "user" && key !== "deviceid" && key !== "devicetype") continue;
    const val = decodeComponent(part.slice(eq + 1));
    if (val === undefined) continue;
    if (key === "cmd") command = val;
    else if (key === "user") user ||= val || undefined; // the first non-empty User= wins (as easQueryUser)
    else if (key === "deviceid") deviceId = val;
    else deviceType = val;
  }
  if (command === undefined && user === undefined && deviceId === undefined) return undefined;
  return { form: "plain", command, user: user || undefined, deviceId, deviceType };
}

function parseBase64(query: string): EasQuery | undefined {
  const text = decodeComponent(query);
  if (text === undefined || text.length < 8 || !BASE64_RE.test(text)) return undefined;
  const b = Buffer.from(text, "base64");
  const n = b.length;
  // version, command, locale (2 bytes), device id length: 5 bytes at least.
  if (n < 5) return undefined;
  const protocolVersion = b[0];
  const cmd = b[1];
  let i = 4;
  const devLen = b[i++];
  if (i + devLen > n) return undefined;
  const devStart = i;
  i += devLen;
  if (i >= n) return undefined;
  const pkLen = b[i++];
  if ((pkLen !== 0 && pkLen !== 4) || i + pkLen > n) return undefined;
  i += pkLen;
  if (i >= n) return undefined;
  const typeLen = b[i++];
  if (i + typeLen > n) return undefined;
  const typeStart = i;
  i += typeLen;
  let user: string | undefined;
  while (i < n) {
    if (i + 2 > n) return undefined;
    const tag = b[i];
    const len = b[i + 1];
    i += 2;
    if (i + len > n) return undefined;
    if (tag === PARAM_USER) user = b.toString("utf8", i, i + len);
    i += len;
  }
  return {
    form: "base64",
    protocolVersion,
    command: COMMANDS[cmd] || `command ${cmd}`,
    user: user || undefined,
    deviceId: b.toString("latin1", devStart, devStart + devLen),
    deviceType: b.toString("latin1", typeStart, typeStart + typeLen),
  };
}

/**
 * Just the user name of an ActiveSync query (plain `User=` or base64 tag 8): the hot path of
 * identity extraction, without building the whole EasQuery.
 */
export function easQueryUser(query: string): { user: string; form: "plain" | "base64" } | undefined {
  if (query.length === 0 || query.length > 4096) return undefined;
  const eq = query.indexOf("=");
  if (eq >= 0 && (query.indexOf("&") >= 0 || query.replace(/=+$/, "").indexOf("=") >= 0)) {
    let start = 0;
    while (start < query.length) {
      let end = query.indexOf("&", start);
      if (end < 0) end = query.length;
      // "user=" is 5 characters; compare case-insensitively without allocating.
      if (end - start > 5 && query.charCodeAt(start + 4) === 61 /* = */) {
        const k0 = query.charCodeAt(start) | 0x20;
        const k1 = query.charCodeAt(start + 1) | 0x20;
        const k2 = query.charCodeAt(start + 2) | 0x20;
        const k3 = query.charCodeAt(start + 3) | 0x20;
        if (k0 === 0x75 && k1 === 0x73 && k2 === 0x65 && k3 === 0x72) {
          const v = decodeComponent(query.slice(start + 5, end));
          if (v !== undefined) return v ? { user: v, form: "plain" } : undefined;
        }
      }
      start = end + 1;
    }
    return undefined;
  }
  const q = parseBase64(query);
  if (q?.user) return { user: q.user, form: "base64" };
  if (!q) {
    const p = parsePlain(query);
    if (p?.user) return { user: p.user, form: "plain" };
  }
  return undefined;
}

/** Encode a base64 query value (tests, explain). */
export function encodeEasBase64Query(q: {
  protocolVersion: number;
  command: string;
  deviceId: string;
  deviceType: string;
  user?: string;
  policyKey?: number;
}): string {
  const cmd = COMMANDS.indexOf(q.command);
  const parts: number[] = [q.protocolVersion, cmd < 0 ? 0 : cmd, 0x09, 0x04];
  const dev = Buffer.from(q.deviceId, "latin1");
  parts.push(dev.length, ...dev);
  if (q.policyKey === undefined) parts.push(0);
  else {
    const pk = Buffer.alloc(4);
    pk.writeUInt32LE(q.policyKey >>> 0);
    parts.push(4, ...pk);
  }
  const type = Buffer.from(q.deviceType, "latin1");
  parts.push(type.length, ...type);
  if (q.user) {
    const u = Buffer.from(q.user, "utf8");
    parts.push(PARAM_USER, u.length, ...u);
  }
  return encodeURIComponent(Buffer.from(parts).toString("base64"));
}
