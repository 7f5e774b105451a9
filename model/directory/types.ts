// The mailbox directory: who has a mailbox, and in which database. Implementations: CSV export
// (csv-directory.ts) and LDAP/Active Directory (a later piece). The decision engine never calls a
// directory itself: the caller resolves identities first (async) and hands it a DirectoryView.

export interface MailboxRecord {
  readonly primarySmtpAddress: string;
  readonly userPrincipalName?: string;
  readonly samAccountName?: string;
  /** NetBIOS domain for DOMAIN\sam look-ups, when known. */
  readonly domain?: string;
  /** Database name as Exchange reports it (Get-Mailbox Database, or homeMDB's CN). */
  readonly database: string;
  /** Mailbox GUID (ExchangeGuid / msExchMailboxGuid), lower-case, without braces. */
  readonly exchangeGuid?: string;
  /** All SMTP addresses (primary and proxy), lower-case, without the smtp: prefix. */
  readonly emailAddresses: readonly string[];
  readonly displayName?: string;
  /** Legacy fallback when the database is unknown (msExchHomeServerName). */
  readonly homeServer?: string;
  /**
   * R-HYB-1: a remote mailbox, moved to Exchange Online (RecipientTypeDetails RemoteUserMailbox and
   * the other Remote* types; LDAP msExchRecipientTypeDetails). It has no on-premises database
   * (`database` is ""); `targetAddress` is where mail for it goes, in the tenant's routing domain.
   */
  readonly remote?: { readonly targetAddress: string; readonly recipientTypeDetails: string };
}

/** RecipientTypeDetails of a remote (Exchange Online) mailbox, by name and by msExchRecipientTypeDetails value. */
export const REMOTE_RECIPIENT_TYPES: ReadonlyMap<string, string> = new Map([
  ["remoteusermailbox", "RemoteUserMailbox"],
  ["remoteroommailbox", "RemoteRoomMailbox"],
  ["remoteequipmentmailbox", "RemoteEquipmentMailbox"],
  ["remotesharedmailbox", "RemoteSharedMailbox"],
  ["2147483648", "RemoteUserMailbox"],
  ["8589934592", "RemoteRoomMailbox"],
  ["17179869184", "RemoteEquipmentMailbox"],
  ["34359738368", "RemoteSharedMailbox"],
]);

/** "SMTP:bob@contoso.mail.onmicrosoft.com" or a bare address → the lower-case address, or undefined. */
export function targetAddressOf(value: string): string | undefined {
  let v = value.trim();
  if (/^smtp:/i.test(v)) v = v.slice(5);
  v = v.toLowerCase();
  const at = v.indexOf("@");
  return at > 0 && at < v.length - 1 && !/[\s<>"]/.test(v) ? v : undefined;
}

export type LookupResult =
  | { readonly status: "found"; readonly mailbox: MailboxRecord }
  | { readonly status: "not-found" }
  | { readonly status: "unavailable"; readonly reason: string };

/** How a caller wants a look-up answered. */
export interface LookupOptions {
  /**
   * The caller's answer is due within this many milliseconds (a request deadline). A directory
   * that keeps answers (the LDAP cache) answers from them, or `unavailable`, when its backend
   * misses it, instead of making the caller wait; directories answered from memory ignore it.
   */
  readonly deadlineMs?: number;
}

/**
 * The directory's share of a request deadline: three quarters, so that its answer from the cache
 * (made when its backend misses this) reaches the caller before the caller's own deadline fires.
 */
export function directoryDeadlineMs(requestDeadlineMs: number): number {
  return Math.max(1, Math.floor(requestDeadlineMs * 0.75));
}

/** Asynchronous directory, as the sidecar and mail proxy use it. */
export interface MailboxDirectory {
  /**
   * Look up by SMTP address (primary or proxy), UPN, DOMAIN\sam, bare sam or mailbox GUID,
   * case-insensitively. Never throws: failures are `unavailable`.
   */
  lookup(identity: string, options?: LookupOptions): Promise<LookupResult>;
  close?(): Promise<void>;
}

/** Synchronous view over look-ups already made; what the pure decision engine reads. */
export interface DirectoryView {
  find(identity: string): LookupResult;
}

/** Resolve a set of identities with an async directory, and return a synchronous view of the answers. */
export async function resolveIdentities(dir: MailboxDirectory, identities: readonly string[], options?: LookupOptions): Promise<DirectoryView> {
  const answers = new Map<string, LookupResult>();
  await Promise.all(
    [...new Set(identities)].map(async (id) => {
      answers.set(id, await dir.lookup(id, options));
    }),
  );
  return {
    find: (id) => answers.get(id) ?? { status: "unavailable", reason: `identity "${id}" was not looked up` },
  };
}
