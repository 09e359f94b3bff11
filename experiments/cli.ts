import yargs, { type CommandModule } from 'yargs';
import { calibrateCommand } from './commands/calibrate.js';
import { capacityCommand } from './commands/capacity.js';
import { engineCommand } from './commands/engine.js';
import { reportCommand } from './commands/report.js';
import { serveCommand } from './commands/serve.js';
import { simulateCommand } from './commands/simulate.js';
import { startCommand } from './commands/start.js';
import { sweepCommand } from './commands/sweep.js';
import { validateCommand } from './commands/validate.js';
import { isUserError } from './user-error.js';

/** The `stratos` command line. Each subcommand lives in experiments/commands/ as a yargs module. */
export async function main(argv: string[]): Promise<void> {
  await yargs(argv)
    .scriptName('stratos')
    .usage(
      'stratos: capacity, latency and cost answers for LLM inference fleets.\n\n' +
        'Usage: stratos <command> [options]\n' +
        'Every command has --help with its flags and examples.',
    )
    .command(startCommand)
    .command(simulateCommand)
    .command(sweepCommand)
    .command(capacityCommand)
    .command(reportCommand)
    .command(calibrateCommand)
    .command(engineCommand)
    .command(serveCommand as unknown as CommandModule)
    .command(validateCommand as unknown as CommandModule)
    .demandCommand(1, 'name a command (see the list above)')
    .fail((message, error, y) => {
      // Usage mistakes get the help text; errors from running a command get their message only
      // (a bug, with no user-facing code, keeps its stack).
      if (error === undefined || error === null) {
        y.showHelp();
        process.stderr.write(`\n${message}\n`);
      } else if (isUserError(error)) {
        process.stderr.write(`stratos: ${error.message}\n`);
      } else {
        process.stderr.write(`stratos: ${error.stack ?? error.message}\n`);
      }
      process.exit(2);
    })
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .parseAsync();
}
