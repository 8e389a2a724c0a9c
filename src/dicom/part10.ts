/**
 * DICOM Part 10 files (PS3.10 §7.1): the 128-byte preamble, the "DICM" prefix and the File Meta
 * Information group (0002), always Explicit VR Little Endian; then the data set in its own
 * transfer syntax.
 *
 * Layer: dicom. Pure: works on buffers.
 */

import { DicomServerError } from '../errors.js';
import { DatasetReader } from './reader/dataset-reader.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from './uid.js';

/** Preamble and prefix length: the file meta group starts here. */
export const PART10_HEADER_LENGTH = 132;

/** File meta group elements (PS3.10 Table 7.1-1). */
export const FileMetaTag = {
  FileMetaInformationGroupLength: 0x00020000,
  FileMetaInformationVersion: 0x00020001,
  MediaStorageSOPClassUID: 0x00020002,
  MediaStorageSOPInstanceUID: 0x00020003,
  TransferSyntaxUID: 0x00020010,
  ImplementationClassUID: 0x00020012,
  ImplementationVersionName: 0x00020013,
  SourceApplicationEntityTitle: 0x00020016,
} as const;

/** What a file's meta group says. */
export interface FileMeta {
  readonly mediaStorageSopClassUid?: string;
  readonly mediaStorageSopInstanceUid?: string;
  readonly transferSyntaxUid?: string;
  readonly implementationClassUid?: string;
  readonly implementationVersionName?: string;
  readonly sourceAeTitle?: string;
  /** Offset of the data set in the file. */
  readonly datasetOffset: number;
}

/** What we write into the meta group of a received instance. */
export interface FileMetaInput {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  readonly sourceAeTitle?: string;
}

/** Writes an explicit VR little endian element header at `at`; the offset after it. */
function writeHeader(out: Buffer, at: number, tag: number, vr: string, length: number): number {
  out.writeUInt16LE(tag >>> 16, at);
  out.writeUInt16LE(tag & 0xffff, at + 2);
  out.write(vr, at + 4, 'latin1');
  // OB has 2 reserved bytes and a 4-byte length (PS3.5 §7.1.2); the others here 2 bytes.
  if (vr === 'OB') {
    out.writeUInt32LE(length, at + 8);
    return at + 12;
  }
  out.writeUInt16LE(length, at + 6);
  return at + 8;
}

/**
 * Preamble, "DICM" and the file meta group for a received instance, written into one buffer
 * (it is made for every instance received).
 */
export function buildFileMeta(input: FileMetaInput): Buffer {
  // Text values, padded to even length: UIDs with NUL, the others with a space (PS3.5 §6.2).
  const texts: [tag: number, vr: string, text: string, pad: string][] = [
    [FileMetaTag.MediaStorageSOPClassUID, 'UI', input.sopClassUid, '\0'],
    [FileMetaTag.MediaStorageSOPInstanceUID, 'UI', input.sopInstanceUid, '\0'],
    [FileMetaTag.TransferSyntaxUID, 'UI', input.transferSyntaxUid, '\0'],
    [FileMetaTag.ImplementationClassUID, 'UI', IMPLEMENTATION_CLASS_UID, '\0'],
    [FileMetaTag.ImplementationVersionName, 'SH', IMPLEMENTATION_VERSION_NAME, ' '],
  ];
  if (input.sourceAeTitle !== undefined && input.sourceAeTitle !== '') {
    texts.push([FileMetaTag.SourceApplicationEntityTitle, 'AE', input.sourceAeTitle, ' ']);
  }
  const even = (length: number) => length + (length % 2);
  // The version (OB, 2 bytes), then the texts; the group length element comes before them all.
  let groupLength = 12 + 2;
  for (const [, , text] of texts) groupLength += 8 + even(text.length);
  const out = Buffer.alloc(PART10_HEADER_LENGTH + 12 + groupLength);
  out.write('DICM', 128, 'latin1');
  let at = writeHeader(
    out,
    PART10_HEADER_LENGTH,
    FileMetaTag.FileMetaInformationGroupLength,
    'UL',
    4,
  );
  out.writeUInt32LE(groupLength, at);
  at = writeHeader(out, at + 4, FileMetaTag.FileMetaInformationVersion, 'OB', 2);
  out[at + 1] = 0x01;
  at += 2;
  for (const [tag, vr, text, pad] of texts) {
    const length = text.length;
    at = writeHeader(out, at, tag, vr, even(length));
    out.write(text, at, 'latin1');
    if (length % 2 === 1) out.write(pad, at + length, 'latin1');
    at += even(length);
  }
  return out;
}

