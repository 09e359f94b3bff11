import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { kvBytesPerToken, MODELS } from '../../sim/catalog.js';
import { RngStreams } from '../../sim/kernel/rng.js';
import { loadAzureTrace, parseAzureTimestampUs } from '../../sim/workload/azure.js';
import { loadMooncakeTrace } from '../../sim/workload/mooncake.js';
import { replayTrace } from '../../sim/workload/trace.js';
import { parseLengthLaw, sampleLength } from '../../sim/workload/lengths.js';
import { isUserError } from '../../experiments/user-error.js';
import { tracesDir } from './helpers.js';

const tmp = (name: string, data: string | Buffer): string => {
  const file = join(mkdtempSync(join(tmpdir(), 'stratos-trace-')), name);
  writeFileSync(file, data);
  return file;
};

describe('catalog', () => {
  it('13B KV is 800 KiB per token', () => {
    expect(kvBytesPerToken(MODELS['llama2-13b'], 'bf16')).toBe(800 * 1024);
  });
});

describe('azure loader', () => {
  it('parses 7-digit timestamps exactly', () => {
    expect(parseAzureTimestampUs('2023-11-16 18:17:03.9799600', 'f', 2) - parseAzureTimestampUs('2023-11-16 18:17:03.0000000', 'f', 2)).toBe(979960);
    expect(parseAzureTimestampUs('1970-01-02 00:00:00.0000000', 'f', 2)).toBe(86_400_000_000);
  });
  it('reads CRLF without a trailing newline and reports file:line for bad rows', () => {
    const good = tmp('a.csv', 'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:15:46.6805900,374,44\r\n2023-11-16 18:15:50.9951690,396,109');
    expect(loadAzureTrace(good).map((r) => r.offsetUs)).toEqual([0, 4314579]);
    const bad = tmp('b.csv', 'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:15:46.6805900,374,44\r\n2023-11-16 18:15:50.9951690,x,109\r\n');
    expect(() => loadAzureTrace(bad)).toThrow(/b\.csv:3: ContextTokens = "x"/);
  });
  it('names a trace file it cannot read, as a user error', () => {
    const missing = join(dirname(tmp('c.csv', '')), 'none.csv');
    expect(() => loadAzureTrace(missing)).toThrow(new RegExp(`trace file ${missing}: no such file`));
    expect(() => loadMooncakeTrace(dirname(missing))).toThrow(/: a folder, not a file/);
    try {
      loadAzureTrace(missing);
    } catch (e) {
      expect(isUserError(e)).toBe(true);
    }
  });
  it('slices by time and scales the rate', () => {
    const rows = [0, 1_000_000, 2_000_000, 3_000_000].map((offsetUs) => ({ offsetUs, inputTokens: 10, outputTokens: 5 }));
    const out = replayTrace(rows, { startS: 1, endS: 3, rateScale: 2 }, new RngStreams(1));
    expect(out.map((r) => r.arrivalUs)).toEqual([0, 500_000]);
  });
  it('the real conv trace loads every row', () => {
    const dir = tracesDir();
    if (dir === null) {
      console.warn('skipped: ../shared/traces not found beside the repo');
      return;
    }
    expect(loadAzureTrace(join(dir, 'azure-llm-2023/AzureLLMInferenceTrace_conv.csv')).length).toBe(19366);
  });
});

describe('mooncake loader', () => {
  it('shares keys for equal leading hash ids and reports file:line', () => {
    const text = ['{"timestamp": 0, "input_length": 1100, "output_length": 5, "hash_ids": [7, 8, 9]}', '{"timestamp": 3000, "input_length": 1100, "output_length": 5, "hash_ids": [7, 8, 10]}'].join('\n');
    const rows = loadMooncakeTrace(tmp('m.jsonl.gz', gzipSync(text)));
    expect(rows[1].offsetUs).toBe(3_000_000);
    const [a, b] = rows.map((r) => r.content!);
    expect(a.rangeKey(512, 528)).toBe(b.rangeKey(512, 528));
    expect(a.rangeKey(1024, 1040)).not.toBe(b.rangeKey(1024, 1040));
    expect(() => loadMooncakeTrace(tmp('bad.jsonl', '{"timestamp": 0, "input_length": -1, "output_length": 5, "hash_ids": []}\n'))).toThrow(/bad\.jsonl:1: input_length = -1/);
  });
});

describe('length laws', () => {
  it('parse and sample within bounds', () => {
    const rng = new RngStreams(1).fork('t');
    const law = parseLengthLaw('uniform:100:500', 'k');
    for (let i = 0; i < 1000; i++) {
      const v = sampleLength(law, rng);
      expect(v).toBeGreaterThanOrEqual(100);
      expect(v).toBeLessThanOrEqual(500);
    }
    const capped = parseLengthLaw('lognormal:847:1:4096', 'k');
    for (let i = 0; i < 1000; i++) expect(sampleLength(capped, rng)).toBeLessThanOrEqual(4096);
  });
});
