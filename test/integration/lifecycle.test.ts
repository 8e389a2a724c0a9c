/**
 * Timers and shutdown at the edges: the network timer still runs after a read pause, and a
 * server stops cleanly (and can start again) while a connection has not sent its request yet.
 */

import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { AssociationAcceptor } from '../../src/network/association/acceptor.js';
import type { Association } from '../../src/network/association/association.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { echo } from '../../src/services/scu/echo.js';
import { startTestServer, waitFor } from '../helpers/server.js';
import { within } from '../helpers/wait.js';

describe('the network timer', () => {
  it('still aborts a silent association after reading was paused and resumed', async () => {
    const acceptor = new AssociationAcceptor({
      aeTitle: 'SCP',
      served: {
        transferSyntaxesFor: (abstract) =>
          abstract === SopClass.Verification ? [TransferSyntax.ExplicitVRLittleEndian] : undefined,
        canActAsScuFor: () => false,
      },
      maxPduLength: 16_384,
      maxAssociations: 2,
      timeouts: { artimMs: 2_000, acseMs: 2_000, networkMs: 300 },
    });
    const accepted: Association[] = [];
    acceptor.on('association', (association) => accepted.push(association));
    const { port } = await acceptor.listen('127.0.0.1', 0);
    try {
      const client = await requestAssociation({
        host: '127.0.0.1',
        port,
        callingAeTitle: 'SCU',
        calledAeTitle: 'SCP',
        contexts: [
          {
            abstractSyntax: SopClass.Verification,
            transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian],
          },
        ],
        timeouts: { networkMs: 60_000 },
      });
      await waitFor(
        () => accepted[0]?.isEstablished === true,
        5_000,
        'the server side to be established',
      );
      const server = accepted[0]!;
      // Backpressure from a slow consumer, then the peer goes silent for good.
      server.pauseReading();
      server.resumeReading();
      const summary = await within(server.closed, 5_000, 'the network timer');
      expect(summary.outcome).toBe('aborted-locally');
      expect(summary.error).toMatchObject({ code: 'ERR_TIMEOUT', details: { timer: 'network' } });
      await within(client.closed, 5_000, 'the client to see the abort');
    } finally {
      await acceptor.stopListening();
      await acceptor.abortAll();
    }
  });
});

describe('stopping the DICOM service', () => {
  it('stops while a connection has not sent its A-ASSOCIATE-RQ, and starts again', async () => {
    const running = await startTestServer({ timeouts: { artimMs: 30_000 } });
    const silent = net.connect({ host: '127.0.0.1', port: running.port });
    silent.on('error', () => undefined);
    await new Promise<void>((resolve) => silent.once('connect', () => resolve()));
    await waitFor(
      () => running.server.openConnections === 1,
      5_000,
      'the connection to be accepted',
    );
    await within(running.server.stop(100), 5_000, 'the stop');
    expect(running.server.state).toBe('stopped');
    expect(running.server.openConnections).toBe(0);
    await new Promise<void>((resolve) =>
      silent.destroyed ? resolve() : silent.once('close', () => resolve()),
    );

    const address = await running.server.start();
    const result = await echo({
      host: '127.0.0.1',
      port: address.port,
      callingAeTitle: 'SCU',
      calledAeTitle: running.aeTitle,
    });
    expect(result.status).toBe(0);
    await running.stop();
  });
});
