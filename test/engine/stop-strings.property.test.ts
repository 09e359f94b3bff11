// StopStringText (the server's stop strings) against a plain reference: after each delta, cut the
// text so far at the first occurrence of any stop string.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StopStringText } from '../../engine/runtime/server/stop-strings.js';

/** The reference: the text before the first stop string, found by searching everything after each delta. */
function reference(deltas: readonly string[], stops: readonly string[]): string {
  let text = '';
  for (const d of deltas) {
    text += d;
    const hits = stops.map((s) => text.indexOf(s)).filter((i) => i >= 0);
    if (hits.length > 0) return text.slice(0, Math.min(...hits));
  }
  return text;
}

// A small alphabet, so stop strings occur often and overlap each other and the deltas' edges.
const chars = fc.constantFrom('a', 'b', 'c', '\n', 'é', '🦙');
const str = (min: number, max: number) => fc.array(chars, { minLength: min, maxLength: max }).map((cs) => cs.join(''));

describe('stop strings', () => {
  it('property: streamed pieces join to the reference result, and no piece ever holds text past the cut', () => {
    fc.assert(
      fc.property(fc.array(str(0, 4), { maxLength: 30 }), fc.array(str(1, 4), { maxLength: 4 }), (deltas, stops) => {
        const out = new StopStringText(stops);
        const want = reference(deltas, stops);
        let streamed = '';
        let stoppedAt = -1;
        deltas.forEach((d, i) => {
          if (out.append(d) && stoppedAt < 0) stoppedAt = i;
          streamed += out.sendable(false);
          // Whatever has been sent is a prefix of the final result.
          expect(want.startsWith(streamed)).toBe(true);
        });
        streamed += out.sendable(true);
        expect(streamed).toBe(want);
        expect(out.result()).toBe(want);
        expect(out.stopped).toBe(stoppedAt >= 0);
        // Stopped exactly at the delta where the reference first finds a stop string.
        if (stoppedAt >= 0) expect(reference(deltas.slice(0, stoppedAt), stops)).toBe(deltas.slice(0, stoppedAt).join(''));
      }),
    );
  });

  it('an empty stop string is refused (it would match everywhere)', () => {
    expect(() => new StopStringText(['x', ''])).toThrow(/empty stop string/);
  });
});
