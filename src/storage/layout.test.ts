/**
 * The storage layout (the specification's "Storage Organization"): the folder of every
 * structure, the name of every file naming, and path safety: UIDs are validated, other values
 * encoded, and no path can leave the storage root whatever a data set holds.
 *
 * Layer: storage (unit). Pure: no disk.
 */

import { isAbsolute, join, relative, sep } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasCode } from '../errors.js';
import {
  assertInside,
  checkedUid,
  encodeComponent,
  FALLBACK_FOLDER,
  FILE_NAMINGS,
  type FileNaming,
  fileNameFor,
  folderFor,
  MAX_NAME_BYTES,
  type PathAttributes,
  relativePathFor,
  resolveInside,
  STORAGE_STRUCTURES,
  type StorageStructure,
  withCollisionSuffix,
} from './layout.js';

/** Fixed seed: a failure reproduces on every run; fast-check prints the counterexample. */
const RUN = { seed: 20240917, numRuns: 500 } as const;

const ROOT = join(sep, 'srv', 'dicom', 'storage');

/** 2026-01-02 19:30:00.123 local time: the layout uses the server's local calendar. */
const RECEIVED_AT = new Date(2026, 0, 2, 19, 30, 0, 123);

const ATTRIBUTES: PathAttributes = {
  patientId: 'PAT-001',
  studyInstanceUid: '1.2.826.0.1.3680043.9.7777.10',
  seriesInstanceUid: '1.2.826.0.1.3680043.9.7777.10.1',
  sopInstanceUid: '1.2.826.0.1.3680043.9.7777.10.1.5',
  instanceNumber: 7,
  receivedAt: RECEIVED_AT,
  sequenceNumber: 42,
};

/** The error code a call throws, or undefined when it returns. */
function codeOf(call: () => unknown): string | undefined {
  try {
    call();
    return undefined;
  } catch (error) {
    return hasCode(error, 'ERR_INVALID_UID')
      ? 'ERR_INVALID_UID'
      : hasCode(error, 'ERR_INVALID_ARGUMENT')
        ? 'ERR_INVALID_ARGUMENT'
        : String(error);
  }
}

/** What a safe path component looks like: one name, no separator, never '.' or '..'. */
function expectSafeComponent(name: string): void {
  expect(name).not.toBe('');
  expect(name).not.toBe('.');
  expect(name).not.toBe('..');
  expect(name.startsWith('.')).toBe(false);
  expect(name).not.toMatch(/[/\\]/);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point
  expect(name).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  expect(Buffer.byteLength(name, 'utf8')).toBeLessThanOrEqual(MAX_NAME_BYTES);
}

describe('folders of each storage structure', () => {
  const expected: Record<StorageStructure, string[]> = {
    flat: [],
    patient: ['PAT-001'],
    study: ['1.2.826.0.1.3680043.9.7777.10'],
    series: ['PAT-001', '1.2.826.0.1.3680043.9.7777.10', '1.2.826.0.1.3680043.9.7777.10.1'],
    date: ['2026', '01', '02'],
  };

  it('covers every structure the settings offer', () => {
    expect(Object.keys(expected).sort()).toEqual([...STORAGE_STRUCTURES].sort());
  });

  it.each(STORAGE_STRUCTURES)('puts %s files where the specification says', (structure) => {
    expect(folderFor(structure, ATTRIBUTES)).toEqual(expected[structure]);
  });

  it('pads the month and day of the date structure to two digits', () => {
    const received = new Date(2031, 10, 30, 0, 0, 0, 0);
    expect(folderFor('date', { ...ATTRIBUTES, receivedAt: received })).toEqual([
      '2031',
      '11',
      '30',
    ]);
  });

  it('names the patient folder with the fallback name when the Patient ID is missing or blank', () => {
    for (const patientId of [undefined, '', '   ']) {
      expect(folderFor('patient', { ...ATTRIBUTES, patientId })).toEqual([FALLBACK_FOLDER]);
      expect(folderFor('series', { ...ATTRIBUTES, patientId })[0]).toBe(FALLBACK_FOLDER);
    }
  });
});

