// `stratos serve` end to end on the CPU backend: a real HTTP server on a free port, real HTTP
// clients, the micro model's greedy tokens checked against the pure TypeScript reference.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScheduler, DEFAULT_SCHEDULER_CONFIG } from '../../engine/policy/index.js';
import { syntheticPrompt } from '../../engine/runtime/engine.js';
import { MODEL_CONFIGS, type ModelConfig } from '../../engine/runtime/model-config.js';
import { LlamaRunner } from '../../engine/runtime/model-runner.js';
import { randomAdapter } from '../../engine/runtime/lora/adapter.js';
import { writePeftFolder } from '../../engine/runtime/lora/peft.js';
import { ByteTokenizer } from '../../engine/runtime/server/byte-tokenizer.js';
import { HfTokenizer } from '../../engine/runtime/server/hf-tokenizer.js';
import { EngineServer } from '../../engine/runtime/server/engine-server.js';
import { randomWeights, writeHfFolder } from '../../engine/runtime/weights.js';
import { LLAMA2_CASES, TEST_CHAT_TEMPLATE, writeLlama2Tokenizer } from './llama2-tokenizer.js';
import { ReferenceLlama } from './reference-llama.js';

// Small enough for the reference, with a byte-sized vocabulary so text prompts work too.
const MICRO: ModelConfig = { ...MODEL_CONFIGS.tiny, name: 'micro', hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, ffnSize: 128, vocabSize: 256 };
const weights = randomWeights(MICRO, 33);
const reference = new ReferenceLlama(weights);
const MAX_CONTEXT = 64;
const NUM_BLOCKS = 64;

let server: EngineServer;
let base: string;

/** A server of the micro model on the CPU backend: 8 sequences, 64 KV blocks of 4 tokens. */
function microServer(): EngineServer {
  const config = { ...DEFAULT_SCHEDULER_CONFIG, policy: 'continuous' as const, maxSeqLenTokens: MAX_CONTEXT, maxNumSeqs: 8, maxNumBatchedTokens: 256, watermarkFraction: 0, kv: { ...DEFAULT_SCHEDULER_CONFIG.kv, numBlocks: NUM_BLOCKS, pageSizeTokens: 4 } };
  const runner = new LlamaRunner(weights, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: NUM_BLOCKS, pageSizeTokens: 4 }, maxNumBatchedTokens: 256, maxNumSeqs: 8 });
  return new EngineServer({ scheduler: createScheduler(config), runner, modelName: 'micro', adapters: [], maxContextTokens: MAX_CONTEXT, seed: 7 });
}

beforeAll(async () => {
  server = microServer();
  const address = await server.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await server?.close();
});

