import { createScheduler, type SchedulerConfig } from '../engine/policy/index.js';
import { GPUS, kvCapacity, MODELS, type GpuName, type KvCapacity, type KvDtype, type ModelName, type ReplicaShape, type WeightDtype } from './catalog.js';
import type { SimConfig } from './config.js';
import type { CostModel } from './cost/cost-model.js';
import { createCostModel } from './cost/create.js';
import { DEFAULT_ROOFLINE } from './cost/roofline.js';
import { adapterBytes, DiskLoadCostModel, LoraRegistry } from './fleet/lora-registry.js';
import { Router, type ReplicaView } from './fleet/router.js';
import type { FleetConfig } from './fleet/schema.js';
import { EventQueue } from './kernel/event-queue.js';
import { RngStreams } from './kernel/rng.js';
import { RequestRecords } from './metrics/records.js';
import { ItlWindows, TenantItl } from './metrics/replica-stats.js';
import { Replica, type StepRow } from './replica/replica.js';
import { OpenRequests } from './workload/open-requests.js';
import type { WorkloadSource } from './workload/types.js';

/** One pool of identical replicas (a model tier). Without `fleet` the top-level keys make the only pool. */
export interface PoolRuntime {
  readonly index: number;
  readonly name: string;
  readonly model: ModelName;
  readonly gpu: GpuName;
  readonly tp: number;
  readonly costModel: CostModel;
  readonly kv: KvCapacity;
  /** Slots of this pool (indices into the replica slots), fixed at start: N + spares + autoscale headroom. */
  readonly slots: readonly number[];
  /** Slots the router sends to (includes failed slots whose failure is not yet detected). */
  up: number[];
  /** Idle warm spares (provisioned, paid for, not routed to). */
  spares: number[];
  /** Replicas the autoscaler wants serving. */
  targetReplicas: number;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Σ provisioned GPU × µs (spares and failed hardware included). */
  gpuUs: number;
  numFailures: number;
  numScaleUps: number;
  numScaleDowns: number;
  peakUp: number;
  /** Σ serving (routed-to) GPU × µs, over the run and inside the first day's peak window. */
  servingGpuUs: number;
  servingPeakGpuUs: number;
}

export interface FleetOutcome {
  readonly pools: readonly PoolRuntime[];
  /** Pool of every replica slot. */
  readonly slotPool: readonly number[];
  readonly registry: LoraRegistry;
  readonly routerRefusals: ReadonlyMap<string, number>;
  readonly numRetries: number;
  readonly numFailedRequests: number;
  /** Request index → pool index (-1 when refused before a pool was known). */
  readonly requestPool: Int32Array;
}

export interface SimulationResult {
  readonly config: SimConfig;
  readonly records: RequestRecords;
  /** Every replica that ran (a replaced or recovered replica is a new object; the failed one stays here for its stats). */
  readonly replicas: readonly Replica[];
  /** The first pool's cost model and KV capacity (the only ones without `fleet`). */
  readonly costModel: CostModel;
  readonly kv: KvCapacity;
  /** The last event of the run: the simulated duration from time 0. */
  readonly endUs: number;
  /** Present when the config has `fleet`. */
  readonly fleet?: FleetOutcome;
}

export interface SimulationHooks {
  readonly onStep?: (row: StepRow) => void;
  /** Called every `progressEvery` arrivals with the simulated time (the CLI adds wall time). */
  readonly onProgress?: (simUs: number, numArrivals: number) => void;
  readonly progressEvery?: number;
  /**
   * Lazy mode: lengthen a decode run in place at a boundary where nothing changes (default true; see
   * Replica.extendRun). Outputs are the same either way (tests compare both). Off with the
   * autoscaler, whose ticks read per-request progress in mid-run, and with `onStep`.
   */
  readonly extendDecodeRuns?: boolean;
  /**
   * Diagnostics (what-if pricing, experiments/validate/knock-on.ts): wraps each pool's cost model
   * before its replicas are built. A wrapper without the decode-run fast path makes the replicas price
   * every step through stepUs.
   */
  readonly wrapCostModel?: (model: CostModel) => CostModel;
}

