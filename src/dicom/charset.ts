/**
 * Text values in their Specific Character Set (0008,0005) (PS3.5 §6.1), decoded to JavaScript
 * strings by the `dicom-character-set` package (single-byte sets, UTF-8, GB18030 and the ISO
 * 2022 code extensions with escape sequences).
 *
 * Layer: dicom.
 */

import { convertBytes } from 'dicom-character-set';
import type { Vr } from './vr.js';

/** Decodes the bytes of one text value; `specificCharacterSet` is the raw (0008,0005) value. */
export function decodeText(
  bytes: Uint8Array,
  specificCharacterSet: string | undefined,
  vr: Vr,
): string {
  const charset = specificCharacterSet?.trim() || undefined;
  if (charset === undefined && isAscii(bytes)) return Buffer.from(bytes).toString('latin1');
  return convertBytes(charset ?? '', bytes, { vr });
}

function isAscii(bytes: Uint8Array): boolean {
  for (const byte of bytes) if (byte > 0x7f) return false;
  return true;
}
