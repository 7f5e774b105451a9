// An open-addressing hash index from string keys to row numbers, stored in one Int32Array.
// Why not a Map: a Map of the 5,000,000 string keys of a 1M-mailbox export (SMTP, proxy, UPN, sam,
// GUID) took 10.5 s of CPU to fill, and kept every key string alive. This table holds only numbers
// (8 bytes a slot): a hash match is confirmed by asking the owner whether the row has that key, so
// no key string is stored at all, and the rows themselves can stay unparsed until looked up.

/** 32-bit FNV-1a over UTF-16 code units. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

const MAX_LOAD = 0.7;

/** A KeyIndex's table as plain numbers: sent from the worker thread that built it (transferred, not copied). */
export interface KeyIndexParts {
  readonly slots: Int32Array<ArrayBuffer>;
  readonly mask: number;
  readonly count: number;
}

export class KeyIndex {
  /** Slot i is [hash, row + 1] at 2i, 2i+1; row + 1 = 0 marks an empty slot (no initialising pass). */
  private slots: Int32Array<ArrayBuffer>;
  private mask: number;
  private count = 0;
  /** Called by bulkSet when a key already held by another row is placed again (the new row wins). */
  private onDuplicate: ((keptRow: number, newRow: number, hash: number) => void) | undefined;

  /**
   * @param capacityHint about how many keys will be inserted (the table doubles when it passes 70%).
   * @param hasKey whether row `row` has the (normalised) key `key`: confirms a hash match.
   */
  constructor(
    capacityHint: number,
    private readonly hasKey: (row: number, key: string) => boolean,
  ) {
    let size = 16;
    while (size * MAX_LOAD < capacityHint) size *= 2;
    this.slots = new Int32Array(size * 2);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  parts(): KeyIndexParts {
    return { slots: this.slots, mask: this.mask, count: this.count };
  }

  /** A table built elsewhere (see parts). */
  static fromParts(p: KeyIndexParts, hasKey: (row: number, key: string) => boolean): KeyIndex {
    const k = new KeyIndex(0, hasKey);
    k.slots = p.slots;
    k.mask = p.mask;
    k.count = p.count;
    return k;
  }

  /** Insert or replace (the last insert of a key wins). */
  set(key: string, row: number): void {
    if (this.place(fnv1a(key), row, key, undefined) && this.count > (this.mask + 1) * MAX_LOAD) this.grow();
  }

  /**
   * Put (hash, row) in its slot; true when a new slot was taken. When another row's slot has the same
   * hash, the key is needed to tell a shared key (replace) from a collision (probe on): it is `key`,
   * or else `resolve(row, hash)` (a function passed in, not a closure made per key).
   */
  private place(h: number, row: number, key: string | undefined, resolve: ((row: number, hash: number) => string) | undefined): boolean {
    const slots = this.slots;
    let i = h & this.mask;
    for (;;) {
      const at = i * 2;
      const r = slots[at + 1] - 1;
      if (r === -1) break;
      // A row's own keys are inserted once each, so a match on the same row is the same key (or a
      // collision between two keys of one row, which both find that row anyway).
      if (slots[at] === h && (r === row || this.hasKey(r, key ?? resolve!(row, h)))) {
        if (r !== row) this.onDuplicate?.(r, row, h);
        slots[at + 1] = row + 1;
        return false;
      }
      i = (i + 1) & this.mask;
    }
    slots[i * 2] = h;
    slots[i * 2 + 1] = row + 1;
    this.count++;
    return true;
  }

  /** The row holding `key`, or -1. */
  get(key: string): number {
    const h = fnv1a(key);
    const slots = this.slots;
    let i = h & this.mask;
    for (;;) {
      const at = i * 2;
      const r = slots[at + 1] - 1;
      if (r === -1) return -1;
      if (slots[at] === h && this.hasKey(r, key)) return r;
      i = (i + 1) & this.mask;
    }
  }

  /**
   * Insert many (hash, row) pairs at once, in the order given as far as equal keys go (the last
   * wins). They are placed region by region of the table (a stable counting sort on the slot's top
   * bits), so the writes sweep the table once instead of missing the cache on every insert: 5M
   * random inserts into a 64 MB table were ~30% of a 1M-row load.
   */
  bulkSet(
    hashes: Int32Array,
    rows: Int32Array,
    count: number,
    key: (row: number, hash: number) => string,
    onDuplicate?: (keptRow: number, newRow: number, hash: number) => void,
  ): void {
    this.onDuplicate = onDuplicate;
    try {
      this.bulkPlace(hashes, rows, count, key);
    } finally {
      this.onDuplicate = undefined;
    }
  }

  private bulkPlace(hashes: Int32Array, rows: Int32Array, count: number, key: (row: number, hash: number) => string): void {
    let size = this.mask + 1;
    while (size * MAX_LOAD < this.count + count) size *= 2;
    if (size !== this.mask + 1) this.resize(size);
    const mask = this.mask;
    const bits = Math.log2(size);
    const regionBits = Math.min(12, bits);
    const shift = bits - regionBits;
    const starts = new Int32Array((1 << regionBits) + 1);
    for (let i = 0; i < count; i++) starts[((hashes[i] & mask) >>> shift) + 1]++;
    for (let b = 0; b < 1 << regionBits; b++) starts[b + 1] += starts[b];
    const order = new Int32Array(count);
    for (let i = 0; i < count; i++) order[starts[(hashes[i] & mask) >>> shift]++] = i;
    for (let j = 0; j < count; j++) {
      const i = order[j];
      this.place(hashes[i], rows[i], undefined, key);
    }
  }

  /** Double the table, re-placing slots by their stored hash (no key is needed). */
  private grow(): void {
    this.resize((this.mask + 1) * 2);
  }

  private resize(size: number): void {
    const old = this.slots;
    const slots = new Int32Array(size * 2);
    const mask = size - 1;
    for (let at = 0; at < old.length; at += 2) {
      if (old[at + 1] === 0) continue;
      let i = old[at] & mask;
      while (slots[i * 2 + 1] !== 0) i = (i + 1) & mask;
      slots[i * 2] = old[at];
      slots[i * 2 + 1] = old[at + 1];
    }
    this.slots = slots;
    this.mask = mask;
  }
}
