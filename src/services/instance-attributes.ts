/**
 * Picks the attributes the index needs out of a received data set's top level, and decodes
 * them (text in its Specific Character Set, numbers from IS, trailing padding removed).
 *
 * Layer: services.
 */

import { decodeText } from '../dicom/charset.js';
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

function trimmed(text: string): string {
  return text.replace(/[\0 ]+$/, '').replace(/^ +/, '');
}

/** The UID values (SOP class/instance, study, series) with their padding removed. */
export function uidValue(values: CollectedValues, tag: number): string | undefined {
  const entry = values.get(tag);
  if (entry === undefined) return undefined;
  return entry.value.toString('latin1').replace(/[\0 ]+$/, '');
}

/** Decodes the collected values into the index's attributes. */
export function decodeAttributes(values: CollectedValues): InstanceAttributes {
  const charset = values.get(IndexedTag.SpecificCharacterSet)?.value.toString('latin1');
  const text = (tag: number): string | null => {
    const entry = values.get(tag);
    if (entry === undefined) return null;
    // An embedded NUL (not allowed in text VRs, PS3.5 §6.2) cannot be stored in PostgreSQL
    // text: it becomes U+FFFD in the index; the file keeps the bytes received.
    const decoded = trimmed(decodeText(entry.value, charset, entry.vr)).replace(/\0/g, '\uFFFD');
    return decoded === '' ? null : decoded;
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
  };
}
