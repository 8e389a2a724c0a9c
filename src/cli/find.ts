/**
 * `dicom-server find HOST PORT [-k KEY[=VALUE]]...`: queries any PACS with C-FIND and prints
 * the matches as a table (one column per key) or as JSON, one object per line. Also what the
 * `move` and `get` commands share with it: the query options (`--root`, `--level`, `-k`), the
 * usage-error exit code, and Ctrl-C sending C-CANCEL.
 *
 * Layer: cli.
 */

import { type Command, type CommanderError, InvalidArgumentError, Option } from 'commander';
import { lookupTag, tagOfKeyword } from '../dicom/dictionary.js';
import { levelsOf, QUERY_LEVELS, type QueryLevel, type QueryRoot } from '../dicom/query/model.js';
import { formatTag } from '../dicom/tag.js';
import { formatStatus, Status, statusMeaning } from '../network/dimse/status.js';
import {
  find,
  isTextVr,
  QueryTag,
  type RequestIdentifier,
  type RequestKey,
  type ReturnedElement,
  type ScuTarget,
} from '../services/scu/find.js';
import { ExitCode, explainFailure } from './echo.js';
import { integerIn, peerAeOptions, secondsToMs } from './options.js';

/** Exit code of a usage error (an unknown option or keyword, a value that does not parse). */
export const USAGE_ERROR_EXIT_CODE = 2;

/** The options every Q/R command takes. */
export interface QueryCliOptions {
  readonly aec: string;
  readonly aet: string;
  readonly timeout: number;
  readonly root: QueryRoot;
  readonly level: QueryLevel;
  readonly key: readonly RequestKey[];
  readonly json?: boolean;
}

/** The tag of a PS3.6 keyword, `(gggg,eeee)` or `gggg,eeee`; undefined when unknown. */
export function tagOfKey(name: string): number | undefined {
  const hex = /^\(?([0-9a-f]{4}),([0-9a-f]{4})\)?$/i.exec(name);
  const tag = hex === null ? tagOfKeyword(name) : Number.parseInt(`${hex[1]}${hex[2]}`, 16) >>> 0;
  if (tag === undefined) return undefined;
  return lookupTag(tag) === undefined ? undefined : tag;
}

/**
 * Parses `-k KEYWORD=VALUE` as DCMTK's findscu does: a keyword (or tag) with no `=` or an
 * empty value is a return key. Throws InvalidArgumentError (a usage error) for an unknown
 * keyword, a key the command sets itself, or a value on a key that cannot hold text.
 */
export function parseKeyArgument(text: string): RequestKey {
  const equals = text.indexOf('=');
  const name = (equals < 0 ? text : text.slice(0, equals)).trim();
  const value = equals < 0 ? '' : text.slice(equals + 1);
  const tag = tagOfKey(name);
  if (tag === undefined) throw new InvalidArgumentError(`unknown keyword or tag '${name}'`);
  if (tag === QueryTag.QueryRetrieveLevel)
    throw new InvalidArgumentError('the level is set with --level');
  if (tag === QueryTag.SpecificCharacterSet)
    throw new InvalidArgumentError('Specific Character Set is set from the values (ISO_IR 192)');
  const vr = lookupTag(tag)?.vr ?? 'UN';
  if (value !== '' && !isTextVr(vr))
    throw new InvalidArgumentError(`${name} (VR ${vr}) can only be a return key`);
  return { tag, vr, value };
}

/** Adds a key to the list; a key given twice keeps its last value, in its first place. */
function withKey(keys: readonly RequestKey[], key: RequestKey): RequestKey[] {
  const index = keys.findIndex((k) => k.tag === key.tag);
  if (index < 0) return [...keys, key];
  return keys.map((k, i) => (i === index ? key : k));
}

