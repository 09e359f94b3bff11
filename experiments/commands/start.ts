import type { CommandModule } from 'yargs';

/** `npm start`: the main job. Until the fleet scenario lands it demonstrates the policy core. */
export const startCommand: CommandModule = {
  command: 'start',
  describe: 'The main job (what `npm start` runs)',
  handler: async () => {
    const { runStart } = await import('../start.js');
    await runStart();
  },
};
