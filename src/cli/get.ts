/**
 * `dicom-server get HOST PORT --out DIR -k KEY=VALUE...`: retrieves the matching instances with
 * C-GET over the same association and writes each as a Part 10 file `<SOP Instance UID>.dcm`
 * in DIR; prints the sub-operation counts, the final status and what was written.
 *
 * Layer: cli.
 */

import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { STORAGE_GROUPS, STORAGE_SOP_CLASSES, type StorageGroup } from '../dicom/sop-classes.js';
import { TransferSyntax } from '../dicom/transfer-syntax.js';
import { isValidUid } from '../dicom/uid.js';
import { Status } from '../network/dimse/status.js';
import { type GetResult, get, MAX_STORAGE_CONTEXTS } from '../services/scu/get.js';
import { ExitCode, explainFailure } from './echo.js';
import {
  addScuOptions,
  cancelOnInterrupt,
  checkLevel,
  type QueryCliOptions,
  targetOf,
  USAGE_ERROR_EXIT_CODE,
} from './find.js';
import { checkMatchingKey, progressPrinter, reportRetrieve, resultToJson } from './move.js';

interface GetCliOptions extends QueryCliOptions {
  readonly out: string;
  readonly sopClass: readonly string[];
  readonly transferSyntax: readonly string[];
}

/** A storage group name (`ct`, `rt_dose`, ...) to its SOP class UIDs, or a UID to itself. */
function parseSopClass(value: string, previous: readonly string[]): string[] {
  const group = value.toLowerCase();
  if ((STORAGE_GROUPS as readonly string[]).includes(group))
    return [...previous, ...Object.keys(STORAGE_SOP_CLASSES[group as StorageGroup])];
  if (isValidUid(value)) return [...previous, value];
  throw new InvalidArgumentError(`not a UID nor one of ${STORAGE_GROUPS.join(', ')}`);
}

/** A transfer syntax by name (`ExplicitVRLittleEndian`, any case) or UID. */
function parseTransferSyntax(value: string, previous: readonly string[]): string[] {
  const byName = Object.entries(TransferSyntax).find(
    ([name]) => name.toLowerCase() === value.toLowerCase(),
  );
  if (byName !== undefined) return [...previous, byName[1]];
  if (isValidUid(value)) return [...previous, value];
  throw new InvalidArgumentError(`not a UID nor one of ${Object.keys(TransferSyntax).join(', ')}`);
}

function printResult(target: string, out: string, result: GetResult, isJson: boolean): number {
  const written = result.received.filter((instance) => instance.path !== undefined);
  const refused = result.received.filter((instance) => instance.error !== undefined);
  if (isJson) {
    const summary = {
      ...resultToJson(result),
      files: written.map(({ sopInstanceUid, sopClassUid, transferSyntaxUid, path, bytes }) => ({
        sopInstanceUid,
        sopClassUid,
        transferSyntaxUid,
        path,
        bytes,
      })),
      notWritten: refused.map(({ sopInstanceUid, error }) => ({ sopInstanceUid, error })),
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return result.status === Status.Success ? ExitCode.Success : ExitCode.Failed;
  }
  for (const instance of refused)
    process.stderr.write(`not written: ${instance.sopInstanceUid}: ${instance.error}\n`);
  const exitCode = reportRetrieve('C-GET from', target, result);
  process.stdout.write(
    `${written.length} file${written.length === 1 ? '' : 's'} written to ${out}\n`,
  );
  return exitCode;
}

async function runGet(host: string, port: number, options: GetCliOptions): Promise<number> {
  const target = `${options.aec}@${host}:${port}`;
  const out = resolve(options.out);
  const progress = progressPrinter('C-GET');
  try {
    const result = await get({
      target: targetOf(host, port, options),
      root: options.root,
      identifier: { level: options.level, keys: options.key },
      outputDirectory: out,
      ...(options.sopClass.length > 0 && { sopClasses: options.sopClass }),
      ...(options.transferSyntax.length > 0 && { transferSyntaxes: options.transferSyntax }),
      signal: cancelOnInterrupt('C-GET'),
      onProgress: (counts) => progress.update(counts),
    });
    progress.done();
    return printResult(target, out, result, options.json === true);
  } catch (error) {
    progress.done();
    const { message, exitCode } = explainFailure(error, target);
    process.stderr.write(`${message}\n`);
    return exitCode;
  }
}

/** Adds the `get` command. */
export function registerGet(program: Command): void {
  const command = program
    .command('get')
    .description('retrieve matching instances from a DICOM peer with C-GET into a folder')
    .requiredOption('--out <dir>', 'folder the instances are written to (created if missing)')
    .addOption(
      new Option(
        '--sop-class <class>',
        `storage SOP class to accept: a UID or a group (${STORAGE_GROUPS.join(', ')}); repeatable`,
      )
        .default([], 'every storage SOP class we know')
        .argParser(parseSopClass),
    )
    .addOption(
      new Option(
        '--transfer-syntax <syntax>',
        'transfer syntax to propose for each storage SOP class, preferred first; repeatable',
      )
        .default([], 'ExplicitVRLittleEndian, ImplicitVRLittleEndian')
        .argParser(parseTransferSyntax),
    );
  addScuOptions(command).action(async (host: string, port: number, options: GetCliOptions) => {
    checkLevel(command, options);
    checkMatchingKey(command, { level: options.level, keys: options.key });
    if (new Set(options.sopClass).size > MAX_STORAGE_CONTEXTS)
      command.error(
        `error: at most ${MAX_STORAGE_CONTEXTS} storage SOP classes fit one association`,
        {
          exitCode: USAGE_ERROR_EXIT_CODE,
        },
      );
    process.exit(await runGet(host, port, options));
  });
}
