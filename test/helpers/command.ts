/**
 * A command run to completion in a child process, for tests: its exit code and both output
 * streams, in a clean environment (the test run's variables without our own DICOM_SERVER_*
 * settings and without npm's npm_*, plus those the test gives), killed after a deadline. DCMTK's
 * tools (test/helpers/dcmtk.ts), the dicom-server command (test/helpers/cli.ts) and system
 * commands (`tar`, `npm`, `systemd-analyze`) all run through it.
 *
 * Layer: test helper.
 */

import { spawn } from 'node:child_process';

/** A command line: the program, then its arguments. */
export type CommandLine = readonly [program: string, ...args: string[]];

/** The outcome of a command run to completion. */
export interface CommandRun {
  /** The exit code; null when the deadline killed it (or a signal ended it). */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The command line and both streams, for failure messages. */
  readonly output: string;
}

/** How a command runs. */
export interface CommandOptions {
  /** The working directory; the test run's when absent. */
  readonly cwd?: string;
  /** Added to the clean environment (see `cleanEnv`). */
  readonly env?: Readonly<Record<string, string>>;
  /** Killed with SIGKILL after this long (exitCode null); 30 s when absent. */
  readonly timeoutMs?: number;
  /** Written to its standard input, which is then closed (closed at once when absent). */
  readonly stdin?: string;
  /** How the command line reads in `output` (e.g. `dicom-server`); the command when absent. */
  readonly displayName?: string;
}

/**
 * The test run's environment without our own settings (DICOM_SERVER_*, so that only what a test
 * gives counts) and without npm's (npm_*, set when the tests run under `npm test`, which a
 * nested npm would take as its own configuration), plus `extra`.
 */
export function cleanEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return {
    ...Object.fromEntries(
      Object.entries(process.env).filter(
        ([name]) => !name.startsWith('DICOM_SERVER_') && !name.toLowerCase().startsWith('npm_'),
      ),
    ),
    ...extra,
  };
}

/** Runs `command` with `args` to completion; rejects only when it cannot be started. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: cleanEnv(options.env),
      ...(options.cwd !== undefined && { cwd: options.cwd }),
    });
    child.stdin.end(options.stdin ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      const commandLine = [options.displayName ?? command, ...args].join(' ');
      resolve({ exitCode, stdout, stderr, output: `$ ${commandLine}\n${stdout}${stderr}` });
    });
  });
}
