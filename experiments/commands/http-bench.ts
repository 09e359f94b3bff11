// `stratos engine bench --backend http`: the workload of a simulate config sent to a running
// OpenAI-compatible server (`stratos serve`, vLLM, …) as streamed completions, each at its
// arrival time (open loop), timed from the client: the same requests.csv and summary.json as a
// simulation of that workload, so a real serving stack compares with the simulator number by number.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RealClock } from '../../engine/runtime/clock.js';
import { syntheticPrompt, type EngineRequest } from '../../engine/runtime/engine.js';
import type { SimConfig } from '../../sim/config.js';
import type { SummaryInput } from '../../sim/metrics/summary.js';
import { workloadSource } from './engine.js';
import { EngineMetrics } from './engine-metrics.js';

export interface HttpBenchOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8000. */
  readonly url: string;
  /** The `model` of every request without an adapter (an adapter's requests name the adapter). */
  readonly servedModel: string;
  /** Prompts are token ids below this (the served model's vocabulary). */
  readonly vocabSize: number;
  readonly outDir?: string;
  /** One line now and then while the run goes (requests sent, finished). */
  readonly progress?: (line: string) => void;
}

export interface HttpBenchResult {
  readonly summary: Record<string, unknown>;
  readonly requestsCsv: string;
}

/** The `data:` payloads of a server-sent-event stream, as they complete. */
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split('\n')) if (line.startsWith('data:')) yield line.slice(5).trimStart();
    }
  }
}

export async function runHttpBench(config: SimConfig, opts: HttpBenchOptions): Promise<HttpBenchResult> {
  const { buildSummary } = await import('../../sim/metrics/summary.js');
  const { requestsCsv } = await import('../../sim/metrics/csv.js');
  const base = opts.url.replace(/\/+$/, '');
  const metrics = new EngineMetrics(Math.round(config.sla.windowS * 1e6), config.kv.pageSizeTokens);
  const source = await workloadSource(config, metrics, undefined, () => {});
  const clock = new RealClock();
  let numSent = 0;
  let numEnded = 0;
  const inFlight: Promise<void>[] = [];

  const send = async (r: EngineRequest): Promise<void> => {
    const body = {
      model: r.adapter ?? opts.servedModel,
      prompt: Array.from(syntheticPrompt(config.seed, r.id, r.promptTokens, opts.vocabSize)),
      max_tokens: r.maxOutputTokens,
      // The workload fixes each output's length: generation runs to max_tokens, greedy.
      ignore_eos: true,
      temperature: 0,
      stream: true,
      user: r.tenant,
    };
    let status: 'completed' | 'rejected' | 'failed' = 'failed';
    let reason = '';
    try {
      const res = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      if (res.status !== 200 || res.body === null) {
        const text = await res.text();
        let message = text.slice(0, 200);
        try {
          message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
        } catch {
          // Not JSON: the text as it came.
        }
        status = 'rejected';
        reason = `http_${res.status}: ${message}`;
        return;
      }
      for await (const data of sseData(res.body)) {
        if (data === '[DONE]') break;
        const event = JSON.parse(data) as { error?: { message?: string }; choices?: { text?: string; token_ids?: number[]; finish_reason?: string | null }[] };
        if (event.error !== undefined) {
          status = 'failed';
          reason = `server_error: ${event.error.message ?? ''}`;
          return;
        }
        const choice = event.choices?.[0];
        if (choice === undefined) continue;
        // One event per token from stratos serve (token_ids); servers without token_ids send a token's text per event.
        const numTokens = choice.token_ids !== undefined ? choice.token_ids.length : choice.text !== undefined && choice.text !== '' ? 1 : 0;
        const nowUs = clock.nowUs();
        for (let k = 0; k < numTokens; k++) metrics.onClientToken(r.id, nowUs);
        if (choice.finish_reason !== null && choice.finish_reason !== undefined) status = 'completed';
      }
      if (status !== 'completed') reason = 'stream ended without a finish_reason';
    } catch (e) {
      status = 'failed';
      reason = `network: ${(e as Error).message}`;
    } finally {
      metrics.onClientEnd(r.id, clock.nowUs(), status, status === 'completed' ? '' : reason);
      numEnded++;
    }
  };

  const progressEveryUs = 10e6;
  let nextProgressUs = progressEveryUs;
  for (let r = source.next(); r !== null; r = source.next()) {
    await clock.sleepUntilUs(r.arrivalUs);
    inFlight.push(send(r));
    numSent++;
    if (clock.nowUs() >= nextProgressUs) {
      opts.progress?.(`${(clock.nowUs() / 1e6).toFixed(0)} s: ${numSent} sent, ${numEnded} ended`);
      nextProgressUs += progressEveryUs;
    }
  }
  await Promise.all(inFlight);
  const endUs = metrics.close();
  // buildSummary wants a KV pool; a client sees none, so a one-block stand-in whose figures are replaced by null below.
  const kv = { weightBytesPerGpu: 0, activationBytesPerGpu: 0, kvBytesPerGpu: 0, numBlocks: 1, numTokens: 0 };
  const input: SummaryInput = { config: { ...config, model: opts.servedModel } as SimConfig, records: metrics.records, replicas: [{ stats: metrics.stats }], costModel: { name: 'http', calibration: 'measured' }, kv, endUs };
  const fromRecords = buildSummary(input) as Record<string, any>;
  const summary: Record<string, unknown> = {
    ...fromRecords,
    stratos_output: 'engine-bench',
    label: 'measured',
    // What a client cannot see: the server's KV cache and its steps.
    kv: null,
    concurrency: { ...fromRecords.concurrency, batch_size_mean_busy: null, busy_fraction: null, steps: null },
    engine: { backend: 'http', url: base, served_model: opts.servedModel, timing: 'client side: arrival = when sent, token times = when each streamed event arrived' },
  };
  const csv = requestsCsv(metrics.records, opts.servedModel);
  if (opts.outDir !== undefined) {
    mkdirSync(opts.outDir, { recursive: true });
    writeFileSync(join(opts.outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    writeFileSync(join(opts.outDir, 'requests.csv'), csv);
  }
  return { summary, requestsCsv: csv };
}
