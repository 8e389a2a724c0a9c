/**
 * `dicom-server serve` as a child process for interop and deployment tests, run from source
 * (tsx) or by any command given (e.g. an installed copy), in a clean environment, with its JSON
 * log cut into lines; started on a data directory and waited for until the DICOM service and the
 * web console listen, and stopped with a check that it ended cleanly. Also its data directory as
 * another process sees it: the settings and allowed peers changed while it runs, the transaction
 * rows and the service status it writes.
 *
 * Layer: test helper.
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type OpenDatabase, openDatabase } from '../../src/db/dialect.js';
import { ServiceStatusRepository } from '../../src/db/repositories/service-status-repository.js';
import { SettingsRepository } from '../../src/db/repositories/settings-repository.js';
import {
  type TransactionFilter,
  TransactionLogRepository,
  type TransactionRow,
} from '../../src/db/repositories/transaction-log-repository.js';
import { SOURCE_CLI } from './cli.js';
import { type CommandLine, cleanEnv } from './command.js';
import { within } from './wait.js';

/** One line of the server's JSON log (pino), or `unparsed` for anything else on stdout. */
export type ServeLogLine = Record<string, unknown>;

/** How the process ended. */
export interface ServeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A running `dicom-server serve`. */
export interface ServeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: ServeLogLine[];
  /** Resolves once the process has exited and its output has been read. */
  readonly exited: Promise<ServeExit>;
  /** The command, its log lines and stderr, for failure messages. */
  output(): string;
  /** The first log line for which `predicate` holds, waiting up to `timeoutMs`. */
  waitForLine(
    predicate: (line: ServeLogLine) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<ServeLogLine>;
  /** Resolves with the exit within `timeoutMs`, or rejects with the output. */
  waitForExit(timeoutMs?: number): Promise<ServeExit>;
  /** SIGTERM, then the exit (SIGKILL when it has not exited within `timeoutMs`). */
  stop(timeoutMs?: number): Promise<ServeExit>;
}

/** What else a test gives `serve`. */
export interface ServeOptions {
  /**
   * Added to the environment (e.g. DICOM_SERVER_ADMIN_PASSWORD), after the cleaning (see
   * `cleanEnv`) and after DICOM_SERVER_HTTP_PORT=0 and DICOM_SERVER_HTTP_HOST=127.0.0.1.
   */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * The command line that runs `serve`, before the arguments (e.g. an installed copy's
   * `[process.execPath, 'dist/src/cli/main.js', 'serve']`); from source when absent.
   */
  readonly command?: CommandLine;
  /** The working directory; the test run's when absent. */
  readonly cwd?: string;
}

/** Starts `dicom-server serve` with `args`; see `startListening` to wait until it listens. */
export function startServe(args: readonly string[], options: ServeOptions = {}): ServeProcess {
  const [program, ...commandArgs] = options.command ?? [...SOURCE_CLI, 'serve'];
  // The web console on a free port: tests run side by side.
  const child = spawn(program, [...commandArgs, ...args], {
    env: cleanEnv({
      DICOM_SERVER_HTTP_PORT: '0',
      DICOM_SERVER_HTTP_HOST: '127.0.0.1',
      ...options.env,
    }),
    ...(options.cwd !== undefined && { cwd: options.cwd }),
  });
  const commandLine =
    options.command === undefined
      ? ['dicom-server serve', ...args].join(' ')
      : [...options.command, ...args].join(' ');
  const lines: ServeLogLine[] = [];
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    const complete = stdout.lastIndexOf('\n');
    if (complete < 0) return;
    const text = stdout.slice(0, complete);
    stdout = stdout.slice(complete + 1);
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        lines.push(JSON.parse(line) as ServeLogLine);
      } catch {
        lines.push({ unparsed: line });
      }
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  let isClosed = false;
  // 'close', not 'exit': by then every line the process wrote has been read.
  const exited = new Promise<ServeExit>((resolve) =>
    child.once('close', (code, signal) => {
      isClosed = true;
      resolve({ code, signal });
    }),
  );
  const output = () =>
    `$ ${commandLine}\n${lines.map((l) => JSON.stringify(l)).join('\n')}\n${stdout}${stderr}`;
  const waitForExit = async (timeoutMs = 15_000) => {
    try {
      return await within(exited, timeoutMs, 'exit of serve');
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${output()}`);
    }
  };
  return {
    child,
    lines,
    exited,
    output,
    async waitForLine(predicate, what, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find(predicate);
        if (found !== undefined) return found;
        if (isClosed) throw new Error(`serve exited before logging ${what}\n${output()}`);
        if (Date.now() > deadline) throw new Error(`serve did not log ${what}\n${output()}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    waitForExit,
    async stop(timeoutMs = 15_000) {
      if (!isClosed) child.kill('SIGTERM');
      try {
        return await waitForExit(timeoutMs);
      } catch (error) {
        child.kill('SIGKILL');
        throw error;
      }
    },
  };
}

/** Starts `serve` and waits for its 'DICOM service listening' line. */
export async function startListening(
  args: readonly string[],
  options: ServeOptions = {},
): Promise<ServeProcess> {
  const serve = startServe(args, options);
  try {
    await serve.waitForLine((line) => line.msg === 'DICOM service listening', 'listening');
  } catch (error) {
    if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
    throw error;
  }
  return serve;
}

