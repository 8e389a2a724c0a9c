/**
 * Runs DCMTK's command-line tools as real peers. Each run returns the exit code and the
 * tool's output, which a failing test prints. TCP_NODELAY=1 is set in their environment:
 * Debian's DCMTK otherwise leaves Nagle's algorithm on.
 *
 * Layer: test helper.
 */

import { spawn } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type CommandRun, cleanEnv, runCommand } from './command.js';
import { freePort, waitForListener } from './net.js';

/** The outcome of one DCMTK tool run. */
export type ToolRun = CommandRun;

/** Added to the clean environment (see `cleanEnv`) of every DCMTK tool. */
const TOOL_ENV = { TCP_NODELAY: '1' };

/** DCMTK SCUs' connection, ACSE and DIMSE timeouts for tests: a hung peer fails, not stalls. */
export const SCU_TIMEOUTS: readonly string[] = ['-to', '10', '-ta', '10', '-td', '20'];

/**
 * findscu as FINDSCU against `peer` with the Patient (`-P`) or Study (`-S`) Root model and
 * `keys`, each response written into `out`: the run, and the response files in the order
 * they came.
 */
export async function runFindscu(
  peer: { readonly aeTitle: string; readonly port: number },
  root: '-P' | '-S',
  keys: readonly string[],
  out: string,
  extra: readonly string[] = [],
): Promise<{ run: ToolRun; files: string[] }> {
  const run = await runTool('findscu', [
    '-v',
    root,
    '-aet',
    'FINDSCU',
    '-aec',
    peer.aeTitle,
    ...SCU_TIMEOUTS,
    '-X',
    '-od',
    out,
    ...extra,
    ...keys.flatMap((key) => ['-k', key]),
    '127.0.0.1',
    String(peer.port),
  ]);
  const names = (await readdir(out)).filter((name) => name.startsWith('rsp')).sort();
  return { run, files: names.map((name) => join(out, name)) };
}

/** Runs `tool` with `args`, killing it after `timeoutMs`; in `cwd` when given. */
export function runTool(
  tool: string,
  args: readonly string[],
  timeoutMs = 30_000,
  cwd?: string,
): Promise<ToolRun> {
  return runCommand(tool, args, { env: TOOL_ENV, timeoutMs, ...(cwd !== undefined && { cwd }) });
}

/** A long-running tool (e.g. storescp) started in the background. */
export interface BackgroundTool {
  readonly output: () => string;
  stop(): Promise<void>;
}

/** Starts `tool` in the background; resolves after `readyDelayMs`, rejecting if it has exited by then. */
export async function startTool(
  tool: string,
  args: readonly string[],
  readyDelayMs = 300,
): Promise<BackgroundTool> {
  const child = spawn(tool, args, { env: cleanEnv(TOOL_ENV) });
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

/** A storescp started by `startStorescp`, and its port. */
export interface Storescp extends BackgroundTool {
  readonly port: number;
}

/**
 * Starts DCMTK's storescp on a free port with `args` (e.g. its AE title, `+B`), writing what it
 * receives into `folder` (made when missing); resolves once it accepts connections.
 */
export async function startStorescp(folder: string, args: readonly string[]): Promise<Storescp> {
  await mkdir(folder, { recursive: true });
  const port = await freePort();
  const tool = await startTool('storescp', [...args, '-od', folder, String(port)], 100);
  await waitForListener(port);
  return { ...tool, port };
}
