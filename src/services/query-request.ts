/**
 * Query/Retrieve requests (PS3.4 Annex C): the identifier of a C-FIND, C-MOVE or C-GET read,
 * checked against its information model and turned into a query on the index, or refused with
 * the status PS3.4 gives. Shared by the FIND, MOVE and GET handlers.
 *
 * Limits: an identifier is at most 64 KiB (MAX_REQUEST_IDENTIFIER_BYTES; a larger one is
 * refused with 0xC000, unread past the limit), and one key's list at most 10,000 values
 * (MAX_LIST_VALUES, 0xC000 naming the key): a UID list of a large series fits, and no request
 * keeps the event loop for long.
 *
 * How strict, key by key:
 * - A key at the level, or above it, is matched when it has a value and returned either way.
 *   Keys above the level are matched in a hierarchical C-FIND too (relational not negotiated,
 *   §C.4.1.2.1), rather than refused as a strict reading allows (DCMTK's dcmqrscp refuses them
 *   when it checks identifiers): viewers commonly repeat the Patient ID in a series query, and
 *   a match on it can only narrow what the unique keys select. A relational C-FIND
 *   (§C.4.1.3.1) matches on any key at or above the level in the same way.
 * - The unique key of a level above that is missing (or zero length) does not constrain the
 *   match, as in a relational request, although a hierarchical one (§C.4.1.2.1, §C.4.2.2.1)
 *   should carry one value for each. movescu and getscu default to Patient Root, and sites used
 *   to Orthanc or dcm4chee move a study by its Study Instance UID alone (`movescu -aem X -k
 *   QueryRetrieveLevel=STUDY -k StudyInstanceUID=...`); viewers ask for the series of a
 *   modality across studies. Given with a value, such a key must still be a single value in a
 *   hierarchical request (0xA900); one Patient ID only, in any retrieve (§C.4.2.1.4.1 Note).
 * - A C-FIND key below the level with a value (a series key such as Modality in a STUDY query,
 *   as Orthanc and dcm4chee take it) is ignored, answered empty and flagged with 0xFF01
 *   (optional key not supported, PS3.4 Table C.4-1), not refused with 0xA900; one of zero
 *   length asks nothing and is answered empty, as every requested key is (§C.4.1.1.3.2).
 * - A C-MOVE or C-GET (§C.4.2.1.4.1, §C.4.3.1.3.1) needs the level's unique key (a UID list, or
 *   one Patient ID). A unique key below the level with a value is refused (0xA900): it would
 *   ask for less than the level names. Other keys are ignored rather than refused: a retrieve
 *   selects by unique keys alone, and they cannot change what those select.
 *
 * Sequence keys are read by query-request-sequences.ts, each key's value by
 * query-key-values.ts.
 *
 * Layer: services. Pure: bytes in, a query or a refusal out.
 */

import { type IdentifierElement, readIdentifier } from '../dicom/query/identifier.js';
import {
  type IndexQuery,
  levelsOf,
  QUERY_KEYS,
  QUERY_KEYS_BY_TAG,
  QUERY_LEVELS,
  type QueryKey,
  type QueryLevel,
  type QueryRoot,
  SEQUENCE_KEYS_BY_TAG,
  type SequenceKey,
} from '../dicom/query/model.js';
import { decodeValue } from '../dicom/query/values.js';
import { transferSyntaxProperties } from '../dicom/transfer-syntax.js';
import { SopClass } from '../dicom/uid.js';
import { DicomServerError } from '../errors.js';
import { Status } from '../network/dimse/status.js';
import {
  carriesMatchingValue,
  depthOf,
  emptyParsedKeys,
  IdentifierTag,
  isGroupLength,
  isQueryRefusal,
  isUniqueIn,
  matchOf,
  misplaced,
  type ParseContext,
  type ParsedKeys,
  type QueryRefusal,
  refusal,
  UNIQUE_KEY_OF_LEVEL,
} from './query-key-values.js';
import { addSequenceKey } from './query-request-sequences.js';

