/**
 * One key of a C-FIND, C-MOVE or C-GET identifier as the request readers see it: its value
 * decoded and read as a match, or refused when it cannot be matched (0xC000); where its level
 * lies against the request's; and the refusals with their statuses (PS3.4 Tables C.4-1 to
 * C.4-3). Shared by query-request.ts and query-request-sequences.ts.
 *
 * Layer: services. Pure.
 */

import type { IdentifierElement } from '../dicom/query/identifier.js';
import { matchValueProblem, valueMatchOf } from '../dicom/query/matching.js';
import {
  levelOfEntity,
  QUERY_LEVELS,
  type QueryCondition,
  type QueryKey,
  type QueryKeyword,
  type QueryLevel,
  type QueryRoot,
  type SequenceCondition,
  type SequenceKeyword,
  type ValueMatch,
} from '../dicom/query/model.js';
import { decodeValue } from '../dicom/query/values.js';
import type { Vr } from '../dicom/vr.js';
import { Status } from '../network/dimse/status.js';

/**
 * Most values one key's list may hold (a UID list, PS3.4 §C.2.2.2.2): a 64 KiB identifier holds
 * some 1,100 UIDs, or 30,000 one-digit values, which no query needs.
 */
export const MAX_LIST_VALUES = 10_000;

/** Identifier elements that are not keys of the information model (PS3.4 §C.4.1.1.3). */
export const IdentifierTag = {
  SpecificCharacterSet: 0x00080005,
  QueryRetrieveLevel: 0x00080052,
  RetrieveAETitle: 0x00080054,
  InstanceAvailability: 0x00080056,
} as const;

/** A request refused: the final status, its Error Comment (≤ 64 characters) and the culprits. */
export interface QueryRefusal {
  readonly status: number;
  readonly errorComment: string;
  readonly offendingElements?: readonly number[];
}

/** True when a request reader refused the request. */
export function isQueryRefusal<T>(result: T | QueryRefusal): result is QueryRefusal {
  return typeof result === 'object' && result !== null && 'status' in result;
}

/** A refusal with its comment cut to the 64 characters of an LO. */
export function refusal(
  status: number,
  errorComment: string,
  offendingElements?: readonly number[],
): QueryRefusal {
  return {
    status,
    errorComment: errorComment.slice(0, 64),
    ...(offendingElements !== undefined && { offendingElements }),
  };
}

/** An identifier that does not fit the SOP class (0xA900), naming the element. */
export function misplaced(comment: string, tag: number): QueryRefusal {
  return refusal(Status.DataSetDoesNotMatchSopClass, comment, [tag]);
}

/** Group lengths (gggg,0000) are not keys: neither matched nor answered. */
export function isGroupLength(tag: number): boolean {
  return (tag & 0xffff) === 0;
}

/** What the key readers need of the request. */
export interface ParseContext {
  readonly root: QueryRoot;
  readonly level: QueryLevel;
  readonly isRelational: boolean;
  readonly specificCharacterSet: string | undefined;
}

/** The keys of a request, as they are read. */
export interface ParsedKeys {
  readonly conditions: QueryCondition[];
  readonly returnKeys: QueryKeyword[];
  readonly sequenceConditions: SequenceCondition[];
  readonly returnSequences: SequenceKeyword[];
  readonly unsupportedKeys: number[];
}

/** Keys not read yet. */
export function emptyParsedKeys(): ParsedKeys {
  return {
    conditions: [],
    returnKeys: [],
    sequenceConditions: [],
    returnSequences: [],
    unsupportedKeys: [],
  };
}

/** The unique key of each level (PS3.4 Tables C.6-1 to C.6-4). */
export const UNIQUE_KEY_OF_LEVEL: Readonly<Record<QueryLevel, QueryKeyword>> = {
  PATIENT: 'PatientID',
  STUDY: 'StudyInstanceUID',
  SERIES: 'SeriesInstanceUID',
  IMAGE: 'SOPInstanceUID',
};

/** The key's unique-key role in a root: Patient ID is an ordinary study key in Study Root. */
export function isUniqueIn(key: QueryKey, root: QueryRoot): boolean {
  return key.isUnique && !(root === 'study' && key.entity === 'patient');
}

/** Levels from the key's to the query's: negative above, 0 at, positive below the level. */
export function depthOf(key: Pick<QueryKey, 'entity'>, context: ParseContext): number {
  return (
    QUERY_LEVELS.indexOf(levelOfEntity(key.entity, context.root)) -
    QUERY_LEVELS.indexOf(context.level)
  );
}

/**
 * A key's value decoded and read as a match, or the reason it cannot be (0xC000: a malformed
 * value, or a list of more than MAX_LIST_VALUES), naming the key and the offending element (the
 * item key's sequence, for an item key).
 */
export function matchOf(
  element: IdentifierElement,
  key: { readonly keyword: string; readonly vr: Vr },
  context: ParseContext,
  offendingTag = element.tag,
): ValueMatch | undefined | QueryRefusal {
  const text = decodeValue(element.value, key.vr, context.specificCharacterSet);
  const match = valueMatchOf(text, key.vr);
  if (match?.kind === 'list' && match.values.length > MAX_LIST_VALUES) {
    return refusal(
      Status.CannotUnderstand,
      `${key.keyword}: more than ${MAX_LIST_VALUES} values in the list`,
      [offendingTag],
    );
  }
  const problem = matchValueProblem(text, key.vr);
  if (problem !== undefined) {
    return refusal(Status.CannotUnderstand, `${key.keyword}: ${problem}`, [offendingTag]);
  }
  return match;
}

/** True when an element we do not match asks for a value anyway (PS3.4 §C.2.2.2). */
export function carriesMatchingValue(element: IdentifierElement, context: ParseContext): boolean {
  if (element.items !== undefined) {
    return element.items.some((item) => item.some((inner) => carriesMatchingValue(inner, context)));
  }
  if (element.value.length === 0) return false;
  const text = decodeValue(element.value, element.vr, context.specificCharacterSet);
  return valueMatchOf(text, element.vr) !== undefined;
}
