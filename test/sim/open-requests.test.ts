import { describe, expect, it } from 'vitest';
import { OpenRequests } from '../../sim/workload/open-requests.js';

const req = (arrivalUs: number) => ({ arrivalUs, tenant: 't', adapter: null, priorityClass: 0, promptTokens: 8, outputTokens: 4 });

describe('OpenRequests', () => {
  it('hands out dense ids, keeps a request until it is released, and says why a read fails', () => {
    const open = new OpenRequests();
    expect(open.add(req(0))).toBe(0);
    expect(open.add(req(5))).toBe(1);
    expect(open.get(1).arrivalUs).toBe(5);
    open.release(0);
    expect(open.isOpen(0)).toBe(false);
    expect(open.isOpen(1)).toBe(true);
    expect(open.size).toBe(2);
    expect(() => open.get(0)).toThrow(/request 0 has ended/);
    expect(() => open.get(2)).toThrow(/request 2 was never added/);
  });

  it('refuses a second release (allocate and free are paired)', () => {
    const open = new OpenRequests();
    open.add(req(0));
    open.release(0);
    expect(() => open.release(0)).toThrow(/released twice/);
  });
});
