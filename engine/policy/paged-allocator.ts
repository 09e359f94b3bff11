import { assert, fail, assertPosInt } from './assert.js';
import { chainHash, hashString } from './hash.js';
import { ceilDiv, NO_BLOCK_COPIES, NO_PREFIX_MATCH, type KvAllocator, type PrefixMatch } from './kv-allocator.js';
import type { BlockCopy, RequestSpec, SeqId } from './types.js';

const NO_HASH = -1;

interface PageTable {
  readonly spec: RequestSpec;
  readonly blocks: number[];
  /** Token slots the table has been grown to (admit/grow target). */
  numTokens: number;
  /** Leading blocks whose prefix hash has been published or matched. */
  numBlocksCommitted: number;
  /**
   * Set by fork (on parent and child): the partly written last block may have other readers.
   * Without a fork only full prompt blocks are ever shared (prefix caching publishes and matches
   * full blocks only) and a write goes into a partly written block or a new one, never into a full
   * one, so only a forked table can need a copy on write (checkInvariants checks this).
   */
  forked: boolean;
}

export interface PagedAllocatorConfig {
  readonly numBlocks: number;
  readonly pageSizeTokens: number;
  /** Reuse identical full prompt blocks across requests (vLLM's automatic prefix caching). */
  readonly prefixCaching: boolean;
}

/**
 * Paged KV memory (PagedAttention): fixed-size blocks, a page table per sequence, reference
 * counts, prefix sharing of full prompt blocks by a hash chain keyed by content and adapter,
 * copy-on-write of a shared partial block, and an LRU pool of freed blocks that still hold a
 * cached prefix. Every block is in exactly one of: the free list, the evictable pool, or in use
 * (reference count > 0).
 */
export class PagedAllocator implements KvAllocator {
  readonly kind = 'paged' as const;
  readonly pageSizeTokens: number;
  readonly numBlocksTotal: number;
  private readonly prefixCaching: boolean;
  private readonly refCount: Int32Array;
  private readonly blockHash: Float64Array;
  /** Blocks with no readers and no cached content; popped from the end, lowest id first. */
  private readonly freeList: number[] = [];
  /** Blocks with no readers that still hold a cached prefix; insertion order = LRU order. */
  private readonly evictable = new Map<number, true>();
  private readonly cachedBlockByHash = new Map<number, number>();
  private readonly tables = new Map<SeqId, PageTable>();
  /** Tables with `forked` set (a grow of one may copy on write: no batched grows). */
  private numForkedTables = 0;
  /** Chain hashes per request, computed once (a head-of-line request is matched every step). */
  private readonly chainCache = new WeakMap<RequestSpec, number[]>();

  constructor(config: PagedAllocatorConfig) {
    assertPosInt(config.numBlocks, 'numBlocks');
    assertPosInt(config.pageSizeTokens, 'pageSizeTokens');
    this.numBlocksTotal = config.numBlocks;
    this.pageSizeTokens = config.pageSizeTokens;
    this.prefixCaching = config.prefixCaching;
    this.refCount = new Int32Array(config.numBlocks);
    this.blockHash = new Float64Array(config.numBlocks).fill(NO_HASH);
    for (let b = config.numBlocks - 1; b >= 0; b--) this.freeList.push(b);
  }

  numBlocksFree(): number {
    return this.freeList.length + this.evictable.size;
  }

  numBlocksUsed(): number {
    return this.numBlocksTotal - this.numBlocksFree();
  }

  numTokensReserved(): number {
    return this.numBlocksUsed() * this.pageSizeTokens;
  }

  worstCaseBlocks(numTokens: number): number {
    return ceilDiv(numTokens, this.pageSizeTokens);
  }

  matchPrefix(spec: RequestSpec): PrefixMatch {
    if (!this.prefixCaching || spec.content === undefined) return NO_PREFIX_MATCH;
    // At least one prompt token is always computed: its logits give the first output token.
    const maxBlocks = Math.floor((spec.promptTokens - 1) / this.pageSizeTokens);
    const blocks: number[] = [];
    let numEvictable = 0;
    for (let i = 0; i < maxBlocks; i++) {
      const block = this.cachedBlockByHash.get(this.chainHashOf(spec, i));
      if (block === undefined) break;
      blocks.push(block);
      if (this.refCount[block] === 0) numEvictable++;
    }
    return { blocks, numTokens: blocks.length * this.pageSizeTokens, numEvictable };
  }

  numBlocksToAdmit(match: PrefixMatch, numTokens: number): number {
    const numNew = Math.max(0, ceilDiv(numTokens, this.pageSizeTokens) - match.blocks.length);
    return match.numEvictable + numNew;
  }

