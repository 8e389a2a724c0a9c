/**
 * C-MOVE SCU (PS3.4 §C.4.2): asks a peer to send the matching instances to a destination AE
 * with C-STORE sub-operations of its own, and reports the sub-operation counts as they come and
 * the final status with the Failed SOP Instance UID List. Also what C-GET reports the same way.
 *
 * Layer: services. Used by the `move` and `get` commands.
 */

import type { QueryRoot } from '../../dicom/query/model.js';
import type { CommandSet } from '../../network/dimse/command.js';
import { Status, statusCategory } from '../../network/dimse/status.js';
import {
  type QueryRetrieveRequest,
  QueryTag,
  queryRetrieve,
  type RequestIdentifier,
  type ReturnedElement,
  type ScuTarget,
} from './find.js';

/** Sub-operation counts of a C-MOVE or C-GET response (PS3.4 §C.4.2.1.4, §C.4.3.1.4). */
export interface SuboperationCounts {
  /** Absent in a final response, and in pending ones of peers that do not say. */
  readonly remaining?: number;
  readonly completed: number;
  readonly failed: number;
  readonly warning: number;
}

/** The outcome of a C-MOVE or C-GET. */
export interface RetrieveResult {
  /** The final status; success, warning (0xB000: some sub-operations failed), cancel or a failure. */
  readonly status: number;
  readonly errorComment?: string;
  /** The counts of the final response (or of the last pending one when the final has none). */
  readonly counts: SuboperationCounts;
  /** From the final response's Failed SOP Instance UID List (0008,0058). */
  readonly failedSopInstanceUids: readonly string[];
}

/** The counts a response carries; missing ones default to those of the previous response. */
function countsOf(command: CommandSet, previous: SuboperationCounts): SuboperationCounts {
  const remaining = command.numberOfRemainingSuboperations;
  return {
    ...(remaining !== undefined && { remaining }),
    completed: command.numberOfCompletedSuboperations ?? previous.completed,
    failed: command.numberOfFailedSuboperations ?? previous.failed,
    warning: command.numberOfWarningSuboperations ?? previous.warning,
  };
}

function failedUidsOf(identifier: readonly ReturnedElement[] | undefined): string[] {
  const list = identifier?.find((element) => element.tag === QueryTag.FailedSOPInstanceUIDList);
  if (list === undefined || list.value === '') return [];
  return list.value
    .split('\\')
    .map((uid) => uid.trim())
    .filter((uid) => uid !== '');
}

/**
 * Runs a C-MOVE or C-GET request to its final response, calling `onProgress` with the counts
 * of each pending response.
 */
export async function runRetrieve(
  request: QueryRetrieveRequest,
  onProgress?: (counts: SuboperationCounts) => void,
): Promise<RetrieveResult> {
  let counts: SuboperationCounts = { completed: 0, failed: 0, warning: 0 };
  let result: RetrieveResult | undefined;
  for await (const response of queryRetrieve(request)) {
    const { command } = response;
    const status = command.status ?? Status.ProcessingFailure;
    counts = countsOf(command, counts);
    if (statusCategory(status) === 'pending') {
      onProgress?.(counts);
      continue;
    }
    result = {
      status,
      ...(command.errorComment !== undefined && { errorComment: command.errorComment }),
      counts,
      failedSopInstanceUids: failedUidsOf(response.identifier),
    };
  }
  // queryRetrieve ends after the final response, or throws: there is always one here.
  return result!;
}

/** Options of a C-MOVE. */
export interface MoveOptions {
  readonly target: ScuTarget;
  readonly root: QueryRoot;
  readonly identifier: RequestIdentifier;
  /** The AE title the peer sends the instances to; the peer must know its address. */
  readonly destination: string;
  readonly signal?: AbortSignal;
  /** Called with the counts of each pending response. */
  readonly onProgress?: (counts: SuboperationCounts) => void;
}

/** Moves the matching instances to `destination` (PS3.4 §C.4.2). */
export function move(options: MoveOptions): Promise<RetrieveResult> {
  return runRetrieve(
    {
      target: options.target,
      root: options.root,
      service: 'move',
      identifier: options.identifier,
      moveDestination: options.destination,
      ...(options.signal !== undefined && { signal: options.signal }),
    },
    options.onProgress,
  );
}
