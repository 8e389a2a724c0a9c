/**
 * Picks the attributes the index needs out of a received data set, and decodes them (text in
 * its Specific Character Set, numbers from IS, trailing padding removed): values of the top
 * level, and the item keys of the sequence keys the index holds (dicom/query/model.ts
 * SEQUENCE_KEYS) at depth 1 inside those top-level sequences, never whole sequences.
 *
 * Layer: services.
 */

import { decodeText } from '../dicom/charset.js';
import {
  SEQUENCE_KEYS_BY_TAG,
  type SequenceKey,
  type SequenceValues,
} from '../dicom/query/model.js';
import type { DatasetToken } from '../dicom/reader/dataset-reader.js';
import type { Vr } from '../dicom/vr.js';
import type { InstanceAttributes } from './ports.js';

/** Data set tags the index uses (PS3.6 keywords), with the field each fills. */
export const IndexedTag = {
  SpecificCharacterSet: 0x00080005,
  SOPClassUID: 0x00080016,
  SOPInstanceUID: 0x00080018,
  StudyDate: 0x00080020,
  SeriesDate: 0x00080021,
  StudyTime: 0x00080030,
  SeriesTime: 0x00080031,
  AccessionNumber: 0x00080050,
  Modality: 0x00080060,
  ReferringPhysicianName: 0x00080090,
  StudyDescription: 0x00081030,
  SeriesDescription: 0x0008103e,
  PatientName: 0x00100010,
  PatientID: 0x00100020,
  IssuerOfPatientID: 0x00100021,
  PatientBirthDate: 0x00100030,
  PatientSex: 0x00100040,
  PatientAge: 0x00101010,
  BodyPartExamined: 0x00180015,
  ProtocolName: 0x00181030,
  StudyInstanceUID: 0x0020000d,
  SeriesInstanceUID: 0x0020000e,
  StudyID: 0x00200010,
  SeriesNumber: 0x00200011,
  InstanceNumber: 0x00200013,
} as const;

const WANTED: ReadonlySet<number> = new Set(Object.values(IndexedTag));

/** True for a top-level tag whose value the index needs. */
export function isIndexedTag(tag: number, depth: number): boolean {
  return depth === 0 && WANTED.has(tag);
}

/** Collected raw values by tag, with their VR. */
export type CollectedValues = ReadonlyMap<number, { readonly vr: Vr; readonly value: Buffer }>;

/** A collected raw value of a sequence item. */
interface CollectedItemValue {
  readonly tag: number;
  readonly vr: Vr;
  readonly value: Buffer;
}

/** A top-level sequence the index holds, with the raw values of its items' item keys. */
export interface CollectedSequence {
  readonly tag: number;
  readonly items: readonly (readonly CollectedItemValue[])[];
}

/** A sequence being read: its key and the items so far. */
interface OpenSequence {
  readonly key: SequenceKey;
  readonly items: CollectedItemValue[][];
}

/** Items collected of one sequence at most; later ones are skipped (real ones hold a few). */
export const MAX_COLLECTED_ITEMS = 64;

/**
 * Collects what the index needs while a DatasetReader walks a data set: give `collect` and
 * `onToken` to the reader. Top-level values of `IndexedTag`, and the item keys of the indexed
 * sequences at depth 1 (in their first MAX_COLLECTED_ITEMS items); values in deeper sequences
 * and in other sequences are not collected. A data set without those sequences costs nothing
 * more than a map lookup per top-level sequence.
 */
export class IndexedValueCollector {
  readonly values = new Map<number, { vr: Vr; value: Buffer }>();
  readonly sequences: CollectedSequence[] = [];
  /** How many sequences are open (indexed or not): an indexed one is read at depth 1 only. */
  #depth = 0;
  #open: OpenSequence | undefined;
  /** The item of `#open` being read, when it is one that is kept. */
  #item: CollectedItemValue[] | undefined;

  /** The reader's `collect`. */
  readonly collect = (tag: number, _vr: Vr, depth: number): boolean => {
    if (depth === 0) return WANTED.has(tag);
    return depth === 1 && this.#item !== undefined && this.#open?.key.itemKeys.has(tag) === true;
  };