  /** Precondition: numBlocksToAdmit(match, numTokens) <= numBlocksFree(); the match is current. */
  admit(seqId: SeqId, spec: RequestSpec, match: PrefixMatch, numTokens: number): void {
    if (this.tables.has(seqId)) fail(`seq ${seqId} already has a page table`);
    assert(numTokens >= match.numTokens, 'admission must cover the matched prefix');
    assert(this.numBlocksToAdmit(match, numTokens) <= this.numBlocksFree(), 'admit without enough free blocks');
    const blocks: number[] = [];
    for (const block of match.blocks) {
      if (this.blockHash[block] === NO_HASH) fail(`matched block ${block} lost its hash`);
      if (this.refCount[block] === 0) this.evictable.delete(block);
      this.refCount[block]++;
      blocks.push(block);
    }
    const table: PageTable = { spec, blocks, numTokens: match.numTokens, numBlocksCommitted: match.blocks.length, forked: false };
    this.tables.set(seqId, table);
    this.extend(table, numTokens);
  }

  numBlocksToGrow(seqId: SeqId, numTokens: number): number {
    const table = this.table(seqId);
    const numNew = Math.max(0, ceilDiv(numTokens, this.pageSizeTokens) - table.blocks.length);
    return numNew + (this.needsCopyOnWrite(table, numTokens) ? 1 : 0);
  }

  /** Precondition: numBlocksToGrow(seqId, numTokens) <= numBlocksFree(). */
  grow(seqId: SeqId, numTokens: number): readonly BlockCopy[] {
    const table = this.table(seqId);
    // numBlocksToGrow(seqId, numTokens), without looking the table up twice.
    const copyOnWrite = this.needsCopyOnWrite(table, numTokens);
    const numNew = Math.max(0, ceilDiv(numTokens, this.pageSizeTokens) - table.blocks.length);
    assert(numNew + (copyOnWrite ? 1 : 0) <= this.numBlocksFree(), 'grow without enough free blocks');
    let copies = NO_BLOCK_COPIES;
    if (copyOnWrite) {
      const lastIndex = table.blocks.length - 1;
      const shared = table.blocks[lastIndex];
      const copy = this.takeBlock();
      this.refCount[copy] = 1;
      this.refCount[shared]--;
      assert(this.refCount[shared] > 0, 'a copy-on-write source keeps its other readers');
      table.blocks[lastIndex] = copy;
      copies = [{ srcBlock: shared, dstBlock: copy }];
    }
    this.extend(table, numTokens);
    return copies;
  }

  commitComputed(seqId: SeqId, numComputedTokens: number): void {
    const table = this.table(seqId);
    if (!this.prefixCaching || table.spec.content === undefined) return;
    const numFullPromptBlocks = Math.floor(
      Math.min(numComputedTokens, table.spec.promptTokens) / this.pageSizeTokens,
    );
    for (let i = table.numBlocksCommitted; i < numFullPromptBlocks; i++) {
      const block = table.blocks[i];
      const hash = this.chainHashOf(table.spec, i);
      // Another sequence may have computed the same block first: keep that one as the cached copy.
      if (this.blockHash[block] === NO_HASH && !this.cachedBlockByHash.has(hash)) {
        this.blockHash[block] = hash;
        this.cachedBlockByHash.set(hash, block);
      }
    }
    table.numBlocksCommitted = Math.max(table.numBlocksCommitted, numFullPromptBlocks);
  }

  fork(parentId: SeqId, childId: SeqId): void {
    const parent = this.table(parentId);
    if (this.tables.has(childId)) fail(`seq ${childId} already has a page table`);
    for (const block of parent.blocks) this.refCount[block]++;
    if (!parent.forked) this.numForkedTables++;
    parent.forked = true;
    this.numForkedTables++;
    this.tables.set(childId, {
      spec: parent.spec,
      blocks: parent.blocks.slice(),
      numTokens: parent.numTokens,
      numBlocksCommitted: parent.numBlocksCommitted,
      forked: true,
    });
  }

  free(seqId: SeqId): void {
    const table = this.table(seqId);
    const blocks = table.blocks;
    const refCount = this.refCount;
    // A block has a hash exactly while it is in cachedBlockByHash: with none cached (no prefix
    // caching, or prompts without content) every freed block goes to the free list unread.
    const anyCached = this.cachedBlockByHash.size > 0;
    // Tail first, so the tail of a cached prefix is the first to be evicted.
    for (let i = blocks.length - 1; i >= 0; i--) {
      const block = blocks[i];
      const readers = refCount[block] - 1;
      if (!(readers >= 0)) fail(`block ${block} freed more often than taken`);
      refCount[block] = readers;
      if (readers > 0) continue;
      if (anyCached && this.blockHash[block] !== NO_HASH) this.evictable.set(block, true);
      else this.freeList.push(block);
    }
    if (table.forked) this.numForkedTables--;
    this.tables.delete(seqId);
  }

  canBatchGrow(): boolean {
    return this.numForkedTables === 0;
  }

  takeBlocks(count: number, out: number[]): void {
    assert(count <= this.numBlocksFree(), 'takeBlocks without enough free blocks');
    for (let i = 0; i < count; i++) {
      const block = this.takeBlock();
      this.refCount[block] = 1;
      out[i] = block;
    }
  }

