/**
 * Checks `DatasetReader` on every file of `shared/testdata/dicom/` (after its file meta group):
 * each parses to the end, gives the same tokens however its bytes are cut into chunks, and for a
 * few files gives the elements and sequence/item nesting that DCMTK's `dcmdump` reports. Then the
 * odd files of `dicom-parse-only/` (CP-246 UN sequence, implicit VR private sequences, a bare data
 * set), and the bounds: nesting depth, lengths overrunning their container, a 4 GB element, bad
 * VRs, misplaced delimiters, truncation, `stopAt`, `collect` and `maxValueLength`. Last,
 * `isInputTransient`: input pushed through one reused buffer, overwritten after each push,
 * gives the tokens of input left alone.
 *
 * Layer: dicom/reader (unit test). Malformed data sets are built byte by byte here, not with the
 * writer, so that a slip in the writer cannot hide one in the reader.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../../test/helpers/dcmtk.js';
import { DicomServerError, type ErrorCode } from '../../errors.js';
import { hasPart10Header, readFileMeta } from '../part10.js';
import { formatTag } from '../tag.js';
import { transferSyntaxProperties } from '../transfer-syntax.js';
import { DatasetReader, type DatasetReaderOptions, type DatasetToken } from './dataset-reader.js';

const TESTDATA = new URL('../../../../shared/testdata/', import.meta.url);
const STORABLE = readdirSync(new URL('dicom/', TESTDATA))
  .filter((name) => name.endsWith('.dcm'))
  .sort();

const SOP_CLASS_UID = 0x00080016;
const CONTENT_SEQUENCE = 0x0040a730;
const ENCAPSULATED_DOCUMENT = 0x00420011;
const PIXEL_DATA = 0x7fe00010;
const ITEM = 0xfffee000;
const ITEM_DELIMITATION = 0xfffee00d;
const SEQUENCE_DELIMITATION = 0xfffee0dd;
const UNDEFINED_LENGTH = 0xffffffff;

type Encoding = Pick<DatasetReaderOptions, 'isExplicitVr' | 'isLittleEndian'>;
const EXPLICIT_LE: Encoding = { isExplicitVr: true, isLittleEndian: true };
const IMPLICIT_LE: Encoding = { isExplicitVr: false, isLittleEndian: true };

/** Options keeping every value: what read → write needs. */
const COLLECT_ALL = { maxValueLength: Number.POSITIVE_INFINITY, collectFragments: true };

interface TestDataset {
  /** The data set's bytes: after the file meta group, inflated when deflated. */
  readonly bytes: Buffer;
  readonly encoding: Encoding;
  readonly path: string;
  readonly sopClassUid: string | undefined;
}

/** A test file's data set and how it is encoded; a file without a preamble is Implicit VR LE. */
function loadDataset(dir: 'dicom' | 'dicom-parse-only', name: string): TestDataset {
  const path = fileURLToPath(new URL(`${dir}/${name}`, TESTDATA));
  const file = readFileSync(path);
  if (!hasPart10Header(file)) {
    return { bytes: file, encoding: IMPLICIT_LE, path, sopClassUid: undefined };
  }
  const meta = readFileMeta(file);
  const syntax = transferSyntaxProperties(meta.transferSyntaxUid ?? '');
  if (syntax === undefined) throw new Error(`${name}: unknown transfer syntax`);
  const stored = file.subarray(meta.datasetOffset);
  return {
    bytes: syntax.isDeflated ? inflateRawSync(stored) : stored,
    encoding: { isExplicitVr: syntax.isExplicitVr, isLittleEndian: syntax.isLittleEndian },
    path,
    sopClassUid: meta.mediaStorageSopClassUid,
  };
}

/** Pushes each chunk, then ends the data set; returns every token. */
function readTokens(
  chunks: readonly Buffer[],
  encoding: Encoding,
  options: Partial<DatasetReaderOptions> = COLLECT_ALL,
): DatasetToken[] {
  const tokens: DatasetToken[] = [];
  const reader = new DatasetReader({ ...encoding, ...options, onToken: (t) => tokens.push(t) });
  for (const chunk of chunks) reader.push(chunk);
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

/** `bytes` cut into chunks of `size` bytes (the last one shorter). */
function chunksOf(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += size) {
    chunks.push(bytes.subarray(start, start + size));
  }
  return chunks;
}

/** `bytes` cut at the given offsets (duplicates give empty chunks). */
function cutAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const bounds = [0, ...[...offsets].sort((a, b) => a - b), bytes.length];
  return bounds.slice(1).map((end, index) => bytes.subarray(bounds[index], end));
}

