/**
 * Where a received instance goes under the storage root (the specification's "Storage
 * Organization"): a folder structure (flat, patient, study, series, date) and a file naming
 * (SOP UID, instance number, timestamp, sequential). Every component that comes from a data set
 * is validated (UIDs) or encoded (everything else), so no path can leave the storage root.
 *
 * Layer: storage. Pure: computes paths, touches no disk.
 */

import { isAbsolute, join, normalize, sep } from 'node:path';
import { DicomServerError } from '../errors.js';
import { FILE_NAMINGS, STORAGE_STRUCTURES } from '../settings/schema.js';

export { FILE_NAMINGS, STORAGE_STRUCTURES };
export type StorageStructure = (typeof STORAGE_STRUCTURES)[number];

export type FileNaming = (typeof FILE_NAMINGS)[number];

/** The attributes a path is made from. */
export interface PathAttributes {
  readonly patientId: string | undefined;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
  readonly instanceNumber: number | undefined;
  readonly receivedAt: Date;
  /** The next value of the persistent counter, for sequential naming. */
  readonly sequenceNumber?: number;
}

/** Folder name used when the attribute a folder is named after is missing. */
export const FALLBACK_FOLDER = '_unknown';

/** Longest folder or file name we produce (most file systems allow 255 bytes). */
export const MAX_NAME_BYTES = 200;

/**
 * A UID fit to be a path component: digits and dots only once trailing NUL/space padding is
 * removed, at most 64 characters. Leading zeros in a component are tolerated (real devices send
 * them). Throws ERR_INVALID_UID otherwise.
 */
export function checkedUid(uid: string, field: string): string {
  const trimmed = uid.replace(/[\0 ]+$/, '');
  if (
    trimmed.length === 0 ||
    trimmed.length > 64 ||
    !/^[0-9.]+$/.test(trimmed) ||
    /^\.+$/.test(trimmed)
  ) {
    throw new DicomServerError('ERR_INVALID_UID', `${field} is not a valid UID`, {
      field,
      length: uid.length,
    });
  }
  return trimmed;
}

/**
 * Encodes free text (a patient ID) as one safe path component: letters, digits, '-', '_' and
 * '.' are kept, every other byte becomes %XX; a name of only dots is encoded; long names are
 * cut and given a hash-free length marker. Empty gives the fallback folder.
 */
export function encodeComponent(text: string | undefined): string {
  const trimmed = (text ?? '').trim();
  if (trimmed === '') return FALLBACK_FOLDER;
  let out = '';
  for (const byte of Buffer.from(trimmed, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out +=
      /[A-Za-z0-9_-]/.test(ch) || (ch === '.' && out !== '')
        ? ch
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (/^\.+$/.test(out)) out = out.replace(/\./g, '%2E');
  if (out.length <= MAX_NAME_BYTES) return out;
  // Room for the marker, and no half %XX escape left before it.
  let cut = MAX_NAME_BYTES - 1;
  const lastEscape = out.lastIndexOf('%', cut - 1);
  if (lastEscape > cut - 3) cut = lastEscape;
  return `${out.slice(0, cut)}~`;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** The folder (relative to the root) for a structure. */
export function folderFor(structure: StorageStructure, a: PathAttributes): string[] {
  switch (structure) {
    case 'flat':
      return [];
    case 'patient':
      return [encodeComponent(a.patientId)];
    case 'study':
      return [a.studyInstanceUid];
    case 'series':
      return [encodeComponent(a.patientId), a.studyInstanceUid, a.seriesInstanceUid];
    case 'date': {
      const d = a.receivedAt;
      return [String(d.getFullYear()), pad2(d.getMonth() + 1), pad2(d.getDate())];
    }
    default: {
      const unreachable: never = structure;
      throw new Error(`unknown structure ${String(unreachable)}`);
    }
  }
}

/** The file name (without collision suffix) for a naming. */
export function fileNameFor(naming: FileNaming, a: PathAttributes): string {
  switch (naming) {
    case 'sop_uid':
      return `${a.sopInstanceUid}.dcm`;
    case 'instance_number':
      return `${String(a.instanceNumber ?? 0).padStart(4, '0')}.dcm`;
    case 'timestamp': {
      const d = a.receivedAt;
      const micros = String(d.getMilliseconds() * 1000).padStart(6, '0');
      return `${d.getFullYear()}${pad2(d.getMonth() + 1)}${pad2(d.getDate())}_${pad2(d.getHours())}${pad2(d.getMinutes())}${pad2(d.getSeconds())}_${micros}.dcm`;
    }
    case 'sequential':
      return `${String(a.sequenceNumber ?? 0).padStart(8, '0')}.dcm`;
    default: {
      const unreachable: never = naming;
      throw new Error(`unknown naming ${String(unreachable)}`);
    }
  }
}

/** A file name with a collision counter: 0001.dcm, 0001_1.dcm, 0001_2.dcm, ... */
export function withCollisionSuffix(fileName: string, attempt: number): string {
  if (attempt === 0) return fileName;
  return fileName.replace(/\.dcm$/, `_${attempt}.dcm`);
}

/** The relative path of an instance, checked to stay inside the root. */
export function relativePathFor(
  structure: StorageStructure,
  naming: FileNaming,
  a: PathAttributes,
): string {
  const path = join(...folderFor(structure, a), fileNameFor(naming, a));
  assertInside(path);
  return path;
}

/** Throws when a relative path could leave the storage root. */
export function assertInside(relativePath: string): void {
  const normalized = normalize(relativePath);
  if (
    isAbsolute(normalized) ||
    normalized === '..' ||
    normalized.startsWith(`..${sep}`) ||
    normalized.includes('\0')
  ) {
    throw new DicomServerError('ERR_INVALID_ARGUMENT', 'path would leave the storage root', {
      path: relativePath,
    });
  }
}

/** The absolute path of a relative one under `root`, checked to lie inside it. */
export function resolveInside(root: string, relativePath: string): string {
  assertInside(relativePath);
  const absolute = join(root, relativePath);
  // `join` normalises both: a path inside starts with the root and a separator. (Cheaper than
  // `relative`, which resolves both paths against the working directory first.)
  if (!absolute.startsWith(rootPrefix(root))) {
    throw new DicomServerError('ERR_INVALID_ARGUMENT', 'path would leave the storage root', {
      path: relativePath,
    });
  }
  return absolute;
}

/** The root normalised, with a separator after it: how every path inside it begins. */
function rootPrefix(root: string): string {
  return join(root, sep);
}

/** The inverse of `resolveInside`: the relative path of a path it returned for `root`. */
export function relativeInside(root: string, absolutePath: string): string {
  return absolutePath.slice(rootPrefix(root).length);
}
