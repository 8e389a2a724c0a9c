/**
 * The upper layer's timers against the live server, with short settings: ARTIM closes a
 * connection that sends no A-ASSOCIATE-RQ (or sends it too slowly), the network timer aborts an
 * association gone silent, and the ACSE timer gives up on an acceptor that never answers. Slow
 * peers must not hold up other clients.
 *
 * Layer: test (integration). Waits on events with deadlines; asserts no durations.
 */

import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { DicomServerError } from '../../src/errors.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { decodePdu } from '../../src/network/pdu/decode.js';
import { PduFramer } from '../../src/network/pdu/framer.js';
import type { Pdu } from '../../src/network/pdu/types.js';
import { echo } from '../../src/services/scu/echo.js';
import { loadPduFixture } from '../helpers/hex-fixture.js';
import { RawPeer } from '../helpers/raw-peer.js';
import {
  type LogLine,
  startTestServer,
  type TestServer,
  takeErrorLogs,
  waitFor,
} from '../helpers/server.js';

/** The fixtures call the AE title STORESCP, so the server under test answers to it. */
const AE_TITLE = 'STORESCP';
const ARTIM_MS = 500;
const NETWORK_MS = 800;
/** echoscu's A-ASSOCIATE-RQ (211 bytes). */
const ECHO_RQ = loadPduFixture('echo-01-a-associate-rq.hex');
/** One byte of the A-ASSOCIATE-RQ per this many milliseconds: 21 s for the whole PDU. */
const DRIP_INTERVAL_MS = 100;

/** Writes `bytes` one at a time until they are all sent or the server closes; returns the count sent. */
async function drip(peer: RawPeer, bytes: Buffer): Promise<number> {
  let sent = 0;
  while (sent < bytes.length && !peer.isClosed) {
    peer.write(bytes.subarray(sent, sent + 1));
    sent += 1;
    await new Promise((resolve) => setTimeout(resolve, DRIP_INTERVAL_MS));
  }
  return sent;
}

