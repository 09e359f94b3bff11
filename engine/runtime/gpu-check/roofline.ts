// The batch-1 decode roofline, measured in the same run as the figures it is compared with:
// device-to-device copy bandwidth (read + write) over 2 GiB, and the time to read every weight once.
import { gpu } from '../../../native/index.js';
import { numParams, type ModelConfig } from '../model-config.js';

export interface Roofline {
  readonly copy_bandwidth_tb_per_s: number;
  readonly llama7b_weight_bytes: number;
  readonly llama7b_roofline_batch1_ms: number;
}

export function measureRoofline(config: ModelConfig): Roofline {
  const g = gpu();
  const bytes = 2 ** 31;
  const a = g.alloc(bytes);
  const b = g.alloc(bytes);
  const e0 = g.createEvent();
  const e1 = g.createEvent();
  g.copy(b, a, bytes); // warm-up
  g.record(e0);
  for (let i = 0; i < 10; i++) g.copy(b, a, bytes);
  g.record(e1);
  const ms = g.elapsedMs(e0, e1) / 10;
  const copyBytesPerS = (2 * bytes) / (ms / 1000);
  const weightBytes = numParams(config) * 2; // bf16
  a.free();
  b.free();
  g.destroyEvent(e0);
  g.destroyEvent(e1);
  return { copy_bandwidth_tb_per_s: copyBytesPerS / 1e12, llama7b_weight_bytes: weightBytes, llama7b_roofline_batch1_ms: (weightBytes / copyBytesPerS) * 1000 };
}
