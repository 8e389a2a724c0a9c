/**
 * Release and abort of an established association, in both roles, step by step through PS3.8
 * Table 9-10: the ordinary release, the release collision on the requestor side (Sta9, Sta11)
 * and on the acceptor side (Sta10, Sta12, Sta13), and an A-ABORT from the peer (AA-3). Our
 * Association runs one end; a raw socket with a script plays the other, so that the PDUs
 * cross exactly as a collision needs.
 *
 * Layer: test (integration). Each test asserts the exact (from, event, action, to) sequence.
 */

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { DicomServerError } from '../../src/errors.js';
import { AssociationAcceptor } from '../../src/network/association/acceptor.js';
import { Association, type TransitionRecord } from '../../src/network/association/association.js';
import type { ServedSyntaxes } from '../../src/network/association/negotiation.js';
import { buildAssociateRequest } from '../../src/network/association/requestor.js';
import { decodePdu } from '../../src/network/pdu/decode.js';
import { PduFramer } from '../../src/network/pdu/framer.js';
import type { Pdu } from '../../src/network/pdu/types.js';
import { loadPduFixture } from '../helpers/hex-fixture.js';
import { RawPeer } from '../helpers/raw-peer.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

/** The fixtures call the AE title STORESCP. */
const AE_TITLE = 'STORESCP';
const MAX_PDU_LENGTH = 16 * 1024;
/** echoscu's A-ASSOCIATE-RQ: context 1, Verification, Implicit VR Little Endian. */
const ECHO_RQ = loadPduFixture('echo-01-a-associate-rq.hex');
/** storescp's A-ASSOCIATE-AC to it: context 1 accepted with Implicit VR Little Endian. */
const ECHO_AC = loadPduFixture('echo-02-a-associate-ac.hex');
const RELEASE_RQ = loadPduFixture('echo-05-a-release-rq.hex');
const RELEASE_RP = loadPduFixture('echo-06-a-release-rp.hex');
/** echoscu --abort's A-ABORT: source 0 (service-user), reason 0. */
const ABORT = loadPduFixture('abort-05-a-abort.hex');

/** Short timers, so that a test that fails does so well before its own timeout. */
const TIMEOUTS = { artimMs: 2_000, acseMs: 2_000, networkMs: 5_000 };

/** Verification with Implicit VR Little Endian: what the acceptor under test serves. */
const SERVED: ServedSyntaxes = {
  transferSyntaxesFor: (abstractSyntax) =>
    abstractSyntax === SopClass.Verification ? [TransferSyntax.ImplicitVRLittleEndian] : undefined,
  canActAsScuFor: () => false,
};

type Step = readonly [from: string, event: string, action: string, to: string];

function recordTransitions(association: Association): Step[] {
  const steps: Step[] = [];
  association.on('transition', (t: TransitionRecord) =>
    steps.push([t.from, t.event, t.action, t.to]),
  );
  return steps;
}

/** Resolves as `promise` does, or rejects once `timeoutMs` has passed. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A raw acceptor: one connection at a time, each PDU it receives handed to a script. */
class ScriptedAcceptor {
  readonly received: Pdu[] = [];
  #server = net.createServer((socket) => this.#onConnection(socket));
  #sockets = new Set<net.Socket>();
  #closedConnections = 0;

  constructor(readonly script: (pdu: Pdu, socket: net.Socket) => void) {}

  get closedConnections(): number {
    return this.#closedConnections;
  }

  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.#server.listen(0, '127.0.0.1', () =>
        resolve((this.#server.address() as net.AddressInfo).port),
      ),
    );
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #onConnection(socket: net.Socket): void {
    this.#sockets.add(socket);
    const framer = new PduFramer(() => 1024 * 1024);
    socket.on('data', (chunk: Buffer) => {
      framer.push(chunk);
      for (let bytes = framer.next(); bytes !== null; bytes = framer.next()) {
        const pdu = decodePdu(bytes);
        this.received.push(pdu);
        this.script(pdu, socket);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#sockets.delete(socket);
      this.#closedConnections += 1;
    });
  }
}

