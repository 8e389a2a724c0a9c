/**
 * Value Representations (PS3.5 §6.2) and how each is encoded in explicit VR syntaxes.
 *
 * Layer: dicom. Pure data.
 */

/** Every VR of PS3.5 Table 6.2-1. */
export const VRS = [
  'AE',
  'AS',
  'AT',
  'CS',
  'DA',
  'DS',
  'DT',
  'FD',
  'FL',
  'IS',
  'LO',
  'LT',
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'PN',
  'SH',
  'SL',
  'SQ',
  'SS',
  'ST',
  'SV',
  'TM',
  'UC',
  'UI',
  'UL',
  'UN',
  'UR',
  'US',
  'UT',
  'UV',
] as const;

/** A value representation. */
export type Vr = (typeof VRS)[number];

const VR_SET: ReadonlySet<string> = new Set(VRS);

/** VRs whose explicit encoding has 2 reserved bytes and a 32-bit length (PS3.5 §7.1.2). */
const LONG_LENGTH_VRS: ReadonlySet<string> = new Set([
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'SQ',
  'SV',
  'UC',
  'UN',
  'UR',
  'UT',
  'UV',
]);

/** True for the two characters of a VR that PS3.5 defines. */
export function isVr(text: string): text is Vr {
  return VR_SET.has(text);
}

/** Each VR by its two characters' codes (`first << 8 | second`): no string made to read one. */
const VR_BY_CODE: ReadonlyMap<number, Vr> = new Map(
  VRS.map((vr) => [(vr.charCodeAt(0) << 8) | vr.charCodeAt(1), vr]),
);

/** The VR whose two characters are `bytes[at]` and `bytes[at + 1]`, or undefined for none. */
export function vrAt(bytes: Uint8Array, at: number): Vr | undefined {
  return VR_BY_CODE.get((bytes[at]! << 8) | bytes[at + 1]!);
}

/** True when the explicit VR header of `vr` has a 32-bit length field. */
export function hasLongLength(vr: Vr): boolean {
  return LONG_LENGTH_VRS.has(vr);
}

/** VRs whose values are text in the Specific Character Set (PS3.5 §6.1.2.3). */
export const TEXT_VRS: ReadonlySet<Vr> = new Set<Vr>(['LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT']);

/** VRs whose values are text in the default repertoire. */
export const ASCII_VRS: ReadonlySet<Vr> = new Set<Vr>([
  'AE',
  'AS',
  'CS',
  'DA',
  'DS',
  'DT',
  'IS',
  'TM',
  'UI',
  'UR',
]);
