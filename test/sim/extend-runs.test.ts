import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Scheduler } from '../../engine/policy/index.js';
import { parseSimConfig, type SimConfigInput } from '../../sim/config.js';
import { runConfig } from '../../sim/run.js';
import { smallFleet, type Fleet } from '../fleet/small-fleet.js';

/** Two pools behind a JSQ router (its load queries cut decode runs), tenants with adapters and priorities. */
function fleetInput(seed: number, faults?: Fleet['faults'], over: Partial<SimConfigInput> = {}): SimConfigInput {
  const pools: Fleet['pools'] = [
    { name: 'small', model: 'llama2-7b', replicas: 3, spares: 1 },
    { name: 'mid', model: 'llama2-13b', replicas: 4, spares: 1 },
  ];
  const workload: SimConfigInput['workload'] = { rate: 14, durationS: 25, inputTokens: 'uniform:50:600', outputTokens: 'lognormal:150:0.8:900' };
  return smallFleet({ pools, router: { policy: 'jsq', choices: 2 }, ...(faults !== undefined ? { faults } : {}) }, { seed, workload, ...over });
}

function outputs(input: SimConfigInput, extendDecodeRuns: boolean): { summary: string; requests: string } {
  const dir = mkdtempSync(join(tmpdir(), 'stratos-extend-'));
  runConfig(parseSimConfig(input), { outDir: dir, hooks: { extendDecodeRuns } });
  return { summary: readFileSync(join(dir, 'summary.json'), 'utf8'), requests: readFileSync(join(dir, 'requests.csv'), 'utf8') };
}

describe('lengthening decode runs in place (Replica.extendRun)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes the same bytes as ending every run at its horizon, and does lengthen runs', () => {
    const spy = vi.spyOn(Scheduler.prototype, 'extendDecodeRun');
    const input = fleetInput(3);
    const on = outputs(input, true);
    expect(spy.mock.calls.length).toBeGreaterThan(50);
    const numCalls = spy.mock.calls.length;
    const off = outputs(input, false);
    expect(spy.mock.calls.length).toBe(numCalls);
    expect(on.requests).toEqual(off.requests);
    expect(on.summary).toEqual(off.summary);
  });

  it('property: with failures (a lengthened run in flight loses only its last piece) the bytes are the same', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ pool: fc.constantFrom('small', 'mid'), replica: fc.nat(2), atS: fc.integer({ min: 1, max: 22 }), downS: fc.integer({ min: 1, max: 15 }) }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.nat(1),
        fc.integer({ min: 1, max: 1000 }),
        (schedule, failoverDelayS, maxRetries, seed) => {
          const input = fleetInput(seed, { schedule, failoverDelayS, maxRetries });
          const on = outputs(input, true);
          const off = outputs(input, false);
          expect(on.requests).toEqual(off.requests);
          expect(on.summary).toEqual(off.summary);
        },
      ),
      { numRuns: 8 },
    );
  });

  it('static batching and a contiguous KV cache (the baseline stack) write the same bytes too', () => {
    const input = fleetInput(5, undefined, { policy: 'static', kv: { allocator: 'contiguous' }, cost: { sampling: 'cpu' } });
    const on = outputs(input, true);
    const off = outputs(input, false);
    expect(on.requests).toEqual(off.requests);
    expect(on.summary).toEqual(off.summary);
  });
});
