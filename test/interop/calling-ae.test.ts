/**
 * The acceptor's own decision hook: a request the server does not authorize is rejected with
 * the result, source and reason it gives; DCMTK's echoscu reports calling-AE-title-not-recognized.
 */

import { describe, expect, it } from 'vitest';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { AssociationAcceptor, rejection } from '../../src/network/association/acceptor.js';
import { DimseChannel } from '../../src/network/dimse/channel.js';
import { RejectReason, RejectResult, RejectSource } from '../../src/network/pdu/types.js';
import { handleEcho } from '../../src/services/echo.js';
import { runTool } from '../helpers/dcmtk.js';

describe('rejecting a calling AE title', () => {
  it('answers A-ASSOCIATE-RJ (rejected-permanent, service-user, calling-AE-title-not-recognized)', async () => {
    const acceptor = new AssociationAcceptor({
      aeTitle: 'GATE_SCP',
      served: {
        transferSyntaxesFor: (abstract) =>
          abstract === SopClass.Verification
            ? [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian]
            : undefined,
        canActAsScuFor: () => false,
      },
      maxPduLength: 16_384,
      maxAssociations: 2,
      authorize: (request) =>
        request.callingAeTitle === 'KNOWN_SCU'
          ? undefined
          : rejection(
              RejectResult.RejectedPermanent,
              RejectSource.ServiceUser,
              RejectReason.CallingAeTitleNotRecognized,
            ),
    });
    // Accepted associations answer C-ECHO.
    acceptor.on('association', (association) => {
      new DimseChannel(association, { onRequest: handleEcho, dimseTimeoutMs: 5_000 });
    });
    const { port } = await acceptor.listen('127.0.0.1', 0);
    try {
      const refused = await runTool('echoscu', [
        '-aet',
        'STRANGER',
        '-aec',
        'GATE_SCP',
        '127.0.0.1',
        String(port),
      ]);
      expect(refused.exitCode, refused.output).not.toBe(0);
      expect(refused.output).toMatch(/Rejected Permanent/);
      expect(refused.output).toMatch(/Calling AE Title Not Recognized/);
      const allowed = await runTool('echoscu', [
        '-aet',
        'KNOWN_SCU',
        '-aec',
        'GATE_SCP',
        '127.0.0.1',
        String(port),
      ]);
      expect(allowed.exitCode, allowed.output).toBe(0);
    } finally {
      await acceptor.stopListening();
      await acceptor.abortAll();
    }
  });
});