describe('file names of each naming', () => {
  const expected: Record<FileNaming, string> = {
    sop_uid: '1.2.826.0.1.3680043.9.7777.10.1.5.dcm',
    instance_number: '0007.dcm',
    timestamp: '20260102_193000_123000.dcm',
    sequential: '00000042.dcm',
  };

  it('covers every naming the settings offer', () => {
    expect(Object.keys(expected).sort()).toEqual([...FILE_NAMINGS].sort());
  });

  it.each(FILE_NAMINGS)('names a %s file as the specification says', (naming) => {
    expect(fileNameFor(naming, ATTRIBUTES)).toBe(expected[naming]);
  });

  it('zero-pads instance numbers to four digits and keeps longer ones whole', () => {
    const name = (instanceNumber: number | undefined) =>
      fileNameFor('instance_number', { ...ATTRIBUTES, instanceNumber });
    expect(name(1)).toBe('0001.dcm');
    expect(name(2)).toBe('0002.dcm');
    expect(name(9999)).toBe('9999.dcm');
    expect(name(123456)).toBe('123456.dcm');
  });

  it('writes the timestamp as YYYYMMDD_HHMMSS_micro with every field zero-padded', () => {
    const received = new Date(2027, 2, 4, 5, 6, 7, 8);
    expect(fileNameFor('timestamp', { ...ATTRIBUTES, receivedAt: received })).toBe(
      '20270304_050607_008000.dcm',
    );
    expect(
      fileNameFor('timestamp', { ...ATTRIBUTES, receivedAt: new Date(2026, 0, 2, 19, 30, 0, 0) }),
    ).toMatch(/^\d{8}_\d{6}_\d{6}\.dcm$/);
  });

  it('numbers sequential files from the persisted counter', () => {
    const names = [1, 2, 3, 99_999_999].map((sequenceNumber) =>
      fileNameFor('sequential', { ...ATTRIBUTES, sequenceNumber }),
    );
    expect(names).toEqual(['00000001.dcm', '00000002.dcm', '00000003.dcm', '99999999.dcm']);
  });

  it('makes collision-safe names: the first keeps its name, the next ones get _1, _2, ...', () => {
    expect(withCollisionSuffix('0001.dcm', 0)).toBe('0001.dcm');
    expect(withCollisionSuffix('0001.dcm', 1)).toBe('0001_1.dcm');
    expect(withCollisionSuffix('0001.dcm', 2)).toBe('0001_2.dcm');
    const names = new Set(Array.from({ length: 50 }, (_, i) => withCollisionSuffix('0001.dcm', i)));
    expect(names.size).toBe(50);
  });

  it('joins folder and name into a relative path for every structure and naming', () => {
    for (const structure of STORAGE_STRUCTURES) {
      for (const naming of FILE_NAMINGS) {
        const path = relativePathFor(structure, naming, ATTRIBUTES);
        expect(path).toBe(
          join(...folderFor(structure, ATTRIBUTES), fileNameFor(naming, ATTRIBUTES)),
        );
        expect(isAbsolute(path)).toBe(false);
      }
    }
    expect(relativePathFor('series', 'sop_uid', ATTRIBUTES)).toBe(
      join(
        'PAT-001',
        '1.2.826.0.1.3680043.9.7777.10',
        '1.2.826.0.1.3680043.9.7777.10.1',
        '1.2.826.0.1.3680043.9.7777.10.1.5.dcm',
      ),
    );
  });
});

