/**
 * Query/Retrieve requests (PS3.4 Annex C): the identifier of a C-FIND, C-MOVE or C-GET read,
 * checked against its information model and turned into a query on the index, or refused with
 * the status PS3.4 gives. Shared by the FIND, MOVE and GET handlers.
 *
 * How strict: a key below the Query/Retrieve Level with a value is refused (0xA900); one of
 * zero length asks nothing of the matching and is answered empty, as every requested key is
 * (PS3.4 §C.4.1.1.3.2). In a hierarchical C-FIND (relational not negotiated, §C.4.1.2.1) the
 * unique key of every level above must be present with a single value. Other keys above the
 * level with a value are matched too, rather than refused as a strict reading allows (DCMTK's
 * dcmqrscp refuses them when it checks identifiers): viewers commonly repeat the Patient ID in
 * a series query, and a match on it can only narrow what the unique keys select.
 * A relational C-FIND (§C.4.1.3.1) may match on any key at or above the level. A C-MOVE or
 * C-GET (§C.4.2.1.4.1, §C.4.3.1.3.1) names the level's unique key (a UID list, or one Patient
 * ID) and, unless relational retrieve was negotiated (§C.4.2.2.2), one value for each unique
 * key above. Its other keys are ignored rather than refused: a retrieve selects by unique keys
 * alone, and they cannot change what those select.
 *
 * Sequence keys the index holds (SEQUENCE_KEYS, PS3.4 §C.2.2.2.6) carry a single item: its item
 * keys with a value are matched within one stored item; with none (an empty item, or no item
 * at all) the sequence is a return key. Item keys we do not hold are answered empty, and those
 * carrying a value make the sequence count as an unsupported key (0xFF01), as do sequences we
 * do not hold.
 *
 * Layer: services. Pure: bytes in, a query or a refusal out.
 */

import { type IdentifierElement, readIdentifier } from '../dicom/query/identifier.js';
import { matchValueProblem, valueMatchOf } from '../dicom/query/matching.js';
import {
  type IndexQuery,
  type ItemCondition,
  levelOfEntity,
  levelsOf,
  QUERY_KEYS,
  QUERY_KEYS_BY_TAG,
  QUERY_LEVELS,
  type QueryCondition,
  type QueryKey,
  type QueryKeyword,
  type QueryLevel,
  type QueryRoot,
  SEQUENCE_KEYS_BY_TAG,
  type SequenceCondition,
  type SequenceKey,
  type SequenceKeyword,
  type ValueMatch,
} from '../dicom/query/model.js';
import { decodeValue } from '../dicom/query/values.js';
import { transferSyntaxProperties } from '../dicom/transfer-syntax.js';
import { SopClass } from '../dicom/uid.js';
import type { Vr } from '../dicom/vr.js';
import { DicomServerError } from '../errors.js';
import { Status } from '../network/dimse/status.js';

/** Identifier elements that are not keys of the information model (PS3.4 §C.4.1.1.3). */
export const IdentifierTag = {
  SpecificCharacterSet: 0x00080005,
  QueryRetrieveLevel: 0x00080052,
  RetrieveAETitle: 0x00080054,
  InstanceAvailability: 0x00080056,
} as const;

/** What the FIND, MOVE or GET handler is asked for. */
export type QueryPurpose = 'find' | 'retrieve';

/** A request read and checked: the query on the index and what the answers need. */
export interface QueryRequest {
  /**
   * The query; the handler adds the match limit and the person-name case option. A retrieve's
   * conditions are its unique keys, and it has no return keys.
   */
  readonly query: Omit<IndexQuery, 'limit' | 'isPersonNameCaseInsensitive'>;
  readonly level: QueryLevel;
  /** The identifier's Specific Character Set (0008,0005) as sent, undefined when absent or empty. */
  readonly specificCharacterSet: string | undefined;
  /** The identifier's top-level elements as read, for building the responses. */
  readonly requested: readonly IdentifierElement[];
  /**
   * Keys we neither match nor fill that carry a matching value: a C-FIND answers its matches
   * with 0xFF01 when there is any (PS3.4 Table C.4-1). Zero-length ones are not listed: they are
   * answered empty. In a C-MOVE or C-GET, the non-unique keys with a value, which are ignored.
   */
  readonly unsupportedKeys: readonly number[];
}