/** The error `action` throws; fails the test if it throws none or not a DicomServerError. */
function errorOf(action: () => void): DicomServerError {
  try {
    action();
  } catch (error) {
    if (error instanceof DicomServerError) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

/** The error code of reading `bytes` whole, then ending. */
function readError(bytes: Buffer, encoding: Encoding = EXPLICIT_LE): ErrorCode {
  return errorOf(() => readTokens([bytes], encoding)).code;
}

/** An Explicit VR Little Endian element header (12 bytes for VRs with a 32-bit length). */
function header(tag: number, vr: string, length: number): Buffer {
  const isLong = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
  const bytes = Buffer.alloc(isLong ? 12 : 8);
  bytes.writeUInt16LE(tag >>> 16, 0);
  bytes.writeUInt16LE(tag & 0xffff, 2);
  bytes.write(vr, 4, 'latin1');
  if (isLong) bytes.writeUInt32LE(length, 8);
  else bytes.writeUInt16LE(length, 6);
  return bytes;
}

/** An item or delimiter: tag and 32-bit length, little endian. */
function itemHeader(tag: number, length: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeUInt16LE(tag >>> 16, 0);
  bytes.writeUInt16LE(tag & 0xffff, 2);
  bytes.writeUInt32LE(length, 4);
  return bytes;
}

/** A whole Explicit VR LE element with a text value. */
function textElement(tag: number, vr: string, text: string): Buffer {
  const value = Buffer.from(text, 'latin1');
  return Buffer.concat([header(tag, vr, value.length), value]);
}

/**
 * The tree of tokens as lines "depth tag VR length", in dcmdump's terms: a sequence's items one
 * level in, an item's elements one more; undefined length is "u/l"; items carry no VR.
 */
function structureOf(tokens: readonly DatasetToken[], withVr: boolean): string[] {
  const lines: string[] = [];
  let depth = 0;
  const line = (tag: number, vr: string, length: number | undefined) => {
    const shownVr = withVr && tag !== ITEM ? ` ${vr}` : '';
    lines.push(`${depth} ${formatTag(tag)}${shownVr} ${length ?? 'u/l'}`);
  };
  for (const token of tokens) {
    switch (token.type) {
      case 'element':
        line(token.tag, token.vr, token.length);
        break;
      case 'sequence-start':
      case 'fragments-start':
        line(token.tag, token.vr, token.type === 'sequence-start' ? token.length : undefined);
        depth += 1;
        break;
      case 'item-start':
        line(ITEM, '', token.length);
        depth += 1;
        break;
      case 'fragment':
        line(ITEM, '', token.length);
        break;
      case 'item-end':
      case 'sequence-end':
      case 'fragments-end':
        depth -= 1;
        break;
    }
  }
  return lines;
}

/**
 * The same lines from `dcmdump`'s indented data set dump. Delimiters are left out: dcmdump also
 * shows them for items of defined length ("for re-encoding"), and our tokens carry them as flags.
 */
function structureOfDump(dump: string, withVr: boolean): string[] {
  const dataset = dump.slice(dump.indexOf('# Dicom-Data-Set'));
  const lines: string[] = [];
  for (const text of dataset.split('\n')) {
    const match = /^( *)\(([0-9a-f]{4}),([0-9a-f]{4})\) (\S\S) .*#\s*(u\/l|\d+),/.exec(text);
    if (match === null) continue;
    const [, indent = '', group = '', element = '', vr = '', length = ''] = match;
    const tag = Number.parseInt(group + element, 16) >>> 0;
    if (tag === ITEM_DELIMITATION || tag === SEQUENCE_DELIMITATION) continue;
    const shownVr = withVr && tag !== ITEM ? ` ${vr}` : '';
    lines.push(`${indent.length / 2} ${formatTag(tag)}${shownVr} ${length}`);
  }
  return lines;
}

/**
 * The tokens of a run with `onSkippedValue`, each skipped token given as its value the run of
 * byte pieces that follows it.
 */
function withSkippedValues(events: readonly (DatasetToken | Buffer)[]): DatasetToken[] {
  const rebuilt: DatasetToken[] = [];
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    if (Buffer.isBuffer(event)) throw new Error('bytes without a skipped value before them');
    const isSkipped = (event.type === 'element' || event.type === 'fragment') && !event.value;
    if (!isSkipped) {
      rebuilt.push(event);
      continue;
    }
    const pieces: Buffer[] = [];
    while (Buffer.isBuffer(events[i + 1])) pieces.push(events[++i] as Buffer);
    rebuilt.push({ ...event, value: Buffer.concat(pieces) } as DatasetToken);
  }
  return rebuilt;
}

describe('DatasetReader on the test files', () => {
  it('finds the test files', () => {
    expect(STORABLE.length).toBeGreaterThanOrEqual(17);
  });

  it.each(STORABLE)('reads all of %s to the end, its SOP class matching its file meta', (name) => {
    const { bytes, encoding, sopClassUid } = loadDataset('dicom', name);
    const tokens: DatasetToken[] = [];
    const reader = new DatasetReader({
      ...encoding,
      ...COLLECT_ALL,
      onToken: (t) => tokens.push(t),
    });
    reader.push(bytes);
    reader.end();
    expect(reader.offset).toBe(bytes.length);
    const starts = tokens.filter((t) => t.type.endsWith('start')).length;
    const ends = tokens.filter((t) => t.type.endsWith('end')).length;
    expect(ends).toBe(starts);
    const sopClass = tokens.find((t) => t.type === 'element' && t.tag === SOP_CLASS_UID);
    const value = sopClass?.type === 'element' ? sopClass.value : undefined;
    expect(value?.toString('latin1').replace(/[\0 ]+$/, '')).toBe(sopClassUid);
  });

  it.each(STORABLE)(
    'gives the same tokens for %s in 1-byte, odd-sized and random chunks',
    (name) => {
      const { bytes, encoding } = loadDataset('dicom', name);
      const whole = comparable(readTokens([bytes], encoding));
      expect(comparable(readTokens(chunksOf(bytes, 1), encoding))).toEqual(whole);
      for (const size of [3, 7, 13, 251, 4099]) {
        expect(comparable(readTokens(chunksOf(bytes, size), encoding))).toEqual(whole);
      }
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 40 }),
          (offsets) => {
            expect(comparable(readTokens(cutAt(bytes, offsets), encoding))).toEqual(whole);
          },
        ),
        { seed: 0x5eed, numRuns: 20 },
      );
    },
  );

  it.each([
    'CT_small.dcm',
    'rtplan.dcm',
    'test-SR.dcm',
    'MR_small_implicit.dcm',
    'MR_small_bigendian.dcm',
    'JPEG2000.dcm',
  ])('agrees with dcmdump on the elements and nesting of %s', async (name) => {
    const { bytes, encoding, path } = loadDataset('dicom', name);
    const run = await runTool('dcmdump', ['-q', '-dc', '+Qn', path]);
    expect(run.exitCode, run.output).toBe(0);
    // With implicit VR, dcmdump's VRs are its dictionary's, not the file's: compare them only
    // where the file states them.
    const withVr = encoding.isExplicitVr;
    const ours = structureOf(readTokens([bytes], encoding), withVr);
    expect(ours.length).toBeGreaterThan(20);
    expect(ours).toEqual(structureOfDump(run.stdout, withVr));
  });
});

