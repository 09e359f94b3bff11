// Fleet events (faults, failover, recovery, autoscaling) on their own small heap beside the
// kernel's event queue; the run loop takes whichever is earlier, fleet events first at equal times.
// Order: (timeUs, seq), seq = insertion order, so runs never differ.

export type FleetEventKind = 'fault' | 'detect' | 'recover' | 'tick' | 'provisioned';

export interface FleetEvent {
  readonly timeUs: number;
  readonly kind: FleetEventKind;
  /** A replica slot (fault, detect, recover, provisioned) or a pool index (tick). */
  readonly target: number;
}

export class FleetTimeline {
  private readonly heap: { ev: FleetEvent; seq: number }[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.heap.length;
  }

  peekTimeUs(): number {
    return this.heap.length === 0 ? Infinity : this.heap[0].ev.timeUs;
  }

  push(ev: FleetEvent): void {
    if (!Number.isSafeInteger(ev.timeUs) || ev.timeUs < 0) throw new Error(`fleet event time must be a non-negative integer of microseconds, got ${ev.timeUs}`);
    const h = this.heap;
    h.push({ ev, seq: this.nextSeq++ });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!earlier(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  pop(): FleetEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && earlier(h[l], h[m])) m = l;
        if (r < h.length && earlier(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top.ev;
  }
}

function earlier(a: { ev: FleetEvent; seq: number }, b: { ev: FleetEvent; seq: number }): boolean {
  return a.ev.timeUs !== b.ev.timeUs ? a.ev.timeUs < b.ev.timeUs : a.seq < b.seq;
}
