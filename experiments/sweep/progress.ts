/** A one-line progress bar with ETA on stderr (wall clock; experiments only, never sim/). */
export function progressBar(total: number, skipped: number, stream: NodeJS.WriteStream = process.stderr): { tick: () => void; done: () => void } {
  const t0 = performance.now();
  let finished = 0;
  const todo = total - skipped;
  const draw = (): void => {
    const elapsedS = (performance.now() - t0) / 1000;
    const etaS = finished > 0 ? (elapsedS / finished) * (todo - finished) : NaN;
    const width = 30;
    const fill = todo > 0 ? Math.round((finished / todo) * width) : width;
    const eta = Number.isFinite(etaS) ? `ETA ${fmtS(etaS)}` : 'ETA --';
    const resumed = skipped > 0 ? ` (${skipped} already done)` : '';
    stream.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${finished + skipped}/${total}${resumed} ${fmtS(elapsedS)} elapsed, ${eta}  `);
  };
  draw();
  return {
    tick: () => {
      finished++;
      draw();
    },
    done: () => stream.write('\n'),
  };
}

function fmtS(s: number): string {
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
