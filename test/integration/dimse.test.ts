/**
 * The DIMSE layer end to end, in-process: our requestor (requestAssociation + DimseChannel)
 * against an AssociationAcceptor with a DimseChannel of its own, or against the DicomServer.
 * Fragmentation is checked on the wire by a TCP tap that cuts PDUs with its own reading of the
 * PDU and PDV headers (PS3.8 §9.3.1, §9.3.5), independent of `src/network/pdu/`. Status codes
 * are those of PS3.7 Annex C; cancellation is PS3.7 §9.3.2.3.
 *
 * Layer: integration test. Everything listens on 127.0.0.1, port 0; every wait has a deadline.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { DicomServerError } from '../../src/errors.js';
import { AssociationAcceptor } from '../../src/network/association/acceptor.js';
import type { Association } from '../../src/network/association/association.js';
import type { ServedSyntaxes } from '../../src/network/association/negotiation.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { MessageAssembler } from '../../src/network/dimse/assembler.js';
import {
  DimseChannel,
  type IncomingResponse,
  type RequestHandler,
  type ResponseSpec,
} from '../../src/network/dimse/channel.js';
import { CommandField, type CommandSet, encodeCommand } from '../../src/network/dimse/command.js';
import { fragmentBuffer, maxFragmentLength } from '../../src/network/dimse/fragmenter.js';
import { Status } from '../../src/network/dimse/status.js';
import { AbortReason, AbortSource } from '../../src/network/pdu/types.js';
import { startTestServer, waitFor } from '../helpers/server.js';
import { within } from '../helpers/wait.js';

/** A made-up SOP class under the 2.25 arc, served only by the acceptors of this file. */
const MADE_UP_SOP_CLASS = '2.25.314159265358979323846264338327950288';
const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
const SCP_AE = 'DIMSE_SCP';
const SCU_AE = 'DIMSE_SCU';
const PDU_TYPE_P_DATA_TF = 0x04;
/** The PDV item's length field counts the context ID and control header bytes too. */
const PDV_CONTEXT_AND_CONTROL = 2;

const SERVED: ServedSyntaxes = {
  transferSyntaxesFor: (abstractSyntax) =>
    abstractSyntax === MADE_UP_SOP_CLASS || abstractSyntax === SopClass.Verification
      ? [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian]
      : undefined,
  canActAsScuFor: () => false,
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

// ---- waiting with deadlines -----------------------------------------------------------------

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Resolves true when `signal` aborts, false when it has not within `timeoutMs`. */
function untilAborted(signal: AbortSignal, timeoutMs: number): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      { once: true },
    );
  });
}

// ---- the two ends ---------------------------------------------------------------------------

/** An acceptor with a DimseChannel per association whose requests go to `onRequest`. */
async function startAcceptor(
  maxPduLength: number,
  onRequest: RequestHandler,
): Promise<{ port: number; associations: Association[]; channels: DimseChannel[] }> {
  const acceptor = new AssociationAcceptor({
    aeTitle: SCP_AE,
    served: SERVED,
    maxPduLength,
    maxAssociations: 4,
  });
  const associations: Association[] = [];
  const channels: DimseChannel[] = [];
  acceptor.on('association', (association) => {
    associations.push(association);
    channels.push(new DimseChannel(association, { onRequest, dimseTimeoutMs: 10_000 }));
  });
  const { port } = await acceptor.listen('127.0.0.1', 0);
  cleanups.push(async () => {
    await acceptor.stopListening();
    await acceptor.abortAll();
  });
  return { port, associations, channels };
}

interface Scu {
  readonly association: Association;
  readonly channel: DimseChannel;
  /** The accepted context ID of an abstract syntax. */
  contextFor(abstractSyntax: string): number;
}

interface ScuOptions {
  readonly maxPduLength?: number;
  readonly abstractSyntaxes?: readonly string[];
  readonly dimseTimeoutMs?: number;
}

