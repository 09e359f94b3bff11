// A request's output text as it is generated, cut before the first stop string: what a stream may
// send now (never a piece of a stop string: the last longest-stop − 1 characters wait until the
// next token shows they begin none) and the text the response ends with.

export class StopStringText {
  /** Text decoded so far. */
  private text = '';
  /** Characters of `text` already handed out by sendable(). */
  private sent = 0;
  /** Where the first stop string starts in `text`, once one is generated; -1 before. */
  private stopAt = -1;
  private readonly holdBack: number;

  constructor(private readonly stops: readonly string[]) {
    let n = 0;
    for (const s of stops) {
      if (s === '') throw new Error('stop strings: an empty stop string matches everywhere');
      if (s.length - 1 > n) n = s.length - 1;
    }
    this.holdBack = n;
  }

  get stopped(): boolean {
    return this.stopAt >= 0;
  }

  /** Adds decoded text; true when a stop string now appears (nothing is added after one). */
  append(delta: string): boolean {
    if (delta === '' || this.stopAt >= 0) return this.stopAt >= 0;
    // A new match ends in `delta`, so it starts at most holdBack characters before it.
    const from = Math.max(0, this.text.length - this.holdBack);
    this.text += delta;
    for (const stop of this.stops) {
      const at = this.text.indexOf(stop, from);
      if (at >= 0 && (this.stopAt < 0 || at < this.stopAt)) this.stopAt = at;
    }
    return this.stopAt >= 0;
  }

  /** The text a stream may send now that it has not sent; with `final`, all of the result that is left. */
  sendable(final: boolean): string {
    const end = this.stopAt >= 0 ? this.stopAt : final ? this.text.length : Math.max(this.sent, this.text.length - this.holdBack);
    const out = end > this.sent ? this.text.slice(this.sent, end) : '';
    if (end > this.sent) this.sent = end;
    return out;
  }

  /** The whole output text: up to the first stop string, or all of it. */
  result(): string {
    return this.stopAt >= 0 ? this.text.slice(0, this.stopAt) : this.text;
  }
}
