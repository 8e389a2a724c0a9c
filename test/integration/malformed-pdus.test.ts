/**
 * Malformed and unexpected upper-layer input against the live server, over a raw socket: each
 * case must end in the A-ABORT (or A-ASSOCIATE-RJ) that PS3.8 prescribes, then the connection
 * closed, and leave the server serving (a C-ECHO succeeds, no connection left open, nothing
 * logged at error level).
 *
 * Layer: test (integration). The bytes are the DCMTK fixtures of `test/fixtures/pdu/`, edited
 * at named offsets.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SopClass } from '../../src/dicom/uid.js';
import type { ErrorCode } from '../../src/errors.js';
import { CommandField, type CommandSet, encodeCommand } from '../../src/network/dimse/command.js';
import { encodePDataHeader } from '../../src/network/pdu/encode.js';
import {
  AbortReason,
  AbortSource,
  PDU_HEADER_LENGTH,
  RejectReason,
  RejectResult,
  RejectSource,
} from '../../src/network/pdu/types.js';
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
/** The Maximum Length Received the server announces. */
const MAX_PDU_LENGTH = 16 * 1024;
/** The largest A-ASSOCIATE-RQ the server reads: 1 MiB. */
const MAX_ASSOCIATE_PDU_LENGTH = 1024 * 1024;

/** echoscu's A-ASSOCIATE-RQ: one context (ID 1, Verification, Implicit VR LE), max PDU 16384. */
const ECHO_RQ = loadPduFixture('echo-01-a-associate-rq.hex');
/** echoscu's C-ECHO-RQ: one PDV on context 1, a command, last fragment. */
const ECHO_PDATA = loadPduFixture('echo-03-p-data-tf-c-echo-rq.hex');
const RELEASE_RQ = loadPduFixture('echo-05-a-release-rq.hex');
/** storescu's A-ASSOCIATE-RQ: 128 storage contexts, none of which this server serves. */
const STORE_RQ = loadPduFixture('store-01-a-associate-rq.hex');

/** Offset of the first item after the fixed fields of an A-ASSOCIATE-RQ (PS3.8 Table 9-11). */
const FIRST_ITEM_OFFSET = PDU_HEADER_LENGTH + 68;
/** Offset of the Presentation-context-ID of the first PDV in a P-DATA-TF (PS3.8 Table 9-23). */
const FIRST_PDV_CONTEXT_OFFSET = PDU_HEADER_LENGTH + 4;

/** A copy of `bytes` with `edit` applied. */
function edited(bytes: Buffer, edit: (copy: Buffer) => void): Buffer {
  const copy = Buffer.from(bytes);
  edit(copy);
  return copy;
}

/** The offset of the first item (or sub-item) of `type` and `length` after the fixed fields. */
function itemOffset(pdu: Buffer, type: number, length: number): number {
  const header = Buffer.from([type, 0, length >> 8, length & 0xff]);
  const offset = pdu.indexOf(header, FIRST_ITEM_OFFSET);
  if (offset < 0) throw new Error(`no item 0x${type.toString(16)} of length ${length}`);
  return offset;
}

/** Guards an edit: the fixture holds `value` at `offset`. */
function expectByte(bytes: Buffer, offset: number, value: number): void {
  if (bytes[offset] !== value)
    throw new Error(`fixture byte ${offset} is not 0x${value.toString(16)}`);
}

/** The PDU with its PDU-length field set to the length of `body`, and that body. */
function withBody(type: number, body: Buffer): Buffer {
  const header = Buffer.alloc(PDU_HEADER_LENGTH);
  header[0] = type;
  header.writeUInt32BE(body.length, 2);
  return Buffer.concat([header, body]);
}

/** A PDU header alone, announcing `length` bytes that are never sent. */
function headerOnly(type: number, length: number): Buffer {
  const header = Buffer.alloc(PDU_HEADER_LENGTH);
  header[0] = type;
  header.writeUInt32BE(length, 2);
  return header;
}

/** echoscu's A-ASSOCIATE-RQ with one more user-information sub-item appended (PS3.8 §D.1). */
function withUserSubItem(subItem: Buffer): Buffer {
  const userInfo = itemOffset(ECHO_RQ, 0x50, 0x3a);
  return edited(Buffer.concat([ECHO_RQ, subItem]), (copy) => {
    copy.writeUInt16BE(copy.readUInt16BE(userInfo + 2) + subItem.length, userInfo + 2);
    copy.writeUInt32BE(copy.length - PDU_HEADER_LENGTH, 2);
  });
}