/** Our requestor's association, aborted after the test if still open. */
async function openAssociation(port: number, options: ScuOptions = {}): Promise<Association> {
  const association = await within(
    requestAssociation({
      host: '127.0.0.1',
      port,
      callingAeTitle: SCU_AE,
      calledAeTitle: SCP_AE,
      contexts: (options.abstractSyntaxes ?? [MADE_UP_SOP_CLASS, SopClass.Verification]).map(
        (abstractSyntax) => ({
          abstractSyntax,
          transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian],
        }),
      ),
      ...(options.maxPduLength !== undefined && { maxPduLength: options.maxPduLength }),
    }),
    5_000,
    'association',
  );
  cleanups.push(async () => {
    association.abort();
    await within(association.closed, 5_000, 'close of the SCU association');
  });
  return association;
}

function contextFor(association: Association, abstractSyntax: string): number {
  for (const context of association.acceptedContexts.values())
    if (context.abstractSyntax === abstractSyntax) return context.id;
  throw new Error(`no accepted context for ${abstractSyntax}`);
}

/** Our SCU: an association with a DimseChannel. */
async function openScu(port: number, options: ScuOptions = {}): Promise<Scu> {
  const association = await openAssociation(port, options);
  const channel = new DimseChannel(association, {
    dimseTimeoutMs: options.dimseTimeoutMs ?? 10_000,
  });
  return {
    association,
    channel,
    contextFor: (abstractSyntax) => contextFor(association, abstractSyntax),
  };
}

/** Every response to one request, until the final one, within a deadline. */
function responsesOf(
  responses: AsyncIterable<IncomingResponse>,
  timeoutMs = 20_000,
): Promise<IncomingResponse[]> {
  const collect = async () => {
    const out: IncomingResponse[] = [];
    for await (const response of responses) out.push(response);
    return out;
  };
  return within(collect(), timeoutMs, 'final response');
}

async function echoStatus(scu: Scu): Promise<number | undefined> {
  const responses = await responsesOf(
    scu.channel.request(scu.contextFor(SopClass.Verification), {
      commandField: CommandField.CEchoRq,
      affectedSopClassUid: SopClass.Verification,
      hasDataset: false,
    }),
  );
  expect(responses).toHaveLength(1);
  return responses[0]!.command.status;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function* inChunks(bytes: Buffer, sizes: readonly number[]): AsyncGenerator<Buffer> {
  let offset = 0;
  for (let i = 0; offset < bytes.length; i += 1) {
    const size = sizes[i % sizes.length]!;
    yield bytes.subarray(offset, offset + size);
    offset += size;
  }
}

/** Reads the request's data set and answers success with its SHA-256 in the Error Comment. */
const hashingHandler: RequestHandler = async (request) => {
  const hash = createHash('sha256');
  if (request.dataset !== undefined) for await (const chunk of request.dataset) hash.update(chunk);
  return { status: Status.Success, fields: { errorComment: hash.digest('hex') } };
};

// ---- a TCP tap that cuts PDUs on its own ------------------------------------------------------

interface TappedPdv {
  readonly contextId: number;
  readonly isCommand: boolean;
  readonly isLast: boolean;
  readonly dataLength: number;
}

interface TappedPdu {
  /** rq: requestor to acceptor; ac: acceptor to requestor. */
  readonly direction: 'rq' | 'ac';
  readonly type: number;
  /** The PDU length field: the bytes after the 6-byte header. */
  readonly length: number;
  readonly pdvs: readonly TappedPdv[];
}

function pdvsOf(pdu: Buffer): TappedPdv[] {
  const pdvs: TappedPdv[] = [];
  for (let offset = 6; offset < pdu.length; ) {
    const itemLength = pdu.readUInt32BE(offset);
    const control = pdu[offset + 5]!;
    pdvs.push({
      contextId: pdu[offset + 4]!,
      isCommand: (control & 0x01) !== 0,
      isLast: (control & 0x02) !== 0,
      dataLength: itemLength - PDV_CONTEXT_AND_CONTROL,
    });
    offset += 4 + itemLength;
  }
  return pdvs;
}

/** Forwards connections to `targetPort` and records every PDU crossing in either direction. */
async function startTap(targetPort: number): Promise<{ port: number; pdus: TappedPdu[] }> {
  const pdus: TappedPdu[] = [];
  const sockets = new Set<net.Socket>();
  const forward = (direction: 'rq' | 'ac', from: net.Socket, to: net.Socket) => {
    let pending: Buffer = Buffer.alloc(0);
    from.on('data', (chunk: Buffer) => {
      to.write(chunk);
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 6 && pending.length >= 6 + pending.readUInt32BE(2)) {
        const length = pending.readUInt32BE(2);
        const pdu = pending.subarray(0, 6 + length);
        const type = pdu[0]!;
        pdus.push({
          direction,
          type,
          length,
          pdvs: type === PDU_TYPE_P_DATA_TF ? pdvsOf(pdu) : [],
        });
        pending = pending.subarray(6 + length);
      }
    });
    from.on('end', () => to.end());
    from.on('error', () => to.destroy());
    from.on('close', () => to.destroy());
  };
  const server = net.createServer((requestor) => {
    const acceptor = net.connect({ host: '127.0.0.1', port: targetPort });
    for (const socket of [requestor, acceptor]) {
      sockets.add(socket);
      socket.setNoDelay(true);
    }
    forward('rq', requestor, acceptor);
    forward('ac', acceptor, requestor);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as net.AddressInfo).port, pdus };
}

