import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCsv } from '../../experiments/todo/columns.js';
import { todoReadme } from '../../experiments/todo/readme.js';
import { runTodo, TODO_CONFIG_DIR, todoConfigFile } from '../../experiments/todo/run.js';
import { loadSweepSpec } from '../../experiments/sweep/spec.js';
import { tempDir } from './fixtures.js';

// The notebook's comparisons (TODO 1–10) as sweep configs under experiments/todo/.

describe('experiments/todo', () => {
  it('has one config per TODO 1–10 and every one parses, every point included', () => {
    const files = readdirSync(TODO_CONFIG_DIR).filter((f) => f.endsWith('.yaml')).sort();
    expect(files.map((f) => f.slice(0, 6))).toEqual(['todo01', 'todo02', 'todo03', 'todo04', 'todo05', 'todo06', 'todo07', 'todo08', 'todo09', 'todo10']);
    for (let n = 1; n <= 10; n++) {
      const spec = loadSweepSpec(todoConfigFile(n));
      expect(spec.expanded.length, `TODO ${n}`).toBeGreaterThan(1);
      // The calibrated profile prices every TODO (the default cost model).
      for (const p of spec.expanded) expect(p.config.cost.model, `TODO ${n} point ${p.index}`).toBe('profile');
    }
    const naive = loadSweepSpec(todoConfigFile(1)).expanded;
    expect(naive.every((p) => p.config.kv.cache === 'none')).toBe(true);
    expect(loadSweepSpec(todoConfigFile(2)).expanded.every((p) => p.config.kv.cache === 'keep')).toBe(true);
  });

  it('runs TODO 4 end to end in a temp dir: results.csv, todo.csv, report.html, and the README reads its figures from todo.csv', async () => {
    const results = tempDir('todo');
    const dir = await runTodo(4, { resultsDir: results });
    for (const f of ['results.csv', 'todo.csv', 'report.html', 'sweep.json']) expect(existsSync(join(dir, f)), f).toBe(true);
    const rows = readCsv(readFileSync(join(dir, 'todo.csv'), 'utf8'));
    // The A100 burst, then its H200 twins with the engine's run5 workload and flags.
    expect(rows.map((r) => `${r.gpu} ${r.kv_allocator}`)).toEqual(['a100-80gb contiguous', 'a100-80gb paged', 'h200 contiguous', 'h200 paged']);
    const [contiguous, paged] = rows;
    expect(Number(contiguous.completed)).toBe(Number(contiguous.requests));
    expect(Number(paged.completed)).toBe(Number(paged.requests));
    // Contiguous reserves 4,096 tokens per request: most of what it reserves holds no token, and fewer requests run at once.
    expect(Number(contiguous.kv_waste_mean)).toBeGreaterThan(0.5);
    expect(Number(paged.kv_waste_mean)).toBeLessThan(0.05);
    expect(Number(paged.batch_size_mean_busy)).toBeGreaterThan(Number(contiguous.batch_size_mean_busy));
    for (const r of rows.slice(2)) expect(Number(r.completed), r.point).toBe(Number(r.requests));
    expect(Number(rows[2].kv_waste_mean)).toBeGreaterThan(Number(rows[3].kv_waste_mean));
    const readme = todoReadme(results, process.cwd());
    expect(readme).toContain(`| \`kv.allocator=paged\` | ${paged.requests} |`);
    // The H200 twins sit beside the engine's summary.json, read from its file.
    const engine = JSON.parse(readFileSync(join(process.cwd(), 'engine/results/bench-gpu/run5/todo4-paged/summary.json'), 'utf8')) as { requests: number };
    expect(readme).toContain(`| simulator, \`${rows[3].point}\` | ${rows[3].requests} |`);
    expect(readme).toContain(`| engine, run5: paged | ${engine.requests} |`);
    expect(readme).not.toContain('being added');
    expect(readme).toContain('TODO 8: throughput under Poisson load');
    // A second run resumes: nothing is run again and the CSV is byte-identical.
    const before = readFileSync(join(dir, 'todo.csv'), 'utf8');
    const log: string[] = [];
    await runTodo(4, { resultsDir: results, log: (l) => log.push(l) });
    expect(log[0]).toMatch(/0 points run, 4 already done/);
    expect(readFileSync(join(dir, 'todo.csv'), 'utf8')).toBe(before);
    // And it is what is committed (the results are reproducible from the config).
    const committed = join(process.cwd(), 'experiments', 'results', 'todo', 'todo04', 'todo.csv');
    if (existsSync(committed)) expect(before).toBe(readFileSync(committed, 'utf8'));
  }, 60_000);
});
