import { gunzipSync } from 'node:zlib';
import { readTraceFile, TraceFormatError } from './types.js';

/**
 * Tenant popularity from the ServeGen per-client traces (Alibaba Bailian; Apache-2.0, cite arXiv
 * 2505.09999): `servegen_client_traces.tar.gz` holds `data/<category>/<pool>/chunk-<client>-trace.csv`
 * files with rows `timestamp,rate,cv,pattern,arg1,arg2` per 600 s window. A client's share is its
 * requests (Σ rate × 600 s) over the pool's. Returns the shares sorted from the largest.
 */
export function loadServegenShares(file: string, pool: string): number[] {
  const tar = gunzipSync(readTraceFile(file));
  const prefix = `data/${pool}/chunk-`;
  const totals: number[] = [];
  // A tar is 512-byte headers each followed by the member's data padded to 512 bytes; two zero blocks end it.
  for (let offset = 0, members = 0; offset + 512 <= tar.length; members++) {
    if (members > 100_000) throw new TraceFormatError(file, 0, 'more than 100,000 tar members');
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const name = cString(header.subarray(0, 100));
    const sizeText = cString(header.subarray(124, 136)).trim();
    const size = parseInt(sizeText, 8);
    if (!Number.isSafeInteger(size) || size < 0) throw new TraceFormatError(file, 0, `tar member ${name}: size field ${JSON.stringify(sizeText)} is not octal`);
    const data = tar.subarray(offset + 512, offset + 512 + size);
    if (name.startsWith(prefix) && name.endsWith('-trace.csv')) totals.push(clientRequests(data.toString('utf8'), `${file}:${name}`));
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  if (totals.length === 0) throw new TraceFormatError(file, 0, `pool = ${JSON.stringify(pool)}: no data/${pool}/chunk-*-trace.csv members; allowed pools include language/m-large, language/m-mid, language/m-small`);
  const sum = totals.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new TraceFormatError(file, 0, `pool ${pool} has no requests`);
  return totals.map((t) => t / sum).sort((a, b) => b - a);
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return Buffer.from(end < 0 ? bytes : bytes.subarray(0, end)).toString('utf8');
}

function clientRequests(text: string, where: string): number {
  let total = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === '') continue;
    const fields = lines[i].split(',');
    const rate = Number(fields[1]);
    if (fields.length < 2 || !Number.isFinite(rate) || rate < 0) throw new TraceFormatError(where, i + 1, `rate = ${JSON.stringify(fields[1])}: must be a non-negative number`);
    total += rate * 600;
  }
  return total;
}
