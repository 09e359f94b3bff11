import { join } from 'node:path';
import { writeAtomic } from '../sweep/store.js';
import { planCharts } from './charts.js';
import { loadReportData } from './data.js';
import { reportHtml } from './html.js';

/** Writes DIR/report.html (or `outFile`) for a sweep directory; returns the path and chart count. */
export function writeReport(dir: string, outFile = join(dir, 'report.html')): { file: string; charts: number; notes: string[] } {
  const data = loadReportData(dir);
  const plan = planCharts(data);
  writeAtomic(outFile, reportHtml(data, plan));
  return { file: outFile, charts: plan.charts.length, notes: plan.notes };
}
