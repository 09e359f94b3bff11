import type { SimConfigInput } from '../../sim/config.js';

export type Fleet = NonNullable<SimConfigInput['fleet']>;

/**
 * Two small pools behind a JSQ router (7B and 13B on H200), four tenants with adapters and both
 * priorities, a short busy workload. `over` replaces fleet keys, `top` top-level keys.
 */
export function smallFleet(over: Partial<Fleet> = {}, top: Partial<SimConfigInput> = {}): SimConfigInput {
  return {
    gpu: 'h200',
    seed: 1,
    workload: { rate: 12, durationS: 30, inputTokens: 'uniform:50:600', outputTokens: 'uniform:20:200' },
    ...top,
    fleet: {
      pools: [
        { name: 'small', model: 'llama2-7b', replicas: 2, spares: 1 },
        { name: 'mid', model: 'llama2-13b', replicas: 3, spares: 0 },
      ],
      plans: { premium: { priority: 'premium', slaCredits: true }, standard: { priority: 'standard' } },
      tenants: [
        { name: 'a', plan: 'premium', tier: 'mid', weight: 3, numAdapters: 2 },
        { name: 'b', plan: 'standard', tier: 'mid', weight: 2 },
        { name: 'c', plan: 'standard', tier: 'small', weight: 2, numAdapters: 1 },
        { name: 'd', plan: 'premium', tier: 'small', weight: 1 },
      ],
      router: { policy: 'jsq' },
      pricing: { gpuHourUsd: { h200: 6 }, outputUsdPerMTokens: { small: 0.2, mid: 0.4 }, slaCreditUsdPerWindow: 10 },
      ...over,
    },
  };
}
