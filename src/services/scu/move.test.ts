/**
 * C-MOVE SCU against an in-process SCP (PS3.4 §C.4.2): the destination goes in the request,
 * the counts of each pending response reach `onProgress`, and the final status comes back with
 * its counts and the Failed SOP Instance UID List.
 *
 * Layer: services (unit test; the peer is our own network layer on 127.0.0.1, port 0).
 */

import { afterEach, describe, expect, it } from 'vitest';
import { writeIdentifier } from '../../dicom/query/identifier.js';
import { encodeValue } from '../../dicom/query/values.js';
import { TransferSyntax } from '../../dicom/transfer-syntax.js';
import { SopClass } from '../../dicom/uid.js';
import { AssociationAcceptor } from '../../network/association/acceptor.js';
import {
  DimseChannel,
  type RequestHandler,
  type ResponseSpec,
} from '../../network/dimse/channel.js';
import type { CommandSet } from '../../network/dimse/command.js';
import { Status } from '../../network/dimse/status.js';
import { QueryTag, type ScuTarget } from './find.js';
import { move, type SuboperationCounts } from './move.js';

const SCP_AE = 'MOVE_SCP';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startScp(onRequest: RequestHandler): Promise<ScuTarget> {
  const acceptor = new AssociationAcceptor({
    aeTitle: SCP_AE,
    served: {
      transferSyntaxesFor: (abstractSyntax) =>
        abstractSyntax === SopClass.PatientRootQueryRetrieveInformationModelMove
          ? [TransferSyntax.ExplicitVRLittleEndian]
          : undefined,
      canActAsScuFor: () => false,
    },
    maxPduLength: 16_384,
    maxAssociations: 2,
  });
  acceptor.on('association', (association) => {
    new DimseChannel(association, { onRequest, dimseTimeoutMs: 10_000 });
  });
  const { port } = await acceptor.listen('127.0.0.1', 0);
  cleanups.push(async () => {
    await acceptor.stopListening();
    await acceptor.abortAll();
  });
  const timeouts = { artimMs: 5_000, acseMs: 5_000, networkMs: 5_000, dimseMs: 5_000 };
  return { host: '127.0.0.1', port, callingAeTitle: 'MOVE_SCU', calledAeTitle: SCP_AE, timeouts };
}

function counts(remaining: number | undefined, completed: number, failed: number) {
  return {
    ...(remaining !== undefined && { numberOfRemainingSuboperations: remaining }),
    numberOfCompletedSuboperations: completed,
    numberOfFailedSuboperations: failed,
    numberOfWarningSuboperations: 0,
  };
}

describe('move', () => {
  it('reports progress, then the final status, counts and failed instances', async () => {
    let command: CommandSet | undefined;
    const failedList = writeIdentifier(
      [
        {
          tag: QueryTag.FailedSOPInstanceUIDList,
          vr: 'UI',
          value: encodeValue('1.2.3.9\\1.2.3.8', 'UI'),
        },
      ],
      { isExplicitVr: true, isLittleEndian: true },
    );
    const target = await startScp(async function* (request): AsyncGenerator<ResponseSpec> {
      command = request.command;
      yield { status: Status.Pending, fields: counts(3, 1, 0) };
      yield { status: Status.Pending, fields: counts(2, 1, 1) };
      yield { status: Status.Warning, fields: counts(undefined, 2, 2), dataset: failedList };
    });
    const progress: SuboperationCounts[] = [];
    const result = await move({
      target,
      root: 'patient',
      identifier: { level: 'PATIENT', keys: [{ tag: 0x00100020, vr: 'LO', value: 'P1' }] },
      destination: 'ELSEWHERE',
      onProgress: (c) => progress.push(c),
    });
    expect(command?.moveDestination).toBe('ELSEWHERE');
    expect(command?.affectedSopClassUid).toBe(
      SopClass.PatientRootQueryRetrieveInformationModelMove,
    );
    expect(progress).toEqual([
      { remaining: 3, completed: 1, failed: 0, warning: 0 },
      { remaining: 2, completed: 1, failed: 1, warning: 0 },
    ]);
    expect(result).toEqual({
      status: Status.Warning,
      counts: { completed: 2, failed: 2, warning: 0 },
      failedSopInstanceUids: ['1.2.3.9', '1.2.3.8'],
    });
  });

  it('passes on a refusal with its error comment and no counts of its own', async () => {
    const target = await startScp(async () => ({
      status: Status.MoveDestinationUnknown,
      fields: { errorComment: 'unknown AE' },
    }));
    const result = await move({
      target,
      root: 'patient',
      identifier: { level: 'PATIENT', keys: [] },
      destination: 'NOWHERE',
    });
    expect(result).toEqual({
      status: Status.MoveDestinationUnknown,
      errorComment: 'unknown AE',
      counts: { completed: 0, failed: 0, warning: 0 },
      failedSopInstanceUids: [],
    });
  });
});
