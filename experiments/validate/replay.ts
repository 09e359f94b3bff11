// Replays an engine run's plan log through the policy core the simulator's replicas run: the
// same arrivals admitted at the logged step boundaries, schedule() at each logged start,
// onStepEnd() at each logged end. With the engine's own times the policy must make exactly the
// engine's plans, so KV blocks in use agree at every step; the first difference is reported.
import { createScheduler, type BatchPlan } from '../../engine/policy/index.js';
import type { SimConfig } from '../../sim/config.js';
import type { LoggedStep } from './plan-log.js';

export interface ReplayResult {
  readonly steps: number;
  /** Steps whose plan (items, preemptions, LoRA loads, copies, KV blocks in use) equals the engine's. */
  readonly equalSteps: number;
  /** Steps whose KV blocks in use equal the engine's. */
  readonly kvEqualSteps: number;
  /** The first step that differs, described; null when all agree. */
  readonly firstDifference: string | null;
}

function planKey(p: BatchPlan): string {
  return JSON.stringify([
    p.items.map((x) => [x.seqId, x.contextTokens, x.numNewTokens, x.isPrefill, x.samples, x.adapterSlot]),
    p.numPrefillTokens, p.numDecodeTokens, p.preempted, p.loraLoads, p.loraEvictions, p.blockCopies, p.kvBlocksUsedPerStep,
  ]);
}

export async function replayPlanLog(config: SimConfig, numBlocks: number, steps: readonly LoggedStep[]): Promise<ReplayResult> {
  const { schedulerConfig } = await import('../../sim/simulation.js');
  const { RngStreams } = await import('../../sim/kernel/rng.js');
  const { buildWorkload } = await import('../../sim/workload/build.js');
  const scheduler = createScheduler(schedulerConfig(config, numBlocks));
  const { source } = buildWorkload(config, new RngStreams(config.seed));
  let next = source.next();
  let id = 0;
  let equalSteps = 0;
  let kvEqualSteps = 0;
  let firstDifference: string | null = null;
  for (const logged of steps) {
    while (next !== null && next.arrivalUs <= logged.startUs) {
      scheduler.addRequest({
        id: id++, tenant: next.tenant, adapter: next.adapter, priorityClass: next.priorityClass, arrivalUs: next.arrivalUs,
        promptTokens: next.promptTokens, maxOutputTokens: next.outputTokens, ...(next.content !== undefined ? { content: next.content } : {}),
      });
      next = source.next();
    }
    const plan = scheduler.schedule({ nowUs: logged.startUs });
    const same = planKey(plan) === planKey(logged.plan);
    if (same) equalSteps++;
    if (plan.kvBlocksUsedPerStep[0] === logged.plan.kvBlocksUsedPerStep[0]) kvEqualSteps++;
    if (!same && firstDifference === null) {
      firstDifference = `step ${logged.plan.stepIndex} at ${logged.startUs} us: replay ${plan.items.length} items, ${plan.kvBlocksUsedPerStep[0]} KV blocks; ` +
        `engine ${logged.plan.items.length} items, ${logged.plan.kvBlocksUsedPerStep[0]} KV blocks`;
      // Once the schedules part, later steps compare different states: stop counting there.
      return { steps: steps.length, equalSteps, kvEqualSteps, firstDifference };
    }
    scheduler.onStepEnd(plan, { nowUs: logged.endUs });
  }
  return { steps: steps.length, equalSteps, kvEqualSteps, firstDifference };
}
