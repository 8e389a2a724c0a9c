/**
 * Tests of the Implicit/Explicit VR Little Endian converter: the test files converted both ways
 * give exactly the data set bytes DCMTK's `dcmconv` writes for the same conversion (undefined
 * lengths, group lengths removed), whatever the chunking; the VR choices going explicit; and a
 * Pixel Data value of 512 MiB converted with memory staying flat.
 */

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DicomServerError } from '../errors.js';
import { buildFileMeta, readFileMeta } from './part10.js';
import { DatasetReader, type DatasetToken } from './reader/dataset-reader.js';
import { convertibleEncodingOf, DatasetTranscoder, transcodeDataset } from './transcode.js';
import { TransferSyntax } from './transfer-syntax.js';
import type { DatasetEncoding } from './writer/dataset-writer.js';

const TESTDATA = resolve(import.meta.dirname, '../../../shared/testdata');
const EXPLICIT: DatasetEncoding = { isExplicitVr: true, isLittleEndian: true };
const IMPLICIT: DatasetEncoding = { isExplicitVr: false, isLittleEndian: true };
/** The uncompressed little endian test files (image_dfl.dcm once inflated). */
const FILES = [
  'CT_small.dcm',
  'MR_small.dcm',
  'MR_small_implicit.dcm',
  'SC_rgb_small_odd.dcm',
  'image_dfl.dcm',
  'rtdose.dcm',
  'rtplan.dcm',
  'rtstruct.dcm',
  'test-SR.dcm',
];

const run = promisify(execFile);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'transcode-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A Part 10 file's data set (inflated when deflated) and its encoding. */
function datasetOf(file: Buffer): { bytes: Buffer; encoding: DatasetEncoding } {
  const meta = readFileMeta(file);
  const stored = file.subarray(meta.datasetOffset);
  if (meta.transferSyntaxUid === TransferSyntax.DeflatedExplicitVRLittleEndian) {
    return { bytes: inflateRawSync(stored), encoding: EXPLICIT };
  }
  const encoding = convertibleEncodingOf(meta.transferSyntaxUid ?? '');
  if (encoding === undefined) throw new Error(`not convertible: ${meta.transferSyntaxUid}`);
  return { bytes: stored, encoding };
}

/** What DCMTK writes: `dcmconv` to the target syntax, undefined lengths, no group lengths. */
async function dcmconv(path: string, target: DatasetEncoding): Promise<Buffer> {
  const out = join(dir, `dcmconv-${Math.random().toString(36).slice(2)}.dcm`);
  await run('dcmconv', [target.isExplicitVr ? '+te' : '+ti', '-e', '-g', path, out]);
  return datasetOf(await readFile(out)).bytes;
}

/** Converts with the transcoder, pushing chunks of `size` bytes. */
function convert(bytes: Buffer, from: DatasetEncoding, to: DatasetEncoding, size: number): Buffer {
  const transcoder = new DatasetTranscoder(from, to);
  const out: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += size) {
    out.push(...transcoder.push(bytes.subarray(start, start + size)));
  }
  out.push(...transcoder.end());
  return Buffer.concat(out);
}

function tokensOf(bytes: Buffer, encoding: DatasetEncoding): DatasetToken[] {
  const tokens: DatasetToken[] = [];
  const reader = new DatasetReader({ ...encoding, onToken: (token) => tokens.push(token) });
  reader.push(bytes);
  reader.end();
  return tokens;
}

/** An Implicit VR Little Endian element. */
function implicitElement(tag: number, value: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(tag >>> 16, 0);
  header.writeUInt16LE(tag & 0xffff, 2);
  header.writeUInt32LE(value.length, 4);
  return Buffer.concat([header, value]);
}

function uint16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16LE(value, 0);
  return bytes;
}

function errorCodeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    if (error instanceof DicomServerError) return error.code;
    throw error;
  }
  return undefined;
}

