/**
 * Reading DCMTK's `dcmdump` output in tests: a data set's content to compare two encodings of
 * it, and the top-level values of a small data set (a C-FIND response) by keyword.
 */

import { runTool } from './dcmtk.js';

/**
 * A data set as dcmdump shows it, without what may change between two encodings of the same
 * content: lengths and their encoding, delimitation items, Data Set Trailing Padding. The
 * transfer syntax line of the file meta is not part of it.
 */
export function datasetContent(dump: string): string[] {
  const lines = dump.split('\n');
  const start = lines.findIndex((line) => line.startsWith('# Dicom-Data-Set'));
  return lines
    .slice(start + 1)
    .filter((line) => !/^# Used TransferSyntax|Delimitation|^\s*\(fffc,fffc\)/.test(line))
    .map((line) =>
      line
        .replace(/ with (?:undefined|explicit) length #=/, ' #=')
        .replace(/\s+# .*$/, '')
        .trimEnd(),
    );
}

/**
 * The top-level elements of a file's data set by keyword: the value as dcmdump prints it
 * (without brackets), '' for an empty value, 'SQ' for a sequence. Runs dcmdump.
 */
export async function topLevelValues(path: string): Promise<Record<string, string>> {
  const run = await runTool('dcmdump', ['-q', '-Un', path]);
  if (run.exitCode !== 0) throw new Error(run.output);
  const values: Record<string, string> = {};
  const lines = run.stdout.split('\n');
  const start = lines.findIndex((line) => line.startsWith('# Dicom-Data-Set'));
  for (const line of lines.slice(start + 1)) {
    // Top-level lines start with the tag in column 0; nested ones are indented.
    const match = /^\(([0-9a-f]{4}),([0-9a-f]{4})\) (\w\w) (.*?)\s+#\s*\d+,\s*\d+\s+(\w+)$/.exec(
      line,
    );
    if (match === null) continue;
    const [, , , vr, shown, keyword] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (vr === 'SQ') values[keyword] = 'SQ';
    else if (shown.startsWith('(no value available)')) values[keyword] = '';
    else if (shown.startsWith('[')) values[keyword] = shown.slice(1, shown.lastIndexOf(']'));
    else if (shown.startsWith('=')) values[keyword] = shown.slice(1);
    else values[keyword] = shown;
  }
  return values;
}
