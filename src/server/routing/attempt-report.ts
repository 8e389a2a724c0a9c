/**
 * What a forward attempt leaves behind besides its job's row: a log line (info when sent,
 * warn when it failed or the job is dead: a destination's failure is theirs, not ours) and a
 * FORWARD row of the transaction log (our AE calling the destination, the instance, its
 * C-STORE status, bytes and duration, the attempt in the message).
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import type { ForwardJob, ForwardOutcome } from '../../db/repositories/routing-repository.js';
import type { TransactionRecord } from '../../db/repositories/transaction-log-repository.js';
import { formatStatus, statusCategory } from '../../network/dimse/status.js';
import type { DestinationAddress } from './destination-link.js';

/** How one attempt ended. */
export interface Attempt {
  readonly outcome: ForwardOutcome;
  /** The C-STORE response status, when there was one. */
  readonly status?: number;
  /** What happened, in a few words (the error when it failed). */
  readonly note: string;
  /** The data set went out. */
  readonly isSent: boolean;
}

/** Where and when an attempt ran (nothing when it never reached the network). */
export interface AttemptContext {
  readonly startedAt?: Date;
  readonly durationMs?: number;
  readonly address?: DestinationAddress;
  readonly associationId?: string | undefined;
}

/** Longest message of an attempt's transaction row. */
const MAX_MESSAGE_LENGTH = 1_000;

/** The job's state after the attempt. */
export function stateOf(outcome: ForwardOutcome): 'done' | 'failed' | 'dead' {
  if (outcome.isDone) return 'done';
  return outcome.nextAttemptAt === undefined ? 'dead' : 'failed';
}

/** The attempt's log line. */
export function logAttempt(
  logger: Logger,
  job: ForwardJob,
  attempt: Attempt,
  durationMs: number,
): void {
  const state = stateOf(attempt.outcome);
  const fields = {
    job: job.id,
    destination: job.destination,
    rule: job.ruleName,
    sopInstanceUid: job.sopInstanceUid,
    attempt: job.attempts,
    state,
    durationMs: Math.round(durationMs),
    ...(attempt.status !== undefined && { status: formatStatus(attempt.status) }),
  };
  if (attempt.outcome.isDone) logger.info(fields, 'instance forwarded');
  else if (state === 'dead') logger.warn({ ...fields, error: attempt.note }, 'forward dead');
  else {
    logger.warn(
      { ...fields, error: attempt.note, retryAt: attempt.outcome.nextAttemptAt },
      'forward failed: retried later',
    );
  }
}

/**
 * The attempt's transaction row; its message reads
 * `forward to AI_NODE (rule CT to AI) attempt 2 of 8: failed, <why>`.
 */
export function attemptRow(
  job: ForwardJob,
  attempt: Attempt,
  context: AttemptContext,
  ours: { readonly aeTitle: string; readonly maxAttempts: number },
): TransactionRecord {
  const durationMs = context.durationMs ?? 0;
  const bytes = attempt.isSent ? job.fileSize : 0;
  const isWarning = attempt.status !== undefined && statusCategory(attempt.status) === 'warning';
  const which = `attempt ${job.attempts} of ${ours.maxAttempts}`;
  const what = `${stateOf(attempt.outcome)}, ${attempt.note}`;
  const message = `forward to ${job.destination} (rule ${job.ruleName}) ${which}: ${what}`;
  return {
    occurredAt: (context.startedAt ?? new Date()).toISOString(),
    type: 'FORWARD',
    status: attempt.outcome.isDone ? (isWarning ? 'warning' : 'success') : 'failure',
    ...(attempt.status !== undefined && { statusCode: attempt.status }),
    associationId: context.associationId ?? `forward-${job.id}`,
    callingAe: ours.aeTitle,
    calledAe: job.destination,
    remoteAddress: context.address?.host ?? '',
    remotePort: context.address?.port ?? 0,
    sopClassUid: job.sopClassUid,
    sopInstanceUid: job.sopInstanceUid,
    patientId: job.patientId,
    studyInstanceUid: job.studyInstanceUid,
    seriesInstanceUid: job.seriesInstanceUid,
    filePath: job.filePath,
    ...(bytes > 0 && { bytes }),
    durationMs,
    ...(bytes > 0 &&
      durationMs > 0 && { transferRateMbps: bytes / 1_000_000 / (durationMs / 1000) }),
    message: message.slice(0, MAX_MESSAGE_LENGTH),
  };
}
