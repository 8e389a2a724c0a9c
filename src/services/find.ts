/**
 * C-FIND SCP for the Patient Root and Study Root Query/Retrieve information models (PS3.4
 * Annex C, PS3.7 §9.1.2): the identifier is read and checked, the index is asked, and each
 * match goes back as a pending response whose identifier holds every key asked for; then the
 * final status. C-CANCEL stops it part-way (0xFE00). With a match limit configured, the matches
 * are counted first (up to one past the limit, never held): a query with more is refused
 * before any is sent (0xA700); then they are streamed.
 *
 * Answers are in the presentation context's transfer syntax. Their Specific Character Set
 * (PS3.3 §C.12.1.1.2): none when every value is ASCII; ISO_IR 100 with the values in Latin-1
 * when the request stated ISO_IR 100 and every answered value is in it (as a Latin-1 peer
 * expects, though it should read any character set it is answered in); else ISO_IR 192 with
 * the values in UTF-8 (the index holds decoded text).
 *
 * Layer: services. Reaches the index only through `QuerySource`.
 */

import { type IdentifierElement, writeIdentifier } from '../dicom/query/identifier.js';
import {
  type IndexMatch,
  type IndexQuery,
  QUERY_KEYS_BY_TAG,
  type QueryKeyword,
  type QueryRoot,
  SEQUENCE_KEYS_BY_TAG,
  type SequenceItemValues,
  type SequenceKey,
  type SequenceKeyword,
} from '../dicom/query/model.js';
import {
  type AnswerCharacterSet,
  encodeValue,
  isAsciiText,
  isLatin1Text,
  LATIN1_CHARACTER_SET,
  UTF8_CHARACTER_SET,
} from '../dicom/query/values.js';
import { transferSyntaxProperties } from '../dicom/transfer-syntax.js';
import { SopClass } from '../dicom/uid.js';
import type { Vr } from '../dicom/vr.js';
import type { IncomingRequest, OperationNote, ResponseSpec } from '../network/dimse/channel.js';
import { Status } from '../network/dimse/status.js';
import type { QuerySource } from './ports.js';
import {
  IDENTIFIER_TOO_LARGE,
  IdentifierTag,
  isGroupLength,
  isQueryRefusal,
  parseQueryRequest,
  type QueryRefusal,
  type QueryRequest,
  readRequestIdentifier,
} from './query-request.js';

/** The settings a C-FIND reads, once per request. */
export interface FindSettings {
  /** Most matches answered; a query with more is refused (0xA700). 0 means no limit. */
  readonly maxResults: number;
  /** Person names matched without regard to case. */
  readonly isPersonNameCaseInsensitive: boolean;
  /** Our AE title, answered in Retrieve AE Title (0008,0054) when asked for. */
  readonly retrieveAeTitle: string;
}

/** What the C-FIND handler needs. */
export interface FindHandlerOptions {
  readonly source: QuerySource;
  readonly settings: () => FindSettings;
}

/** What the handler needs to know of the association the request came on. */
export interface QueryAssociation {
  /** Relational queries were agreed for this SOP class (SOP Class Extended Negotiation). */
  isRelational(sopClassUid: string): boolean;
}

/** Serves one C-FIND-RQ: its pending responses, then the final one. */
export type FindHandler = (
  request: IncomingRequest,
  signal: AbortSignal,
  association: QueryAssociation,
) => AsyncIterable<ResponseSpec>;

/** Makes the C-FIND handler over a query source. */
export function createFindHandler(options: FindHandlerOptions): FindHandler {
  return (request, signal, association) => serveFind(options, request, signal, association);
}

/** The information model of a FIND SOP class (MOVE and GET classes are not served here). */
function findRootOf(sopClassUid: string): QueryRoot | undefined {
  if (sopClassUid === SopClass.PatientRootQueryRetrieveInformationModelFind) return 'patient';
  if (sopClassUid === SopClass.StudyRootQueryRetrieveInformationModelFind) return 'study';
  return undefined;
}

async function* serveFind(
  options: FindHandlerOptions,
  request: IncomingRequest,
  signal: AbortSignal,
  association: QueryAssociation,
): AsyncGenerator<ResponseSpec> {
  const sopClassUid = request.command.affectedSopClassUid ?? '';
  const root = findRootOf(sopClassUid);
  if (root === undefined) {
    yield refused({ status: Status.SopClassNotSupported, errorComment: 'not a C-FIND SOP class' });
    return;
  }
  if (request.dataset === undefined) {
    yield refused(
      { status: Status.CannotUnderstand, errorComment: 'C-FIND-RQ without an identifier' },
      root,
    );
    return;
  }
  const bytes = await readRequestIdentifier(request.dataset);
  if (bytes === undefined) {
    yield refused(IDENTIFIER_TOO_LARGE, root);
    return;
  }
  const parsed = parseQueryRequest(bytes, request.context.transferSyntax, root, 'find', {
    isRelational: association.isRelational(sopClassUid),
  });
  if (isQueryRefusal(parsed)) {
    yield refused(parsed, root);
    return;
  }
  yield* answer(options, parsed, request.context.transferSyntax, signal);
}

