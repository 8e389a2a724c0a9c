/**
 * The C-GET handler behind an acceptor of ours, driven through a real association by our own
 * requestor: role selection for the storage SOP classes it takes as SCP, a channel that keeps
 * each C-STORE that arrives. Checks the data sets byte for byte (as stored, or as DCMTK's
 * `dcmconv` converts them), the failed sub-operations (no context with the SCP role, a syntax
 * that cannot be converted) counted in a final response without identifier, C-CANCEL
 * part-way, and that the association goes on.
 *
 * Layer: services (integration test, in-process). Everything listens on 127.0.0.1, port 0.
 */

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { within } from '../../test/helpers/wait.js';
import { readFileMeta } from '../dicom/part10.js';
import { writeIdentifier } from '../dicom/query/identifier.js';
import type { RetrievableInstance } from '../dicom/query/model.js';
import { KNOWN_TRANSFER_SYNTAXES, TransferSyntax } from '../dicom/transfer-syntax.js';
import { SopClass } from '../dicom/uid.js';
import { AssociationAcceptor } from '../network/association/acceptor.js';
import { requestAssociation } from '../network/association/requestor.js';
import { DimseChannel, type IncomingResponse } from '../network/dimse/channel.js';
import { CommandField, type CommandSet } from '../network/dimse/command.js';
import { Status } from '../network/dimse/status.js';
import type { RoleSelection } from '../network/pdu/types.js';
import { createGetHandler } from './get.js';
import type { QuerySource } from './ports.js';
import { inspectFile } from './scu/store.js';

const TESTDATA = resolve(import.meta.dirname, '../../../shared/testdata/dicom');
const STUDY_ROOT_GET = SopClass.StudyRootQueryRetrieveInformationModelGet;
const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
const RT_PLAN = '1.2.840.10008.5.1.4.1.1.481.5';
const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';
const COMPREHENSIVE_SR = '1.2.840.10008.5.1.4.1.1.88.33';
const EXPLICIT = { isExplicitVr: true, isLittleEndian: true };
const run = promisify(execFile);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function instancesOf(names: readonly string[]): Promise<RetrievableInstance[]> {
  const out: RetrievableInstance[] = [];
  for (const name of names) {
    const file = await inspectFile(join(TESTDATA, name));
    out.push({
      sopClassUid: file.sopClassUid,
      sopInstanceUid: file.sopInstanceUid,
      transferSyntaxUid: file.transferSyntaxUid,
      filePath: file.path,
      fileSize: file.size + file.datasetOffset,
    });
  }
  return out;
}

function fakeSource(instances: readonly RetrievableInstance[]): QuerySource {
  return {
    find: () => {
      throw new Error('C-GET does not find');
    },
    count: () => {
      throw new Error('C-GET does not count');
    },
    retrievable: async () => [...instances],
  };
}

/** Our SCP: an acceptor whose channels serve C-GET with the handler under test. */
async function startScp(source: QuerySource): Promise<number> {
  const handler = createGetHandler({ source });
  const acceptor = new AssociationAcceptor({
    aeTitle: 'GET_SCP',
    served: {
      transferSyntaxesFor: (abstractSyntax) =>
        abstractSyntax === STUDY_ROOT_GET
          ? [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian]
          : KNOWN_TRANSFER_SYNTAXES,
      canActAsScuFor: () => true,
      prefersRequestorOrder: () => true,
    },
    maxPduLength: 16 * 1024,
    maxAssociations: 4,
  });
  acceptor.on('association', (association) => {
    new DimseChannel(association, {
      dimseTimeoutMs: 10_000,
      onRequest: (request, signal, channel) =>
        request.command.commandField === CommandField.CGetRq
          ? handler(request, signal, {
              callingAeTitle: association.callingAeTitle,
              isRelational: () => false,
              channel,
            })
          : Promise.resolve({ status: Status.UnrecognizedOperation }),
    });
  });
  const { port } = await acceptor.listen('127.0.0.1', 0);
  cleanups.push(async () => {
    await acceptor.stopListening();
    await acceptor.abortAll();
  });
  return port;
}

interface Stored {
  readonly command: CommandSet;
  readonly transferSyntax: string;
  readonly dataset: Buffer;
}

/** Storage contexts to propose: SOP class, transfer syntaxes, and whether we take the SCP role. */
type StorageProposal = readonly [string, readonly string[], boolean];