describe('DatasetTranscoder on the test files', () => {
  for (const name of FILES) {
    it(`converts ${name} both ways to the data set bytes dcmconv writes`, async () => {
      const path = join(TESTDATA, 'dicom', name);
      const { bytes, encoding } = datasetOf(await readFile(path));
      for (const target of [EXPLICIT, IMPLICIT]) {
        const expected = await dcmconv(path, target);
        for (const size of [1, 97, 65_536]) {
          const converted = convert(bytes, encoding, target, size);
          const label = `${name} to ${target.isExplicitVr ? 'explicit' : 'implicit'}, chunks of ${size}`;
          expect(converted.equals(expected), label).toBe(true);
        }
      }
    });
  }

  it('round trips: explicit to implicit and back gives what dcmconv makes of the implicit file', async () => {
    const { bytes } = datasetOf(await readFile(join(TESTDATA, 'dicom', 'test-SR.dcm')));
    const implicit = convert(bytes, EXPLICIT, IMPLICIT, 4096);
    const back = convert(implicit, IMPLICIT, EXPLICIT, 4096);
    expect(convert(back, EXPLICIT, IMPLICIT, 4096).equals(implicit)).toBe(true);
    const values = (tokens: DatasetToken[]) =>
      tokens.flatMap((t) => (t.type === 'element' ? [[t.tag, t.value?.toString('hex')]] : []));
    expect(values(tokensOf(back, EXPLICIT))).toEqual(
      values(tokensOf(bytes, EXPLICIT)).filter(([tag]) => ((tag as number) & 0xffff) !== 0),
    );
  });

  it('keeps a UN sequence (CP-246) a UN sequence of Implicit VR content', async () => {
    // Its meta names JPEG Lossless, but the data set holds no pixel data: Explicit VR LE.
    const file = await readFile(join(TESTDATA, 'dicom-parse-only', 'UN_sequence.dcm'));
    const bytes = file.subarray(readFileMeta(file).datasetOffset);
    const encoding = EXPLICIT;
    const implicit = convert(bytes, encoding, IMPLICIT, 333);
    const explicit = convert(implicit, IMPLICIT, EXPLICIT, 333);
    const values = (tokens: DatasetToken[]) =>
      tokens.flatMap((t) => (t.type === 'element' ? [[t.tag, t.value?.toString('hex')]] : []));
    const original = tokensOf(bytes, encoding);
    expect(original.some((t) => t.type === 'sequence-start' && t.vr === 'UN')).toBe(true);
    expect(values(tokensOf(implicit, IMPLICIT))).toEqual(values(original));
    expect(values(tokensOf(explicit, EXPLICIT))).toEqual(values(original));
    // DCMTK reads both without complaint.
    for (const [bytesOut, syntax] of [
      [implicit, TransferSyntax.ImplicitVRLittleEndian],
      [explicit, TransferSyntax.ExplicitVRLittleEndian],
    ] as const) {
      const out = join(dir, `un-${syntax}.dcm`);
      const meta = buildFileMeta({
        sopClassUid: '1.2.3',
        sopInstanceUid: '1.2.3.4',
        transferSyntaxUid: syntax,
      });
      await writeFile(out, Buffer.concat([meta, bytesOut]));
      const { stderr } = await run('dcmdump', ['-q', out]);
      expect(stderr, syntax).toBe('');
    }
  });
});

