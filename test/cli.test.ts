import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function stratos(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [resolve(root, 'bin/stratos.mjs'), ...args], { cwd: root, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('stratos CLI', () => {
  it('--help lists every subcommand of the contract', () => {
    const r = stratos('--help');
    expect(r.status).toBe(0);
    for (const command of ['simulate', 'sweep', 'capacity', 'report', 'calibrate', 'engine', 'serve', 'validate']) {
      expect(r.stdout).toContain(`stratos ${command}`);
    }
  });

  it('a command that a later issue builds says so plainly in --help and when run', () => {
    const help = stratos('serve', '--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/not built yet/i);
    const run = stratos('serve');
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/not built yet/);
  });

  it('an unknown command or flag fails with a message, not silently', () => {
    const r = stratos('simulat');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/simulate/);
    const flag = stratos('simulate', '--bogus-flag', '1');
    expect(flag.status).not.toBe(0);
    expect(flag.stderr).toMatch(/bogus-flag/i);
  });
});
