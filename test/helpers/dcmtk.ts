/**
 * Runs DCMTK's command-line tools as real peers. Each run returns the exit code and the
 * tool's output, which a failing test prints. TCP_NODELAY=1 is set in their environment:
 * Debian's DCMTK otherwise leaves Nagle's algorithm on.
 */

import { spawn } from 'node:child_process';

/** The outcome of one DCMTK tool run. */
export interface ToolRun {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr together, for failure messages. */
  readonly output: string;
}

/** Runs `tool` with `args`, killing it after `timeoutMs`; in `cwd` when given. */
export function runTool(
  tool: string,
  args: readonly string[],
  timeoutMs = 30_000,
  cwd?: string,
): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, {
      env: { ...process.env, TCP_NODELAY: '1' },
      ...(cwd !== undefined && { cwd }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({
        exitCode,
        stdout,
        stderr,
        output: `$ ${tool} ${args.join(' ')}\n${stdout}${stderr}`,
      });
    });
  });
}

/** A long-running tool (e.g. storescp) started in the background. */
export interface BackgroundTool {
  readonly output: () => string;
  stop(): Promise<void>;
}

/** Starts `tool` in the background; resolves once `readyPattern` appears in its output (or after a short delay when absent). */
export async function startTool(
  tool: string,
  args: readonly string[],
  readyDelayMs = 300,
): Promise<BackgroundTool> {
  const child = spawn(tool, args, { env: { ...process.env, TCP_NODELAY: '1' } });
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  await new Promise((resolve) => setTimeout(resolve, readyDelayMs));
  if (child.exitCode !== null) throw new Error(`${tool} exited early:\n${output}`);
  return {
    output: () => output,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) {
          resolve();
          return;
        }
        child.once('close', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
