import { parseNonNegInt, type TraceRow } from './trace.js';
import { readTraceText, TraceFormatError } from './types.js';

const HEADER = 'TIMESTAMP,ContextTokens,GeneratedTokens';
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/;

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil); no Date object. */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** `2023-11-16 18:17:03.9799600` (no zone) to integer microseconds since the epoch, exactly. */
export function parseAzureTimestampUs(text: string, file: string, line: number): number {
  const m = TIMESTAMP.exec(text);
  if (m === null) throw new TraceFormatError(file, line, `TIMESTAMP = ${JSON.stringify(text)}: must look like 2023-11-16 18:17:03.9799600`);
  const [, y, mo, d, h, mi, s, frac = ''] = m;
  if (+mo < 1 || +mo > 12 || +d < 1 || +d > 31 || +h > 23 || +mi > 59 || +s > 60) {
    throw new TraceFormatError(file, line, `TIMESTAMP = ${JSON.stringify(text)}: not a valid date and time`);
  }
  const seconds = daysFromCivil(+y, +mo, +d) * 86400 + +h * 3600 + +mi * 60 + +s;
  // Fraction to microseconds, rounding the 7th digit half up (exact in integers).
  const digits = (frac + '000000000').slice(0, 9);
  const micros = Math.floor((Number(digits) + 500) / 1000);
  return seconds * 1_000_000 + micros;
}

/**
 * Loads an Azure LLM inference trace (2023 format: CRLF or LF, optional trailing newline; gzip'ed
 * if the name ends in .gz). Every row is validated; a malformed row throws naming file:line. Rows
 * must be in time order.
 */
export function loadAzureTrace(file: string): TraceRow[] {
  const text = readTraceText(file);
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines[0]?.replace(/^\uFEFF/, '') !== HEADER) {
    throw new TraceFormatError(file, 1, `header = ${JSON.stringify(lines[0] ?? '')}: must be ${HEADER}`);
  }
  const rows: TraceRow[] = [];
  let firstUs = 0;
  let prevUs = -Infinity;
  for (let i = 1; i < lines.length; i++) {
    const line = i + 1;
    const fields = lines[i].split(',');
    if (fields.length !== 3) throw new TraceFormatError(file, line, `expected 3 fields (${HEADER}), got ${fields.length}: ${JSON.stringify(lines[i])}`);
    const timeUs = parseAzureTimestampUs(fields[0], file, line);
    const inputTokens = parseNonNegInt(fields[1], file, line, 'ContextTokens');
    const outputTokens = parseNonNegInt(fields[2], file, line, 'GeneratedTokens');
    if (timeUs < prevUs) throw new TraceFormatError(file, line, `TIMESTAMP = ${fields[0]}: earlier than the previous row; rows must be in time order`);
    if (rows.length === 0) firstUs = timeUs;
    prevUs = timeUs;
    rows.push({ offsetUs: timeUs - firstUs, inputTokens, outputTokens });
  }
  return rows;
}
