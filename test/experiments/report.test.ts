import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeReport } from '../../experiments/report/write.js';
import { runSweep } from '../../experiments/sweep/run.js';
import { parseSweepSpec } from '../../experiments/sweep/spec.js';
import { chartIdsOf, CHROMIUM, chromium, expectDrawn } from '../chromium.js';
import { FLEET_SWEEP, tempDir } from './fixtures.js';

/** A tiny sweep that varies everything the report draws today: load, fleet size, policy, page size, LoRA eviction. */
const SPEC = {
  base: { model: 'llama2-7b', gpu: 'h200', workload: { durationS: 3, outputTokens: 'uniform:10:40' } },
  grid: { policy: ['static', 'continuous'], 'workload.rate': [4, 12], replicas: [1, 2] },
  points: [{ 'kv.pageSizeTokens': 32 }, { 'kv.pageSizeTokens': 64 }, { 'lora.eviction': 'lfu' }],
};

let report = '';
let chartIds: string[] = [];
/** A fleet sweep's report: its points are priced, so it draws "$/M tokens vs SLA" too. */
let fleetReport = '';
let fleetChartIds: string[] = [];

describe('stratos report', () => {
  beforeAll(async () => {
    const dir = tempDir('report');
    await runSweep(parseSweepSpec(SPEC), { outDir: dir });
    report = writeReport(dir).file;
    chartIds = chartIdsOf(report);
    const fleetDir = tempDir('report-fleet');
    await runSweep(parseSweepSpec(FLEET_SWEEP), { outDir: fleetDir });
    fleetReport = writeReport(fleetDir).file;
    fleetChartIds = chartIdsOf(fleetReport);
  });

  it('is one self-contained file: d3 and data inline, no network references', () => {
    const html = readFileSync(report, 'utf8');
    // No element loads anything: every script is inline (d3 included), no stylesheet or image links.
    expect(/<script[^>]+src=|<link[^>]*>|<img[^>]+src=|@import/i.test(html), 'the report references an external resource').toBe(false);
    expect(html.length).toBeGreaterThan(250_000); // d3.min.js is inlined
    expect(chartIds).toEqual(expect.arrayContaining(['cdf-ttft_ms', 'ttft-vs-load', 'itl-vs-load', 'throughput-vs-load', 'kv-vs-load', 'sla-vs-replicas', 'cmp-policy-throughput', 'cmp-kv-pageSizeTokens-ttft', 'cmp-lora-eviction-throughput']));
    expect(html).toContain('M tokens vs SLA&quot; chart is skipped');
  });

  it('a fleet sweep with pricing gets the "$/M tokens vs SLA" chart', () => {
    expect(fleetChartIds).toEqual(expect.arrayContaining(['cost-vs-sla', 'throughput-vs-load']));
    expect(readFileSync(fleetReport, 'utf8')).not.toContain('chart is skipped');
  });

  it.skipIf(!existsSync(CHROMIUM))('draws marks in every chart in headless Chromium, with no console errors, and saves a screenshot', () => {
    expectDrawn(report, chartIds);
    expectDrawn(fleetReport, fleetChartIds);
    const png = join(mkdtempSync(join(tmpdir(), 'stratos-report-shot-')), 'report.png');
    const shot = chromium(['--virtual-time-budget=10000', '--hide-scrollbars', '--window-size=1200,4000', `--screenshot=${png}`, `file://${report}`]);
    expect(shot.status, shot.stderr.slice(-2000)).toBe(0);
    expect(statSync(png).size).toBeGreaterThan(10_000);
    console.log(`report screenshot: ${png}`);
  });

  if (!existsSync(CHROMIUM)) it.skip(`Chromium test skipped: ${CHROMIUM} is absent (apt-get install -y chromium)`, () => {});
});