function pDataTfs(pdus: readonly TappedPdu[], direction: 'rq' | 'ac'): TappedPdu[] {
  return pdus.filter((pdu) => pdu.direction === direction && pdu.type === PDU_TYPE_P_DATA_TF);
}

/** The data set PDVs of the P-DATA-TFs: each fits `maxPduLength`, only the last is flagged. */
function expectDatasetFragmentedTo(
  pDataTfs: readonly TappedPdu[],
  maxPduLength: number,
  datasetLength: number,
): void {
  expect(pDataTfs.filter((pdu) => pdu.length > maxPduLength)).toEqual([]);
  // Every PDV item fills its PDU exactly: one PDV per P-DATA-TF.
  for (const pdu of pDataTfs) {
    const itemBytes = pdu.pdvs.reduce((sum, pdv) => sum + 6 + pdv.dataLength, 0);
    expect(itemBytes).toBe(pdu.length);
  }
  const dataset = pDataTfs.flatMap((pdu) => pdu.pdvs).filter((pdv) => !pdv.isCommand);
  expect(dataset.reduce((sum, pdv) => sum + pdv.dataLength, 0)).toBe(datasetLength);
  expect(dataset.map((pdv) => pdv.isLast)).toEqual(dataset.map((_, i) => i === dataset.length - 1));
  // The limit is used, not merely respected: all but the last fragment are full, and even
  // (PS3.5 §7.1; DCMTK refuses odd fragments), so an odd maximum loses one byte.
  const full = (maxPduLength - 6) & ~1;
  expect(dataset.slice(0, -1).filter((pdv) => pdv.dataLength !== full)).toEqual([]);
}

// ---- the tests ------------------------------------------------------------------------------

