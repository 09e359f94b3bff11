// Headless Chromium for the HTML reports' tests: a page must draw marks in every chart with no
// console errors (the sweep report and the validation report share the page and its drawing script).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

export const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];

export function chromium(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(CHROMIUM, [...FLAGS, `--user-data-dir=${mkdtempSync(join(tmpdir(), 'stratos-chromium-'))}`, ...args], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

export const chartIdsOf = (file: string): string[] => [...readFileSync(file, 'utf8').matchAll(/"kind":"(?:line|bar)","id":"([^"]+)"/g)].map((m) => m[1]);

/** Opens a report in headless Chromium and checks that every chart drew marks, with no console errors. */
export function expectDrawn(file: string, ids: string[]): void {
  const dump = chromium(['--virtual-time-budget=10000', '--enable-logging=stderr', '--v=0', '--dump-dom', `file://${file}`]);
  expect(dump.status, dump.stderr.slice(-2000)).toBe(0);
  const dom = dump.stdout;
  expect(dom).not.toMatch(/data-errors="/);
  expect(dump.stderr).not.toMatch(/Uncaught|CONSOLE\(\d+\)\].*error/i);
  expect(dom).toContain(`data-rendered="${ids.length}"`);
  const svgs = dom.split('<svg class="chart"').slice(1).map((s) => s.slice(0, s.indexOf('</svg>')));
  expect(svgs.length).toBe(ids.length);
  for (const [i, svg] of svgs.entries()) {
    const marks = svg.match(/<(path|circle|rect)[^>]*class="mark"/g) ?? [];
    expect(marks.length, `${file}: chart ${ids[i]} has no marks`).toBeGreaterThan(0);
  }
}