const post = (path: string, body: unknown): Promise<Response> =>
  fetch(base + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

async function complete(body: Record<string, unknown>): Promise<any> {
  const r = await post('/v1/completions', { model: 'micro', ...body });
  expect(r.status, JSON.stringify(await r.clone().json())).toBe(200);
  return r.json();
}

/** The `data:` events of a server-sent-event body. */
function events(text: string): string[] {
  return text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
}

/** A metric's value from the server at `at` (default: the shared one); 0 for a labelled counter not yet counted. */
async function metric(name: string, at = base): Promise<number> {
  const text = await (await fetch(at + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/** Posts a streamed completion to `url` and walks away once the first token has come. */
function disconnectAfterFirstToken(url: string, body: Record<string, unknown>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = httpRequest(url + '/v1/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => {});
    req.end(JSON.stringify({ model: 'micro', ...body, stream: true }));
    setTimeout(() => reject(new Error('no first token')), 10_000);
  });
}

async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('stratos serve (OpenAI-compatible HTTP) on the CPU backend', () => {
  it('health and the model list', async () => {
    expect((await fetch(base + '/health')).status).toBe(200);
    const models: any = await (await fetch(base + '/v1/models')).json();
    expect(models.data.map((m: { id: string }) => m.id)).toEqual(['micro']);
    expect(models.data[0].max_model_len).toBe(MAX_CONTEXT);
  });

  it('a greedy completion of token ids gives the reference model\'s tokens, with usage', async () => {
    const prompt = Array.from(syntheticPrompt(3, 0, 9, MICRO.vocabSize));
    const r = await complete({ prompt, max_tokens: 6, temperature: 0 });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0].token_ids).toEqual(reference.greedy(prompt, 6));
    expect(r.choices[0].finish_reason).toBe('length');
    expect(r.usage).toEqual({ prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 });
    expect(r.choices[0].text).toBe(new ByteTokenizer(256).streamDecoder()(r.choices[0].token_ids, true));
  });

  it('text prompts are UTF-8 bytes; concurrent requests are batched and each still gets its own greedy tokens', async () => {
    const texts = ['Hello', 'naïve café', 'x'.repeat(20), '数据'];
    const results = await Promise.all(texts.map((prompt, i) => complete({ prompt, max_tokens: 4 + i, temperature: 0 })));
    texts.forEach((text, i) => {
      const ids = Array.from(new TextEncoder().encode(text));
      expect(results[i].usage.prompt_tokens).toBe(ids.length);
      expect(results[i].choices[0].token_ids, text).toEqual(reference.greedy(ids, 4 + i));
    });
  });

  it('streams one event per token, then the finish reason with usage, then [DONE]', async () => {
    const prompt = Array.from(syntheticPrompt(3, 1, 7, MICRO.vocabSize));
    const r = await post('/v1/completions', { model: 'micro', prompt, max_tokens: 5, temperature: 0, stream: true });
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const ev = events(await r.text());
    expect(ev.at(-1)).toBe('[DONE]');
    const chunks = ev.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.flatMap((c) => c.choices[0].token_ids)).toEqual(reference.greedy(prompt, 5));
    expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    expect(chunks.at(-1).choices[0].finish_reason).toBe('length');
    expect(chunks.at(-1).usage.completion_tokens).toBe(5);
  });

  it('stop strings: the text ends before the first one, the stream never sends a piece of it, the batch slot is freed', async () => {
    const prompt = 'stop here';
    const full = await complete({ prompt, max_tokens: 24, temperature: 0 });
    const text: string = full.choices[0].text;
    // A 2-character stop string first appearing at position >= 3 of the greedy text.
    let at = 3;
    while (at + 2 <= text.length && text.indexOf(text.slice(at, at + 2)) < at) at++;
    expect(at + 2, `no fresh 2-character string in ${JSON.stringify(text)}`).toBeLessThanOrEqual(text.length);
    const stop = text.slice(at, at + 2);
    const stopped = await complete({ prompt, max_tokens: 24, temperature: 0, stop: ['never-generated', stop] });
    expect(stopped.choices[0].text).toBe(text.slice(0, at));
    expect(stopped.choices[0].finish_reason).toBe('stop');
    const ids: number[] = stopped.choices[0].token_ids;
    expect(ids).toEqual(full.choices[0].token_ids.slice(0, ids.length));
    expect(ids.length).toBeLessThan(24);
    const r = await post('/v1/completions', { model: 'micro', prompt, max_tokens: 24, temperature: 0, stop, stream: true });
    const chunks = events(await r.text()).slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.choices[0].text).join('')).toBe(text.slice(0, at));
    expect(chunks.at(-1).choices[0].finish_reason).toBe('stop');
    expect(await metric('stratos_requests_total{status="completed",reason="stop_string"}')).toBe(2);
    expect(await metric('stratos_requests_running')).toBe(0);
  });

  it('a seeded sampled request repeats exactly; another seed differs', async () => {
    const body = { prompt: 'seeded', max_tokens: 12, temperature: 1, top_p: 0.9, seed: 42 };
    const a = await complete(body);
    const b = await complete(body);
    const c = await complete({ ...body, seed: 43 });
    expect(a.choices[0].token_ids).toEqual(b.choices[0].token_ids);
    expect(c.choices[0].token_ids).not.toEqual(a.choices[0].token_ids);
  });

  it('bad requests get OpenAI-style errors that name the field', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ model: 'micro', prompt: 'x', max_tokens: -1 }, 400, /max_tokens = -1/],
      [{ model: 'micro', prompt: 'x'.repeat(60), max_tokens: 10 }, 400, /60 tokens\) \+ max_tokens \(10\) = 70 exceeds this model's context of 64/],
      [{ model: 'micro', prompt: [1, 2, 256] }, 400, /prompt\[2\] = 256/],
      [{ model: 'micro', prompt: '' }, 400, /prompt is empty/],
      [{ model: 'micro', prompt: 'x', n: 0 }, 400, /n = 0: must be an integer in \[1, 128\]/],
      [{ model: 'micro', prompt: 'x', n: 2, best_of: 3 }, 400, /best_of = 3: not supported \(choices are not ranked by log probability; use n\)/],
      [{ model: 'micro', prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }, 400, /stop = .*: must be a non-empty string or up to 4 of them/],
      [{ model: 'micro', prompt: 'x', temperature: 'hot' }, 400, /temperature = "hot"/],
      [{ model: 'micro', prompt: 'x', bogus: 1 }, 400, /unknown field bogus/],
      [{ prompt: 'x' }, 400, /model is required/],
      [{ model: 'gpt-4', prompt: 'x' }, 404, /model gpt-4 is not served here; served: micro/],
      ['{not json', 400, /not JSON/],
    ];
    for (const [body, status, message] of cases) {
      const r = await post('/v1/completions', body);
      const e: any = await r.json();
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(e.error.message, JSON.stringify(body)).toMatch(message);
    }
    expect((await fetch(base + '/v1/completions')).status).toBe(405);
    expect((await fetch(base + '/v2/nothing')).status).toBe(404);
    const chat = await post('/v1/chat/completions', { model: 'micro', messages: [{ role: 'user', content: 'hi' }] });
    expect(chat.status).toBe(400);
    expect(((await chat.json()) as any).error.message).toMatch(/has no chat template/);
    // The engine is unharmed: the next request completes.
    expect((await complete({ prompt: 'ok', max_tokens: 2, temperature: 0 })).choices[0].token_ids).toHaveLength(2);
  });

  it('a client that disconnects mid-stream is aborted: its KV blocks are freed and the count says why', async () => {
    const abortedBefore = await metric('stratos_requests_total{status="aborted",reason="client_disconnected"}');
    await disconnectAfterFirstToken(base, { prompt: 'a long one', max_tokens: 50, temperature: 0 });
    await until(async () => (await metric('stratos_requests_total{status="aborted",reason="client_disconnected"}')) === abortedBefore + 1, 'the abort to be counted');
    await until(async () => (await metric('stratos_requests_running')) === 0 && (await metric('stratos_kv_blocks_used')) === 0, 'the batch and KV to empty');
    expect((await complete({ prompt: 'after', max_tokens: 3, temperature: 0 })).choices[0].token_ids).toHaveLength(3);
  });

  it('/metrics counts what was served, in Prometheus text format', async () => {
    const text = await (await fetch(base + '/metrics')).text();
    expect(text).toMatch(/# TYPE stratos_time_to_first_token_seconds histogram/);
    expect(text).toMatch(/stratos_time_to_first_token_seconds_bucket\{le="\+Inf"\} \d+/);
    // 1 + 4 + 1 + 1 + 3 + 1 + 1 completed above (the order of the tests is fixed).
    expect(await metric('stratos_requests_total{status="completed",reason="length"}')).toBe(12);
    expect(await metric('stratos_requests_total{status="rejected",reason="prompt_too_long"}')).toBe(0);
    expect(await metric('stratos_kv_blocks_total')).toBe(NUM_BLOCKS);
    expect(await metric('stratos_generation_tokens_total')).toBeGreaterThanOrEqual(6 + (4 + 5 + 6 + 7) + 5 + 24 + 36 + 2 + 3);
  });

  it('engine bench --backend http runs a workload against it: every request completes with its length, timed from the client', async () => {
    const { parseSimConfig } = await import('../../sim/config.js');
    const { runHttpBench } = await import('../../experiments/commands/http-bench.js');
    const { parseRequestsCsv } = await import('../../experiments/validate/requests.js');
    const config = parseSimConfig({ seed: 3, workload: { rate: 40, durationS: 0.3, inputTokens: 'uniform:4:16', outputTokens: 'uniform:2:6' } }, 'test');
    const before = await metric('stratos_generation_tokens_total');
    const { summary, requestsCsv } = await runHttpBench(config, { url: base, servedModel: 'micro', vocabSize: MICRO.vocabSize });
    const s = summary as any;
    expect(s.requests).toBeGreaterThan(3);
    expect(s.completed).toBe(s.requests);
    const table = parseRequestsCsv(requestsCsv, 'http bench');
    const outputs = table.ids.map((_, i) => table.outputTokens[i]);
    // The server generated exactly the tokens the client counted.
    expect((await metric('stratos_generation_tokens_total')) - before).toBe(outputs.reduce((a, x) => a + x, 0));
    expect(s.ttft_ms.mean).toBeGreaterThan(0);
    expect(s.kv).toBeNull();
    expect(s.engine.backend).toBe('http');
    // A request the server refuses is recorded as rejected with the server's reason.
    const tooLong = parseSimConfig({ seed: 3, workload: { rate: 40, durationS: 0.2, inputTokens: 'constant:60', outputTokens: 'constant:10' } }, 'test');
    const refused = (await runHttpBench(tooLong, { url: base, servedModel: 'micro', vocabSize: MICRO.vocabSize })).summary as any;
    expect(refused.requests).toBeGreaterThan(0);
    expect(refused.rejected).toBe(refused.requests);
    expect(Object.keys(refused.not_completed_reasons)).toHaveLength(1);
    expect(Object.keys(refused.not_completed_reasons)[0]).toMatch(/^rejected:http_400: prompt \(60 tokens\) \+ max_tokens \(10\) = 70 exceeds/);
  });

  it('priority: with the batch full, a later request of a better priority class is served before an earlier one', async () => {
    // One sequence at a time, and the tiny model's CPU steps, slow enough that B and C queue behind A.
    const tiny = randomWeights(MODEL_CONFIGS.tiny, 2);
    // A's 200 tokens take 200 CPU steps (about a second here): time enough to queue B and C behind it.
    const config = { ...DEFAULT_SCHEDULER_CONFIG, maxNumSeqs: 1, maxSeqLenTokens: 1024, kv: { ...DEFAULT_SCHEDULER_CONFIG.kv, numBlocks: 256, pageSizeTokens: 4 } };
    const runner = new LlamaRunner(tiny, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 256, pageSizeTokens: 4 }, maxNumBatchedTokens: 256, maxNumSeqs: 1 });
    const one = new EngineServer({ scheduler: createScheduler(config), runner, modelName: 'tiny', adapters: [], maxContextTokens: 1024, seed: 7 });
    const { port } = await one.listen(0, '127.0.0.1');
    const at = `http://127.0.0.1:${port}`;
    try {
      const order: string[] = [];
      const send = (name: string, priority: number, maxTokens: number) =>
        fetch(at + '/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: [1, 2, 3, 4], max_tokens: maxTokens, temperature: 0, priority }) }).then(async (r) => {
          expect(r.status).toBe(200);
          order.push(name);
        });
      const a = send('A', 3, 200);
      await until(async () => (await metric('stratos_requests_running', at)) === 1, 'A to run');
      const b = send('B', 5, 2);
      await until(async () => (await metric('stratos_requests_waiting', at)) === 1, 'B to wait');
      const c = send('C', 0, 2);
      await until(async () => (await metric('stratos_requests_waiting', at)) === 2 || order.length > 0, 'C to wait');
      expect(order).toEqual([]);
      await Promise.all([a, b, c]);
      expect(order).toEqual(['A', 'C', 'B']);
      const bad: any = await (await fetch(at + '/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: [1], priority: -1 }) })).json();
      expect(bad.error.message).toMatch(/priority = -1: must be an integer in \[0, 1000\]/);
    } finally {
      await one.close();
    }
  });

  it('with an API key, /v1/ routes need it (401 otherwise) and /health and /metrics stay open', async () => {
    const config = { ...DEFAULT_SCHEDULER_CONFIG, maxSeqLenTokens: MAX_CONTEXT, kv: { ...DEFAULT_SCHEDULER_CONFIG.kv, numBlocks: 16, pageSizeTokens: 4 } };
    const runner = new LlamaRunner(weights, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 16, pageSizeTokens: 4 }, maxNumBatchedTokens: 256, maxNumSeqs: 8 });
    const keyed = new EngineServer({ scheduler: createScheduler(config), runner, modelName: 'micro', adapters: [], maxContextTokens: MAX_CONTEXT, seed: 7, apiKey: 's3cret' });
    const { port } = await keyed.listen(0, '127.0.0.1');
    try {
      const url = `http://127.0.0.1:${port}`;
      const body = JSON.stringify({ model: 'micro', prompt: 'hi', max_tokens: 2 });
      const none = await fetch(url + '/v1/completions', { method: 'POST', body });
      expect(none.status).toBe(401);
      expect(((await none.json()) as any).error.message).toMatch(/needs an API key/);
      expect((await fetch(url + '/v1/models', { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(url + '/v1/completions', { method: 'POST', body, headers: { Authorization: 'Bearer s3cret' } })).status).toBe(200);
      expect((await fetch(url + '/health')).status).toBe(200);
      expect((await fetch(url + '/metrics')).status).toBe(200);
    } finally {
      await keyed.close();
    }
  });

  it('closing answers requests still in flight with 503 and stops the engine', async () => {
    const pending = post('/v1/completions', { model: 'micro', prompt: 'slow', max_tokens: 58, temperature: 0 });
    await until(async () => (await metric('stratos_requests_running')) > 0, 'the request to run');
    await server.close();
    const r = await pending;
    expect(r.status).toBe(503);
    expect(((await r.json()) as any).error.message).toMatch(/shutting down/);
  });
});

