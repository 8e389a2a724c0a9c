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

/** Latin alphabet No. 1 (ISO 8859-1): answered in when the request stated it and it suffices. */
export const LATIN1_CHARACTER_SET = 'ISO_IR 100';

/** A character set `encodeValue` writes text in. */
export type AnswerCharacterSet = typeof UTF8_CHARACTER_SET | typeof LATIN1_CHARACTER_SET;

/** VRs whose values are text that a Specific Character Set applies to (PS3.5 §6.1.2.3). */
const CHARACTER_SET_VRS: ReadonlySet<Vr> = new Set(['SH', 'LO', 'ST', 'LT', 'UC', 'UT', 'PN']);

/** True when the value holds only 7-bit ASCII. */
export function isAsciiText(text: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the whole 7-bit range is meant
  return /^[\x00-\x7f]*$/.test(text);
}

/**
 * True when ISO_IR 100 can hold the text: ASCII and the printable right half of ISO 8859-1
 * (U+00A0 to U+00FF). Its C1 controls (U+0080 to U+009F) are not in ISO-IR 100 (PS3.3
 * Table C.12-2 lists only its G1 set).
 */
export function isLatin1Text(text: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the whole 7-bit range is meant
  return /^[\x00-\x7f\xa0-\xff]*$/.test(text);
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
 * outside ASCII is written in `characterSet`, UTF-8 unless told otherwise: the identifier must
 * then state it. ISO_IR 100 holds only what `isLatin1Text` accepts.
 */
export function encodeValue(
  text: string,
  vr: Vr,
  characterSet: AnswerCharacterSet = UTF8_CHARACTER_SET,
): Buffer {
  // Values of the other VRs are ASCII by definition (PS3.5 §6.1.2.3): latin1 keeps them as is.
  const isUtf8 = CHARACTER_SET_VRS.has(vr) && characterSet === UTF8_CHARACTER_SET;
  const bytes = Buffer.from(text, isUtf8 ? 'utf8' : 'latin1');
  if (bytes.length % 2 === 0) return bytes;
  return Buffer.concat([bytes, Buffer.from(vr === 'UI' ? [0] : [0x20])]);
}