describe('DIMSE fragmentation at odd maximum PDU lengths', () => {
  it.each([
    ['from one buffer', (bytes: Buffer) => bytes],
    ['from a stream of odd chunks', (bytes: Buffer) => inChunks(bytes, [1, 4090, 4092, 65_537, 3])],
  ])(
    'cuts a 1 MB data set %s to the acceptor maximum of 4097 bytes, the bytes arriving unchanged',
    async (_, source) => {
      const { port } = await startAcceptor(4097, hashingHandler);
      const tap = await startTap(port);
      const scu = await openScu(tap.port);
      expect(scu.association.peerMaxPduLength).toBe(4097);
      const sentLengths: number[] = [];
      scu.association.on('pdu', (direction, pdu) => {
        if (direction === 'out' && pdu.type === 'PDataTf' && 'length' in pdu)
          sentLengths.push(pdu.length);
      });
      const dataset = randomBytes(1_000_003);
      const responses = await responsesOf(
        scu.channel.request(
          scu.contextFor(MADE_UP_SOP_CLASS),
          {
            commandField: CommandField.CStoreRq,
            affectedSopClassUid: MADE_UP_SOP_CLASS,
            affectedSopInstanceUid: '2.25.1',
            priority: 0,
            hasDataset: true,
          },
          source(dataset),
        ),
      );
      expect(responses.map((r) => r.command.status)).toEqual([Status.Success]);
      expect(responses[0]!.command.errorComment).toBe(sha256(dataset));
      // What our association says it sent, and what the wire carried.
      expect(sentLengths.filter((length) => length + 6 > 4097)).toEqual([]);
      expectDatasetFragmentedTo(pDataTfs(tap.pdus, 'rq'), 4097, dataset.length);
    },
  );

  it.each([
    ['from one buffer', (bytes: Buffer) => bytes],
    ['from a stream of odd chunks', (bytes: Buffer) => inChunks(bytes, [65_536, 7, 4093])],
  ])('cuts the SCP response data set %s to the 4097 bytes our SCU announced', async (_, source) => {
    const dataset = randomBytes(1_000_003);
    const { port, associations } = await startAcceptor(64 * 1024, async (request) => {
      expect(request.command.commandField).toBe(CommandField.NGetRq);
      return { status: Status.Success, dataset: source(dataset) };
    });
    const tap = await startTap(port);
    const scu = await openScu(tap.port, { maxPduLength: 4097 });
    const responses = await responsesOf(
      scu.channel.request(scu.contextFor(MADE_UP_SOP_CLASS), {
        commandField: CommandField.NGetRq,
        requestedSopClassUid: MADE_UP_SOP_CLASS,
        requestedSopInstanceUid: '2.25.2',
        hasDataset: false,
      }),
    );
    expect(associations[0]!.peerMaxPduLength).toBe(4097);
    expect(responses.map((r) => r.command.status)).toEqual([Status.Success]);
    expect(responses[0]!.command.commandField).toBe(CommandField.NGetRsp);
    expect(responses[0]!.dataset?.equals(dataset)).toBe(true);
    expectDatasetFragmentedTo(pDataTfs(tap.pdus, 'ac'), 4097, dataset.length);
    // The SCU's own request went out whole: the acceptor's limit is larger.
    expect(pDataTfs(tap.pdus, 'rq')).toHaveLength(1);
  });
});

