#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * The `dicom-server` command: one subcommand per file beside this one, each loaded only when it
 * is the one run (or for help and unknown names), so that an administration command does not
 * pay for importing the whole server.
 *
 * Layer: cli.
 */

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';

/** Each subcommand's `register` function, by name, in the order help lists them. */
const SUBCOMMANDS: Record<string, () => Promise<(program: Command) => void>> = {
  serve: async () => (await import('./serve.js')).registerServe,
  echo: async () => (await import('./echo.js')).registerEcho,
  send: async () => (await import('./send.js')).registerSend,
  find: async () => (await import('./find.js')).registerFind,
  move: async () => (await import('./move.js')).registerMove,
  get: async () => (await import('./get.js')).registerGet,
  config: async () => (await import('./config.js')).registerConfig,
  ae: async () => (await import('./ae.js')).registerAe,
  migrate: async () => (await import('./migrate.js')).registerMigrate,
  user: async () => (await import('./user.js')).registerUser,
  health: async () => (await import('./health.js')).registerHealth,
};

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
// The program has no options of its own but --help and --version: a subcommand comes first.
const requested = process.argv[2];
const names =
  requested !== undefined && Object.hasOwn(SUBCOMMANDS, requested)
    ? [requested]
    : Object.keys(SUBCOMMANDS);
for (const name of names) (await SUBCOMMANDS[name]!())(program);

await program.parseAsync(process.argv);
