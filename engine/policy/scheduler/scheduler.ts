import { assert, fail, assertNonNegInt, assertPosInt } from '../assert.js';
import { ContiguousAllocator } from '../contiguous-allocator.js';
import { ceilDiv, type KvAllocator } from '../kv-allocator.js';
import { LoraCache } from '../lora-cache.js';
import { PagedAllocator } from '../paged-allocator.js';
import type {
  BatchPlan,
  PlanItem,
  PolicyKind,
  RequestSpec,
  ScheduleView,
  SeqId,
  SeqState,
  StepOutcome,
  StepResult,
  TerminalReason,
  TimeUs,
} from '../types.js';
import { WaitingQueue } from '../waiting-queue.js';
import { schedulerConfigErrors, type SchedulerConfig } from './config.js';
import { decodeRunPlan, NO_SEQ_IDS, PlanBuilder } from './plan-builder.js';

/** Page sizes up to this use the closed forms over slack buckets in decode runs (scratch of this size). */
const MAX_SLACK_BUCKETS = 4096;

/** Shared empty lists of a step's outcome (read-only) and of no pending plan. */
const NO_SEQS: SeqState[] = [];
const NO_FINISHED: readonly SeqState[] = Object.freeze([]);

interface BatchReservation {
  readonly freeBlocksAtStart: number;
  reservedBlocks: number;
}

/** Why a waiting request cannot be admitted now. `skip` lets later requests through; `stop` does not. */
export type AdmissionVerdict = 'ok' | 'skip' | 'stop';

/**
 * The iteration-level scheduler shared by the simulator and the engine. A step is two calls:
 * `plan = schedule(view)`, the runner executes it, then `onStepEnd(plan, result)`. Subclasses
 * decide only how a step is composed (`compose`); queues, admission, preemption, KV and LoRA
 * bookkeeping live here so every policy keeps the same invariants:
 * - every admitted request ends finished, rejected or aborted, with a reason;
 * - a step never exceeds `maxNumSeqs` sequences or `maxNumBatchedTokens` tokens;
 * - admission follows (effective class, arrival) order, so FIFO holds within a class and aging
 *   bounds how long a request can be overtaken; only a tenant at its cap is skipped;
 * - KV is never over-committed and a sequence never runs while its adapter is not resident.
 */
export abstract class Scheduler {
  abstract readonly policy: PolicyKind;
  readonly config: SchedulerConfig;
  readonly allocator: KvAllocator;
  readonly lora: LoraCache;
  protected readonly seqs = new Map<SeqId, SeqState>();
  protected readonly waiting: WaitingQueue;
  /** Running sequences in admission order; preemption takes from the end. */
  protected readonly running: SeqState[] = [];
  private readonly runningByTenant = new Map<string, number>();
  /** Σ numComputedTokens over running sequences, kept as they change (runningContextTokens is O(1)). */
  private runningContextSum = 0;
  private readonly watermarkBlocks: number;
  private readonly admitLimitBlocks: number;
  private nextStepIndex = 0;
  /** Bumped by every state change; keys the memo of steadyDecodeSteps. */
  private version = 0;
  private steadyMemo = { version: -1, nowUs: -1, steps: 0 };
  /** Sequences of the pending plan, index-aligned with its items (entries past them are stale). */
  private pendingSeqs: SeqState[] = NO_SEQS;
  /**
   * The pending decode run's sequences: the running ones when it was planned, in the first
   * entries (reused from run to run and never shrunk, so a run allocates no copy of the list).
   */
  private readonly runSeqs: SeqState[] = [];
  /** numComputedTokens of each of runSeqs when the run was planned (what its items say: onStepEnd checks it). */
  private readonly runContexts: number[] = [];
  /**
   * `version` when the shared slack scratch (SCRATCH.decodeSlack, of steadyDecodeSteps and
   * composeDecodeRun) was filled by this scheduler for every running sequence (-1: not valid).
   */
  private decodeSlackVersion = -1;
  /**
   * The pending decode run's sequences grouped by slack (runStarts: page + 1 offsets into runGroups),
   * valid while runGroupsValid: every slack was below a page when the run was planned, so
   * extendDecodeRun lengthens it without reading the other sequences.
   */
  private readonly runGroups = new GroupedSeqs();
  private runStarts = new Int32Array(0);
  private runGroupsValid = false;
  /** A decode run's kvBlocksUsedPerStep, items and item objects under reuseRunStorage (grown, never shrunk). */
  private readonly runUsedPerStep: number[] = [];
  private readonly runItems: PlanItem[] = [];
  private readonly runItemPool: MutablePlanItem[] = [];
  private pendingPlan: BatchPlan | null = null;
  /**
   * For a pending decode run: its steady length when it was planned (steps it may be lengthened to
   * by extendDecodeRun), and `version` right after it was planned (any change since forbids that).
   */
  private pendingRunSteadySteps = 0;
  private pendingRunVersion = -1;
  private admitCounter = 0;

  constructor(config: SchedulerConfig) {
    const errors = schedulerConfigErrors(config);
    if (errors.length > 0) throw new Error(`invalid scheduler config:\n  ${errors.join('\n  ')}`);
    this.config = config;
    this.allocator =
      config.kv.allocator === 'paged'
        ? new PagedAllocator(config.kv)
        : new ContiguousAllocator({ ...config.kv, maxSeqLenTokens: config.maxSeqLenTokens });
    this.lora = new LoraCache(config.lora.numSlots, config.lora.eviction);
    this.waiting = new WaitingQueue(config.agingUs);
    // Contiguous slots already reserve the worst case: a watermark would only strand a slot.
    this.watermarkBlocks = config.kv.allocator === 'paged' ? Math.floor(config.watermarkFraction * config.kv.numBlocks) : 0;
    this.admitLimitBlocks = Math.floor(config.kvAdmitFraction * config.kv.numBlocks);
  }

