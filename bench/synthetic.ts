/**
 * Synthetic instances for the benchmarks: a CT series of 512x512 16-bit slices and small
 * secondary captures, written as Part 10 files with our own data set writer.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildFileMeta } from '../src/dicom/part10.js';
import type { DatasetToken } from '../src/dicom/reader/dataset-reader.js';
import { TransferSyntax } from '../src/dicom/transfer-syntax.js';
import type { Vr } from '../src/dicom/vr.js';
import { encodeTokens } from '../src/dicom/writer/dataset-writer.js';

const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
const SECONDARY_CAPTURE_STORAGE = '1.2.840.10008.5.1.4.1.1.7';

function uid(): string {
  return `2.25.${BigInt(`0x${randomBytes(16).toString('hex')}`).toString()}`;
}

function padded(text: string, vr: Vr): Buffer {
  const pad = vr === 'UI' ? '\0' : ' ';
  return Buffer.from(text.length % 2 === 0 ? text : text + pad, 'latin1');
}

function us(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value, 0);
  return b;
}

function element(tag: number, vr: Vr, value: Buffer | string): DatasetToken {
  const bytes = typeof value === 'string' ? padded(value, vr) : value;
  return { type: 'element', tag, vr, length: bytes.length, offset: 0, value: bytes };
}

interface SeriesSpec {
  readonly sopClassUid: string;
  readonly modality: string;
  readonly rows: number;
  readonly columns: number;
  readonly bitsAllocated: 8 | 16;
}

/** Writes `count` instances of one series into `dir`; returns their paths and total bytes. */
async function writeSeries(
  dir: string,
  spec: SeriesSpec,
  count: number,
): Promise<{ files: string[]; bytes: number }> {
  await mkdir(dir, { recursive: true });
  const studyUid = uid();
  const seriesUid = uid();
  const pixelBytes = spec.rows * spec.columns * (spec.bitsAllocated / 8);
  const pixels = randomBytes(pixelBytes);
  const files: string[] = [];
  let bytes = 0;
  for (let i = 1; i <= count; i++) {
    const sopInstanceUid = uid();
    const dataset = encodeTokens(
      [
        element(0x00080016, 'UI', spec.sopClassUid),
        element(0x00080018, 'UI', sopInstanceUid),
        element(0x00080020, 'DA', '20261128'),
        element(0x00080060, 'CS', spec.modality),
        element(0x00100010, 'PN', 'BENCH^PATIENT'),
        element(0x00100020, 'LO', 'BENCH001'),
        element(0x0020000d, 'UI', studyUid),
        element(0x0020000e, 'UI', seriesUid),
        element(0x00200011, 'IS', '1'),
        element(0x00200013, 'IS', String(i)),
        element(0x00280002, 'US', us(1)),
        element(0x00280004, 'CS', 'MONOCHROME2'),
        element(0x00280010, 'US', us(spec.rows)),
        element(0x00280011, 'US', us(spec.columns)),
        element(0x00280100, 'US', us(spec.bitsAllocated)),
        element(0x00280101, 'US', us(spec.bitsAllocated === 16 ? 12 : 8)),
        element(0x00280102, 'US', us(spec.bitsAllocated === 16 ? 11 : 7)),
        element(0x00280103, 'US', us(0)),
        element(0x7fe00010, spec.bitsAllocated === 16 ? 'OW' : 'OB', pixels),
      ],
      { isExplicitVr: true, isLittleEndian: true },
    );
    const meta = buildFileMeta({
      sopClassUid: spec.sopClassUid,
      sopInstanceUid,
      transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
      sourceAeTitle: 'BENCH',
    });
    const path = join(dir, `${String(i).padStart(5, '0')}.dcm`);
    await writeFile(path, Buffer.concat([meta, dataset]));
    files.push(path);
    bytes += meta.length + dataset.length;
  }
  return { files, bytes };
}

/** A 512x512 16-bit CT series (about 512 KB an instance). */
export function writeCtSeries(
  dir: string,
  count: number,
): Promise<{ files: string[]; bytes: number }> {
  return writeSeries(
    dir,
    { sopClassUid: CT_IMAGE_STORAGE, modality: 'CT', rows: 512, columns: 512, bitsAllocated: 16 },
    count,
  );
}

/** Small 32x32 8-bit secondary captures (about 1.5 KB an instance). */
export function writeSmallInstances(
  dir: string,
  count: number,
): Promise<{ files: string[]; bytes: number }> {
  return writeSeries(
    dir,
    {
      sopClassUid: SECONDARY_CAPTURE_STORAGE,
      modality: 'OT',
      rows: 32,
      columns: 32,
      bitsAllocated: 8,
    },
    count,
  );
}

/**
 * One instance whose Pixel Data holds `sizeBytes` (a multi-frame secondary capture), written
 * in 16 MiB pieces so that making it needs no more memory than receiving it should.
 */
export async function writeLargeInstance(
  dir: string,
  sizeBytes: number,
): Promise<{ files: string[]; bytes: number }> {
  await mkdir(dir, { recursive: true });
  const sopClassUid = '1.2.840.10008.5.1.4.1.1.7.2';
  const sopInstanceUid = uid();
  const head = encodeTokens(
    [
      element(0x00080016, 'UI', sopClassUid),
      element(0x00080018, 'UI', sopInstanceUid),
      element(0x00080060, 'CS', 'OT'),
      element(0x00100020, 'LO', 'BENCH002'),
      element(0x0020000d, 'UI', uid()),
      element(0x0020000e, 'UI', uid()),
    ],
    { isExplicitVr: true, isLittleEndian: true },
  );
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt16LE(0x7fe0, 0);
  pixelHeader.writeUInt16LE(0x0010, 2);
  pixelHeader.write('OB', 4, 'latin1');
  pixelHeader.writeUInt32LE(sizeBytes, 8);
  const meta = buildFileMeta({
    sopClassUid,
    sopInstanceUid,
    transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
    sourceAeTitle: 'BENCH',
  });
  const path = join(dir, 'large.dcm');
  const file = await open(path, 'w');
  try {
    await file.write(Buffer.concat([meta, head, pixelHeader]));
    const piece = randomBytes(16 * 1024 * 1024);
    for (let written = 0; written < sizeBytes; written += piece.length) {
      await file.write(piece, 0, Math.min(piece.length, sizeBytes - written));
    }
  } finally {
    await file.close();
  }
  return { files: [path], bytes: meta.length + head.length + pixelHeader.length + sizeBytes };
}