describe('DatasetTranscoder choices', () => {
  it('writes a value longer than its VR can state as UN, LUT Data as OW, signed pixel values as SS', () => {
    const long = Buffer.alloc(0x10002, 0x41);
    const dataset = Buffer.concat([
      implicitElement(0x00080000, Buffer.from([4, 0, 0, 0])), // group length: dropped
      implicitElement(0x00081030, long), // Study Description, LO, too long for 16 bits
      implicitElement(0x00280103, uint16(1)), // Pixel Representation: signed
      implicitElement(0x00280106, uint16(0xfff0)), // Smallest Image Pixel Value, US or SS
      implicitElement(0x00283006, long), // LUT Data, US or OW
      implicitElement(0x00291010, uint16(7)), // private: UN
      implicitElement(0x7fe00010, Buffer.alloc(4)), // Pixel Data, OB or OW
    ]);
    const tokens = tokensOf(convert(dataset, IMPLICIT, EXPLICIT, 1000), EXPLICIT);
    const vrs = tokens.flatMap((t) => (t.type === 'element' ? [[t.tag, t.vr, t.length]] : []));
    expect(vrs).toEqual([
      [0x00081030, 'UN', long.length],
      [0x00280103, 'US', 2],
      [0x00280106, 'SS', 2],
      [0x00283006, 'OW', long.length],
      [0x00291010, 'UN', 2],
      [0x7fe00010, 'OW', 4],
    ]);
  });

  it('keeps US for US-or-SS values when pixel data is unsigned', () => {
    const dataset = Buffer.concat([
      implicitElement(0x00280103, uint16(0)),
      implicitElement(0x00280106, uint16(12)),
    ]);
    const tokens = tokensOf(convert(dataset, IMPLICIT, EXPLICIT, 7), EXPLICIT);
    expect(tokens.at(-1)).toMatchObject({ tag: 0x00280106, vr: 'US' });
  });

  it('refuses encapsulated pixel data, a truncated data set and big endian', async () => {
    const file = await readFile(join(TESTDATA, 'dicom', 'JPEG2000.dcm'));
    const encapsulated = file.subarray(readFileMeta(file).datasetOffset);
    expect(errorCodeOf(() => convert(encapsulated, EXPLICIT, IMPLICIT, 4096))).toBe(
      'ERR_DATASET_MALFORMED',
    );
    const { bytes } = datasetOf(await readFile(join(TESTDATA, 'dicom', 'CT_small.dcm')));
    expect(errorCodeOf(() => convert(bytes.subarray(0, 1001), EXPLICIT, IMPLICIT, 100))).toBe(
      'ERR_DATASET_TRUNCATED',
    );
    const bigEndian = { isExplicitVr: true, isLittleEndian: false };
    expect(errorCodeOf(() => new DatasetTranscoder(bigEndian, IMPLICIT))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('knows which transfer syntaxes it converts between', () => {
    expect(convertibleEncodingOf(TransferSyntax.ImplicitVRLittleEndian)).toEqual(IMPLICIT);
    expect(convertibleEncodingOf(TransferSyntax.ExplicitVRLittleEndian)).toEqual(EXPLICIT);
    expect(convertibleEncodingOf(TransferSyntax.ExplicitVRBigEndian)).toBeUndefined();
    expect(convertibleEncodingOf(TransferSyntax.JPEG2000)).toBeUndefined();
  });
});

describe('DatasetTranscoder memory', () => {
  it('converts 512 MiB of Pixel Data without holding it: memory stays flat', async () => {
    const chunkSize = 1024 * 1024;
    const chunks = 512;
    const pixelLength = chunks * chunkSize;
    const head = Buffer.concat([
      implicitElement(0x00280010, uint16(16384)),
      implicitElement(0x00280011, uint16(16384)),
    ]);
    const pixelHeader = Buffer.alloc(8);
    pixelHeader.writeUInt32LE(0x00107fe0, 0);
    pixelHeader.writeUInt32LE(pixelLength, 4);
    const chunk = Buffer.alloc(chunkSize, 0x5a);
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.concat([head, pixelHeader]);
      for (let i = 0; i < chunks; i++) yield chunk;
    }
    const before = process.memoryUsage();
    let peakExternal = 0;
    let peakHeap = 0;
    let total = 0;
    let largest = 0;
    for await (const out of transcodeDataset(source(), IMPLICIT, EXPLICIT)) {
      total += out.length;
      largest = Math.max(largest, out.length);
      const now = process.memoryUsage();
      peakExternal = Math.max(peakExternal, now.arrayBuffers - before.arrayBuffers);
      peakHeap = Math.max(peakHeap, now.heapUsed - before.heapUsed);
    }
    // Explicit headers: 8 bytes for each US element, 12 for OW Pixel Data.
    expect(total).toBe(2 * 10 + 12 + pixelLength);
    expect(largest).toBeLessThanOrEqual(chunkSize);
    expect(peakExternal).toBeLessThan(32 * 1024 * 1024);
    expect(peakHeap).toBeLessThan(64 * 1024 * 1024);
  });
});
