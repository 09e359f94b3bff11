// A minimal runner for the policy core: a fake clock and step durations from a simple formula,
// recording what the properties check. Deliberately simpler than sim/replica.
import {
  createScheduler,
  DEFAULT_SCHEDULER_CONFIG,
  type BatchPlan,
  type RequestSpec,
  type Scheduler,
  type SchedulerConfig,
  type SeqState,
} from '../../engine/policy/index.js';

export interface RequestEvent {
  readonly spec: RequestSpec;
  /** Abort the request at this time if it has not ended. */
  readonly abortAtUs?: number;
}

export interface RunRecord {
  readonly scheduler: Scheduler;
  readonly plans: BatchPlan[];
  readonly ended: Map<number, SeqState>;
  /** Step index of each request's first admission, and its position in that step's admissions. */
  readonly firstAdmit: Map<number, { step: number; order: number; nowUs: number }>;
  /** Waiting requests (never admitted) at each admitting step, for the aging property. */
  readonly admissions: { nowUs: number; admitted: number[]; stillWaiting: number[] }[];
  readonly firstTokenStep: Map<number, number>;
  readonly finishUs: Map<number, number>;
  readonly stepsRun: number;
  readonly exhausted: boolean;
}

export type ConfigOverrides = Partial<Omit<SchedulerConfig, 'kv' | 'lora'>> & {
  kv?: Partial<SchedulerConfig['kv']>;
  lora?: Partial<SchedulerConfig['lora']>;
};

export function config(overrides: ConfigOverrides): SchedulerConfig {
  return {
    ...DEFAULT_SCHEDULER_CONFIG,
    ...overrides,
    kv: { ...DEFAULT_SCHEDULER_CONFIG.kv, ...overrides.kv },
    lora: { ...DEFAULT_SCHEDULER_CONFIG.lora, ...overrides.lora },
  };
}

/** Step duration: a fixed overhead plus a cost per token, in microseconds. */
export function stepDurationUs(plan: BatchPlan): number {
  return 1000 + 3 * plan.numPrefillTokens + 20 * plan.items.length;
}

export interface RunOptions {
  /** Use multi-step decode runs (the simulator's fast path). */
  readonly lazy?: boolean;
  readonly maxSteps?: number;
  readonly checkEveryStep?: boolean;
  readonly beforeSchedule?: (scheduler: Scheduler) => void;
  readonly onPlan?: (plan: BatchPlan, scheduler: Scheduler) => void;
  /**
   * Lazy mode: plan each decode run in pieces of at most this many steps (at least 2 first),
   * lengthening it with extendDecodeRun, as the simulator does when nothing happens at a boundary.
   */
  readonly extendBy?: number;
  /**
   * Lazy mode: schedule with reuseRunStorage, as the simulator does; each plan is recorded as a
   * copy taken before the next schedule (the run's own storage is overwritten by it).
   */
  readonly reuseRunStorage?: boolean;
}

/**
 * Feeds requests at their arrival times (an arrival is seen at the first step boundary at or
 * after it; an idle scheduler jumps to the next arrival), runs steps until all work is done.
 */
