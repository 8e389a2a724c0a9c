/**
 * `dicom-server move HOST PORT --dest AE -k KEY=VALUE...`: asks a peer to send the matching
 * instances to a destination AE with C-MOVE; prints the sub-operation counts as they come, the
 * final status and the failed SOP instance UIDs, or all of it as one JSON object.
 *
 * Layer: cli.
 */

import type { Command } from 'commander';
import { Status, statusMeaning } from '../network/dimse/status.js';
import type { RequestIdentifier } from '../services/scu/find.js';
import { move, type RetrieveResult, type SuboperationCounts } from '../services/scu/move.js';
import { ExitCode, explainFailure } from './echo.js';
import {
  addScuOptions,
  cancelOnInterrupt,
  checkLevel,
  describeStatus,
  type QueryCliOptions,
  targetOf,
  USAGE_ERROR_EXIT_CODE,
} from './find.js';
import { aeTitle } from './options.js';

interface MoveCliOptions extends QueryCliOptions {
  readonly dest: string;
}

/** "remaining 3, completed 2, failed 0, warning 0" (remaining only when the peer says). */
export function describeCounts(counts: SuboperationCounts): string {
  const remaining = counts.remaining === undefined ? '' : `remaining ${counts.remaining}, `;
  return `${remaining}completed ${counts.completed}, failed ${counts.failed}, warning ${counts.warning}`;
}

/** Prints counts on stderr: one line rewritten on a terminal, a line each otherwise. */
export function progressPrinter(operation: string): {
  update(counts: SuboperationCounts): void;
  done(): void;
} {
  const isTerminal = process.stderr.isTTY === true;
  let isLineOpen = false;
  return {
    update(counts) {
      const line = `${operation}: ${describeCounts(counts)}`;
      if (isTerminal) {
        process.stderr.write(`\r\x1b[K${line}`);
        isLineOpen = true;
      } else {
        process.stderr.write(`${line}\n`);
      }
    },
    done() {
      if (isLineOpen) process.stderr.write('\n');
      isLineOpen = false;
    },
  };
}

/** The JSON summary of a C-MOVE or C-GET. */
export function resultToJson(result: RetrieveResult): Record<string, unknown> {
  return {
    status: result.status,
    statusHex: `0x${result.status.toString(16).toUpperCase().padStart(4, '0')}`,
    meaning: statusMeaning(result.status),
    ...(result.errorComment !== undefined && { errorComment: result.errorComment }),
    completed: result.counts.completed,
    failed: result.counts.failed,
    warning: result.counts.warning,
    failedSopInstanceUids: result.failedSopInstanceUids,
  };
}

/** Prints the final status and failed UIDs; the exit code: 0 only for success. */
export function reportRetrieve(operation: string, target: string, result: RetrieveResult): number {
  process.stdout.write(
    `${operation} ${target}: ${describeStatus(result.status, result.errorComment)}; ${describeCounts(result.counts)}\n`,
  );
  for (const uid of result.failedSopInstanceUids) process.stdout.write(`failed: ${uid}\n`);
  return result.status === Status.Success ? ExitCode.Success : ExitCode.Failed;
}

/** Fails with a usage error unless some key has a value: an empty identifier would take everything. */
export function checkMatchingKey(command: Command, identifier: RequestIdentifier): void {
  if (!identifier.keys.some((key) => key.value !== ''))
    command.error(
      'error: give at least one matching key, e.g. -k StudyInstanceUID=1.2.3 (-k PatientID=* for all)',
      { exitCode: USAGE_ERROR_EXIT_CODE },
    );
}

async function runMove(host: string, port: number, options: MoveCliOptions): Promise<number> {
  const target = `${options.aec}@${host}:${port}`;
  const progress = progressPrinter('C-MOVE');
  try {
    const result = await move({
      target: targetOf(host, port, options),
      root: options.root,
      identifier: { level: options.level, keys: options.key },
      destination: options.dest,
      signal: cancelOnInterrupt('C-MOVE'),
      onProgress: (counts) => progress.update(counts),
    });
    progress.done();
    if (options.json === true) {
      process.stdout.write(`${JSON.stringify(resultToJson(result))}\n`);
      return result.status === Status.Success ? ExitCode.Success : ExitCode.Failed;
    }
    return reportRetrieve(`C-MOVE to ${options.dest} from`, target, result);
  } catch (error) {
    progress.done();
    const { message, exitCode } = explainFailure(error, target);
    process.stderr.write(`${message}\n`);
    return exitCode;
  }
}

/** Adds the `move` command. */
export function registerMove(program: Command): void {
  const command = program
    .command('move')
    .description('have a DICOM peer send matching instances to an AE with C-MOVE')
    .requiredOption('--dest <title>', 'move destination AE title (the peer must know it)', aeTitle);
  addScuOptions(command).action(async (host: string, port: number, options: MoveCliOptions) => {
    checkLevel(command, options);
    checkMatchingKey(command, { level: options.level, keys: options.key });
    process.exit(await runMove(host, port, options));
  });
}