/** Our requestor: a C-GET context and storage contexts, keeping what it is sent. */
async function openScu(port: number, storage: readonly StorageProposal[]) {
  const roleSelections: RoleSelection[] = storage
    .filter(([, , isScp]) => isScp)
    .map(([sopClassUid]) => ({ sopClassUid, scuRole: false, scpRole: true }));
  const association = await within(
    requestAssociation({
      host: '127.0.0.1',
      port,
      callingAeTitle: 'GETSCU',
      calledAeTitle: 'GET_SCP',
      contexts: [
        {
          abstractSyntax: STUDY_ROOT_GET,
          transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian],
        },
        ...storage.map(([abstractSyntax, transferSyntaxes]) => ({
          abstractSyntax,
          transferSyntaxes,
        })),
      ],
      roleSelections,
    }),
    5_000,
    'association',
  );
  cleanups.push(async () => {
    if (association.isEstablished) association.abort();
  });
  const stored: Stored[] = [];
  const channel = new DimseChannel(association, {
    dimseTimeoutMs: 10_000,
    onRequest: async (request) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request.dataset ?? []) chunks.push(chunk as Buffer);
      stored.push({
        command: request.command,
        transferSyntax: request.context.transferSyntax,
        dataset: Buffer.concat(chunks),
      });
      return { status: Status.Success };
    },
  });
  const getContext = [...association.acceptedContexts.values()].find(
    (context) => context.abstractSyntax === STUDY_ROOT_GET,
  )!.id;
  return { association, channel, stored, getContext };
}

const IDENTIFIER = writeIdentifier(
  [
    { tag: 0x00080052, vr: 'CS', value: Buffer.from('STUDY ') },
    { tag: 0x0020000d, vr: 'UI', value: Buffer.from('1.2.3.4\0') },
  ],
  EXPLICIT,
);

/** Sends a C-GET-RQ; `onPending` sees each pending response (and may cancel). */
async function cGet(
  scu: Awaited<ReturnType<typeof openScu>>,
  onPending?: (response: IncomingResponse) => Promise<void>,
): Promise<{ pending: IncomingResponse[]; final: IncomingResponse }> {
  const responses: IncomingResponse[] = [];
  const collect = async () => {
    for await (const response of scu.channel.request(
      scu.getContext,
      {
        commandField: CommandField.CGetRq,
        affectedSopClassUid: STUDY_ROOT_GET,
        priority: 0,
        hasDataset: true,
      },
      IDENTIFIER,
    )) {
      responses.push(response);
      if (response.command.status === Status.Pending) await onPending?.(response);
    }
  };
  await within(collect(), 30_000, 'C-GET final response');
  return { pending: responses.slice(0, -1), final: responses.at(-1)! };
}

function datasetOf(file: Buffer): Buffer {
  return file.subarray(readFileMeta(file).datasetOffset);
}

