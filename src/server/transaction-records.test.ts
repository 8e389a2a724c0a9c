import { describe, expect, it } from 'vitest';
import type { TransactionRecord } from '../db/repositories/transaction-log-repository.js';
import type { Association } from '../network/association/association.js';
import type { OperationNote, OperationRecord } from '../network/dimse/channel.js';
import { CommandField } from '../network/dimse/command.js';
import { Status } from '../network/dimse/status.js';
import type { TransactionLog } from './transaction-log.js';
import { recordOperation } from './transaction-records.js';

const association = {
  id: 'a1',
  callingAeTitle: 'PEER',
  calledAeTitle: 'DRAW_SCP',
  remoteAddress: '127.0.0.1',
  remotePort: 40000,
} as unknown as Association;

/** The row recorded for one operation with the given command, status and note. */
function rowFor(commandField: number, status: number, note: OperationNote, comment?: string) {
  const rows: TransactionRecord[] = [];
  const log = { record: (row: TransactionRecord) => rows.push(row) } as unknown as TransactionLog;
  const record: OperationRecord = {
    command: { commandField, messageId: 1, hasDataset: true },
    context: {
      id: 1,
      abstractSyntax: '1.2.840.10008.5.1.4.1.2.2.1',
      transferSyntax: '1.2.840.10008.1.2.1',
      requestorIsScu: true,
      requestorIsScp: false,
    },
    response: {
      commandField: commandField | 0x8000,
      hasDataset: false,
      status,
      ...(comment !== undefined && { errorComment: comment }),
    },
    durationMs: 3,
    datasetBytes: 120,
    note,
  };
  recordOperation(log, association, record);
  return rows[0]!;
}

describe('transaction rows of Query/Retrieve operations', () => {
  it('say how many matches a C-FIND had, at which level', () => {
    const row = rowFor(CommandField.CFindRq, Status.Success, { level: 'STUDY', matches: 3 });
    expect(row).toMatchObject({
      type: 'C-FIND',
      status: 'success',
      message: '3 matches at STUDY level',
    });
    expect(
      rowFor(CommandField.CFindRq, Status.Success, { level: 'IMAGE', matches: 1 }).message,
    ).toBe('1 match at IMAGE level');
  });

  it('say what a C-MOVE sent where, and what failed', () => {
    const row = rowFor(CommandField.CMoveRq, Status.Warning, {
      destination: 'PACS',
      instances: 5,
      completed: 3,
      failed: 2,
      warning: 0,
    });
    expect(row.message).toBe('5 instances to PACS: 3 sent, 2 failed');
    expect(row.status).toBe('warning');
  });

  it('say why a C-MOVE was refused, once', () => {
    const row = rowFor(
      CommandField.CMoveRq,
      Status.MoveDestinationUnknown,
      { destination: 'NOWHERE', refused: 'move destination unknown' },
      'unknown destination',
    );
    expect(row.message).toBe(
      'unknown destination; move to NOWHERE refused: move destination unknown',
    );
    expect(row.status).toBe('failure');
  });

  it('count a canceled C-GET’s sub-operations not started', () => {
    const row = rowFor(CommandField.CGetRq, Status.Cancel, {
      instances: 10,
      completed: 4,
      failed: 0,
      warning: 0,
      notStarted: 6,
    });
    expect(row.message).toBe('10 instances: 4 sent, 0 failed, 6 not started');
  });
});