export function runWorkload(cfg: SchedulerConfig, events: readonly RequestEvent[], options: RunOptions = {}): RunRecord {
  const scheduler = createScheduler(cfg);
  const sorted = [...events].sort((a, b) => a.spec.arrivalUs - b.spec.arrivalUs || a.spec.id - b.spec.id);
  const aborts = events
    .filter((e) => e.abortAtUs !== undefined)
    .map((e) => ({ id: e.spec.id, atUs: e.abortAtUs! }))
    .sort((a, b) => a.atUs - b.atUs || a.id - b.id);
  const ended = new Map<number, SeqState>();
  const everAdmitted = new Set<number>();
  /** Delivered, never admitted, not ended: in arrival order. */
  const neverAdmitted = new Set<number>();
  const record: RunRecord = {
    scheduler,
    plans: [],
    ended,
    firstAdmit: new Map(),
    admissions: [],
    firstTokenStep: new Map(),
    finishUs: new Map(),
    stepsRun: 0,
    exhausted: false,
  };
  let nowUs = 0;
  let nextArrival = 0;
  let nextAbort = 0;
  let steps = 0;
  const maxSteps = options.maxSteps ?? 200_000;
  const deliver = (): void => {
    while (nextArrival < sorted.length && sorted[nextArrival].spec.arrivalUs <= nowUs) {
      const seq = scheduler.addRequest(sorted[nextArrival++].spec);
      if (seq.status === 'rejected') ended.set(seq.spec.id, seq);
      else neverAdmitted.add(seq.spec.id);
    }
    while (nextAbort < aborts.length && aborts[nextAbort].atUs <= nowUs) {
      const { id } = aborts[nextAbort++];
      if (scheduler.get(id) !== undefined) ended.set(id, scheduler.abort(id, 'aborted_by_client'));
      neverAdmitted.delete(id);
    }
  };
  while (steps < maxSteps) {
    deliver();
    if (!scheduler.hasWork()) {
      const nextTimes = [sorted[nextArrival]?.spec.arrivalUs, aborts[nextAbort]?.atUs].filter((t) => t !== undefined) as number[];
      if (nextTimes.length === 0) break;
      nowUs = Math.max(nowUs, Math.min(...nextTimes));
      continue;
    }
    let numSteps = 1;
    if (options.lazy) {
      const steady = scheduler.steadyDecodeSteps(nowUs);
      if (steady > 1) {
        // Steps must end before the next external event, exactly as single steps would see it.
        const horizon = Math.min(
          sorted[nextArrival]?.spec.arrivalUs ?? Infinity,
          aborts[nextAbort]?.atUs ?? Infinity,
          scheduler.nextWaitingChangeUs(nowUs),
        );
        const perStep = 1000 + 20 * scheduler.numRunning();
        const stepsBeforeHorizon = horizon === Infinity ? steady : Math.max(1, Math.ceil((horizon - nowUs) / perStep));
        numSteps = Math.min(steady, stepsBeforeHorizon);
      }
    }
    options.beforeSchedule?.(scheduler);
    let plan = scheduler.schedule({
      nowUs,
      maxSteps: options.extendBy !== undefined && numSteps > 1 ? Math.min(numSteps, Math.max(2, options.extendBy)) : numSteps,
      ...(options.reuseRunStorage === true ? { reuseRunStorage: true } : {}),
    });
    while (plan.numSteps < numSteps) plan = scheduler.extendDecodeRun(plan, Math.min(options.extendBy!, numSteps - plan.numSteps));
    record.plans.push(options.reuseRunStorage === true ? copyOfPlan(plan) : plan);
    options.onPlan?.(plan, scheduler);
    const admittedNow: number[] = [];
    for (const item of plan.items) {
      if (item.isPrefill && !everAdmitted.has(item.seqId)) {
        everAdmitted.add(item.seqId);
        neverAdmitted.delete(item.seqId);
        admittedNow.push(item.seqId);
        record.firstAdmit.set(item.seqId, { step: plan.stepIndex, order: admittedNow.length, nowUs });
      }
    }
    if (admittedNow.length > 0) {
      record.admissions.push({
        nowUs,
        admitted: admittedNow,
        stillWaiting: [...neverAdmitted],
      });
    }
    nowUs += stepDurationUs(plan) * plan.numSteps;
    const outcome = scheduler.onStepEnd(plan, { nowUs });
    for (const id of outcome.firstTokenSeqIds) record.firstTokenStep.set(id, plan.stepIndex + plan.numSteps - 1);
    for (const seq of outcome.finished) {
      ended.set(seq.spec.id, seq);
      record.finishUs.set(seq.spec.id, nowUs);
    }
    if (options.checkEveryStep) scheduler.checkInvariants();
    steps += plan.numSteps;
  }
  return { ...record, stepsRun: steps, exhausted: steps >= maxSteps };
}

/** A plan's values, copied out of storage the scheduler may reuse (ScheduleView.reuseRunStorage). */
function copyOfPlan(plan: BatchPlan): BatchPlan {
  return { ...plan, items: plan.items.map((item) => ({ ...item })), kvBlocksUsedPerStep: plan.kvBlocksUsedPerStep.slice(0, plan.numSteps) };
}
