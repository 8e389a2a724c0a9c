/**
 * Checks `DatasetWriter`: the tokens read from every test file (all values collected) are
 * written back to the same bytes and read back to the same tokens; a few tokens give bytes
 * written out by hand here for each encoding, including a UN sequence (CP-246) in big endian;
 * tokens out of place or inconsistent are refused; and random data sets of several VRs and
 * nested sequences of defined and undefined length round-trip through writer and reader in
 * Explicit VR LE, Explicit VR BE and Implicit VR LE.
 *
 * Layer: dicom/writer (unit test).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DicomServerError } from '../../errors.js';
import { implicitVrOf } from '../dictionary.js';
import { hasPart10Header, readFileMeta } from '../part10.js';
import { DatasetReader, type DatasetToken } from '../reader/dataset-reader.js';
import { transferSyntaxProperties } from '../transfer-syntax.js';
import { hasLongLength, type Vr } from '../vr.js';
import { type DatasetEncoding, DatasetWriter, encodeTokens } from './dataset-writer.js';

const TESTDATA = new URL('../../../../shared/testdata/', import.meta.url);
const FILES = (['dicom', 'dicom-parse-only'] as const).flatMap((dir) =>
  readdirSync(new URL(`${dir}/`, TESTDATA))
    .filter((name) => name.endsWith('.dcm'))
    .sort()
    .map((name) => `${dir}/${name}`),
);

const EXPLICIT_LE: DatasetEncoding = { isExplicitVr: true, isLittleEndian: true };
const EXPLICIT_BE: DatasetEncoding = { isExplicitVr: true, isLittleEndian: false };
const IMPLICIT_LE: DatasetEncoding = { isExplicitVr: false, isLittleEndian: true };

const ROWS = 0x00280010;
const CONTENT_SEQUENCE = 0x0040a730;
const ENCAPSULATED_DOCUMENT = 0x00420011;
const PRIVATE_TAG = 0x00091010;
const PIXEL_DATA = 0x7fe00010;

/** A test file's data set (inflated when deflated) and its encoding; bare files are implicit. */
function loadDataset(path: string): { bytes: Buffer; encoding: DatasetEncoding } {
  const file = readFileSync(new URL(path, TESTDATA));
  if (!hasPart10Header(file)) return { bytes: file, encoding: IMPLICIT_LE };
  const meta = readFileMeta(file);
  const syntax = transferSyntaxProperties(meta.transferSyntaxUid ?? '');
  if (syntax === undefined) throw new Error(`${path}: unknown transfer syntax`);
  const stored = file.subarray(meta.datasetOffset);
  return { bytes: syntax.isDeflated ? inflateRawSync(stored) : stored, encoding: syntax };
}

/** Every token of `bytes`, all values and fragments collected. */
function readTokens(bytes: Buffer, encoding: DatasetEncoding): DatasetToken[] {
  const tokens: DatasetToken[] = [];
  const reader = new DatasetReader({
    isExplicitVr: encoding.isExplicitVr,
    isLittleEndian: encoding.isLittleEndian,
    maxValueLength: Number.POSITIVE_INFINITY,
    collectFragments: true,
    onToken: (token) => tokens.push(token),
  });
  reader.push(bytes);
  reader.end();
  return tokens;
}

/** Tokens with values as hex: equal bytes compare equal whatever buffers hold them. */
function comparable(tokens: readonly DatasetToken[]): unknown[] {
  return tokens.map((token) =>
    'value' in token && token.value !== undefined
      ? { ...token, value: token.value.toString('hex') }
      : token,
  );
}

/** Where two buffers first differ, or -1 when they are equal. */
function firstDifference(a: Buffer, b: Buffer): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : length;
}

function hexOf(spaced: string): string {
  return spaced.replace(/\s+/g, '');
}

