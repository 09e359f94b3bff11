// The simulation's event queue: a binary min-heap with a total order on (timeUs, rank, seq).
// Time is integer microseconds; `rank` is fixed per event kind (see EVENT_RANK) so that events at
// the same instant are handled in a documented order; `seq` is a counter owned by the queue
// instance, so ties within a kind resolve by insertion order and two runs never differ.

/**
 * Rank per event kind, lower first at equal times:
 * - fleet events (0): a fault, its detection, a recovery, an autoscaler tick, a provisioned
 *   replica (fleet runs only). First, so that routing at that instant sees the fleet as changed.
 * - arrival (1): a request reaches its replica's inbox. Before step-end so that an arrival at the
 *   exact end of a step is added at that boundary ("first step boundary >= arrival time").
 * - step-end (2): a replica finishes a step (step mode only; lazy replicas run steps internally).
 * - wake (3): an idle replica starts a step; after arrivals so that every arrival at that instant
 *   is in the first step.
 */
export const EVENT_RANK = { fault: 0, detect: 0, recover: 0, tick: 0, provisioned: 0, arrival: 1, 'step-end': 2, wake: 3 } as const;
export type EventKind = keyof typeof EVENT_RANK;

export interface SimEvent {
  readonly timeUs: number;
  readonly kind: EventKind;
  /** Index of the replica (slot) the event is for; for a tick, the pool's index. */
  readonly replica: number;
  /** Kind-specific payload: the request index for arrivals, the slot's generation for step-end and wake, unused otherwise. */
  readonly payload: number;
}

interface Entry {
  readonly event: SimEvent;
  readonly rank: number;
  readonly seq: number;
}

export class EventQueue {
  private readonly heap: Entry[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(event: SimEvent): void {
    if (!Number.isSafeInteger(event.timeUs) || event.timeUs < 0) {
      throw new Error(`event time must be a non-negative integer of microseconds, got ${event.timeUs}`);
    }
    const heap = this.heap;
    heap.push({ event, rank: EVENT_RANK[event.kind], seq: this.nextSeq++ });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  peek(): SimEvent | undefined {
    return this.heap[0]?.event;
  }

  pop(): SimEvent | undefined {
    const heap = this.heap;
    if (heap.length === 0) return undefined;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l], heap[m])) m = l;
        if (r < heap.length && before(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top.event;
  }
}

function before(a: Entry, b: Entry): boolean {
  if (a.event.timeUs !== b.event.timeUs) return a.event.timeUs < b.event.timeUs;
  if (a.rank !== b.rank) return a.rank < b.rank;
  return a.seq < b.seq;
}