describe('DatasetReader on odd files', () => {
  it('reads a UN sequence of undefined length as a sequence of Implicit VR content (CP-246)', async () => {
    const { bytes, encoding, path } = loadDataset('dicom-parse-only', 'UN_sequence.dcm');
    expect(encoding).toEqual(EXPLICIT_LE);
    const tokens = readTokens([bytes], encoding);
    expect(tokens[0]).toMatchObject({ type: 'sequence-start', tag: 0x4453100c, vr: 'UN' });
    expect(tokens[0]).toHaveProperty('length', undefined);
    // Inside, the VRs come from the dictionary: the content is implicit.
    const uid = tokens.find((t) => t.type === 'element' && t.tag === 0x00081150);
    expect(uid).toMatchObject({ vr: 'UI', value: Buffer.from('1.2.840.10008.5.1.4.1.1.2\0') });
    const run = await runTool('dcmdump', ['-q', '-dc', '+Qn', path]);
    expect(run.exitCode, run.output).toBe(0);
    // dcmdump shows the UN sequence as SQ: compare all but VRs.
    expect(structureOf(tokens, false)).toEqual(structureOfDump(run.stdout, false));
  });

  it('reads private sequences of undefined length in Implicit VR (nested_priv_SQ)', () => {
    const { bytes, encoding } = loadDataset('dicom-parse-only', 'nested_priv_SQ.dcm');
    expect(encoding).toEqual(IMPLICIT_LE);
    const tokens = readTokens([bytes], encoding);
    // (0001,0002) has odd length 9 in the file; dcmdump warns and shows it padded to 10.
    expect(structureOf(tokens, true)).toEqual([
      '0 (0001,0001) SQ u/l',
      '1 (FFFE,E000) u/l',
      '2 (0001,0001) SQ u/l',
      '3 (FFFE,E000) u/l',
      '4 (0001,0001) UN 16',
      '2 (0001,0002) UN 9',
      '0 (7FE0,0010) OB 2',
    ]);
    const innermost = tokens.find((t) => t.type === 'element' && t.tag === 0x00010001);
    expect(innermost?.type === 'element' && innermost.value?.toString('latin1')).toBe(
      'Double Nested SQ',
    );
  });

  it('reads a private sequence of defined length in Implicit VR as a UN value, as dcmdump does (priv_SQ)', () => {
    const { bytes, encoding } = loadDataset('dicom-parse-only', 'priv_SQ.dcm');
    const tokens = readTokens([bytes], encoding);
    expect(structureOf(tokens, true)).toEqual(['0 (3F03,0010) LO 26', '0 (3F03,1001) UN 166']);
    const value = tokens[1]?.type === 'element' ? tokens[1].value : undefined;
    // Its bytes are an item: only the private creator could say they are a sequence.
    expect([value?.readUInt16LE(0), value?.readUInt16LE(2)]).toEqual([ITEM >>> 16, ITEM & 0xffff]);
  });

  it('reads rtstruct_no_meta as a bare Implicit VR LE data set holding what rtstruct.dcm holds', () => {
    const bare = loadDataset('dicom-parse-only', 'rtstruct_no_meta.dcm');
    expect(bare.encoding).toEqual(IMPLICIT_LE);
    const withMeta = loadDataset('dicom', 'rtstruct.dcm');
    // The same elements and values; the two differ only in how sequences and items are ended.
    const contentOf = (tokens: DatasetToken[]) =>
      comparable(tokens).map((token) => {
        const {
          offset: _offset,
          length: _length,
          hasDelimiter: _ends,
          ...rest
        } = token as {
          offset?: number;
          length?: number;
          hasDelimiter?: boolean;
        };
        return rest;
      });
    const bareTokens = readTokens([bare.bytes], bare.encoding);
    expect(bareTokens.some((t) => t.type === 'sequence-start' && t.length === undefined)).toBe(
      true,
    );
    expect(contentOf(bareTokens)).toEqual(
      contentOf(readTokens([withMeta.bytes], withMeta.encoding)),
    );
  });

  it('reads an empty Specific Character Set (empty_charset_LEI)', () => {
    const { bytes, encoding } = loadDataset('dicom-parse-only', 'empty_charset_LEI.dcm');
    const tokens = readTokens([bytes], encoding);
    expect(structureOf(tokens, true)).toEqual(['0 (0008,0005) CS 0', '0 (0008,0008) CS 30']);
    expect(tokens[0]).toMatchObject({ value: Buffer.alloc(0) });
  });
});