describe('checkedUid', () => {
  it('accepts digits and dots, and keeps leading zeros in a component (real devices send them)', () => {
    expect(checkedUid('1.2.840.10008.5.1.4.1.1.2', 'SOP Instance UID')).toBe(
      '1.2.840.10008.5.1.4.1.1.2',
    );
    expect(checkedUid('1.02.003.0004', 'Study Instance UID')).toBe('1.02.003.0004');
  });

  it('removes trailing NUL and space padding', () => {
    expect(checkedUid('1.2.3\0', 'f')).toBe('1.2.3');
    expect(checkedUid('1.2.3 ', 'f')).toBe('1.2.3');
    expect(checkedUid('1.2.3\0 \0', 'f')).toBe('1.2.3');
  });

  it('accepts 64 characters and refuses 65', () => {
    expect(checkedUid('1'.repeat(64), 'f')).toBe('1'.repeat(64));
    expect(checkedUid(`${'1'.repeat(64)}\0`, 'f')).toBe('1'.repeat(64));
    expect(codeOf(() => checkedUid('1'.repeat(65), 'f'))).toBe('ERR_INVALID_UID');
  });

  it.each([
    ['empty', ''],
    ['only padding', '\0 '],
    ['letters', 'abc'],
    ['a letter in a component', '1.2.3a'],
    ['a parent reference', '..'],
    ['the current folder', '.'],
    ['a path climbing out', '../../etc'],
    ['a slash', '1.2/3'],
    ['a backslash', '1.2\\3'],
    ['an absolute path', '/1.2.3'],
    ['an embedded NUL', '1.2\u00003'],
    ['leading space', ' 1.2.3'],
    ['a newline', '1.2.3\n'],
    ['a non-ASCII digit', '1.2.\u0663'],
  ])('refuses %s with ERR_INVALID_UID', (_what, uid) => {
    expect(codeOf(() => checkedUid(uid, 'Series Instance UID'))).toBe('ERR_INVALID_UID');
  });

  it('names the field in the error', () => {
    try {
      checkedUid('abc', 'Study Instance UID');
      expect.unreachable('checkedUid accepted abc');
    } catch (error) {
      expect(hasCode(error, 'ERR_INVALID_UID')).toBe(true);
      expect((error as { details: { field?: unknown } }).details.field).toBe('Study Instance UID');
    }
  });

  it('returns, for any input, either a refusal or one safe name of digits and dots', () => {
    const pieces = fc.constantFrom('1', '0', '9', '.', '..', '/', '\\', '\0', ' ', 'a', '\u00e9');
    const input = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.array(pieces, { maxLength: 80 }).map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(input, (uid) => {
        let result: string;
        try {
          result = checkedUid(uid, 'f');
        } catch (error) {
          expect(hasCode(error, 'ERR_INVALID_UID')).toBe(true);
          return;
        }
        expect(result).toMatch(/^[0-9.]{1,64}$/);
        expect(result).not.toMatch(/^\.+$/);
        expect(uid.startsWith(result)).toBe(true);
        expect(uid.slice(result.length)).toMatch(/^[\0 ]*$/);
      }),
      RUN,
    );
  });

  it('accepts every well-formed UID with any trailing padding', () => {
    const uid = fc
      .array(fc.nat({ max: 99_999_999 }), { minLength: 1, maxLength: 12 })
      .map((parts) => parts.join('.'))
      .filter((text) => text.length <= 64);
    const padding = fc.constantFrom('', '\0', ' ', ' \0');
    fc.assert(
      fc.property(uid, padding, (value, pad) => {
        expect(checkedUid(value + pad, 'f')).toBe(value);
      }),
      RUN,
    );
  });
});

describe('encodeComponent', () => {
  it('keeps plain identifiers as they are', () => {
    expect(encodeComponent('PAT-001')).toBe('PAT-001');
    expect(encodeComponent('id_11111')).toBe('id_11111');
    expect(encodeComponent('4MR1')).toBe('4MR1');
    expect(encodeComponent('a.b')).toBe('a.b');
  });

  it('encodes separators, parent references and control characters', () => {
    for (const text of ['../../etc/passwd', '..', '.', '...', 'a/b', 'a\\b', 'a\0b', '\u0001x']) {
      const name = encodeComponent(text);
      expectSafeComponent(name);
      expect(resolveInside(ROOT, join(name, 'x.dcm'))).toBe(join(ROOT, name, 'x.dcm'));
    }
    expect(encodeComponent('../../etc/passwd')).not.toContain('/');
    expect(encodeComponent('a/b')).toBe('a%2Fb');
    expect(encodeComponent('a\0b')).toBe('a%00b');
  });

  it('gives the fallback folder for a missing or blank value', () => {
    expect(encodeComponent(undefined)).toBe(FALLBACK_FOLDER);
    expect(encodeComponent('')).toBe(FALLBACK_FOLDER);
    expect(encodeComponent('  ')).toBe(FALLBACK_FOLDER);
  });

  it('cuts a long value to the name limit, marked, without leaving half an escape', () => {
    for (const text of ['x'.repeat(500), '\u6f22'.repeat(200), `${'x'.repeat(197)}/////`]) {
      const name = encodeComponent(text);
      expectSafeComponent(name);
      expect(name.endsWith('~')).toBe(true);
      expect(name.slice(0, -1)).toMatch(/^(?:[A-Za-z0-9_.-]|%[0-9A-F]{2})*$/);
    }
  });

  it('never yields a separator, dot name, control character or over-long name', () => {
    const pieces = fc.constantFrom(
      '../',
      '..',
      '.',
      '/',
      '\\',
      '\0',
      '%',
      '~',
      ' ',
      '\u00e9',
      '\u{1f600}',
    );
    const input = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300, size: 'max' }),
      fc.string({ unit: 'grapheme', maxLength: 120, size: 'max' }),
      fc
        .array(fc.oneof(pieces, fc.string({ maxLength: 4 })), { maxLength: 120 })
        .map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(input, (text) => {
        const name = encodeComponent(text);
        expectSafeComponent(name);
        expect(name).toMatch(/^[A-Za-z0-9_.%~-]+$/);
        const path = resolveInside(ROOT, join(name, 'file.dcm'));
        expect(relative(ROOT, path).split(sep)).toEqual([name, 'file.dcm']);
      }),
      RUN,
    );
  });

  it('gives different values different names while they fit the limit', () => {
    const text = fc.string({ unit: 'binary', minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(text, text, (a, b) => {
        fc.pre(a.trim() !== b.trim() && a.trim() !== '' && b.trim() !== '');
        expect(encodeComponent(a)).not.toBe(encodeComponent(b));
      }),
      RUN,
    );
  });
});