  // ---- requests in and out -------------------------------------------------------------------

  /**
   * Queues a request, or rejects it at once (status `rejected` with a reason) when it can never
   * run here. The caller checks the returned state's status.
   */
  addRequest(spec: RequestSpec): SeqState {
    if (this.seqs.has(spec.id)) fail(`request id ${spec.id} reused`);
    assertNonNegInt(spec.promptTokens, 'promptTokens');
    assertNonNegInt(spec.maxOutputTokens, 'maxOutputTokens');
    assertNonNegInt(spec.priorityClass, 'priorityClass');
    assertNonNegInt(spec.arrivalUs, 'arrivalUs');
    const seq = newSeqState(spec);
    // A request with nothing to prefill or nothing to generate is rejected here, for every runner.
    const rejection = spec.promptTokens === 0 ? 'empty_prompt' : spec.maxOutputTokens === 0 ? 'zero_output_tokens' : this.rejectionReason(spec);
    if (rejection !== null) {
      seq.status = 'rejected';
      seq.reason = rejection;
      return seq;
    }
    this.seqs.set(spec.id, seq);
    this.waiting.add(seq);
    this.version++;
    return seq;
  }

  /** Ends a waiting or running request; its blocks and adapter pin are released. Pairs with addRequest. */
  abort(seqId: SeqId, reason: 'aborted_by_client' | 'aborted_by_runner'): SeqState {
    const seq = this.seqs.get(seqId);
    if (seq === undefined) fail(`abort of unknown or ended request ${seqId}`);
    assert(this.pendingPlan === null, 'abort between schedule and onStepEnd');
    if (seq.status === 'running') this.releaseRunning(seq);
    else this.waiting.remove(seq);
    this.terminate(seq, 'aborted', reason);
    this.version++;
    return seq;
  }

  get(seqId: SeqId): SeqState | undefined {
    return this.seqs.get(seqId);
  }

  numWaiting(): number {
    return this.waiting.size;
  }

  numRunning(): number {
    return this.running.length;
  }

  hasWork(): boolean {
    return this.waiting.size > 0 || this.running.length > 0;
  }

  /** Running sequences in admission order (read-only view for runners and metrics). */
  runningSeqs(): readonly SeqState[] {
    return this.running;
  }

  /** Sum of KV context over running sequences (the cost model's decode attention input). */
  runningContextTokens(): number {
    return this.runningContextSum;
  }

  // ---- the step ------------------------------------------------------------------------------

  schedule(view: ScheduleView): BatchPlan {
    assert(this.pendingPlan === null, 'schedule called twice without onStepEnd');
    const maxSteps = view.maxSteps ?? 1;
    assertPosInt(maxSteps, 'maxSteps');
    let plan: BatchPlan;
    const numSteps = maxSteps > 1 ? Math.min(maxSteps, this.steadyDecodeSteps(view.nowUs)) : 1;
    this.pendingRunSteadySteps = 0;
    this.runGroupsValid = false;
    if (numSteps > 1) {
      this.pendingRunSteadySteps = this.steadyDecodeSteps(view.nowUs);
      plan = this.composeDecodeRun(numSteps, view.reuseRunStorage === true);
      const running = this.running;
      for (let i = 0; i < running.length; i++) {
        this.runSeqs[i] = running[i];
        this.runContexts[i] = running[i].numComputedTokens;
      }
      this.pendingSeqs = this.runSeqs;
    } else {
      const builder = new PlanBuilder(this.config.maxNumBatchedTokens);
      this.compose(view.nowUs, builder);
      plan = builder.build(this.nextStepIndex, 1, [this.allocator.numBlocksUsed()]);
      // Every item of a single step was added with its sequence.
      this.pendingSeqs = builder.seqs;
    }
    this.version++;
    assert(plan.items.length <= this.config.maxNumSeqs, 'step exceeds maxNumSeqs');
    assert(plan.numPrefillTokens + plan.numDecodeTokens <= this.config.maxNumBatchedTokens, 'step exceeds maxNumBatchedTokens');
    assert(this.allocator.numBlocksUsed() <= this.allocator.numBlocksTotal, 'KV over-committed');
    this.nextStepIndex += plan.numSteps;
    this.pendingPlan = plan;
    this.pendingRunVersion = this.version;
    return plan;
  }

  /**
   * Lengthens the pending plan, a steady decode run (numSteps > 1), by `extraSteps` steps: the
   * same state as ending it with onStepEnd and planning a run of `extraSteps` from there, which the
   * simulator may do when nothing happened at the run's end (no arrival, no finish): the batch
   * decodes on unchanged. Nothing may have changed since it was planned (no addRequest), the
   * caller must keep time-based changes (aging: nextWaitingChangeUs at the run's start) beyond the
   * new last step's start, and the run may grow only up to its steady length when planned (then
   * no sequence finishes, none is admitted and KV fits). Returns the plan to execute and pass to
   * onStepEnd instead (the same items, more steps); the plan passed in must not be used again.
   * Pairs with schedule.
   */
  extendDecodeRun(plan: BatchPlan, extraSteps: number): BatchPlan {
    assert(this.pendingPlan === plan, 'extendDecodeRun of a plan that is not the pending one');
    assert(plan.numSteps > 1, 'only a decode run is extended');
    assert(this.version === this.pendingRunVersion, 'the scheduler changed since the run was planned');
    assertPosInt(extraSteps, 'extraSteps');
    const numSteps = plan.numSteps + extraSteps;
    if (!(numSteps <= this.pendingRunSteadySteps)) fail(`run of ${numSteps} steps exceeds its steady length ${this.pendingRunSteadySteps}`);
    // The run's per-step array (made by composeDecodeRun, owned here) grows in place: the plan
    // passed in is replaced by the one returned and must not be used again.
    const used = plan.kvBlocksUsedPerStep as number[];
    this.growDecodeRun(plan.numSteps, numSteps, used);
    const extended: BatchPlan = {
      stepIndex: plan.stepIndex,
      numSteps,
      items: plan.items,
      numPrefillTokens: plan.numPrefillTokens,
      numDecodeTokens: plan.numDecodeTokens,
      preempted: plan.preempted,
      loraLoads: plan.loraLoads,
      loraEvictions: plan.loraEvictions,
      blockCopies: plan.blockCopies,
      kvBlocksUsedPerStep: used,
    };
    assert(this.allocator.numBlocksUsed() <= this.allocator.numBlocksTotal, 'KV over-committed');
    this.nextStepIndex += extraSteps;
    this.pendingPlan = extended;
    return extended;
  }