/**
 * `levels` Content Sequences nested in each other, each with one item, in Explicit VR LE: 20
 * header bytes a level, then (for undefined length) 16 bytes of delimiters a level.
 */
function nestedSequences(levels: number, isDefinedLength: boolean): Buffer {
  const parts: Buffer[] = [];
  for (let level = 0; level < levels; level++) {
    const itemLength = isDefinedLength ? 20 * (levels - level - 1) : UNDEFINED_LENGTH;
    parts.push(header(CONTENT_SEQUENCE, 'SQ', isDefinedLength ? itemLength + 8 : UNDEFINED_LENGTH));
    parts.push(itemHeader(ITEM, itemLength));
  }
  if (!isDefinedLength) {
    const delimiters = Buffer.concat([
      itemHeader(ITEM_DELIMITATION, 0),
      itemHeader(SEQUENCE_DELIMITATION, 0),
    ]);
    for (let level = 0; level < levels; level++) parts.push(delimiters);
  }
  return Buffer.concat(parts);
}

describe('DatasetReader bounds', () => {
  it.each([true, false])(
    'refuses 10,000 nested sequences at the 65th (defined length: %s)',
    (isDefinedLength) => {
      const bytes = nestedSequences(10_000, isDefinedLength);
      const tokens: DatasetToken[] = [];
      const reader = new DatasetReader({ ...EXPLICIT_LE, onToken: (t) => tokens.push(t) });
      const error = errorOf(() => reader.push(bytes));
      expect(error.code).toBe('ERR_DATASET_TOO_DEEP');
      expect(error.details).toMatchObject({ maxDepth: 64, offset: 64 * 20 });
      expect(tokens.filter((t) => t.type === 'sequence-start')).toHaveLength(64);
    },
  );

  it.each([true, false])(
    'reads 64 nested sequences, and refuses a 4th under maxDepth 3 (defined length: %s)',
    (isDefinedLength) => {
      const tokens = readTokens([nestedSequences(64, isDefinedLength)], EXPLICIT_LE);
      expect(tokens.filter((t) => t.type === 'sequence-end')).toHaveLength(64);
      const error = errorOf(() =>
        readTokens([nestedSequences(4, isDefinedLength)], EXPLICIT_LE, { maxDepth: 3 }),
      );
      expect(error.code).toBe('ERR_DATASET_TOO_DEEP');
    },
  );

  // Each data set ends with the header at fault: the reader must refuse it as soon as it has
  // that header, not once the bytes it declares have streamed past.
  it.each([
    [
      'an element overrunning its item',
      [header(CONTENT_SEQUENCE, 'SQ', 20), itemHeader(ITEM, 12), header(0x00100010, 'PN', 8)],
    ],
    [
      'an element declaring 4 GB in an item of 20 bytes',
      [
        header(CONTENT_SEQUENCE, 'SQ', 28),
        itemHeader(ITEM, 20),
        header(0x00420011, 'OB', 0xfffffff0),
      ],
    ],
    [
      'an item overrunning its sequence',
      [header(CONTENT_SEQUENCE, 'SQ', 16), itemHeader(ITEM, 16)],
    ],
    [
      'a sequence overrunning its item',
      [
        header(CONTENT_SEQUENCE, 'SQ', 40),
        itemHeader(ITEM, 32),
        header(CONTENT_SEQUENCE, 'SQ', 1000),
      ],
    ],
    [
      'a fragment overrunning its item',
      [
        header(CONTENT_SEQUENCE, 'SQ', 48),
        itemHeader(ITEM, 40),
        header(PIXEL_DATA, 'OB', UNDEFINED_LENGTH),
        itemHeader(ITEM, 100),
      ],
    ],
    [
      'an item of undefined length with no room left for its delimiter in its sequence',
      [
        header(CONTENT_SEQUENCE, 'SQ', 24),
        itemHeader(ITEM, UNDEFINED_LENGTH),
        textElement(0x00100010, 'PN', 'Doe^John'),
      ],
    ],
    [
      'a header of undefined length crossing the end of its item',
      [
        header(CONTENT_SEQUENCE, 'SQ', 18),
        itemHeader(ITEM, 10),
        header(CONTENT_SEQUENCE, 'SQ', UNDEFINED_LENGTH),
      ],
    ],
  ])('refuses %s from its header', (_what, parts) => {
    const reader = new DatasetReader({ ...EXPLICIT_LE, onToken: () => {} });
    expect(errorOf(() => reader.push(Buffer.concat(parts))).code).toBe('ERR_DATASET_MALFORMED');
  });

  it('skips the value of an element declaring 4 GB as its bytes arrive, keeping none of it', () => {
    const length = 0xfffffffe;
    const tokens: DatasetToken[] = [];
    const reader = new DatasetReader({ ...EXPLICIT_LE, onToken: (t) => tokens.push(t) });
    reader.push(header(ENCAPSULATED_DOCUMENT, 'OB', length));
    const mebibyte = Buffer.alloc(1 << 20);
    for (let i = 0; i < 10; i++) reader.push(mebibyte);
    expect(reader.offset).toBe(12 + 10 * mebibyte.length);
    expect(tokens).toEqual([
      { type: 'element', tag: ENCAPSULATED_DOCUMENT, vr: 'OB', length, offset: 0 },
    ]);
    expect(errorOf(() => reader.end()).code).toBe('ERR_DATASET_TRUNCATED');
  });

  it('names the element whose value overruns the item holding it', () => {
    const overrun = Buffer.concat([
      header(CONTENT_SEQUENCE, 'SQ', 16),
      itemHeader(ITEM, 8),
      header(0x00080060, 'CS', 100),
    ]);
    const error = errorOf(() => readTokens([overrun], EXPLICIT_LE));
    expect(error.code).toBe('ERR_DATASET_MALFORMED');
    expect(error.message).toContain('value of (0008,0060) of 100 bytes overruns its container');
  });

  it('refuses an invalid VR in an explicit VR data set', () => {
    const bad = Buffer.concat([
      textElement(0x00080060, 'CS', 'CT'),
      textElement(0x00100010, 'ZZ', 'x'),
    ]);
    expect(readError(bad)).toBe('ERR_DATASET_MALFORMED');
    expect(errorOf(() => readTokens([bad], EXPLICIT_LE)).message).toContain(
      "invalid VR 'ZZ' for (0010,0010)",
    );
    expect(readError(Buffer.concat([header(0x00100010, 'pn', 0)]))).toBe('ERR_DATASET_MALFORMED');
    // An implicit VR data set read as explicit: its length bytes are no VR.
    const implicit = loadDataset('dicom', 'MR_small_implicit.dcm').bytes;
    expect(readError(implicit, EXPLICIT_LE)).toBe('ERR_DATASET_MALFORMED');
  });

  it.each([
    ['an item delimiter at the top level', [itemHeader(ITEM_DELIMITATION, 0)]],
    ['a sequence delimiter at the top level', [itemHeader(SEQUENCE_DELIMITATION, 0)]],
    ['an item at the top level', [itemHeader(ITEM, 0)]],
    [
      'a sequence delimiter where an item should end',
      [
        header(CONTENT_SEQUENCE, 'SQ', UNDEFINED_LENGTH),
        itemHeader(ITEM, UNDEFINED_LENGTH),
        itemHeader(SEQUENCE_DELIMITATION, 0),
      ],
    ],
    [
      'an item delimiter in an item of defined length',
      [header(CONTENT_SEQUENCE, 'SQ', 16), itemHeader(ITEM, 8), itemHeader(ITEM_DELIMITATION, 0)],
    ],
    [
      'a sequence delimiter in a sequence of defined length',
      [header(CONTENT_SEQUENCE, 'SQ', 8), itemHeader(SEQUENCE_DELIMITATION, 0)],
    ],
    [
      'an element directly in a sequence',
      [header(CONTENT_SEQUENCE, 'SQ', UNDEFINED_LENGTH), textElement(0x00100010, 'PN', 'Doe')],
    ],
    [
      'an item delimiter with a length',
      [
        header(CONTENT_SEQUENCE, 'SQ', UNDEFINED_LENGTH),
        itemHeader(ITEM, UNDEFINED_LENGTH),
        itemHeader(ITEM_DELIMITATION, 4),
      ],
    ],
    [
      'an item delimiter among fragments',
      [header(PIXEL_DATA, 'OB', UNDEFINED_LENGTH), itemHeader(ITEM_DELIMITATION, 0)],
    ],
  ])('refuses %s', (_what, parts) => {
    expect(readError(Buffer.concat(parts))).toBe('ERR_DATASET_MALFORMED');
  });

  it.each(['rtplan.dcm', 'JPEG2000.dcm'])(
    'throws ERR_DATASET_TRUNCATED at end() for every cut of %s inside an element, item or sequence',
    (name) => {
      const { bytes, encoding } = loadDataset('dicom', name);
      const tokens = readTokens([bytes], encoding);
      // Where a top-level element starts, a shorter data set is whole.
      const boundaries = new Set<number>();
      let depth = 0;
      for (const token of tokens) {
        if (depth === 0 && 'offset' in token) boundaries.add(token.offset);
        if (token.type.endsWith('start')) depth += 1;
        if (token.type.endsWith('end')) depth -= 1;
      }
      let truncated = 0;
      for (let cut = 1; cut < bytes.length; cut++) {
        const reader = new DatasetReader({ ...encoding, onToken: () => {} });
        reader.push(bytes.subarray(0, cut));
        if (boundaries.has(cut)) {
          reader.end();
        } else {
          expect(errorOf(() => reader.end()).code).toBe('ERR_DATASET_TRUNCATED');
          truncated += 1;
        }
      }
      expect(truncated).toBe(bytes.length - boundaries.size);
    },
  );
});

