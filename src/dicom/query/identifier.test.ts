/**
 * Checks identifiers read into element trees and written back in each uncompressed encoding,
 * and their text values decoded (Specific Character Set, padding) and encoded (even length,
 * UTF-8 beyond ASCII).
 *
 * Layer: dicom (unit test).
 */
import { describe, expect, it } from 'vitest';
import { DicomServerError } from '../../errors.js';
import { type DatasetEncoding, encodeTokens } from '../writer/dataset-writer.js';
import { type IdentifierElement, readIdentifier, writeIdentifier } from './identifier.js';
import { decodeValue, encodeValue, isAsciiText, UTF8_CHARACTER_SET } from './values.js';

const ENCODINGS: Record<string, DatasetEncoding> = {
  'Implicit VR Little Endian': { isExplicitVr: false, isLittleEndian: true },
  'Explicit VR Little Endian': { isExplicitVr: true, isLittleEndian: true },
  'Explicit VR Big Endian': { isExplicitVr: true, isLittleEndian: false },
};

const text = (value: string) => Buffer.from(value, 'latin1');

/** A study-level query with a sequence key holding an item with a nested sequence. */
const IDENTIFIER: IdentifierElement[] = [
  { tag: 0x00080052, vr: 'CS', value: text('STUDY ') },
  { tag: 0x00080020, vr: 'DA', value: text('20230101-20230131') },
  { tag: 0x00100010, vr: 'PN', value: text('DOE*') },
  { tag: 0x0020000d, vr: 'UI', value: Buffer.alloc(0) },
  {
    tag: 0x00081110,
    vr: 'SQ',
    value: Buffer.alloc(0),
    items: [
      [
        { tag: 0x00081150, vr: 'UI', value: text('1.2.3\0') },
        {
          tag: 0x00081199,
          vr: 'SQ',
          value: Buffer.alloc(0),
          items: [[{ tag: 0x00081155, vr: 'UI', value: Buffer.alloc(0) }]],
        },
      ],
      [],
    ],
  },
];

/** The same elements in tag order, as the writer puts them. */
function sorted(elements: readonly IdentifierElement[]): IdentifierElement[] {
  return [...elements].sort((a, b) => a.tag - b.tag);
}

describe('identifiers read and written', () => {
  for (const [name, encoding] of Object.entries(ENCODINGS)) {
    it(`reads back what it wrote in ${name}`, () => {
      const bytes = writeIdentifier(IDENTIFIER, encoding);
      expect(readIdentifier(bytes, encoding)).toEqual(sorted(IDENTIFIER));
    });
  }

  it('writes elements in tag order whatever order they are given in', () => {
    const encoding = ENCODINGS['Explicit VR Little Endian']!;
    const bytes = writeIdentifier([...IDENTIFIER].reverse(), encoding);
    expect(readIdentifier(bytes, encoding).map((element) => element.tag)).toEqual([
      0x00080020, 0x00080052, 0x00081110, 0x00100010, 0x0020000d,
    ]);
  });

  it('takes VRs from the dictionary in Implicit VR', () => {
    const encoding = ENCODINGS['Implicit VR Little Endian']!;
    const bytes = writeIdentifier(
      [{ tag: 0x00100030, vr: 'DA', value: text('19700101') }],
      encoding,
    );
    expect(readIdentifier(bytes, encoding)).toEqual([
      { tag: 0x00100030, vr: 'DA', value: text('19700101') },
    ]);
  });

  it('writes a zero-length element with a header only', () => {
    const bytes = writeIdentifier(
      [{ tag: 0x00100010, vr: 'PN', value: Buffer.alloc(0) }],
      ENCODINGS['Explicit VR Little Endian']!,
    );
    expect(bytes.toString('hex')).toBe('10001000504e0000');
  });

  it('writes sequences and items with undefined length and delimiters', () => {
    const bytes = writeIdentifier(
      [{ tag: 0x00081110, vr: 'SQ', value: Buffer.alloc(0), items: [[]] }],
      ENCODINGS['Explicit VR Little Endian']!,
    );
    expect(bytes.toString('hex')).toBe(
      '08001011535100 00ffffffff feff00e0ffffffff feff0de000000000 feffdde000000000'.replace(
        / /g,
        '',
      ),
    );
  });

  it('reads an empty identifier as no elements', () => {
    expect(readIdentifier(Buffer.alloc(0), ENCODINGS['Explicit VR Little Endian']!)).toEqual([]);
  });

  it('refuses bytes cut short inside an element', () => {
    const encoding = ENCODINGS['Explicit VR Little Endian']!;
    const bytes = writeIdentifier(IDENTIFIER, encoding);
    expect(() => readIdentifier(bytes.subarray(0, bytes.length - 3), encoding)).toThrow(
      expect.objectContaining({ code: 'ERR_DATASET_TRUNCATED' }),
    );
  });

  it('refuses bytes that are no data set', () => {
    const encoding = ENCODINGS['Explicit VR Little Endian']!;
    // (0010,0010) with the VR bytes "zz" and a length running past the end.
    const bytes = Buffer.from('10001000 7a7a ff00 4142'.replace(/ /g, ''), 'hex');
    expect(() => readIdentifier(bytes, encoding)).toThrow(DicomServerError);
  });

  it('refuses an identifier larger than 1 MiB', () => {
    expect(() =>
      readIdentifier(Buffer.alloc(1024 * 1024 + 2), ENCODINGS['Explicit VR Little Endian']!),
    ).toThrow(expect.objectContaining({ code: 'ERR_DATASET_MALFORMED' }));
  });

  it('refuses encapsulated pixel data', () => {
    const encoding = ENCODINGS['Explicit VR Little Endian']!;
    const bytes = encodeTokens(
      [
        { type: 'fragments-start', tag: 0x7fe00010, vr: 'OB', offset: 0 },
        { type: 'fragment', length: 0, offset: 0, value: Buffer.alloc(0) },
        { type: 'fragments-end' },
      ],
      encoding,
    );
    expect(() => readIdentifier(bytes, encoding)).toThrow(
      expect.objectContaining({ code: 'ERR_DATASET_MALFORMED' }),
    );
  });
});