/** `stratos serve ARGS` as a child process, once it prints where it listens. */
async function serveProcess(args: string[]): Promise<{ url: string; stdout: () => string; stderr: () => string; stop: (signal: NodeJS.Signals) => Promise<number | null> }> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const child = spawn(process.execPath, [resolve(root, 'bin/stratos.mjs'), 'serve', '--backend', 'cpu', '--port', '0', ...args], { cwd: root });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  for (let i = 0; i < 500 && !/listening on (http:\S+)/.test(out); i++) await new Promise((r) => setTimeout(r, 20));
  const url = /listening on (http:\S+)/.exec(out)?.[1];
  if (url === undefined) {
    child.kill('SIGKILL');
    throw new Error(`serve did not start:\n${out}${err}`);
  }
  return { url, stdout: () => out, stderr: () => err, stop: (signal) => (child.kill(signal), exited) };
}

describe('stratos serve: n choices and echo', () => {
  // A server of its own, so these requests leave the shared server's counts alone.
  let own: EngineServer;
  let url: string;
  beforeAll(async () => {
    own = microServer();
    url = `http://127.0.0.1:${(await own.listen(0, '127.0.0.1')).port}`;
  });
  afterAll(async () => {
    await own?.close();
  });
  const send = async (body: Record<string, unknown>): Promise<Response> => fetch(url + '/v1/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: 'micro', ...body }) });
  const json = async (body: Record<string, unknown>): Promise<any> => {
    const r = await send(body);
    expect(r.status, JSON.stringify(await r.clone().json())).toBe(200);
    return r.json();
  };

  it('n sampled choices: choice i is the request with seed + i, usage counts every choice', async () => {
    const body = { prompt: 'several', max_tokens: 10, temperature: 1, top_p: 0.95, seed: 5 };
    const r = await json({ ...body, n: 3 });
    expect(r.choices.map((c: any) => c.index)).toEqual([0, 1, 2]);
    for (let i = 0; i < 3; i++) {
      const single = await json({ ...body, seed: 5 + i });
      expect(r.choices[i].token_ids, `choice ${i}`).toEqual(single.choices[0].token_ids);
      expect(r.choices[i].text).toBe(single.choices[0].text);
    }
    expect(new Set(r.choices.map((c: any) => JSON.stringify(c.token_ids))).size).toBeGreaterThan(1);
    expect(r.usage).toEqual({ prompt_tokens: 7, completion_tokens: 30, total_tokens: 37 });
    expect(await metric('stratos_requests_running', url)).toBe(0);
    expect(await metric('stratos_kv_blocks_used', url)).toBe(0);
  });

  it('streamed, each chunk names its choice; each choice ends with its finish reason, then the usage, then [DONE]', async () => {
    const prompt = Array.from(syntheticPrompt(5, 2, 6, MICRO.vocabSize));
    const r = await send({ prompt, max_tokens: 4, temperature: 0, n: 2, stream: true });
    const ev = events(await r.text());
    expect(ev.at(-1)).toBe('[DONE]');
    const chunks = ev.slice(0, -1).map((e) => JSON.parse(e));
    const usage = chunks.at(-1);
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual({ prompt_tokens: 6, completion_tokens: 8, total_tokens: 14 });
    for (const index of [0, 1]) {
      const mine = chunks.slice(0, -1).filter((c) => c.choices[0].index === index);
      expect(mine.flatMap((c) => c.choices[0].token_ids), `choice ${index}`).toEqual(reference.greedy(prompt, 4));
      expect(mine.at(-1).choices[0].finish_reason).toBe('length');
      expect(mine.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    }
  });

  it('echo puts the prompt before each choice\'s text (once, at the start of a stream); token ids stay the generated ones', async () => {
    const plain = await json({ prompt: 'Echo me', max_tokens: 5, temperature: 0 });
    const echoed = await json({ prompt: 'Echo me', max_tokens: 5, temperature: 0, echo: true, n: 2 });
    for (const c of echoed.choices) {
      expect(c.text).toBe('Echo me' + plain.choices[0].text);
      expect(c.token_ids).toEqual(plain.choices[0].token_ids);
    }
    const ids = Array.from(new TextEncoder().encode('Echo me'));
    const byIds = await json({ prompt: ids, max_tokens: 5, temperature: 0, echo: true });
    expect(byIds.choices[0].text).toBe('Echo me' + plain.choices[0].text);
    const chunks = events(await (await send({ prompt: 'Echo me', max_tokens: 5, temperature: 0, echo: true, stream: true })).text()).slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks[0].choices[0].text.startsWith('Echo me')).toBe(true);
    expect(chunks.map((c) => c.choices[0].text).join('')).toBe('Echo me' + plain.choices[0].text);
    const chat = await fetch(url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'micro', messages: [{ role: 'user', content: 'hi' }], echo: true }) });
    expect(chat.status).toBe(400);
    expect(((await chat.json()) as any).error.message).toMatch(/unknown field echo/);
  });

  it("logprobs 0: each generated token's log probability, the reference model's log-softmax at that token", async () => {
    const prompt = Array.from(syntheticPrompt(9, 0, 5, MICRO.vocabSize));
    const r = await json({ prompt, max_tokens: 6, temperature: 0, logprobs: 0, echo: true });
    const c = r.choices[0];
    const want = reference.greedy(prompt, 6);
    expect(c.token_ids).toEqual(want);
    const lp = c.logprobs;
    expect(lp.top_logprobs).toBeNull();
    expect(lp.tokens.join('')).toBe(c.text.slice(lp.text_offset[0]));
    // Offsets count from the start of the returned text (here after the echoed prompt).
    expect(lp.text_offset[0]).toBe(c.text.length - lp.tokens.join('').length);
    lp.tokens.forEach((t: string, k: number) => k > 0 && expect(lp.text_offset[k]).toBe(lp.text_offset[k - 1] + lp.tokens[k - 1].length));
    const rows = reference.logits([...prompt, ...want.slice(0, -1)]).slice(prompt.length - 1);
    want.forEach((token, k) => {
      let max = -Infinity;
      for (const v of rows[k]) max = Math.max(max, v);
      let sum = 0;
      for (const v of rows[k]) sum += Math.exp(v - max);
      expect(lp.token_logprobs[k], `token ${k}`).toBeCloseTo(rows[k][token] - max - Math.log(sum), 3);
    });
    // Streamed: each chunk carries its token's entry; the closing chunk none.
    const chunks = events(await (await send({ prompt, max_tokens: 6, temperature: 0, logprobs: 0, stream: true })).text()).slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.slice(0, -1).map((x) => x.choices[0].logprobs.token_logprobs[0])).toEqual(lp.token_logprobs);
    expect(chunks.at(-1).choices[0].logprobs).toBeNull();
    // Without logprobs there are none; alternatives are refused.
    expect((await json({ prompt, max_tokens: 2, temperature: 0 })).choices[0].logprobs).toBeNull();
    const top: any = await (await send({ prompt, logprobs: 2 })).json();
    expect(top.error.message).toMatch(/logprobs = 2: not supported .*logprobs 0 returns each generated token's/);
  });

  it('a client that leaves frees every choice; a refused choice refuses the request', async () => {
    await disconnectAfterFirstToken(url, { prompt: 'leaving', max_tokens: 40, temperature: 0, n: 3 });
    await until(async () => (await metric('stratos_requests_total{status="aborted",reason="client_disconnected"}', url)) === 3, 'the three choices to be aborted');
    await until(async () => (await metric('stratos_requests_running', url)) === 0 && (await metric('stratos_kv_blocks_used', url)) === 0, 'the batch and KV to empty');
    // 16 choices of 17 + 4 tokens need 16 x 6 = 96 blocks of 4 tokens: more than the pool's 64. The scheduler
    // refuses none of them alone, so the request waits for its choices in turn and still completes.
    const many = await json({ prompt: 'x'.repeat(17), max_tokens: 4, temperature: 0, n: 16 });
    expect(many.choices).toHaveLength(16);
    expect(many.usage.completion_tokens).toBe(64);
  });
});

