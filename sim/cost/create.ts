// The one place a simulation gets its cost model: the GPU's calibration profile (measured for
// the H200, derived for the A100) or, when asked, the uncalibrated roofline.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GpuName, ReplicaShape } from '../catalog.js';
import type { CostModel } from './cost-model.js';
import { DEFAULT_PROFILE_OPTIONS, ProfileCostModel, type ProfileCostOptions } from './profile-model.js';
import { loadProfile, ProfileError, type Profile } from './profile.js';
import { RooflineCostModel, type RooflineParams } from './roofline.js';

export const PROFILE_FILES: Readonly<Record<GpuName, string>> = {
  h200: 'h200.json',
  'a100-80gb': 'a100-80gb.json',
};

export interface CreateCostModelOptions {
  /** 'profile' (default): the GPU's calibration profile; 'roofline': the analytic fallback. */
  readonly costModel?: 'profile' | 'roofline';
  /** Roofline parameters (used by 'roofline'; hostOverheadUs, sampling, cpuSamplingUsPerToken, allReduceLatencyUs and loraRank also feed the profile model). */
  readonly roofline: RooflineParams;
  readonly pageSizeTokens: number;
  /** GPU sampling method priced by the profile (default top-p). */
  readonly samplingMethod?: ProfileCostOptions['samplingMethod'];
  /**
   * Host sampling per token for sampling = 'cpu': given, it overrides the profile's measured host
   * sampler (pass it only when the user set it; roofline.cpuSamplingUsPerToken is not used by the profile model).
   */
  readonly cpuSamplingUsPerToken?: number;
  /** A profile file to use instead of calibration/profiles/<gpu>.json. */
  readonly profilePath?: string;
  /** A profile already loaded (tests, sweeps that share one). */
  readonly profile?: Profile;
}

const moduleDir = dirname(fileURLToPath(import.meta.url));

/** Where calibration/profiles/<gpu>.json is: beside the sources, or under the working directory. */
export function defaultProfilePath(gpu: GpuName): string {
  const file = PROFILE_FILES[gpu];
  const candidates = [join(moduleDir, '..', '..', 'calibration', 'profiles', file), resolve(process.cwd(), 'calibration', 'profiles', file)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new ProfileError(`no calibration profile for ${gpu}: looked for ${candidates.join(' and ')}; allowed: --cost-model roofline, or a profile file`);
  return found;
}

export function createCostModel(shape: ReplicaShape, options: CreateCostModelOptions): CostModel {
  if ((options.costModel ?? 'profile') === 'roofline') return new RooflineCostModel(shape, options.roofline);
  const profile = options.profile ?? loadProfile(options.profilePath ?? defaultProfilePath(shape.gpu.name));
  if (profile.gpu !== shape.gpu.name) {
    throw new ProfileError(`profile ${profile.name} is for ${profile.gpu}, the replica runs on ${shape.gpu.name}`);
  }
  const r = options.roofline;
  const profileOptions: ProfileCostOptions = {
    ...DEFAULT_PROFILE_OPTIONS,
    sampling: r.sampling,
    samplingMethod: options.samplingMethod ?? DEFAULT_PROFILE_OPTIONS.samplingMethod,
    hostOverheadUs: r.hostOverheadUs,
    allReduceLatencyUs: r.allReduceLatencyUs,
    loraRank: r.loraRank,
    pageSizeTokens: options.pageSizeTokens,
    ...(options.cpuSamplingUsPerToken !== undefined ? { cpuSamplingUsPerToken: options.cpuSamplingUsPerToken } : {}),
  };
  return new ProfileCostModel(shape, profile, profileOptions);
}