/** Requests an association of ours, recording its transitions from Evt2 on (Evt1 runs at once). */
function requestFrom(port: number): {
  association: Association;
  established: Promise<Association>;
  steps: Step[];
} {
  const { association, established } = Association.request({
    host: '127.0.0.1',
    port,
    maxPduLength: MAX_PDU_LENGTH,
    timeouts: TIMEOUTS,
    request: buildAssociateRequest({
      host: '127.0.0.1',
      port,
      callingAeTitle: 'ECHOSCU',
      calledAeTitle: AE_TITLE,
      contexts: [
        {
          abstractSyntax: SopClass.Verification,
          transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian],
        },
      ],
    }),
  });
  return { association, established, steps: recordTransitions(association) };
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('release and abort with our Association as requestor', () => {
  async function scriptedAcceptor(
    script: (pdu: Pdu, socket: net.Socket) => void,
  ): Promise<{ acceptor: ScriptedAcceptor; port: number }> {
    const acceptor = new ScriptedAcceptor(script);
    const port = await acceptor.listen();
    cleanups.push(() => acceptor.close());
    return { acceptor, port };
  }

  it('goes Sta7 -> Sta9 -> Sta11 -> Sta1 in a release collision (AR-8, AR-9, AR-3)', async () => {
    const { acceptor, port } = await scriptedAcceptor((pdu, socket) => {
      if (pdu.type === 'AAssociateRq') socket.write(ECHO_AC);
      // Our A-RELEASE-RQ crosses the acceptor's own: it sends one instead of answering.
      if (pdu.type === 'AReleaseRq') socket.write(RELEASE_RQ);
      // The requestor of the association answers first (AR-9); then the acceptor answers.
      if (pdu.type === 'AReleaseRp') socket.write(RELEASE_RP);
    });
    const { association, established, steps } = requestFrom(port);
    cleanups.push(() => association.abort());
    await established;

    await association.release();
    const summary = await association.closed;

    expect(steps).toEqual([
      ['Sta4', 'Evt2', 'AE-2', 'Sta5'],
      ['Sta5', 'Evt3', 'AE-3', 'Sta6'],
      ['Sta6', 'Evt11', 'AR-1', 'Sta7'],
      ['Sta7', 'Evt12', 'AR-8', 'Sta9'],
      ['Sta9', 'Evt14', 'AR-9', 'Sta11'],
      ['Sta11', 'Evt13', 'AR-3', 'Sta1'],
    ]);
    expect(summary.outcome).toBe('released');
    expect(acceptor.received.map((pdu) => pdu.type)).toEqual([
      'AAssociateRq',
      'AReleaseRq',
      'AReleaseRp',
    ]);
    // AR-3 closes the transport.
    await waitFor(() => acceptor.closedConnections === 1, 5_000, 'our close');
  });

  it('goes Sta6 -> Sta1 on an A-ABORT from the peer (AA-3): aborted-by-peer', async () => {
    const { port } = await scriptedAcceptor((pdu, socket) => {
      if (pdu.type === 'AAssociateRq') socket.write(Buffer.concat([ECHO_AC, ABORT]));
    });
    const { association, established, steps } = requestFrom(port);
    cleanups.push(() => association.abort());
    await established.catch(() => undefined);

    const summary = await association.closed;

    expect(steps).toEqual([
      ['Sta4', 'Evt2', 'AE-2', 'Sta5'],
      ['Sta5', 'Evt3', 'AE-3', 'Sta6'],
      ['Sta6', 'Evt16', 'AA-3', 'Sta1'],
    ]);
    expect({ outcome: summary.outcome, abort: summary.abort }).toEqual({
      outcome: 'aborted-by-peer',
      abort: { source: 0, reason: 0 },
    });
  });

  it('rejects release() with ERR_ASSOCIATION_ABORTED when the peer answers with an A-ABORT', async () => {
    const { port } = await scriptedAcceptor((pdu, socket) => {
      if (pdu.type === 'AAssociateRq') socket.write(ECHO_AC);
      if (pdu.type === 'AReleaseRq') socket.write(ABORT);
    });
    const { association, established, steps } = requestFrom(port);
    cleanups.push(() => association.abort());
    await established;

    const outcome = await association.release().then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(outcome).toBeInstanceOf(DicomServerError);
    expect((outcome as DicomServerError).code).toBe('ERR_ASSOCIATION_ABORTED');
    expect(steps.slice(2)).toEqual([
      ['Sta6', 'Evt11', 'AR-1', 'Sta7'],
      ['Sta7', 'Evt16', 'AA-3', 'Sta1'],
    ]);
    expect((await association.closed).outcome).toBe('aborted-by-peer');
  });

  describe('against the live server', () => {
    let test: TestServer;

    it('releases in order: Sta6 -> Sta7 -> Sta1 (AR-1, AR-3), on both ends', async () => {
      test = await startTestServer({ aeTitle: AE_TITLE });
      cleanups.push(() => test.stop());
      const { association, established, steps } = requestFrom(test.port);
      cleanups.push(() => association.abort());
      await established;

      await association.release();
      const summary = await association.closed;

      expect(steps).toEqual([
        ['Sta4', 'Evt2', 'AE-2', 'Sta5'],
        ['Sta5', 'Evt3', 'AE-3', 'Sta6'],
        ['Sta6', 'Evt11', 'AR-1', 'Sta7'],
        ['Sta7', 'Evt13', 'AR-3', 'Sta1'],
      ]);
      expect(summary.outcome).toBe('released');
      await waitFor(() => test.server.openConnections === 0, 5_000, 'the server side to close');
      const serverSteps = test.logs
        .filter((line) => line.msg === 'state transition')
        .map((line) => [line.from, line.event, line.action, line.to]);
      expect(serverSteps).toEqual([
        // Evt5 (AE-5) runs as the connection is taken, before the log subscribes.
        ['Sta2', 'Evt6', 'AE-6', 'Sta3'],
        ['Sta3', 'Evt7', 'AE-7', 'Sta6'],
        ['Sta6', 'Evt12', 'AR-2', 'Sta8'],
        ['Sta8', 'Evt14', 'AR-4', 'Sta13'],
        ['Sta13', 'Evt17', 'AR-5', 'Sta1'],
      ]);
      const close = test.logs.find((line) => 'outcome' in line);
      expect(close?.outcome).toBe('released');
      expect(test.logs.filter((line) => line.level >= 50)).toEqual([]);
    });

    it('aborts an association still open when the server stops, after the grace period', async () => {
      test = await startTestServer({ aeTitle: AE_TITLE });
      cleanups.push(() => test.stop());
      const { association, established, steps } = requestFrom(test.port);
      cleanups.push(() => association.abort());
      await established;

      // Stopping must not wait for the peer to close on its own: after the grace period the
      // server aborts, and our requestor closes on the A-ABORT (AA-3).
      const stopped = test.server.stop(100);
      const summary = await within(association.closed, 3_000, "the server's A-ABORT");
      await within(stopped, 5_000, 'the server to stop');

      expect(steps.slice(2)).toEqual([['Sta6', 'Evt16', 'AA-3', 'Sta1']]);
      expect(summary.outcome).toBe('aborted-by-peer');
      expect(test.server.state).toBe('stopped');
      expect(test.server.openConnections).toBe(0);
    });
  });
});