/**
 * The web console's address, `http://127.0.0.1:PORT/dicom-server/`, once `serve` logs it.
 *
 * A `serve` that never announces its console is killed before the error is thrown.
 */
export async function waitForConsoleUrl(serve: ServeProcess): Promise<string> {
  try {
    const web = await serve.waitForLine(
      (line) => line.msg === 'web console and REST API listening',
      'the web console address',
    );
    return String(web.url);
  } catch (error) {
    if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
    throw error;
  }
}

/** Where and how `startServeOn` starts `serve`. */
export interface ServeOnOptions extends ServeOptions {
  /** The DICOM service's listen address; 127.0.0.1 when absent. */
  readonly host?: string;
  /** More flags, after the data directory, the address, port 0 and `--log-level info`. */
  readonly flags?: readonly string[];
}

/** A `serve` started by `startServeOn`, and where it listens. */
export interface ListeningServe {
  readonly serve: ServeProcess;
  /** The DICOM service's port, picked by the system. */
  readonly dicomPort: number;
  /** The web console's port. */
  readonly httpPort: number;
  /** The web console's address, `http://127.0.0.1:PORT/dicom-server/`. */
  readonly consoleUrl: string;
}

/**
 * Starts `serve` on `dir` with its DICOM service on a free port of `host` and log level info,
 * and waits until both the DICOM service and the web console listen (killed when it does not).
 */
export async function startServeOn(
  dir: DataDir,
  options: ServeOnOptions = {},
): Promise<ListeningServe> {
  const { host = '127.0.0.1', flags = [], ...serveOptions } = options;
  const serve = await startListening(
    [
      '--data-dir',
      dir.path,
      '--dicom-host',
      host,
      '--dicom-port',
      '0',
      '--log-level',
      'info',
      ...flags,
    ],
    serveOptions,
  );
  const consoleUrl = await waitForConsoleUrl(serve);
  const listening = serve.lines.find((line) => line.msg === 'DICOM service listening');
  return {
    serve,
    dicomPort: Number(listening?.port),
    httpPort: Number(new URL(consoleUrl).port),
    consoleUrl,
  };
}

/** Stops `serve` unless it is absent or has already exited (for `afterAll`). */
export async function stopServeIfRunning(serve: ServeProcess | undefined): Promise<void> {
  if (serve !== undefined && serve.child.exitCode === null && serve.child.signalCode === null) {
    await serve.stop();
  }
}

/**
 * Stops `serve` and throws unless it exited with code 0 and logged no error on the way.
 *
 * The last check of a test's server: nothing the test did made it fail.
 */
export async function stopServeCleanly(serve: ServeProcess): Promise<void> {
  const exit = await serve.stop();
  if (exit.code !== 0 || exit.signal !== null) {
    throw new Error(`serve exited with ${JSON.stringify(exit)}\n${serve.output()}`);
  }
  const errors = serve.lines.filter((line) => Number(line.level) >= 50);
  if (errors.length > 0) {
    throw new Error(`serve logged ${errors.length} error(s)\n${serve.output()}`);
  }
}

/**
 * The end of a test's `serve` on its own data directory: `stopServeCleanly`, then the directory
 * removed whatever the outcome. Either may be absent (a `beforeAll` that failed half-way).
 */
export async function stopServeAndRemoveDir(
  serve: ServeProcess | undefined,
  dir: DataDir | undefined,
): Promise<void> {
  try {
    if (serve !== undefined) await stopServeCleanly(serve);
  } finally {
    await dir?.remove();
  }
}

/** Polls `read` until `isDone` holds for what it returned; rejects naming `what` after `timeoutMs`. */
export async function pollUntil<T>(
  read: () => Promise<T>,
  isDone: (value: T) => boolean,
  what: string,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (isDone(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A fresh data directory with its database opened from the test's side. */
export interface DataDir {
  readonly path: string;
  readonly database: OpenDatabase;
  readonly settings: SettingsRepository;
  readonly transactions: TransactionLogRepository;
  readonly serviceStatus: ServiceStatusRepository;
  /** Transaction rows matching `filter`, oldest first. */
  rows(filter: TransactionFilter): Promise<TransactionRow[]>;
  /** Waits until at least `count` rows match `filter` (they are written in batches); oldest first. */
  waitForRows(
    filter: TransactionFilter,
    count?: number,
    timeoutMs?: number,
  ): Promise<TransactionRow[]>;
  /** Closes the database and removes the directory. */
  remove(): Promise<void>;
}

/** Makes a temporary data directory and opens (creating) its SQLite database. */
export async function createDataDir(prefix = 'serve-'): Promise<DataDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  const database = await openDatabase({ dataDir: path });
  const transactions = new TransactionLogRepository(database);
  const rows = async (filter: TransactionFilter) =>
    (await transactions.page(filter, 10_000)).rows.reverse();
  return {
    path,
    database,
    settings: new SettingsRepository(database),
    transactions,
    serviceStatus: new ServiceStatusRepository(database),
    rows,
    waitForRows: (filter, count = 1, timeoutMs = 5_000) =>
      pollUntil(
        () => rows(filter),
        (found) => found.length >= count,
        `${count} transaction row(s) matching ${JSON.stringify(filter)}`,
        timeoutMs,
      ),
    remove: async () => {
      await database.close();
      await rm(path, { recursive: true, force: true });
    },
  };
}