export function replicaShape(config: SimConfig): ReplicaShape {
  return poolShape(config, config.model as ModelName, config.gpu as GpuName, config.tp);
}

function poolShape(config: SimConfig, model: ModelName, gpu: GpuName, tp: number): ReplicaShape {
  return { model: MODELS[model], gpu: GPUS[gpu], tp, weightDtype: config.weightDtype as WeightDtype, kvDtype: config.kvDtype as KvDtype };
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

/**
 * The one place a cost model is built: the GPU's calibration profile (sim/cost/create.ts) or, with
 * `cost.model: roofline`, the analytic model with the config's efficiencies; `loraRank` sizes
 * adapter loads and matmuls.
 */
export function buildCostModel(config: SimConfig, shape: ReplicaShape, loraRank: number = config.lora.rank): CostModel {
  const c = config.cost;
  return createCostModel(shape, {
    costModel: c.model,
    roofline: {
      memoryEfficiency: c.memoryEfficiency,
      gemmEfficiency: c.gemmEfficiency,
      attentionEfficiency: c.attentionEfficiency,
      hostOverheadUs: c.hostOverheadUs,
      hostOverheadPerSeqUs: c.hostOverheadPerSeqUs,
      sampling: c.sampling,
      cpuSamplingUsPerToken: c.cpuSamplingUsPerToken ?? DEFAULT_ROOFLINE.cpuSamplingUsPerToken,
      allReduceLatencyUs: DEFAULT_ROOFLINE.allReduceLatencyUs,
      loraRank,
    },
    pageSizeTokens: config.kv.pageSizeTokens,
    samplingMethod: c.samplingMethod,
    ...(c.cpuSamplingUsPerToken !== undefined ? { cpuSamplingUsPerToken: c.cpuSamplingUsPerToken } : {}),
    ...(c.profile !== undefined ? { profilePath: c.profile } : {}),
    kvCache: config.kv.cache,
    rowBuckets: c.rowBuckets,
    forwardOverheadUs: c.forwardOverheadUs,
    sampledRowOverheadUs: c.sampledRowOverheadUs,
    qkvFused: c.qkvFused,
    power: c.power === 'profile',
  });
}

/** Steps one replica may run before the simulation gives up (an explicit bound, not a limit users meet). */
const MAX_STEPS_PER_REPLICA = 2_000_000_000;

interface PoolSpec {
  readonly name: string;
  readonly model: ModelName;
  readonly gpu: GpuName;
  readonly tp: number;
  readonly replicas: number;
  readonly spares: number;
  readonly minReplicas: number;
  readonly maxReplicas: number;
}

function poolSpecs(config: SimConfig, fleet: FleetConfig | null): PoolSpec[] {
  if (fleet === null) {
    const n = config.replicas;
    return [{ name: config.model, model: config.model as ModelName, gpu: config.gpu as GpuName, tp: config.tp, replicas: n, spares: 0, minReplicas: n, maxReplicas: n }];
  }
  return fleet.pools.map((p) => ({
    name: p.name,
    model: p.model as ModelName,
    gpu: (p.gpu ?? config.gpu) as GpuName,
    tp: p.tp,
    replicas: p.replicas,
    spares: p.spares,
    minReplicas: p.minReplicas ?? p.replicas,
    maxReplicas: p.maxReplicas ?? p.replicas,
  }));
}

/** Popularity-weighted mean adapter rank of a pool's tenants (the rank its cost model prices). */
function poolLoraRank(config: SimConfig, fleet: FleetConfig, registry: LoraRegistry, poolName: string): number {
  const tenants = fleet.tenants.filter((t) => t.tier === poolName);
  let weight = 0;
  let sum = 0;
  for (const t of tenants) {
    for (const a of registry.adaptersOf([t.name])) {
      sum += t.weight * a.rank;
      weight += t.weight;
    }
  }
  return weight > 0 ? Math.max(1, Math.round(sum / weight)) : config.lora.rank;
}

/**
 * Runs a workload through a fleet of replica pools until every request has ended. Without
 * `config.fleet` the fleet is one pool of `config.replicas` replicas with round-robin routing and
 * no router limits, which is exactly the single-pool simulator (same bytes out).
 *
 * Events: the queue holds one pending arrival (the workload is pulled lazily), in step mode one
 * step-end or wake-up per replica, and with a fleet its faults, failover detections, recoveries,
 * autoscaler ticks and provisionings (fleet events go first at equal times). Routing happens when
 * an arrival is handled; lazy replicas are advanced only when an event concerns them (their
 * arrival, a load query by the router, a fault), so a replica runs its own steps in between.
 */
export function runSimulation(config: SimConfig, source: WorkloadSource, hooks: SimulationHooks = {}): SimulationResult {
  const fleet = config.fleet ?? null;
  const lazy = config.mode === 'lazy';
  const windowUs = Math.round(config.sla.windowS * 1e6);
  const records = new RequestRecords();
  const requests = new OpenRequests();
  const registry = fleet !== null ? new LoraRegistry(fleet) : null;

  // ---- pools and replica slots ----
  const pools: PoolRuntime[] = [];
  const slotPool: number[] = [];
  const slotReplica: (Replica | null)[] = [];
  /** Bumped whenever a slot gets a new replica or fails, so stale step events are skipped. */
  const slotGeneration: number[] = [];
  /** Failed and not yet recovered. */
  const slotFailed: boolean[] = [];
  /** Provisioned since (µs), or -1 when not paid for. */
  const slotPaidSinceUs: number[] = [];
  /** Request ids dispatched to the slot's current replica (ended ones pruned lazily). */
  const slotRequests: number[][] = [];
  /** Requests caught on a failed slot, waiting for the failure to be detected. */
  const slotOrphans: number[][] = [];
  const specs = poolSpecs(config, fleet);
  const allReplicas: Replica[] = [];
  for (const spec of specs) {
    const shape = poolShape(config, spec.model, spec.gpu, spec.tp);
    const kv0 = kvCapacity({ shape, gpuMemoryUtilization: config.kv.gpuMemoryUtilization, maxNumBatchedTokens: config.scheduler.maxNumBatchedTokens, pageSizeTokens: config.kv.pageSizeTokens });
    const numBlocks = config.kv.numBlocks ?? kv0.numBlocks;
    let costModel: CostModel;
    if (fleet === null || registry === null) costModel = buildCostModel(config, shape);
    else {
      const rank = poolLoraRank(config, fleet, registry, spec.name);
      costModel = buildCostModel(config, shape, rank);
      if (fleet.lora.source === 'disk') costModel = new DiskLoadCostModel(costModel, adapterBytes(shape.model, rank), shape.gpu.pcieBytesPerS, fleet.lora.diskBytesPerS);
    }
    if (hooks.wrapCostModel !== undefined) costModel = hooks.wrapCostModel(costModel);
    const numSlots = Math.max(spec.replicas, spec.maxReplicas) + spec.spares;
    const slots: number[] = [];
    for (let k = 0; k < numSlots; k++) {
      slots.push(slotPool.length);
      slotPool.push(pools.length);
      slotReplica.push(null);
      slotGeneration.push(0);
      slotFailed.push(false);
      slotPaidSinceUs.push(-1);
      slotRequests.push([]);
      slotOrphans.push([]);
    }
    pools.push({
      index: pools.length,
      name: spec.name,
      model: spec.model,
      gpu: spec.gpu,
      tp: spec.tp,
      costModel,
      kv: { ...kv0, numBlocks, numTokens: numBlocks * config.kv.pageSizeTokens },
      slots,
      up: [],
      spares: [],
      targetReplicas: spec.replicas,
      minReplicas: spec.minReplicas,
      maxReplicas: spec.maxReplicas,
      gpuUs: 0,
      numFailures: 0,
      numScaleUps: 0,
      numScaleDowns: 0,
      peakUp: 0,
      servingGpuUs: 0,
      servingPeakGpuUs: 0,
    });
  }
  /** ITL samples by tenant, fleet-wide: shared by every replica (ReplicaStats.itlByTenant). */
  const tenantItl = new TenantItl();
  /** ITL samples by SLA window, one map per pool shared by its replicas (ReplicaStats.itlByWindow). */
  const itlWindowsOfPool = pools.map(() => new ItlWindows());
  // The autoscaler's SLA signal reads records of requests in mid-run, which a lengthened run
  // writes only when it ends: keep plan-per-horizon there.
  const extendRuns = hooks.extendDecodeRuns !== false && !(fleet?.autoscaler.enabled ?? false);
  const newReplica = (slot: number): Replica => {
    const pool = pools[slotPool[slot]];
    const scheduler = createScheduler(schedulerConfig(config, pool.kv.numBlocks));
    const replica = new Replica(slot, scheduler, pool.costModel, records, requests, { lazy, maxSteps: MAX_STEPS_PER_REPLICA, extendRuns, ...(hooks.onStep ? { onStep: hooks.onStep } : {}) }, windowUs, tenantItl, itlWindowsOfPool[pool.index]);
    slotReplica[slot] = replica;
    slotGeneration[slot]++;
    slotRequests[slot] = [];
    allReplicas.push(replica);
    return replica;
  };
  const pay = (slot: number, nowUs: number): void => {
    if (slotPaidSinceUs[slot] < 0) slotPaidSinceUs[slot] = nowUs;
  };
  const unpay = (slot: number, nowUs: number): void => {
    if (slotPaidSinceUs[slot] < 0) return;
    const pool = pools[slotPool[slot]];
    pool.gpuUs += (nowUs - slotPaidSinceUs[slot]) * pool.tp;
    slotPaidSinceUs[slot] = -1;
  };
  // Serving time (in `up`), for per-GPU figures when failures or the autoscaler change the pool.
  const diurnal = config.workload.diurnal;
  const peakStartUs = diurnal === undefined ? 0 : Math.round(diurnal.startHour * 3600e6);
  const peakEndUs = diurnal === undefined ? Infinity : Math.round(diurnal.endHour * 3600e6);
  const slotServingSinceUs: number[] = slotPool.map(() => -1);
  const startServing = (slot: number, nowUs: number): void => {
    if (slotServingSinceUs[slot] < 0) slotServingSinceUs[slot] = nowUs;
  };
  const stopServing = (slot: number, nowUs: number): void => {
    const since = slotServingSinceUs[slot];
    if (since < 0) return;
    const pool = pools[slotPool[slot]];
    pool.servingGpuUs += (nowUs - since) * pool.tp;
    pool.servingPeakGpuUs += Math.max(0, Math.min(nowUs, peakEndUs) - Math.max(since, peakStartUs)) * pool.tp;
    slotServingSinceUs[slot] = -1;
  };
  for (let p = 0; p < pools.length; p++) {
    const spec = specs[p];
    const pool = pools[p];
    for (let k = 0; k < spec.replicas; k++) {
      newReplica(pool.slots[k]);
      pool.up.push(pool.slots[k]);
      pay(pool.slots[k], 0);
      startServing(pool.slots[k], 0);
    }
    for (let k = 0; k < spec.spares; k++) {
      const slot = pool.slots[spec.replicas + k];
      pool.spares.push(slot);
      pay(slot, 0);
    }
    pool.peakUp = pool.up.length;
  }
  const poolIndex = new Map(pools.map((p) => [p.name, p.index] as const));

  // ---- router ----
  const rngs = new RngStreams(config.seed);
  const router = fleet !== null ? new Router(fleet, poolIndex, records, rngs.fork('fleet/router')) : null;
  const queue = new EventQueue();
  /** Step mode: whether a step-end or wake event for the slot's replica is already queued. */
  const boundaryQueued: boolean[] = slotPool.map(() => false);
  const advance = (slot: number, timeUs: number): void => {
    const replica = slotReplica[slot];
    if (lazy && replica !== null && replica !== undefined && !slotFailed[slot]) replica.advanceBefore(timeUs);
  };
  const view: ReplicaView = {
    advance,
    queueLength: (slot) => slotReplica[slot]!.numInSystem(),
    kvBlocksUsed: (slot) => slotReplica[slot]!.scheduler.allocator.numBlocksUsed(),
    slotOf: (id) => records.replica[id],
  };
  const queueBoundary = (slot: number): void => {
    const replica = slotReplica[slot]!;
    const t = replica.nextEventUs;
    if (!boundaryQueued[slot] && t !== Infinity) {
      queue.push({ timeUs: t, kind: replica.hasPlanInFlight ? 'step-end' : 'wake', replica: slot, payload: slotGeneration[slot] });
      boundaryQueued[slot] = true;
    }
  };
  const requestPoolArr: number[] = [];
  const retries: number[] = [];
  let numRetries = 0;
  let numFailedRequests = 0;
  const endRequest = (id: number, timeUs: number, status: 'rejected' | 'failed', reason: string): void => {
    records.end(id, timeUs, status, reason);
    requests.release(id);
  };
  /** Sends a request to a replica of its pool at `timeUs` (it is delivered, or caught by an undetected failure). */
  const dispatch = (id: number, pool: PoolRuntime, timeUs: number): void => {
    if (pool.up.length === 0) {
      router?.countRefusal('no_replica_up');
      endRequest(id, timeUs, 'rejected', 'no_replica_up');
      return;
    }
    const req = requests.get(id);
    const slot = router === null ? pool.up[id % pool.up.length] : router.choose(pool.index, pool.up, req.adapter ?? req.tenant, timeUs, view);
    records.replica[id] = slot;
    if (slotFailed[slot]) {
      slotOrphans[slot].push(id);
      return;
    }
    const replica = slotReplica[slot]!;
    if (lazy) replica.advanceBefore(timeUs);
    replica.deliver(id, timeUs);
    if (fleet !== null) {
      const list = slotRequests[slot];
      list.push(id);
      if (list.length >= 4096 && (list.length & (list.length - 1)) === 0) slotRequests[slot] = list.filter((r) => records.status[r] === 'pending');
    }
    if (!lazy) queueBoundary(slot);
  };

  // ---- the workload ----
  let lastArrivalUs = 0;
  let sourceDone = false;
  const pullNext = (): void => {
    let req = source.next();
    if (req === null) {
      sourceDone = true;
      return;
    }
    if (req.arrivalUs < lastArrivalUs) throw new Error(`workload arrival times decrease at request ${requests.size}`);
    lastArrivalUs = req.arrivalUs;
    if (registry !== null && req.adapter !== null) {
      const entry = registry.resolve(req.tenant, req.adapter);
      if (entry !== null && entry.name !== req.adapter) req = { ...req, adapter: entry.name };
    }
    // The replica is set when the request is dispatched (-1: refused before that).
    const id = records.add({ tenant: req.tenant, adapter: req.adapter, replica: -1, arrivalUs: req.arrivalUs, inputTokens: req.promptTokens, outputTokens: req.outputTokens });
    if (requests.add(req) !== id) throw new Error(`request ${id}: records and open requests disagree on its id`);
    retries.push(0);
    queue.push({ timeUs: req.arrivalUs, kind: 'arrival', replica: 0, payload: id });
  };
  const onArrival = (id: number, timeUs: number): void => {
    if (router === null) {
      dispatch(id, pools[0], timeUs);
      return;
    }
    const req = requests.get(id);
    const p = router.poolOf(req.tenant);
    requestPoolArr[id] = p ?? -1;
    const refusal = router.admit(id, req.tenant, req.promptTokens, timeUs, view);
    if (refusal !== null) endRequest(id, timeUs, 'rejected', refusal);
    else dispatch(id, pools[p!], timeUs);
    // The autoscaler judges every request its pool was asked to serve, refused ones included.
    if (p !== undefined && fleet!.autoscaler.enabled) recentIds[p].push(id);
  };

  // ---- faults, failover, recovery, autoscaling ----
  const faults = fleet?.faults;
  const faultRng = rngs.fork('fleet/faults');
  const mtbfUs = faults?.mtbfHours !== undefined ? faults.mtbfHours * 3600e6 : Infinity;
  const mttrUs = Math.round((faults?.mttrMinutes ?? 60) * 60e6);
  const failoverUs = Math.round((faults?.failoverDelayS ?? 0) * 1e6);
  const slotRecoverUs: number[] = slotPool.map(() => 0);
  const scheduleRandomFault = (slot: number, fromUs: number): void => {
    if (mtbfUs === Infinity || sourceDone) return;
    const gapUs = Math.max(1, Math.round(-Math.log(1 - faultRng()) * mtbfUs));
    queue.push({ timeUs: fromUs + gapUs, kind: 'fault', replica: slot, payload: 0 });
  };
  if (fleet !== null) {
    for (const pool of pools) for (const slot of pool.up) scheduleRandomFault(slot, 0);
    for (const s of fleet.faults.schedule) {
      const pool = pools[poolIndex.get(s.pool)!];
      queue.push({ timeUs: Math.round(s.atS * 1e6), kind: 'fault', replica: pool.slots[s.replica], payload: 0 });
      slotRecoverUs[pool.slots[s.replica]] = Math.round(s.downS * 1e6);
    }
    if (fleet.autoscaler.enabled) for (const pool of pools) queue.push({ timeUs: Math.round(fleet.autoscaler.intervalS * 1e6), kind: 'tick', replica: pool.index, payload: 0 });
  }
  const activate = (pool: PoolRuntime, slot: number, nowUs: number): void => {
    newReplica(slot);
    pool.up.push(slot);
    startServing(slot, nowUs);
    if (pool.up.length > pool.peakUp) pool.peakUp = pool.up.length;
  };
  const onFault = (slot: number, nowUs: number): void => {
    const replica = slotReplica[slot];
    if (replica === null || slotFailed[slot]) return; // a spare or an already failed slot: nothing runs there
    if (sourceDone && nowUs > lastArrivalUs) return; // drawn past the workload's end: not simulated
    const pool = pools[slotPool[slot]];
    advance(slot, nowUs);
    replica.fail(nowUs);
    slotFailed[slot] = true;
    slotGeneration[slot]++;
    boundaryQueued[slot] = false;
    pool.numFailures++;
    for (const id of slotRequests[slot]) if (records.status[id] === 'pending') slotOrphans[slot].push(id);
    slotRequests[slot] = [];
    queue.push({ timeUs: nowUs + failoverUs, kind: 'detect', replica: slot, payload: 0 });
    const downUs = slotRecoverUs[slot] > 0 ? slotRecoverUs[slot] : Math.max(1, Math.round(-Math.log(1 - faultRng()) * mttrUs));
    slotRecoverUs[slot] = 0;
    queue.push({ timeUs: nowUs + Math.max(downUs, failoverUs), kind: 'recover', replica: slot, payload: 0 });
  };
  const onDetect = (slot: number, nowUs: number): void => {
    const pool = pools[slotPool[slot]];
    pool.up = pool.up.filter((s) => s !== slot);
    stopServing(slot, nowUs);
    slotReplica[slot] = null;
    // Failover: a warm spare takes the failed replica's place.
    const spare = pool.spares.shift();
    if (spare !== undefined) {
      activate(pool, spare, nowUs);
      scheduleRandomFault(spare, nowUs);
    }
    const orphans = slotOrphans[slot];
    slotOrphans[slot] = [];
    for (const id of orphans) {
      if (records.status[id] !== 'pending') continue;
      if (retries[id] >= (faults?.maxRetries ?? 0)) {
        endRequest(id, nowUs, 'failed', 'replica_failure');
        numFailedRequests++;
        continue;
      }
      retries[id]++;
      numRetries++;
      // The retry starts over on another replica: the client saw the stream break.
      records.firstScheduledUs[id] = -1;
      records.firstTokenUs[id] = -1;
      records.lastTokenUs[id] = -1;
      records.outputTokensDone[id] = 0;
      records.maxItlUs[id] = 0;
      dispatch(id, pool, nowUs);
    }
  };
  const onRecover = (slot: number, nowUs: number): void => {
    const pool = pools[slotPool[slot]];
    slotFailed[slot] = false;
    if (pool.up.length < pool.targetReplicas) {
      activate(pool, slot, nowUs);
      scheduleRandomFault(slot, nowUs);
    } else pool.spares.push(slot);
  };
  /** Draining slots: removed from routing by a scale-down, paid for until empty. */
  const draining: number[] = [];
  const recentIds: number[][] = pools.map(() => []);
  const olderIds: number[][] = pools.map(() => []);
  const provisioning: number[] = pools.map(() => 0);
  const lastScaleUpUs: number[] = pools.map(() => -Infinity);
  const onTick = (p: number, nowUs: number): void => {
    const a = fleet!.autoscaler;
    const pool = pools[p];
    const ttftLimitUs = config.sla.ttftMsP99 * 1000;
    for (let i = draining.length - 1; i >= 0; i--) {
      const slot = draining[i];
      if (slotPool[slot] !== p) continue;
      if (slotReplica[slot] === null || slotFailed[slot]) {
        draining.splice(i, 1); // failed while draining: the failure path owns it now
        continue;
      }
      advance(slot, nowUs);
      if (slotReplica[slot]!.numInSystem() === 0) {
        unpay(slot, nowUs);
        slotReplica[slot] = null;
        draining.splice(i, 1);
      }
    }
    let queued = 0;
    let inSystem = 0;
    for (const slot of pool.up) {
      if (slotFailed[slot]) continue;
      advance(slot, nowUs);
      queued += slotReplica[slot]!.numQueued();
      inSystem += slotReplica[slot]!.numInSystem();
    }
    // SLA signal: requests that arrived in the interval before last (their outcome is mostly
    // known): a miss is a first token later than the TTFT limit (or none yet past it), or a mean
    // inter-token time so far above the ITL limit.
    const itlLimitUs = config.sla.itlMsP99 * 1000;
    let violated = 0;
    const judged = olderIds[p];
    for (const id of judged) {
      const first = records.firstTokenUs[id];
      const arrival = records.arrivalUs[id];
      const done = records.outputTokensDone[id];
      const tpotUs = done > 1 ? (records.lastTokenUs[id] - first) / (done - 1) : 0;
      if ((first >= 0 && first - arrival > ttftLimitUs) || (first < 0 && nowUs - arrival > ttftLimitUs) || tpotUs > itlLimitUs) violated++;
    }
    const violationRate = judged.length > 0 ? violated / judged.length : 0;
    olderIds[p] = recentIds[p];
    recentIds[p] = [];
    const n = Math.max(1, pool.up.length);
    const cooldownUs = 5 * Math.round(a.intervalS * 1e6);
    if ((queued / n > a.queuePerReplicaHigh || violationRate > a.slaViolationHigh) && provisioning[p] === 0) {
      const add = Math.min(pool.maxReplicas - pool.targetReplicas, Math.max(1, Math.ceil(pool.targetReplicas * 0.1)));
      for (let k = 0; k < add; k++) {
        const free = pool.slots.find((s) => slotReplica[s] === null && !slotFailed[s] && !pool.spares.includes(s) && slotPaidSinceUs[s] < 0);
        if (free === undefined) break;
        pool.targetReplicas++;
        pool.numScaleUps++;
        provisioning[p]++;
        lastScaleUpUs[p] = nowUs;
        pay(free, nowUs);
        queue.push({ timeUs: nowUs + Math.round(a.provisionS * 1e6), kind: 'provisioned', replica: free, payload: 0 });
      }
    } else if (
      // Scale down only with no miss, nothing queued, no recent scale-up, and a load per replica
      // that stays below the low mark after the removal (hysteresis against flapping).
      queued / n < a.queuePerReplicaLow &&
      inSystem / Math.max(1, n - 1) < a.inSystemPerReplicaLow &&
      violated === 0 &&
      nowUs - lastScaleUpUs[p] >= cooldownUs &&
      provisioning[p] === 0 &&
      pool.targetReplicas > pool.minReplicas &&
      pool.up.length > 1
    ) {
      pool.targetReplicas--;
      pool.numScaleDowns++;
      const slot = pool.up.pop()!;
      stopServing(slot, nowUs);
      draining.push(slot);
    }
    if (!sourceDone) queue.push({ timeUs: nowUs + Math.round(a.intervalS * 1e6), kind: 'tick', replica: p, payload: 0 });
  };
  const onProvisioned = (slot: number, nowUs: number): void => {
    const pool = pools[slotPool[slot]];
    provisioning[pool.index]--;
    activate(pool, slot, nowUs);
    scheduleRandomFault(slot, nowUs);
  };
  /** Handler per fleet event kind: (the slot, or the pool for a tick; the event's time). */
  const onFleetEvent = { fault: onFault, detect: onDetect, recover: onRecover, tick: onTick, provisioned: onProvisioned } as const;

  // ---- the run loop ----
  pullNext();
  const progressEvery = hooks.progressEvery ?? 10_000;
  let numArrivals = 0;
  let numFleetEvents = 0;
  // Bound: every other event is an arrival, a wake-up (at most one per arrival or fleet event) or,
  // in step mode, the end of a step; fleet events are bounded by the failures and ticks they chain.
  const stepEventBound = lazy ? 0 : slotPool.length * MAX_STEPS_PER_REPLICA;
  for (let numEvents = 0; queue.size > 0; numEvents++) {
    if (numEvents > 2 * (numArrivals + numRetries + numFleetEvents + 1) + stepEventBound) throw new Error(`event bound exceeded after ${numEvents} events and ${numArrivals} arrivals`);
    const ev = queue.pop()!;
    switch (ev.kind) {
      case 'fault':
      case 'detect':
      case 'recover':
      case 'tick':
      case 'provisioned':
        numFleetEvents++;
        onFleetEvent[ev.kind](ev.replica, ev.timeUs);
        break;
      case 'arrival':
        onArrival(ev.payload, ev.timeUs);
        pullNext();
        if (++numArrivals % progressEvery === 0) hooks.onProgress?.(ev.timeUs, numArrivals);
        break;
      case 'step-end':
      case 'wake': {
        if (ev.payload !== slotGeneration[ev.replica]) break; // the replica failed or was replaced since
        boundaryQueued[ev.replica] = false;
        const replica = slotReplica[ev.replica]!;
        replica.stepAt(ev.timeUs);
        queueBoundary(ev.replica);
        break;
      }
    }
  }
  if (lazy) for (let slot = 0; slot < slotReplica.length; slot++) advance(slot, Infinity);

  let endUs = lastArrivalUs;
  for (let id = 0; id < records.size; id++) {
    if (records.finishUs[id] > endUs) endUs = records.finishUs[id];
    // Every end released its request, and only an end did.
    if (requests.isOpen(id) !== (records.status[id] === 'pending')) throw new Error(`request ${id}: status ${records.status[id]} but its workload request is ${requests.isOpen(id) ? 'open' : 'released'}`);
  }
  for (const replica of allReplicas) replica.stats.closeAt(endUs);
  for (let slot = 0; slot < slotPool.length; slot++) {
    unpay(slot, endUs);
    stopServing(slot, endUs);
  }
  const first = pools[0];
  return {
    config,
    records,
    replicas: allReplicas,
    costModel: first.costModel,
    kv: first.kv,
    endUs,
    ...(fleet !== null
      ? {
          fleet: {
            pools,
            slotPool,
            registry: registry!,
            routerRefusals: router!.refusals,
            numRetries,
            numFailedRequests,
            requestPool: Int32Array.from(requestPoolArr, (p) => p ?? -1),
          },
        }
      : {}),
  };
}
