/**
 * The Query/Retrieve information models (PS3.4 Annex C): levels, the keys this server matches
 * and returns at each level, and the kinds of matching a key's value asks for. What a query is,
 * independent of where it comes from (a C-FIND identifier) or how it is answered (SQL on the
 * index).
 *
 * Layer: dicom. Pure data and types.
 */

import type { Vr } from '../vr.js';

/** Query/Retrieve Level (0008,0052), top to bottom. */
export const QUERY_LEVELS = ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'] as const;
export type QueryLevel = (typeof QUERY_LEVELS)[number];

/** The two information models: Patient Root and Study Root (PS3.4 §C.6.1, §C.6.2). */
export type QueryRoot = 'patient' | 'study';

/** The levels of a root, top to bottom: Study Root has no PATIENT level. */
export function levelsOf(root: QueryRoot): readonly QueryLevel[] {
  return root === 'patient' ? QUERY_LEVELS : QUERY_LEVELS.slice(1);
}

/**
 * A key the index can match and return, by its PS3.6 keyword. Patient keys live at the
 * PATIENT level of Patient Root and at the STUDY level of Study Root (PS3.4 §C.6.2.1).
 */
export interface QueryKey {
  readonly keyword: QueryKeyword;
  readonly tag: number;
  readonly vr: Vr;
  /** The entity that holds the value. */
  readonly entity: 'patient' | 'study' | 'series' | 'instance';
  /** The level's unique key (PS3.4 §C.2.2.1.1): matched by single value or UID list only. */
  readonly isUnique: boolean;
  /**
   * Computed from the entities below: the counts (matched by single value, rarely asked) and
   * the lists ModalitiesInStudy and SOPClassesInStudy (a study matches when any of its values
   * matches, PS3.4 §C.6.2.1.2).
   */
  readonly isComputed: boolean;
}

