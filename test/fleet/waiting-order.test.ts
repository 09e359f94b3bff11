import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newSeqState } from '../../engine/policy/scheduler/scheduler.js';
import type { SeqState } from '../../engine/policy/types.js';
import { WaitingQueue } from '../../engine/policy/waiting-queue.js';

// WaitingQueue.nextOrderChangeUs answers by binary search over aging bands (made fast for the
// fleet's backlogs); this checks it against the plain definition: the earliest promotion of any
// request not yet at class 0.
function reference(seqs: readonly SeqState[], agingUs: number, nowUs: number): number {
  const classes = new Set(seqs.map((s) => s.spec.priorityClass));
  if (classes.size <= 1) return Infinity;
  let next = Infinity;
  for (const seq of seqs) {
    const waited = Math.max(0, nowUs - seq.spec.arrivalUs);
    if (seq.spec.priorityClass - Math.floor(waited / agingUs) <= 0) continue;
    next = Math.min(next, seq.spec.arrivalUs + (Math.floor(waited / agingUs) + 1) * agingUs);
  }
  return next;
}

function seq(id: number, arrivalUs: number, priorityClass: number): SeqState {
  return newSeqState({ id, tenant: 't', adapter: null, priorityClass, arrivalUs, promptTokens: 1, maxOutputTokens: 1 });
}

describe('waiting queue: next order change', () => {
  it('equals the plain definition for any queue, removals included', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 40 }), cls: fc.nat(3), remove: fc.boolean() }), { maxLength: 60 }),
        fc.integer({ min: 0, max: 3000 }),
        (agingUs, entries, extraUs) => {
          const q = new WaitingQueue(agingUs);
          const live: SeqState[] = [];
          let t = 0;
          entries.forEach((e, id) => {
            t += e.gap;
            const s = seq(id, t, e.cls);
            q.add(s);
            live.push(s);
          });
          entries.forEach((e, id) => {
            if (e.remove) {
              q.remove(live.find((s) => s.spec.id === id)!);
              live.splice(live.findIndex((s) => s.spec.id === id), 1);
            }
          });
          const nowUs = t + extraUs;
          expect(q.nextOrderChangeUs(nowUs)).toBe(reference(live, agingUs, nowUs));
        },
      ),
    );
  });
});