export {
  IdentifierTag,
  isGroupLength,
  isQueryRefusal,
  MAX_LIST_VALUES,
  type QueryRefusal,
} from './query-key-values.js';

/** Largest C-FIND, C-MOVE or C-GET identifier read: real ones are a few hundred bytes. */
export const MAX_REQUEST_IDENTIFIER_BYTES = 64 * 1024;

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
   * Keys we neither match nor fill that carry a matching value, and C-FIND keys below the level
   * with one: a C-FIND answers its matches with 0xFF01 when there is any (PS3.4 Table C.4-1).
   * Zero-length ones are not listed: they are answered empty. In a C-MOVE or C-GET, the
   * non-unique keys with a value, which are ignored.
   */
  readonly unsupportedKeys: readonly number[];
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

/**
 * A request's identifier bytes, or undefined past MAX_REQUEST_IDENTIFIER_BYTES: then the rest
 * is not read (leaving the loop destroys the stream; the channel drops what is still to come).
 */
export async function readRequestIdentifier(
  dataset: AsyncIterable<Buffer>,
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of dataset) {
    length += chunk.length;
    if (length > MAX_REQUEST_IDENTIFIER_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length);
}

/** The refusal of an identifier over MAX_REQUEST_IDENTIFIER_BYTES (0xC000). */
export const IDENTIFIER_TOO_LARGE: QueryRefusal = refusal(
  Status.CannotUnderstand,
  `identifier too large: over ${MAX_REQUEST_IDENTIFIER_BYTES / 1024} KiB`,
);

/**
 * Reads a C-FIND, C-MOVE or C-GET identifier (in the presentation context's transfer syntax)
 * and checks it against the information model: 0xA900 for an identifier that does not fit
 * (no or a wrong Query/Retrieve Level, a key out of place, the level's unique key missing in a
 * retrieve), 0xC000 for one we cannot process (too large, unreadable, deflated, an unknown
 * character set, a malformed value, too long a list).
 */
export function parseQueryRequest(
  identifier: Buffer,
  transferSyntaxUid: string,
  root: QueryRoot,
  purpose: QueryPurpose,
  options: QueryRequestOptions,
): QueryRequest | QueryRefusal {
  if (identifier.length > MAX_REQUEST_IDENTIFIER_BYTES) return IDENTIFIER_TOO_LARGE;
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

/** The keys of a C-FIND: matching and return keys at and above the level (module comment). */
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
    const depth = depthOf(key, context);
    if (depth > 0) {
      // Below the level: answered empty; ignored with 0xFF01 when it asks for a value.
      if (carriesMatchingValue(element, context)) parsed.unsupportedKeys.push(element.tag);
      continue;
    }
    const match = matchOf(element, key, context);
    if (isQueryRefusal(match)) return match;
    const isUniqueAbove = depth < 0 && isUniqueIn(key, context.root);
    if (isUniqueAbove && !context.isRelational && match !== undefined && match.kind !== 'single') {
      return misplaced(`${key.keyword} needs a single value`, element.tag);
    }
    parsed.returnKeys.push(key.keyword);
    if (match !== undefined) parsed.conditions.push({ keyword: key.keyword, match });
  }
  return parsed;
}

/** The keys of a C-MOVE or C-GET: the unique keys of the level and above (module comment). */
function retrieveKeys(
  elements: readonly IdentifierElement[],
  context: ParseContext,
): ParsedKeys | QueryRefusal {
  const parsed = emptyParsedKeys();
  for (const known of keysOf(elements, context, parsed.unsupportedKeys)) {
    const { element } = known;
    if (known.kind === 'sequence' || !isUniqueIn(known.key, context.root)) {
      // Not a unique key: ignored, and listed when it asks for a value.
      if (carriesMatchingValue(element, context)) parsed.unsupportedKeys.push(element.tag);
      continue;
    }
    const { key } = known;
    const match = matchOf(element, key, context);
    if (isQueryRefusal(match)) return match;
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
    return misplaced(`${keyword} is required`, QUERY_KEYS.get(keyword)!.tag);
  }
  return parsed;
}