describe('resolveInside', () => {
  it('resolves a relative path under the root', () => {
    expect(resolveInside(ROOT, join('a', 'b', 'c.dcm'))).toBe(join(ROOT, 'a', 'b', 'c.dcm'));
    expect(resolveInside(ROOT, 'a/./b/../c.dcm')).toBe(join(ROOT, 'a', 'c.dcm'));
  });

  it.each([
    ['the parent', '..'],
    ['a parent reference at the start', '../x.dcm'],
    ['a climb past the root', 'a/../../x.dcm'],
    ['a deep climb', '1.2/../../../../etc/passwd'],
    ['an absolute path', '/etc/passwd'],
    ['an embedded NUL', 'a\0b/x.dcm'],
  ])('refuses %s with ERR_INVALID_ARGUMENT', (_what, path) => {
    expect(codeOf(() => resolveInside(ROOT, path))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => assertInside(path))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('returns, for any input, either a refusal or a path inside the root', () => {
    const pieces = fc.constantFrom('..', '.', '/', 'a', 'b', '\0', '\\', '1.2');
    const input = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.array(pieces, { maxLength: 20 }).map((parts) => parts.join('')),
      fc.array(pieces, { maxLength: 10 }).map((parts) => parts.join('/')),
    );
    fc.assert(
      fc.property(input, (path) => {
        let resolved: string;
        try {
          resolved = resolveInside(ROOT, path);
        } catch (error) {
          expect(hasCode(error, 'ERR_INVALID_ARGUMENT')).toBe(true);
          return;
        }
        const back = relative(ROOT, resolved);
        expect(back === '..' || back.startsWith(`..${sep}`)).toBe(false);
        expect(isAbsolute(back)).toBe(false);
        expect(resolved.startsWith(ROOT)).toBe(true);
      }),
      RUN,
    );
  });

  it('keeps every path made from data set values inside the root', () => {
    const uid = fc
      .array(fc.nat({ max: 9999 }), { minLength: 1, maxLength: 8 })
      .map((parts) => parts.join('.'));
    const structure = fc.constantFrom(...STORAGE_STRUCTURES);
    const naming = fc.constantFrom(...FILE_NAMINGS);
    fc.assert(
      fc.property(
        structure,
        naming,
        fc.option(fc.string({ unit: 'binary', maxLength: 100 }), { nil: undefined }),
        uid,
        uid,
        uid,
        fc.option(fc.integer({ min: -5, max: 1_000_000 }), { nil: undefined }),
        (s, n, patientId, studyInstanceUid, seriesInstanceUid, sopInstanceUid, instanceNumber) => {
          const attributes: PathAttributes = {
            patientId,
            studyInstanceUid,
            seriesInstanceUid,
            sopInstanceUid,
            instanceNumber,
            receivedAt: RECEIVED_AT,
            sequenceNumber: 1,
          };
          const path = resolveInside(ROOT, relativePathFor(s, n, attributes));
          const parts = relative(ROOT, path).split(sep);
          expect(parts).toHaveLength(folderFor(s, attributes).length + 1);
          for (const part of parts) expectSafeComponent(part);
        },
      ),
      RUN,
    );
  });
});
