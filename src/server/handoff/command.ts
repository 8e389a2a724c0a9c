/**
 * Runs the configured processing command for a hand-off event: the command line is split into
 * argv (whitespace, single and double quotes, backslash escapes; no shell, so nothing in an
 * event can be interpreted), the series folder is appended as the last argument, and the event
 * is passed as JSON in DICOM_SERVER_EVENT with its type in DICOM_SERVER_EVENT_TYPE. One call is
 * one attempt; retries belong to the hand-off worker.
 *
 * Layer: server; uses child_process; must not import `web` or `cli`.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, sep } from 'node:path';
import { DicomServerError } from '../../errors.js';
import type { HandoffEvent } from './types.js';
import { eventPayload } from './webhook.js';

/** Default bound on one run of the command. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 10 * 60_000;

/** After the timeout's SIGTERM, how long the command gets before SIGKILL. */
const KILL_GRACE_MS = 5_000;

/** Bytes of the command's standard error kept for the error's details. */
const STDERR_TAIL_BYTES = 2_048;

/**
 * Largest DICOM_SERVER_EVENT passed whole. Linux refuses any one environment string over
 * 128 KiB (MAX_ARG_STRLEN) with E2BIG; past this the file list is left out (`filesOmitted`),
 * the folder argument and its manifest.json still name every file.
 */
const MAX_EVENT_ENV_BYTES = 100_000;

/** Options of one run. */
export interface CommandOptions {
  /** Bound on the run (default 10 min); the command's process group is then terminated. */
  readonly timeoutMs?: number;
  /** Cancels the run (shutdown), terminating the command like a timeout. */
  readonly signal?: AbortSignal;
}

/**
 * Splits a command line into argv like a POSIX shell's word splitting and quoting, without
 * expansion: whitespace separates words; '…' is literal; in "…" a backslash escapes only `"`
 * and `\`; elsewhere a backslash escapes the next character. Throws ERR_INVALID_ARGUMENT on an
 * unterminated quote or an empty command.
 */
export function parseCommandLine(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let isInWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < command.length; i++) {
    const char = command[i]!;
    const next = command[i + 1];
    if (quote === null && /\s/.test(char)) {
      if (isInWord) words.push(word);
      word = '';
      isInWord = false;
    } else if (char === quote) {
      quote = null;
    } else if (quote === null && (char === "'" || char === '"')) {
      quote = char;
      isInWord = true;
    } else if (char === '\\' && next !== undefined && isEscapable(next, quote)) {
      word += next;
      i++;
      isInWord = true;
    } else {
      word += char;
      isInWord = true;
    }
  }
  if (quote !== null) invalidCommand('unterminated quote in processing command');
  if (isInWord) words.push(word);
  if (words.length === 0) invalidCommand('processing command is empty');
  return words;
}

/** Whether a backslash before `char` escapes it: always unquoted, never in '…', in "…" for `"` and `\`. */
function isEscapable(char: string, quote: "'" | '"' | null): boolean {
  if (quote === null) return true;
  return quote === '"' && (char === '"' || char === '\\');
}

function invalidCommand(message: string): never {
  throw new DicomServerError('ERR_INVALID_ARGUMENT', message, { setting: 'processing_command' });
}

/**
 * The folder given to the command: the handler-folder copy, else the deepest folder holding
 * every stored file of the series.
 */
export function seriesFolder(event: HandoffEvent): string {
  if (event.folder !== undefined) return event.folder;
  const folders = event.series.files.map((file) => dirname(file.path));
  const [first] = folders;
  if (first === undefined) {
    throw new DicomServerError('ERR_HANDOFF_FAILED', 'series has no files and no folder', {
      action: 'command',
    });
  }
  return folders.reduce(commonFolder, first);
}

/** The deepest folder containing both `a` and `b` (absolute paths). */
function commonFolder(a: string, b: string): string {
  const left = a.split(sep);
  const right = b.split(sep);
  let n = 0;
  while (n < left.length && n < right.length && left[n] === right[n]) n++;
  return left.slice(0, n).join(sep) || sep;
}

/** The DICOM_SERVER_EVENT value: the event's JSON, without the file list when too long. */
export function eventEnvironmentValue(event: HandoffEvent): string {
  const whole = JSON.stringify(eventPayload(event));
  if (Buffer.byteLength(whole) <= MAX_EVENT_ENV_BYTES) return whole;
  return JSON.stringify({ ...eventPayload(event), files: [], filesOmitted: true });
}