/** A P-DATA-TF holding one whole command on context 1. */
function commandPData(command: CommandSet): Buffer {
  const bytes = encodeCommand(command);
  return Buffer.concat([encodePDataHeader(1, true, true, bytes.length), bytes]);
}

/** An SCP/SCU Role Selection sub-item for Verification, SCU role only (PS3.7 §D.3.3.4). */
function verificationRoleSelection(): Buffer {
  const uid = Buffer.from(SopClass.Verification, 'latin1');
  const value = Buffer.concat([Buffer.from([0, uid.length]), uid, Buffer.from([1, 0])]);
  return Buffer.concat([Buffer.from([0x54, 0, 0, value.length]), value]);
}

/**
 * Runs `body` while collecting what escapes to the process: an unhandled rejection or an
 * uncaught exception (an 'error' event nobody listens to), either of which ends a Node process.
 */
async function collectingEscapes(body: (escaped: unknown[]) => Promise<void>): Promise<void> {
  const escaped: unknown[] = [];
  const onEscape = (reason: unknown) => escaped.push(reason);
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
  try {
    await body(escaped);
  } finally {
    process.off('unhandledRejection', onEscape);
    process.off('uncaughtException', onEscape);
  }
}

/** Lets what the current turn scheduled (next ticks, rejections, stream errors) happen. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** One input that the server must answer with an A-ABORT of the service provider. */
interface AbortCase {
  readonly name: string;
  /** An A-ASSOCIATE-RQ the server accepts before the input is sent. */
  readonly associateFirst?: Buffer;
  readonly input: Buffer;
  readonly reason: number;
  /** The code the server logs as the cause of its abort. */
  readonly code: ErrorCode;
}