describe('C-GET over our own association', () => {
  it('sends each instance back on a context where we took the SCP role, converting where it must', async () => {
    const names = ['CT_small.dcm', 'rtplan.dcm', 'JPEG2000.dcm', 'image_dfl.dcm', 'test-SR.dcm'];
    const instances = await instancesOf(names);
    const port = await startScp(fakeSource(instances));
    const scu = await openScu(port, [
      [CT_IMAGE, [TransferSyntax.ExplicitVRLittleEndian], true],
      // RT Plan is stored implicit: it comes converted to explicit.
      [RT_PLAN, [TransferSyntax.ExplicitVRLittleEndian], true],
      // JPEG 2000 cannot be converted; the deflated one comes inflated.
      [
        SECONDARY_CAPTURE,
        [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian],
        true,
      ],
      // Accepted, but without the SCP role: nothing may be sent on it.
      [COMPREHENSIVE_SR, [TransferSyntax.ExplicitVRLittleEndian], false],
    ]);
    const { pending, final } = await cGet(scu);
    expect(pending.map((r) => r.command.numberOfRemainingSuboperations)).toEqual([4, 3, 2, 1]);
    expect(final.command.status).toBe(Status.Warning);
    expect(final.command).toMatchObject({
      numberOfCompletedSuboperations: 3,
      numberOfFailedSuboperations: 2,
      numberOfWarningSuboperations: 0,
    });
    expect(final.command.numberOfRemainingSuboperations).toBeUndefined();
    // No Failed SOP Instance UID List: DCMTK's getscu would not read it (see get.ts).
    expect(final.dataset).toBeUndefined();
    expect(scu.stored.map((s) => s.command.affectedSopInstanceUid)).toEqual(
      [0, 1, 3].map((i) => instances[i]!.sopInstanceUid),
    );
    for (const s of scu.stored) {
      expect(s.transferSyntax).toBe(TransferSyntax.ExplicitVRLittleEndian);
      expect(s.command.moveOriginatorAeTitle).toBeUndefined();
    }
    const ct = datasetOf(await readFile(join(TESTDATA, 'CT_small.dcm')));
    expect(scu.stored[0]!.dataset.equals(ct)).toBe(true);
    const dir = await mkdtemp(join(tmpdir(), 'get-dcmconv-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await run('dcmconv', [
      '+te',
      '-e',
      '-g',
      join(TESTDATA, 'rtplan.dcm'),
      join(dir, 'rtplan.dcm'),
    ]);
    const rtplan = datasetOf(await readFile(join(dir, 'rtplan.dcm')));
    expect(scu.stored[1]!.dataset.equals(rtplan)).toBe(true);
    const deflated = datasetOf(await readFile(join(TESTDATA, 'image_dfl.dcm')));
    expect(scu.stored[2]!.dataset.equals(inflateRawSync(deflated))).toBe(true);
    // The association goes on: a second C-GET is served on it.
    expect(scu.association.isEstablished).toBe(true);
    const again = await cGet(scu);
    expect(again.final.command.numberOfCompletedSuboperations).toBe(3);
  });

  it('answers success with the data sets byte for byte when every instance has its context', async () => {
    const instances = await instancesOf(['CT_small.dcm', 'rtplan.dcm']);
    const port = await startScp(fakeSource(instances));
    const scu = await openScu(port, [
      [CT_IMAGE, [TransferSyntax.ExplicitVRLittleEndian], true],
      [RT_PLAN, [TransferSyntax.ImplicitVRLittleEndian], true],
    ]);
    const { final } = await cGet(scu);
    expect(final.command.status).toBe(Status.Success);
    expect(final.dataset).toBeUndefined();
    for (const [index, name] of ['CT_small.dcm', 'rtplan.dcm'].entries()) {
      const original = datasetOf(await readFile(join(TESTDATA, name)));
      expect(scu.stored[index]!.dataset.equals(original), name).toBe(true);
    }
  });

  it('fails every sub-operation with 0xA702 when no context has the SCP role', async () => {
    const instances = await instancesOf(['CT_small.dcm', 'rtplan.dcm']);
    const port = await startScp(fakeSource(instances));
    const scu = await openScu(port, [[CT_IMAGE, [TransferSyntax.ExplicitVRLittleEndian], false]]);
    const { final } = await cGet(scu);
    expect(final.command.status).toBe(Status.OutOfResourcesSuboperations);
    expect(final.command).toMatchObject({ numberOfFailedSuboperations: 2 });
    expect(final.command.errorComment).toMatch(/^all sub-operations failed: no accepted context/);
    expect(final.dataset).toBeUndefined();
    expect(scu.stored).toEqual([]);
  });

  it('answers success with zero counts when nothing matches', async () => {
    const port = await startScp(fakeSource([]));
    const scu = await openScu(port, [[CT_IMAGE, [TransferSyntax.ExplicitVRLittleEndian], true]]);
    const { pending, final } = await cGet(scu);
    expect(pending).toEqual([]);
    expect(final.command).toMatchObject({
      status: Status.Success,
      numberOfCompletedSuboperations: 0,
      numberOfFailedSuboperations: 0,
      numberOfWarningSuboperations: 0,
    });
  });

  it('stops after the current sub-operation on C-CANCEL and answers 0xFE00', async () => {
    const names = ['CT_small.dcm', 'rtplan.dcm', 'rtdose.dcm', 'rtstruct.dcm'];
    const instances = await instancesOf(names);
    const port = await startScp(fakeSource(instances));
    const scu = await openScu(
      port,
      instances.map((i): StorageProposal => [i.sopClassUid, [i.transferSyntaxUid], true]),
    );
    const { pending, final } = await cGet(scu, (response) =>
      scu.channel.cancel(scu.getContext, response.command.messageIdBeingRespondedTo!),
    );
    expect(final.command.status).toBe(Status.Cancel);
    // The cancel reaches the SCP while a later sub-operation may already be under way.
    const started = scu.stored.length;
    expect(started).toBeGreaterThanOrEqual(1);
    expect(started).toBeLessThan(names.length);
    expect(pending.length).toBe(started);
    expect(final.command).toMatchObject({
      numberOfRemainingSuboperations: names.length - started,
      numberOfCompletedSuboperations: started,
      numberOfFailedSuboperations: 0,
    });
    expect(final.dataset).toBeUndefined();
    expect(scu.association.isEstablished).toBe(true);
  });
});
