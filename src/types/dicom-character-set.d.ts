// Types for the `dicom-character-set` package, which ships none (its README documents this API).
declare module 'dicom-character-set' {
  /** Converts the bytes of a DICOM text value in the given Specific Character Set to a string. */
  export function convertBytes(
    specificCharacterSet: string | undefined,
    bytes: Uint8Array,
    options?: { vr?: string },
  ): string;
}
