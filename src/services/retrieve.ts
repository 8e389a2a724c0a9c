/**
 * What C-MOVE and C-GET share (PS3.4 §C.4.2, §C.4.3): the request read into the list of
 * instances to send, the C-STORE sub-operations run one at a time over a sender with pending
 * responses counting them, C-CANCEL honoured between sub-operations, and the final response
 * whose status and counts PS3.4 prescribes:
 *
 * - 0x0000 all sub-operations completed without failure or warning (also when nothing matched);
 * - 0xB000 some completed and some failed or had warnings, or all had warnings;
 * - 0xA702 (Refused: out of resources, unable to perform sub-operations) when every
 *   sub-operation failed: PS3.4 §C.4.2.3.1 and §C.4.3.3.1 answer "all sub-operations
 *   unsuccessful" with Failure or Refused, and A702 is the Refused status that says so;
 * - 0xFE00 after a C-CANCEL, with the number of sub-operations not started as remaining;
 * - 0xA701 when the index cannot list the instances.
 *
 * An instance the index lists but that cannot be sent (marked `unavailable`: its file path
 * leads out of the storage root) is a failed sub-operation, not tried; the others go on.
 *
 * The final response carries Completed, Failed and Warning counts, Remaining only with Cancel
 * (PS3.4 §C.4.2.1.5-8); every final C-MOVE status but Success carries an identifier with the
 * Failed SOP Instance UID List (0008,0058) (PS3.4 §C.4.2.1.4). C-GET leaves it out: see get.ts.
 *
 * Layer: services.
 */

import { deflateRawSync } from 'node:zlib';
import type { IdentifierElement } from '../dicom/query/identifier.js';
import { writeIdentifier } from '../dicom/query/identifier.js';
import type { RetrievableInstance } from '../dicom/query/model.js';
import { transferSyntaxProperties } from '../dicom/transfer-syntax.js';
import { SopClass } from '../dicom/uid.js';
import type { DatasetEncoding } from '../dicom/writer/dataset-writer.js';
import { DicomServerError } from '../errors.js';
import type { AcceptedContext } from '../network/association/negotiation.js';
import type {
  DimseChannel,
  IncomingRequest,
  OperationNote,
  ResponseSpec,
} from '../network/dimse/channel.js';
import { formatStatus, Status, statusCategory } from '../network/dimse/status.js';
import type { QuerySource } from './ports.js';
import {
  IDENTIFIER_TOO_LARGE,
  isQueryRefusal,
  parseQueryRequest,
  type QueryRefusal,
  readRequestIdentifier,
} from './query-request.js';
import { canSendAs, inspectFile, type StoreRequestOptions, storeFile } from './scu/store.js';

/** Failed SOP Instance UID List (0008,0058). */
const FAILED_SOP_INSTANCE_UID_LIST = 0x00080058;
/** Counts are US (PS3.7 Table 9.3-10). */
const MAX_COUNT = 0xffff;
/** Longest value a 2-byte explicit VR length states: the UID list is cut to fit (PS3.5 §7.1.2). */
const MAX_SHORT_VALUE = 0xfffe;

/** What a retrieve handler needs to know of the association the request came on. */
export interface RetrieveAssociation {
  /** The requestor's AE title: the Move Originator of C-MOVE sub-operations. */
  readonly callingAeTitle: string;
  /** Relational retrieval was agreed for this SOP class (SOP Class Extended Negotiation). */
  isRelational(sopClassUid: string): boolean;
}

