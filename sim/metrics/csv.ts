import type { StepRow } from '../replica/replica.js';
import type { RequestRecords } from './records.js';
import { requestLatenciesUs } from './summary.js';

export const REQUEST_COLUMNS = [
  'request_id', 'tenant', 'model', 'adapter', 'arrival_s', 'first_token_s', 'finish_s', 'input_tokens', 'output_tokens',
  'ttft_ms', 'tpot_ms', 'e2e_ms', 'queue_ms', 'preemptions', 'status', 'reason', 'replica', 'itl_ms_max',
] as const;

export const STEP_COLUMNS = [
  'replica', 'step_index', 'start_s', 'duration_ms', 'num_seqs', 'prefill_tokens', 'decode_tokens', 'context_tokens', 'preempted', 'lora_loads', 'kv_blocks_used',
] as const;

function field(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Microseconds as seconds with 6 decimals (exact); empty when the event did not happen. */
function seconds(us: number): string {
  return us < 0 ? '' : (us / 1e6).toFixed(6);
}

function millis(us: number): string {
  return us < 0 ? '' : (us / 1000).toFixed(3);
}

/**
 * requests.csv: one row per request in id (arrival) order, LF line endings, trailing newline.
 * `model` is every row's model, or each request's (a fleet's pools serve different models).
 */
export function requestsCsv(records: RequestRecords, model: string | ((id: number) => string)): string {
  const lines: string[] = [REQUEST_COLUMNS.join(',')];
  for (let id = 0; id < records.size; id++) {
    const lat = requestLatenciesUs(records, id);
    const completed = records.status[id] === 'completed';
    lines.push(
      [
        String(id),
        field(records.tenant[id]),
        typeof model === 'string' ? model : model(id),
        field(records.adapter[id] ?? ''),
        seconds(records.arrivalUs[id]),
        seconds(records.firstTokenUs[id]),
        seconds(records.finishUs[id]),
        String(records.inputTokens[id]),
        String(completed ? records.outputTokensDone[id] : records.outputTokensDone[id]),
        millis(lat.ttftUs),
        millis(lat.tpotUs),
        millis(lat.e2eUs),
        millis(lat.queueUs),
        String(records.preemptions[id]),
        records.status[id],
        field(records.reason[id]),
        String(records.replica[id]),
        records.outputTokensDone[id] > 1 ? millis(records.maxItlUs[id]) : '',
      ].join(','),
    );
  }
  return lines.join('\n') + '\n';
}

export function stepCsvLine(row: StepRow): string {
  return [
    row.replica, row.stepIndex, seconds(row.startUs), millis(row.durationUs), row.numSeqs, row.numPrefillTokens, row.numDecodeTokens,
    row.contextTokens, row.numPreempted, row.numLoraLoads, row.kvBlocksUsed,
  ].join(',');
}