const ABORT_CASES: readonly AbortCase[] = [
  {
    name: 'an unknown PDU type before association: unrecognized-PDU',
    input: withBody(0x08, Buffer.alloc(4)),
    reason: AbortReason.UnrecognizedPdu,
    code: 'ERR_PDU_UNKNOWN_TYPE',
  },
  {
    name: 'an unknown PDU type on an established association: unrecognized-PDU',
    associateFirst: ECHO_RQ,
    input: withBody(0xff, Buffer.alloc(4)),
    reason: AbortReason.UnrecognizedPdu,
    code: 'ERR_PDU_UNKNOWN_TYPE',
  },
  {
    name: 'an A-ASSOCIATE-RQ whose PDU-length ends inside its user information item',
    // The PDU-length is 10 short and the last 10 bytes are not sent: the stream stays in step.
    input: withBody(0x01, ECHO_RQ.subarray(PDU_HEADER_LENGTH, ECHO_RQ.length - 10)),
    reason: AbortReason.InvalidPduParameterValue,
    code: 'ERR_PDU_MALFORMED',
  },
  {
    name: 'an A-ASSOCIATE-RQ whose PDU-length leaves 2 bytes after its last item',
    input: withBody(0x01, Buffer.concat([ECHO_RQ.subarray(PDU_HEADER_LENGTH), Buffer.alloc(2)])),
    reason: AbortReason.InvalidPduParameterValue,
    code: 'ERR_PDU_MALFORMED',
  },
  {
    name: 'an A-RELEASE-RQ of PDU-length 6 instead of 4',
    associateFirst: ECHO_RQ,
    input: withBody(0x05, Buffer.alloc(6)),
    reason: AbortReason.InvalidPduParameterValue,
    code: 'ERR_PDU_MALFORMED',
  },
  {
    name: 'an abstract syntax sub-item overrunning its presentation context item',
    input: edited(ECHO_RQ, (copy) => {
      const abstractSyntax = itemOffset(ECHO_RQ, 0x30, 0x11);
      copy.writeUInt16BE(0x11 + 8, abstractSyntax + 2);
    }),
    reason: AbortReason.InvalidPduParameterValue,
    code: 'ERR_PDU_MALFORMED',
  },
  {
    name: 'a PDV item overrunning its P-DATA-TF',
    associateFirst: ECHO_RQ,
    input: edited(ECHO_PDATA, (copy) => {
      copy.writeUInt32BE(copy.readUInt32BE(PDU_HEADER_LENGTH) + 1, PDU_HEADER_LENGTH);
    }),
    reason: AbortReason.InvalidPduParameterValue,
    code: 'ERR_PDU_MALFORMED',
  },
  {
    name: 'an unknown item type in an A-ASSOCIATE-RQ: unrecognized-PDU-parameter',
    input: edited(ECHO_RQ, (copy) => {
      // The application context item (0x10) becomes 0x11, which PS3.8 does not define.
      expectByte(copy, FIRST_ITEM_OFFSET, 0x10);
      copy[FIRST_ITEM_OFFSET] = 0x11;
    }),
    reason: AbortReason.UnrecognizedPduParameter,
    code: 'ERR_PDU_UNKNOWN_ITEM',
  },
  {
    name: 'a P-DATA-TF before any A-ASSOCIATE-RQ: unexpected-PDU',
    input: ECHO_PDATA,
    reason: AbortReason.UnexpectedPdu,
    code: 'ERR_UNEXPECTED_PDU',
  },
  {
    name: 'an A-RELEASE-RQ before any A-ASSOCIATE-RQ: unexpected-PDU',
    input: RELEASE_RQ,
    reason: AbortReason.UnexpectedPdu,
    code: 'ERR_UNEXPECTED_PDU',
  },
  {
    name: 'a second A-ASSOCIATE-RQ after acceptance: unexpected-PDU',
    associateFirst: ECHO_RQ,
    input: ECHO_RQ,
    reason: AbortReason.UnexpectedPdu,
    code: 'ERR_UNEXPECTED_PDU',
  },
  {
    name: 'an A-ASSOCIATE-RQ header announcing more than 1 MiB, its body never sent',
    input: headerOnly(0x01, MAX_ASSOCIATE_PDU_LENGTH + 1),
    reason: AbortReason.InvalidPduParameterValue,
    code: 'ERR_PDU_TOO_LARGE',
  },
  {
    name: 'a P-DATA-TF header announcing more than our maximum PDU length, its body never sent',
    associateFirst: ECHO_RQ,
    input: headerOnly(0x04, MAX_PDU_LENGTH + 1),
    reason: AbortReason.InvalidPduParameterValue,
    code: 'ERR_PDU_TOO_LARGE',
  },
  {
    name: 'a PDV on a presentation context ID that was never proposed',
    associateFirst: ECHO_RQ,
    input: edited(ECHO_PDATA, (copy) => {
      expectByte(copy, FIRST_PDV_CONTEXT_OFFSET, 1);
      copy[FIRST_PDV_CONTEXT_OFFSET] = 3;
    }),
    reason: AbortReason.InvalidPduParameterValue,
    code: 'ERR_DIMSE_UNEXPECTED',
  },
  {
    name: 'a PDV on a presentation context that was proposed and rejected',
    // storescu's context 1 is CT Image Storage, which this server does not serve.
    associateFirst: STORE_RQ,
    input: ECHO_PDATA,
    reason: AbortReason.InvalidPduParameterValue,
    code: 'ERR_DIMSE_UNEXPECTED',
  },
];

