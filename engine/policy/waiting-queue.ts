import { assert, fail, assertPosInt } from './assert.js';
import type { SeqState, TimeUs } from './types.js';

/**
 * Requests waiting for admission, served by priority class with aging: every `agingUs` of waiting
 * promotes a request by one class (0 is the top), so a low class never starves. Within a class the
 * order is arrival order (FIFO); across classes the order is (effective class, arrival, id).
 *
 * One deque per class (an array and a head index, so taking the head is O(1)), sorted by arrival.
 * Because earlier arrivals are promoted at least as far as
 * later ones, each class array is already in effective order, and a k-way merge of the heads
 * yields the global order lazily (admission usually looks at a handful of entries).
 */
export class WaitingQueue {
  readonly agingUs: number;
  private readonly byClass = new Map<number, ClassQueue>();
  private classes: number[] = [];
  private numEntries = 0;
  /**
   * The last nextOrderChangeUs answer and the time it was asked at; valid until the queue changes
   * (add, remove). Until that answer's time nothing is promoted, so every later call before it has
   * the same answer: a runner that asks at every step of a long batch while a backlog waits (static
   * batching) searches the queue once, not at every step.
   */
  private orderChangeAskedUs = -1;
  /** The iterator inOrder returns, reused. */
  private readonly order: OrderIterator = new OrderIterator(this);
  private orderChangeUs = -Infinity;

  constructor(agingUs: number) {
    assertPosInt(agingUs, 'agingUs');
    this.agingUs = agingUs;
  }

  get size(): number {
    return this.numEntries;
  }

  effectiveClass(seq: SeqState, nowUs: TimeUs): number {
    const promotions = Math.floor(Math.max(0, nowUs - seq.spec.arrivalUs) / this.agingUs);
    return Math.max(0, seq.spec.priorityClass - promotions);
  }

  add(seq: SeqState): void {
    let queue = this.byClass.get(seq.spec.priorityClass);
    if (queue === undefined) {
      queue = { items: [], head: 0 };
      this.byClass.set(seq.spec.priorityClass, queue);
      this.classes = [...this.byClass.keys()].sort((a, b) => a - b);
    }
    // Arrivals come in order and go last; a preempted request goes deeper: binary search for the
    // first live entry it comes before (the entries from the head on are sorted).
    const items = queue.items;
    let i = items.length;
    if (i > queue.head && comesBefore(seq, items[i - 1])) {
      let lo = queue.head;
      let hi = i - 1; // comesBefore(seq, items[hi]); the answer is in [lo, hi]
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (comesBefore(seq, items[mid])) hi = mid;
        else lo = mid + 1;
      }
      i = lo;
    }
    if (i === items.length) items.push(seq);
    else if (i === queue.head && queue.head > 0) items[--queue.head] = seq;
    else items.splice(i, 0, seq);
    this.numEntries++;
    this.forgetOrderChange();
  }

  remove(seq: SeqState): void {
    const queue = this.byClass.get(seq.spec.priorityClass);
    if (queue === undefined) fail(`class ${seq.spec.priorityClass} has no queue`);
    const items = queue.items;
    if (items[queue.head] === seq) {
      items[queue.head++] = undefined as unknown as SeqState;
      if (queue.head > 1024 && queue.head * 2 > items.length) {
        items.splice(0, queue.head);
        queue.head = 0;
      }
    } else {
      const index = items.indexOf(seq, queue.head);
      if (!(index >= 0)) fail(`seq ${seq.spec.id} is not waiting`);
      items.splice(index, 1);
    }
    this.numEntries--;
    this.forgetOrderChange();
  }

  /**
   * Waiting requests in service order at `nowUs`. Do not mutate the queue while iterating, and
   * finish or drop one iteration before starting the next: the iterator is this queue's own,
   * reused (admission asks at every plan while requests wait; a generator allocated its state,
   * two arrays and a result per request visited).
   */
  inOrder(nowUs: TimeUs): Iterable<SeqState> & Iterator<SeqState> {
    const it = this.order;
    it.nowUs = nowUs;
    it.emitted = 0;
    const classes = this.classes;
    // Entries past the classes' count are never read (classes are only ever added).
    for (let k = 0; k < classes.length; k++) {
      const queue = this.byClass.get(classes[k])!;
      it.queues[k] = queue.items;
      it.cursors[k] = queue.head;
    }
    it.numQueues = classes.length;
    return it;
  }

  /** The next request in service order of the iteration `it` (inOrder), or undefined after the last. */
  nextInOrder(it: OrderIterator): SeqState | undefined {
    if (it.emitted >= this.numEntries) return undefined;
    const { queues, cursors } = it;
    let best = -1;
    let bestClass = 0;
    for (let q = 0; q < it.numQueues; q++) {
      const head = queues[q][cursors[q]];
      if (head === undefined) continue;
      const effective = this.effectiveClass(head, it.nowUs);
      if (best < 0 || effective < bestClass || (effective === bestClass && comesBefore(head, queues[best][cursors[best]]))) {
        best = q;
        bestClass = effective;
      }
    }
    assert(best >= 0, 'queue size disagrees with its contents');
    it.emitted++;
    return queues[best][cursors[best]++];
  }

  /**
   * The earliest time after `nowUs` at which the service order may change through aging alone;
   * Infinity when it cannot (a single class is served in arrival order forever).
   */
  nextOrderChangeUs(nowUs: TimeUs): number {
    // An earlier answer holds while the queue is unchanged and its time has not come: no request
    // is promoted before it, so from any time in between the next change is the same.
    if (nowUs >= this.orderChangeAskedUs && nowUs < this.orderChangeUs) return this.orderChangeUs;
    const next = this.computeNextOrderChangeUs(nowUs);
    this.orderChangeAskedUs = nowUs;
    this.orderChangeUs = next;
    return next;
  }

  private forgetOrderChange(): void {
    this.orderChangeAskedUs = -1;
    this.orderChangeUs = -Infinity;
  }

  private computeNextOrderChangeUs(nowUs: TimeUs): number {
    let numNonEmpty = 0;
    for (const c of this.classes) if (classSize(this.byClass.get(c)!) > 0) numNonEmpty++;
    if (numNonEmpty <= 1) return Infinity;
    // Each class array is sorted by arrival, so the number of agings a request has had,
    // m = floor(waited / agingUs), falls along the array: entries form bands of equal m. Within a
    // band the earliest arrival is promoted first, so only each band's first entry matters:
    // O(class × log n) per call instead of O(n) (a backlog of thousands made this quadratic).
    let next = Infinity;
    const agingUs = this.agingUs;
    for (const c of this.classes) {
      const queue = this.byClass.get(c)!;
      if (classSize(queue) === 0) continue;
      const items = queue.items;
      // Entries with m >= c are at class 0 already: skip the prefix of them.
      let i = firstBelow(items, queue.head, c, nowUs, agingUs);
      for (let band = 0; i < items.length && band <= c; band++) {
        const m = agingsOf(items[i], nowUs, agingUs);
        const promotion = items[i].spec.arrivalUs + (m + 1) * agingUs;
        if (promotion < next) next = promotion;
        if (m === 0) break;
        i = firstBelow(items, i + 1, m, nowUs, agingUs);
      }
    }
    return next;
  }
}

