/**
 * The `dicom-server` command in a child process, for tests: run from source through tsx (what
 * changed is what runs) or from the build in `dist/` (what ships; `npm run build` first, which
 * `checkBuildIsCurrent` insists on). Each run goes through `runCommand`: a clean environment,
 * a deadline, the command line and both streams in `output`.
 *
 * Layer: test helper.
 */

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { type CommandLine, type CommandOptions, type CommandRun, runCommand } from './command.js';

/** The project's root directory. */
export const REPO = resolve(import.meta.dirname, '..', '..');

/** The command line that runs the CLI from source: `node --import tsx src/cli/main.ts`. */
export const SOURCE_CLI: CommandLine = [
  process.execPath,
  '--import',
  'tsx',
  join(REPO, 'src', 'cli', 'main.ts'),
];

/** The built CLI's entry point (`npm run build`). */
export const BUILT_CLI = join(REPO, 'dist', 'src', 'cli', 'main.js');

/** How the CLI runs: `runCommand`'s options, in the project's root when no `cwd` is given. */
export type CliOptions = Omit<CommandOptions, 'displayName'>;

/** `dicom-server ARGS...` from source, to completion. */
export function runSourceCli(
  args: readonly string[],
  options: CliOptions = {},
): Promise<CommandRun> {
  const [node, ...nodeArgs] = SOURCE_CLI;
  return runCommand(node, [...nodeArgs, ...args], {
    cwd: REPO,
    ...options,
    displayName: 'dicom-server (source)',
  });
}

/** `dicom-server ARGS...` from the build in `dist/`, to completion. */
export function runBuiltCli(
  args: readonly string[],
  options: CliOptions = {},
): Promise<CommandRun> {
  return runCommand(process.execPath, [BUILT_CLI, ...args], {
    cwd: REPO,
    ...options,
    displayName: 'dicom-server',
  });
}

/**
 * Throws unless `dist/` holds the built CLI and is not older than any source file below
 * `sourceDirs` (relative to the project's root; all of `src` when absent), naming the stale ones.
 */
export function checkBuildIsCurrent(sourceDirs: readonly string[] = ['src']): void {
  if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: run \`npm run build\``);
  const stale: string[] = [];
  const visit = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) visit(path);
      else if (/(?<!\.test|\.d)\.ts$/.test(name)) {
        const built = join(REPO, 'dist', relative(REPO, path)).replace(/\.ts$/, '.js');
        if (!existsSync(built) || statSync(built).mtimeMs < statSync(path).mtimeMs) {
          stale.push(relative(REPO, path));
        }
      }
    }
  };
  for (const dir of sourceDirs) visit(join(REPO, dir));
  if (stale.length > 0) {
    throw new Error(`dist/ is older than ${stale.join(', ')}: run \`npm run build\``);
  }
}
