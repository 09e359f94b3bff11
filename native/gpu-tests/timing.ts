// CUDA-graph timing shared by the GPU test drivers (run.ts, gemv.ts).
import type { GpuOps, Stream } from '../index.js';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median milliseconds per call of `fn`, from CUDA-graph replays of `perGraph` calls (fn(i) for i < perGraph) on `stream`. */
// warmMs > 0: replay the graph for about that long first, so long GEMMs are timed at the clocks
// and power state they settle to (torch_ref.py does the same for torch.matmul).
export function timeGraphOn(g: GpuOps, stream: Stream, fn: (i: number) => void, perGraph: number, reps = 15, warmMs = 0): number {
  fn(0);
  g.sync(stream);
  const graph = g.capture(stream, () => {
    for (let i = 0; i < perGraph; i++) fn(i);
  });
  g.launchGraph(graph, stream);
  g.sync(stream);
  const e0 = g.createEvent();
  const e1 = g.createEvent();
  let warmed = 0;
  for (let w = 0; w < 1000 && warmed < warmMs; w++) {
    g.record(e0, stream);
    g.launchGraph(graph, stream);
    g.record(e1, stream);
    warmed += g.elapsedMs(e0, e1);
  }
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    g.record(e0, stream);
    g.launchGraph(graph, stream);
    g.record(e1, stream);
    times.push(g.elapsedMs(e0, e1) / perGraph);
  }
  g.destroyGraph(graph);
  g.destroyEvent(e0);
  g.destroyEvent(e1);
  return median(times);
}
