/**
 * What goes into the transaction log: a row when an association is accepted or rejected and
 * when it ends (released or aborted), and a row per operation, with the peer, the SOP instance,
 * the stored file and the patient when there is one, the status, duration and rate.
 *
 * Layer: server.
 */

import type {
  TransactionRecord,
  TransactionStatus,
  TransactionType,
} from '../db/repositories/transaction-log-repository.js';
import type { Association } from '../network/association/association.js';
import { describeAbort, describeRejection } from '../network/association/reasons.js';
import type { OperationNote, OperationRecord } from '../network/dimse/channel.js';
import { commandName } from '../network/dimse/command.js';
import { statusCategory, statusMeaning } from '../network/dimse/status.js';
import type { TransactionLog } from './transaction-log.js';

const OPERATION_TYPES: ReadonlySet<string> = new Set([
  'C-ECHO',
  'C-STORE',
  'C-FIND',
  'C-MOVE',
  'C-GET',
]);

function peerOf(association: Association) {
  return {
    associationId: association.id,
    callingAe: association.callingAeTitle.trim(),
    calledAe: association.calledAeTitle.trim(),
    remoteAddress: association.remoteAddress,
    remotePort: association.remotePort,
  };
}

/**
 * Records an association's life: accepted (with the observe-mode warning, if any), rejected
 * (with our reason), released or aborted. Connections that never requested an association are
 * not rows (the log has them, with log_connection_attempts). `isEnabled` is asked as each row
 * is made (the transaction log can be switched while the server runs).
 */
export function recordAssociation(
  log: TransactionLog,
  association: Association,
  decisionMessage: () => string | undefined,
  isEnabled: () => boolean = () => true,
): void {
  const startedAt = Date.now();
  association.once('established', () => {
    if (!isEnabled()) return;
    const message = decisionMessage();
    log.record({
      occurredAt: new Date().toISOString(),
      type: 'ASSOCIATE',
      status: message === undefined ? 'success' : 'warning',
      ...peerOf(association),
      ...(message !== undefined && { message }),
    });
  });
  association.once('closed', (summary) => {
    if (!isEnabled()) return;
    const base = { occurredAt: new Date().toISOString(), ...peerOf(association) };
    const durationMs = Date.now() - startedAt;
    switch (summary.outcome) {
      case 'rejected': {
        const r = summary.rejection!;
        log.record({
          ...base,
          type: 'ASSOCIATE',
          status: 'rejected',
          message: decisionMessage() ?? describeRejection(r.result, r.source, r.reason),
        });
        return;
      }
      case 'released':
        log.record({ ...base, type: 'RELEASE', status: 'success', durationMs });
        return;
      case 'aborted-by-peer':
      case 'aborted-locally':
      case 'connection-lost': {
        const abort = summary.abort;
        const cause =
          abort !== undefined ? describeAbort(abort.source, abort.reason) : summary.error?.message;
        log.record({
          ...base,
          type: 'ABORT',
          status: 'failure',
          durationMs,
          message:
            summary.outcome === 'aborted-by-peer'
              ? `aborted by peer${cause === undefined ? '' : `: ${cause}`}`
              : summary.outcome === 'connection-lost'
                ? `connection lost${cause === undefined ? '' : `: ${cause}`}`
                : `aborted${cause === undefined ? '' : `: ${cause}`}`,
        });
        return;
      }
      case 'never-associated':
        return;
      default: {
        const unreachable: never = summary.outcome;
        throw new Error(`unknown outcome ${String(unreachable)}`);
      }
    }
  });
}

function statusOf(code: number, error: Error | undefined): TransactionStatus {
  if (error !== undefined) return 'failure';
  const category = statusCategory(code);
  if (category === 'success') return 'success';
  if (category === 'warning') return 'warning';
  return 'failure';
}

/** Records one served operation (its duration and rate when `isRecordingMetrics`). */
export function recordOperation(
  log: TransactionLog,
  association: Association,
  record: OperationRecord,
  isRecordingMetrics = true,
): void {
  const name = commandName(record.command.commandField).replace(/-RQ$/, '');
  if (!OPERATION_TYPES.has(name)) return;
  const code = record.response.status ?? 0;
  const note = record.note ?? {};
  const bytes = typeof note.fileSize === 'number' ? note.fileSize : record.datasetBytes;
  const seconds = record.durationMs / 1000;
  const comment = record.response.errorComment;
  const row: TransactionRecord = {
    occurredAt: new Date().toISOString(),
    type: name as TransactionType,
    status: statusOf(code, record.error),
    statusCode: code,
    ...peerOf(association),
    ...(record.command.affectedSopClassUid !== undefined && {
      sopClassUid: record.command.affectedSopClassUid,
    }),
    ...(record.command.affectedSopInstanceUid !== undefined && {
      sopInstanceUid: record.command.affectedSopInstanceUid,
    }),
    ...(typeof note.patientId === 'string' && { patientId: note.patientId }),
    ...(typeof note.studyInstanceUid === 'string' && { studyInstanceUid: note.studyInstanceUid }),
    ...(typeof note.seriesInstanceUid === 'string' && {
      seriesInstanceUid: note.seriesInstanceUid,
    }),
    ...(typeof note.filePath === 'string' && { filePath: note.filePath }),
    ...(bytes > 0 && { bytes }),
    // Timing and speed only with enable_performance_metrics.
    ...(isRecordingMetrics && { durationMs: Math.round(record.durationMs * 1000) / 1000 }),
    ...(isRecordingMetrics &&
      bytes > 0 &&
      seconds > 0 && { transferRateMbps: bytes / 1_000_000 / seconds }),
  };
  const summary = querySummary(name, note);
  // A refusal's summary already holds its error comment.
  const parts = summary?.includes(comment ?? '\0') ? [summary] : [comment, summary];
  const message =
    parts.filter((part) => part !== undefined).join('; ') ||
    (statusCategory(code) === 'failure' ? statusMeaning(code) : undefined);
  log.record(message === undefined ? row : { ...row, message });
}

/**
 * What a C-FIND, C-MOVE or C-GET did, in words, from the note its handler left: the matches of
 * a query, the sub-operations of a retrieve, or why it was refused.
 */
function querySummary(name: string, note: OperationNote): string | undefined {
  const refused = typeof note.refused === 'string' ? `refused: ${note.refused}` : undefined;
  if (name === 'C-FIND') {
    if (refused !== undefined || typeof note.matches !== 'number') return refused;
    return `${note.matches} ${note.matches === 1 ? 'match' : 'matches'} at ${note.level} level`;
  }
  if (name !== 'C-MOVE' && name !== 'C-GET') return undefined;
  const destination = typeof note.destination === 'string' ? ` to ${note.destination}` : '';
  if (refused !== undefined) return `${name.slice(2).toLowerCase()}${destination} ${refused}`;
  if (typeof note.completed !== 'number') return undefined;
  const parts = [`${note.completed} sent`, `${note.failed ?? 0} failed`];
  if (typeof note.warning === 'number' && note.warning > 0) parts.push(`${note.warning} warnings`);
  if (typeof note.notStarted === 'number') parts.push(`${note.notStarted} not started`);
  const count = Number(note.instances ?? note.completed);
  return `${count} ${count === 1 ? 'instance' : 'instances'}${destination}: ${parts.join(', ')}`;
}