/** Keys the index holds, each with the entity it belongs to. */
const KEYS = [
  // Patient (PS3.4 Table C.6-1)
  { keyword: 'PatientName', tag: 0x00100010, vr: 'PN', entity: 'patient' },
  { keyword: 'PatientID', tag: 0x00100020, vr: 'LO', entity: 'patient', isUnique: true },
  { keyword: 'IssuerOfPatientID', tag: 0x00100021, vr: 'LO', entity: 'patient' },
  { keyword: 'PatientBirthDate', tag: 0x00100030, vr: 'DA', entity: 'patient' },
  { keyword: 'PatientSex', tag: 0x00100040, vr: 'CS', entity: 'patient' },
  {
    keyword: 'NumberOfPatientRelatedStudies',
    tag: 0x00201200,
    vr: 'IS',
    entity: 'patient',
    isComputed: true,
  },
  {
    keyword: 'NumberOfPatientRelatedSeries',
    tag: 0x00201202,
    vr: 'IS',
    entity: 'patient',
    isComputed: true,
  },
  {
    keyword: 'NumberOfPatientRelatedInstances',
    tag: 0x00201204,
    vr: 'IS',
    entity: 'patient',
    isComputed: true,
  },
  // Study (PS3.4 Table C.6-2, C.6-5)
  { keyword: 'StudyDate', tag: 0x00080020, vr: 'DA', entity: 'study' },
  { keyword: 'StudyTime', tag: 0x00080030, vr: 'TM', entity: 'study' },
  { keyword: 'AccessionNumber', tag: 0x00080050, vr: 'SH', entity: 'study' },
  { keyword: 'StudyID', tag: 0x00200010, vr: 'SH', entity: 'study' },
  { keyword: 'StudyInstanceUID', tag: 0x0020000d, vr: 'UI', entity: 'study', isUnique: true },
  { keyword: 'StudyDescription', tag: 0x00081030, vr: 'LO', entity: 'study' },
  { keyword: 'ReferringPhysicianName', tag: 0x00080090, vr: 'PN', entity: 'study' },
  { keyword: 'PatientAge', tag: 0x00101010, vr: 'AS', entity: 'study' },
  { keyword: 'ModalitiesInStudy', tag: 0x00080061, vr: 'CS', entity: 'study', isComputed: true },
  { keyword: 'SOPClassesInStudy', tag: 0x00080062, vr: 'UI', entity: 'study', isComputed: true },
  {
    keyword: 'NumberOfStudyRelatedSeries',
    tag: 0x00201206,
    vr: 'IS',
    entity: 'study',
    isComputed: true,
  },
  {
    keyword: 'NumberOfStudyRelatedInstances',
    tag: 0x00201208,
    vr: 'IS',
    entity: 'study',
    isComputed: true,
  },
  // Series (PS3.4 Table C.6-3)
  { keyword: 'Modality', tag: 0x00080060, vr: 'CS', entity: 'series' },
  { keyword: 'SeriesNumber', tag: 0x00200011, vr: 'IS', entity: 'series' },
  { keyword: 'SeriesInstanceUID', tag: 0x0020000e, vr: 'UI', entity: 'series', isUnique: true },
  { keyword: 'SeriesDescription', tag: 0x0008103e, vr: 'LO', entity: 'series' },
  { keyword: 'BodyPartExamined', tag: 0x00180015, vr: 'CS', entity: 'series' },
  { keyword: 'SeriesDate', tag: 0x00080021, vr: 'DA', entity: 'series' },
  { keyword: 'SeriesTime', tag: 0x00080031, vr: 'TM', entity: 'series' },
  { keyword: 'ProtocolName', tag: 0x00181030, vr: 'LO', entity: 'series' },
  {
    keyword: 'NumberOfSeriesRelatedInstances',
    tag: 0x00201209,
    vr: 'IS',
    entity: 'series',
    isComputed: true,
  },
  // Composite object instance (PS3.4 Table C.6-4)
  { keyword: 'InstanceNumber', tag: 0x00200013, vr: 'IS', entity: 'instance' },
  { keyword: 'SOPInstanceUID', tag: 0x00080018, vr: 'UI', entity: 'instance', isUnique: true },
  { keyword: 'SOPClassUID', tag: 0x00080016, vr: 'UI', entity: 'instance' },
] as const satisfies readonly {
  keyword: string;
  tag: number;
  vr: Vr;
  entity: QueryKey['entity'];
  isUnique?: boolean;
  isComputed?: boolean;
}[];

/** The keyword of a key the index holds. */
export type QueryKeyword = (typeof KEYS)[number]['keyword'];

/** The keys the index holds, by keyword. */
export const QUERY_KEYS: ReadonlyMap<QueryKeyword, QueryKey> = new Map(
  KEYS.map((key) => [
    key.keyword,
    {
      keyword: key.keyword,
      tag: key.tag,
      vr: key.vr,
      entity: key.entity,
      isUnique: 'isUnique' in key && key.isUnique,
      isComputed: 'isComputed' in key && key.isComputed,
    },
  ]),
);

/** The keys the index holds, by tag. */
export const QUERY_KEYS_BY_TAG: ReadonlyMap<number, QueryKey> = new Map(
  [...QUERY_KEYS.values()].map((key) => [key.tag, key]),
);

/** The level at which an entity's keys are found in a root (patient keys are study keys in Study Root). */
export function levelOfEntity(entity: QueryKey['entity'], root: QueryRoot): QueryLevel {
  switch (entity) {
    case 'patient':
      return root === 'patient' ? 'PATIENT' : 'STUDY';
    case 'study':
      return 'STUDY';
    case 'series':
      return 'SERIES';
    case 'instance':
      return 'IMAGE';
    default: {
      const never: never = entity;
      return never;
    }
  }
}

/**
 * What a key's value asks for (PS3.4 §C.2.2.2). Values are decoded text, their padding removed;
 * dates are YYYYMMDD, times HHMMSS[.FFFFFF] or a shorter prefix of it, as DICOM sends them.
 */
