import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSimConfig } from '../../sim/config.js';
import { fleetTenantWeights } from '../../sim/workload/build.js';
import { loadServegenShares } from '../../sim/workload/servegen.js';
import { tracesDir } from '../sim/helpers.js';

const dir = tracesDir();
const file = dir === null ? null : join(dir, 'alibaba-servegen/servegen_client_traces.tar.gz');

function fleetWith(popularity: unknown) {
  return parseSimConfig({
    fleet: {
      pools: [{ name: 'a', model: 'llama2-7b', replicas: 1 }, { name: 'b', model: 'llama2-13b', replicas: 1 }],
      popularity,
      tenants: [
        { name: 'x', plan: 'standard', tier: 'a', weight: 1 },
        { name: 'y', plan: 'standard', tier: 'a', weight: 1 },
        { name: 'z', plan: 'standard', tier: 'b', weight: 3 },
      ],
    },
  }).fleet!;
}

describe('tenant popularity', () => {
  it('zipf spreads each tier over its tenants and keeps the tier totals', () => {
    const w = fleetTenantWeights(fleetWith({ source: 'zipf', s: 1 }));
    expect(w[0] + w[1]).toBeCloseTo(2, 12);
    expect(w[0] / w[1]).toBeCloseTo(2, 12);
    expect(w[2]).toBe(3);
  });

  it.skipIf(file === null || !existsSync(file))('servegen m-large: 162 clients, the top 10 send about 63%', () => {
    const shares = loadServegenShares(file!, 'language/m-large');
    expect(shares.length).toBe(162);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    const top10 = shares.slice(0, 10).reduce((a, b) => a + b, 0);
    expect(top10).toBeGreaterThan(0.55);
    expect(top10).toBeLessThan(0.7);
    expect(() => loadServegenShares(file!, 'language/nope')).toThrow(/pool = "language\/nope": no data\/language\/nope/);
    const w = fleetTenantWeights(fleetWith({ source: 'servegen', file, pool: 'language/m-large' }));
    expect(w[0] + w[1]).toBeCloseTo(2, 12);
    expect(w[0] / w[1]).toBeCloseTo(shares[0] / shares[1], 9);
  });
});
