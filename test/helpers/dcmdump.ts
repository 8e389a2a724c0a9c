/**
 * Reading DCMTK's `dcmdump` output in tests: a data set's content to compare two encodings of
 * it, the top-level values of a small data set (a C-FIND response) by keyword, and a small data
 * set's whole tree, sequences with their items.
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

/** One element line of dcmdump: its nesting depth (two spaces each), VR, value and keyword. */
interface DumpLine {
  readonly depth: number;
  readonly vr: string;
  /** The value as dcmdump prints it, without brackets; '' for an empty value. */
  readonly value: string;
  readonly keyword: string;
}

/** The element lines of a data set's dump (items and delimiters as lines too), in order. */
async function dumpLines(path: string): Promise<DumpLine[]> {
  const run = await runTool('dcmdump', ['-q', '-Un', path]);
  if (run.exitCode !== 0) throw new Error(run.output);
  const lines = run.stdout.split('\n');
  const start = lines.findIndex((line) => line.startsWith('# Dicom-Data-Set'));
  const parsed: DumpLine[] = [];
  for (const line of lines.slice(start + 1)) {
    const match =
      /^( *)\(([0-9a-f]{4}),([0-9a-f]{4})\) (\w\w) (.*?)\s+#\s*[\d/ul]+,\s*\d+\s+(\w+)$/.exec(line);
    if (match === null) continue;
    const [, indent, , , vr, shown, keyword] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    let value = shown;
    if (shown.startsWith('(no value available)')) value = '';
    else if (shown.startsWith('[')) value = shown.slice(1, shown.lastIndexOf(']'));
    else if (shown.startsWith('=')) value = shown.slice(1);
    parsed.push({ depth: indent.length / 2, vr, value, keyword });
  }
  return parsed;
}

/**
 * The top-level elements of a file's data set by keyword: the value as dcmdump prints it
 * (without brackets), '' for an empty value, 'SQ' for a sequence. Runs dcmdump.
 */
export async function topLevelValues(path: string): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const line of await dumpLines(path)) {
    if (line.depth !== 0 || line.keyword.endsWith('DelimitationItem')) continue;
    values[line.keyword] = line.vr === 'SQ' ? 'SQ' : line.value;
  }
  return values;
}

/** A data set as a tree by keyword: values as dcmdump prints them, sequences as their items. */
export interface DumpTree {
  readonly [keyword: string]: string | readonly DumpTree[];
}

/** A file's whole data set as a tree (sequences with their items, at any depth). Runs dcmdump. */
export async function datasetTree(path: string): Promise<DumpTree> {
  const lines = await dumpLines(path);
  let at = 0;
  // Reads the elements at `depth` until a line of a lesser depth. A sequence's items are one
  // level deeper than it, their elements two; delimiters say nothing the depths do not.
  const read = (depth: number): DumpTree => {
    const tree: Record<string, string | DumpTree[]> = {};
    for (let line = lines[at]; line !== undefined && line.depth >= depth; line = lines[at]) {
      at += 1;
      if (line.keyword.endsWith('DelimitationItem')) continue;
      if (line.vr !== 'SQ') {
        tree[line.keyword] = line.value;
        continue;
      }
      const items: DumpTree[] = [];
      const itemDepth = line.depth + 1;
      for (let item = lines[at]; item?.depth === itemDepth; item = lines[at]) {
        at += 1;
        if (item.keyword === 'Item') items.push(read(itemDepth + 1));
      }
      tree[line.keyword] = items;
    }
    return tree;
  };
  return read(0);
}
