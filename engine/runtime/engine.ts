// The engine loop: the shared policy core driving a runner, four calls per step as in nano-vllm
// (schedule → execute → sample → onStepEnd). Arrival semantics follow the simulator's replica
// exactly: a request that arrives at time t joins the scheduler at the first step boundary >= t
// (an arrival exactly at a boundary is in time for it); an idle engine wakes at the next arrival.
import { type BatchPlan, type PromptContent, type Scheduler, type SeqId, type SeqState, type StepOutcome } from '../policy/index.js';
import type { Clock } from './clock.js';
import type { ModelRunner, RunnerItem, SamplingParams } from './runner.js';
import { GREEDY } from './runner.js';

export interface EngineRequest {
  /** Dense id, unique per engine; also the scheduler's seq id. */
  readonly id: SeqId;
  readonly tenant: string;
  readonly adapter: string | null;
  readonly priorityClass: number;
  /** When the request arrives, on the engine's clock. */
  readonly arrivalUs: number;
  readonly promptTokens: number;
  /** max_tokens: generation stops here (or at a stop token). */
  readonly maxOutputTokens: number;
  readonly content?: PromptContent;
  /** The prompt; generated deterministically from (seed, id) when absent. */
  readonly promptTokenIds?: Int32Array;
  readonly sampling?: SamplingParams;
  /** Tokens that end this request early, instead of the engine's stopTokenIds. */
  readonly stopTokenIds?: readonly number[];
}

export interface EngineRequestSource {
  /**
   * The next request in arrival order, or null: no more requests (an offline source), or none
   * yet (an online source, one with waitForRequest).
   */
  next(): EngineRequest | null;
  /**
   * Online sources only (a server, whose requests arrive while the engine runs): called when the
   * engine has nothing to do and next() has nothing; resolves true once next() has a request,
   * false when the source is closed for good (the engine then returns). An online request's
   * arrivalUs is the engine clock's time when it came in, so it is never in the engine's future.
   */
  waitForRequest?(): Promise<boolean>;
}

/** One executed step, for the per-step log and for the metrics. */
export interface EngineStepRecord {
  readonly stepIndex: number;
  /** The step boundary at which it was scheduled. */
  readonly startUs: number;
  readonly endUs: number;
  /** Host time spent in schedule(). */
  readonly scheduleUs: number;
  /** Time in the runner (forward + sampling), wall clock. */
  readonly runUs: number;
  /** Device time of the forward (GPU events), when the runner measures it. */
  readonly gpuUs: number | null;
  readonly plan: BatchPlan;
  /** Σ KV tokens over running sequences right after schedule (for KV waste). */
  readonly liveTokens0: number;
  readonly outcome: StepOutcome;
}

export interface EngineObserver {
  /** A request joined the scheduler (or was rejected) at boundary `nowUs`. */
  onAdmit?(request: EngineRequest, seq: SeqState, nowUs: number, rejectReason: string | null): void;
  onStep?(record: EngineStepRecord): void;
  /**
   * A sampled token of request `seqId` (its `index`-th output token), right after its step, before
   * onStep. `logprob` is its log probability (RunnerResult.logprobs), NaN where the runner has
   * none. Returning true ends the request with this token, as a stop token would (a server's stop
   * string, matched on the text so far).
   */
  onToken?(seqId: SeqId, token: number, index: number, nowUs: number, logprob: number): boolean | void;
  /** A request that had been admitted ended: finished (length or stop token) or aborted (Engine.abort). */
  onEnd?(seq: SeqState, nowUs: number): void;
}

export interface EngineOptions {
  readonly scheduler: Scheduler;
  readonly runner: ModelRunner;
  readonly clock: Clock;
  /** Seeds generated prompts and sampling. */
  readonly seed: number;
  /** Safety bound on steps (every loop has one). */
  readonly maxSteps: number;
  /** Tokens that end a request early (none: benchmarks generate exactly maxOutputTokens). */
  readonly stopTokenIds?: readonly number[];
  readonly observer?: EngineObserver;
  /**
   * Yield to the event loop after every step (a server: steps run synchronously, and HTTP input,
   * output and aborts are handled between them). Default false: an offline run never yields.
   */
  readonly yieldEachStep?: boolean;
  /** Keep every finished request's tokens for run()'s result (default true; a server passes false). */
  readonly keepOutputs?: boolean;
}

