import type { Argv, CommandModule } from 'yargs';

interface ReportArgs {
  dir: string;
  out?: string;
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <dir>',
  describe: 'Write a self-contained HTML report with d3 charts for a sweep',
  builder: (y: Argv) =>
    y
      .positional('dir', { type: 'string', demandOption: true, describe: 'a sweep output directory (stratos sweep --out DIR)' })
      .option('out', { type: 'string', describe: 'HTML file to write (default DIR/report.html)' })
      .example('stratos report out/sweep', 'writes out/sweep/report.html')
      .epilogue('Charts follow what the sweep varied: latency CDFs always; TTFT/ITL/throughput/KV vs load when it varies workload.rate; SLA attainment vs fleet size when it varies replicas; bar comparisons for policy, page size, LoRA eviction and other categorical keys. d3 and the data are inlined: the file opens offline.') as unknown as Argv<ReportArgs>,
  handler: async (args) => {
    const { writeReport } = await import('../report/write.js');
    try {
      const r = writeReport(args.dir, args.out);
      process.stdout.write(`wrote ${r.file} (${r.charts} charts)\n${r.notes.map((n) => `note: ${n}\n`).join('')}`);
    } catch (e) {
      process.stderr.write(`stratos report: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  },
};