describe('DatasetWriter on the test files', () => {
  it('finds the test files', () => {
    expect(FILES.length).toBeGreaterThanOrEqual(22);
  });

  it.each(FILES)('writes the tokens read from %s back to its bytes', (path) => {
    const { bytes, encoding } = loadDataset(path);
    const writer = new DatasetWriter(encoding);
    const parts = readTokens(bytes, encoding).flatMap((token) => writer.write(token));
    writer.end();
    expect(writer.offset).toBe(bytes.length);
    expect(firstDifference(Buffer.concat(parts), bytes)).toBe(-1);
  });

  it.each(FILES)('reads back the same tokens from what it wrote of %s', (path) => {
    const { bytes, encoding } = loadDataset(path);
    const tokens = readTokens(bytes, encoding);
    const written = encodeTokens(tokens, encoding);
    expect(comparable(readTokens(written, encoding))).toEqual(comparable(tokens));
  });

  it('passes values through as views, not copies', () => {
    const { bytes, encoding } = loadDataset('dicom/CT_small.dcm');
    const writer = new DatasetWriter(encoding);
    let checked = 0;
    for (const token of readTokens(bytes, encoding)) {
      const parts = writer.write(token);
      if (token.type === 'element' && token.length > 0) {
        expect(parts.at(-1)).toBe(token.value);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(100);
  });
});

describe('DatasetWriter encodings', () => {
  const rows: DatasetToken = {
    type: 'element',
    tag: ROWS,
    vr: 'US',
    length: 2,
    offset: 0,
    value: Buffer.from([0x00, 0x02]),
  };
  const document: DatasetToken = {
    type: 'element',
    tag: ENCAPSULATED_DOCUMENT,
    vr: 'OB',
    length: 2,
    offset: 0,
    value: Buffer.from([0x01, 0x02]),
  };

  it.each([
    [
      'Explicit VR LE',
      EXPLICIT_LE,
      '2800 1000 5553 0200 0002',
      '4200 1100 4f42 0000 02000000 0102',
    ],
    [
      'Explicit VR BE',
      EXPLICIT_BE,
      '0028 0010 5553 0002 0002',
      '0042 0011 4f42 0000 00000002 0102',
    ],
    ['Implicit VR LE', IMPLICIT_LE, '2800 1000 02000000 0002', '4200 1100 02000000 0102'],
  ])('writes element headers in %s', (_name, encoding, us, ob) => {
    expect(encodeTokens([rows], encoding).toString('hex')).toBe(hexOf(us));
    expect(encodeTokens([document], encoding).toString('hex')).toBe(hexOf(ob));
  });

  it('writes a sequence of undefined length holding an item of defined length', () => {
    const tokens: DatasetToken[] = [
      { type: 'sequence-start', tag: CONTENT_SEQUENCE, vr: 'SQ', length: undefined, offset: 0 },
      { type: 'item-start', length: 10, offset: 12 },
      rows,
      { type: 'item-end', hasDelimiter: false },
      { type: 'sequence-end', hasDelimiter: true },
    ];
    expect(encodeTokens(tokens, EXPLICIT_LE).toString('hex')).toBe(
      hexOf(
        '4000 30a7 5351 0000 ffffffff  feff 00e0 0a000000  2800 1000 5553 0200 0002  feff dde0 00000000',
      ),
    );
  });

  it('writes the content of a UN sequence in Implicit VR Little Endian, even in a big endian data set', () => {
    const tokens: DatasetToken[] = [
      { type: 'sequence-start', tag: PRIVATE_TAG, vr: 'UN', length: undefined, offset: 0 },
      { type: 'item-start', length: undefined, offset: 12 },
      rows,
      { type: 'item-end', hasDelimiter: true },
      { type: 'sequence-end', hasDelimiter: true },
      rows,
    ];
    expect(encodeTokens(tokens, EXPLICIT_BE).toString('hex')).toBe(
      hexOf(
        `0009 1010 554e 0000 ffffffff  feff 00e0 ffffffff  2800 1000 02000000 0002
         feff 0de0 00000000  feff dde0 00000000  0028 0010 5553 0002 0002`,
      ),
    );
  });

  it('writes encapsulated fragments', () => {
    const tokens: DatasetToken[] = [
      { type: 'fragments-start', tag: PIXEL_DATA, vr: 'OB', offset: 0 },
      { type: 'fragment', length: 0, offset: 12, value: Buffer.alloc(0) },
      { type: 'fragment', length: 4, offset: 20, value: Buffer.from([1, 2, 3, 4]) },
      { type: 'fragments-end' },
    ];
    expect(encodeTokens(tokens, EXPLICIT_LE).toString('hex')).toBe(
      hexOf(
        'e07f 1000 4f42 0000 ffffffff  feff 00e0 00000000  feff 00e0 04000000 01020304  feff dde0 00000000',
      ),
    );
  });
});

describe('DatasetWriter refuses', () => {
  const sequence = (length: number | undefined): DatasetToken => ({
    type: 'sequence-start',
    tag: CONTENT_SEQUENCE,
    vr: 'SQ',
    length,
    offset: 0,
  });
  const item = (length: number | undefined): DatasetToken => ({
    type: 'item-start',
    length,
    offset: 0,
  });
  const element = (vr: Vr, length: number, value?: Buffer): DatasetToken => ({
    type: 'element',
    tag: ROWS,
    vr,
    length,
    offset: 0,
    ...(value === undefined ? {} : { value }),
  });

  it.each<[string, DatasetToken[]]>([
    ['an element without its value (skipped when read)', [element('US', 2)]],
    ['a value whose length is not the one declared', [element('US', 4, Buffer.alloc(2))]],
    ['a value too long for a 16-bit length', [element('US', 0x10000, Buffer.alloc(0x10000))]],
    [
      'an element with an item tag',
      [
        {
          type: 'element',
          tag: 0xfffee000,
          vr: 'UN',
          length: 0,
          offset: 0,
          value: Buffer.alloc(0),
        },
      ],
    ],
    ['an item at the top level', [item(0)]],
    ['an element directly in a sequence', [sequence(undefined), element('US', 2, Buffer.alloc(2))]],
    ['a sequence end at the top level', [{ type: 'sequence-end', hasDelimiter: true }]],
    [
      'a sequence end inside an item',
      [sequence(undefined), item(undefined), { type: 'sequence-end', hasDelimiter: true }],
    ],
    [
      'a fragment outside encapsulated pixel data',
      [{ type: 'fragment', length: 0, offset: 0, value: Buffer.alloc(0) }],
    ],
    [
      'a fragment without its value',
      [
        { type: 'fragments-start', tag: PIXEL_DATA, vr: 'OB', offset: 0 },
        { type: 'fragment', length: 4, offset: 0 },
      ],
    ],
    [
      'encapsulated data with a VR of 16-bit length',
      [{ type: 'fragments-start', tag: PIXEL_DATA, vr: 'US', offset: 0 }],
    ],
    [
      'a sequence with VR OB',
      [{ type: 'sequence-start', tag: CONTENT_SEQUENCE, vr: 'OB', length: 0, offset: 0 }],
    ],
    [
      'a sequence of undefined length ended without a delimiter',
      [sequence(undefined), { type: 'sequence-end', hasDelimiter: false }],
    ],
    [
      'a sequence of defined length ended with a delimiter',
      [sequence(0), { type: 'sequence-end', hasDelimiter: true }],
    ],
    [
      'an item holding more than its length',
      [
        sequence(undefined),
        item(4),
        element('US', 2, Buffer.alloc(2)),
        { type: 'item-end', hasDelimiter: false },
      ],
    ],
    [
      'a sequence holding less than its length',
      [sequence(8), { type: 'sequence-end', hasDelimiter: false }],
    ],
  ])('%s', (_what, tokens) => {
    const writer = new DatasetWriter(EXPLICIT_LE);
    const error = (() => {
      try {
        for (const token of tokens) writer.write(token);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(DicomServerError);
    expect((error as DicomServerError).code).toBe('ERR_INVALID_ARGUMENT');
  });

  it('a data set ending inside a sequence, at end()', () => {
    const writer = new DatasetWriter(IMPLICIT_LE);
    writer.write(sequence(undefined));
    expect(() => writer.end()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });

  it('nothing of a long value in Implicit VR, whose lengths all have 32 bits', () => {
    const long = element('US', 0x10000, Buffer.alloc(0x10000));
    expect(encodeTokens([long], IMPLICIT_LE)).toHaveLength(8 + 0x10000);
  });
});

/** A random data set: what the property test writes, then expects to read back. */
type Node =
  | { readonly kind: 'element'; readonly tag: number; readonly vr: Vr; readonly value: Uint8Array }
  | {
      readonly kind: 'sequence';
      readonly form: 'SQ defined' | 'SQ undefined' | 'UN undefined';
      readonly tag: number;
      readonly items: readonly Item[];
    }
  | { readonly kind: 'fragments'; readonly fragments: readonly Uint8Array[] };
interface Item {
  readonly isDefinedLength: boolean;
  readonly nodes: readonly Node[];
}

/**
 * One standard tag per VR, whose dictionary VR is that VR: in Implicit VR (and in UN sequences)
 * the reader takes the VR from the dictionary. The private tag is UN to the dictionary.
 */
const ELEMENT_TAGS: readonly (readonly [number, Vr])[] = [
  [0x00080005, 'CS'],
  [0x00080020, 'DA'],
  [0x00080030, 'TM'],
  [0x0008002a, 'DT'],
  [0x00080018, 'UI'],
  [0x00080050, 'SH'],
  [0x00080054, 'AE'],
  [0x00080070, 'LO'],
  [0x00080081, 'ST'],
  [0x00080090, 'PN'],
  [0x00080108, 'LT'],
  [0x0008010e, 'UR'],
  [0x00080119, 'UC'],
  [0x00080301, 'US'],
  [0x00080309, 'UL'],
  [0x0008030e, 'UT'],
  [0x00081160, 'IS'],
  [0x00081163, 'FD'],
  [0x00089459, 'FL'],
  [0x00101010, 'AS'],
  [0x00101020, 'DS'],
  [0x00142210, 'OB'],
  [0x00181638, 'OF'],
  [0x00186020, 'SL'],
  [0x00189219, 'SS'],
  [0x00209165, 'AT'],
  [0x00281201, 'OW'],
  [0x00660040, 'OL'],
  [0x0070150d, 'OD'],
  [0x7fe00001, 'OV'],
  [PRIVATE_TAG, 'UN'],
];
/** Tags the dictionary says are SQ: the only ones Implicit VR can give a defined length. */
const SEQUENCE_TAGS = [CONTENT_SEQUENCE, 0x00081115, 0x00081199];

const nodeArbitraries = fc.letrec<{ node: Node; item: Item; dataset: Node[] }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', maxDepth: 4, depthIdentifier: 'dataset' },
    fc
      .tuple(fc.constantFrom(...ELEMENT_TAGS), fc.uint8Array({ maxLength: 12 }))
      .map(([[tag, vr], value]) => ({ kind: 'element' as const, tag, vr, value })),
    fc
      .record({
        kind: fc.constant('sequence' as const),
        form: fc.constantFrom(
          'SQ defined' as const,
          'SQ undefined' as const,
          'UN undefined' as const,
        ),
        tag: fc.constantFrom(...SEQUENCE_TAGS, PRIVATE_TAG),
        items: fc.array(tie('item'), { maxLength: 3 }),
      })
      // The private tag, UN to the dictionary, is read back as a sequence only when undefined
      // length says so.
      .filter((sequence) => sequence.form !== 'SQ defined' || sequence.tag !== PRIVATE_TAG),
    fc.record({
      kind: fc.constant('fragments' as const),
      fragments: fc.array(fc.uint8Array({ maxLength: 9 }), { maxLength: 3 }),
    }),
  ),
  item: fc.record({
    isDefinedLength: fc.boolean(),
    nodes: fc.array(tie('node'), { maxLength: 4 }),
  }),
  dataset: fc.array(tie('node'), { maxLength: 6 }),
}));

/**
 * Appends the tokens the reader should give for `nodes` written from `offset` on, lengths and
 * offsets worked out here from PS3.5 §7; returns where the nodes end.
 */
function expectedTokens(
  nodes: readonly Node[],
  encoding: DatasetEncoding,
  offset: number,
  out: DatasetToken[],
): number {
  let at = offset;
  for (const node of nodes) {
    const headerLength = (vr: Vr) => (encoding.isExplicitVr && hasLongLength(vr) ? 12 : 8);
    switch (node.kind) {
      case 'element': {
        const value = Buffer.from(node.value);
        out.push({
          type: 'element',
          tag: node.tag,
          vr: node.vr,
          length: value.length,
          offset: at,
          value,
        });
        at += headerLength(node.vr) + value.length;
        break;
      }
      case 'sequence': {
        const isUn = node.form === 'UN undefined';
        const isDefined = node.form === 'SQ defined';
        // Only an explicit VR header can say UN; in Implicit VR it is a plain sequence.
        const vr = isUn && encoding.isExplicitVr ? 'UN' : 'SQ';
        const content = isUn ? IMPLICIT_LE : encoding;
        const start = at;
        const index =
          out.push({
            type: 'sequence-start',
            tag: node.tag,
            vr,
            length: undefined,
            offset: start,
          }) - 1;
        const contentStart = start + headerLength('SQ');
        at = contentStart;
        for (const item of node.items) {
          const itemIndex = out.push({ type: 'item-start', length: undefined, offset: at }) - 1;
          const end = expectedTokens(item.nodes, content, at + 8, out);
          if (item.isDefinedLength)
            out[itemIndex] = { type: 'item-start', length: end - at - 8, offset: at };
          out.push({ type: 'item-end', hasDelimiter: !item.isDefinedLength });
          at = end + (item.isDefinedLength ? 0 : 8);
        }
        if (isDefined) {
          out[index] = {
            type: 'sequence-start',
            tag: node.tag,
            vr,
            length: at - contentStart,
            offset: start,
          };
        }
        out.push({ type: 'sequence-end', hasDelimiter: !isDefined });
        at += isDefined ? 0 : 8;
        break;
      }
      case 'fragments': {
        out.push({ type: 'fragments-start', tag: PIXEL_DATA, vr: 'OB', offset: at });
        at += headerLength('OB');
        for (const fragment of node.fragments) {
          const value = Buffer.from(fragment);
          out.push({ type: 'fragment', length: value.length, offset: at, value });
          at += 8 + value.length;
        }
        out.push({ type: 'fragments-end' });
        at += 8;
        break;
      }
    }
  }
  return at;
}

describe('DatasetWriter and DatasetReader on random data sets', () => {
  it('uses tags whose dictionary VR is the one written', () => {
    for (const [tag, vr] of ELEMENT_TAGS) expect(implicitVrOf(tag)).toBe(vr);
    for (const tag of SEQUENCE_TAGS) expect(implicitVrOf(tag)).toBe('SQ');
    expect(implicitVrOf(PIXEL_DATA)).toBe('OB');
  });

  it('reads back what it wrote, in Explicit VR LE, Explicit VR BE and Implicit VR LE', () => {
    fc.assert(
      fc.property(
        nodeArbitraries.dataset,
        fc.constantFrom(EXPLICIT_LE, EXPLICIT_BE, IMPLICIT_LE),
        (nodes, encoding) => {
          const tokens: DatasetToken[] = [];
          const end = expectedTokens(nodes, encoding, 0, tokens);
          const bytes = encodeTokens(tokens, encoding);
          expect(bytes.length).toBe(end);
          expect(comparable(readTokens(bytes, encoding))).toEqual(comparable(tokens));
        },
      ),
      { numRuns: 500 },
    );
  });
});
