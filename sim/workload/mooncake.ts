import { hashInts, type PromptContent } from '../../engine/policy/index.js';
import type { TraceRow } from './trace.js';
import { readTraceText, TraceFormatError } from './types.js';

/** Mooncake's hash_ids each cover this many prompt tokens. */
export const MOONCAKE_BLOCK_TOKENS = 512;

/**
 * Prompt content from Mooncake block hashes: a token range's key is derived from the hash ids of
 * the 512-token blocks it covers and its offsets within them, so equal leading hash ids give equal
 * keys (shared prefix) for any page size. Tokens past the listed blocks get keys unique to the row.
 */
export function mooncakeContent(hashIds: readonly number[], rowIndex: number): PromptContent {
  return {
    rangeKey(start: number, end: number): number {
      const first = Math.floor(start / MOONCAKE_BLOCK_TOKENS);
      const last = Math.floor((end - 1) / MOONCAKE_BLOCK_TOKENS);
      const parts: number[] = [start % MOONCAKE_BLOCK_TOKENS, end - start];
      for (let b = first; b <= last; b++) {
        if (b < hashIds.length) parts.push(hashIds[b]);
        else parts.push(-1 - rowIndex); // unique to this row: never shared
      }
      return hashInts(parts.map((v) => (v < 0 ? 2 ** 52 + v : v)));
    },
  };
}

function field(obj: Record<string, unknown>, key: string, file: string, line: number): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new TraceFormatError(file, line, `${key} = ${JSON.stringify(v)}: must be a non-negative integer`);
  }
  return v;
}

/** Loads the Mooncake JSONL trace (gzip'ed if the name ends in .gz); validates every row. */
export function loadMooncakeTrace(file: string): TraceRow[] {
  const text = readTraceText(file);
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const rows: TraceRow[] = [];
  let prevMs = -Infinity;
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    let obj: unknown;
    try {
      obj = JSON.parse(lines[i]);
    } catch (e) {
      throw new TraceFormatError(file, line, `not valid JSON: ${(e as Error).message}`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new TraceFormatError(file, line, 'must be a JSON object');
    const o = obj as Record<string, unknown>;
    const timestampMs = field(o, 'timestamp', file, line);
    const inputTokens = field(o, 'input_length', file, line);
    const outputTokens = field(o, 'output_length', file, line);
    const hashIds = o.hash_ids;
    if (!Array.isArray(hashIds) || hashIds.some((h) => typeof h !== 'number' || !Number.isSafeInteger(h) || h < 0)) {
      throw new TraceFormatError(file, line, `hash_ids = ${JSON.stringify(hashIds).slice(0, 60)}: must be an array of non-negative integers`);
    }
    if (timestampMs < prevMs) throw new TraceFormatError(file, line, `timestamp = ${timestampMs}: earlier than the previous row`);
    prevMs = timestampMs;
    rows.push({ offsetUs: timestampMs * 1000, inputTokens, outputTokens, content: mooncakeContent(hashIds as number[], i) });
  }
  return rows;
}