/** True when `head` (at least 132 bytes of a file) starts with a preamble and "DICM". */
export function hasPart10Header(head: Buffer): boolean {
  return head.length >= PART10_HEADER_LENGTH && head.toString('latin1', 128, 132) === 'DICM';
}

function text(value: Buffer | undefined, trim: 'uid' | 'text'): string | undefined {
  if (value === undefined) return undefined;
  const s = value.toString('latin1');
  return trim === 'uid' ? s.replace(/[\0 ]+$/, '') : s.replace(/\0+$/, '').trim();
}

/** Where the group ends, from the value of File Meta Information Group Length (PS3.10 §7.1). */
function groupEnd(groupLength: Buffer | undefined): number | undefined {
  // The group length element itself: tag, VR, 16-bit length, 4-byte value.
  return groupLength?.length === 4 ? 12 + groupLength.readUInt32LE(0) : undefined;
}

/**
 * Reads the file meta group from the start of a Part 10 file (`head` must hold at least the
 * whole group; a few kilobytes suffice). Throws ERR_DATASET_MALFORMED when there is no
 * preamble and prefix, or the group cannot be read.
 */
export function readFileMeta(head: Buffer): FileMeta {
  if (!hasPart10Header(head)) {
    throw new DicomServerError('ERR_DATASET_MALFORMED', 'no DICOM preamble and "DICM" prefix', {
      offset: 128,
    });
  }
  const values = new Map<number, Buffer>();
  const reader = new DatasetReader({
    isExplicitVr: true,
    isLittleEndian: true,
    maxValueLength: 1024,
    stopAt: (tag) => tag >>> 16 !== 0x0002,
    onToken: (token) => {
      if (token.type === 'element' && token.value !== undefined) values.set(token.tag, token.value);
    },
  });
  reader.push(head.subarray(PART10_HEADER_LENGTH));
  if (
    !reader.isStopped &&
    reader.offset === groupEnd(values.get(FileMetaTag.FileMetaInformationGroupLength))
  ) {
    // `head` ends where the group does (a file with an empty data set, or just the group):
    // complete unless the last element overruns the group.
    reader.end();
  } else if (!reader.isStopped) {
    throw new DicomServerError(
      'ERR_DATASET_TRUNCATED',
      'file meta group does not end within the bytes read',
      {
        offset: PART10_HEADER_LENGTH + reader.offset,
      },
    );
  }
  const meta: FileMeta = {
    datasetOffset: PART10_HEADER_LENGTH + reader.offset,
  };
  const fields: [keyof FileMeta, number, 'uid' | 'text'][] = [
    ['mediaStorageSopClassUid', FileMetaTag.MediaStorageSOPClassUID, 'uid'],
    ['mediaStorageSopInstanceUid', FileMetaTag.MediaStorageSOPInstanceUID, 'uid'],
    ['transferSyntaxUid', FileMetaTag.TransferSyntaxUID, 'uid'],
    ['implementationClassUid', FileMetaTag.ImplementationClassUID, 'uid'],
    ['implementationVersionName', FileMetaTag.ImplementationVersionName, 'text'],
    ['sourceAeTitle', FileMetaTag.SourceApplicationEntityTitle, 'text'],
  ];
  const out: Record<string, string | number> = { ...meta };
  for (const [key, tag, kind] of fields) {
    const value = text(values.get(tag), kind);
    if (value !== undefined) out[key] = value;
  }
  return out as unknown as FileMeta;
}