  /** Applies the executed plan: tokens computed and sampled, finishes. Pairs with schedule. */
  onStepEnd(plan: BatchPlan, result: StepResult): StepOutcome {
    assert(this.pendingPlan === plan, 'onStepEnd with a plan that is not the pending one');
    this.pendingPlan = null;
    this.version++;
    const stopped = result.stoppedSeqIds !== undefined && result.stoppedSeqIds.length > 0 ? new Set(result.stoppedSeqIds) : null;
    // Most steps start and finish nothing: their outcome shares frozen empty lists.
    let firstTokenSeqIds: SeqId[] | null = null;
    let finished: SeqState[] | null = null;
    const seqs = this.pendingSeqs;
    const isRun = plan.numSteps > 1;
    const runContexts = this.runContexts;
    for (let i = 0; i < plan.items.length; i++) {
      const seq = seqs[i];
      // A decode run's items are not read: item i is one sampled token of seqs[i] from the context
      // noted when the run was planned (at fleet scale each item was a cache miss here).
      const item = isRun ? null : plan.items[i];
      const plannedId = item === null ? seq.id : item.seqId;
      const numNewTokens = item === null ? 1 : item.numNewTokens;
      if (!(seq.id === plannedId && seq.status === 'running')) fail(`planned seq ${plannedId} is not running`);
      if (!(seq.numComputedTokens === (item === null ? runContexts[i] : item.contextTokens))) fail(`seq ${plannedId} context moved during the step`);
      seq.numComputedTokens += numNewTokens * plan.numSteps;
      // A decode run grew the table to hold every token it computed (a single step: planRunning did).
      if (isRun) seq.numTokensCovered = this.coveredAfterGrow(seq.numTokensCovered, seq.numComputedTokens);
      this.runningContextSum += numNewTokens * plan.numSteps;
      if (item !== null && item.isPrefill) this.allocator.commitComputed(seq.id, seq.numComputedTokens);
      if (item !== null && !item.samples) continue;
      if (seq.numOutputTokens === 0) (firstTokenSeqIds ??= []).push(seq.id);
      seq.numOutputTokens += plan.numSteps;
      if (!(seq.numOutputTokens <= seq.maxOutputTokens)) fail(`seq ${seq.id} generated past its length`);
      const reason: TerminalReason | null =
        seq.numOutputTokens === seq.maxOutputTokens ? 'length' : stopped !== null && stopped.has(seq.id) ? 'stop' : null;
      if (reason !== null) {
        this.releaseRunning(seq);
        this.terminate(seq, 'finished', reason);
        (finished ??= []).push(seq);
      }
    }
    this.pendingSeqs = NO_SEQS;
    return { firstTokenSeqIds: firstTokenSeqIds ?? NO_SEQ_IDS, finished: finished ?? NO_FINISHED };
  }

  /**
   * How many pure-decode steps, starting with the next one, would each be planned as "every
   * running sequence decodes one token" with no admission, preemption or finish before the last
   * one, if nothing arrives. The simulator uses it to advance many steps at once; the result is
   * identical to planning them one by one. Time-based changes (aging) are bounded separately by
   * `nextWaitingChangeUs`.
   */
  steadyDecodeSteps(nowUs: TimeUs): number {
    const memo = this.steadyMemo;
    if (memo.version !== this.version || memo.nowUs !== nowUs) {
      memo.steps = this.computeSteadyDecodeSteps(nowUs);
      memo.version = this.version;
      memo.nowUs = nowUs;
    }
    return memo.steps;
  }