/** Lines a retrieve handler logs; pino's loggers fit. */
export interface RetrieveLogger {
  debug(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/** A debug line per sub-operation, for `SubOperationRun.onSubOperation`. */
export function subOperationLogger(
  logger: RetrieveLogger | undefined,
  operation: 'C-MOVE' | 'C-GET',
): ((outcome: SubOperationOutcome) => void) | undefined {
  if (logger === undefined) return undefined;
  return (outcome) =>
    logger.debug(
      {
        sopInstanceUid: outcome.instance.sopInstanceUid,
        result: outcome.result,
        status: outcome.status,
        error: outcome.error?.message,
      },
      `${operation} sub-operation`,
    );
}

/** Performs C-STORE sub-operations, one at a time. */
export interface SubOperationSender {
  /**
   * Sends one instance; resolves with the C-STORE response status. Rejects when the
   * sub-operation could not be performed (file gone, no usable context, association lost):
   * a failed sub-operation.
   */
  store(instance: RetrievableInstance): Promise<number>;
}

/** How one sub-operation ended. */
export interface SubOperationOutcome {
  readonly instance: RetrievableInstance;
  readonly result: 'completed' | 'warning' | 'failed';
  /** The C-STORE response status, when there was one. */
  readonly status?: number;
  /** Why it could not be performed, when it could not. */
  readonly error?: Error;
}

/** How to run the sub-operations of one C-MOVE or C-GET. */
export interface SubOperationRun {
  /** Aborted by C-CANCEL (or the association's end): no sub-operation starts after it. */
  readonly signal: AbortSignal;
  /**
   * The encoding of the request's context, in which the final identifier is written; without
   * it the final response carries none (C-GET, see get.ts).
   */
  readonly encoding?: IdentifierEncoding;
  /** Facts added to the final response's note (the transaction log). */
  readonly note?: OperationNote;
  readonly onSubOperation?: ((outcome: SubOperationOutcome) => void) | undefined;
}

/** How a response identifier is encoded: its context's transfer syntax. */
export interface IdentifierEncoding extends DatasetEncoding {
  /** Deflated Explicit VR Little Endian (PS3.5 §A.5). */
  readonly isDeflated?: boolean;
}

/** Sub-operation counts so far. */
interface Counts {
  remaining: number;
  completed: number;
  failed: number;
  warning: number;
}

/**
 * Runs the C-STORE sub-operations of a retrieve, one at a time: a pending response (0xFF00)
 * after each but the last, then the final response (see the module comment). Never throws for
 * a sub-operation's failure.
 */
export async function* runSubOperations(
  instances: readonly RetrievableInstance[],
  sender: SubOperationSender,
  run: SubOperationRun,
): AsyncGenerator<ResponseSpec> {
  const counts: Counts = { remaining: instances.length, completed: 0, failed: 0, warning: 0 };
  const failedUids: string[] = [];
  let firstFailure: string | undefined;
  if (instances.length === 0 && run.signal.aborted) {
    // C-CANCEL while the index was being asked.
    yield finalResponse(counts, failedUids, run, { isCanceled: true });
    return;
  }
  for (const instance of instances) {
    if (run.signal.aborted) {
      yield finalResponse(counts, failedUids, run, { isCanceled: true });
      return;
    }
    const outcome = await performOne(sender, instance);
    counts.remaining -= 1;
    counts[outcome.result] += 1;
    if (outcome.result === 'failed') {
      failedUids.push(instance.sopInstanceUid);
      firstFailure ??=
        outcome.error?.message ?? `C-STORE status ${formatStatus(outcome.status ?? 0)}`;
    }
    run.onSubOperation?.(outcome);
    if (counts.remaining > 0) yield { status: Status.Pending, fields: countFields(counts, true) };
  }
  yield finalResponse(counts, failedUids, run, { isCanceled: false, firstFailure });
}

async function performOne(
  sender: SubOperationSender,
  instance: RetrievableInstance,
): Promise<SubOperationOutcome> {
  if (instance.unavailable !== undefined) {
    return { instance, result: 'failed', error: new Error(instance.unavailable) };
  }
  try {
    const status = await sender.store(instance);
    const category = statusCategory(status);
    if (category === 'success') return { instance, result: 'completed', status };
    if (category === 'warning') return { instance, result: 'warning', status };
    return { instance, result: 'failed', status };
  } catch (error) {
    const cause = error instanceof Error ? error : new Error(String(error));
    return { instance, result: 'failed', error: cause };
  }
}

function countFields(counts: Counts, withRemaining: boolean): ResponseSpec['fields'] {
  return {
    ...(withRemaining && { numberOfRemainingSuboperations: Math.min(counts.remaining, MAX_COUNT) }),
    numberOfCompletedSuboperations: Math.min(counts.completed, MAX_COUNT),
    numberOfFailedSuboperations: Math.min(counts.failed, MAX_COUNT),
    numberOfWarningSuboperations: Math.min(counts.warning, MAX_COUNT),
  };
}

/** The final status of sub-operations run to the end (PS3.4 §C.4.2.3.1, §C.4.3.3.1). */
function finalStatusOf(counts: Counts): number {
  if (counts.failed === 0 && counts.warning === 0) return Status.Success;
  if (counts.completed === 0 && counts.warning === 0) return Status.OutOfResourcesSuboperations;
  return Status.Warning;
}

function finalResponse(
  counts: Counts,
  failedUids: readonly string[],
  run: SubOperationRun,
  end: { readonly isCanceled: boolean; readonly firstFailure?: string | undefined },
): ResponseSpec {
  const status = end.isCanceled ? Status.Cancel : finalStatusOf(counts);
  const note: OperationNote = {
    ...run.note,
    completed: counts.completed,
    failed: counts.failed,
    warning: counts.warning,
    ...(end.isCanceled && { notStarted: counts.remaining }),
  };
  // An Error Comment is LO: no backslash, at most 64 characters (PS3.7 §C.4).
  const comment =
    status === Status.OutOfResourcesSuboperations
      ? `all sub-operations failed: ${end.firstFailure ?? ''}`.replaceAll('\\', '/').slice(0, 64)
      : undefined;
  return {
    status,
    fields: {
      ...countFields(counts, end.isCanceled),
      ...(comment !== undefined && { errorComment: comment }),
    },
    ...(status !== Status.Success &&
      run.encoding !== undefined && {
        dataset: failedListIdentifier(failedUids, run.encoding),
      }),
    note,
  };
}

/**
 * An identifier holding the Failed SOP Instance UID List. In explicit VR its 2-byte length
 * holds some 1,000 UIDs: a longer list is cut to the UIDs that fit (the counts stay whole).
 */
export function failedListIdentifier(
  failedUids: readonly string[],
  encoding: IdentifierEncoding,
): Buffer {
  const kept: string[] = [];
  let length = 0;
  for (const uid of failedUids) {
    const added = uid.length + (kept.length > 0 ? 1 : 0);
    if (encoding.isExplicitVr && length + added > MAX_SHORT_VALUE) break;
    kept.push(uid);
    length += added;
  }
  const text = kept.join('\\');
  const value = Buffer.from(text.length % 2 === 0 ? text : `${text}\0`, 'latin1');
  const element: IdentifierElement = { tag: FAILED_SOP_INSTANCE_UID_LIST, vr: 'UI', value };
  const bytes = writeIdentifier([element], encoding);
  if (encoding.isDeflated !== true) return bytes;
  // A deflated bit stream of odd length takes one trailing NUL pad byte (PS3.5 §A.5).
  const deflated = deflateRawSync(bytes);
  return deflated.length % 2 === 0 ? deflated : Buffer.concat([deflated, Buffer.alloc(1)]);
}

/**
 * A refusal before any sub-operation, with its comment and culprits, and an empty failed list
 * when `encoding` is given.
 */
export function refusedResponse(
  refusal: QueryRefusal,
  encoding: IdentifierEncoding | undefined,
  note?: OperationNote,
): ResponseSpec {
  return {
    status: refusal.status,
    fields: {
      errorComment: refusal.errorComment.slice(0, 64),
      ...(refusal.offendingElements !== undefined && {
        offendingElement: refusal.offendingElements,
      }),
      numberOfCompletedSuboperations: 0,
      numberOfFailedSuboperations: 0,
      numberOfWarningSuboperations: 0,
    },
    ...(encoding !== undefined && { dataset: failedListIdentifier([], encoding) }),
    note: { ...note, refused: refusal.errorComment },
  };
}

/** The encoding of a request's context, in which its responses' identifiers go. */
export function requestEncoding(request: IncomingRequest): IdentifierEncoding {
  const syntax = transferSyntaxProperties(request.context.transferSyntax);
  return {
    isExplicitVr: syntax?.isExplicitVr ?? false,
    isLittleEndian: syntax?.isLittleEndian ?? true,
    isDeflated: syntax?.isDeflated ?? false,
  };
}

/** The information model of a C-MOVE or C-GET SOP class, if it is one. */
export function retrieveRootOf(
  sopClassUid: string,
  kind: 'move' | 'get',
): 'patient' | 'study' | undefined {
  const [patient, study] =
    kind === 'move'
      ? [
          SopClass.PatientRootQueryRetrieveInformationModelMove,
          SopClass.StudyRootQueryRetrieveInformationModelMove,
        ]
      : [
          SopClass.PatientRootQueryRetrieveInformationModelGet,
          SopClass.StudyRootQueryRetrieveInformationModelGet,
        ];
  if (sopClassUid === patient) return 'patient';
  if (sopClassUid === study) return 'study';
  return undefined;
}

/**
 * The instances a C-MOVE or C-GET asks for: its identifier read and checked, then the index
 * asked. A refusal when the request does not fit (no identifier, one we cannot read, keys out
 * of place), 0xA701 when the index fails; the signal aborts the index query.
 */
export async function instancesToRetrieve(
  request: IncomingRequest,
  kind: 'move' | 'get',
  association: RetrieveAssociation,
  source: QuerySource,
  signal: AbortSignal,
): Promise<RetrievableInstance[] | QueryRefusal> {
  const sopClassUid = request.command.affectedSopClassUid ?? request.context.abstractSyntax;
  const root = retrieveRootOf(sopClassUid, kind);
  if (root === undefined) {
    return {
      status: Status.SopClassNotSupported,
      errorComment: `not a C-${kind.toUpperCase()} SOP class`,
    };
  }
  if (request.dataset === undefined) {
    return {
      status: Status.DataSetDoesNotMatchSopClass,
      errorComment: 'request has no identifier',
    };
  }
  const bytes = await readRequestIdentifier(request.dataset);
  if (bytes === undefined) return IDENTIFIER_TOO_LARGE;
  const parsed = parseQueryRequest(bytes, request.context.transferSyntax, root, 'retrieve', {
    isRelational: association.isRelational(sopClassUid),
  });
  if (isQueryRefusal(parsed)) return parsed;
  try {
    return await source.retrievable(parsed.query, signal);
  } catch (error) {
    if (signal.aborted) return [];
    const reason = error instanceof Error ? error.message : String(error);
    return {
      status: Status.OutOfResourcesMatches,
      errorComment: `index query failed: ${reason}`.slice(0, 64),
    };
  }
}

/**
 * The context to send a stored instance on, among those accepted for its SOP class: one in
 * its stored transfer syntax, else Explicit VR Little Endian, else Implicit VR Little Endian,
 * the last two only where the data set can be converted (see `canSendAs`).
 */
export function chooseContext(
  contexts: Iterable<AcceptedContext>,
  sopClassUid: string,
  storedTransferSyntax: string,
): AcceptedContext | undefined {
  const usable = [...contexts].filter(
    (context) =>
      context.abstractSyntax === sopClassUid &&
      canSendAs(storedTransferSyntax, context.transferSyntax),
  );
  const rank = (context: AcceptedContext): number => {
    if (context.transferSyntax === storedTransferSyntax) return 0;
    return transferSyntaxProperties(context.transferSyntax)?.isExplicitVr ? 1 : 2;
  };
  return usable.sort((a, b) => rank(a) - rank(b))[0];
}

/**
 * Sends one stored instance as a C-STORE sub-operation over `channel`, on the best of
 * `contexts` for it (see `chooseContext`); resolves with the response status. Throws when the
 * file is gone or unreadable, holds another instance than the index says, or no context fits.
 */
export async function storeInstance(
  channel: DimseChannel,
  contexts: Iterable<AcceptedContext>,
  instance: RetrievableInstance,
  options: Omit<StoreRequestOptions, 'context'> = {},
): Promise<number> {
  const file = await inspectFile(instance.filePath);
  if (file.sopInstanceUid !== instance.sopInstanceUid) {
    throw new DicomServerError('ERR_DATASET_MALFORMED', 'file holds another SOP instance', {
      path: instance.filePath,
      sopInstanceUid: instance.sopInstanceUid,
    });
  }
  const context = chooseContext(contexts, file.sopClassUid, file.transferSyntaxUid);
  if (context === undefined) {
    throw new DicomServerError('ERR_NO_ACCEPTED_CONTEXT', 'no accepted context fits the instance', {
      sopClassUid: file.sopClassUid,
      transferSyntaxUid: file.transferSyntaxUid,
    });
  }
  return storeFile(channel, file, { ...options, context });
}
