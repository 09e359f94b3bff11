import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../sim/kernel/event-queue.js';
import { RngStreams } from '../../sim/kernel/rng.js';

describe('event queue', () => {
  it('orders by time, then kind rank, then insertion', () => {
    const q = new EventQueue();
    q.push({ timeUs: 5, kind: 'wake', replica: 0, payload: 1 });
    q.push({ timeUs: 5, kind: 'arrival', replica: 0, payload: 2 });
    q.push({ timeUs: 3, kind: 'step-end', replica: 0, payload: 3 });
    q.push({ timeUs: 5, kind: 'step-end', replica: 0, payload: 4 });
    q.push({ timeUs: 5, kind: 'arrival', replica: 0, payload: 5 });
    const out: number[] = [];
    for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(e.payload);
    expect(out).toEqual([3, 2, 5, 4, 1]);
  });
  it('rejects non-integer times', () => {
    expect(() => new EventQueue().push({ timeUs: 1.5, kind: 'arrival', replica: 0, payload: 0 })).toThrow(/integer/);
  });
});

describe('rng streams', () => {
  it('same seed and name give the same stream; names are independent', () => {
    const a = new RngStreams(7).fork('x');
    const b = new RngStreams(7);
    b.fork('y')(); // drawing from another stream does not shift x
    const bx = b.fork('x');
    expect([a(), a(), a()]).toEqual([bx(), bx(), bx()]);
    expect(new RngStreams(8).fork('x')()).not.toEqual(new RngStreams(7).fork('x')());
  });
});