export type ValueMatch =
  /** Exactly this value (case-sensitive except PN when the case-insensitive option is on). */
  | { readonly kind: 'single'; readonly value: string }
  /** `*` any run of characters, `?` any one character; everything else literal. */
  | { readonly kind: 'wildcard'; readonly pattern: string }
  /** Inclusive; an absent bound is open. Dates, times and date-times only. */
  | { readonly kind: 'range'; readonly from?: string; readonly to?: string }
  /** Any of these values (a UID list, or a backslash-separated list of values). */
  | { readonly kind: 'list'; readonly values: readonly string[] };

/** One matching key of a query: its value must match for an entity to be a match. */
export interface QueryCondition {
  readonly keyword: QueryKeyword;
  readonly match: ValueMatch;
}

/**
 * Sequence keys the index holds (PS3.4 §C.2.2.2.6), with the item keys it keeps of their items:
 * the ones C-FIND peers commonly send. Each belongs to an entity, as plain keys do.
 */
const SEQUENCES = [
  // Patient (PS3.4 Table C.6-1)
  {
    keyword: 'OtherPatientIDsSequence',
    tag: 0x00101002,
    entity: 'patient',
    itemKeys: [
      { keyword: 'PatientID', tag: 0x00100020, vr: 'LO' },
      { keyword: 'IssuerOfPatientID', tag: 0x00100021, vr: 'LO' },
      { keyword: 'TypeOfPatientID', tag: 0x00100022, vr: 'CS' },
    ],
  },
  // Study (PS3.4 Table C.6-5)
  {
    keyword: 'IssuerOfAccessionNumberSequence',
    tag: 0x00080051,
    entity: 'study',
    itemKeys: [
      { keyword: 'LocalNamespaceEntityID', tag: 0x00400031, vr: 'UT' },
      { keyword: 'UniversalEntityID', tag: 0x00400032, vr: 'UT' },
      { keyword: 'UniversalEntityIDType', tag: 0x00400033, vr: 'CS' },
    ],
  },
  {
    keyword: 'ProcedureCodeSequence',
    tag: 0x00081032,
    entity: 'study',
    itemKeys: [
      { keyword: 'CodeValue', tag: 0x00080100, vr: 'SH' },
      { keyword: 'CodingSchemeDesignator', tag: 0x00080102, vr: 'SH' },
      { keyword: 'CodeMeaning', tag: 0x00080104, vr: 'LO' },
    ],
  },
  // Series (PS3.4 Table C.6-3)
  {
    keyword: 'RequestAttributesSequence',
    tag: 0x00400275,
    entity: 'series',
    itemKeys: [
      { keyword: 'RequestedProcedureID', tag: 0x00401001, vr: 'SH' },
      { keyword: 'ScheduledProcedureStepID', tag: 0x00400009, vr: 'SH' },
      { keyword: 'AccessionNumber', tag: 0x00080050, vr: 'SH' },
      { keyword: 'RequestedProcedureDescription', tag: 0x00321060, vr: 'LO' },
    ],
  },
] as const satisfies readonly {
  keyword: string;
  tag: number;
  entity: Exclude<QueryKey['entity'], 'instance'>;
  itemKeys: readonly { keyword: string; tag: number; vr: Vr }[];
}[];

/** The keyword of a sequence key the index holds. */
export type SequenceKeyword = (typeof SEQUENCES)[number]['keyword'];

/** The keyword of an item key the index keeps of a sequence's items. */
export type SequenceItemKeyword = (typeof SEQUENCES)[number]['itemKeys'][number]['keyword'];

/** An attribute of a sequence's items that the index keeps and matches. */
export interface SequenceItemKey {
  readonly keyword: SequenceItemKeyword;
  readonly tag: number;
  readonly vr: Vr;
}

