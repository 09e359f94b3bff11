import { assert, fail, assertPosInt } from './assert.js';
import { ceilDiv, NO_BLOCK_COPIES, NO_PREFIX_MATCH, type KvAllocator, type PrefixMatch } from './kv-allocator.js';
import type { BlockCopy, RequestSpec, SeqId } from './types.js';

export interface ContiguousAllocatorConfig {
  readonly numBlocks: number;
  readonly pageSizeTokens: number;
  /** Every admitted request reserves this many tokens, used or not (the case study's baseline). */
  readonly maxSeqLenTokens: number;
}

/**
 * The pre-PagedAttention baseline behind the paged interface: memory is cut into fixed slots of
 * `maxSeqLenTokens`, one per admitted request, reserved at admission. A slot is a run of
 * consecutive blocks, so the same paged kernels read it. No sharing, no copy-on-write; blocks
 * left over after the last whole slot are stranded and never used.
 */
export class ContiguousAllocator implements KvAllocator {
  readonly kind = 'contiguous' as const;
  readonly pageSizeTokens: number;
  readonly numBlocksTotal: number;
  readonly blocksPerSlot: number;
  readonly numSlots: number;
  /** Free slot indices, popped from the end: lowest index first. */
  private readonly freeSlots: number[] = [];
  private readonly slotBySeq = new Map<SeqId, number>();

  constructor(config: ContiguousAllocatorConfig) {
    assertPosInt(config.numBlocks, 'numBlocks');
    assertPosInt(config.pageSizeTokens, 'pageSizeTokens');
    assertPosInt(config.maxSeqLenTokens, 'maxSeqLenTokens');
    this.numBlocksTotal = config.numBlocks;
    this.pageSizeTokens = config.pageSizeTokens;
    this.blocksPerSlot = ceilDiv(config.maxSeqLenTokens, config.pageSizeTokens);
    this.numSlots = Math.floor(config.numBlocks / this.blocksPerSlot);
    for (let s = this.numSlots - 1; s >= 0; s--) this.freeSlots.push(s);
  }

  numBlocksFree(): number {
    return this.freeSlots.length * this.blocksPerSlot;
  }

  numBlocksUsed(): number {
    return this.slotBySeq.size * this.blocksPerSlot;
  }

  numTokensReserved(): number {
    return this.numBlocksUsed() * this.pageSizeTokens;
  }

  worstCaseBlocks(_numTokens: number): number {
    return this.blocksPerSlot;
  }

  matchPrefix(_spec: RequestSpec): PrefixMatch {
    return NO_PREFIX_MATCH;
  }

  numBlocksToAdmit(_match: PrefixMatch, numTokens: number): number {
    if (!(numTokens <= this.slotTokens())) fail(`admission of ${numTokens} tokens exceeds the slot`);
    return this.blocksPerSlot;
  }

  admit(seqId: SeqId, _spec: RequestSpec, match: PrefixMatch, numTokens: number): void {
    assert(match.blocks.length === 0, 'contiguous memory has no prefix cache');
    if (this.slotBySeq.has(seqId)) fail(`seq ${seqId} already has a slot`);
    if (!(numTokens <= this.slotTokens())) fail(`admission of ${numTokens} tokens exceeds the slot`);
    const slot = this.freeSlots.pop();
    assert(slot !== undefined, 'admit without a free slot');
    this.slotBySeq.set(seqId, slot);
  }

  numBlocksToGrow(seqId: SeqId, numTokens: number): number {
    this.slot(seqId);
    if (!(numTokens <= this.slotTokens())) fail(`growth to ${numTokens} tokens exceeds the slot`);
    return 0;
  }

  grow(seqId: SeqId, numTokens: number): readonly BlockCopy[] {
    this.numBlocksToGrow(seqId, numTokens);
    return NO_BLOCK_COPIES;
  }

  commitComputed(_seqId: SeqId, _numComputedTokens: number): void {}

  fork(_parentId: SeqId, _childId: SeqId): void {
    throw new Error('contiguous KV cannot share a slot between sequences; use the paged allocator to fork');
  }

  free(seqId: SeqId): void {
    const slot = this.slot(seqId);
    this.slotBySeq.delete(seqId);
    this.freeSlots.push(slot);
  }

  hasSeq(seqId: SeqId): boolean {
    return this.slotBySeq.has(seqId);
  }

  blockTable(seqId: SeqId): readonly number[] {
    const first = this.slot(seqId) * this.blocksPerSlot;
    return Array.from({ length: this.blocksPerSlot }, (_, i) => first + i);
  }

  numTokensCovered(seqId: SeqId): number {
    this.slot(seqId);
    return this.slotTokens();
  }

  checkInvariants(): void {
    const used = new Set(this.slotBySeq.values());
    assert(used.size === this.slotBySeq.size, 'two sequences share a slot');
    for (const slot of this.freeSlots) assert(!used.has(slot), () => `slot ${slot} both free and used`);
    assert(used.size + this.freeSlots.length === this.numSlots, 'used + free slots = all slots');
  }

  private slotTokens(): number {
    return this.blocksPerSlot * this.pageSizeTokens;
  }

  private slot(seqId: SeqId): number {
    const slot = this.slotBySeq.get(seqId);
    if (slot === undefined) fail(`seq ${seqId} has no slot`);
    return slot;
  }
}
