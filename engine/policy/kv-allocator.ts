import type { AllocatorKind, BlockCopy, RequestSpec, SeqId } from './types.js';

/** Prompt blocks already in the prefix cache, found before admission. Valid until the next mutation. */
export interface PrefixMatch {
  /** Cached blocks, in prompt order. */
  readonly blocks: readonly number[];
  /** Tokens those blocks hold (blocks.length × page size). */
  readonly numTokens: number;
  /** How many of the blocks sit in the evictable pool (reference count 0) and so count as free. */
  readonly numEvictable: number;
}

export const NO_PREFIX_MATCH: PrefixMatch = { blocks: [], numTokens: 0, numEvictable: 0 };

/** What `grow` returns when no copy is needed (almost always): one frozen array, no allocation. */
export const NO_BLOCK_COPIES: readonly BlockCopy[] = Object.freeze([]);

/**
 * KV memory as the scheduler sees it: blocks of `pageSizeTokens` tokens and a page table per
 * sequence. The scheduler asks first (`numBlocksToAdmit`, `numBlocksToGrow`) and only then acts
 * (`admit`, `grow`), so an action never fails halfway.
 */
export interface KvAllocator {
  readonly kind: AllocatorKind;
  readonly pageSizeTokens: number;
  readonly numBlocksTotal: number;
  /** Blocks that an allocation can take now: never used, or cached with no reader (evictable). */
  numBlocksFree(): number;
  /** Blocks that hold data someone reads (reference count > 0). */
  numBlocksUsed(): number;
  /** Tokens of KV that readers hold reserved: paged = their blocks × page; contiguous = slots × max length. */
  numTokensReserved(): number;
  /** Blocks that a sequence of `numTokens` tokens needs in the worst case. */
  worstCaseBlocks(numTokens: number): number;
  /** Cached prompt blocks this request could reuse (empty when prefix caching is off). */
  matchPrefix(spec: RequestSpec): PrefixMatch;
  /** Blocks that `admit` would take from the free pool to hold `numTokens` tokens. */
  numBlocksToAdmit(match: PrefixMatch, numTokens: number): number;
  /** Gives the sequence a page table covering `numTokens` tokens, reusing the matched prefix. */
  admit(seqId: SeqId, spec: RequestSpec, match: PrefixMatch, numTokens: number): void;
  /** Blocks that `grow` would take from the free pool (including a copy-on-write copy). */
  numBlocksToGrow(seqId: SeqId, numTokens: number): number;
  /**
   * Extends the sequence's page table to cover `numTokens` tokens; returns the copies to perform
   * (usually none: a shared empty array, so read it, never change it). Afterwards the table covers
   * max(what it covered, ceilDiv(numTokens, pageSizeTokens) × pageSizeTokens) tokens (the scheduler
   * keeps SeqState.numTokensCovered by this rule).
   */
  grow(seqId: SeqId, numTokens: number): readonly BlockCopy[];
  /**
   * Optional batch of a steady decode run's growth, where every grow takes exactly one new block
   * and copies none: whether that holds now (no forked table), so takeBlocks and appendBlocks may
   * stand for the grows.
   */
  canBatchGrow?(): boolean;
  /**
   * Takes `count` blocks, in the order and with the effects on the pools of that many one-block
   * grows, into out[0..count); appendBlocks must then give each to the table it was taken for.
   */
  takeBlocks?(count: number, out: number[]): void;
  /**
   * Appends blocks[0..count) (taken by takeBlocks) to the sequence's page table: the table that
   * grows to `numTokens` (the last of them) one block at a time would leave.
   */
  appendBlocks?(seqId: SeqId, blocks: readonly number[], count: number, numTokens: number): void;
  /** Publishes the sequence's full prompt blocks (within `numComputedTokens`) to the prefix cache. */
  commitComputed(seqId: SeqId, numComputedTokens: number): void;
  /** Gives a second sequence the same blocks (parallel sampling); writes then copy on write. */
  fork(parentId: SeqId, childId: SeqId): void;
  /** Returns the sequence's blocks; cached ones stay reusable until evicted. */
  free(seqId: SeqId): void;
  hasSeq(seqId: SeqId): boolean;
  blockTable(seqId: SeqId): readonly number[];
  /** Number of token slots the sequence's page table covers. */
  numTokensCovered(seqId: SeqId): number;
  /** Full consistency check (tests and debug runs): reference counts, pools and tables agree. */
  checkInvariants(): void;
}

export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}
