/**
 * Processes for the deployment tests: a command run to completion in a clean environment (no
 * DICOM_SERVER_* or npm_* variables of the test run, only those given), and a long-running
 * `serve` of any installed copy with its JSON log cut into lines. (test/helpers/serve-process.ts
 * runs `serve` from source only; this one runs the command it is given, e.g. the packed build.)
 *
 * Layer: test helper (test/deploy).
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { within } from '../helpers/wait.js';

/** The outcome of a command run to completion. */
export interface CommandRun {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The command line and both streams, for failure messages. */
  readonly output: string;
}

/**
 * The test run's environment without our own settings (DICOM_SERVER_*) and without npm's
 * (npm_*, set when the tests run under `npm test`, which a nested npm would take as its own
 * configuration), plus `extra`.
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

/** Runs `command` with `args` in `cwd` to completion (killed after `timeoutMs`: exitCode null). */
export function runCommand(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Readonly<Record<string, string>>; timeoutMs?: number } = {},
): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: cleanEnv(options.env),
      ...(options.cwd !== undefined && { cwd: options.cwd }),
    });
    child.stdin.end();
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({
        exitCode,
        stdout,
        stderr,
        output: `$ ${command} ${args.join(' ')}\n${stdout}${stderr}`,
      });
    });
  });
}

/** A running `serve`: its log lines, and waiting for one of them or for its exit. */
export interface LoggedProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: Record<string, unknown>[];
  output(): string;
  waitForLine(message: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, then the exit code and signal (SIGKILL when it has not exited in `timeoutMs`). */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `command` with `args` in `cwd`, in a clean environment plus `env`. */
export function startLogged(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Readonly<Record<string, string>> } = {},
): LoggedProcess {
  const child = spawn(command, args, {
    env: cleanEnv(options.env),
    ...(options.cwd !== undefined && { cwd: options.cwd }),
  });
  const lines: Record<string, unknown>[] = [];
  let pending = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const line of parts.filter((part) => part.trim() !== '')) {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ unparsed: line });
      }
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const output = () =>
    `$ ${command} ${args.join(' ')}\n${lines.map((line) => JSON.stringify(line)).join('\n')}\n${pending}${stderr}`;
  return {
    child,
    lines,
    output,
    async waitForLine(message, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find((line) => line.msg === message);
        if (found !== undefined) return found;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`exited before logging '${message}'\n${output()}`);
        }
        if (Date.now() > deadline) throw new Error(`did not log '${message}'\n${output()}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop(timeoutMs = 20_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      try {
        return await within(exited, timeoutMs, 'exit after SIGTERM');
      } catch (error) {
        child.kill('SIGKILL');
        throw new Error(`${(error as Error).message}\n${output()}`);
      }
    },
  };
}