  private computeSteadyDecodeSteps(nowUs: TimeUs): number {
    const running = this.running;
    const n = running.length;
    if (n === 0 || n > this.config.maxNumBatchedTokens) return 0;
    let maxSteps = Infinity;
    for (let i = 0; i < n; i++) {
      const seq = running[i];
      if (!isDecoding(seq)) return 0;
      const left = seq.maxOutputTokens - seq.numOutputTokens;
      if (left < maxSteps) maxSteps = left;
    }
    if (this.policy !== 'static' && this.anyAdmissible(nowUs)) return 0;
    // Step j (0-based) writes token numComputed + j; a sequence allocates when that passes the
    // end of its page table: first at step `slack` (tokens covered beyond numComputed), then
    // every page. Blocks taken by steps [0, k) = sum over sequences of ceil((k - slack) / page).
    const slack = this.fillDecodeSlack();
    const page = this.allocator.pageSizeTokens;
    // Only sequences with slack < maxSteps ever allocate within the run.
    let numGrowing = 0;
    let allBelowPage = true;
    for (let i = 0; i < n; i++) {
      const s = slack[i];
      if (s < maxSteps) {
        numGrowing++;
        if (s < 0 || s >= page) allBelowPage = false;
      }
    }
    const free = this.allocator.numBlocksFree();
    if (numGrowing === 0) return maxSteps;
    if (allBelowPage && page <= MAX_SLACK_BUCKETS) {
      // Closed form. With every growing slack r < page and k = q·page + m (0 <= m < page), a
      // sequence takes q + [r < m] blocks in steps [0, k), so need(k) = q·numGrowing + #{r < m}.
      // The largest k with need(k) <= free has q = floor(free / numGrowing) and the largest m
      // whose count of smaller slacks fits in the rest: the same k the search below finds.
      const counts = this.slackCountsOfSize(page);
      for (let i = 0; i < n; i++) if (slack[i] < maxSteps) counts[slack[i]]++;
      const q = Math.floor(free / numGrowing);
      const rest = free - q * numGrowing;
      let m = 0;
      let smaller = counts[0];
      while (m + 1 < page && smaller <= rest) {
        m++;
        smaller += counts[m];
      }
      const k = q * page + m;
      return k < 1 ? 0 : Math.min(k, maxSteps);
    }
    if (!this.decodeRunFits(1, slack, n, page, free)) return 0;
    if (this.decodeRunFits(maxSteps, slack, n, page, free)) return maxSteps;
    let lo = 1;
    let hi = maxSteps; // fits(lo) && !fits(hi)
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.decodeRunFits(mid, slack, n, page, free)) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Each running sequence's slack (page-table tokens beyond its computed tokens and the `fromStep`
   * steps of a pending decode run, whose page tables have grown for them), in running order (the
   * first running.length entries); from step 0 reused while the scheduler's state is unchanged (schedule sizes a run, then composes it).
   */
  private fillDecodeSlack(fromStep = 0): number[] {
    const slack = SCRATCH.decodeSlack;
    if (fromStep === 0 && this.decodeSlackVersion === this.version && SCRATCH.slackOwner === this) return slack;
    SCRATCH.slackOwner = this;
    const running = this.running;
    const n = running.length;
    // Only the first n entries are read (the array is never shrunk: refilling it would allocate).
    if (fromStep === 0) {
      for (let i = 0; i < n; i++) slack[i] = running[i].numTokensCovered - running[i].numComputedTokens;
    } else {
      // A pending run's growth is not in numTokensCovered yet: its first fromStep steps hold their tokens.
      for (let i = 0; i < n; i++) {
        const target = running[i].numComputedTokens + fromStep;
        slack[i] = this.coveredAfterGrow(running[i].numTokensCovered, target) - target;
      }
    }
    // Memoized only from step 0: during a pending run the page tables cover tokens not yet computed.
    this.decodeSlackVersion = fromStep === 0 ? this.version : -1;
    return slack;
  }

  /** Token slots a page table covering `covered` covers after growing to hold `numTokens` (KvAllocator.grow). */
  private coveredAfterGrow(covered: number, numTokens: number): number {
    const page = this.allocator.pageSizeTokens;
    const needed = ceilDiv(numTokens, page) * page;
    return needed > covered ? needed : covered;
  }

  /** Whether `k` decode steps fit in `free` blocks given the slack of each of the `n` running sequences. */
  private decodeRunFits(k: number, slack: readonly number[], n: number, page: number, free: number): boolean {
    let need = 0;
    for (let i = 0; i < n; i++) {
      if (k > slack[i]) need += Math.floor((k - slack[i] + page - 1) / page);
    }
    return need <= free;
  }

  /** The zeroed scratch of slack counts for `page` (length page + 1). */
  private slackCountsOfSize(page: number): Int32Array {
    if (SCRATCH.slackCounts.length < page + 1) SCRATCH.slackCounts = new Int32Array(page + 1);
    const counts = SCRATCH.slackCounts;
    counts.fill(0, 0, page + 1);
    return counts;
  }

  /** The next time aging alone may change which request is admitted next (Infinity if never). */
  nextWaitingChangeUs(nowUs: TimeUs): number {
    return this.waiting.nextOrderChangeUs(nowUs);
  }

  /** Full consistency check for tests and debug runs. */
  checkInvariants(): void {
    this.allocator.checkInvariants();
    this.lora.checkInvariants();
    let numWaiting = 0;
    const tenantCounts = new Map<string, number>();
    for (const seq of this.seqs.values()) {
      if (seq.status === 'waiting' || seq.status === 'preempted') numWaiting++;
      assert(seq.status !== 'finished' && seq.status !== 'rejected' && seq.status !== 'aborted', 'ended seqs are dropped');
      if (!(this.allocator.hasSeq(seq.id) === (seq.status === 'running'))) fail(`seq ${seq.id} KV ownership matches status`);
      if (seq.status === 'running') {
        tenantCounts.set(seq.spec.tenant, (tenantCounts.get(seq.spec.tenant) ?? 0) + 1);
        if (seq.spec.adapter !== null) assert(this.lora.numPins(seq.spec.adapter) > 0, 'running seq pins its adapter');
        const slot = seq.spec.adapter === null ? -1 : this.lora.slotOf(seq.spec.adapter);
        if (seq.adapterSlot !== slot) fail(`seq ${seq.id} keeps adapter slot ${seq.adapterSlot}, its adapter is in slot ${slot}`);
        const covered = this.allocator.numTokensCovered(seq.id);
        if (seq.numTokensCovered !== covered) fail(`seq ${seq.id} keeps ${seq.numTokensCovered} covered tokens, its page table covers ${covered}`);
      } else if (seq.numTokensCovered !== 0) {
        fail(`seq ${seq.id} is not running but keeps ${seq.numTokensCovered} covered tokens`);
      }
    }
    assert(numWaiting === this.waiting.size, 'waiting count matches');
    let contextSum = 0;
    for (const seq of this.running) contextSum += seq.numComputedTokens;
    assert(contextSum === this.runningContextSum, 'running context sum matches');
    assert(this.running.length + numWaiting === this.seqs.size, 'every live seq is waiting or running');
    for (const [tenant, count] of tenantCounts) assert(this.runningByTenant.get(tenant) === count, () => `tenant ${tenant} count`);
  }

  // ---- what subclasses compose steps from ----------------------------------------------------

  /** Fills `builder` with this step's work. */
  protected abstract compose(nowUs: TimeUs, builder: PlanBuilder): void;

  /**
   * Whether `seq` could be admitted now with `tokenBudget` tokens left in the step. With a
   * `reservation` (static batching), the request's worst case must also fit beside the worst
   * cases already admitted into this batch, so the batch can never run out of KV.
   */
  protected admissionVerdict(seq: SeqState, tokenBudget: number, reservation: BatchReservation | null): AdmissionVerdict {
    const spec = seq.spec;
    if (this.tenantAtCap(spec.tenant)) return 'skip';
    if (this.running.length >= this.config.maxNumSeqs) return 'stop';
    if (spec.adapter !== null && !this.lora.canAcquire(spec.adapter)) return 'stop';
    const match = this.allocator.matchPrefix(spec);
    const numTokens = this.firstChunkTokens(seq, match.numTokens, tokenBudget);
    if (numTokens <= 0) return 'stop';
    // KV for the whole prompt must fit, even when only a first chunk runs now: admitting prompts
    // that cannot finish prefill would only preempt each other.
    const need = this.allocator.numBlocksToAdmit(match, prefillTarget(seq));
    // The watermark protects running decodes from preemption; with nothing running it would only
    // keep a request that fits from ever starting.
    const watermark = this.running.length > 0 ? this.watermarkBlocks : 0;
    if (need + watermark > this.allocator.numBlocksFree()) return 'stop';
    if (reservation !== null) {
      const worstCase = this.allocator.worstCaseBlocks(spec.promptTokens + spec.maxOutputTokens);
      if (reservation.reservedBlocks + worstCase + watermark > reservation.freeBlocksAtStart) return 'stop';
    }
    return 'ok';
  }

  /**
   * Admits `seq` (its verdict was `ok` with the same budget) and plans its first prefill chunk;
   * the caller removes it from the waiting queue. Returns the chunk's token count.
   */
  private admit(seq: SeqState, tokenBudget: number, builder: PlanBuilder): number {
    const spec = seq.spec;
    const match = this.allocator.matchPrefix(spec);
    const numTokens = this.firstChunkTokens(seq, match.numTokens, tokenBudget);
    assert(numTokens > 0, 'admission plans at least one token');
    this.allocator.admit(spec.id, spec, match, match.numTokens + numTokens);
    seq.numTokensCovered = this.allocator.numTokensCovered(spec.id);
    let adapterSlot = -1;
    if (spec.adapter !== null) {
      const acquisition = this.lora.acquire(spec.adapter);
      adapterSlot = acquisition.slot;
      if (acquisition.eviction !== null) builder.loraEvictions.push(acquisition.eviction);
      if (acquisition.load !== null) builder.loraLoads.push(acquisition.load);
    }
    seq.status = 'running';
    seq.numComputedTokens = match.numTokens;
    seq.numCachedPromptTokens = match.numTokens;
    seq.admitOrder = this.admitCounter++;
    seq.adapterSlot = adapterSlot;
    this.running.push(seq);
    this.runningContextSum += seq.numComputedTokens;
    this.runningByTenant.set(spec.tenant, (this.runningByTenant.get(spec.tenant) ?? 0) + 1);
    builder.add({
      seqId: spec.id,
      contextTokens: match.numTokens,
      numNewTokens: numTokens,
      isPrefill: true,
      samples: match.numTokens + numTokens === prefillTarget(seq),
      adapterSlot,
    }, seq);
    return numTokens;
  }

  /**
   * Plans `numNewTokens` more tokens for a running sequence, preempting the newest running
   * sequences while KV is short. Returns false when `seq` was not planned: it was preempted
   * itself, or it is a prompt chunk that waits for KV rather than preempt a step with work.
   */
  protected planRunning(seq: SeqState, numNewTokens: number, builder: PlanBuilder): boolean {
    const target = seq.numComputedTokens + numNewTokens;
    while (this.allocator.numBlocksToGrow(seq.id, target) > this.allocator.numBlocksFree()) {
      // A prompt chunk preempts others only when the step would otherwise make no progress.
      if (!isDecoding(seq) && builder.items.length > 0) return false;
      const victim = this.newestUnplanned(builder);
      assert(victim !== undefined, 'the sequence being planned is itself unplanned');
      this.preempt(victim, builder);
      if (victim === seq) return false;
    }
    const copies = this.allocator.grow(seq.id, target);
    seq.numTokensCovered = this.coveredAfterGrow(seq.numTokensCovered, target);
    for (let i = 0; i < copies.length; i++) builder.blockCopies.push(copies[i]);
    const isPrefill = !isDecoding(seq);
    builder.add({
      seqId: seq.id,
      contextTokens: seq.numComputedTokens,
      numNewTokens,
      isPrefill,
      samples: !isPrefill || target === prefillTarget(seq),
      adapterSlot: seq.adapterSlot,
    }, seq);
    return true;
  }

  /** Tokens of the first chunk when admitting `seq` with `numCachedTokens` served from the cache. */
  protected abstract firstChunkTokens(seq: SeqState, numCachedTokens: number, tokenBudget: number): number;

  /**
   * Runs admission in service order and stops at the first `stop`; a tenant at its cap is
   * skipped. With `reserveWorstCase` (static batching) the admitted batch's worst case must fit.
   * Returns how many were admitted.
   */
  protected admitInOrder(nowUs: TimeUs, builder: PlanBuilder, reserveWorstCase: boolean): number {
    const reservation: BatchReservation | null = reserveWorstCase
      ? { freeBlocksAtStart: this.allocator.numBlocksFree(), reservedBlocks: 0 }
      : null;
    const admitted: SeqState[] = [];
    // The queue is only read while iterating; admitted requests leave it afterwards.
    for (const seq of this.waiting.inOrder(nowUs)) {
      const verdict = this.admissionVerdict(seq, builder.tokenBudgetLeft, reservation);
      if (verdict === 'skip') continue;
      if (verdict === 'stop') break;
      this.admit(seq, builder.tokenBudgetLeft, builder);
      admitted.push(seq);
      if (reservation !== null) {
        reservation.reservedBlocks += this.allocator.worstCaseBlocks(seq.spec.promptTokens + seq.spec.maxOutputTokens);
      }
    }
    for (const seq of admitted) this.waiting.remove(seq);
    return admitted.length;
  }

  // ---- internals -----------------------------------------------------------------------------

  private tenantAtCap(tenant: string): boolean {
    const cap = this.config.tenantCaps[tenant] ?? this.config.defaultTenantCap;
    return cap > 0 && (this.runningByTenant.get(tenant) ?? 0) >= cap;
  }

  private anyAdmissible(nowUs: TimeUs): boolean {
    if (this.waiting.size === 0) return false;
    const decodeTokens = this.policy === 'chunked' ? this.running.length : 0;
    for (const seq of this.waiting.inOrder(nowUs)) {
      const verdict = this.admissionVerdict(seq, this.config.maxNumBatchedTokens - decodeTokens, null);
      if (verdict === 'skip') continue;
      return verdict === 'ok';
    }
    return false;
  }

  /**
   * Grows page tables for steps [fromStep, toStep) of the pending or planned decode run (step s
   * writes token numComputedTokens + s of every running sequence) and sets used[s] to the blocks in
   * use during step s.
   */
  private growDecodeRun(fromStep: number, toStep: number, used: number[]): void {
    // Grow page tables in the same order as single steps would (step by step, and within a step
    // in running order), touching only the sequences that cross a block boundary at that step:
    // O(n + steps + blocks taken), not O(n × steps); lengthening a run whose crossings were grouped
    // when it was planned touches no other sequence: O(steps + blocks taken).
    const running = this.running;
    const n = running.length;
    const page = this.allocator.pageSizeTokens;
    if (fromStep > 0 && this.runGroupsValid) {
      this.growGrouped(this.runGroups, this.runStarts, page, 0, fromStep, toStep, used);
      return;
    }
    this.runGroupsValid = false;
    // Slack from fromStep on: page-table tokens beyond those steps fromStep.. write.
    const slack = this.fillDecodeSlack(fromStep);
    const numSteps = toStep - fromStep;
    let allBelowPage = true;
    let everyBelowPage = true;
    for (let i = 0; i < n; i++) {
      const s = slack[i];
      if (s < 0 || s >= page) {
        everyBelowPage = false;
        if (s < numSteps) allBelowPage = false;
      }
    }
    if (allBelowPage && page <= MAX_SLACK_BUCKETS) {
      // Every growing sequence crosses at steps slack, slack + page, ...: the sequences crossing
      // at step j are those with slack = j mod page, kept in running order by a counting sort.
      // When every slack is below a page, all sequences are grouped (one whose slack is past this
      // run never meets its group's steps within it) and the groups are kept for extendDecodeRun.
      const keep = fromStep === 0 && everyBelowPage;
      if (!keep && !growsWithin(slack, n, numSteps)) {
        // No table grows in these steps (contiguous KV never does): blocks in use stay as they are.
        const usedNow = this.allocator.numBlocksUsed();
        for (let step = fromStep; step < toStep; step++) used[step] = usedNow;
        return;
      }
      // Sequence i is grouped when keep || slack[i] < numSteps (inline: a closure here was allocated per call).
      if (keep && this.runStarts.length < page + 1) this.runStarts = new Int32Array(page + 1);
      const starts = keep ? this.runStarts.fill(0, 0, page + 1) : this.slackCountsOfSize(page);
      for (let i = 0; i < n; i++) if (keep || slack[i] < numSteps) starts[slack[i] + 1]++;
      for (let r = 0; r < page; r++) starts[r + 1] += starts[r];
      const groups = keep ? this.runGroups : SCRATCH.slackGroups;
      groups.reserve(n);
      // Fill group r from starts[r] on; starts[r] is advanced past the group and restored below.
      for (let i = 0; i < n; i++) if (keep || slack[i] < numSteps) groups.set(starts[slack[i]]++, running[i]);
      for (let r = page; r > 0; r--) starts[r] = starts[r - 1];
      starts[0] = 0;
      // Slacks were taken at fromStep: group r crosses at steps fromStep + r, fromStep + r + page, ...
      this.growGrouped(groups, starts, page, fromStep, fromStep, toStep, used);
      this.runGroupsValid = keep;
    } else {
      const crossingsByStep: number[][] = [];
      for (let i = 0; i < n; i++) {
        for (let step = slack[i]; step < numSteps; step += page) (crossingsByStep[step] ??= []).push(i);
      }
      for (let step = 0; step < numSteps; step++) {
        const crossing = crossingsByStep[step];
        if (crossing !== undefined) {
          for (const i of crossing) {
            const seq = running[i];
            const copies = this.allocator.grow(seq.id, seq.numComputedTokens + fromStep + step + 1);
            assert(copies.length === 0, 'a steady decode run never copies on write');
          }
        }
        used[fromStep + step] = this.allocator.numBlocksUsed();
      }
    }
  }

  /**
   * Steps [fromStep, toStep) of a run (counted from its start) whose sequences are grouped by when
   * they cross into a new block: group r (entries starts[r]..starts[r + 1] of `groups`, running
   * order) at the steps `groupBase` + r + k·page, its slacks having been taken at step groupBase <= fromStep.
   */
  private growGrouped(groups: GroupedSeqs, starts: Int32Array, page: number, groupBase: number, fromStep: number, toStep: number, used: number[]): void {
    const allocator = this.allocator;
    if (allocator.canBatchGrow?.() === true && allocator.takeBlocks !== undefined && allocator.appendBlocks !== undefined) {
      this.growGroupedBatched(groups, starts, page, groupBase, fromStep, toStep, used);
      return;
    }
    const ids = groups.seqIds;
    const tokens0 = groups.tokensAfterStep0;
    let usedNow = allocator.numBlocksUsed();
    for (let step = fromStep, r = (fromStep - groupBase) % page; step < toStep; step++, r = r + 1 === page ? 0 : r + 1) {
      // r = (step − groupBase) mod page. Blocks in use change only when some sequence grows.
      if (starts[r] < starts[r + 1]) {
        for (let j = starts[r]; j < starts[r + 1]; j++) {
          // Step `step` writes token numComputedTokens + step: the table grows to cover one more.
          const copies = allocator.grow(ids[j], tokens0[j] + step);
          assert(copies.length === 0, 'a steady decode run never copies on write');
        }
        usedNow = allocator.numBlocksUsed();
      }
      used[step] = usedNow;
    }
  }

  /**
   * growGrouped with every crossing taking one block (KvAllocator.canBatchGrow): the blocks the
   * crossings take, in the order the grows would take them (step by step, group order within a
   * step), are taken at once, then each table gets its own in one append, so a table is read once
   * per call rather than once per block. Crossing k (0-based, in that order) at step s is the
   * (j − starts[r])-th of group r, after the crossings of the earlier steps: used[s − 1] − used0 of them.
   */
  private growGroupedBatched(groups: GroupedSeqs, starts: Int32Array, page: number, groupBase: number, fromStep: number, toStep: number, used: number[]): void {
    const allocator = this.allocator;
    const used0 = allocator.numBlocksUsed();
    let usedNow = used0;
    const r0 = (fromStep - groupBase) % page;
    for (let step = fromStep, r = r0; step < toStep; step++, r = r + 1 === page ? 0 : r + 1) {
      usedNow += starts[r + 1] - starts[r];
      used[step] = usedNow;
    }
    const count = usedNow - used0;
    if (count === 0) return;
    const taken = SCRATCH.takenBlocks;
    allocator.takeBlocks!(count, taken);
    const ids = groups.seqIds;
    const tokens0 = groups.tokensAfterStep0;
    const mine = SCRATCH.seqBlocks;
    for (let r = 0; r < page; r++) {
      const first = starts[r];
      const end = starts[r + 1];
      if (first === end) continue;
      // Group r's first crossing at or after fromStep.
      const s0 = fromStep + (r >= r0 ? r - r0 : r - r0 + page);
      if (s0 >= toStep) continue;
      for (let j = first; j < end; j++) {
        let m = 0;
        let last = s0;
        for (let s = s0; s < toStep; s += page) {
          mine[m++] = taken[(s > fromStep ? used[s - 1] : used0) - used0 + (j - first)];
          last = s;
        }
        // The last crossing's grow asked for tokens0 + last tokens.
        allocator.appendBlocks!(ids[j], mine, m, tokens0[j] + last);
      }
    }
  }

  /**
   * A decode run: every running sequence decodes one token per step; nothing else is planned.
   * With `reuse` (ScheduleView.reuseRunStorage) its items and per-step array are this scheduler's
   * own, overwritten by the next run: a fleet-day allocated a number per simulated step and an
   * item per sequence per run, most of its garbage (GC and cache misses at fleet scale).
   */
  private composeDecodeRun(numSteps: number, reuse: boolean): BatchPlan {
    const used: number[] = reuse ? this.runUsedPerStep : new Array(numSteps);
    this.growDecodeRun(0, numSteps, used);
    const items = reuse ? this.reusedRunItems() : this.running.map(decodeItemOf);
    return decodeRunPlan(this.nextStepIndex, numSteps, items, used);
  }

  /** composeDecodeRun's items in this scheduler's reused list and item objects, one per running sequence. */
  private reusedRunItems(): PlanItem[] {
    const running = this.running;
    const n = running.length;
    const items = this.runItems;
    const pool = this.runItemPool;
    // pop and push rather than setting the length (a runtime call each time): a run's batch
    // differs from the last one's by a few sequences.
    while (items.length > n) items.pop();
    while (items.length < n) items.push(EMPTY_ITEM);
    for (let i = 0; i < n; i++) {
      const seq = running[i];
      let item = pool[i];
      if (item === undefined) pool[i] = item = decodeItemOf(seq);
      else {
        item.seqId = seq.id;
        item.contextTokens = seq.numComputedTokens;
        item.adapterSlot = seq.adapterSlot;
      }
      items[i] = item;
    }
    return items;
  }

  /** The newest running sequence that has no work in this step yet: the preemption victim. */
  private newestUnplanned(builder: PlanBuilder): SeqState | undefined {
    for (let i = this.running.length - 1; i >= 0; i--) {
      if (!builder.isPlanned(this.running[i].spec.id)) return this.running[i];
    }
    return undefined;
  }

  private preempt(seq: SeqState, builder: PlanBuilder): void {
    assert(!builder.isPlanned(seq.id), 'never preempt a sequence already planned in this step');
    this.releaseRunning(seq);
    seq.status = 'preempted';
    seq.numComputedTokens = 0;
    seq.numPreemptions++;
    this.waiting.add(seq);
    builder.preempted.push(seq.id);
  }

  /** Releases what a running sequence holds. Pairs with admit. */
  private releaseRunning(seq: SeqState): void {
    const index = this.running.lastIndexOf(seq);
    if (!(index >= 0)) fail(`seq ${seq.id} is not running`);
    this.running.splice(index, 1);
    this.runningContextSum -= seq.numComputedTokens;
    this.allocator.free(seq.id);
    seq.numTokensCovered = 0;
    if (seq.spec.adapter !== null) this.lora.release(seq.spec.adapter);
    seq.adapterSlot = -1;
    const count = this.runningByTenant.get(seq.spec.tenant) ?? 0;
    if (!(count > 0)) fail(`tenant ${seq.spec.tenant} running count underflow`);
    this.runningByTenant.set(seq.spec.tenant, count - 1);
  }

  private terminate(seq: SeqState, status: 'finished' | 'aborted', reason: TerminalReason): void {
    seq.status = status;
    seq.reason = reason;
    this.seqs.delete(seq.id);
  }

  private rejectionReason(spec: RequestSpec): TerminalReason | null {
    const totalTokens = spec.promptTokens + spec.maxOutputTokens;
    if (totalTokens > this.config.maxSeqLenTokens) return 'prompt_too_long';
    if (spec.adapter !== null && this.lora.numSlots === 0) return 'adapter_slots';
    if (this.allocator.worstCaseBlocks(totalTokens) > this.admitLimitBlocks) return 'kv_capacity';
    return null;
  }
}

