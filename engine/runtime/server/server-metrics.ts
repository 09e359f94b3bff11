// GET /metrics: the server's counters, gauges and latency histograms in the Prometheus text
// exposition format (version 0.0.4), the names prefixed stratos_.

/** Latency bucket bounds in seconds (cumulative `le` buckets, +Inf added). */
const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60];

class Histogram {
  private readonly counts = new Array<number>(LATENCY_BUCKETS_S.length + 1).fill(0);
  private sum = 0;
  private count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_S.length && seconds > LATENCY_BUCKETS_S[i]) i++;
    this.counts[i]++;
    this.sum += seconds;
    this.count++;
  }

  lines(name: string): string[] {
    const out: string[] = [];
    let cumulative = 0;
    for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
      cumulative += this.counts[i];
      out.push(`${name}_bucket{le="${LATENCY_BUCKETS_S[i]}"} ${cumulative}`);
    }
    out.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return out;
  }
}

export interface EngineGauges {
  readonly running: number;
  readonly waiting: number;
  readonly kvBlocksUsed: number;
  readonly kvBlocksTotal: number;
}

export class ServerMetrics {
  /** Requests ended, by status (completed, aborted, rejected) and reason. */
  private readonly ended = new Map<string, number>();
  promptTokens = 0;
  generationTokens = 0;
  steps = 0;
  stepSeconds = 0;
  hostSeconds = 0;
  readonly ttft = new Histogram();
  readonly itl = new Histogram();
  readonly e2e = new Histogram();

  countEnd(status: 'completed' | 'aborted' | 'rejected', reason: string): void {
    const key = `status="${status}",reason="${reason}"`;
    this.ended.set(key, (this.ended.get(key) ?? 0) + 1);
  }

  text(gauges: EngineGauges): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string, body: string[]): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...body);
    };
    metric('stratos_requests_total', 'counter', 'Requests ended, by status and reason.', [...this.ended].sort().map(([k, v]) => `stratos_requests_total{${k}} ${v}`));
    metric('stratos_requests_running', 'gauge', 'Requests in the running batch.', [`stratos_requests_running ${gauges.running}`]);
    metric('stratos_requests_waiting', 'gauge', 'Requests queued, not yet admitted to the batch.', [`stratos_requests_waiting ${gauges.waiting}`]);
    metric('stratos_kv_blocks_used', 'gauge', 'KV cache blocks in use.', [`stratos_kv_blocks_used ${gauges.kvBlocksUsed}`]);
    metric('stratos_kv_blocks_total', 'gauge', 'KV cache blocks in the pool.', [`stratos_kv_blocks_total ${gauges.kvBlocksTotal}`]);
    metric('stratos_prompt_tokens_total', 'counter', 'Prompt tokens of admitted requests.', [`stratos_prompt_tokens_total ${this.promptTokens}`]);
    metric('stratos_generation_tokens_total', 'counter', 'Tokens generated.', [`stratos_generation_tokens_total ${this.generationTokens}`]);
    metric('stratos_steps_total', 'counter', 'Engine steps run.', [`stratos_steps_total ${this.steps}`]);
    metric('stratos_step_seconds_total', 'counter', 'Wall time in engine steps.', [`stratos_step_seconds_total ${this.stepSeconds}`]);
    metric('stratos_step_host_seconds_total', 'counter', 'Step wall time not covered by device time (where the backend measures it).', [`stratos_step_host_seconds_total ${this.hostSeconds}`]);
    metric('stratos_time_to_first_token_seconds', 'histogram', 'From arrival to the first token.', this.ttft.lines('stratos_time_to_first_token_seconds'));
    metric('stratos_inter_token_latency_seconds', 'histogram', 'Between consecutive tokens of a request.', this.itl.lines('stratos_inter_token_latency_seconds'));
    metric('stratos_e2e_request_latency_seconds', 'histogram', 'From arrival to the last token.', this.e2e.lines('stratos_e2e_request_latency_seconds'));
    return lines.join('\n') + '\n';
  }
}