/** A request refused: the final status, its Error Comment (≤ 64 characters) and the culprits. */
export interface QueryRefusal {
  readonly status: number;
  readonly errorComment: string;
  readonly offendingElements?: readonly number[];
}

/** Options of `parseQueryRequest`. */
export interface QueryRequestOptions {
  /** Relational queries or retrieval were negotiated (SOP Class Extended Negotiation). */
  readonly isRelational: boolean;
}

/** The information model of a Query/Retrieve FIND, MOVE or GET SOP class, if it is one. */
export function queryRootOf(sopClassUid: string): QueryRoot | undefined {
  switch (sopClassUid) {
    case SopClass.PatientRootQueryRetrieveInformationModelFind:
    case SopClass.PatientRootQueryRetrieveInformationModelMove:
    case SopClass.PatientRootQueryRetrieveInformationModelGet:
      return 'patient';
    case SopClass.StudyRootQueryRetrieveInformationModelFind:
    case SopClass.StudyRootQueryRetrieveInformationModelMove:
    case SopClass.StudyRootQueryRetrieveInformationModelGet:
      return 'study';
    default:
      return undefined;
  }
}

/** True when `parseQueryRequest` refused the request. */
export function isQueryRefusal<T>(result: T | QueryRefusal): result is QueryRefusal {
  return typeof result === 'object' && result !== null && 'status' in result;
}

/**
 * Reads a C-FIND, C-MOVE or C-GET identifier (in the presentation context's transfer syntax)
 * and checks it against the information model: 0xA900 for an identifier that does not fit
 * (no or a wrong Query/Retrieve Level, a key out of place, a unique key missing), 0xC000 for
 * one we cannot process (unreadable, deflated, an unknown character set, a malformed value).
 */
export function parseQueryRequest(
  identifier: Buffer,
  transferSyntaxUid: string,
  root: QueryRoot,
  purpose: QueryPurpose,
  options: QueryRequestOptions,
): QueryRequest | QueryRefusal {
  const syntax = transferSyntaxProperties(transferSyntaxUid);
  if (syntax === undefined) return refusal(Status.CannotUnderstand, 'unknown transfer syntax');
  if (syntax.isDeflated) {
    return refusal(Status.CannotUnderstand, 'deflated identifiers are not supported');
  }
  let elements: IdentifierElement[];
  try {
    elements = readIdentifier(identifier, syntax);
  } catch (error) {
    if (!(error instanceof DicomServerError)) throw error;
    return refusal(Status.CannotUnderstand, 'identifier cannot be read');
  }
  const specificCharacterSet = characterSetOf(elements);
  if (isQueryRefusal(specificCharacterSet)) return specificCharacterSet;
  const level = levelOf(elements, root);
  if (isQueryRefusal(level)) return level;
  const context: ParseContext = {
    root,
    level,
    isRelational: options.isRelational,
    specificCharacterSet,
  };
  const parsed = purpose === 'find' ? findKeys(elements, context) : retrieveKeys(elements, context);
  if (isQueryRefusal(parsed)) return parsed;
  return {
    query: {
      root,
      level,
      conditions: parsed.conditions,
      returnKeys: parsed.returnKeys,
      ...(parsed.sequenceConditions.length > 0 && {
        sequenceConditions: parsed.sequenceConditions,
      }),
      ...(parsed.returnSequences.length > 0 && { returnSequences: parsed.returnSequences }),
    },
    level,
    specificCharacterSet,
    requested: elements,
    unsupportedKeys: parsed.unsupportedKeys,
  };
}

