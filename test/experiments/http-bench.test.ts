// engine bench --backend http against a stand-in server that streams as vLLM does: one text event
// per token and no token_ids, a finish_reason event, then a usage chunk with no choices.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHttpBench } from '../../experiments/commands/http-bench.js';
import { parseRequestsCsv } from '../../experiments/validate/requests.js';
import { parseSimConfig } from '../../sim/config.js';

let server: Server;
let url: string;
/** max_tokens of every request the stand-in served, by its prompt's first token id. */
const asked: number[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const r = JSON.parse(body) as { model: string; prompt: number[]; max_tokens: number; stream: boolean };
      if (r.model === 'refuse-me') {
        res.writeHead(429, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: { message: 'rate limited' } }));
        return;
      }
      asked.push(r.max_tokens);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => `data: ${JSON.stringify({ id: 'cmpl-x', object: 'text_completion', choices, ...extra })}\n\n`;
      let k = 0;
      const tick = () => {
        if (r.model === 'break-me' && k === 2) {
          res.destroy();
          return;
        }
        if (k < r.max_tokens) {
          // Two events in one write now and then: the client must split them.
          const n = k % 3 === 0 && k + 1 < r.max_tokens ? 2 : 1;
          let out = '';
          for (let i = 0; i < n; i++) out += chunk([{ index: 0, text: 'tok', logprobs: null, finish_reason: null }]);
          res.write(out);
          k += n;
          setTimeout(tick, 1);
          return;
        }
        res.end(chunk([{ index: 0, text: '', logprobs: null, finish_reason: 'length' }]) + chunk([], { usage: { completion_tokens: k } }) + 'data: [DONE]\n\n');
      };
      tick();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

const workload = parseSimConfig({ seed: 5, workload: { rate: 50, durationS: 0.3, inputTokens: 'uniform:4:32', outputTokens: 'uniform:2:9' } }, 'test');

describe('engine bench --backend http', () => {
  it('counts one token per text event of a stream without token_ids, and every request completes with its length', async () => {
    asked.length = 0;
    const { summary, requestsCsv } = await runHttpBench(workload, { url, servedModel: 'stand-in', vocabSize: 32000 });
    const s = summary as any;
    expect(s.requests).toBeGreaterThan(5);
    expect(s.completed).toBe(s.requests);
    const table = parseRequestsCsv(requestsCsv, 'bench');
    const done = table.ids.map((_, i) => table.outputTokens[i]);
    expect(done.reduce((a, x) => a + x, 0)).toBe(asked.reduce((a, x) => a + x, 0));
    expect(s.itl_ms.mean).toBeGreaterThan(0);
  });

  it('a refusal is rejected with the status and message; a stream cut short is failed, not lost', async () => {
    const refused = (await runHttpBench(workload, { url, servedModel: 'refuse-me', vocabSize: 32000 })).summary as any;
    expect(refused.rejected).toBe(refused.requests);
    expect(Object.keys(refused.not_completed_reasons)).toEqual(['rejected:http_429: rate limited']);
    const broken = (await runHttpBench(workload, { url, servedModel: 'break-me', vocabSize: 32000 })).summary as any;
    expect(broken.failed).toBe(broken.requests);
    expect(broken.completed).toBe(0);
    expect(Object.keys(broken.not_completed_reasons)[0]).toMatch(/^failed:/);
  });
});
