/**
 * Checks the Part 10 file meta group: `readFileMeta` of every test file gives the transfer
 * syntax, SOP class and SOP instance UIDs that DCMTK's `dcmdump` reports, and where the data set
 * starts; `buildFileMeta` → `readFileMeta` gives back what was built, with or without a data set
 * after the group; `dcmdump` reads a file made of our meta group and a test file's data set just
 * as it reads the original file; a head without "DICM" or cut inside the group is refused.
 *
 * Layer: dicom (unit test). Temporary files go to the OS temp directory and are removed.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { runTool } from '../../test/helpers/dcmtk.js';
import { DicomServerError } from '../errors.js';
import {
  buildFileMeta,
  type FileMetaInput,
  hasPart10Header,
  PART10_HEADER_LENGTH,
  readFileMeta,
} from './part10.js';
import { TransferSyntax } from './transfer-syntax.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from './uid.js';

const TESTDATA = new URL('../../../shared/testdata/', import.meta.url);
const WITH_META = (['dicom', 'dicom-parse-only'] as const)
  .flatMap((dir) =>
    readdirSync(new URL(`${dir}/`, TESTDATA))
      .filter((name) => name.endsWith('.dcm'))
      .map((name) => fileURLToPath(new URL(`${dir}/${name}`, TESTDATA))),
  )
  .filter((path) => hasPart10Header(readFileSync(path)))
  .sort();

const scratch = mkdtempSync(join(tmpdir(), 'part10-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * What `dcmdump` says of the three meta elements: the UID, '' for an empty value, undefined when
 * the element is absent.
 */
async function dumpMeta(path: string): Promise<Record<string, string | undefined>> {
  const run = await runTool('dcmdump', [
    '-q',
    '-Un',
    '-s',
    '+P',
    '0002,0010',
    '+P',
    '0002,0002',
    '+P',
    '0002,0003',
    path,
  ]);
  expect(run.exitCode, run.output).toBe(0);
  const uidOf = (tag: string): string | undefined => {
    const line = run.stdout.split('\n').find((text) => text.startsWith(`(${tag}) UI `));
    if (line === undefined) return undefined;
    if (line.includes('(no value available)')) return '';
    return /\[([^\]]*)\]/.exec(line)?.[1]?.replace(/[\0 ]+$/, '');
  };
  return {
    transferSyntaxUid: uidOf('0002,0010'),
    mediaStorageSopClassUid: uidOf('0002,0002'),
    mediaStorageSopInstanceUid: uidOf('0002,0003'),
  };
}

/** The part of a `dcmdump` listing after "# Dicom-Data-Set". */
function datasetDump(stdout: string): string {
  return stdout.slice(stdout.indexOf('# Dicom-Data-Set'));
}

describe('readFileMeta on the test files', () => {
  it('finds the test files', () => {
    expect(WITH_META.length).toBeGreaterThanOrEqual(21);
  });

  it.each(WITH_META)('gives the UIDs that dcmdump reports for %s', async (path) => {
    const file = readFileSync(path);
    const meta = readFileMeta(file);
    expect(meta.transferSyntaxUid).toMatch(/^1\.2\.840\.10008\.1\.2/);
    const { transferSyntaxUid, mediaStorageSopClassUid, mediaStorageSopInstanceUid } = meta;
    expect({ transferSyntaxUid, mediaStorageSopClassUid, mediaStorageSopInstanceUid }).toEqual(
      await dumpMeta(path),
    );
    // The data set starts right after the group: its length is in the group's first element.
    expect(meta.datasetOffset).toBe(PART10_HEADER_LENGTH + 12 + file.readUInt32LE(140));
  });

  it('refuses a file without preamble and "DICM"', () => {
    const bare = readFileSync(new URL('dicom-parse-only/rtstruct_no_meta.dcm', TESTDATA));
    expect(() => readFileMeta(bare)).toThrow(
      expect.objectContaining({ code: 'ERR_DATASET_MALFORMED' }),
    );
  });

  it('refuses every head cut inside the meta group, and reads one ending with it', () => {
    const file = readFileSync(new URL('dicom/CT_small.dcm', TESTDATA));
    const { datasetOffset } = readFileMeta(file);
    for (let cut = PART10_HEADER_LENGTH; cut < datasetOffset; cut++) {
      let code: string | undefined;
      try {
        readFileMeta(file.subarray(0, cut));
      } catch (error) {
        code = error instanceof DicomServerError ? error.code : String(error);
      }
      expect(code, `cut at ${cut}`).toBe('ERR_DATASET_TRUNCATED');
    }
    expect(readFileMeta(file.subarray(0, datasetOffset))).toEqual(readFileMeta(file));
  });
});

/** UIDs as PS3.5 §9.1 allows: digit components without leading zeros, at most 64 characters. */
const uid = fc
  .array(fc.oneof(fc.constant('0'), fc.integer({ min: 1, max: 999_999_999 }).map(String)), {
    minLength: 2,
    maxLength: 8,
  })
  .map((parts) => parts.join('.'))
  .filter((text) => text.length <= 64);
/** AE titles: 1-16 characters of the default repertoire, no backslash, no edge spaces. */
const aeTitle = fc
  .string({ unit: fc.constantFrom(...'ABCXYZ_019 -'.split('')), minLength: 1, maxLength: 16 })
  .filter((text) => text.trim() === text && text !== '');