  appendBlocks(seqId: SeqId, blocks: readonly number[], count: number, numTokens: number): void {
    const table = this.table(seqId);
    if (table.forked) fail(`seq ${seqId}: appendBlocks to a forked table`);
    for (let i = 0; i < count; i++) table.blocks.push(blocks[i]);
    if (!(table.blocks.length === ceilDiv(numTokens, this.pageSizeTokens))) fail(`seq ${seqId}: ${count} blocks appended do not make a table of ${numTokens} tokens`);
    table.numTokens = Math.max(table.numTokens, numTokens);
  }

  hasSeq(seqId: SeqId): boolean {
    return this.tables.has(seqId);
  }

  blockTable(seqId: SeqId): readonly number[] {
    return this.table(seqId).blocks;
  }

  numTokensCovered(seqId: SeqId): number {
    return this.table(seqId).blocks.length * this.pageSizeTokens;
  }

  checkInvariants(): void {
    const expected = new Int32Array(this.numBlocksTotal);
    for (const table of this.tables.values()) {
      assert(table.blocks.length * this.pageSizeTokens >= table.numTokens, 'page table covers its tokens');
      for (const block of table.blocks) expected[block]++;
    }
    let numForked = 0;
    for (const table of this.tables.values()) if (table.forked) numForked++;
    assert(numForked === this.numForkedTables, 'forked tables counted');
    for (const table of this.tables.values()) {
      const partial = table.numTokens % this.pageSizeTokens === 0 ? undefined : table.blocks[Math.floor(table.numTokens / this.pageSizeTokens)];
      if (!table.forked && partial !== undefined && expected[partial] > 1) fail(`block ${partial}, partly written, is shared by a table that was never forked`);
    }
    const onFreeList = new Uint8Array(this.numBlocksTotal);
    for (const block of this.freeList) {
      if (onFreeList[block] !== 0) fail(`block ${block} twice on the free list`);
      onFreeList[block] = 1;
      if (this.blockHash[block] !== NO_HASH) fail(`free block ${block} still has a hash`);
    }
    for (const block of this.evictable.keys()) {
      if (onFreeList[block] !== 0) fail(`block ${block} both free and evictable`);
      if (this.blockHash[block] === NO_HASH) fail(`evictable block ${block} has no hash`);
    }
    let numUsed = 0;
    for (let b = 0; b < this.numBlocksTotal; b++) {
      if (!(this.refCount[b] === expected[b])) fail(`block ${b} refcount ${this.refCount[b]} != readers ${expected[b]}`);
      const isFree = onFreeList[b] === 1 || this.evictable.has(b);
      if (!(isFree === (this.refCount[b] === 0))) fail(`block ${b} free-ness disagrees with its refcount`);
      if (this.refCount[b] > 0) numUsed++;
    }
    assert(numUsed + this.numBlocksFree() === this.numBlocksTotal, 'used + free = total');
    for (const [hash, block] of this.cachedBlockByHash) {
      if (!(this.blockHash[block] === hash)) fail(`cache entry for block ${block} disagrees with its hash`);
    }
  }

  private table(seqId: SeqId): PageTable {
    const table = this.tables.get(seqId);
    if (table === undefined) fail(`seq ${seqId} has no page table`);
    return table;
  }

  private needsCopyOnWrite(table: PageTable, numTokens: number): boolean {
    if (!table.forked || numTokens <= table.numTokens || table.numTokens % this.pageSizeTokens === 0) return false;
    const writeBlock = table.blocks[Math.floor(table.numTokens / this.pageSizeTokens)];
    return writeBlock !== undefined && this.refCount[writeBlock] > 1;
  }

  private extend(table: PageTable, numTokens: number): void {
    const numBlocksNeeded = ceilDiv(numTokens, this.pageSizeTokens);
    while (table.blocks.length < numBlocksNeeded) {
      const block = this.takeBlock();
      this.refCount[block] = 1;
      table.blocks.push(block);
    }
    table.numTokens = Math.max(table.numTokens, numTokens);
  }

  /** Takes a never-cached block first; otherwise evicts the least recently used cached block. */
  private takeBlock(): number {
    const fresh = this.freeList.pop();
    if (fresh !== undefined) return fresh;
    const oldest = this.evictable.keys().next();
    assert(!oldest.done, 'no free block to take');
    const block = oldest.value;
    this.evictable.delete(block);
    this.cachedBlockByHash.delete(this.blockHash[block]);
    this.blockHash[block] = NO_HASH;
    return block;
  }

  private chainHashOf(spec: RequestSpec, blockIndex: number): number {
    let chain = this.chainCache.get(spec);
    if (chain === undefined) {
      chain = [];
      this.chainCache.set(spec, chain);
    }
    const adapterKey = spec.adapter === null ? 0 : hashString(spec.adapter);
    const content = spec.content;
    assert(content !== undefined, 'prefix hashing needs prompt content');
    for (let i = chain.length; i <= blockIndex; i++) {
      const parent = i === 0 ? 0 : chain[i - 1];
      const key = content.rangeKey(i * this.pageSizeTokens, (i + 1) * this.pageSizeTokens);
      chain.push(chainHash(parent, key, adapterKey));
    }
    return chain[blockIndex];
  }
}