interface ParseContext {
  readonly root: QueryRoot;
  readonly level: QueryLevel;
  readonly isRelational: boolean;
  readonly specificCharacterSet: string | undefined;
}

interface ParsedKeys {
  readonly conditions: QueryCondition[];
  readonly returnKeys: QueryKeyword[];
  readonly sequenceConditions: SequenceCondition[];
  readonly returnSequences: SequenceKeyword[];
  readonly unsupportedKeys: number[];
}

function emptyParsedKeys(): ParsedKeys {
  return {
    conditions: [],
    returnKeys: [],
    sequenceConditions: [],
    returnSequences: [],
    unsupportedKeys: [],
  };
}

/** The unique key of each level (PS3.4 Tables C.6-1 to C.6-4). */
const UNIQUE_KEY_OF_LEVEL: Readonly<Record<QueryLevel, QueryKeyword>> = {
  PATIENT: 'PatientID',
  STUDY: 'StudyInstanceUID',
  SERIES: 'SeriesInstanceUID',
  IMAGE: 'SOPInstanceUID',
};

function refusal(
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

/** Group lengths (gggg,0000) are not keys: neither matched nor answered. */
export function isGroupLength(tag: number): boolean {
  return (tag & 0xffff) === 0;
}

function characterSetOf(elements: readonly IdentifierElement[]): string | undefined | QueryRefusal {
  const element = elements.find((e) => e.tag === IdentifierTag.SpecificCharacterSet);
  const value = element?.value.toString('latin1').replace(/[\0 ]+$/, '');
  if (value === undefined || value.trim() === '') return undefined;
  try {
    decodeValue(Buffer.from('A'), 'LO', value);
  } catch {
    return refusal(Status.CannotUnderstand, 'unsupported Specific Character Set', [
      IdentifierTag.SpecificCharacterSet,
    ]);
  }
  return value;
}

function levelOf(
  elements: readonly IdentifierElement[],
  root: QueryRoot,
): QueryLevel | QueryRefusal {
  const tag = IdentifierTag.QueryRetrieveLevel;
  const element = elements.find((e) => e.tag === tag);
  if (element === undefined)
    return refusal(Status.DataSetDoesNotMatchSopClass, 'no Query/Retrieve Level', [tag]);
  const text = decodeValue(element.value, 'CS', undefined);
  const level = levelsOf(root).find((candidate) => candidate === text);
  if (level !== undefined) return level;
  const comment = (QUERY_LEVELS as readonly string[]).includes(text)
    ? `no ${text} level in the ${root === 'patient' ? 'Patient' : 'Study'} Root model`
    : 'invalid Query/Retrieve Level';
  return refusal(Status.DataSetDoesNotMatchSopClass, comment, [tag]);
}

/** The key's unique-key role in a root: Patient ID is an ordinary study key in Study Root. */
function isUniqueIn(key: QueryKey, root: QueryRoot): boolean {
  return key.isUnique && !(root === 'study' && key.entity === 'patient');
}

/** Levels from the key's to the query's: negative above, 0 at, positive below the level. */
function depthOf(key: Pick<QueryKey, 'entity'>, context: ParseContext): number {
  return (
    QUERY_LEVELS.indexOf(levelOfEntity(key.entity, context.root)) -
    QUERY_LEVELS.indexOf(context.level)
  );
}

/**
 * A key's value decoded and read as a match, or the reason it cannot be (0xC000), naming the
 * key and the offending element (the item key's sequence, for an item key).
 */
function matchOf(
  element: IdentifierElement,
  key: { readonly keyword: string; readonly vr: Vr },
  context: ParseContext,
  offendingTag = element.tag,
): ValueMatch | undefined | QueryRefusal {
  const text = decodeValue(element.value, key.vr, context.specificCharacterSet);
  const problem = matchValueProblem(text, key.vr);
  if (problem !== undefined) {
    return refusal(Status.CannotUnderstand, `${key.keyword}: ${problem}`, [offendingTag]);
  }
  return valueMatchOf(text, key.vr);
}

/** True when an element we do not match asks for a value anyway (PS3.4 §C.2.2.2). */
function carriesMatchingValue(element: IdentifierElement, context: ParseContext): boolean {
  if (element.items !== undefined) {
    return element.items.some((item) => item.some((inner) => carriesMatchingValue(inner, context)));
  }
  if (element.value.length === 0) return false;
  const text = decodeValue(element.value, element.vr, context.specificCharacterSet);
  return valueMatchOf(text, element.vr) !== undefined;
}

/** A key of an identifier that the index holds: a plain key or a sequence key. */
type KnownKey =
  | { readonly kind: 'key'; readonly element: IdentifierElement; readonly key: QueryKey }
  | { readonly kind: 'sequence'; readonly element: IdentifierElement; readonly key: SequenceKey };

/** Skips the elements that are not keys; sorts the others into known keys and the rest. */
function* keysOf(
  elements: readonly IdentifierElement[],
  context: ParseContext,
  unsupportedKeys: number[],
): Generator<KnownKey> {
  for (const element of elements) {
    if (isGroupLength(element.tag)) continue;
    if (
      element.tag === IdentifierTag.SpecificCharacterSet ||
      element.tag === IdentifierTag.QueryRetrieveLevel ||
      element.tag === IdentifierTag.RetrieveAETitle ||
      element.tag === IdentifierTag.InstanceAvailability
    ) {
      continue;
    }
    const sequence =
      element.items === undefined ? undefined : SEQUENCE_KEYS_BY_TAG.get(element.tag);
    if (sequence !== undefined) {
      yield { kind: 'sequence', element, key: sequence };
      continue;
    }
    const key = QUERY_KEYS_BY_TAG.get(element.tag);
    if (key === undefined || element.items !== undefined) {
      if (carriesMatchingValue(element, context)) unsupportedKeys.push(element.tag);
      continue;
    }
    yield { kind: 'key', element, key };
  }
}

/**
 * A sequence key of a C-FIND (PS3.4 §C.2.2.2.6), added to the parsed keys: a return key, and a
 * condition when its item has item keys with a value. Refused when it has several items
 * (0xA900), an item key's value cannot be matched (0xC000), or it is below the level with one.
 */
function addSequenceKey(
  element: IdentifierElement,
  sequence: SequenceKey,
  context: ParseContext,
  parsed: ParsedKeys,
): QueryRefusal | undefined {
  const items = element.items ?? [];
  if (items.length > 1) return misplaced(`${sequence.keyword} needs a single item`, element.tag);
  const itemConditions: ItemCondition[] = [];
  let isUnsupported = false;
  for (const inner of items[0] ?? []) {
    if (isGroupLength(inner.tag)) continue;
    const itemKey = inner.items === undefined ? sequence.itemKeys.get(inner.tag) : undefined;
    if (itemKey === undefined) {
      isUnsupported ||= carriesMatchingValue(inner, context);
      continue;
    }
    const match = matchOf(inner, itemKey, context, element.tag);
    if (isQueryRefusal(match)) return match;
    if (match !== undefined) itemConditions.push({ keyword: itemKey.keyword, match });
  }
  if (isUnsupported) parsed.unsupportedKeys.push(element.tag);
  if (depthOf(sequence, context) > 0) {
    if (itemConditions.length === 0) return undefined;
    return misplaced(`${sequence.keyword} is below the ${context.level} level`, element.tag);
  }
  parsed.returnSequences.push(sequence.keyword);
  if (itemConditions.length > 0) {
    parsed.sequenceConditions.push({ keyword: sequence.keyword, itemConditions });
  }
  return undefined;
}

/** The keys of a C-FIND: matching and return keys at and above the level. */
function findKeys(
  elements: readonly IdentifierElement[],
  context: ParseContext,
): ParsedKeys | QueryRefusal {
  const parsed = emptyParsedKeys();
  for (const known of keysOf(elements, context, parsed.unsupportedKeys)) {
    if (known.kind === 'sequence') {
      const refused = addSequenceKey(known.element, known.key, context, parsed);
      if (refused !== undefined) return refused;
      continue;
    }
    const { element, key } = known;
    const match = matchOf(element, key, context);
    if (isQueryRefusal(match)) return match;
    const depth = depthOf(key, context);
    if (depth > 0) {
      if (match === undefined) continue;
      return misplaced(`${key.keyword} is below the ${context.level} level`, element.tag);
    }
    if (depth < 0 && !context.isRelational) {
      if (isUniqueIn(key, context.root) && match?.kind !== 'single') {
        return misplaced(`${key.keyword} needs a single value`, element.tag);
      }
    }
    parsed.returnKeys.push(key.keyword);
    if (match !== undefined) parsed.conditions.push({ keyword: key.keyword, match });
  }
  if (!context.isRelational) {
    const missing = missingUniqueKeysAbove(parsed.conditions, context);
    if (missing !== undefined) return missing;
  }
  return parsed;
}

/** The keys of a C-MOVE or C-GET: the unique keys of the level and above. */
function retrieveKeys(
  elements: readonly IdentifierElement[],
  context: ParseContext,
): ParsedKeys | QueryRefusal {
  const parsed = emptyParsedKeys();
  for (const known of keysOf(elements, context, parsed.unsupportedKeys)) {
    const { element } = known;
    if (known.kind === 'sequence') {
      // Not a unique key: ignored, as other keys with a value are.
      if (carriesMatchingValue(element, context)) parsed.unsupportedKeys.push(element.tag);
      continue;
    }
    const { key } = known;
    const match = matchOf(element, key, context);
    if (isQueryRefusal(match)) return match;
    if (!isUniqueIn(key, context.root)) {
      if (match !== undefined) parsed.unsupportedKeys.push(element.tag);
      continue;
    }
    if (match === undefined) continue;
    const depth = depthOf(key, context);
    if (depth > 0) {
      return misplaced(`${key.keyword} is below the ${context.level} level`, element.tag);
    }
    // A UID list at the level, or above it in relational retrieve; one Patient ID only
    // (PS3.4 §C.4.2.1.4.1 Note).
    const isListAllowed = key.vr === 'UI' && (depth === 0 || context.isRelational);
    if (match.kind !== 'single' && !(match.kind === 'list' && isListAllowed)) {
      return misplaced(`${key.keyword} needs a single value`, element.tag);
    }
    parsed.conditions.push({ keyword: key.keyword, match });
  }
  const keyword = UNIQUE_KEY_OF_LEVEL[context.level];
  if (!parsed.conditions.some((condition) => condition.keyword === keyword)) {
    return misplaced(`${keyword} is required`, tagOf(keyword));
  }
  if (!context.isRelational) {
    const missing = missingUniqueKeysAbove(parsed.conditions, context);
    if (missing !== undefined) return missing;
  }
  return parsed;
}

/** The first unique key of a level above that has no condition (hierarchical requests). */
function missingUniqueKeysAbove(
  conditions: readonly QueryCondition[],
  context: ParseContext,
): QueryRefusal | undefined {
  const levels = levelsOf(context.root);
  for (const above of levels.slice(0, levels.indexOf(context.level))) {
    const keyword = UNIQUE_KEY_OF_LEVEL[above];
    if (!conditions.some((condition) => condition.keyword === keyword)) {
      return misplaced(`${keyword} is required below the ${above} level`, tagOf(keyword));
    }
  }
  return undefined;
}

function misplaced(comment: string, tag: number): QueryRefusal {
  return refusal(Status.DataSetDoesNotMatchSopClass, comment, [tag]);
}

function tagOf(keyword: QueryKeyword): number {
  return QUERY_KEYS.get(keyword)!.tag;
}
