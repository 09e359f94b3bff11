// A profile for a GPU we cannot measure, derived from a measured one: the efficiency curves are
// carried over unchanged and the peaks replaced by the target's spec sheet, so every kernel keeps
// its measured fraction of the roofline. Marked derived, with the method in its provenance.
import type { GpuName } from '../catalog.js';
import { specPeaks } from './profile-fit.js';
import { ProfileError, type Profile } from './profile.js';

export const DERIVE_METHOD =
  'efficiency tables copied unchanged from the measured profile; peaks replaced by the target GPU spec sheet ' +
  '(HBM bandwidth, dense bf16 FLOP/s, PCIe); time = target roofline ÷ measured efficiency. Assumes each kernel reaches ' +
  'the same fraction of the roofline on the target; the ridge point moves (A100 312e12/2.039e12 = 153 FLOP/B vs H200 206), ' +
  'so shapes near it are the least certain; wave steps (e.g. the sampler\'s at multiples of the H200\'s 132 SMs; the A100 has 108) stay where the source GPU had them. ' +
  'Host-side tables (host sampling) are carried over as measured on the source host.';

export function deriveProfile(source: Profile, target: GpuName): Profile {
  if (source.derived) throw new ProfileError(`profile ${source.name} is itself derived; derive from a measured profile`);
  const peaks = specPeaks(target);
  return {
    ...source,
    name: `${target}-derived-from-${source.name}`,
    gpu: target,
    derived: true,
    peaks: { ...peaks, hostBytesPerS: source.peaks.hostBytesPerS },
    // Power management is the GPU's own (cap, clocks, controller): never carried over.
    power: null,
    provenance: {
      derived: true,
      derivedFrom: source.name,
      method: DERIVE_METHOD,
      targetPeaks: peaks,
      sourcePeaks: source.peaks,
      sourceProvenance: source.provenance,
    },
    fit: {
      ...source.fit,
      method: `${source.fit.method} (errors are those of the source profile on the source GPU; not validated on ${target})`,
    },
  };
}
