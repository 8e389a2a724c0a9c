/**
 * Small Part 10 files of one series for tests that send series (hand-off, completion): MR
 * images in Explicit VR Little Endian, with the patient, study and series attributes the index
 * keeps, numbered from `first`; and sending them over one association.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildFileMeta } from '../../src/dicom/part10.js';
import type { DatasetToken } from '../../src/dicom/reader/dataset-reader.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import type { Vr } from '../../src/dicom/vr.js';
import { encodeTokens } from '../../src/dicom/writer/dataset-writer.js';
import { type SendSummary, sendFiles } from '../../src/services/scu/store.js';

const MR_STORAGE = '1.2.840.10008.5.1.4.1.1.4';

/** A series to write. */
export interface SeriesSpec {
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly patientId?: string;
  /** Instances to write (default 2). */
  readonly count?: number;
  /** The first instance number (default 1). */
  readonly first?: number;
}

type Field = readonly [tag: number, vr: Vr, value: string | Buffer];

function padded(vr: Vr, value: string | Buffer): Buffer {
  if (Buffer.isBuffer(value)) return value;
  const bytes = Buffer.from(value, 'latin1');
  if (bytes.length % 2 === 0) return bytes;
  return Buffer.concat([bytes, Buffer.from(vr === 'UI' ? '\0' : ' ')]);
}

function dataset(fields: readonly Field[]): Buffer {
  const tokens: DatasetToken[] = [...fields]
    .sort((a, b) => a[0] - b[0])
    .map(([tag, vr, value]) => {
      const bytes = padded(vr, value);
      return { type: 'element', tag, vr, length: bytes.length, offset: 0, value: bytes };
    });
  return encodeTokens(tokens, { isExplicitVr: true, isLittleEndian: true });
}

/** Writes the series' files into `folder`; their paths. */
export async function writeSeries(folder: string, spec: SeriesSpec): Promise<string[]> {
  await mkdir(folder, { recursive: true });
  const first = spec.first ?? 1;
  const paths: string[] = [];
  for (let n = first; n < first + (spec.count ?? 2); n++) {
    const sopInstanceUid = `${spec.seriesInstanceUid}.${n}`;
    const body = dataset([
      [0x00080016, 'UI', MR_STORAGE],
      [0x00080018, 'UI', sopInstanceUid],
      [0x00080020, 'DA', '20260102'],
      [0x00080060, 'CS', 'MR'],
      [0x00100010, 'PN', 'Doe^Jane'],
      [0x00100020, 'LO', spec.patientId ?? 'PID-7'],
      [0x0020000d, 'UI', spec.studyInstanceUid],
      [0x0020000e, 'UI', spec.seriesInstanceUid],
      [0x00200011, 'IS', '5'],
      [0x00200013, 'IS', String(n)],
      [0x7fe00010, 'OW', Buffer.alloc(256, n & 0xff)],
    ]);
    const meta = buildFileMeta({
      sopClassUid: MR_STORAGE,
      sopInstanceUid,
      transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
    });
    const path = join(folder, `${n}.dcm`);
    await writeFile(path, Buffer.concat([meta, body]));
    paths.push(path);
  }
  return paths;
}

/** Sends files to our SCP on 127.0.0.1 over one association (released at the end). */
export async function sendSeries(port: number, paths: readonly string[]): Promise<SendSummary> {
  const summary = await sendFiles(paths, {
    host: '127.0.0.1',
    port,
    callingAeTitle: 'HANDOFF_SCU',
    calledAeTitle: 'DRAW_SCP',
  });
  if (summary.failed.length > 0) {
    throw new Error(`sending failed: ${JSON.stringify(summary.failed)}`);
  }
  return summary;
}