describe('DicomServer: requests it cannot serve', () => {
  async function serverScu() {
    const server = await startTestServer({ aeTitle: SCP_AE });
    cleanups.push(() => server.stop());
    const scu = await openScu(server.port, { abstractSyntaxes: [SopClass.Verification] });
    return { server, scu };
  }

  it('answers a C-STORE-RQ on the Verification context with Unrecognized Operation and goes on', async () => {
    const { scu } = await serverScu();
    const responses = await responsesOf(
      scu.channel.request(
        scu.contextFor(SopClass.Verification),
        {
          commandField: CommandField.CStoreRq,
          affectedSopClassUid: CT_IMAGE_STORAGE,
          affectedSopInstanceUid: '2.25.3',
          priority: 0,
          hasDataset: true,
        },
        randomBytes(100_000),
      ),
    );
    expect(responses).toHaveLength(1);
    expect(responses[0]!.command).toMatchObject({
      commandField: CommandField.CStoreRsp,
      status: Status.UnrecognizedOperation,
    });
    expect(Status.UnrecognizedOperation).toBe(0x0211);
    expect(await echoStatus(scu)).toBe(Status.Success);
    expect(scu.association.isEstablished).toBe(true);
  });

  it('answers a C-ECHO-RQ naming another SOP class than its context with SOP Class Not Supported and goes on', async () => {
    const { scu } = await serverScu();
    const responses = await responsesOf(
      scu.channel.request(scu.contextFor(SopClass.Verification), {
        commandField: CommandField.CEchoRq,
        affectedSopClassUid: CT_IMAGE_STORAGE,
        hasDataset: false,
      }),
    );
    expect(responses).toHaveLength(1);
    expect(responses[0]!.command).toMatchObject({
      commandField: CommandField.CEchoRsp,
      status: Status.SopClassNotSupported,
    });
    expect(Status.SopClassNotSupported).toBe(0x0122);
    expect(responses[0]!.command.errorComment?.length).toBeLessThanOrEqual(64);
    expect(await echoStatus(scu)).toBe(Status.Success);
    expect(scu.association.isEstablished).toBe(true);
  });

  it('aborts the association on a command field PS3.7 does not define, and serves the next one', async () => {
    const { server, scu } = await serverScu();
    await scu.channel.send(scu.contextFor(SopClass.Verification), {
      commandField: 0x0999,
      messageId: 1,
      affectedSopClassUid: SopClass.Verification,
      hasDataset: false,
    });
    const summary = await within(scu.association.closed, 5_000, 'abort');
    expect(summary.outcome).toBe('aborted-by-peer');
    expect(summary.abort).toBeDefined();
    await waitFor(
      () => server.logs.some((line) => line.msg === 'association aborted'),
      5_000,
      'the abort in the server log',
    );
    const line = server.logs.find((l) => l.msg === 'association aborted')!;
    expect(line).toMatchObject({ level: 40, code: 'ERR_DIMSE_MALFORMED', commandField: 0x0999 });
    const next = await openScu(server.port, { abstractSyntaxes: [SopClass.Verification] });
    expect(await echoStatus(next)).toBe(Status.Success);
  });
});

/** Sends commands with message IDs of our choosing and collects the commands coming back. */
function rawDimse(association: Association) {
  const received: CommandSet[] = [];
  let wake: (() => void) | undefined;
  const assembler = new MessageAssembler({
    isAcceptedContext: (id) => association.acceptedContexts.has(id),
    onMessage: (message) => {
      received.push(message.command);
      wake?.();
    },
    pause: () => association.pauseReading(),
    resume: () => association.resumeReading(),
  });
  association.on('pdata', (pdu) => {
    for (const pdv of pdu.pdvs) assembler.push(pdv);
  });
  return {
    send(contextId: number, command: CommandSet): void {
      association.sendPData(contextId, true, true, encodeCommand(command));
    },
    /** Sends a data set in fragments fitting the peer's limit (queued, not awaiting drain). */
    sendDataset(contextId: number, bytes: Buffer): void {
      const max = maxFragmentLength(association.peerMaxPduLength);
      for (const fragment of fragmentBuffer(bytes, max))
        association.sendPData(contextId, false, fragment.isLast, fragment.data);
    },
    /** The next command received. */
    async next(timeoutMs = 5_000): Promise<CommandSet> {
      if (received.length === 0) {
        await within(
          new Promise<void>((resolve) => {
            wake = resolve;
          }),
          timeoutMs,
          'DIMSE response',
        );
      }
      return received.shift()!;
    },
  };
}

