/**
 * Values of identifier elements as text: decoded from their bytes (padding removed, text in its
 * Specific Character Set) and encoded back (padded to even length, PS3.5 §6.2).
 *
 * Layer: dicom. Pure.
 */

import { decodeText } from '../charset.js';
import type { Vr } from '../vr.js';

/** The Specific Character Set we answer in when a value is not plain ASCII (PS3.3 §C.12.1.1.2). */
export const UTF8_CHARACTER_SET = 'ISO_IR 192';

/** VRs whose values are text that a Specific Character Set applies to (PS3.5 §6.1.2.3). */
const CHARACTER_SET_VRS: ReadonlySet<Vr> = new Set(['SH', 'LO', 'ST', 'LT', 'UC', 'UT', 'PN']);

/** True when the value holds only 7-bit ASCII. */
export function isAsciiText(text: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the whole 7-bit range is meant
  return /^[\x00-\x7f]*$/.test(text);
}

/**
 * The text of a value: decoded in the identifier's Specific Character Set where one applies,
 * trailing padding (spaces, NULs) and, except for the long text VRs, leading spaces removed.
 */
export function decodeValue(
  bytes: Buffer,
  vr: Vr,
  specificCharacterSet: string | undefined,
): string {
  const text = CHARACTER_SET_VRS.has(vr)
    ? decodeText(bytes, specificCharacterSet, vr)
    : bytes.toString('latin1');
  const trimmed = text.replace(/[\0 ]+$/, '');
  return vr === 'LT' || vr === 'ST' || vr === 'UT' ? trimmed : trimmed.replace(/^ +/, '');
}

/**
 * The bytes of a text value, padded to even length (UI with NUL, others with a space). Text
 * outside ASCII is written as UTF-8: the identifier must then state `UTF8_CHARACTER_SET`.
 */
export function encodeValue(text: string, vr: Vr): Buffer {
  const bytes = Buffer.from(text, CHARACTER_SET_VRS.has(vr) ? 'utf8' : 'latin1');
  if (bytes.length % 2 === 0) return bytes;
  return Buffer.concat([bytes, Buffer.from(vr === 'UI' ? [0] : [0x20])]);
}