/** The --root, --level and -k options. */
export function queryOptions(): Option[] {
  return [
    new Option('--root <root>', 'information model: patient or study root')
      .choices(['patient', 'study'])
      .default('study'),
    new Option('--level <level>', 'query/retrieve level')
      .choices(QUERY_LEVELS)
      .default('STUDY')
      .argParser((value: string) => {
        const level = value.toUpperCase();
        if (!(QUERY_LEVELS as readonly string[]).includes(level))
          throw new InvalidArgumentError(`must be one of ${QUERY_LEVELS.join(', ')}`);
        return level;
      }),
    new Option(
      '-k, --key <key>',
      'KEYWORD=VALUE matching key (* ? wildcards, A-B ranges, A\\B lists); KEYWORD alone returns it; repeatable',
    )
      .default([], 'none')
      .argParser((value: string, previous: RequestKey[]) =>
        withKey(previous, parseKeyArgument(value)),
      ),
  ];
}

/** The --aec, --aet, --timeout, query and (optionally) --json options, added to `command`. */
export function addScuOptions(command: Command, { hasJson = true } = {}): Command {
  const [calledAe, callingAe] = peerAeOptions();
  command
    .argument('<host>', 'peer host name or address')
    .argument('<port>', 'peer DICOM port', integerIn(1, 65535))
    .addOption(calledAe)
    .addOption(callingAe)
    .addOption(
      new Option('--timeout <seconds>', 'connect, ACSE and DIMSE timeout')
        .default(60_000, '60')
        .argParser(secondsToMs),
    );
  for (const option of queryOptions()) command.addOption(option);
  if (hasJson) command.option('--json', 'print JSON instead of text');
  // Usage errors exit 2 as the administration commands' do; help exits 0.
  return command.exitOverride((error: CommanderError) => {
    process.exit(error.exitCode === 0 ? ExitCode.Success : USAGE_ERROR_EXIT_CODE);
  });
}

/** Fails with a usage error (exit 2) when the level does not exist in the root. */
export function checkLevel(command: Command, options: QueryCliOptions): void {
  if (!levelsOf(options.root).includes(options.level))
    command.error(`error: Study Root has no ${options.level} level (use --root patient)`, {
      exitCode: USAGE_ERROR_EXIT_CODE,
    });
}

/** The peer as an SCU target, with one timeout for every timer. */
export function targetOf(host: string, port: number, options: QueryCliOptions): ScuTarget {
  const ms = options.timeout;
  return {
    host,
    port,
    callingAeTitle: options.aet,
    calledAeTitle: options.aec,
    timeouts: { artimMs: ms, acseMs: ms, networkMs: ms, dimseMs: ms },
  };
}

/**
 * A signal aborted by the first Ctrl-C (the operation then sends C-CANCEL and waits for its
 * final response); a second Ctrl-C exits at once.
 */
export function cancelOnInterrupt(operation: string): AbortSignal {
  const controller = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write(`${operation}: cancelling (C-CANCEL sent; Ctrl-C again to quit)\n`);
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  return controller.signal;
}

/** A status line: "success (0x0000)", with the peer's error comment when it gave one. */
export function describeStatus(status: number, errorComment?: string): string {
  const comment = errorComment === undefined || errorComment === '' ? '' : `: ${errorComment}`;
  return `${statusMeaning(status)} (${formatStatus(status)})${comment}`;
}

/** The keys returned at each level when the user asks for none (PS3.4 Tables C.6-1 to C.6-4). */
const DEFAULT_RETURN_KEYS: Readonly<Record<QueryLevel, readonly string[]>> = {
  PATIENT: [
    'PatientName',
    'PatientID',
    'PatientBirthDate',
    'PatientSex',
    'NumberOfPatientRelatedStudies',
  ],
  STUDY: [
    'PatientName',
    'PatientID',
    'StudyDate',
    'StudyDescription',
    'AccessionNumber',
    'ModalitiesInStudy',
    'StudyInstanceUID',
    'NumberOfStudyRelatedInstances',
  ],
  SERIES: [
    'Modality',
    'SeriesNumber',
    'SeriesDescription',
    'SeriesInstanceUID',
    'NumberOfSeriesRelatedInstances',
  ],
  IMAGE: ['InstanceNumber', 'SOPClassUID', 'SOPInstanceUID'],
};

