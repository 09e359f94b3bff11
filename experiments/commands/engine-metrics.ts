// Turns the engine's admissions and steps into the simulator's per-request records and replica
// statistics, with exactly the bookkeeping sim/replica/replica.ts does for one-step plans, so
// `engine bench` writes summary.json and requests.csv through the simulator's own writers and
// any engine run compares with any simulation.
import type { EngineObserver, EngineRequest, EngineStepRecord } from '../../engine/runtime/engine.js';
import type { SeqState } from '../../engine/policy/index.js';
import { RequestRecords } from '../../sim/metrics/records.js';
import { ReplicaStats } from '../../sim/metrics/replica-stats.js';

/** One row of the engine's per-step log (steps.csv / steps.jsonl). */
export interface EngineStepRow {
  readonly stepIndex: number;
  readonly startUs: number;
  readonly durationUs: number;
  readonly scheduleUs: number;
  readonly runUs: number;
  readonly gpuUs: number | null;
  /** Wall time of the step not covered by device time (null without device timing). */
  readonly hostUs: number | null;
  readonly numSeqs: number;
  readonly numPrefillSeqs: number;
  readonly numPrefillTokens: number;
  readonly numDecodeTokens: number;
  readonly contextTokens: number;
  readonly numSampled: number;
  readonly numPreempted: number;
  readonly numLoraLoads: number;
  readonly numBlockCopies: number;
  readonly kvBlocksUsed: number;
  /** Host sampling time inside the step (the CPU-sampling baseline), µs; null when the runner does not report it. */
  readonly hostSampleUs?: number | null;
  /** Forwards the step ran (more than 1 only for the no-KV-cache baseline's large recomputes). */
  readonly numForwards?: number;
  /** Sequences in the step with a LoRA adapter. */
  readonly numLoraSeqs?: number;
}

export const ENGINE_STEP_COLUMNS = [
  'step_index', 'start_s', 'duration_ms', 'schedule_ms', 'run_ms', 'gpu_ms', 'host_ms', 'num_seqs', 'prefill_seqs', 'prefill_tokens', 'decode_tokens',
  'context_tokens', 'sampled', 'preempted', 'lora_loads', 'block_copies', 'kv_blocks_used', 'host_sample_ms', 'forwards', 'lora_seqs',
] as const;

const ms = (us: number | null): string => (us === null ? '' : (us / 1000).toFixed(3));

export function engineStepCsvLine(r: EngineStepRow): string {
  return [
    r.stepIndex, (r.startUs / 1e6).toFixed(6), ms(r.durationUs), ms(r.scheduleUs), ms(r.runUs), ms(r.gpuUs), ms(r.hostUs), r.numSeqs, r.numPrefillSeqs,
    r.numPrefillTokens, r.numDecodeTokens, r.contextTokens, r.numSampled, r.numPreempted, r.numLoraLoads, r.numBlockCopies, r.kvBlocksUsed,
    ms(r.hostSampleUs ?? null), r.numForwards ?? 1, r.numLoraSeqs ?? 0,
  ].join(',');
}

export function stepRowOf(rec: EngineStepRecord): EngineStepRow {
  const plan = rec.plan;
  let contextTokens = 0;
  let numPrefillSeqs = 0;
  let numSampled = 0;
  let numLoraSeqs = 0;
  for (const item of plan.items) {
    contextTokens += item.contextTokens;
    if (item.isPrefill) numPrefillSeqs++;
    if (item.samples) numSampled++;
    if (item.adapterSlot >= 0) numLoraSeqs++;
  }
  const durationUs = rec.endUs - rec.startUs;
  return {
    stepIndex: plan.stepIndex,
    startUs: rec.startUs,
    durationUs,
    scheduleUs: rec.scheduleUs,
    runUs: rec.runUs,
    gpuUs: rec.gpuUs,
    hostUs: rec.gpuUs === null ? null : Math.max(0, durationUs - rec.gpuUs),
    numSeqs: plan.items.length,
    numPrefillSeqs,
    numPrefillTokens: plan.numPrefillTokens,
    numDecodeTokens: plan.numDecodeTokens,
    contextTokens,
    numSampled,
    numPreempted: plan.preempted.length,
    numLoraLoads: plan.loraLoads.length,
    numBlockCopies: plan.blockCopies.length,
    kvBlocksUsed: plan.kvBlocksUsedPerStep[0],
    numLoraSeqs,
  };
}

export class EngineMetrics implements EngineObserver {
  readonly records = new RequestRecords();
  readonly stats: ReplicaStats;
  /** (time, delta) changes of requests in system, applied in time order by `close` (arrivals first at equal times, as the simulator's event ranks do). */
  private readonly inSystem: { timeUs: number; delta: number; seq: number }[] = [];
  private readonly tenantCounts = new Map<string, number>();
  private lastArrivalUs = 0;
  /** The last finish (or rejection) so far. */
  private endUs = 0;

  constructor(
    windowUs: number,
    private readonly pageSizeTokens: number,
    private readonly onStepRow?: (row: EngineStepRow) => void,
  ) {
    this.stats = new ReplicaStats(windowUs);
  }