/** Agings a waiting request has had by `nowUs`: floor(waited / agingUs). */
function agingsOf(seq: SeqState, nowUs: TimeUs, agingUs: number): number {
  return Math.floor(Math.max(0, nowUs - seq.spec.arrivalUs) / agingUs);
}

/**
 * The first index >= from whose entry has had fewer than `m` agings by `nowUs` (agings fall along
 * the array: false then true), or items.length.
 */
function firstBelow(items: readonly SeqState[], from: number, m: number, nowUs: TimeUs, agingUs: number): number {
  let lo = from;
  let hi = items.length;
  // The newest entry first: in a backlog every entry has had `m` agings (the answer is the end),
  // and the search would read log2(n) entries scattered over a long array.
  if (lo < hi && agingsOf(items[hi - 1], nowUs, agingUs) >= m) return hi;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (agingsOf(items[mid], nowUs, agingUs) < m) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * An iteration of a WaitingQueue in service order (a k-way merge of the class queues' heads): the
 * class arrays and a cursor into each, and the result object the iterator protocol returns, reused.
 */
class OrderIterator implements Iterable<SeqState>, Iterator<SeqState> {
  nowUs = 0;
  emitted = 0;
  /** The class queues of this iteration: the first numQueues entries of queues and cursors. */
  numQueues = 0;
  readonly queues: SeqState[][] = [];
  readonly cursors: number[] = [];
  private readonly result: IteratorResult<SeqState> = { done: false, value: undefined as unknown as SeqState };

  constructor(private readonly queue: WaitingQueue) {}

  [Symbol.iterator](): Iterator<SeqState> {
    return this;
  }

  next(): IteratorResult<SeqState> {
    const seq = this.queue.nextInOrder(this);
    const result = this.result as { done: boolean; value: SeqState | undefined };
    result.done = seq === undefined;
    result.value = seq;
    return this.result;
  }
}

interface ClassQueue {
  readonly items: SeqState[];
  /** Index of the first live entry; entries before it have been taken. */
  head: number;
}

function classSize(queue: ClassQueue): number {
  return queue.items.length - queue.head;
}

function comesBefore(a: SeqState, b: SeqState): boolean {
  if (a.spec.arrivalUs !== b.spec.arrivalUs) return a.spec.arrivalUs < b.spec.arrivalUs;
  return a.spec.id < b.spec.id;
}