/** A sequence key the index holds: its items' keys, by tag, and the entity it belongs to. */
export interface SequenceKey {
  readonly keyword: SequenceKeyword;
  readonly tag: number;
  readonly entity: Exclude<QueryKey['entity'], 'instance'>;
  readonly itemKeys: ReadonlyMap<number, SequenceItemKey>;
}

/** The sequence keys the index holds, by keyword. */
export const SEQUENCE_KEYS: ReadonlyMap<SequenceKeyword, SequenceKey> = new Map(
  SEQUENCES.map((sequence) => [
    sequence.keyword,
    {
      keyword: sequence.keyword,
      tag: sequence.tag,
      entity: sequence.entity,
      itemKeys: new Map<number, SequenceItemKey>(
        sequence.itemKeys.map((item) => [item.tag, { ...item }]),
      ),
    },
  ]),
);

/** The sequence keys the index holds, by tag. */
export const SEQUENCE_KEYS_BY_TAG: ReadonlyMap<number, SequenceKey> = new Map(
  [...SEQUENCE_KEYS.values()].map((sequence) => [sequence.tag, sequence]),
);

/** One item key's value in a sequence condition. */
export interface ItemCondition {
  readonly keyword: SequenceItemKeyword;
  readonly match: ValueMatch;
}

/**
 * A sequence key with matching item keys (PS3.4 §C.2.2.2.6): an entity matches when one of its
 * stored items matches every item condition.
 */
export interface SequenceCondition {
  readonly keyword: SequenceKeyword;
  readonly itemConditions: readonly ItemCondition[];
}

/** A sequence's items as the index holds them: each item's kept values (decoded text). */
export interface SequenceValues {
  /** The sequence's tag (a key of SEQUENCE_KEYS_BY_TAG). */
  readonly tag: number;
  /** Items in their order; each holds the item keys that had a value, in any order. */
  readonly items: readonly (readonly { readonly tag: number; readonly value: string }[])[];
}

/** A query on the index: matches at one level, with the keys each match returns. */
export interface IndexQuery {
  readonly root: QueryRoot;
  readonly level: QueryLevel;
  /** All must match (universal-match keys are not conditions). */
  readonly conditions: readonly QueryCondition[];
  /** Keys whose values each match carries; a key above the level comes from the parent entity. */
  readonly returnKeys: readonly QueryKeyword[];
  /** Sequence keys with matching item keys; all must match too. */
  readonly sequenceConditions?: readonly SequenceCondition[];
  /**
   * Sequences whose items each match carries (in IndexMatch.sequences): the items that match
   * the sequence's condition if it has one, else all. A sequence above the level comes from
   * the parent entity.
   */
  readonly returnSequences?: readonly SequenceKeyword[];
  /** Person names matched without regard to case (single values and wildcards). */
  readonly isPersonNameCaseInsensitive?: boolean;
  /** At most this many matches; absent means all. */
  readonly limit?: number;
}

/** One stored item of a returned sequence: the item keys the index holds a value for. */
export type SequenceItemValues = Readonly<Partial<Record<SequenceItemKeyword, string>>>;

/**
 * One match: the returned keys' values (null when the index holds none), numbers for IS keys;
 * and, when the query asked for sequences, their items (an empty list when none is stored).
 */
export type IndexMatch = Readonly<Partial<Record<QueryKeyword, string | number | null>>> & {
  readonly sequences?: Readonly<Partial<Record<SequenceKeyword, readonly SequenceItemValues[]>>>;
};

/** An instance to retrieve, as the index knows it. */
export interface RetrievableInstance {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  /** Relative to the storage root in the index; absolute once handed to the services. */
  readonly filePath: string;
  readonly fileSize: number;
  /**
   * Why the instance cannot be sent, when its index row is unusable (its file path leads out of
   * the storage root): its sub-operation fails without being tried, the others go on.
   */
  readonly unavailable?: string;
}
