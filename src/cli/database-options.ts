/**
 * What the administration commands (`config`, `ae`, `migrate`) share: the `--data-dir` and
 * `--db` options, declared as `serve` declares them; opening the database around a command's
 * work, with a one-line message instead of a stack when it cannot be opened; and their exit
 * codes (0 success, 1 failure, 2 invalid input, including commander's usage errors).
 *
 * Layer: cli.
 */

import { join, resolve } from 'node:path';
import { type Command, type CommanderError, Option } from 'commander';
import { type OpenDatabase, openDatabase, SQLITE_FILE_NAME } from '../db/dialect.js';

/** Exit codes of the administration commands. */
export const AdminExitCode = {
  Success: 0,
  /** Something went wrong that the input did not cause: no database, an unknown AE title. */
  Failed: 1,
  /** The input was invalid: an unknown setting, a value that does not validate, a bad flag. */
  InvalidInput: 2,
} as const;

/** An exit code of the administration commands. */
export type AdminExitCode = (typeof AdminExitCode)[keyof typeof AdminExitCode];

/** The values of the `--data-dir` and `--db` options. */
export interface DatabaseCliOptions {
  readonly dataDir: string;
  readonly db: string | undefined;
}

/** The `--data-dir` (env DICOM_SERVER_DATA_DIR, default ./data) and `--db` (env DICOM_SERVER_DB) options. */
export function databaseOptions(): [dataDir: Option, db: Option] {
  return [
    new Option('--data-dir <dir>', 'data directory (storage and SQLite index)')
      .env('DICOM_SERVER_DATA_DIR')
      .default('./data'),
    new Option(
      '--db <url>',
      'index database: postgres://... (default: SQLite in the data directory)',
    ).env('DICOM_SERVER_DB'),
  ];
}

/** Adds the `--data-dir` and `--db` options to a command. */
export function addDatabaseOptions(command: Command): Command {
  for (const option of databaseOptions()) command.addOption(option);
  return command;
}

/**
 * Makes commander's usage errors (unknown option, missing argument, a command group called
 * without its subcommand) exit with {@link AdminExitCode.InvalidInput} instead of 1. Set on a
 * command before its subcommands are added: they inherit it.
 */
export function exitInvalidInputOnUsageErrors(command: Command): Command {
  return command.exitOverride((error: CommanderError) => {
    // Help and version exit 0; commander has already printed its message for the others.
    process.exit(error.exitCode === 0 ? AdminExitCode.Success : AdminExitCode.InvalidInput);
  });
}

/** Where the options point, for messages: the SQLite file, or a PostgreSQL URL without credentials. */
export function describeDatabaseLocation(options: DatabaseCliOptions): string {
  if (options.db === undefined) return join(resolve(options.dataDir), SQLITE_FILE_NAME);
  try {
    const url = new URL(options.db);
    if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') {
      return `${url.protocol}//${url.host}${url.pathname}`;
    }
  } catch {
    // Not a URL: a SQLite file path, shown as it is.
  }
  return options.db;
}

/** An error as one line: its message, or its code, or for an AggregateError its parts' messages. */
export function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') {
    return error.errors.map(describeError).join('; ');
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (error.message !== '') return error.message;
    return code ?? error.name;
  }
  return String(error);
}

/**
 * Opens (and migrates) the database the options name, runs `work` with it, closes it and sets
 * the process's exit code to what `work` returned. A database that cannot be opened, or an error
 * thrown by `work`, is reported on stderr in one line and exits with {@link AdminExitCode.Failed}.
 */
export async function withDatabase(
  options: DatabaseCliOptions,
  work: (database: OpenDatabase) => Promise<AdminExitCode>,
): Promise<void> {
  let database: OpenDatabase;
  try {
    database = await openDatabase({
      dataDir: resolve(options.dataDir),
      ...(options.db !== undefined && { url: options.db }),
    });
  } catch (error) {
    process.stderr.write(
      `cannot open the database (${describeDatabaseLocation(options)}): ${describeError(error)}\n`,
    );
    process.exitCode = AdminExitCode.Failed;
    return;
  }
  try {
    process.exitCode = await work(database);
  } catch (error) {
    process.stderr.write(`${describeError(error)}\n`);
    process.exitCode = AdminExitCode.Failed;
  } finally {
    await database.close();
  }
}

/** Writes `field: message` lines to stderr, one per field that failed validation. */
export function writeFieldErrors(errors: Readonly<Record<string, string>>): void {
  for (const [field, message] of Object.entries(errors)) {
    process.stderr.write(`${field}: ${message}\n`);
  }
}
