import { existsSync } from 'node:fs';
import { readManifest, readPoint, hasPoint } from '../sweep/store.js';
import type { PointRecord } from '../sweep/point.js';
import { describeOverrides, sweptValue } from '../sweep/spec.js';

/** One finished point with the effective value of every swept key (override, else base, else "default"). */
export interface ReportRow {
  readonly index: number;
  readonly label: string;
  readonly values: Record<string, string | number | boolean>;
  readonly record: PointRecord;
}

export interface ReportData {
  readonly dir: string;
  readonly keys: string[];
  /** Swept keys that take more than one value among the finished points. */
  readonly varied: string[];
  readonly rows: ReportRow[];
  readonly totalPoints: number;
}

export function loadReportData(dir: string): ReportData {
  if (!existsSync(dir)) throw new Error(`${dir}: no such directory`);
  const manifest = readManifest(dir);
  const rows: ReportRow[] = [];
  for (const p of manifest.points) {
    if (!hasPoint(dir, p.id)) continue;
    const values: Record<string, string | number | boolean> = {};
    for (const k of manifest.keys) {
      const v = sweptValue(p.overrides, manifest.base, k);
      values[k] = v === undefined ? 'default' : typeof v === 'object' ? JSON.stringify(v) : (v as string | number | boolean);
    }
    rows.push({ index: p.index, label: describeOverrides(p.overrides), values, record: readPoint(dir, p.id) });
  }
  if (rows.length === 0) throw new Error(`${dir}: the sweep has no finished points yet`);
  const varied = manifest.keys.filter((k) => new Set(rows.map((r) => String(r.values[k]))).size > 1);
  return { dir, keys: manifest.keys, varied, rows, totalPoints: manifest.points.length };
}
