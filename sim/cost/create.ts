// The one place a simulation gets its cost model: the GPU's calibration profile (measured for
// the H200, derived for the A100 and the H100) or, when asked, the uncalibrated roofline.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GpuName, ReplicaShape } from '../catalog.js';
import type { CostModel } from './cost-model.js';
import { DEFAULT_PROFILE_OPTIONS, ProfileCostModel, type ProfileCostOptions, type RowBuckets } from './profile-model.js';
import { withKvCacheMode, type KvCacheMode } from './no-kv-cache.js';
import { CompiledProfile, loadProfile, ProfileError, type Profile } from './profile.js';
import { RooflineCostModel, type RooflineParams } from './roofline.js';

export const PROFILE_FILES: Readonly<Record<GpuName, string>> = {
  h200: 'h200.json',
  h100: 'h100.json',
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
  /** `none`: no KV cache, every decode step recomputes its whole context (no-kv-cache.ts); default `keep`. */
  readonly kvCache?: KvCacheMode;
  /** Profile model: the engine's row padding and per-forward overhead (see ProfileCostOptions). */
  readonly rowBuckets?: RowBuckets;
  readonly forwardOverheadUs?: number;
  readonly sampledRowOverheadUs?: number;
  /** Profile model: price the GPU's power management when the profile measured it (default true). */
  readonly power?: boolean;
  readonly qkvFused?: boolean;
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

/** A profile file as read: frozen (every cost model built from it shares it), compiled on first use. */
interface LoadedProfile {
  readonly mtimeMs: number;
  readonly size: number;
  readonly profile: Profile;
  compiled: CompiledProfile | null;
}

/**
 * Profile files read so far, by resolved path: a fleet builds a cost model per pool and a sweep one
 * per point, and reading, checking and compiling ~170 KB of JSON each time was most of that. A file
 * changed since (modification time or size) is read again.
 */
const loadedProfiles = new Map<string, LoadedProfile>();

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function loadProfileOnce(path: string): LoadedProfile {
  const key = resolve(path);
  const stat = statSync(key, { throwIfNoEntry: false });
  const hit = loadedProfiles.get(key);
  if (stat !== undefined && hit !== undefined && hit.mtimeMs === stat.mtimeMs && hit.size === stat.size) return hit;
  const loaded: LoadedProfile = { mtimeMs: stat?.mtimeMs ?? NaN, size: stat?.size ?? NaN, profile: deepFreeze(loadProfile(path)), compiled: null };
  if (stat !== undefined) loadedProfiles.set(key, loaded);
  return loaded;
}

export function createCostModel(shape: ReplicaShape, options: CreateCostModelOptions): CostModel {
  return withKvCacheMode(createCachedCostModel(shape, options), options.kvCache ?? 'keep');
}

/** The cost model of an engine that keeps a KV cache (the default). */
function createCachedCostModel(shape: ReplicaShape, options: CreateCostModelOptions): CostModel {
  if ((options.costModel ?? 'profile') === 'roofline') return new RooflineCostModel(shape, options.roofline);
  const loaded = options.profile === undefined ? loadProfileOnce(options.profilePath ?? defaultProfilePath(shape.gpu.name)) : null;
  const profile = loaded?.profile ?? (options.profile as Profile);
  if (profile.gpu !== shape.gpu.name) {
    throw new ProfileError(`profile ${profile.name} is for ${profile.gpu}, the replica runs on ${shape.gpu.name}`);
  }
  const r = options.roofline;
  const profileOptions: ProfileCostOptions = {
    ...DEFAULT_PROFILE_OPTIONS,
    sampling: r.sampling,
    samplingMethod: options.samplingMethod ?? DEFAULT_PROFILE_OPTIONS.samplingMethod,
    hostOverheadUs: r.hostOverheadUs,
    ...(r.hostOverheadPerSeqUs !== undefined ? { hostOverheadPerSeqUs: r.hostOverheadPerSeqUs } : {}),
    allReduceLatencyUs: r.allReduceLatencyUs,
    loraRank: r.loraRank,
    pageSizeTokens: options.pageSizeTokens,
    ...(options.cpuSamplingUsPerToken !== undefined ? { cpuSamplingUsPerToken: options.cpuSamplingUsPerToken } : {}),
    ...(options.rowBuckets !== undefined ? { rowBuckets: options.rowBuckets } : {}),
    ...(options.forwardOverheadUs !== undefined ? { forwardOverheadUs: options.forwardOverheadUs } : {}),
    ...(options.sampledRowOverheadUs !== undefined ? { sampledRowOverheadUs: options.sampledRowOverheadUs } : {}),
    ...(options.qkvFused !== undefined ? { qkvFused: options.qkvFused } : {}),
    ...(options.power !== undefined ? { power: options.power } : {}),
  };
  if (loaded !== null) loaded.compiled ??= new CompiledProfile(profile);
  return new ProfileCostModel(shape, loaded?.compiled ?? profile, profileOptions);
}