describe('DatasetReader options', () => {
  it('stops at pixel data without error, having read everything before it', () => {
    const { bytes, encoding } = loadDataset('dicom', 'CT_small.dcm');
    const all = readTokens([bytes], encoding);
    const pixelIndex = all.findIndex((t) => t.type === 'element' && t.tag === PIXEL_DATA);
    const pixelData = all[pixelIndex];
    expect(pixelData?.type).toBe('element');
    const tokens: DatasetToken[] = [];
    const reader = new DatasetReader({
      ...encoding,
      ...COLLECT_ALL,
      onToken: (t) => tokens.push(t),
      stopAt: (tag, depth) => tag === PIXEL_DATA && depth === 0,
    });
    reader.push(bytes);
    reader.push(Buffer.alloc(100));
    reader.end();
    expect(reader.isStopped).toBe(true);
    expect(reader.stoppedAtTag).toBe(PIXEL_DATA);
    expect(reader.offset).toBe(pixelData?.type === 'element' ? pixelData.offset : -1);
    expect(comparable(tokens)).toEqual(comparable(all.slice(0, pixelIndex)));
  });

  it('keeps only the values `collect` asks for, passing it the depth', () => {
    const { bytes, encoding } = loadDataset('dicom', 'test-SR.dcm');
    const tokens = readTokens([bytes], encoding, {
      collect: (_tag, vr, depth) => vr === 'UI' || depth >= 2,
    });
    const all = readTokens([bytes], encoding);
    expect(tokens.map((t) => t.type)).toEqual(all.map((t) => t.type));
    let depth = 0;
    let kept = 0;
    for (const token of tokens) {
      if (token.type === 'sequence-start') depth += 1;
      if (token.type === 'sequence-end') depth -= 1;
      if (token.type !== 'element') continue;
      const isWanted = token.vr === 'UI' || depth >= 2;
      expect(token.value !== undefined, formatTag(token.tag)).toBe(isWanted);
      if (isWanted) kept += 1;
    }
    expect(kept).toBeGreaterThan(10);
    expect(kept).toBeLessThan(tokens.filter((t) => t.type === 'element').length);
  });

  it('keeps values up to maxValueLength, and fragments only with collectFragments', () => {
    const { bytes, encoding } = loadDataset('dicom', 'JPEG2000.dcm');
    const limit = 26;
    const tokens = readTokens([bytes], encoding, { maxValueLength: limit });
    const elements = tokens.filter((t) => t.type === 'element');
    expect(elements.some((t) => t.length === limit)).toBe(true);
    for (const token of elements) expect(token.value !== undefined).toBe(token.length <= limit);
    const fragments = tokens.filter((t) => t.type === 'fragment');
    expect(fragments).toHaveLength(2);
    for (const fragment of fragments) expect(fragment.value).toBeUndefined();
    const collected = readTokens([bytes], encoding, { collectFragments: true });
    const values = collected.flatMap((t) => (t.type === 'fragment' ? [t.value?.length] : []));
    expect(values).toEqual(fragments.map((f) => f.length));
  });

  it('hands on the bytes of skipped values, in order and right after their tokens, with onSkippedValue', () => {
    const { bytes, encoding } = loadDataset('dicom', 'JPEG2000.dcm');
    const all = readTokens([bytes], encoding);
    for (const size of [1, 7, 4096]) {
      const events: (DatasetToken | Buffer)[] = [];
      const reader = new DatasetReader({
        ...encoding,
        maxValueLength: 26,
        onToken: (token) => events.push(token),
        onSkippedValue: (chunk) => events.push(chunk),
      });
      for (const chunk of chunksOf(bytes, size)) reader.push(chunk);
      reader.end();
      expect(comparable(withSkippedValues(events)), `chunks of ${size}`).toEqual(comparable(all));
    }
  });

  it('keeps values of up to 1 MiB by default', () => {
    const value = (length: number) =>
      Buffer.concat([header(ENCAPSULATED_DOCUMENT, 'OB', length), Buffer.alloc(length)]);
    const [atLimit] = readTokens([value(1 << 20)], EXPLICIT_LE, {});
    expect(atLimit?.type === 'element' && atLimit.value?.length).toBe(1 << 20);
    const [over] = readTokens([value((1 << 20) + 2)], EXPLICIT_LE, {});
    expect(over).toMatchObject({ type: 'element', length: (1 << 20) + 2 });
    expect(over?.type === 'element' && over.value).toBeUndefined();
  });
});

