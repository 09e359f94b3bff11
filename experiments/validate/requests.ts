// requests.csv (the format `simulate` and `engine bench` share) read back as columns, for the
// per-request comparison (csv-parse: the reader of the csv-stringify that wrote it).
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parse as parseCsv } from 'csv-parse/sync';
import { LogFormatError } from './plan-log.js';

export interface RequestTable {
  readonly ids: number[];
  readonly status: string[];
  readonly arrivalS: number[];
  /** NaN when the request produced no token. */
  readonly ttftMs: number[];
  readonly e2eMs: number[];
  readonly tpotMs: number[];
  readonly finishS: number[];
  readonly outputTokens: number[];
  readonly preemptions: number[];
}

const num = (s: string): number => (s === '' ? Number.NaN : Number(s));

export function parseRequestsCsv(text: string, where: string): RequestTable {
  const lines = parseCsv(text, { skip_empty_lines: true, relax_column_count: true }) as string[][];
  const header = lines[0] ?? [];
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new LogFormatError(`${where}: no column ${name} (header: ${header.join(',')})`);
    return i;
  };
  const c = {
    id: col('request_id'), status: col('status'), arrival: col('arrival_s'), ttft: col('ttft_ms'), e2e: col('e2e_ms'), tpot: col('tpot_ms'),
    finish: col('finish_s'), out: col('output_tokens'), pre: col('preemptions'),
  };
  const t: RequestTable = { ids: [], status: [], arrivalS: [], ttftMs: [], e2eMs: [], tpotMs: [], finishS: [], outputTokens: [], preemptions: [] };
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i];
    if (f.length !== header.length) throw new LogFormatError(`${where}:${i + 1}: ${f.length} fields, header has ${header.length}`);
    t.ids.push(Number(f[c.id]));
    t.status.push(f[c.status]);
    t.arrivalS.push(num(f[c.arrival]));
    t.ttftMs.push(num(f[c.ttft]));
    t.e2eMs.push(num(f[c.e2e]));
    t.tpotMs.push(num(f[c.tpot]));
    t.finishS.push(num(f[c.finish]));
    t.outputTokens.push(Number(f[c.out]));
    t.preemptions.push(Number(f[c.pre]));
  }
  return t;
}

/** requests.csv or requests.csv.gz. */
export function readRequestsCsv(file: string): RequestTable {
  const raw = readFileSync(file);
  return parseRequestsCsv((file.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8'), file);
}