describe('the timers of the live server', () => {
  let test: TestServer;
  const peers: RawPeer[] = [];
  const localPorts = new Map<RawPeer, number>();

  beforeAll(async () => {
    test = await startTestServer({
      aeTitle: AE_TITLE,
      timeouts: { artimMs: ARTIM_MS, networkMs: NETWORK_MS, acseMs: 2_000, dimseMs: 2_000 },
    });
  });

  afterAll(async () => {
    await test?.stop();
  });

  afterEach(async (context) => {
    for (const peer of peers.splice(0)) peer.destroy();
    await waitFor(() => test.server.openConnections === 0, 5_000, 'no open connection');
    const errors = takeErrorLogs(test, context.task.result?.state === 'fail');
    expect(errors, 'log lines at error level').toEqual([]);
  });

  async function connect(): Promise<RawPeer> {
    const peer = await RawPeer.connect(test.port);
    peers.push(peer);
    localPorts.set(peer, peer.socket.localPort!);
    return peer;
  }

  /** The close log line of the server-side association of `peer`, once written. */
  async function closeLineOf(peer: RawPeer): Promise<LogLine> {
    const address = `127.0.0.1:${localPorts.get(peer)}`;
    const find = () => test.logs.find((line) => line.peer === address && 'outcome' in line);
    await waitFor(() => find() !== undefined, 5_000, 'the close log line');
    return find()!;
  }

  function echoOnce() {
    return echo({
      host: '127.0.0.1',
      port: test.port,
      callingAeTitle: 'ECHOSCU',
      calledAeTitle: AE_TITLE,
    });
  }

  it('closes a connection that sends nothing when ARTIM expires', async () => {
    const peer = await connect();

    await peer.waitForClose(10 * ARTIM_MS);
    // ARTIM in Sta2 is AA-2: the transport is closed without an A-ABORT.
    expect(peer.received).toEqual([]);
    const close = await closeLineOf(peer);
    expect({ outcome: close.outcome, code: close.code, timer: close.timer }).toEqual({
      outcome: 'never-associated',
      code: 'ERR_TIMEOUT',
      timer: 'artim',
    });
  });

  it('closes a connection that drips its A-ASSOCIATE-RQ before the request is complete', async () => {
    const peer = await connect();

    const sent = await drip(peer, ECHO_RQ);
    await peer.waitForClose(10 * ARTIM_MS);
    expect(sent).toBeLessThan(ECHO_RQ.length);
    expect(peer.received).toEqual([]);
    const close = await closeLineOf(peer);
    expect({ outcome: close.outcome, code: close.code, timer: close.timer }).toEqual({
      outcome: 'never-associated',
      code: 'ERR_TIMEOUT',
      timer: 'artim',
    });
  });

  it('serves a C-ECHO from another client while silent and dripping connections are open', async () => {
    const silent = await Promise.all([connect(), connect(), connect()]);
    const dripping = await Promise.all([connect(), connect(), connect()]);
    const drips = dripping.map((peer) => drip(peer, ECHO_RQ));
    await waitFor(() => test.server.openConnections === 6, 5_000, 'six open connections');
    expect([...silent, ...dripping].every((peer) => !peer.isClosed)).toBe(true);

    const result = await echoOnce();
    expect(result.status).toBe(0);

    await Promise.all(drips);
    await Promise.all([...silent, ...dripping].map((peer) => peer.waitForClose(10 * ARTIM_MS)));
    expect(test.server.activeAssociations).toBe(0);
  });

  it('aborts an established association that goes silent when the network timer expires', async () => {
    const peer = await connect();
    peer.write(ECHO_RQ);
    await peer.waitForPdu('AAssociateAc');

    const abort = await peer.waitForPdu('AAbort', 10 * NETWORK_MS);
    expect(abort.type).toBe('AAbort');
    await peer.waitForClose(10 * ARTIM_MS);
    expect(peer.received).toEqual([]);
    const close = await closeLineOf(peer);
    expect({
      level: close.level,
      outcome: close.outcome,
      code: close.code,
      timer: close.timer,
    }).toEqual({ level: 40, outcome: 'aborted-locally', code: 'ERR_TIMEOUT', timer: 'network' });
    expect(test.server.activeAssociations).toBe(0);

    expect((await echoOnce()).status).toBe(0);
  });
});

describe('the ACSE timer of a requestor', () => {
  let silentAcceptor: net.Server | undefined;
  const sockets = new Set<net.Socket>();

  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    const server = silentAcceptor;
    silentAcceptor = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('rejects requestAssociation with ERR_TIMEOUT when the acceptor never answers', async () => {
    const received: Pdu[] = [];
    silentAcceptor = net.createServer((socket) => {
      sockets.add(socket);
      // Reads everything and says nothing.
      const framer = new PduFramer(() => 1024 * 1024);
      socket.on('data', (chunk) => {
        framer.push(chunk);
        for (let bytes = framer.next(); bytes !== null; bytes = framer.next()) {
          received.push(decodePdu(bytes));
        }
      });
      socket.on('error', () => undefined);
    });
    const port = await new Promise<number>((resolve) =>
      silentAcceptor!.listen(0, '127.0.0.1', () =>
        resolve((silentAcceptor!.address() as net.AddressInfo).port),
      ),
    );

    const outcome = await requestAssociation({
      host: '127.0.0.1',
      port,
      callingAeTitle: 'TIMERS_SCU',
      calledAeTitle: 'SILENT',
      contexts: [
        {
          abstractSyntax: SopClass.Verification,
          transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian],
        },
      ],
      timeouts: { acseMs: 300, artimMs: 300 },
    }).then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(outcome).toBeInstanceOf(DicomServerError);
    expect((outcome as DicomServerError).code).toBe('ERR_TIMEOUT');
    expect((outcome as DicomServerError).details.timer).toBe('acse');
    // On the ACSE timer in Sta5 the requestor aborts (AA-1) after its request.
    await waitFor(() => received.length >= 2, 5_000, 'the A-ABORT at the silent acceptor');
    expect(received.map((pdu) => pdu.type)).toEqual(['AAssociateRq', 'AAbort']);
  });
});