  /** The reader's `onToken`. */
  readonly onToken = (token: DatasetToken): void => {
    switch (token.type) {
      case 'element':
        if (token.value === undefined) return;
        if (this.#depth === 0) this.values.set(token.tag, { vr: token.vr, value: token.value });
        else if (this.#depth === 1)
          this.#item?.push({ tag: token.tag, vr: token.vr, value: token.value });
        return;
      case 'sequence-start': {
        this.#depth += 1;
        const key = this.#depth === 1 ? SEQUENCE_KEYS_BY_TAG.get(token.tag) : undefined;
        if (key !== undefined) this.#open = { key, items: [] };
        return;
      }
      case 'item-start':
        if (this.#depth === 1 && this.#open !== undefined) {
          this.#item = this.#open.items.length < MAX_COLLECTED_ITEMS ? [] : undefined;
          if (this.#item !== undefined) this.#open.items.push(this.#item);
        }
        return;
      case 'item-end':
        if (this.#depth === 1) this.#item = undefined;
        return;
      case 'sequence-end':
        this.#depth -= 1;
        if (this.#depth === 0 && this.#open !== undefined) {
          this.sequences.push({ tag: this.#open.key.tag, items: this.#open.items });
          this.#open = undefined;
        }
        return;
      default:
        return;
    }
  };
}

function trimmed(text: string): string {
  return text.replace(/[\0 ]+$/, '').replace(/^ +/, '');
}

/** The UID values (SOP class/instance, study, series) with their padding removed. */
export function uidValue(values: CollectedValues, tag: number): string | undefined {
  const entry = values.get(tag);
  if (entry === undefined) return undefined;
  return entry.value.toString('latin1').replace(/[\0 ]+$/, '');
}

/** A value as the index keeps it: decoded, trimmed, NUL-free; null when empty. */
function indexedText(
  entry: { readonly vr: Vr; readonly value: Buffer },
  charset: string | undefined,
): string | null {
  // An embedded NUL (not allowed in text VRs, PS3.5 §6.2) cannot be stored in PostgreSQL
  // text: it becomes U+FFFD in the index; the file keeps the bytes received.
  const decoded = trimmed(decodeText(entry.value, charset, entry.vr)).replace(/\0/g, '\uFFFD');
  return decoded === '' ? null : decoded;
}

/**
 * The indexed sequences' items, decoded in the data set's Specific Character Set. Items with
 * no value for any item key are left out, and so is a sequence left without items: the index
 * keeps what it can match and return.
 */
function decodeSequences(
  sequences: readonly CollectedSequence[],
  charset: string | undefined,
): SequenceValues[] {
  const decoded: SequenceValues[] = [];
  for (const sequence of sequences) {
    const items = sequence.items
      .map((item) =>
        item.flatMap((entry) => {
          const value = indexedText(entry, charset);
          return value === null ? [] : [{ tag: entry.tag, value }];
        }),
      )
      .filter((item) => item.length > 0);
    if (items.length > 0) decoded.push({ tag: sequence.tag, items });
  }
  return decoded;
}

/** Decodes the collected values (and indexed sequences, if any) into the index's attributes. */
export function decodeAttributes(
  values: CollectedValues,
  sequences: readonly CollectedSequence[] = [],
): InstanceAttributes {
  const charset = values.get(IndexedTag.SpecificCharacterSet)?.value.toString('latin1');
  const text = (tag: number): string | null => {
    const entry = values.get(tag);
    return entry === undefined ? null : indexedText(entry, charset);
  };
  const integer = (tag: number): number | null => {
    const value = text(tag);
    if (value === null) return null;
    const n = Number.parseInt(value, 10);
    return Number.isSafeInteger(n) && n >= -2_147_483_648 && n <= 2_147_483_647 ? n : null;
  };
  return {
    patientId: text(IndexedTag.PatientID),
    issuerOfPatientId: text(IndexedTag.IssuerOfPatientID),
    patientName: text(IndexedTag.PatientName),
    patientBirthDate: text(IndexedTag.PatientBirthDate),
    patientSex: text(IndexedTag.PatientSex),
    patientAge: text(IndexedTag.PatientAge),
    studyInstanceUid: uidValue(values, IndexedTag.StudyInstanceUID) ?? '',
    studyDate: text(IndexedTag.StudyDate),
    studyTime: text(IndexedTag.StudyTime),
    accessionNumber: text(IndexedTag.AccessionNumber),
    studyId: text(IndexedTag.StudyID),
    studyDescription: text(IndexedTag.StudyDescription),
    referringPhysicianName: text(IndexedTag.ReferringPhysicianName),
    seriesInstanceUid: uidValue(values, IndexedTag.SeriesInstanceUID) ?? '',
    modality: text(IndexedTag.Modality),
    seriesNumber: integer(IndexedTag.SeriesNumber),
    seriesDescription: text(IndexedTag.SeriesDescription),
    bodyPartExamined: text(IndexedTag.BodyPartExamined),
    seriesDate: text(IndexedTag.SeriesDate),
    seriesTime: text(IndexedTag.SeriesTime),
    protocolName: text(IndexedTag.ProtocolName),
    instanceNumber: integer(IndexedTag.InstanceNumber),
    ...decodedSequences(sequences, charset),
  };
}

function decodedSequences(
  sequences: readonly CollectedSequence[],
  charset: string | undefined,
): { sequences?: SequenceValues[] } {
  if (sequences.length === 0) return {};
  const decoded = decodeSequences(sequences, charset);
  return decoded.length === 0 ? {} : { sequences: decoded };
}