  /** Every request of the workload, in id order, before the engine sees it. */
  addRequest(r: EngineRequest): void {
    const id = this.records.add({ tenant: r.tenant, adapter: r.adapter, replica: 0, arrivalUs: r.arrivalUs, inputTokens: r.promptTokens, outputTokens: r.maxOutputTokens });
    if (id !== r.id) throw new Error(`engine metrics: request ids must be dense and in order (got ${r.id}, expected ${id})`);
    this.inSystem.push({ timeUs: r.arrivalUs, delta: +1, seq: this.inSystem.length });
    this.lastArrivalUs = Math.max(this.lastArrivalUs, r.arrivalUs);
  }

  onAdmit(request: EngineRequest, _seq: SeqState, nowUs: number, rejectReason: string | null): void {
    if (rejectReason !== null) this.end(request.id, nowUs, 'rejected', rejectReason, 0);
    else this.records.status[request.id] = 'pending';
  }

  onStep(rec: EngineStepRecord): void {
    const { plan, startUs, endUs } = rec;
    const records = this.records;
    const stats = this.stats;
    this.onStepRow?.(stepRowOf(rec));
    for (const item of plan.items) {
      if (item.isPrefill && records.firstScheduledUs[item.seqId] < 0) records.firstScheduledUs[item.seqId] = startUs;
    }
    stats.numPreemptions += plan.preempted.length;
    for (const id of plan.preempted) records.preemptions[id]++;
    const d = endUs - startUs;
    const n = plan.items.length;
    const used = plan.kvBlocksUsedPerStep[0];
    stats.kvBlockUs += used * d;
    if (used > stats.kvBlocksPeak) stats.kvBlocksPeak = used;
    const reserved = used * this.pageSizeTokens;
    stats.kvReservedTokenUs += reserved * d;
    stats.kvLiveTokenUs += Math.min(reserved, rec.liveTokens0 + plan.numPrefillTokens + plan.numDecodeTokens) * d;
    stats.batchSeqUs += n * d;
    if (n > stats.batchSeqsPeak) stats.batchSeqsPeak = n;
    stats.numSteps += 1;
    stats.busyUs += d;
    stats.numPrefillTokens += plan.numPrefillTokens;
    stats.numDecodeTokens += plan.numDecodeTokens;
    stats.numLoraLoads += plan.loraLoads.length;
    // Inter-token gaps, as the replica records them for a one-step plan.
    const commonByTenant = this.tenantCounts;
    commonByTenant.clear();
    for (const item of plan.items) {
      if (!item.samples) continue;
      const id = item.seqId;
      const last = records.lastTokenUs[id];
      if (last === startUs) {
        const tenant = records.tenant[id];
        commonByTenant.set(tenant, (commonByTenant.get(tenant) ?? 0) + 1);
        if (d > records.maxItlUs[id]) records.maxItlUs[id] = d;
      } else if (last >= 0) {
        const gap = endUs - last;
        stats.addItl(records.tenant[id], gap, 1, endUs);
        if (gap > records.maxItlUs[id]) records.maxItlUs[id] = gap;
      }
      records.lastTokenUs[id] = endUs;
      records.outputTokensDone[id] += 1;
    }
    for (const [tenant, count] of commonByTenant) stats.addItl(tenant, d, count, endUs);
    for (const id of rec.outcome.firstTokenSeqIds) records.firstTokenUs[id] = endUs;
    for (const seq of rec.outcome.finished) {
      records.cachedPromptTokens[seq.spec.id] = seq.numCachedPromptTokens;
      const status = seq.status === 'finished' ? 'completed' : 'aborted';
      this.end(seq.spec.id, endUs, status, seq.status === 'finished' ? '' : (seq.reason ?? ''), seq.numPreemptions);
    }
  }

  /**
   * A token of request `id` seen by a client at `timeUs` (the HTTP bench, which sees tokens, not
   * steps): its gap from the previous one is an inter-token latency, the first sets the TTFT.
   */
  onClientToken(id: number, timeUs: number): void {
    const records = this.records;
    const last = records.lastTokenUs[id];
    if (last < 0) {
      records.firstTokenUs[id] = timeUs;
      records.status[id] = 'pending';
    } else {
      const gap = timeUs - last;
      this.stats.addItl(records.tenant[id], gap, 1, timeUs);
      if (gap > records.maxItlUs[id]) records.maxItlUs[id] = gap;
    }
    records.lastTokenUs[id] = timeUs;
    records.outputTokensDone[id] += 1;
  }

  /** The client saw request `id` end (the HTTP bench). */
  onClientEnd(id: number, timeUs: number, status: 'completed' | 'rejected' | 'failed', reason: string): void {
    this.end(id, timeUs, status, reason, 0);
  }

  /** Closes the time integrals; returns the run's end (last arrival or last finish). */
  close(): number {
    // Every finish goes through `end`, so this.endUs is already the last one.
    const endUs = Math.max(this.lastArrivalUs, this.endUs);
    this.inSystem.sort((a, b) => a.timeUs - b.timeUs || b.delta - a.delta || a.seq - b.seq);
    for (const c of this.inSystem) this.stats.changeInSystem(c.timeUs, c.delta);
    this.inSystem.length = 0;
    this.stats.closeAt(endUs);
    return endUs;
  }

  private end(id: number, timeUs: number, status: 'completed' | 'rejected' | 'aborted' | 'failed', reason: string, preemptions: number): void {
    const records = this.records;
    records.end(id, timeUs, status, reason);
    records.preemptions[id] = preemptions;
    this.inSystem.push({ timeUs, delta: -1, seq: this.inSystem.length });
    this.endUs = Math.max(this.endUs, timeUs);
  }
}