/**
 * Sequences of a decode run in the order its page tables grow, with what growing them needs (id,
 * and tokens after the run's first step) copied out of their states when they are grouped: a
 * lengthening of the run grows the tables without reading each sequence's state objects again.
 * The arrays are reused from run to run (grown, never shrunk).
 */
class GroupedSeqs {
  seqIds = new Float64Array(0);
  /** numComputedTokens + 1 when the run was planned (it does not change during the run). */
  tokensAfterStep0 = new Float64Array(0);

  /** Room for `n` entries. */
  reserve(n: number): void {
    if (this.seqIds.length >= n) return;
    const size = Math.max(n, 2 * this.seqIds.length);
    this.seqIds = new Float64Array(size);
    this.tokensAfterStep0 = new Float64Array(size);
  }

  set(at: number, seq: SeqState): void {
    this.seqIds[at] = seq.id;
    this.tokensAfterStep0[at] = seq.numComputedTokens + 1;
  }
}

type MutablePlanItem = { -readonly [K in keyof PlanItem]: PlanItem[K] };

/** A placeholder entry of a reused item list, overwritten before the list is used. */
const EMPTY_ITEM: PlanItem = Object.freeze({ seqId: -1, contextTokens: 0, numNewTokens: 0, isPrefill: false, samples: false, adapterSlot: -1 });