/**
 * Pushes `bytes` as the receive path does with `isInputTransient`: each chunk copied into one
 * reused buffer, pushed, then overwritten with garbage; chunk sizes taken from `sizes` in turn.
 */
function readTransient(
  bytes: Buffer,
  sizes: readonly number[],
  encoding: Encoding,
  options: Partial<DatasetReaderOptions> = COLLECT_ALL,
): DatasetToken[] {
  const tokens: DatasetToken[] = [];
  const reader = new DatasetReader({
    ...encoding,
    ...options,
    isInputTransient: true,
    onToken: (t) => tokens.push(t),
  });
  const scratch = Buffer.alloc(Math.max(...sizes));
  for (let start = 0, turn = 0; start < bytes.length; turn++) {
    const size = Math.min(sizes[turn % sizes.length]!, bytes.length - start);
    const chunk = scratch.subarray(0, size);
    bytes.copy(chunk, 0, start, start + size);
    reader.push(chunk);
    chunk.fill(0xab);
    start += size;
  }
  reader.end();
  return tokens;
}

describe('DatasetReader with isInputTransient', () => {
  // Explicit and implicit VR, big endian, sequences (SR, RT plan, a CP-246 UN sequence) and
  // encapsulated pixel data (JPEG 2000, RLE).
  const FILES: readonly ['dicom' | 'dicom-parse-only', string][] = [
    ['dicom', 'CT_small.dcm'],
    ['dicom', 'MR_small_implicit.dcm'],
    ['dicom', 'MR_small_bigendian.dcm'],
    ['dicom', 'test-SR.dcm'],
    ['dicom', 'rtplan.dcm'],
    ['dicom', 'JPEG2000.dcm'],
    ['dicom', 'MR_small_RLE.dcm'],
    ['dicom-parse-only', 'UN_sequence.dcm'],
  ];

  it.each(FILES)(
    'gives the tokens of untouched input for %s/%s overwritten after each push',
    (dir, name) => {
      const { bytes, encoding } = loadDataset(dir, name);
      const whole = comparable(readTokens([bytes], encoding));
      for (const sizes of [[1], [3], [7], [100], [4096], [1, 3, 7, 100, 4096, 5, 11]]) {
        const tokens = readTransient(bytes, sizes, encoding);
        expect(comparable(tokens), `chunks of ${sizes.join(', ')}`).toEqual(whole);
      }
    },
  );

  it('hands skipped values on as views of the pushed chunk, never copies', () => {
    const { bytes, encoding } = loadDataset('dicom', 'JPEG2000.dcm');
    const all = readTokens([bytes], encoding);
    for (const size of [1, 7, 4096]) {
      const scratch = Buffer.alloc(size);
      const events: (DatasetToken | Buffer)[] = [];
      const reader = new DatasetReader({
        ...encoding,
        maxValueLength: 26,
        isInputTransient: true,
        onToken: (token) => events.push(token),
        onSkippedValue: (piece) => {
          // Valid only during the call: a view of the chunk being pushed, so copied to keep.
          expect(piece.buffer).toBe(scratch.buffer);
          events.push(Buffer.from(piece));
        },
      });
      for (let start = 0; start < bytes.length; start += size) {
        const chunk = scratch.subarray(0, Math.min(size, bytes.length - start));
        bytes.copy(chunk, 0, start, start + chunk.length);
        reader.push(chunk);
        chunk.fill(0xab);
      }
      reader.end();
      expect(comparable(withSkippedValues(events)), `chunks of ${size}`).toEqual(comparable(all));
    }
  });

  it('keeps a value arriving over many pushes, and the header split before it', () => {
    const value = randomBytes(10_000);
    const bytes = Buffer.concat([
      header(ENCAPSULATED_DOCUMENT, 'OB', value.length),
      value,
      textElement(0x00100010, 'PN', 'Doe^John'),
    ]);
    for (const sizes of [[1], [5, 2], [13], [999]]) {
      const tokens = readTransient(bytes, sizes, EXPLICIT_LE, {});
      expect(tokens, `chunks of ${sizes.join(', ')}`).toEqual([
        { type: 'element', tag: ENCAPSULATED_DOCUMENT, vr: 'OB', length: 10_000, offset: 0, value },
        {
          type: 'element',
          tag: 0x00100010,
          vr: 'PN',
          length: 8,
          offset: 10_012,
          value: Buffer.from('Doe^John'),
        },
      ]);
    }
  });

  it('copies a value lying in one chunk only with the option: without it the value is a view', () => {
    const valueAfterOverwrite = (isInputTransient: boolean) => {
      const chunk = textElement(0x00100010, 'PN', 'Doe^John');
      const [token] = readTokens([chunk], EXPLICIT_LE, { isInputTransient });
      chunk.fill(0x41);
      return token?.type === 'element' ? token.value?.toString('latin1') : undefined;
    };
    expect(valueAfterOverwrite(false)).toBe('AAAAAAAA');
    expect(valueAfterOverwrite(true)).toBe('Doe^John');
  });

  it('stops at pixel data as before, the tokens before it intact once the chunk is overwritten', () => {
    const { bytes, encoding } = loadDataset('dicom', 'CT_small.dcm');
    const all = readTokens([bytes], encoding);
    const pixelIndex = all.findIndex((t) => t.type === 'element' && t.tag === PIXEL_DATA);
    const tokens: DatasetToken[] = [];
    const reader = new DatasetReader({
      ...encoding,
      ...COLLECT_ALL,
      isInputTransient: true,
      onToken: (t) => tokens.push(t),
      stopAt: (tag, depth) => tag === PIXEL_DATA && depth === 0,
    });
    const chunk = Buffer.from(bytes);
    reader.push(chunk);
    chunk.fill(0xab);
    reader.end();
    expect(reader.isStopped).toBe(true);
    expect(comparable(tokens)).toEqual(comparable(all.slice(0, pixelIndex)));
  });
});