describe('stratos serve as a process', () => {
  it('serves the tiny model and PEFT adapters by name, and stops on SIGTERM', async () => {
    const adapters = mkdtempSync(join(tmpdir(), 'stratos-serve-'));
    try {
      writePeftFolder(join(adapters, 'acme', 'support'), randomAdapter(MODEL_CONFIGS.tiny, { name: 'acme/support', seed: 5, rank: 8 }), 'f32');
      const { url, stdout, stderr, stop } = await serveProcess(['--model', 'tiny', '--adapters', adapters]);
      expect(stdout()).toContain('1 adapters');
      const models: any = await (await fetch(url + '/v1/models')).json();
      expect(models.data.map((m: { id: string }) => m.id)).toEqual(['tiny', 'acme/support']);
      expect(models.data[1].owned_by).toBe('acme');
      const ask = async (model: string) => {
        const r = await fetch(url + '/v1/completions', { method: 'POST', body: JSON.stringify({ model, prompt: [1, 2, 3, 4, 5, 6, 7, 8], max_tokens: 16, temperature: 0 }) });
        expect(r.status).toBe(200);
        return ((await r.json()) as any).choices[0].token_ids as number[];
      };
      const [base, adapted] = await Promise.all([ask('tiny'), ask('acme/support')]);
      expect(base).toHaveLength(16);
      expect(adapted).toHaveLength(16);
      // The adapter's deltas change the logits (greedy tokens equal over all 16 steps would mean it was not applied).
      expect(adapted).not.toEqual(base);
      expect(await ask('tiny')).toEqual(base);
      expect(await stop('SIGTERM')).toBe(0);
      expect(stderr()).toMatch(/SIGTERM, closing/);
    } finally {
      rmSync(adapters, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('a Hugging Face tokenizer (Llama 2\'s tokenizer.json)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stratos-llama2-tok-'));
  writeLlama2Tokenizer(dir, TEST_CHAT_TEMPLATE);
  const tokenizer = new HfTokenizer(dir);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('encodes as Meta\'s tokenizer does, BOS first, and knows its end of sequence', () => {
    for (const [text, ids] of LLAMA2_CASES) expect(Array.from(tokenizer.encode(text)), JSON.stringify(text)).toEqual(ids);
    expect(tokenizer.eosTokenIds).toEqual([2]);
    expect(tokenizer.idLimit).toBe(32000);
  });

  it('reads a vocabulary too large to spread into one call (Llama 3 has 128,256 ids)', () => {
    const big = mkdtempSync(join(tmpdir(), 'stratos-bigvocab-'));
    try {
      writeLlama2Tokenizer(big);
      const json = JSON.parse(readFileSync(join(big, 'tokenizer.json'), 'utf8'));
      for (let id = 32000; id < 200_000; id++) json.model.vocab[`<extra_${id}>`] = id;
      writeFileSync(join(big, 'tokenizer.json'), JSON.stringify(json));
      const t = new HfTokenizer(big);
      expect(t.idLimit).toBe(200_000);
      expect(Array.from(t.encode('grabbed'))).toEqual([1, 2646, 1327, 287]);
    } finally {
      rmSync(big, { recursive: true, force: true });
    }
  });

  it('streams text token by token: characters split over byte tokens come out whole, the first word keeps its space', () => {
    const prompt = tokenizer.encode('Say:');
    // Encoding adds the SentencePiece space: these ids continue the prompt as " the llama …".
    const output = Array.from(tokenizer.encode('the llama 🦙 said Ꙋ\n\tok')).slice(1);
    const decode = tokenizer.streamDecoder(prompt);
    const pieces = output.map((id) => decode([id], false));
    const text = pieces.join('') + decode([], true);
    expect(text).toBe(' the llama 🦙 said Ꙋ\n\tok');
    // The emoji's four byte tokens: nothing until the last, then the whole character.
    expect(pieces.filter((p) => p.includes('\uFFFD'))).toEqual([]);
    expect(pieces).toContain('🦙');
  });

  it('the server tokenizes text prompts with it, stops at stop_token_ids, and says so', async () => {
    const model: ModelConfig = { ...MICRO, name: 'micro-llama2-vocab', vocabSize: 32000 };
    const w = randomWeights(model, 5);
    const ref = new ReferenceLlama(w);
    const config = { ...DEFAULT_SCHEDULER_CONFIG, policy: 'continuous' as const, maxSeqLenTokens: MAX_CONTEXT, maxNumSeqs: 8, maxNumBatchedTokens: 256, watermarkFraction: 0, kv: { ...DEFAULT_SCHEDULER_CONFIG.kv, numBlocks: NUM_BLOCKS, pageSizeTokens: 4 } };
    const runner = new LlamaRunner(w, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: NUM_BLOCKS, pageSizeTokens: 4 }, maxNumBatchedTokens: 256, maxNumSeqs: 8 });
    const s = new EngineServer({ scheduler: createScheduler(config), runner, modelName: 'm', adapters: [], maxContextTokens: MAX_CONTEXT, seed: 1, tokenizer });
    const address = await s.listen(0, '127.0.0.1');
    try {
      const url = `http://127.0.0.1:${address.port}/v1/completions`;
      const ask = async (body: Record<string, unknown>): Promise<any> => (await fetch(url, { method: 'POST', body: JSON.stringify({ model: 'm', temperature: 0, ...body }) })).json();
      const prompt = 'The llama';
      const ids = Array.from(tokenizer.encode(prompt));
      // Greedy tokens of random weights may include the end of sequence (id 2): ignore_eos runs to max_tokens.
      const want = ref.greedy(ids, 8);
      const full = await ask({ prompt, max_tokens: 8, ignore_eos: true });
      expect(full.usage.prompt_tokens).toBe(ids.length);
      expect(full.choices[0].token_ids).toEqual(want);
      const decode = tokenizer.streamDecoder(Int32Array.from(ids));
      expect(full.choices[0].text).toBe(decode(want, false) + decode([], true));
      // A stop token: the first output position whose token did not occur before it.
      const k = want.findIndex((t, i) => i > 0 && !want.slice(0, i).includes(t));
      const stopped = await ask({ prompt, max_tokens: 8, ignore_eos: true, stop_token_ids: [want[k]] });
      expect(stopped.choices[0].token_ids).toEqual(want.slice(0, k + 1));
      expect(stopped.choices[0].finish_reason).toBe('stop');
      const bad = await ask({ prompt, stop_token_ids: [32000] });
      expect(bad.error.message).toMatch(/stop_token_ids = \[32000\]: must be an array of token ids in \[0, 32000\)/);

      // Chat: the template renders the turns, the reply is the assistant's message.
      const chatUrl = `http://127.0.0.1:${address.port}/v1/chat/completions`;
      const chat = async (body: Record<string, unknown>): Promise<Response> => fetch(chatUrl, { method: 'POST', body: JSON.stringify({ model: 'm', temperature: 0, ignore_eos: true, ...body }) });
      const messages = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Hi there' }];
      const chatIds = Array.from(tokenizer.applyChatTemplate!(messages));
      expect(chatIds.slice(0, 4)).toEqual([1, 518, 25580, 29962]); // <s> [INST]
      expect(chatIds.filter((t) => t === 1)).toHaveLength(1); // one BOS: the template's, none added
      const reply: any = await (await chat({ messages, max_tokens: 6 })).json();
      expect(reply.object).toBe('chat.completion');
      expect(reply.usage.prompt_tokens).toBe(chatIds.length);
      expect(reply.choices[0].token_ids).toEqual(ref.greedy(chatIds, 6));
      expect(reply.choices[0].message.role).toBe('assistant');
      const d = tokenizer.streamDecoder(Int32Array.from(chatIds));
      expect(reply.choices[0].message.content).toBe(d(reply.choices[0].token_ids, false) + d([], true));
      const streamed = events(await (await chat({ messages, max_completion_tokens: 6, stream: true })).text());
      const chunks = streamed.slice(0, -1).map((e) => JSON.parse(e));
      expect(chunks[0].object).toBe('chat.completion.chunk');
      expect(chunks[0].choices[0].delta.role).toBe('assistant');
      expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe(reply.choices[0].message.content);
      expect(chunks.at(-1).choices[0].finish_reason).toBe('length');
      // Chat log probabilities: one content entry per token, its text, bytes and log probability.
      const withLp: any = await (await chat({ messages, max_tokens: 6, logprobs: true })).json();
      const content = withLp.choices[0].logprobs.content;
      expect(content).toHaveLength(6);
      expect(content.map((e: any) => e.token).join('')).toBe(reply.choices[0].message.content);
      for (const e of content) {
        expect(e.logprob).toBeLessThanOrEqual(0);
        expect(e.bytes).toEqual(Array.from(new TextEncoder().encode(e.token)));
        expect(e.top_logprobs).toEqual([]);
      }
      const top: any = await (await chat({ messages, logprobs: true, top_logprobs: 2 })).json();
      expect(top.error.message).toMatch(/top_logprobs = 2: not supported \(the fused sampler returns the sampled token's log probability/);
      // Without a limit the reply may fill the context.
      const long: any = await (await chat({ messages: [{ role: 'user', content: 'x' }] })).json();
      expect(long.usage.total_tokens).toBe(MAX_CONTEXT);
      const refused: any = await (await chat({ messages: [{ role: 'assistant', content: 'first' }] })).json();
      expect(refused.error.message).toMatch(/chat template refuses these messages: roles must alternate/);
      const role: any = await (await chat({ messages: [{ role: 'tool', content: 'x' }] })).json();
      expect(role.error.message).toMatch(/messages\[0\]\.role = "tool": allowed: system, user, assistant/);
    } finally {
      await s.close();
    }
  });
});

describe('stratos serve --checkpoint (a Hugging Face folder with its tokenizer)', () => {
  it('finds tokenizer.json and the chat template in the checkpoint and serves chat over it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stratos-ckpt-'));
    try {
      writeHfFolder(dir, randomWeights({ ...MICRO, name: 'ckpt', vocabSize: 32000 }, 9), 'f32');
      writeLlama2Tokenizer(dir, TEST_CHAT_TEMPLATE);
      const { url, stdout, stop } = await serveProcess(['--checkpoint', dir, '--max-model-len', '256']);
      // Served under the folder's name, with the checkpoint's tokenizer (BPE, 32,000 ids, chat template).
      const name = dir.split('/').at(-1)!;
      expect(stdout()).toMatch(/tokenizer .*tokenizer\.json \(BPE, 32000 ids, eos <\/s>, chat template\)/);
      const r = await fetch(url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: name, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, ignore_eos: true, temperature: 0 }) });
      const reply: any = await r.json();
      expect(r.status, JSON.stringify(reply)).toBe(200);
      expect(reply.choices[0].token_ids).toHaveLength(4);
      // <s> [INST] Hello [/INST]: the rendered chat, tokenized as Llama 2 does.
      expect(reply.usage.prompt_tokens).toBe(new HfTokenizer(dir).applyChatTemplate!([{ role: 'user', content: 'Hello' }]).length);
      expect(await stop('SIGINT')).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