interface Live {
  readonly request: EngineRequest;
  /** Prompt then generated tokens. */
  readonly tokens: number[];
  readonly sampling: SamplingParams;
  readonly stopTokens: ReadonlySet<number>;
}

export interface EngineResult {
  readonly numSteps: number;
  readonly endUs: number;
  /** Generated tokens per finished request id. */
  readonly outputs: ReadonlyMap<SeqId, readonly number[]>;
}

export class Engine {
  private readonly live = new Map<SeqId, Live>();
  private readonly outputs = new Map<SeqId, number[]>();
  private readonly stopTokens: ReadonlySet<number>;

  constructor(readonly options: EngineOptions) {
    this.stopTokens = new Set(options.stopTokenIds ?? []);
  }

  async run(source: EngineRequestSource): Promise<EngineResult> {
    const { scheduler, clock, observer } = this.options;
    let next = source.next();
    let lastArrivalUs = 0;
    let numSteps = 0;
    let numArrivals = 0;
    // Bound: every pass runs a step or idles until the next arrival, which the following pass
    // admits; so passes <= steps + 2 × arrivals + 1.
    for (let pass = 0; ; pass++) {
      if (numSteps > this.options.maxSteps) throw new Error(`engine: more than ${this.options.maxSteps} steps (raise the bound or shorten the run)`);
      if (pass > numSteps + 2 * numArrivals + 1) throw new Error(`engine: idle pass ${pass} admitted nothing (${numSteps} steps, ${numArrivals} arrivals)`);
      const nowUs = clock.nowUs();
      // An online source gets requests while the engine runs: ask again at every pass.
      if (next === null && source.waitForRequest !== undefined) next = source.next();
      while (next !== null && next.arrivalUs <= nowUs) {
        if (next.arrivalUs < lastArrivalUs) throw new Error(`engine: arrival times decrease at request ${next.id}`);
        lastArrivalUs = next.arrivalUs;
        numArrivals++;
        this.admit(next, nowUs);
        next = source.next();
      }
      if (!scheduler.hasWork()) {
        if (!(await this.idle(source, next))) break;
        continue;
      }
      const plan = scheduler.schedule({ nowUs });
      const scheduledUs = clock.nowUs();
      numSteps++;
      const liveTokens0 = scheduler.runningContextTokens();
      if (plan.items.length === 0) {
        // Nothing can run until something arrives: close the empty step at once, as the simulator does.
        const outcome = scheduler.onStepEnd(plan, { nowUs });
        observer?.onStep?.({ stepIndex: plan.stepIndex, startUs: nowUs, endUs: nowUs, scheduleUs: scheduledUs - nowUs, runUs: 0, gpuUs: null, plan, liveTokens0, outcome });
        if (!(await this.idle(source, next))) throw new Error('engine: work is waiting, nothing can be scheduled and no request will come');
        continue;
      }
      const items = plan.items.map((item): RunnerItem => {
        const live = this.live.get(item.seqId)!;
        const seq = scheduler.get(item.seqId)!;
        return {
          seqId: item.seqId,
          contextTokens: item.contextTokens,
          tokenIds: Int32Array.from(live.tokens.slice(item.contextTokens, item.contextTokens + item.numNewTokens)),
          blockTable: scheduler.allocator.blockTable(item.seqId),
          samples: item.samples,
          sampling: live.sampling,
          outputIndex: seq.numOutputTokens,
        };
      });
      const runStartUs = clock.nowUs();
      const result = this.options.runner.execute({ plan, items });
      const endUs = clock.nowUs();
      const stopped: SeqId[] = [];
      plan.items.forEach((item, i) => {
        if (!item.samples) return;
        const token = result.tokens[i];
        const live = this.live.get(item.seqId)!;
        live.tokens.push(token);
        const stopHere = observer?.onToken?.(item.seqId, token, live.tokens.length - live.request.promptTokens - 1, endUs, result.logprobs?.[i] ?? Number.NaN) === true;
        if (stopHere || live.stopTokens.has(token)) stopped.push(item.seqId);
      });
      const outcome = scheduler.onStepEnd(plan, { nowUs: endUs, stoppedSeqIds: stopped });
      for (const seq of outcome.finished) this.finish(seq, endUs);
      observer?.onStep?.({
        stepIndex: plan.stepIndex, startUs: nowUs, endUs, scheduleUs: runStartUs - nowUs, runUs: endUs - runStartUs, gpuUs: result.gpuTimeUs, plan, liveTokens0, outcome,
      });
      if (this.options.yieldEachStep === true) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return { numSteps, endUs: clock.nowUs(), outputs: this.outputs };
  }

  /**
   * Ends an admitted request that has not finished (a client that went away): the scheduler
   * releases its KV blocks and adapter pin, the observer's onEnd sees it aborted. Only between
   * steps, which is whenever other code runs: a step runs synchronously from schedule to
   * onStepEnd. Returns false for a request that is not live (ended, rejected, unknown).
   */
  abort(seqId: SeqId): boolean {
    const live = this.live.get(seqId);
    if (live === undefined) return false;
    const seq = this.options.scheduler.abort(seqId, 'aborted_by_client');
    this.live.delete(seqId);
    this.options.runner.release?.(seqId);
    this.options.observer?.onEnd?.(seq, this.options.clock.nowUs());
    return true;
  }

  /**
   * Nothing can run: waits until a request may be admitted (the next one's arrival time, or an
   * online source's next request). False when none will come: an offline source is done, or an
   * online one closed.
   */
  private async idle(source: EngineRequestSource, next: EngineRequest | null): Promise<boolean> {
    if (next !== null) {
      await this.options.clock.sleepUntilUs(next.arrivalUs);
      return true;
    }
    return source.waitForRequest !== undefined && (await source.waitForRequest());
  }

  private admit(request: EngineRequest, nowUs: number): void {
    const observer = this.options.observer;
    const seq = this.options.scheduler.addRequest({
      id: request.id,
      tenant: request.tenant,
      adapter: request.adapter,
      priorityClass: request.priorityClass,
      arrivalUs: request.arrivalUs,
      promptTokens: request.promptTokens,
      maxOutputTokens: request.maxOutputTokens,
      ...(request.content !== undefined ? { content: request.content } : {}),
    });
    if (seq.status === 'rejected') {
      observer?.onAdmit?.(request, seq, nowUs, seq.reason ?? 'unknown');
      return;
    }
    const prompt = request.promptTokenIds ?? syntheticPrompt(this.options.seed, request.id, request.promptTokens, this.options.runner.vocabSize);
    if (prompt.length !== request.promptTokens) throw new Error(`request ${request.id}: ${prompt.length} prompt token ids for promptTokens = ${request.promptTokens}`);
    const sampling = request.sampling ?? { ...GREEDY, seed: this.options.seed * 1_000_003 + request.id };
    this.live.set(request.id, { request, tokens: Array.from(prompt), sampling, stopTokens: request.stopTokenIds !== undefined ? new Set(request.stopTokenIds) : this.stopTokens });
    observer?.onAdmit?.(request, seq, nowUs, null);
  }

  private finish(seq: SeqState, nowUs: number): void {
    const live = this.live.get(seq.spec.id);
    if (live === undefined) return;
    // A server's engine runs for days: it hands each output to the observer and keeps none.
    if (this.options.keepOutputs !== false) this.outputs.set(seq.spec.id, live.tokens.slice(live.request.promptTokens));
    this.live.delete(seq.spec.id);
    this.options.runner.release?.(seq.spec.id);
    this.options.observer?.onEnd?.(seq, nowUs);
  }
}

/** A deterministic prompt of `n` token ids in [0, vocab) for request `id`. */
export function syntheticPrompt(seed: number, id: number, n: number, vocab: number): Int32Array {
  const out = new Int32Array(n);
  let h = Math.imul(seed ^ 0x27d4eb2f, 0x165667b1) ^ Math.imul(id + 1, 0x9e3779b1);
  for (let i = 0; i < n; i++) {
    h = Math.imul(h ^ (h >>> 15), 0x85ebca6b) + i;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    out[i] = ((h ^ (h >>> 16)) >>> 0) % vocab;
  }
  return out;
}
