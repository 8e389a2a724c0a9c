/**
 * The logging subscriber of associations: turns the events an association and its DIMSE
 * channel emit into log lines (STYLE.md "Logging"): debug for transitions and PDUs, info for
 * open, close and each operation, warn for what the peer did wrong, error for our own bugs.
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import { DicomServerError } from '../errors.js';
import type { Association, CloseSummary } from '../network/association/association.js';
import { describeAbort, describeRejection } from '../network/association/reasons.js';
import type { OperationRecord } from '../network/dimse/channel.js';
import { CommandField, commandName } from '../network/dimse/command.js';
import { formatStatus, statusCategory, statusMeaning } from '../network/dimse/status.js';

/** A child logger bound to one association (`tls`: its protocol, when over TLS). */
export function associationLogger(root: Logger, association: Association): Logger {
  return root.child({
    assoc: association.id,
    peer: `${association.remoteAddress}:${association.remotePort}`,
    ...(association.tls !== undefined && { tls: association.tls.protocol }),
  });
}

function errorFields(error: Error | undefined): Record<string, unknown> {
  if (error === undefined) return {};
  if (error instanceof DicomServerError)
    return { code: error.code, detail: error.message, ...error.details };
  return { detail: error.message };
}

/**
 * Subscribes `logger` to an association's life: transitions, PDUs, establishment and end. With
 * `isLoggingConnections` answering false (the log_connection_attempts setting, asked as each line
 * is due), accepted and released
 * associations are not logged; rejections, aborts and errors always are.
 */
export function logAssociation(
  logger: Logger,
  association: Association,
  isLoggingConnections: () => boolean = () => true,
): void {
  if (logger.isLevelEnabled('debug')) {
    association.on('transition', (t) => logger.debug({ ...t }, 'state transition'));
    association.on('pdu', (direction, pdu) => {
      const { type, ...rest } = pdu;
      const summary = type === 'PDataTf' && 'length' in rest ? { length: rest.length } : {};
      logger.debug({ direction, pdu: type, ...summary }, 'PDU');
    });
  }
  association.once('established', () => {
    if (!isLoggingConnections()) return;
    const request = association.request;
    logger.info(
      {
        callingAe: association.callingAeTitle,
        calledAe: association.calledAeTitle,
        proposedContexts: request?.presentationContexts.length ?? 0,
        acceptedContexts: association.acceptedContexts.size,
        peerMaxPdu: association.peerMaxPduLength,
        peerImplementation: request?.userInformation.implementationVersionName,
        ...(association.tls !== undefined && {
          tlsCipher: association.tls.cipher,
          clientCertificate: association.tls.peerCertificateSubject,
        }),
      },
      'association accepted',
    );
  });
  association.once('closed', (summary) => {
    if (!isLoggingConnections() && summary.outcome === 'released') return;
    logClose(logger, association, summary);
  });
}

function logClose(logger: Logger, association: Association, summary: CloseSummary): void {
  const fields = {
    callingAe: association.callingAeTitle || undefined,
    calledAe: association.calledAeTitle || undefined,
    outcome: summary.outcome,
    durationMs: summary.durationMs,
    bytesIn: summary.bytesIn,
    bytesOut: summary.bytesOut,
  };
  if (summary.isInternalError) {
    logger.error({ ...fields, err: summary.error }, 'association aborted by an internal error');
    return;
  }
  switch (summary.outcome) {
    case 'released':
      logger.info(fields, 'association released');
      return;
    case 'rejected': {
      const r = summary.rejection!;
      logger.warn(
        { ...fields, rejection: describeRejection(r.result, r.source, r.reason) },
        'association rejected',
      );
      return;
    }
    case 'aborted-by-peer':
    case 'aborted-locally': {
      const abort = summary.abort;
      logger.warn(
        {
          ...fields,
          ...(abort !== undefined && { abort: describeAbort(abort.source, abort.reason) }),
          ...errorFields(summary.error),
        },
        summary.outcome === 'aborted-by-peer'
          ? 'association aborted by peer'
          : 'association aborted',
      );
      return;
    }
    case 'connection-lost':
      logger.warn({ ...fields, ...errorFields(summary.error) }, 'connection lost');
      return;
    case 'never-associated':
      if (summary.error !== undefined) {
        logger.warn(
          { ...fields, ...errorFields(summary.error) },
          'connection closed before association',
        );
      } else {
        logger.debug(fields, 'connection closed before association');
      }
      return;
    default: {
      const unreachable: never = summary.outcome;
      throw new Error(`unknown outcome ${String(unreachable)}`);
    }
  }
}

/**
 * Logs one served operation at info (warn for a failure, error when our handler threw). With
 * `isLoggingReceivedFiles` off (the log_received_files setting), successful C-STOREs are not.
 */
export function logOperation(
  logger: Logger,
  record: OperationRecord,
  isLoggingReceivedFiles = true,
): void {
  const status = record.response.status ?? 0;
  const isProblem = record.error !== undefined || statusCategory(status) === 'failure';
  // One line per operation is on the hot path: build nothing when it would not be written.
  if (!isProblem && !logger.isLevelEnabled('info')) return;
  if (
    !isProblem &&
    !isLoggingReceivedFiles &&
    record.command.commandField === CommandField.CStoreRq
  ) {
    return;
  }
  const fields = {
    op: commandName(record.command.commandField),
    msgId: record.command.messageId,
    sopClass: record.command.affectedSopClassUid,
    sopInstanceUid: record.command.affectedSopInstanceUid,
    status: formatStatus(status),
    statusMeaning: statusMeaning(status),
    durationMs: Math.round(record.durationMs * 1000) / 1000,
    bytes: record.datasetBytes,
  };
  if (record.error !== undefined && !(record.error instanceof DicomServerError)) {
    logger.error({ ...fields, err: record.error }, 'operation failed');
  } else if (statusCategory(status) === 'failure') {
    logger.warn({ ...fields, ...errorFields(record.error) }, 'operation failed');
  } else {
    logger.info(fields, 'operation');
  }
}
