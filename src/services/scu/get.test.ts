/**
 * C-GET SCU against an in-process SCP that sends C-STORE sub-operations on the same
 * association (PS3.4 §C.4.3): each instance lands as a Part 10 file whose data set is the bytes
 * sent, SOP classes not proposed fail on the peer's side, a bad UID is refused with 0xC000, and
 * an association that breaks mid-instance leaves no file behind.
 *
 * Layer: services (unit test; the peer is our own network layer on 127.0.0.1, port 0).
 */

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileMeta } from '../../dicom/part10.js';
import { TransferSyntax } from '../../dicom/transfer-syntax.js';
import { SopClass } from '../../dicom/uid.js';
import { hasCode } from '../../errors.js';
import { AssociationAcceptor } from '../../network/association/acceptor.js';
import {
  DimseChannel as Channel,
  type DimseChannel,
  type RequestHandler,
  type ResponseSpec,
} from '../../network/dimse/channel.js';
import { CommandField } from '../../network/dimse/command.js';
import { Status } from '../../network/dimse/status.js';
import type { AAssociateRq } from '../../network/pdu/types.js';
import type { ScuTarget } from './find.js';
import { get } from './get.js';

const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
const RT_PLAN_STORAGE = '1.2.840.10008.5.1.4.1.1.481.5';
const SCP_AE = 'GET_SCP';
const IDENTIFIER = {
  level: 'STUDY',
  keys: [{ tag: 0x0020000d, vr: 'UI', value: '1.2.3' }],
} as const;