describe('text values', () => {
  it('decodes in the Specific Character Set of the identifier', () => {
    const latin1 = Buffer.from([0x4d, 0xfc, 0x6c, 0x6c, 0x65, 0x72, 0x5e, 0x48, 0x61, 0x6e, 0x73]);
    expect(decodeValue(latin1, 'PN', 'ISO_IR 100')).toBe('Müller^Hans');
    expect(decodeValue(Buffer.from('Müller^Hans', 'utf8'), 'PN', 'ISO_IR 192')).toBe('Müller^Hans');
  });

  it('decodes an ISO 2022 value with escape sequences', () => {
    // PS3.5 Annex H: Yamada^Tarou=山田^太郎.
    const bytes = Buffer.from(
      '59616d6164615e5461726f753d1b24423b3345441b28425e1b244242404f3a1b2842',
      'hex',
    );
    expect(decodeValue(bytes, 'PN', '\\ISO 2022 IR 87')).toBe('Yamada^Tarou=山田^太郎');
  });

  it('applies no character set to VRs outside PS3.5 §6.1.2.3', () => {
    // A CS or UI value is the default repertoire: its bytes are taken one by one.
    expect(decodeValue(Buffer.from([0x43, 0x54]), 'CS', 'ISO_IR 192')).toBe('CT');
    expect(decodeValue(text('1.2.3\0'), 'UI', 'ISO_IR 100')).toBe('1.2.3');
  });

  it('removes trailing spaces and NULs, and leading spaces except in long texts', () => {
    expect(decodeValue(text(' DOE^JOHN  '), 'PN', undefined)).toBe('DOE^JOHN');
    expect(decodeValue(text('1.2.840\0'), 'UI', undefined)).toBe('1.2.840');
    expect(decodeValue(text('  indented '), 'LT', undefined)).toBe('  indented');
    expect(decodeValue(text('  indented '), 'ST', undefined)).toBe('  indented');
    expect(decodeValue(Buffer.alloc(0), 'PN', undefined)).toBe('');
  });

  it('pads to even length: UI with NUL, others with a space', () => {
    expect(encodeValue('1.2.3', 'UI')).toEqual(text('1.2.3\0'));
    expect(encodeValue('CT', 'CS')).toEqual(text('CT'));
    expect(encodeValue('DOE', 'PN')).toEqual(text('DOE '));
    expect(encodeValue('', 'PN')).toEqual(Buffer.alloc(0));
  });

  it('writes text beyond ASCII as UTF-8', () => {
    expect(encodeValue('Müller', 'PN')).toEqual(Buffer.from('Müller ', 'utf8'));
    expect(decodeValue(encodeValue('王^小東', 'PN'), 'PN', UTF8_CHARACTER_SET)).toBe('王^小東');
  });

  it('tells ASCII text from the rest', () => {
    expect(isAsciiText('DOE^JOHN 1.2 \\ *')).toBe(true);
    expect(isAsciiText('')).toBe(true);
    expect(isAsciiText('Müller')).toBe(false);
    expect(isAsciiText('山田')).toBe(false);
  });
});