describe('DimseChannel serving a custom handler', () => {
  it('answers Processing Failure when the handler throws, and goes on', async () => {
    let calls = 0;
    const { port } = await startAcceptor(16_384, async () => {
      calls += 1;
      if (calls === 1) throw new Error('handler failed');
      return { status: Status.Success };
    });
    const scu = await openScu(port);
    const responses = await responsesOf(
      scu.channel.request(scu.contextFor(MADE_UP_SOP_CLASS), {
        commandField: CommandField.NActionRq,
        requestedSopClassUid: MADE_UP_SOP_CLASS,
        requestedSopInstanceUid: '2.25.4',
        actionTypeId: 1,
        hasDataset: false,
      }),
    );
    expect(responses.map((r) => r.command.status)).toEqual([Status.ProcessingFailure]);
    expect(Status.ProcessingFailure).toBe(0x0110);
    expect(await echoStatus(scu)).toBe(Status.Success);
    expect(calls).toBe(2);
  });

  it('answers a release request only after the response of an operation still running', async () => {
    const started = deferred();
    const finish = deferred();
    const { port, associations } = await startAcceptor(16_384, async () => {
      started.resolve();
      await finish.promise;
      return { status: Status.Success };
    });
    const scu = await openScu(port);
    // The operation finishes only once the server has seen the A-RELEASE-RQ.
    associations[0]!.once('releaseRequested', () => finish.resolve());
    const responses = responsesOf(
      scu.channel.request(scu.contextFor(MADE_UP_SOP_CLASS), {
        commandField: CommandField.NActionRq,
        requestedSopClassUid: MADE_UP_SOP_CLASS,
        requestedSopInstanceUid: '2.25.5',
        actionTypeId: 1,
        hasDataset: false,
      }),
    );
    await within(started.promise, 5_000, 'the handler to start');
    const released = scu.association.release();
    expect((await responses).map((r) => r.command.status)).toEqual([Status.Success]);
    await within(released, 5_000, 'release');
    expect((await scu.association.closed).outcome).toBe('released');
  });

  it('answers Duplicate Invocation to a message ID whose operation is still running', async () => {
    const started = deferred();
    const release = deferred();
    let calls = 0;
    const { port } = await startAcceptor(16_384, async () => {
      calls += 1;
      if (calls === 1) {
        started.resolve();
        await within(release.promise, 10_000, 'release of the first operation');
      }
      return { status: Status.Success };
    });
    // No DimseChannel on our side: it would take the duplicate's response for the first one's.
    const association = await openAssociation(port);
    const raw = rawDimse(association);
    const context = contextFor(association, SopClass.Verification);
    const echoRq = (messageId: number): CommandSet => ({
      commandField: CommandField.CEchoRq,
      messageId,
      affectedSopClassUid: SopClass.Verification,
      hasDataset: false,
    });
    raw.send(context, echoRq(5));
    await within(started.promise, 5_000, 'start of the first operation');
    raw.send(context, echoRq(5));
    expect(await raw.next()).toMatchObject({
      commandField: CommandField.CEchoRsp,
      messageIdBeingRespondedTo: 5,
      status: Status.DuplicateInvocation,
    });
    expect(Status.DuplicateInvocation).toBe(0x0210);
    release.resolve();
    expect(await raw.next()).toMatchObject({
      messageIdBeingRespondedTo: 5,
      status: Status.Success,
    });
    raw.send(context, echoRq(6));
    expect(await raw.next()).toMatchObject({
      messageIdBeingRespondedTo: 6,
      status: Status.Success,
    });
    expect(calls).toBe(2);
    expect(association.isEstablished).toBe(true);
  });

  it('drops a data set a C-CANCEL-RQ announces, however large, and goes on', async () => {
    const { port } = await startAcceptor(16_384, async () => ({ status: Status.Success }));
    const association = await openAssociation(port);
    const raw = rawDimse(association);
    const context = contextFor(association, SopClass.Verification);
    raw.send(context, {
      commandField: CommandField.CCancelRq,
      messageIdBeingRespondedTo: 1,
      hasDataset: true,
    });
    // More than the 1 MiB a data set stream buffers before it pauses the association.
    raw.sendDataset(context, randomBytes(3 * 1024 * 1024));
    raw.send(context, {
      commandField: CommandField.CEchoRq,
      messageId: 2,
      affectedSopClassUid: SopClass.Verification,
      hasDataset: false,
    });
    expect(await raw.next(10_000)).toMatchObject({
      messageIdBeingRespondedTo: 2,
      status: Status.Success,
    });
    expect(association.isEstablished).toBe(true);
  });

  it('reaches the operation a C-CANCEL names through its AbortSignal; the final status is Cancel', async () => {
    let wasAborted: boolean | undefined;
    const handler: RequestHandler = (request, signal) => {
      if (request.command.commandField === CommandField.CEchoRq)
        return Promise.resolve({ status: Status.Success });
      return (async function* (): AsyncGenerator<ResponseSpec> {
        yield { status: Status.Pending, dataset: Buffer.from('match 1 ') };
        wasAborted = await untilAborted(signal, 5_000);
        // Without a cancel the operation ends in success, which the test rejects.
        yield { status: wasAborted ? Status.Cancel : Status.Success };
      })();
    };
    const { port } = await startAcceptor(16_384, handler);
    const scu = await openScu(port);
    const context = scu.contextFor(MADE_UP_SOP_CLASS);
    const statuses: number[] = [];
    const collect = async () => {
      for await (const response of scu.channel.request(
        context,
        {
          commandField: CommandField.CFindRq,
          affectedSopClassUid: MADE_UP_SOP_CLASS,
          priority: 0,
          hasDataset: true,
        },
        Buffer.from('identifier'),
      )) {
        statuses.push(response.command.status ?? -1);
        if (statuses.length === 1) {
          expect(response.dataset?.toString()).toBe('match 1 ');
          await scu.channel.cancel(context, response.command.messageIdBeingRespondedTo!);
        }
      }
    };
    await within(collect(), 10_000, 'final response');
    expect(statuses).toEqual([Status.Pending, Status.Cancel]);
    expect(Status.Cancel).toBe(0xfe00);
    expect(wasAborted).toBe(true);
    expect(await echoStatus(scu)).toBe(Status.Success);
  });

  it('hands on pending responses with their data sets in order, before the final one', async () => {
    const matches = Array.from({ length: 100 }, (_, i) => Buffer.from(`match ${i} `));
    const { port } = await startAcceptor(16_384, () =>
      (async function* (): AsyncGenerator<ResponseSpec> {
        for (const match of matches) yield { status: Status.Pending, dataset: match };
        yield { status: Status.Success };
      })(),
    );
    const scu = await openScu(port);
    const responses = await responsesOf(
      scu.channel.request(
        scu.contextFor(MADE_UP_SOP_CLASS),
        {
          commandField: CommandField.CFindRq,
          affectedSopClassUid: MADE_UP_SOP_CLASS,
          priority: 0,
          hasDataset: true,
        },
        Buffer.from('identifier'),
      ),
    );
    expect(responses.map((r) => r.command.status)).toEqual([
      ...matches.map(() => Status.Pending),
      Status.Success,
    ]);
    expect(responses.map((r) => r.dataset?.toString())).toEqual([
      ...matches.map((match) => match.toString()),
      undefined,
    ]);
  });

  it('starts the DIMSE timeout once the request has been sent, not while its data set is', async () => {
    const { port } = await startAcceptor(16_384, hashingHandler);
    const scu = await openScu(port, { dimseTimeoutMs: 200 });
    const dataset = randomBytes(10_000);
    // The data set source stalls for three DIMSE timeouts (or until the association ends).
    async function* stalling(): AsyncGenerator<Buffer> {
      yield dataset.subarray(0, 5_000);
      await Promise.race([
        new Promise((resolve) => setTimeout(resolve, 600)),
        scu.association.closed,
      ]);
      yield dataset.subarray(5_000);
    }
    const responses = await responsesOf(
      scu.channel.request(
        scu.contextFor(MADE_UP_SOP_CLASS),
        {
          commandField: CommandField.CStoreRq,
          affectedSopClassUid: MADE_UP_SOP_CLASS,
          affectedSopInstanceUid: '2.25.5',
          priority: 0,
          hasDataset: true,
        },
        stalling(),
      ),
    );
    expect(responses.map((r) => r.command.status)).toEqual([Status.Success]);
    expect(responses[0]!.command.errorComment).toBe(sha256(dataset));
    expect(scu.association.isEstablished).toBe(true);
  });

  it('skips message IDs still in use when the counter wraps around', async () => {
    const started = deferred();
    const release = deferred();
    let calls = 0;
    const { port } = await startAcceptor(16_384, async () => {
      calls += 1;
      if (calls === 1) {
        started.resolve();
        await within(release.promise, 10_000, 'release of the first operation');
      }
      return { status: Status.Success };
    });
    const scu = await openScu(port);
    const first = responsesOf(
      scu.channel.request(scu.contextFor(SopClass.Verification), {
        commandField: CommandField.CEchoRq,
        affectedSopClassUid: SopClass.Verification,
        hasDataset: false,
      }),
    ).then(
      (responses) => responses.map((r) => r.command.messageIdBeingRespondedTo),
      (error: unknown) => error,
    );
    await within(started.promise, 5_000, 'start of the first operation');
    // The first request holds message ID 1; take 2 to 65535, so that the counter wraps.
    let taken = 0;
    for (let id = 2; id <= 0xffff; id += 1) taken = scu.channel.nextMessageId();
    expect(taken).toBe(0xffff);
    expect(scu.channel.nextMessageId()).toBe(2);
    release.resolve();
    expect(await first).toEqual([1]);
    expect(scu.channel.nextMessageId()).toBe(3);
  });

  it('aborts as service provider, invalid PDU parameter value, on a PDV for a context never accepted', async () => {
    const { port, associations } = await startAcceptor(16_384, hashingHandler);
    const association = await openAssociation(port);
    association.sendPData(
      99,
      true,
      true,
      encodeCommand({
        commandField: CommandField.CEchoRq,
        messageId: 1,
        affectedSopClassUid: SopClass.Verification,
        hasDataset: false,
      }),
    );
    const summary = await within(association.closed, 5_000, 'abort');
    expect(summary.outcome).toBe('aborted-by-peer');
    expect(summary.abort).toEqual({
      source: AbortSource.ServiceProvider,
      reason: AbortReason.InvalidPduParameterValue,
    });
    const scpSummary = await within(associations[0]!.closed, 5_000, 'close of the SCP association');
    expect(scpSummary.error).toBeInstanceOf(DicomServerError);
    expect((scpSummary.error as DicomServerError).code).toBe('ERR_DIMSE_UNEXPECTED');
  });

  it('rejects a request with ERR_TIMEOUT and aborts the association when no response comes', async () => {
    let signalSeen: AbortSignal | undefined;
    const { port, associations } = await startAcceptor(16_384, (_request, signal) => {
      signalSeen = signal;
      // Never answers; ends only when the association does.
      return new Promise<ResponseSpec>((resolve) =>
        signal.addEventListener('abort', () => resolve({ status: Status.ProcessingFailure })),
      );
    });
    const scu = await openScu(port, { dimseTimeoutMs: 200 });
    const error = await responsesOf(
      scu.channel.request(scu.contextFor(SopClass.Verification), {
        commandField: CommandField.CEchoRq,
        affectedSopClassUid: SopClass.Verification,
        hasDataset: false,
      }),
      10_000,
    ).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DicomServerError);
    expect((error as DicomServerError).code).toBe('ERR_TIMEOUT');
    expect((error as DicomServerError).details).toMatchObject({ timer: 'dimse' });
    const summary = await within(scu.association.closed, 5_000, 'close of the SCU association');
    expect(summary.outcome).toBe('aborted-locally');
    const scpSummary = await within(associations[0]!.closed, 5_000, 'close of the SCP association');
    expect(scpSummary.outcome).toBe('aborted-by-peer');
    expect(signalSeen?.aborted).toBe(true);
  });
});
