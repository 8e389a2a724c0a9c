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
import { registerSend } from './send.js';
import { registerServe } from './serve.js';

/** The package's version, from the nearest package.json above this file (built or not). */
function packageVersion(): string {
  for (
    let dir = dirname(fileURLToPath(import.meta.url));
    dir !== dirname(dir);
    dir = dirname(dir)
  ) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      return (JSON.parse(readFileSync(candidate, 'utf8')) as { version: string }).version;
    }
  }
  return '0.0.0';
}

const version = packageVersion();

const program = new Command('dicom-server')
  .description('DICOM receiver and query/retrieve node with a web console')
  .version(version);
registerServe(program);
registerEcho(program);
registerSend(program);

await program.parseAsync(process.argv);
