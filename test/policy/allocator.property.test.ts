import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ContiguousAllocator, PagedAllocator, type KvAllocator, type RequestSpec } from '../../engine/policy/index.js';

// The model: each live sequence is just a token count and a content family. Real code has
// blocks, refcounts, hash chains and an LRU pool; the model has none of that.
type Op =
  | { kind: 'admit'; family: number; promptTokens: number; adapter: number }
  | { kind: 'grow'; pick: number; numTokens: number }
  | { kind: 'commit'; pick: number }
  | { kind: 'fork'; pick: number }
  | { kind: 'free'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('admit' as const), family: fc.integer({ min: 0, max: 3 }), promptTokens: fc.integer({ min: 1, max: 200 }), adapter: fc.integer({ min: 0, max: 1 }) }),
  fc.record({ kind: fc.constant('grow' as const), pick: fc.nat(), numTokens: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('commit' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('fork' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
);

function familySpec(id: number, family: number, promptTokens: number, adapter: number): RequestSpec {
  // Family f's token i is f * 1000 + i: prompts of one family share every common prefix.
  return {
    id,
    tenant: 't',
    adapter: adapter === 0 ? null : 'a',
    priorityClass: 0,
    arrivalUs: 0,
    promptTokens,
    maxOutputTokens: 1,
    content: { rangeKey: (start, end) => family * 1_000_003 + start * 1009 + end },
  };
}

interface Live {
  id: number;
  tokens: number;
  spec: RequestSpec;
}

function runOps(allocator: KvAllocator, ops: Op[], check: (live: Live[]) => void): void {
  const live: Live[] = [];
  let nextId = 0;
  for (const op of ops) {
    if (op.kind === 'admit') {
      const spec = familySpec(nextId, op.family, op.promptTokens, op.adapter);
      const match = allocator.matchPrefix(spec);
      const need = allocator.numBlocksToAdmit(match, op.promptTokens);
      if (need <= allocator.numBlocksFree()) {
        allocator.admit(nextId, spec, match, op.promptTokens);
        live.push({ id: nextId, tokens: op.promptTokens, spec });
      }
      nextId++;
    } else if (live.length > 0) {
      const index = op.pick % live.length;
      const seq = live[index];
      if (op.kind === 'grow') {
        const target = seq.tokens + op.numTokens;
        if (allocator.numBlocksToGrow(seq.id, target) <= allocator.numBlocksFree()) {
          allocator.grow(seq.id, target);
          seq.tokens = target;
        }
      } else if (op.kind === 'commit') {
        allocator.commitComputed(seq.id, seq.tokens);
      } else if (op.kind === 'fork' && allocator.kind === 'paged') {
        allocator.fork(seq.id, nextId);
        live.push({ id: nextId++, tokens: seq.tokens, spec: seq.spec });
      } else if (op.kind === 'free') {
        allocator.free(seq.id);
        live.splice(index, 1);
      }
    }
    allocator.checkInvariants();
    check(live);
  }
  for (const seq of live) allocator.free(seq.id);
  allocator.checkInvariants();
}

describe('paged KV allocator (model-based)', () => {
  it('never over-commits: used + free = total and used <= total after every operation', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.constantFrom(1, 4, 8, 16), fc.boolean(), fc.array(opArb, { maxLength: 80 }), (numBlocks, page, caching, ops) => {
        const allocator = new PagedAllocator({ numBlocks, pageSizeTokens: page, prefixCaching: caching });
        runOps(allocator, ops, () => {
          expect(allocator.numBlocksUsed() + allocator.numBlocksFree()).toBe(numBlocks);
          expect(allocator.numBlocksUsed()).toBeLessThanOrEqual(numBlocks);
        });
        expect(allocator.numBlocksFree()).toBe(numBlocks);
      }),
    );
  });

  it('conserves blocks: without sharing, used blocks = sum over sequences of ceil(tokens / page)', () => {
    const noForks = opArb.filter((op) => op.kind !== 'fork');
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.constantFrom(1, 4, 16), fc.array(noForks, { maxLength: 80 }), (numBlocks, page, ops) => {
        const allocator = new PagedAllocator({ numBlocks, pageSizeTokens: page, prefixCaching: false });
        runOps(allocator, ops, (live) => {
          const expected = live.reduce((sum, s) => sum + Math.ceil(s.tokens / page), 0);
          expect(allocator.numBlocksUsed()).toBe(expected);
          for (const s of live) expect(allocator.blockTable(s.id).length).toBe(Math.ceil(s.tokens / page));
        });
      }),
    );
  });

  it('with sharing, used blocks never exceed the unshared total and every table covers its tokens', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 64 }), fc.constantFrom(2, 4, 8), fc.array(opArb, { maxLength: 80 }), (numBlocks, page, ops) => {
        const allocator = new PagedAllocator({ numBlocks, pageSizeTokens: page, prefixCaching: true });
        runOps(allocator, ops, (live) => {
          const unshared = live.reduce((sum, s) => sum + Math.ceil(s.tokens / page), 0);
          expect(allocator.numBlocksUsed()).toBeLessThanOrEqual(unshared);
          for (const s of live) expect(allocator.numTokensCovered(s.id)).toBeGreaterThanOrEqual(s.tokens);
        });
      }),
    );
  });

  it('shared prefixes return the same blocks: a committed prompt is matched block for block', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 4, 16), fc.integer({ min: 2, max: 300 }), fc.integer({ min: 2, max: 300 }), fc.integer({ min: 0, max: 1 }), (page, lenA, lenB, adapter) => {
        const allocator = new PagedAllocator({ numBlocks: 700, pageSizeTokens: page, prefixCaching: true });
        const a = familySpec(0, 7, lenA, adapter);
        allocator.admit(0, a, allocator.matchPrefix(a), lenA);
        allocator.commitComputed(0, lenA);
        const b = familySpec(1, 7, lenB, adapter);
        const match = allocator.matchPrefix(b);
        // Full blocks of the common prefix, keeping at least one of B's tokens to compute.
        const expectedBlocks = Math.min(Math.floor(lenA / page), Math.floor((lenB - 1) / page));
        expect(match.blocks).toEqual(allocator.blockTable(0).slice(0, expectedBlocks));
        // Another adapter never shares: the hash chain is keyed by adapter.
        const other = familySpec(2, 7, lenB, 1 - adapter);
        expect(allocator.matchPrefix(other).blocks).toEqual([]);
        // After A is freed its blocks stay cached (LRU pool) and still match.
        allocator.free(0);
        expect(allocator.matchPrefix(b).blocks).toEqual(match.blocks);
        allocator.checkInvariants();
      }),
    );
  });

  it('copy-on-write: after a fork, the first write to a shared partial block copies it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 32 }), fc.integer({ min: 1, max: 200 }), (page, tokens) => {
        fc.pre(tokens % page !== 0);
        const allocator = new PagedAllocator({ numBlocks: 256, pageSizeTokens: page, prefixCaching: false });
        const spec = familySpec(0, 1, tokens, 0);
        allocator.admit(0, spec, allocator.matchPrefix(spec), tokens);
        allocator.fork(0, 1);
        const before = allocator.blockTable(0).slice();
        const copies = allocator.grow(1, tokens + 1);
        expect(copies).toEqual([{ srcBlock: before[before.length - 1], dstBlock: allocator.blockTable(1)[before.length - 1] }]);
        expect(allocator.blockTable(0)).toEqual(before);
        expect(allocator.blockTable(1).slice(0, -1)).toEqual(before.slice(0, -1));
        // The parent now owns its partial block alone and writes in place.
        expect(allocator.grow(0, tokens + 1)).toEqual([]);
        allocator.checkInvariants();
      }),
    );
  });
});

describe('contiguous KV allocator (model-based)', () => {
  it('reserves one max-length slot per sequence and conserves slots', () => {
    const noForks = opArb.filter((op) => op.kind !== 'fork');
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.constantFrom(1, 4, 16), fc.array(noForks, { maxLength: 60 }), (numBlocks, page, ops) => {
        const maxSeqLen = 256;
        const allocator = new ContiguousAllocator({ numBlocks, pageSizeTokens: page, maxSeqLenTokens: maxSeqLen });
        const clamped = ops.map((op) => (op.kind === 'grow' ? { ...op, numTokens: 1 } : op));
        runOps(allocator, clamped.filter((op) => op.kind !== 'grow'), (live) => {
          expect(allocator.numBlocksUsed()).toBe(live.length * Math.ceil(maxSeqLen / page));
          expect(allocator.numBlocksUsed()).toBeLessThanOrEqual(numBlocks);
          expect(allocator.numTokensReserved()).toBe(live.length * Math.ceil(maxSeqLen / page) * page);
        });
      }),
    );
  });
});
