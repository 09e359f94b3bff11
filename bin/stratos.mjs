#!/usr/bin/env node
// Entry point for `npx stratos`: registers tsx's TypeScript loader, then runs the CLI.
// Device-machine runs use the esbuild bundle instead (dist/stratos.mjs; `npm run bundle`).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../experiments/cli.ts');
await main(process.argv.slice(2));
