// An open-addressing hash index from string keys to (item, key-kind) pairs, stored in typed arrays.
// Why not a Map: a Map of the 5,000,000 string keys of a 1M-mailbox export (SMTP, proxy, UPN, sam,
// GUID) took 10.5 s of CPU to fill, this index 2.3 s (node --cpu-prof on bench/directory.bench.ts's
// file, loaded 2-core machine). The table holds only numbers; a key is checked by asking the owner
// for the item's key of that kind, so no key string is stored twice.

/** 32-bit FNV-1a over UTF-16 code units. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

export class KeyIndex {
  /**
   * Slot i is [hash, item + 1, kind] at 3i..3i+2, so a probe touches one cache line; 0 marks an empty
   * slot, so the zero-filled array needs no initialising pass.
   */
  private readonly slots: Int32Array;
  private readonly mask: number;
  private count = 0;

  /**
   * @param capacityHint how many keys will be inserted (the table never grows: it is sized for a
   *   load factor of at most 0.7 for that many keys, and refuses more).
   * @param keyOf the key of kind `kind` of item `item` (already normalised).
   */
  constructor(
    private readonly capacityHint: number,
    private readonly keyOf: (item: number, kind: number) => string | undefined,
  ) {
    let size = 16;
    while (size * 0.7 < capacityHint) size *= 2;
    this.slots = new Int32Array(size * 3);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  /** Insert or replace (the last insert of a key wins). */
  set(key: string, item: number, kind: number): void {
    const slots = this.slots;
    const h = fnv1a(key);
    let i = h & this.mask;
    for (;;) {
      const at = i * 3;
      const it = slots[at + 1] - 1;
      if (it === -1) break;
      if (slots[at] === h && this.keyOf(it, slots[at + 2]) === key) {
        slots[at + 1] = item + 1;
        slots[at + 2] = kind;
        return;
      }
      i = (i + 1) & this.mask;
    }
    if (this.count + 1 > this.capacityHint && (this.count + 1) / (this.mask + 1) > 0.9) {
      throw new Error(`KeyIndex is full (${this.count} keys)`);
    }
    const at = i * 3;
    slots[at] = h;
    slots[at + 1] = item + 1;
    slots[at + 2] = kind;
    this.count++;
  }

  /** The item holding `key`, or -1. */
  get(key: string): number {
    const slots = this.slots;
    const h = fnv1a(key);
    let i = h & this.mask;
    for (;;) {
      const at = i * 3;
      const it = slots[at + 1] - 1;
      if (it === -1) return -1;
      if (slots[at] === h && this.keyOf(it, slots[at + 2]) === key) return it;
      i = (i + 1) & this.mask;
    }
  }
}
