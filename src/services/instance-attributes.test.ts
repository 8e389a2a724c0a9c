/**
 * What the receive path picks out of a data set for the index: the top-level values, and the
 * item keys of the indexed sequence keys at depth 1 of those sequences only (not deeper, not in
 * other sequences, not past the item cap), decoded in the data set's character set; and a
 * data set without them costs no sequences at all.
 *
 * Layer: services (unit test).
 */
import { describe, expect, it } from 'vitest';
import type { DatasetToken } from '../dicom/reader/dataset-reader.js';
import { DatasetReader } from '../dicom/reader/dataset-reader.js';
import type { Vr } from '../dicom/vr.js';
import { type DatasetEncoding, encodeTokens } from '../dicom/writer/dataset-writer.js';
import {
  decodeAttributes,
  IndexedValueCollector,
  MAX_COLLECTED_ITEMS,
} from './instance-attributes.js';

const Tag = {
  SpecificCharacterSet: 0x00080005,
  StudyInstanceUID: 0x0020000d,
  SeriesInstanceUID: 0x0020000e,
  PatientID: 0x00100020,
  ProcedureCodeSequence: 0x00081032,
  ReferencedStudySequence: 0x00081110,
  OtherPatientIDsSequence: 0x00101002,
  RequestAttributesSequence: 0x00400275,
  CodeValue: 0x00080100,
  CodingSchemeDesignator: 0x00080102,
  CodeMeaning: 0x00080104,
  ConceptNameCodeSequence: 0x0040a043,
  TypeOfPatientID: 0x00100022,
  RequestedProcedureID: 0x00401001,
} as const;

const ENCODINGS: Record<string, DatasetEncoding> = {
  'Explicit VR Little Endian': { isExplicitVr: true, isLittleEndian: true },
  'Implicit VR Little Endian': { isExplicitVr: false, isLittleEndian: true },
  'Explicit VR Big Endian': { isExplicitVr: true, isLittleEndian: false },
};

/** A tree of elements, written as tokens: a sequence is [tag, items]. */
type Node = readonly [number, Vr, string | Buffer] | readonly [number, readonly Node[][]];

function* tokensOf(nodes: readonly Node[]): Generator<DatasetToken> {
  for (const node of nodes) {
    const [tag, second] = node;
    if (Array.isArray(second)) {
      yield { type: 'sequence-start', tag, vr: 'SQ', length: undefined, offset: 0 };
      for (const item of second as Node[][]) {
        yield { type: 'item-start', length: undefined, offset: 0 };
        yield* tokensOf(item);
        yield { type: 'item-end', hasDelimiter: true };
      }
      yield { type: 'sequence-end', hasDelimiter: true };
      continue;
    }
    const [, vr, text] = node as readonly [number, Vr, string | Buffer];
    let value = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
    if (value.length % 2 === 1)
      value = Buffer.concat([value, Buffer.from(vr === 'UI' ? [0] : [32])]);
    yield { type: 'element', tag, vr, length: value.length, offset: 0, value };
  }
}

/** Reads a data set the way the receive path does, in small chunks. */
function collect(nodes: readonly Node[], encoding: DatasetEncoding): IndexedValueCollector {
  const bytes = encodeTokens(tokensOf(nodes), encoding);
  const collector = new IndexedValueCollector();
  const reader = new DatasetReader({
    ...encoding,
    maxValueLength: 1024,
    collect: collector.collect,
    onToken: collector.onToken,
  });
  for (let at = 0; at < bytes.length; at += 7) reader.push(bytes.subarray(at, at + 7));
  reader.end();
  return collector;
}

const code = (value: string, meaning?: string): Node[] => [
  [Tag.CodeValue, 'SH', value],
  [Tag.CodingSchemeDesignator, 'SH', 'LOCAL'],
  ...(meaning === undefined ? [] : [[Tag.CodeMeaning, 'LO', meaning] as const]),
];