describe('the live server against malformed and unexpected PDUs', () => {
  let test: TestServer;
  const peers: RawPeer[] = [];
  /** The local port of each peer, read while connected (a closed socket no longer has one). */
  const localPorts = new Map<RawPeer, number>();

  beforeAll(async () => {
    // A short ARTIM: after its A-ABORT the server awaits our close for that long, then closes.
    test = await startTestServer({
      aeTitle: AE_TITLE,
      maxPduLength: MAX_PDU_LENGTH,
      timeouts: { artimMs: 500 },
    });
  });

  afterAll(async () => {
    await test?.stop();
  });

  afterEach(async (context) => {
    for (const peer of peers.splice(0)) peer.destroy();
    const errors = takeErrorLogs(test, context.task.result?.state === 'fail');
    expect(errors, 'log lines at error level').toEqual([]);
  });

  async function connect(): Promise<RawPeer> {
    const peer = await RawPeer.connect(test.port);
    peers.push(peer);
    localPorts.set(peer, peer.socket.localPort!);
    return peer;
  }

  /** Sends an A-ASSOCIATE-RQ and awaits its A-ASSOCIATE-AC. */
  async function associate(peer: RawPeer, request: Buffer): Promise<void> {
    peer.write(request);
    const ac = await peer.waitForPdu('AAssociateAc');
    expect(ac.calledAeTitle).toBe(AE_TITLE);
  }

  /** The log lines of the server-side association of `peer`. */
  function linesOf(peer: RawPeer): LogLine[] {
    const address = `127.0.0.1:${localPorts.get(peer)}`;
    return test.logs.filter((line) => line.peer === address);
  }

  /** After each case: nothing left open, and a C-ECHO from a well-behaved client succeeds. */
  async function expectServerStillServing(): Promise<void> {
    await waitFor(() => test.server.openConnections === 0, 5_000, 'the connection to close');
    const result = await echo({
      host: '127.0.0.1',
      port: test.port,
      callingAeTitle: 'ECHOSCU',
      calledAeTitle: AE_TITLE,
    });
    expect(result.status).toBe(0);
    await waitFor(() => test.server.openConnections === 0, 5_000, 'no open connection');
    expect(test.server.activeAssociations).toBe(0);
  }

  it.each(ABORT_CASES)('aborts on $name', async ({ associateFirst, input, reason, code }) => {
    const peer = await connect();
    if (associateFirst !== undefined) await associate(peer, associateFirst);
    peer.write(input);

    const abort = await peer.waitForPdu('AAbort');
    expect({ source: abort.source, reason: abort.reason }).toEqual({
      source: AbortSource.ServiceProvider,
      reason,
    });
    await peer.waitForClose();
    expect(peer.received, 'PDUs after the A-ABORT').toEqual([]);
    await waitFor(
      () => linesOf(peer).some((line) => line.outcome !== undefined),
      5_000,
      'the close log line',
    );
    const close = linesOf(peer).find((line) => line.outcome !== undefined)!;
    expect({ level: close.level, outcome: close.outcome, code: close.code }).toEqual({
      level: 40,
      outcome: 'aborted-locally',
      code,
    });
    await expectServerStillServing();
  });

  it('rejects an A-ASSOCIATE-RQ whose protocol version lacks bit 0 (1, 2, 2)', async () => {
    const peer = await connect();
    peer.write(edited(ECHO_RQ, (copy) => copy.writeUInt16BE(0x0002, PDU_HEADER_LENGTH)));

    const rj = await peer.waitForPdu('AAssociateRj');
    expect({ result: rj.result, source: rj.source, reason: rj.reason }).toEqual({
      result: RejectResult.RejectedPermanent,
      source: RejectSource.ServiceProviderAcse,
      reason: RejectReason.ProtocolVersionNotSupported,
    });
    await peer.waitForClose();
    expect(peer.received).toEqual([]);
    await expectServerStillServing();
  });

  it('accepts an A-ASSOCIATE-RQ whose protocol version has bit 0 and other bits set', async () => {
    const peer = await connect();
    await associate(
      peer,
      edited(ECHO_RQ, (copy) => copy.writeUInt16BE(0x0003, PDU_HEADER_LENGTH)),
    );
    peer.write(RELEASE_RQ);
    await peer.waitForPdu('AReleaseRp');
    peer.socket.end();
    await peer.waitForClose();
    await expectServerStillServing();
  });

  it('accepts an A-ASSOCIATE-RQ holding an unknown user-information sub-item', async () => {
    const peer = await connect();
    // Sub-item type 0x7f is not defined by PS3.7 Annex D: it is skipped, not fatal.
    await associate(peer, withUserSubItem(Buffer.from([0x7f, 0, 0, 4, 1, 2, 3, 4])));

    peer.write(ECHO_PDATA);
    const response = await peer.waitForPdu('PDataTf');
    expect(response.pdvs.map((pdv) => [pdv.contextId, pdv.isCommand, pdv.isLast])).toEqual([
      [1, true, true],
    ]);
    peer.write(RELEASE_RQ);
    await peer.waitForPdu('AReleaseRp');
    peer.socket.end();
    await peer.waitForClose();
    expect(peer.received).toEqual([]);
    await expectServerStillServing();
  });

  it('accepts an A-ASSOCIATE-RQ repeating one role selection 2619 times, answering it once', async () => {
    // The request's User Information item is 65533 bytes; answering every repetition (plus our
    // own sub-items) would not fit the 16-bit item length.
    const roles = Buffer.concat(Array.from({ length: 2619 }, verificationRoleSelection));
    const peer = await connect();
    peer.write(withUserSubItem(roles));

    const ac = await peer.waitForPdu('AAssociateAc');
    expect(ac.userInformation.roleSelections).toEqual([
      { sopClassUid: SopClass.Verification, scuRole: true, scpRole: false },
    ]);
    peer.write(RELEASE_RQ);
    await peer.waitForPdu('AReleaseRp');
    peer.socket.end();
    await peer.waitForClose();
    await expectServerStillServing();
  });

  it('survives two C-ECHO-RQs with one message ID followed at once by an A-RELEASE-RQ', async () => {
    // The second request is a duplicate invocation; the release ends the association before
    // the answers are sent. Nothing of this may escape to the process.
    await collectingEscapes(async (escaped) => {
      const peer = await connect();
      await associate(peer, ECHO_RQ);
      peer.write(Buffer.concat([ECHO_PDATA, ECHO_PDATA, RELEASE_RQ]));

      await peer.waitForPdu('AReleaseRp');
      peer.socket.end();
      await peer.waitForClose();
      await waitFor(
        () => linesOf(peer).some((line) => line.outcome !== undefined),
        5_000,
        'the close log line',
      );
      await settle();
      expect(escaped).toEqual([]);
    });
    await expectServerStillServing();
  });

  it.each([
    {
      name: 'a C-ECHO-RSP to no outstanding request',
      command: {
        commandField: CommandField.CEchoRsp,
        messageIdBeingRespondedTo: 1,
        affectedSopClassUid: SopClass.Verification,
        status: 0,
        hasDataset: true,
      },
    },
    {
      name: 'a command field PS3.7 does not define',
      command: { commandField: 0x7777, messageId: 1, hasDataset: true },
    },
  ])('aborts on $name announcing a data set, and survives its close', async ({ command }) => {
    // The data set announced is never read by anyone: ending the association must not turn it
    // into an unhandled 'error' event.
    await collectingEscapes(async (escaped) => {
      const peer = await connect();
      await associate(peer, ECHO_RQ);
      peer.write(commandPData(command));

      await peer.waitForPdu('AAbort');
      await peer.waitForClose();
      await waitFor(
        () => linesOf(peer).some((line) => line.outcome !== undefined),
        5_000,
        'the close log line',
      );
      await settle();
      expect(escaped).toEqual([]);
    });
    await expectServerStillServing();
  });

  it('survives a C-CANCEL-RQ announcing a data set, then a release', async () => {
    await collectingEscapes(async (escaped) => {
      const peer = await connect();
      await associate(peer, ECHO_RQ);
      peer.write(
        commandPData({
          commandField: CommandField.CCancelRq,
          messageIdBeingRespondedTo: 1,
          hasDataset: true,
        }),
      );
      peer.write(RELEASE_RQ);

      await peer.waitForPdu('AReleaseRp');
      peer.socket.end();
      await peer.waitForClose();
      await waitFor(
        () => linesOf(peer).some((line) => line.outcome !== undefined),
        5_000,
        'the close log line',
      );
      await settle();
      expect(escaped).toEqual([]);
    });
    await expectServerStillServing();
  });

  it('leaves no open association when the stream stops half-way through an A-ASSOCIATE-RQ', async () => {
    const peer = await connect();
    peer.write(ECHO_RQ.subarray(0, Math.floor(ECHO_RQ.length / 2)));
    await waitFor(() => test.server.openConnections === 1, 5_000, 'the connection to open');
    peer.socket.end();

    await peer.waitForClose();
    expect(peer.received).toEqual([]);
    await waitFor(
      () => linesOf(peer).some((line) => line.outcome !== undefined),
      5_000,
      'the close log line',
    );
    const close = linesOf(peer).find((line) => line.outcome !== undefined)!;
    expect({ outcome: close.outcome, code: close.code }).toEqual({
      outcome: 'never-associated',
      code: 'ERR_PDU_TRUNCATED',
    });
    await expectServerStillServing();
  });

  it('leaves no open association when the stream stops half-way through a P-DATA-TF', async () => {
    const peer = await connect();
    await associate(peer, ECHO_RQ);
    expect(test.server.activeAssociations).toBe(1);
    peer.write(ECHO_PDATA.subarray(0, Math.floor(ECHO_PDATA.length / 2)));
    peer.socket.end();

    await peer.waitForClose();
    expect(peer.received).toEqual([]);
    await waitFor(
      () => linesOf(peer).some((line) => line.outcome !== undefined),
      5_000,
      'the close log line',
    );
    const close = linesOf(peer).find((line) => line.outcome !== undefined)!;
    expect({ outcome: close.outcome, code: close.code }).toEqual({
      outcome: 'connection-lost',
      code: 'ERR_PDU_TRUNCATED',
    });
    await expectServerStillServing();
  });
});