describe('release and abort with our Association as acceptor', () => {
  /** An acceptor of ours on a free port; resolves each association it takes, with its steps. */
  async function ourAcceptor(): Promise<{
    port: number;
    next: () => Promise<{ association: Association; steps: Step[] }>;
  }> {
    const acceptor = new AssociationAcceptor({
      aeTitle: AE_TITLE,
      served: SERVED,
      maxPduLength: MAX_PDU_LENGTH,
      maxAssociations: 4,
      timeouts: TIMEOUTS,
    });
    const taken: { association: Association; steps: Step[] }[] = [];
    acceptor.on('association', (association) =>
      taken.push({ association, steps: recordTransitions(association) }),
    );
    const { port } = await acceptor.listen('127.0.0.1', 0);
    cleanups.push(async () => {
      await acceptor.stopListening();
      await acceptor.abortAll();
    });
    return {
      port,
      next: async () => {
        await waitFor(() => taken.length > 0, 5_000, 'a connection');
        return taken.shift()!;
      },
    };
  }

  async function associatedPeer(port: number): Promise<RawPeer> {
    const peer = await RawPeer.connect(port);
    cleanups.push(() => peer.destroy());
    peer.write(ECHO_RQ);
    await peer.waitForPdu('AAssociateAc');
    return peer;
  }

  it('goes Sta7 -> Sta10 -> Sta12 -> Sta13 in a release collision (AR-8, AR-10, AR-4)', async () => {
    const { port, next } = await ourAcceptor();
    const peer = await associatedPeer(port);
    const { association, steps } = await next();
    await waitFor(() => association.isEstablished, 5_000, 'Sta6');

    const released = association.release();
    // The peer's A-RELEASE-RQ crosses ours: it sends it without answering ours.
    await peer.waitForPdu('AReleaseRq');
    peer.write(RELEASE_RQ);
    await waitFor(() => association.state === 'Sta10', 5_000, 'Sta10');
    // The requestor of the association answers first (its AR-9).
    peer.write(RELEASE_RP);
    await released;
    await peer.waitForPdu('AReleaseRp');
    // In Sta13 we await the transport close, which is the requestor's to do.
    peer.socket.end();
    const summary = await association.closed;

    expect(steps).toEqual([
      ['Sta2', 'Evt6', 'AE-6', 'Sta3'],
      ['Sta3', 'Evt7', 'AE-7', 'Sta6'],
      ['Sta6', 'Evt11', 'AR-1', 'Sta7'],
      ['Sta7', 'Evt12', 'AR-8', 'Sta10'],
      ['Sta10', 'Evt13', 'AR-10', 'Sta12'],
      ['Sta12', 'Evt14', 'AR-4', 'Sta13'],
      ['Sta13', 'Evt17', 'AR-5', 'Sta1'],
    ]);
    expect(summary.outcome).toBe('released');
    await peer.waitForClose();
    expect(peer.received).toEqual([]);
  });

  it('answers an A-RELEASE-RQ: Sta6 -> Sta8 -> Sta13 -> Sta1 (AR-2, AR-4, AR-5)', async () => {
    const { port, next } = await ourAcceptor();
    const peer = await associatedPeer(port);
    const { association, steps } = await next();

    peer.write(RELEASE_RQ);
    await peer.waitForPdu('AReleaseRp');
    peer.socket.end();
    const summary = await association.closed;

    expect(steps).toEqual([
      ['Sta2', 'Evt6', 'AE-6', 'Sta3'],
      ['Sta3', 'Evt7', 'AE-7', 'Sta6'],
      ['Sta6', 'Evt12', 'AR-2', 'Sta8'],
      ['Sta8', 'Evt14', 'AR-4', 'Sta13'],
      ['Sta13', 'Evt17', 'AR-5', 'Sta1'],
    ]);
    expect(summary.outcome).toBe('released');
  });

  it('goes Sta6 -> Sta1 on an A-ABORT from the peer (AA-3): aborted-by-peer', async () => {
    const { port, next } = await ourAcceptor();
    const peer = await associatedPeer(port);
    const { association, steps } = await next();

    peer.write(ABORT);
    const summary = await association.closed;

    expect(steps).toEqual([
      ['Sta2', 'Evt6', 'AE-6', 'Sta3'],
      ['Sta3', 'Evt7', 'AE-7', 'Sta6'],
      ['Sta6', 'Evt16', 'AA-3', 'Sta1'],
    ]);
    expect({ outcome: summary.outcome, abort: summary.abort }).toEqual({
      outcome: 'aborted-by-peer',
      abort: { source: 0, reason: 0 },
    });
    // AA-3 closes the transport; nothing is sent in answer to an A-ABORT.
    await peer.waitForClose();
    expect(peer.received).toEqual([]);
  });
});