const DATASET: readonly Node[] = [
  [Tag.SpecificCharacterSet, 'CS', 'ISO_IR 100'],
  [Tag.ProcedureCodeSequence, [code('P1', 'Thorax \xe4rztlich'), code('P2')]],
  // Code values inside another sequence, and a level deeper: not the index's.
  [Tag.ReferencedStudySequence, [[[Tag.CodeValue, 'SH', 'NOT-MINE']]]],
  [Tag.PatientID, 'LO', 'PID-1'],
  [
    Tag.OtherPatientIDsSequence,
    [
      [
        [Tag.PatientID, 'LO', 'OTHER-1'],
        [Tag.TypeOfPatientID, 'CS', 'TEXT'],
      ],
      // An item holding nothing the index keeps, and one with only padding.
      [[Tag.ConceptNameCodeSequence, [[[Tag.CodeValue, 'SH', 'NESTED']]]]],
      [[Tag.PatientID, 'LO', '  ']],
    ],
  ],
  [Tag.StudyInstanceUID, 'UI', '1.2.3'],
  [Tag.SeriesInstanceUID, 'UI', '1.2.3.4'],
  // A sequence with no item value at all.
  [Tag.RequestAttributesSequence, [[[Tag.ConceptNameCodeSequence, [code('X')]]]]],
];

describe('the indexed values of a received data set', () => {
  for (const [name, encoding] of Object.entries(ENCODINGS)) {
    it(`collects the item keys of the indexed sequences at depth 1 only (${name})`, () => {
      const collector = collect(DATASET, encoding);
      expect([...collector.values.keys()].sort()).toEqual(
        [
          Tag.SpecificCharacterSet,
          Tag.PatientID,
          Tag.StudyInstanceUID,
          Tag.SeriesInstanceUID,
        ].sort(),
      );
      const attributes = decodeAttributes(collector.values, collector.sequences);
      expect(attributes.patientId).toBe('PID-1');
      expect(attributes.sequences).toEqual([
        {
          tag: Tag.ProcedureCodeSequence,
          items: [
            [
              { tag: Tag.CodeValue, value: 'P1' },
              { tag: Tag.CodingSchemeDesignator, value: 'LOCAL' },
              { tag: Tag.CodeMeaning, value: 'Thorax ärztlich' },
            ],
            [
              { tag: Tag.CodeValue, value: 'P2' },
              { tag: Tag.CodingSchemeDesignator, value: 'LOCAL' },
            ],
          ],
        },
        {
          tag: Tag.OtherPatientIDsSequence,
          items: [
            [
              { tag: Tag.PatientID, value: 'OTHER-1' },
              { tag: Tag.TypeOfPatientID, value: 'TEXT' },
            ],
          ],
        },
      ]);
    });
  }

  it('has no sequences for a data set without the indexed ones', () => {
    const collector = collect(
      [
        [Tag.ReferencedStudySequence, [[[Tag.CodeValue, 'SH', 'NOT-MINE']]]],
        [Tag.PatientID, 'LO', 'PID-1'],
        [Tag.StudyInstanceUID, 'UI', '1.2.3'],
      ],
      ENCODINGS['Explicit VR Little Endian']!,
    );
    expect(collector.sequences).toEqual([]);
    const attributes = decodeAttributes(collector.values, collector.sequences);
    expect('sequences' in attributes).toBe(false);
    expect(decodeAttributes(collector.values)).toEqual(attributes);
  });

  it(`collects the first ${MAX_COLLECTED_ITEMS} items of a sequence, and no value past the length cap`, () => {
    const items = Array.from({ length: MAX_COLLECTED_ITEMS + 5 }, (_, i) => code(`C${i + 1}`));
    const long = 'L'.repeat(1026);
    const collector = collect(
      [
        [Tag.ProcedureCodeSequence, [[[Tag.CodeMeaning, 'LO', long]], ...items]],
        [Tag.StudyInstanceUID, 'UI', '1.2.3'],
      ],
      ENCODINGS['Explicit VR Little Endian']!,
    );
    const [sequence] = decodeAttributes(collector.values, collector.sequences).sequences ?? [];
    // The first item held only the over-long value: nothing of it is kept.
    expect(sequence?.items).toHaveLength(MAX_COLLECTED_ITEMS - 1);
    expect(sequence?.items.at(-1)?.[0]).toEqual({
      tag: Tag.CodeValue,
      value: `C${MAX_COLLECTED_ITEMS - 1}`,
    });
    expect(collector.values.get(Tag.StudyInstanceUID)).toBeDefined();
  });
});
