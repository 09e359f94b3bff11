import { describe, expect, it } from 'vitest';
import { findCapacity } from '../../experiments/capacity/search.js';

const BASE = { model: 'llama2-7b', gpu: 'h200', workload: { rate: 40, durationS: 3, outputTokens: 'uniform:10:40' }, sla: { ttftMsP99: 300, itlMsP99: 60 } };

describe('capacity bisection', () => {
  it('finds the fewest replicas meeting the SLA for every seed, with the failing neighbour one below', () => {
    const r = findCapacity(BASE, { target: 'replicas', seeds: [1, 2], maxReplicas: 16 });
    expect(r.answer).not.toBeNull();
    expect(r.atAnswer?.pass).toBe(true);
    if (r.answer! > 1) expect(r.failingNeighbour?.value).toBe(r.answer! - 1);
    expect(r.ttftHeadroom).toBeGreaterThanOrEqual(0);
    expect(r.gpus).toBe(r.answer);
  });

  it('finds the highest rate within the tolerance', () => {
    const r = findCapacity({ ...BASE, workload: { ...BASE.workload, rate: 5, durationS: 10 } }, { target: 'rate', seeds: [1], rateLow: 1, rateTolerance: 0.1 });
    expect(r.answer).not.toBeNull();
    expect(r.failingNeighbour).not.toBeNull();
    expect(r.failingNeighbour!.value).toBeGreaterThan(r.answer!);
    expect((r.failingNeighbour!.value - r.answer!) / r.failingNeighbour!.value).toBeLessThanOrEqual(0.1);
  });
});
