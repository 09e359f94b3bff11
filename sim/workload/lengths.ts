import type { Rng } from '../kernel/rng.js';
import { normal } from './distributions.js';

/** A token-length law. Values are integers >= 1; `max` (if set) caps them. */
export type LengthLaw =
  | { readonly law: 'constant'; readonly value: number }
  | { readonly law: 'uniform'; readonly min: number; readonly max: number }
  | { readonly law: 'normal'; readonly mean: number; readonly sd: number; readonly max?: number }
  | { readonly law: 'lognormal'; readonly median: number; readonly sigma: number; readonly max?: number };

export function sampleLength(law: LengthLaw, rng: Rng): number {
  let value: number;
  switch (law.law) {
    case 'constant':
      return law.value;
    case 'uniform':
      // Inclusive on both ends, like the notebook's 100–500.
      return law.min + Math.floor(rng() * (law.max - law.min + 1));
    case 'normal':
      value = law.mean + law.sd * normal(rng);
      break;
    case 'lognormal':
      value = law.median * Math.exp(law.sigma * normal(rng));
      break;
  }
  const rounded = Math.max(1, Math.round(value));
  return law.max !== undefined ? Math.min(rounded, law.max) : rounded;
}

/**
 * Parses the CLI form: `constant:N`, `uniform:MIN:MAX`, `normal:MEAN:SD[:MAX]`,
 * `lognormal:MEDIAN:SIGMA[:MAX]`. `key` names the flag in errors.
 */
export function parseLengthLaw(text: string, key: string): LengthLaw {
  const [law, ...rest] = text.split(':');
  const nums = rest.map(Number);
  const bad = (allowed: string): never => {
    throw new Error(`${key} = ${text}: ${allowed}`);
  };
  if (nums.some((n) => !Number.isFinite(n))) bad('every field after the law must be a number');
  const posInt = (n: number): boolean => Number.isSafeInteger(n) && n >= 1;
  switch (law) {
    case 'constant':
      if (nums.length !== 1 || !posInt(nums[0])) bad('allowed: constant:N with N a positive integer');
      return { law, value: nums[0] };
    case 'uniform':
      if (nums.length !== 2 || !posInt(nums[0]) || !posInt(nums[1]) || nums[0] > nums[1]) bad('allowed: uniform:MIN:MAX with 1 <= MIN <= MAX integers');
      return { law, min: nums[0], max: nums[1] };
    case 'normal':
      if (nums.length < 2 || nums.length > 3 || nums[0] <= 0 || nums[1] < 0) bad('allowed: normal:MEAN:SD[:MAX] with MEAN > 0, SD >= 0');
      return nums.length === 3 ? { law, mean: nums[0], sd: nums[1], max: nums[2] } : { law, mean: nums[0], sd: nums[1] };
    case 'lognormal':
      if (nums.length < 2 || nums.length > 3 || nums[0] <= 0 || nums[1] < 0) bad('allowed: lognormal:MEDIAN:SIGMA[:MAX] with MEDIAN > 0, SIGMA >= 0');
      return nums.length === 3 ? { law, median: nums[0], sigma: nums[1], max: nums[2] } : { law, median: nums[0], sigma: nums[1] };
    default:
      return bad('allowed laws: constant, uniform, normal, lognormal');
  }
}