/** What buildFileMeta is given, with Source AE Titles from `sourceAeTitle` or none. */
const fileMetaInput = (sourceAeTitle: fc.Arbitrary<string>) =>
  fc.record({
    sopClassUid: uid,
    sopInstanceUid: uid,
    transferSyntaxUid: fc.constantFrom(...Object.values(TransferSyntax)),
    sourceAeTitle: fc.option(sourceAeTitle, { nil: undefined }),
  });

/** The meta group as PS3.10 lays it out, element by element: the oracle for buildFileMeta. */
function referenceFileMeta(input: FileMetaInput): Buffer {
  const element = (tag: number, vr: string, value: Buffer) => {
    const isLong = vr === 'OB';
    const header = Buffer.alloc(isLong ? 12 : 8);
    header.writeUInt16LE(tag >>> 16, 0);
    header.writeUInt16LE(tag & 0xffff, 2);
    header.write(vr, 4, 'latin1');
    if (isLong) header.writeUInt32LE(value.length, 8);
    else header.writeUInt16LE(value.length, 6);
    return Buffer.concat([header, value]);
  };
  const padded = (text: string, pad: string) =>
    Buffer.from(text.length % 2 === 0 ? text : text + pad, 'latin1');
  const body = Buffer.concat([
    element(0x00020001, 'OB', Buffer.from([0x00, 0x01])),
    element(0x00020002, 'UI', padded(input.sopClassUid, '\0')),
    element(0x00020003, 'UI', padded(input.sopInstanceUid, '\0')),
    element(0x00020010, 'UI', padded(input.transferSyntaxUid, '\0')),
    element(0x00020012, 'UI', padded(IMPLEMENTATION_CLASS_UID, '\0')),
    element(0x00020013, 'SH', padded(IMPLEMENTATION_VERSION_NAME, ' ')),
    ...(input.sourceAeTitle === undefined || input.sourceAeTitle === ''
      ? []
      : [element(0x00020016, 'AE', padded(input.sourceAeTitle, ' '))]),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length, 0);
  const preamble = Buffer.alloc(128);
  return Buffer.concat([
    preamble,
    Buffer.from('DICM', 'latin1'),
    element(0x00020000, 'UL', groupLength),
    body,
  ]);
}

describe('buildFileMeta', () => {
  it('writes the bytes of the meta group laid out element by element', () => {
    fc.assert(
      fc.property(fileMetaInput(fc.oneof(aeTitle, fc.constant(''))), (input: FileMetaInput) => {
        expect(buildFileMeta(input).equals(referenceFileMeta(input))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('gives back through readFileMeta what was built, with or without a data set after it', () => {
    fc.assert(
      fc.property(fileMetaInput(aeTitle), fc.boolean(), (input: FileMetaInput, hasDataset) => {
        const meta = buildFileMeta(input);
        // (0008,0005) Specific Character Set, empty: the first element of a data set.
        const dataset = Buffer.from([0x08, 0x00, 0x05, 0x00, 0x43, 0x53, 0x00, 0x00]);
        const read = readFileMeta(hasDataset ? Buffer.concat([meta, dataset]) : meta);
        expect(read).toEqual({
          datasetOffset: meta.length,
          mediaStorageSopClassUid: input.sopClassUid,
          mediaStorageSopInstanceUid: input.sopInstanceUid,
          transferSyntaxUid: input.transferSyntaxUid,
          implementationClassUid: IMPLEMENTATION_CLASS_UID,
          implementationVersionName: IMPLEMENTATION_VERSION_NAME,
          ...(input.sourceAeTitle === undefined ? {} : { sourceAeTitle: input.sourceAeTitle }),
        });
        // Every value has even length (PS3.5 §7.1), so every element starts at an even offset.
        expect(meta.length % 2).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it.each([
    'CT_small.dcm',
    'MR_small_implicit.dcm',
    'MR_small_bigendian.dcm',
    'MR_small_RLE.dcm',
    'JPEG2000.dcm',
    'image_dfl.dcm',
    'test-SR.dcm',
  ])('makes a file that dcmdump reads as it reads %s, with our meta group', async (name) => {
    const path = fileURLToPath(new URL(`dicom/${name}`, TESTDATA));
    const original = readFileSync(path);
    const meta = readFileMeta(original);
    const input: FileMetaInput = {
      sopClassUid: meta.mediaStorageSopClassUid ?? '',
      sopInstanceUid: '2.25.1234567890123456789',
      transferSyntaxUid: meta.transferSyntaxUid ?? '',
      sourceAeTitle: 'PART10TEST',
    };
    const rebuilt = join(scratch, name);
    writeFileSync(
      rebuilt,
      Buffer.concat([buildFileMeta(input), original.subarray(meta.datasetOffset)]),
    );
    const [ours, theirs] = await Promise.all([
      runTool('dcmdump', ['-dc', '+Qn', '-Un', rebuilt]),
      runTool('dcmdump', ['-dc', '+Qn', '-Un', path]),
    ]);
    expect(ours.exitCode, ours.output).toBe(0);
    expect(ours.stderr).toBe(theirs.stderr);
    expect(datasetDump(ours.stdout)).toEqual(datasetDump(theirs.stdout));
    expect(ours.stdout).toContain(`(0002,0003) UI [${input.sopInstanceUid}]`);
    expect(ours.stdout).toContain(`(0002,0012) UI [${IMPLEMENTATION_CLASS_UID}]`);
    expect(ours.stdout).toContain('(0002,0016) AE [PART10TEST]');
    expect(await dumpMeta(rebuilt)).toEqual({
      transferSyntaxUid: input.transferSyntaxUid,
      mediaStorageSopClassUid: input.sopClassUid,
      mediaStorageSopInstanceUid: input.sopInstanceUid,
    });
  });
});