/**
 * Runs `command` with the series folder as last argument. Resolves on exit code 0; rejects
 * with ERR_HANDOFF_FAILED on another code, a signal, the timeout or a failure to start
 * (details: `exitCode`, `signal`, `timedOut`, `cancelled`, `stderrTail`).
 */
export async function runProcessingCommand(
  command: string,
  event: HandoffEvent,
  options: CommandOptions = {},
): Promise<void> {
  let argv: string[];
  let folder: string;
  try {
    argv = parseCommandLine(command);
    folder = seriesFolder(event);
  } catch (error) {
    throw new DicomServerError(
      'ERR_HANDOFF_FAILED',
      'processing command not runnable',
      { action: 'command' },
      error,
    );
  }
  const [file, ...args] = argv as [string, ...string[]];
  const env = {
    ...process.env,
    DICOM_SERVER_EVENT: eventEnvironmentValue(event),
    DICOM_SERVER_EVENT_TYPE: event.type,
  };
  await runToCompletion(file, [...args, folder], env, options);
}

/** How a run ended. */
interface RunOutcome {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Why we terminated it, if we did. */
  readonly stoppedBy: 'timeout' | 'abort' | null;
  readonly stderrTail: string;
}

/** Spawns the program and waits for it; rejects unless it exits with 0. */
async function runToCompletion(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: CommandOptions,
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const details = { action: 'command', program: file, timeoutMs };
  let outcome: RunOutcome;
  try {
    outcome = await spawnAndWait(file, args, env, timeoutMs, options.signal);
  } catch (error) {
    throw new DicomServerError(
      'ERR_HANDOFF_FAILED',
      'processing command could not start',
      details,
      error,
    );
  }
  if (outcome.exitCode === 0 && outcome.stoppedBy === null) return;
  throw new DicomServerError('ERR_HANDOFF_FAILED', failureMessage(outcome), {
    ...details,
    exitCode: outcome.exitCode ?? undefined,
    signal: outcome.signal ?? undefined,
    timedOut: outcome.stoppedBy === 'timeout',
    cancelled: outcome.stoppedBy === 'abort',
    stderrTail: outcome.stderrTail,
  });
}

function failureMessage(outcome: RunOutcome): string {
  if (outcome.stoppedBy === 'timeout') return 'processing command timed out';
  if (outcome.stoppedBy === 'abort') return 'processing command was cancelled';
  if (outcome.signal !== null) return 'processing command was killed by a signal';
  return 'processing command exited with an error';
}

/**
 * Spawns the program in its own process group (so that a timeout ends the grandchildren a
 * script started too, which would otherwise keep its pipes open) and collects the stderr tail.
 */
function spawnAndWait(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<RunOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    const stderr = new TailBuffer(STDERR_TAIL_BYTES);
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    let stoppedBy: RunOutcome['stoppedBy'] = null;
    let killTimer: NodeJS.Timeout | undefined;
    const terminate = (reason: 'timeout' | 'abort'): void => {
      if (stoppedBy !== null) return;
      stoppedBy = reason;
      killGroup(child, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS);
    };
    const onAbort = (): void => terminate('abort');
    const timer = setTimeout(() => terminate('timeout'), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
    };
    child.once('error', (error) => {
      settle();
      reject(error);
    });
    child.once('close', (exitCode, exitSignal) => {
      settle();
      resolve({ exitCode, signal: exitSignal, stoppedBy, stderrTail: stderr.text() });
    });
    if (signal?.aborted) onAbort();
  });
}

/** Signals the child's process group; when that fails (group gone), the child itself. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  // No pid: the program never started. (Never signal group 0: that is our own group.)
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the leader exited and no member is left, or the group was never made.
    child.kill(signal);
  }
}

/** The last `limit` bytes of a stream, kept as a list of chunks with a running length. */
class TailBuffer {
  readonly #limit: number;
  readonly #chunks: Buffer[] = [];
  #length = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    while (this.#chunks.length > 1 && this.#length - this.#chunks[0]!.length >= this.#limit) {
      this.#length -= this.#chunks.shift()!.length;
    }
  }

  text(): string {
    const all = Buffer.concat(this.#chunks, this.#length);
    return all.subarray(Math.max(0, all.length - this.#limit)).toString('utf8');
  }
}
