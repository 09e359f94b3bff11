import { createScheduler, type SchedulerConfig } from '../engine/policy/index.js';
import { GPUS, kvCapacity, MODELS, type GpuName, type KvCapacity, type KvDtype, type ModelName, type ReplicaShape, type WeightDtype } from './catalog.js';
import type { SimConfig } from './config.js';
import type { CostModel } from './cost/cost-model.js';
import { RooflineCostModel } from './cost/roofline.js';
import { EventQueue } from './kernel/event-queue.js';
import { RequestRecords } from './metrics/records.js';
import { Replica, type StepRow } from './replica/replica.js';
import type { WorkloadRequest, WorkloadSource } from './workload/types.js';

export interface SimulationResult {
  readonly config: SimConfig;
  readonly records: RequestRecords;
  readonly replicas: readonly Replica[];
  readonly costModel: CostModel;
  readonly kv: KvCapacity;
  /** The last event of the run: the simulated duration from time 0. */
  readonly endUs: number;
}

export interface SimulationHooks {
  readonly onStep?: (row: StepRow) => void;
  /** Called every `progressEvery` arrivals with the simulated time (the CLI adds wall time). */
  readonly onProgress?: (simUs: number, numArrivals: number) => void;
  readonly progressEvery?: number;
}

export function replicaShape(config: SimConfig): ReplicaShape {
  return {
    model: MODELS[config.model as ModelName],
    gpu: GPUS[config.gpu as GpuName],
    tp: config.tp,
    weightDtype: config.weightDtype as WeightDtype,
    kvDtype: config.kvDtype as KvDtype,
  };
}

export function schedulerConfig(config: SimConfig, numBlocks: number): SchedulerConfig {
  const s = config.scheduler;
  return {
    policy: config.policy,
    maxNumSeqs: s.maxNumSeqs,
    maxNumBatchedTokens: s.maxNumBatchedTokens,
    maxSeqLenTokens: s.maxSeqLenTokens,
    kvAdmitFraction: s.kvAdmitFraction,
    watermarkFraction: s.watermarkFraction,
    agingUs: Math.round(s.agingS * 1e6),
    tenantCaps: s.tenantCaps,
    defaultTenantCap: s.defaultTenantCap,
    kv: { allocator: config.kv.allocator, numBlocks, pageSizeTokens: config.kv.pageSizeTokens, prefixCaching: config.kv.prefixCaching },
    lora: { numSlots: config.lora.numSlots, eviction: config.lora.eviction },
  };
}

/** Steps one replica may run before the simulation gives up (an explicit bound, not a limit users meet). */
const MAX_STEPS_PER_REPLICA = 2_000_000_000;

/**
 * Runs a workload through `config.replicas` replicas (round-robin routing) until every request
 * has ended. The event queue holds one pending arrival (the workload is pulled lazily) and, in
 * step mode, one step-end or wake-up per replica.
 */
export function runSimulation(config: SimConfig, source: WorkloadSource, hooks: SimulationHooks = {}): SimulationResult {
  const shape = replicaShape(config);
  const kv = kvCapacity({
    shape,
    gpuMemoryUtilization: config.kv.gpuMemoryUtilization,
    maxNumBatchedTokens: config.scheduler.maxNumBatchedTokens,
    pageSizeTokens: config.kv.pageSizeTokens,
  });
  const numBlocks = config.kv.numBlocks ?? kv.numBlocks;
  const costModel = new RooflineCostModel(shape, {
    memoryEfficiency: config.cost.memoryEfficiency,
    gemmEfficiency: config.cost.gemmEfficiency,
    attentionEfficiency: config.cost.attentionEfficiency,
    hostOverheadUs: config.cost.hostOverheadUs,
    sampling: config.cost.sampling,
    cpuSamplingUsPerToken: config.cost.cpuSamplingUsPerToken,
    allReduceLatencyUs: 8,
    loraRank: config.lora.rank,
  });
  const records = new RequestRecords();
  const requests: WorkloadRequest[] = [];
  const lazy = config.mode === 'lazy';
  const windowUs = Math.round(config.sla.windowS * 1e6);
  const replicas: Replica[] = [];
  for (let r = 0; r < config.replicas; r++) {
    const scheduler = createScheduler(schedulerConfig(config, numBlocks));
    replicas.push(
      new Replica(r, scheduler, costModel, records, (id) => requests[id], { lazy, maxSteps: MAX_STEPS_PER_REPLICA, ...(hooks.onStep ? { onStep: hooks.onStep } : {}) }, windowUs),
    );
  }

  const queue = new EventQueue();
  /** Step mode: whether a step-end or wake event for the replica is already queued. */
  const boundaryQueued = new Array<boolean>(replicas.length).fill(false);
  let lastArrivalUs = 0;
  const pullNext = (): void => {
    const req = source.next();
    if (req === null) return;
    if (req.arrivalUs < lastArrivalUs) throw new Error(`workload arrival times decrease at request ${requests.length}`);
    lastArrivalUs = req.arrivalUs;
    const replica = requests.length % replicas.length;
    const id = records.add({ tenant: req.tenant, adapter: req.adapter, replica, arrivalUs: req.arrivalUs, inputTokens: req.promptTokens, outputTokens: req.outputTokens });
    requests.push(req);
    queue.push({ timeUs: req.arrivalUs, kind: 'arrival', replica, payload: id });
  };
  const queueBoundary = (r: number): void => {
    const t = replicas[r].nextEventUs;
    if (!boundaryQueued[r] && t !== Infinity) {
      queue.push({ timeUs: t, kind: replicas[r].hasPlanInFlight ? 'step-end' : 'wake', replica: r, payload: 0 });
      boundaryQueued[r] = true;
    }
  };

  pullNext();
  const progressEvery = hooks.progressEvery ?? 10_000;
  let numArrivals = 0;
  // Bound: every event is an arrival, a wake-up (at most one per arrival) or, in step mode, the
  // end of a step (each replica runs at most MAX_STEPS_PER_REPLICA): exceeding this is a bug.
  const stepEventBound = lazy ? 0 : replicas.length * MAX_STEPS_PER_REPLICA;
  for (let numEvents = 0; queue.size > 0; numEvents++) {
    if (numEvents > 2 * (numArrivals + 1) + stepEventBound) throw new Error(`event bound exceeded after ${numEvents} events and ${numArrivals} arrivals`);
    const ev = queue.pop()!;
    const replica = replicas[ev.replica];
    switch (ev.kind) {
      case 'arrival':
        if (lazy) replica.advanceBefore(ev.timeUs);
        replica.deliver(ev.payload, ev.timeUs);
        if (!lazy) queueBoundary(ev.replica);
        pullNext();
        if (++numArrivals % progressEvery === 0) hooks.onProgress?.(ev.timeUs, numArrivals);
        break;
      case 'step-end':
      case 'wake':
        boundaryQueued[ev.replica] = false;
        replica.stepAt(ev.timeUs);
        queueBoundary(ev.replica);
        break;
    }
  }
  if (lazy) for (const replica of replicas) replica.advanceBefore(Infinity);

  let endUs = lastArrivalUs;
  for (let id = 0; id < records.size; id++) if (records.finishUs[id] > endUs) endUs = records.finishUs[id];
  for (const replica of replicas) replica.stats.closeAt(endUs);
  return { config, records, replicas, costModel, kv: { ...kv, numBlocks, numTokens: numBlocks * config.kv.pageSizeTokens }, endUs };
}
