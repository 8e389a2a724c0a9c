#!/usr/bin/env node
/**
 * The `dicom-server` command: one subcommand per file beside this one.
 *
 * Layer: cli.
 */

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerEcho } from './echo.js';
import { registerServe } from './serve.js';

const { version } = JSON.parse(
  readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
) as {
  version: string;
};

const program = new Command('dicom-server')
  .description('DICOM receiver and query/retrieve node with a web console')
  .version(version);
registerServe(program);
registerEcho(program);

await program.parseAsync(process.argv);
