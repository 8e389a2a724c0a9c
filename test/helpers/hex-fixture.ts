/**
 * Reads and writes hex byte fixtures: text files whose lines starting with `#` describe what is
 * inside (tool, AE titles, contexts, max PDU) and whose other lines hold the bytes as hex pairs.
 *
 * Layer: test helper. Used by the codec tests to load fixtures and by `record-pdus.ts` to write
 * the ones it records; imports nothing from src/.
 */

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bytes per line when a fixture is written. */
const BYTES_PER_LINE = 16;

/** The folder holding the PDU fixtures recorded from DCMTK exchanges. */
export const PDU_FIXTURE_DIR = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'fixtures',
  'pdu',
);

/** The bytes of a hex fixture's text: `#` lines and blank lines skipped, whitespace ignored. */
export function parseHexFixture(text: string): Buffer {
  const hex = text
    .split(/\r?\n/)
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('')
    .replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) {
    throw new Error('hex fixture holds a character that is not a hex digit, or an odd digit count');
  }
  return Buffer.from(hex, 'hex');
}

/** The `#` comment lines of a hex fixture, without the leading `#` and one space. */
export function hexFixtureComments(text: string): string[] {
  return text
    .split(/\r?\n/)
    .filter((line) => line.trimStart().startsWith('#'))
    .map((line) => line.trimStart().replace(/^# ?/, ''));
}

/** Loads a hex fixture file into a Buffer. */
export function loadHexFixture(path: string): Buffer {
  return parseHexFixture(readFileSync(path, 'utf8'));
}

/** Loads a PDU fixture by file name from `test/fixtures/pdu/`. */
export function loadPduFixture(name: string): Buffer {
  return loadHexFixture(join(PDU_FIXTURE_DIR, name));
}

/** The text of a hex fixture: each comment line prefixed with `# `, then 16 bytes a line. */
export function formatHexFixture(comments: readonly string[], bytes: Uint8Array): string {
  const lines = comments.map((comment) => `# ${comment}`.trimEnd());
  for (let start = 0; start < bytes.length; start += BYTES_PER_LINE) {
    const row = Buffer.from(bytes.subarray(start, start + BYTES_PER_LINE));
    lines.push(row.toString('hex').replace(/(..)(?!$)/g, '$1 '));
  }
  return `${lines.join('\n')}\n`;
}