function refused(refusal: QueryRefusal, root?: QueryRoot): ResponseSpec {
  return {
    status: refusal.status,
    fields: {
      errorComment: refusal.errorComment.slice(0, 64),
      ...(refusal.offendingElements !== undefined && {
        offendingElement: refusal.offendingElements,
      }),
    },
    note: { root, refused: refusal.errorComment },
  };
}

/** The index failed: 0xC000 after the matches already sent (PS3.4 Table C.4-1). */
function indexFailed(error: unknown, note: OperationNote): ResponseSpec {
  return {
    status: Status.CannotUnderstand,
    fields: { errorComment: 'unable to process: the index query failed' },
    note: { ...note, error: errorText(error) },
  };
}

async function* answer(
  options: FindHandlerOptions,
  request: QueryRequest,
  transferSyntax: string,
  signal: AbortSignal,
): AsyncGenerator<ResponseSpec> {
  const settings = options.settings();
  // parseQueryRequest refused unknown and deflated syntaxes.
  const encoding = transferSyntaxProperties(transferSyntax)!;
  const limit = settings.maxResults > 0 ? settings.maxResults : undefined;
  // The limit also caps the stream: matches indexed after the count are not sent past it.
  const query: IndexQuery = {
    ...request.query,
    isPersonNameCaseInsensitive: settings.isPersonNameCaseInsensitive,
    ...(limit !== undefined && { limit }),
  };
  const note = (matches: number, extra: OperationNote = {}): OperationNote => ({
    root: request.query.root,
    level: request.level,
    matches,
    ...extra,
  });
  if (limit !== undefined) {
    const refusal = await overLimit(options.source, query, limit, signal, note(0));
    if (refusal !== undefined) {
      yield refusal;
      return;
    }
  }
  const pending = request.unsupportedKeys.length > 0 ? Status.PendingWarning : Status.Pending;
  let matches = 0;
  for await (const step of stepsOf(options.source.find(query, signal))) {
    if (signal.aborted || step.kind === 'end') break;
    if (step.kind === 'failed') {
      yield indexFailed(step.error, note(matches));
      return;
    }
    const identifier = responseIdentifier(request, step.match, settings);
    yield { status: pending, dataset: writeIdentifier(identifier, encoding) };
    matches += 1;
  }
  yield { status: signal.aborted ? Status.Cancel : Status.Success, note: note(matches) };
}

/**
 * The matches counted up to one past the limit, none held: the final response when there are
 * more (0xA700), when counting failed (0xC000) or was cancelled; undefined to answer them.
 */
async function overLimit(
  source: QuerySource,
  query: IndexQuery,
  limit: number,
  signal: AbortSignal,
  note: OperationNote,
): Promise<ResponseSpec | undefined> {
  let count: number;
  try {
    count = await source.count(query, limit + 1, signal);
  } catch (error) {
    return signal.aborted ? { status: Status.Cancel, note } : indexFailed(error, note);
  }
  if (count <= limit) return undefined;
  return {
    status: Status.OutOfResources,
    fields: { errorComment: `more than ${limit} matches: narrow the query`.slice(0, 64) },
    note: { ...note, refused: `match limit ${limit}` },
  };
}

/** One step of the matches: a match, their end, or the source's failure. */
type Step =
  | { readonly kind: 'match'; readonly match: IndexMatch }
  | { readonly kind: 'end' }
  | { readonly kind: 'failed'; readonly error: unknown };

/**
 * The matches as steps: a failing source becomes a step, not an exception, so that only the
 * source's failures are answered as the index's. Leaving early closes the source.
 */
async function* stepsOf(matches: AsyncIterable<IndexMatch>): AsyncGenerator<Step> {
  try {
    for await (const match of matches) yield { kind: 'match', match };
  } catch (error) {
    yield { kind: 'failed', error };
    return;
  }
  yield { kind: 'end' };
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 200);
}

/**
 * The identifier of one match (PS3.4 §C.4.1.1.3.2): each key of the request, with the match's
 * value where the index has one and zero length otherwise; the Query/Retrieve Level; Retrieve
 * AE Title and Instance Availability when asked for; the Specific Character Set when a value is
 * not ASCII (see the module comment). A sequence key the index holds comes back with the
 * match's items (see `answeredItems`); any other asked-for sequence comes back empty.
 */
