/**
 * Transfer syntaxes (PS3.5 §10, PS3.6 Annex A) and their encoding properties.
 *
 * Layer: dicom. Pure data.
 */

/** Transfer syntax UIDs by name. */
export const TransferSyntax = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
  DeflatedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.99',
  ExplicitVRBigEndian: '1.2.840.10008.1.2.2',
  JPEGBaseline8Bit: '1.2.840.10008.1.2.4.50',
  JPEGExtended12Bit: '1.2.840.10008.1.2.4.51',
  JPEGLossless: '1.2.840.10008.1.2.4.57',
  JPEGLosslessSV1: '1.2.840.10008.1.2.4.70',
  JPEGLSLossless: '1.2.840.10008.1.2.4.80',
  JPEGLSNearLossless: '1.2.840.10008.1.2.4.81',
  JPEG2000Lossless: '1.2.840.10008.1.2.4.90',
  JPEG2000: '1.2.840.10008.1.2.4.91',
  HTJ2KLossless: '1.2.840.10008.1.2.4.201',
  HTJ2KLosslessRPCL: '1.2.840.10008.1.2.4.202',
  HTJ2K: '1.2.840.10008.1.2.4.203',
  RLELossless: '1.2.840.10008.1.2.5',
} as const;

/** How a transfer syntax encodes a data set. */
export interface TransferSyntaxProperties {
  readonly isExplicitVr: boolean;
  readonly isLittleEndian: boolean;
  readonly isDeflated: boolean;
  /** Pixel data in fragments (PS3.5 §A.4). */
  readonly isEncapsulated: boolean;
}

const NATIVE_LE_EXPLICIT = {
  isExplicitVr: true,
  isLittleEndian: true,
  isDeflated: false,
  isEncapsulated: false,
};
const ENCAPSULATED = { ...NATIVE_LE_EXPLICIT, isEncapsulated: true };

/** The compressed syntaxes: pixel data in fragments. */
const ENCAPSULATED_TRANSFER_SYNTAXES: readonly string[] = [
  TransferSyntax.JPEGBaseline8Bit,
  TransferSyntax.JPEGExtended12Bit,
  TransferSyntax.JPEGLossless,
  TransferSyntax.JPEGLosslessSV1,
  TransferSyntax.JPEGLSLossless,
  TransferSyntax.JPEGLSNearLossless,
  TransferSyntax.JPEG2000Lossless,
  TransferSyntax.JPEG2000,
  TransferSyntax.HTJ2KLossless,
  TransferSyntax.HTJ2KLosslessRPCL,
  TransferSyntax.HTJ2K,
  TransferSyntax.RLELossless,
];

const PROPERTIES: ReadonlyMap<string, TransferSyntaxProperties> = new Map([
  [TransferSyntax.ExplicitVRLittleEndian, NATIVE_LE_EXPLICIT],
  [TransferSyntax.ImplicitVRLittleEndian, { ...NATIVE_LE_EXPLICIT, isExplicitVr: false }],
  [TransferSyntax.DeflatedExplicitVRLittleEndian, { ...NATIVE_LE_EXPLICIT, isDeflated: true }],
  [TransferSyntax.ExplicitVRBigEndian, { ...NATIVE_LE_EXPLICIT, isLittleEndian: false }],
  ...ENCAPSULATED_TRANSFER_SYNTAXES.map((uid) => [uid, ENCAPSULATED] as const),
]);

/** Every transfer syntax we know, uncompressed first: the order we prefer when we choose. */
export const KNOWN_TRANSFER_SYNTAXES: readonly string[] = [...PROPERTIES.keys()];

/** The encoding properties of a known transfer syntax, or undefined. */
export function transferSyntaxProperties(uid: string): TransferSyntaxProperties | undefined {
  return PROPERTIES.get(uid);
}