/** A running sequence's item in a decode run: one new token, sampled. */
function decodeItemOf(seq: SeqState): MutablePlanItem {
  return { seqId: seq.id, contextTokens: seq.numComputedTokens, numNewTokens: 1, isPrefill: false, samples: true, adapterSlot: seq.adapterSlot };
}

/** Whether any of the first `n` slacks is below `numSteps` (that sequence grows within the steps). */
function growsWithin(slack: readonly number[], n: number, numSteps: number): boolean {
  for (let i = 0; i < n; i++) if (slack[i] < numSteps) return true;
  return false;
}

/** A request's state as it arrives: waiting since its arrival, nothing computed or generated. */
export function newSeqState(spec: RequestSpec): SeqState {
  return {
    spec,
    id: spec.id,
    promptTokens: spec.promptTokens,
    maxOutputTokens: spec.maxOutputTokens,
    status: 'waiting',
    reason: null,
    numComputedTokens: 0,
    numOutputTokens: 0,
    numPreemptions: 0,
    numCachedPromptTokens: 0,
    admitOrder: -1,
    waitingSinceUs: spec.arrivalUs,
    numTokensCovered: 0,
    adapterSlot: -1,
  };
}

/** Tokens a sequence must have in KV before it decodes: its prompt plus what it had generated. */
export function prefillTarget(seq: SeqState): number {
  return seq.promptTokens + seq.numOutputTokens;
}

/** A decoding sequence has everything but its last sampled token in KV. */
export function isDecoding(seq: SeqState): boolean {
  return seq.numOutputTokens > 0 && seq.numComputedTokens === prefillTarget(seq) - 1;
}

/**
 * Scratch of every scheduler's per-plan passes, shared (one scheduler runs at a time in a thread,
 * and each use fills what it reads): a fleet's per-replica copies were cold again at each plan.
 * decodeSlack is memoized across calls, so it records which scheduler filled it last.
 */
const SCRATCH = {
  /** Each running sequence's slack (fillDecodeSlack), in running order; the first running.length entries. */
  decodeSlack: [] as number[],
  slackOwner: null as Scheduler | null,
  /** Per slack value r (0 <= r < page): count, then start offset, of growing sequences (length page + 1). */
  slackCounts: new Int32Array(0),
  /** Growing sequences grouped by slack, running order within a group (a run whose groups are not kept). */
  slackGroups: new GroupedSeqs(),
  /** growGroupedBatched: the blocks taken, and one sequence's share of them. */
  takenBlocks: [] as number[],
  seqBlocks: [] as number[],
};
