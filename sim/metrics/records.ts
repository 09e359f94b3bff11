export type RequestStatus = 'completed' | 'rejected' | 'aborted' | 'failed' | 'pending';

/**
 * Per-request facts, columnar and indexed by the request's dense id (also its scheduler seq id).
 * Times are integer microseconds; -1 means "did not happen".
 */
export class RequestRecords {
  readonly tenant: string[] = [];
  /** Dense index of the request's tenant (tenantNames[tenantIndex[id]] === tenant[id]): array-indexed per-tenant counts. */
  readonly tenantIndex: number[] = [];
  readonly tenantNames: string[] = [];
  private readonly tenantIndexByName = new Map<string, number>();
  readonly adapter: (string | null)[] = [];
  readonly replica: number[] = [];
  readonly arrivalUs: number[] = [];
  readonly firstScheduledUs: number[] = [];
  readonly firstTokenUs: number[] = [];
  readonly lastTokenUs: number[] = [];
  readonly finishUs: number[] = [];
  readonly inputTokens: number[] = [];
  readonly outputTokens: number[] = [];
  readonly outputTokensDone: number[] = [];
  readonly maxItlUs: number[] = [];
  readonly preemptions: number[] = [];
  /** Prompt tokens served from the prefix cache at the request's (last) admission. */
  readonly cachedPromptTokens: number[] = [];
  readonly status: RequestStatus[] = [];
  readonly reason: string[] = [];

  get size(): number {
    return this.arrivalUs.length;
  }

  /** The request ended at `timeUs` (every terminal status goes through here). */
  end(id: number, timeUs: number, status: Exclude<RequestStatus, 'pending'>, reason: string): void {
    this.status[id] = status;
    this.reason[id] = reason;
    this.finishUs[id] = timeUs;
  }

  add(r: { tenant: string; adapter: string | null; replica: number; arrivalUs: number; inputTokens: number; outputTokens: number }): number {
    const id = this.arrivalUs.length;
    this.tenant.push(r.tenant);
    let tenantIndex = this.tenantIndexByName.get(r.tenant);
    if (tenantIndex === undefined) {
      tenantIndex = this.tenantNames.length;
      this.tenantNames.push(r.tenant);
      this.tenantIndexByName.set(r.tenant, tenantIndex);
    }
    this.tenantIndex.push(tenantIndex);
    this.adapter.push(r.adapter);
    this.replica.push(r.replica);
    this.arrivalUs.push(r.arrivalUs);
    this.firstScheduledUs.push(-1);
    this.firstTokenUs.push(-1);
    this.lastTokenUs.push(-1);
    this.finishUs.push(-1);
    this.inputTokens.push(r.inputTokens);
    this.outputTokens.push(r.outputTokens);
    this.outputTokensDone.push(0);
    this.maxItlUs.push(0);
    this.preemptions.push(0);
    this.cachedPromptTokens.push(0);
    this.status.push('pending');
    this.reason.push('');
    return id;
  }
}