/** An instance the fake SCP sends: its data set as chunks (an Error among them breaks the send). */
interface Outgoing {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly chunks: readonly (Buffer | Error)[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function* chunksOf(chunks: readonly (Buffer | Error)[]): AsyncGenerator<Buffer> {
  for (const chunk of chunks) {
    if (chunk instanceof Error) throw chunk;
    yield chunk;
  }
}

/** Sends one C-STORE sub-operation; its status, or 0xA702-like failure when no context fits. */
async function storeOn(channel: DimseChannel, instance: Outgoing): Promise<number> {
  const context = channel.findContext(instance.sopClassUid);
  if (context === undefined || !context.requestorIsScp) return Status.SopClassNotSupported;
  let status: number = Status.ProcessingFailure;
  for await (const response of channel.request(
    context.id,
    {
      commandField: CommandField.CStoreRq,
      affectedSopClassUid: instance.sopClassUid,
      affectedSopInstanceUid: instance.sopInstanceUid,
      priority: 0,
      hasDataset: true,
    },
    chunksOf(instance.chunks),
  ))
    status = response.command.status ?? Status.ProcessingFailure;
  return status;
}

/** A C-GET handler that sends `instances` as sub-operations, with a pending response after each. */
function getHandler(instances: readonly Outgoing[]): RequestHandler {
  return async function* (request, _signal, channel): AsyncGenerator<ResponseSpec> {
    for await (const _ of request.dataset ?? []) {
      // the identifier is not looked at
    }
    let completed = 0;
    const failed: string[] = [];
    for (const [index, instance] of instances.entries()) {
      if ((await storeOn(channel, instance)) === Status.Success) completed += 1;
      else failed.push(instance.sopInstanceUid);
      yield {
        status: Status.Pending,
        fields: {
          numberOfRemainingSuboperations: instances.length - index - 1,
          numberOfCompletedSuboperations: completed,
          numberOfFailedSuboperations: failed.length,
          numberOfWarningSuboperations: 0,
        },
      };
    }
    yield {
      status: failed.length === 0 ? Status.Success : Status.Warning,
      fields: {
        numberOfCompletedSuboperations: completed,
        numberOfFailedSuboperations: failed.length,
        numberOfWarningSuboperations: 0,
      },
    };
  };
}

async function startScp(
  onRequest: RequestHandler,
): Promise<{ target: ScuTarget; requests: AAssociateRq[] }> {
  const storage = new Set([CT_IMAGE_STORAGE, RT_PLAN_STORAGE]);
  const acceptor = new AssociationAcceptor({
    aeTitle: SCP_AE,
    served: {
      transferSyntaxesFor: (abstractSyntax) =>
        abstractSyntax === SopClass.StudyRootQueryRetrieveInformationModelGet ||
        storage.has(abstractSyntax)
          ? [TransferSyntax.ExplicitVRLittleEndian]
          : undefined,
      canActAsScuFor: (sopClassUid) => storage.has(sopClassUid),
    },
    maxPduLength: 16_384,
    maxAssociations: 2,
  });
  const requests: AAssociateRq[] = [];
  acceptor.on('association', (association) => {
    association.once('established', () => {
      if (association.request !== undefined) requests.push(association.request);
    });
    new Channel(association, { onRequest, dimseTimeoutMs: 10_000 });
  });
  const { port } = await acceptor.listen('127.0.0.1', 0);
  cleanups.push(async () => {
    await acceptor.stopListening();
    await acceptor.abortAll();
  });
  const timeouts = { artimMs: 5_000, acseMs: 5_000, networkMs: 5_000, dimseMs: 5_000 };
  const target = {
    host: '127.0.0.1',
    port,
    callingAeTitle: 'GET_SCU',
    calledAeTitle: SCP_AE,
    timeouts,
  };
  return { target, requests };
}

async function outputDirectory(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'scu-get-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'out');
}

describe('get', () => {
  it('writes each instance as a Part 10 file holding the data set bytes sent', async () => {
    // 300 KiB: many P-DATA fragments at a 16 KiB maximum PDU.
    const large = Buffer.alloc(300 * 1024, 7);
    const small = Buffer.from('0800180055490800', 'hex');
    const instances: Outgoing[] = [
      {
        sopClassUid: CT_IMAGE_STORAGE,
        sopInstanceUid: '1.2.3.1',
        chunks: [large.subarray(0, 1000), large.subarray(1000)],
      },
      { sopClassUid: CT_IMAGE_STORAGE, sopInstanceUid: '1.2.3.2', chunks: [small] },
    ];
    const { target } = await startScp(getHandler(instances));
    const out = await outputDirectory();
    const progress: number[] = [];
    const result = await get({
      target,
      root: 'study',
      identifier: IDENTIFIER,
      outputDirectory: out,
      onProgress: (counts) => progress.push(counts.remaining ?? -1),
    });
    expect(result.status).toBe(Status.Success);
    expect(result.counts).toEqual({ completed: 2, failed: 0, warning: 0 });
    expect(progress).toEqual([1, 0]);
    expect((await readdir(out)).sort()).toEqual(['1.2.3.1.dcm', '1.2.3.2.dcm']);
    for (const [name, dataset] of [
      ['1.2.3.1.dcm', large],
      ['1.2.3.2.dcm', small],
    ] as const) {
      const file = await readFile(join(out, name));
      const meta = readFileMeta(file);
      expect(meta.mediaStorageSopClassUid).toBe(CT_IMAGE_STORAGE);
      expect(meta.mediaStorageSopInstanceUid).toBe(name.replace(/\.dcm$/, ''));
      expect(meta.transferSyntaxUid).toBe(TransferSyntax.ExplicitVRLittleEndian);
      expect(meta.sourceAeTitle).toBe(SCP_AE);
      expect(file.subarray(meta.datasetOffset).equals(dataset)).toBe(true);
    }
    expect(result.received.map((r) => [r.sopInstanceUid, r.bytes])).toEqual([
      ['1.2.3.1', large.length],
      ['1.2.3.2', small.length],
    ]);
  });

  it('proposes only the SOP classes asked for, each with SCP role selection', async () => {
    const instances: Outgoing[] = [
      { sopClassUid: RT_PLAN_STORAGE, sopInstanceUid: '1.2.3.3', chunks: [Buffer.alloc(4)] },
    ];
    const { target, requests } = await startScp(getHandler(instances));
    const out = await outputDirectory();
    const result = await get({
      target,
      root: 'study',
      identifier: IDENTIFIER,
      outputDirectory: out,
      sopClasses: [CT_IMAGE_STORAGE],
    });
    expect(result.status).toBe(Status.Warning);
    expect(result.counts).toEqual({ completed: 0, failed: 1, warning: 0 });
    expect(await readdir(out)).toEqual([]);
    const proposed = requests[0]!.presentationContexts.map((c) => c.abstractSyntax);
    expect(proposed).toEqual([
      SopClass.StudyRootQueryRetrieveInformationModelGet,
      CT_IMAGE_STORAGE,
    ]);
    expect(requests[0]!.userInformation.roleSelections).toEqual([
      { sopClassUid: CT_IMAGE_STORAGE, scuRole: false, scpRole: true },
    ]);
  });

  it('refuses an instance whose SOP Instance UID cannot name a file with 0xC000', async () => {
    const instances: Outgoing[] = [
      { sopClassUid: CT_IMAGE_STORAGE, sopInstanceUid: '../escape', chunks: [Buffer.alloc(4)] },
    ];
    const { target } = await startScp(getHandler(instances));
    const out = await outputDirectory();
    const result = await get({
      target,
      root: 'study',
      identifier: IDENTIFIER,
      outputDirectory: out,
    });
    expect(result.counts.failed).toBe(1);
    expect(result.received).toEqual([
      expect.objectContaining({ sopInstanceUid: '../escape', error: expect.any(String) }),
    ]);
    expect(await readdir(out)).toEqual([]);
  });

  it('leaves no file when the association breaks part-way through an instance', async () => {
    const instances: Outgoing[] = [
      {
        sopClassUid: CT_IMAGE_STORAGE,
        sopInstanceUid: '1.2.3.4',
        chunks: [Buffer.alloc(64 * 1024, 1), new Error('disk read failed')],
      },
    ];
    const { target } = await startScp(getHandler(instances));
    const out = await outputDirectory();
    const error = await get({
      target,
      root: 'study',
      identifier: IDENTIFIER,
      outputDirectory: out,
    }).catch((e: unknown) => e);
    expect(hasCode(error, 'ERR_CONNECTION_CLOSED')).toBe(true);
    expect(await readdir(out)).toEqual([]);
  });

  it('fails with ERR_INVALID_ARGUMENT for more storage SOP classes than fit one association', async () => {
    const sopClasses = Array.from({ length: 128 }, (_, i) => `1.2.3.${i + 1}`);
    const error = await get({
      target: { host: '127.0.0.1', port: 1, callingAeTitle: 'A', calledAeTitle: 'B' },
      root: 'study',
      identifier: IDENTIFIER,
      outputDirectory: await outputDirectory(),
      sopClasses,
    }).catch((e: unknown) => e);
    expect(hasCode(error, 'ERR_INVALID_ARGUMENT')).toBe(true);
  });
});