export function responseIdentifier(
  request: QueryRequest,
  match: IndexMatch,
  settings: FindSettings,
): IdentifierElement[] {
  let isAscii = true;
  let isLatin1 = true;
  const inUtf8 = answerElements(request, match, settings, (tag, vr, value) => {
    if (!isAsciiText(value)) {
      isAscii = false;
      isLatin1 &&= isLatin1Text(value);
    }
    return { tag, vr, value: encodeValue(value, vr) };
  });
  if (isAscii) return inUtf8;
  const characterSet: AnswerCharacterSet =
    request.specificCharacterSet === LATIN1_CHARACTER_SET && isLatin1
      ? LATIN1_CHARACTER_SET
      : UTF8_CHARACTER_SET;
  const elements =
    characterSet === UTF8_CHARACTER_SET
      ? inUtf8
      : answerElements(request, match, settings, (tag, vr, value) => ({
          tag,
          vr,
          value: encodeValue(value, vr, characterSet),
        }));
  const tag = IdentifierTag.SpecificCharacterSet;
  elements.push({ tag, vr: 'CS', value: encodeValue(characterSet, 'CS') });
  return elements;
}

/** An element of a text value, encoded in the character set being answered in. */
type TextElement = (tag: number, vr: Vr, value: string) => IdentifierElement;

/** The elements of `responseIdentifier` but the Specific Character Set, their text through `text`. */
function answerElements(
  request: QueryRequest,
  match: IndexMatch,
  settings: FindSettings,
  text: TextElement,
): IdentifierElement[] {
  const returned: ReadonlySet<QueryKeyword> = new Set(request.query.returnKeys);
  const sequences: ReadonlySet<SequenceKeyword> = new Set(request.query.returnSequences ?? []);
  const elements: IdentifierElement[] = [];
  for (const element of request.requested) {
    const { tag } = element;
    if (
      isGroupLength(tag) ||
      tag === IdentifierTag.SpecificCharacterSet ||
      tag === IdentifierTag.QueryRetrieveLevel
    ) {
      continue;
    }
    const key = QUERY_KEYS_BY_TAG.get(tag);
    const sequence = SEQUENCE_KEYS_BY_TAG.get(tag);
    if (element.items !== undefined) {
      const isReturned = sequence !== undefined && sequences.has(sequence.keyword);
      const items = isReturned
        ? answeredItems(element, sequence, match.sequences?.[sequence.keyword] ?? [], text)
        : [];
      elements.push({ tag, vr: 'SQ', value: Buffer.alloc(0), items });
    } else if (tag === IdentifierTag.RetrieveAETitle) {
      elements.push(text(tag, 'AE', settings.retrieveAeTitle));
    } else if (tag === IdentifierTag.InstanceAvailability) {
      elements.push(text(tag, 'CS', 'ONLINE'));
    } else if (key !== undefined && returned.has(key.keyword)) {
      elements.push(text(tag, key.vr, textOf(match[key.keyword])));
    } else {
      elements.push({ tag, vr: element.vr, value: Buffer.alloc(0) });
    }
  }
  elements.push(text(IdentifierTag.QueryRetrieveLevel, 'CS', request.level));
  return elements;
}

/**
 * The items of a returned sequence key (PS3.4 §C.2.2.2.6): one per stored item of the match
 * (the index already kept only those matching the item keys, when there were any), each with
 * the item keys of the request's item, filled where the item holds a value and zero length
 * otherwise (a nested sequence empty). A request without item keys (no item, or an empty one)
 * asks for the whole sequence: each item then holds every item key it has a value for.
 */
function answeredItems(
  requested: IdentifierElement,
  sequence: SequenceKey,
  stored: readonly SequenceItemValues[],
  text: TextElement,
): IdentifierElement[][] {
  const asked = (requested.items?.[0] ?? []).filter((inner) => !isGroupLength(inner.tag));
  return stored.map((item) => {
    if (asked.length === 0) {
      return [...sequence.itemKeys.values()].flatMap((itemKey) => {
        const value = item[itemKey.keyword];
        return value === undefined ? [] : [text(itemKey.tag, itemKey.vr, value)];
      });
    }
    return asked.map((inner): IdentifierElement => {
      if (inner.items !== undefined) {
        return { tag: inner.tag, vr: 'SQ', value: Buffer.alloc(0), items: [] };
      }
      const itemKey = sequence.itemKeys.get(inner.tag);
      if (itemKey === undefined) return { tag: inner.tag, vr: inner.vr, value: Buffer.alloc(0) };
      return text(itemKey.tag, itemKey.vr, item[itemKey.keyword] ?? '');
    });
  });
}

/** A match's value as text: IS values as decimal strings, no value as zero length. */
function textOf(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'number' ? String(Math.trunc(value)) : value;
}
