import { assert, fail, assertNonNegInt } from './assert.js';
import type { EvictionPolicy, LoraLoad } from './types.js';

interface Resident {
  readonly slot: number;
  numPins: number;
  /** Logical time of the last acquisition (the cache's own counter, never a clock). */
  lastUseTick: number;
  numUses: number;
}

export interface LoraAcquisition {
  readonly slot: number;
  readonly load: LoraLoad | null;
  readonly eviction: LoraLoad | null;
}

/**
 * Which LoRA adapters are resident in the replica's GPU slots. An adapter is pinned while any
 * running sequence uses it and is never evicted while pinned; unpinned adapters stay resident
 * (a later request hits) until a miss needs their slot, chosen by LRU or LFU.
 */
export class LoraCache {
  readonly numSlots: number;
  readonly eviction: EvictionPolicy;
  private readonly residents = new Map<string, Resident>();
  private readonly freeSlots: number[] = [];
  private tick = 0;
  /** Resident adapters with at least one pin (kept so the count is O(1)). */
  private numPinned = 0;
  numLoads = 0;
  numEvictions = 0;
  numHits = 0;

  constructor(numSlots: number, eviction: EvictionPolicy) {
    assertNonNegInt(numSlots, 'numSlots');
    this.numSlots = numSlots;
    this.eviction = eviction;
    for (let s = numSlots - 1; s >= 0; s--) this.freeSlots.push(s);
  }

  isResident(adapter: string): boolean {
    return this.residents.has(adapter);
  }

  slotOf(adapter: string): number {
    const resident = this.residents.get(adapter);
    if (resident === undefined) fail(`adapter ${adapter} is not resident`);
    return resident.slot;
  }

  numPins(adapter: string): number {
    return this.residents.get(adapter)?.numPins ?? 0;
  }

  /** Distinct adapters pinned now: those of the running sequences. */
  numPinnedAdapters(): number {
    return this.numPinned;
  }

  numResident(): number {
    return this.residents.size;
  }

  residentAdapters(): string[] {
    return [...this.residents.keys()];
  }

  /** True when `acquire(adapter)` would succeed now: resident, a free slot, or an unpinned victim. */
  canAcquire(adapter: string): boolean {
    if (this.residents.has(adapter) || this.freeSlots.length > 0) return true;
    // pickVictim finds one exactly when some resident is unpinned: counted, not searched for
    // (admission asks at every plan while a request waits; the search visited every resident).
    return this.numPinned < this.residents.size;
  }

  /** Pins the adapter, loading it (and evicting a victim) if needed. Precondition: canAcquire. */
  acquire(adapter: string): LoraAcquisition {
    this.tick++;
    const resident = this.residents.get(adapter);
    if (resident !== undefined) {
      if (resident.numPins === 0) this.numPinned++;
      resident.numPins++;
      resident.lastUseTick = this.tick;
      resident.numUses++;
      this.numHits++;
      return { slot: resident.slot, load: null, eviction: null };
    }
    let eviction: LoraLoad | null = null;
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      const victim = this.pickVictim();
      if (victim === null) fail(`no slot for adapter ${adapter}: every resident adapter is pinned`);
      const victimState = this.residents.get(victim)!;
      assert(victimState.numPins === 0, 'never evict an adapter in use');
      slot = victimState.slot;
      this.residents.delete(victim);
      eviction = { adapter: victim, slot };
      this.numEvictions++;
    }
    this.residents.set(adapter, { slot, numPins: 1, lastUseTick: this.tick, numUses: 1 });
    this.numPinned++;
    this.numLoads++;
    assert(this.residents.size <= this.numSlots, 'residents never exceed slots');
    return { slot, load: { adapter, slot }, eviction };
  }

  /** Unpins one use. Pairs with acquire. */
  release(adapter: string): void {
    const resident = this.residents.get(adapter);
    if (resident === undefined) fail(`release of non-resident adapter ${adapter}`);
    if (!(resident.numPins > 0)) fail(`release of unpinned adapter ${adapter}`);
    resident.numPins--;
    if (resident.numPins === 0) this.numPinned--;
  }

  checkInvariants(): void {
    assert(this.residents.size + this.freeSlots.length === this.numSlots, 'residents + free slots = slots');
    const slots = new Set<number>(this.freeSlots);
    let numPinned = 0;
    for (const r of this.residents.values()) {
      if (slots.has(r.slot)) fail(`slot ${r.slot} used twice`);
      assert(r.numPins >= 0, 'pins are non-negative');
      if (r.numPins > 0) numPinned++;
      slots.add(r.slot);
    }
    assert(numPinned === this.numPinned, 'pinned adapter count matches');
  }

  private pickVictim(): string | null {
    let victim: string | null = null;
    let best: Resident | null = null;
    // forEach rather than for-of over entries: no [name, resident] pair allocated per resident
    // (admission asks this for every waiting request whose adapter is not resident). Same order.
    this.residents.forEach((r, name) => {
      if (r.numPins > 0) return;
      if (best === null || this.evictsBefore(r, best)) {
        victim = name;
        best = r;
      }
    });
    return victim;
  }

  private evictsBefore(a: Resident, b: Resident): boolean {
    if (this.eviction === 'lfu' && a.numUses !== b.numUses) return a.numUses < b.numUses;
    return a.lastUseTick < b.lastUseTick;
  }
}
