import type { Rng } from '../kernel/rng.js';
import type { RequestRecords } from '../metrics/records.js';
import type { FleetConfig } from './schema.js';
import { TokenBucket } from './token-bucket.js';

/** Why the router refused a request (the `reason` column of requests.csv, status `rejected`). */
export type RouterRefusal = 'input_too_long' | 'rate_limited' | 'tenant_concurrency_cap' | 'unknown_tenant' | 'no_replica_up';

export const PRIORITY_CLASS = { premium: 0, standard: 1 } as const;

interface TenantState {
  readonly pool: number;
  readonly priorityClass: number;
  readonly bucket: TokenBucket | null;
  readonly maxConcurrent: number;
  /** Request ids dispatched and not yet known to have ended (an upper bound on those in flight). */
  inFlight: number[];
}

/** What the router may ask of the fleet: bring a replica up to date, and load figures. */
export interface ReplicaView {
  /** Process every step boundary of the slot's replica before `timeUs` (lazy mode). */
  advance(slot: number, timeUs: number): void;
  queueLength(slot: number): number;
  kvBlocksUsed(slot: number): number;
  /** Replica slot serving each request id (for the concurrency cap's refresh). */
  slotOf(id: number): number;
}

/**
 * The request router: admission (hard input limit, per-tenant token bucket, per-tenant concurrency
 * cap; each refusal has a reason) and the choice of a replica inside the tenant's pool. Priority is
 * not queued here: a tenant's plan sets the request's priority class, and each replica's scheduler
 * serves classes in order with aging (a standard request waiting agingS is promoted to premium).
 */
export class Router {
  private readonly tenants = new Map<string, TenantState>();
  private readonly rrNext: number[];
  readonly refusals = new Map<string, number>();

  constructor(
    private readonly fleet: FleetConfig,
    poolIndex: ReadonlyMap<string, number>,
    private readonly records: RequestRecords,
    private readonly rng: Rng,
  ) {
    for (const t of fleet.tenants) {
      const plan = fleet.plans[t.plan];
      const limit = t.rateLimit ?? plan.rateLimit;
      this.tenants.set(t.name, {
        pool: poolIndex.get(t.tier)!,
        priorityClass: PRIORITY_CLASS[plan.priority],
        bucket: limit === undefined ? null : new TokenBucket(limit.ratePerS, limit.burst),
        maxConcurrent: t.maxConcurrent ?? plan.maxConcurrent,
        inFlight: [],
      });
    }
    this.rrNext = fleet.pools.map(() => 0);
  }

  poolOf(tenant: string): number | undefined {
    return this.tenants.get(tenant)?.pool;
  }

  priorityClassOf(tenant: string): number {
    return this.tenants.get(tenant)?.priorityClass ?? PRIORITY_CLASS.standard;
  }

  /** Admission at `nowUs`: null = admitted (and counted in flight), else the reason it is refused. */
  admit(id: number, tenant: string, promptTokens: number, nowUs: number, view: ReplicaView): RouterRefusal | null {
    const t = this.tenants.get(tenant);
    let refusal: RouterRefusal | null = null;
    if (t === undefined) refusal = 'unknown_tenant';
    else if (promptTokens > this.fleet.router.maxInputTokens) refusal = 'input_too_long';
    else if (t.maxConcurrent > 0 && this.inFlightNow(t, nowUs, view) >= t.maxConcurrent) refusal = 'tenant_concurrency_cap';
    // The bucket is asked last, so a request refused for another reason does not spend a token.
    else if (t.bucket !== null && !t.bucket.tryTake(nowUs)) refusal = 'rate_limited';
    if (refusal !== null) {
      this.refusals.set(refusal, (this.refusals.get(refusal) ?? 0) + 1);
      return refusal;
    }
    if (t!.maxConcurrent > 0) t!.inFlight.push(id);
    return null;
  }

  /** Counts a refusal decided outside admit (e.g. every replica of the pool is down). */
  countRefusal(reason: RouterRefusal): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1);
  }

  /**
   * The tenant's requests in flight at `nowUs`, exactly: the list is an upper bound, and only when
   * it reaches the cap are the replicas holding them brought up to `nowUs` and the ended ones dropped.
   */
  private inFlightNow(t: TenantState, nowUs: number, view: ReplicaView): number {
    if (t.inFlight.length < t.maxConcurrent) return t.inFlight.length;
    const status = this.records.status;
    for (const id of t.inFlight) if (status[id] === 'pending') view.advance(view.slotOf(id), nowUs);
    t.inFlight = t.inFlight.filter((id) => status[id] === 'pending');
    return t.inFlight.length;
  }

  /**
   * The replica (slot) for a request among the pool's `up` slots. round-robin: in turn;
   * jsq / least-kv: the least loaded of `choices` sampled slots (all when choices >= slots);
   * affinity: the less loaded of the two slots the adapter (or tenant) hashes to, so a tenant's
   * adapter and prompt prefixes stay warm on few replicas.
   */
  choose(pool: number, up: readonly number[], affinityKey: string, nowUs: number, view: ReplicaView): number {
    const n = up.length;
    if (n === 1) return up[0];
    const policy = this.fleet.router.policy;
    if (policy === 'round-robin') {
      const i = this.rrNext[pool] % n;
      this.rrNext[pool] = i + 1;
      return up[i];
    }
    let candidates: number[];
    if (policy === 'affinity') {
      const h = stringHash(affinityKey);
      candidates = [up[h % n], up[(h + 1) % n]];
    } else if (this.fleet.router.choices >= n) {
      candidates = up as number[];
    } else {
      candidates = [];
      for (let c = 0; c < this.fleet.router.choices; c++) candidates.push(up[Math.floor(this.rng() * n)]);
    }
    let best = candidates[0];
    let bestLoad = Infinity;
    for (const slot of candidates) {
      view.advance(slot, nowUs);
      const load = policy === 'least-kv' ? view.kvBlocksUsed(slot) + view.queueLength(slot) * 1e-6 : view.queueLength(slot);
      if (load < bestLoad) {
        best = slot;
        bestLoad = load;
      }
    }
    return best;
  }
}

/** FNV-1a over UTF-16 code units: a stable, platform-independent 32-bit hash. */
export function stringHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
