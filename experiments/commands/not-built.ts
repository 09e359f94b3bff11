import type { CommandModule } from 'yargs';

/** A subcommand that a later issue fills in: `--help` works now and says so plainly. */
export function notBuiltYet(command: string, describe: string, issue: string): CommandModule {
  return {
    command,
    describe: `${describe} [not built yet]`,
    builder: (yargs) =>
      yargs.epilogue(`Not built yet: this command arrives with the issue "${issue}". Running it exits with status 2.`),
    handler: () => {
      process.stderr.write(`stratos ${command.split(' ')[0]}: not built yet (arrives with "${issue}").\n`);
      process.exitCode = 2;
    },
  };
}