/**
 * The C-FIND identifier: the user's keys, after the level's default return keys when the
 * user named no return key of their own.
 */
export function findIdentifier(level: QueryLevel, keys: readonly RequestKey[]): RequestIdentifier {
  if (keys.some((key) => key.value === '')) return { level, keys };
  let merged: RequestKey[] = DEFAULT_RETURN_KEYS[level].map((keyword) => parseKeyArgument(keyword));
  for (const key of keys) merged = withKey(merged, key);
  return { level, keys: merged };
}

/** The name of a tag for output: its keyword, or (gggg,eeee) for private and unknown tags. */
export function keyName(tag: number): string {
  const keyword = lookupTag(tag)?.keyword;
  return keyword === undefined || keyword === '' ? formatTag(tag) : keyword;
}

/** A JSON object of returned elements: keyword to text, sequences as arrays of such objects. */
export function elementsToJson(elements: readonly ReturnedElement[]): Record<string, unknown> {
  return Object.fromEntries(
    elements.map((element) => [
      keyName(element.tag),
      element.items === undefined ? element.value : element.items.map(elementsToJson),
    ]),
  );
}

function cellOf(element: ReturnedElement | undefined): string {
  if (element === undefined) return '';
  if (element.items !== undefined) return `<${element.items.length} items>`;
  // A table cell stays on one line.
  return element.value.replace(/[\r\n\t]+/g, ' ');
}

/** Lines of a table with one column per key, values left-aligned, two spaces apart. */
export function formatTable(
  columns: readonly number[],
  rows: readonly (readonly ReturnedElement[])[],
): string[] {
  const header = columns.map(keyName);
  const cells = rows.map((row) =>
    columns.map((tag) => cellOf(row.find((element) => element.tag === tag))),
  );
  const widths = header.map((name, i) =>
    Math.max(name.length, ...cells.map((line) => line[i]!.length)),
  );
  return [header, ...cells].map((line) =>
    line
      .map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

async function runFind(host: string, port: number, options: QueryCliOptions): Promise<number> {
  const target = `${options.aec}@${host}:${port}`;
  const identifier = findIdentifier(options.level, options.key);
  const rows: (readonly ReturnedElement[])[] = [];
  let matches = 0;
  try {
    for await (const response of find({
      target: targetOf(host, port, options),
      root: options.root,
      identifier,
      signal: cancelOnInterrupt('C-FIND'),
    })) {
      if (response.type === 'match') {
        matches += 1;
        if (options.json === true)
          process.stdout.write(`${JSON.stringify(elementsToJson(response.elements))}\n`);
        else rows.push(response.elements);
        continue;
      }
      if (options.json !== true && rows.length > 0) {
        const columns = identifier.keys.map((key) => key.tag);
        process.stdout.write(`${formatTable(columns, rows).join('\n')}\n`);
      }
      const count = `${matches} match${matches === 1 ? '' : 'es'}`;
      process.stderr.write(
        `C-FIND ${target}: ${count}, ${describeStatus(response.status, response.errorComment)}\n`,
      );
      return response.status === Status.Success ? ExitCode.Success : ExitCode.Failed;
    }
    return ExitCode.Failed;
  } catch (error) {
    const { message, exitCode } = explainFailure(error, target);
    process.stderr.write(`${message}\n`);
    return exitCode;
  }
}

/** Adds the `find` command. */
export function registerFind(program: Command): void {
  const command = program
    .command('find')
    .description('query a DICOM peer with C-FIND; a table, or JSON lines with --json');
  addScuOptions(command).action(async (host: string, port: number, options: QueryCliOptions) => {
    checkLevel(command, options);
    process.exit(await runFind(host, port, options));
  });
}
