/**
 * The C-MOVE handler run in-process over a fake index holding real test files, sending to a
 * real DCMTK `storescp` in bit-preserving mode: what it writes holds exactly the data set of
 * each file sent, or, when it takes only Implicit VR Little Endian, exactly what DCMTK's own
 * `dcmconv` makes of it. Then an unknown destination (0xA801), a destination down or rejecting
 * us (every sub-operation failed, 0xA702), C-CANCEL part-way (0xFE00), and the C-STORE
 * requests themselves (Move Originator, priority, release) as seen by an acceptor of ours.
 *
 * Layer: services (test against real peers). Everything listens on 127.0.0.1.
 */

import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { type BackgroundTool, startTool } from '../../test/helpers/dcmtk.js';
import { freePort, waitForListener } from '../../test/helpers/net.js';
import { within } from '../../test/helpers/wait.js';
import { readFileMeta } from '../dicom/part10.js';
import { readIdentifier, writeIdentifier } from '../dicom/query/identifier.js';
import type { IndexQuery, RetrievableInstance } from '../dicom/query/model.js';
import { KNOWN_TRANSFER_SYNTAXES, TransferSyntax } from '../dicom/transfer-syntax.js';
import { SopClass } from '../dicom/uid.js';
import { AssociationAcceptor } from '../network/association/acceptor.js';
import { DatasetStream } from '../network/dimse/assembler.js';
import {
  DimseChannel,
  type IncomingRequest,
  type RequestHandler,
  type ResponseSpec,
} from '../network/dimse/channel.js';
import { CommandField, type CommandSet, Priority } from '../network/dimse/command.js';
import { Status } from '../network/dimse/status.js';
import { createMoveHandler, planAssociations } from './move.js';
import type { MoveDestinations, QuerySource } from './ports.js';
import type { RetrieveLogger } from './retrieve.js';
import { inspectFile } from './scu/store.js';

const TESTDATA = resolve(import.meta.dirname, '../../../shared/testdata/dicom');
const STUDY_ROOT_MOVE = SopClass.StudyRootQueryRetrieveInformationModelMove;
const TIMEOUTS = { artimMs: 5_000, acseMs: 5_000, networkMs: 10_000, dimseMs: 10_000 };
const OUR_AE = 'DRAW_SCP';
const DESTINATION_AE = 'STORESCP';
const FAILED_SOP_INSTANCE_UID_LIST = 0x00080058;
const run = promisify(execFile);

/** One of each encoding: explicit, implicit, JPEG 2000, deflated, big endian, RLE, SR. */
const FILES = [
  'CT_small.dcm',
  'rtplan.dcm',
  'JPEG2000.dcm',
  'image_dfl.dcm',
  'ExplVR_BigEnd.dcm',
  'MR_small_RLE.dcm',
  'test-SR.dcm',
];

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

/** An index that returns the given instances for any query, remembering the queries. */
function fakeSource(instances: readonly RetrievableInstance[]): QuerySource & {
  readonly queries: IndexQuery[];
} {
  const queries: IndexQuery[] = [];
  return {
    queries,
    find: () => {
      throw new Error('C-MOVE does not find');
    },
    count: () => {
      throw new Error('C-MOVE does not count');
    },
    retrievable: async (query) => {
      queries.push(query);
      return [...instances];
    },
  };
}

function destinations(port: number, aeTitle = DESTINATION_AE): MoveDestinations {
  return {
    lookup: (title) => (title === aeTitle ? { host: '127.0.0.1', port } : undefined),
  };
}

/** A Study Root C-MOVE-RQ for one study, on an Explicit VR Little Endian context. */
function moveRequest(destination: string): IncomingRequest {
  const identifier = writeIdentifier(
    [
      { tag: 0x00080052, vr: 'CS', value: Buffer.from('STUDY ') },
      { tag: 0x0020000d, vr: 'UI', value: Buffer.from('1.2.3.4\0') },
    ],
    { isExplicitVr: true, isLittleEndian: true },
  );
  const dataset = new DatasetStream(1024 * 1024, () => undefined);
  dataset.pushFragment(identifier);
  dataset.complete();
  return {
    context: {
      id: 1,
      abstractSyntax: STUDY_ROOT_MOVE,
      transferSyntax: TransferSyntax.ExplicitVRLittleEndian,
      requestorIsScu: true,
      requestorIsScp: false,
    },
    command: {
      commandField: CommandField.CMoveRq,
      messageId: 7,
      affectedSopClassUid: STUDY_ROOT_MOVE,
      priority: Priority.High,
      moveDestination: destination,
      hasDataset: true,
    },
    dataset,
  };
}

interface MoveRun {
  readonly source: QuerySource;
  readonly port: number;
  readonly destination?: string;
  /** Called with each response; may abort the C-MOVE (C-CANCEL). */
  readonly onResponse?: (response: ResponseSpec, controller: AbortController) => void;
  readonly logger?: RetrieveLogger;
}

async function move(options: MoveRun) {
  const handler = createMoveHandler({
    source: options.source,
    destinations: destinations(options.port),
    aeTitle: OUR_AE,
    timeouts: TIMEOUTS,
    maxPduLength: 64 * 1024,
    ...(options.logger !== undefined && { logger: options.logger }),
  });
  const controller = new AbortController();
  const responses: ResponseSpec[] = [];
  const association = { callingAeTitle: 'MOVESCU', isRelational: () => false };
  const serve = async () => {
    const request = moveRequest(options.destination ?? DESTINATION_AE);
    for await (const response of handler(request, controller.signal, association)) {
      responses.push(response);
      options.onResponse?.(response, controller);
    }
  };
  await within(serve(), 30_000, 'C-MOVE final response');
  const final = responses.at(-1)!;
  expect(responses.slice(0, -1).every((r) => r.status === Status.Pending)).toBe(true);
  expect((final.fields?.errorComment ?? '').length).toBeLessThanOrEqual(64);
  return { final, pending: responses.slice(0, -1) };
}

/** A logger keeping "level message" lines. */
function recordingLogger(lines: string[]): RetrieveLogger {
  return {
    debug: (_fields, message) => lines.push(`debug ${message}`),
    warn: (_fields, message) => lines.push(`warn ${message}`),
  };
}

function failedList(response: ResponseSpec): string[] {
  const elements = readIdentifier(response.dataset as Buffer, {
    isExplicitVr: true,
    isLittleEndian: true,
  });
  const list = elements.find((e) => e.tag === FAILED_SOP_INSTANCE_UID_LIST);
  const text = list?.value.toString('latin1').replace(/\0$/, '') ?? '';
  return text === '' ? [] : text.split('\\');
}

function datasetOf(file: Buffer): Buffer {
  return file.subarray(readFileMeta(file).datasetOffset);
}

/** storescp's files by SOP Instance UID. */
async function received(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of await readdir(dir)) {
    const file = await readFile(join(dir, name));
    out.set(readFileMeta(file).mediaStorageSopInstanceUid!, file);
  }
  return out;
}

async function startStorescp(
  args: readonly string[],
): Promise<{ dir: string; port: number; tool: BackgroundTool }> {
  const dir = await mkdtemp(join(tmpdir(), 'move-storescp-'));
  const port = await freePort();
  const tool = await startTool('storescp', [...args, '+B', '-od', dir, String(port)], 100);
  await waitForListener(port);
  cleanups.push(async () => {
    await tool.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, port, tool };
}

describe('C-MOVE to DCMTK storescp', () => {
  it('sends every instance in its stored syntax, data sets byte for byte, and answers success', async () => {
    const storescp = await startStorescp(['+xa']);
    const instances = await instancesOf(FILES);
    const source = fakeSource(instances);
    const lines: string[] = [];
    const logger = recordingLogger(lines);
    const { final, pending } = await move({ source, port: storescp.port, logger });
    expect(lines).toEqual(FILES.map(() => 'debug C-MOVE sub-operation'));
    expect(final.status, storescp.tool.output()).toBe(Status.Success);
    expect(final.fields).toEqual({
      numberOfCompletedSuboperations: FILES.length,
      numberOfFailedSuboperations: 0,
      numberOfWarningSuboperations: 0,
    });
    expect(pending.map((r) => r.fields?.numberOfRemainingSuboperations)).toEqual(
      FILES.map((_, i) => FILES.length - 1 - i).slice(0, -1),
    );
    expect(source.queries[0]).toMatchObject({ root: 'study', level: 'STUDY' });
    const files = await received(storescp.dir);
    expect(files.size).toBe(FILES.length);
    for (const name of FILES) {
      const original = await readFile(join(TESTDATA, name));
      const meta = readFileMeta(original);
      const got = files.get(meta.mediaStorageSopInstanceUid!);
      expect(got, name).toBeDefined();
      expect(readFileMeta(got!).transferSyntaxUid, name).toBe(meta.transferSyntaxUid);
      // image_dfl.dcm's deflated bit stream has an odd length: it goes with its pad byte.
      const expected =
        name === 'image_dfl.dcm'
          ? Buffer.concat([datasetOf(original), Buffer.alloc(1)])
          : datasetOf(original);
      expect(datasetOf(got!).equals(expected), `${name} data set differs`).toBe(true);
    }
  });

  it('converts to Implicit VR Little Endian for a destination taking only that, and fails what it cannot convert', async () => {
    const storescp = await startStorescp(['+xi']);
    const names = ['CT_small.dcm', 'rtplan.dcm', 'JPEG2000.dcm', 'image_dfl.dcm'];
    const instances = await instancesOf(names);
    const { final } = await move({ source: fakeSource(instances), port: storescp.port });
    expect(final.status, storescp.tool.output()).toBe(Status.Warning);
    expect(final.fields).toMatchObject({
      numberOfCompletedSuboperations: 3,
      numberOfFailedSuboperations: 1,
      numberOfWarningSuboperations: 0,
    });
    expect(failedList(final)).toEqual([instances[2]!.sopInstanceUid]);
    const files = await received(storescp.dir);
    expect(files.size).toBe(3);
    const dir = await mkdtemp(join(tmpdir(), 'move-dcmconv-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    for (const name of ['CT_small.dcm', 'rtplan.dcm', 'image_dfl.dcm']) {
      const path = join(TESTDATA, name);
      const meta = readFileMeta(await readFile(path));
      const got = files.get(meta.mediaStorageSopInstanceUid!)!;
      expect(readFileMeta(got).transferSyntaxUid).toBe(TransferSyntax.ImplicitVRLittleEndian);
      // What DCMTK makes of it: Implicit VR LE, undefined lengths, no group lengths. The
      // implicit file is sent as it is stored.
      let expected = datasetOf(await readFile(path));
      if (meta.transferSyntaxUid !== TransferSyntax.ImplicitVRLittleEndian) {
        const out = join(dir, name);
        await run('dcmconv', ['+ti', '-e', '-g', path, out]);
        expected = datasetOf(await readFile(out));
      }
      expect(datasetOf(got).equals(expected), `${name} data set differs`).toBe(true);
    }
  });

  it('stops after the current sub-operation on C-CANCEL and answers 0xFE00', async () => {
    const storescp = await startStorescp(['+xa']);
    const instances = await instancesOf(FILES);
    const { final, pending } = await move({
      source: fakeSource(instances),
      port: storescp.port,
      onResponse: (_response, controller) => controller.abort(),
    });
    expect(pending).toHaveLength(1);
    expect(final.status).toBe(Status.Cancel);
    expect(final.fields).toEqual({
      numberOfRemainingSuboperations: FILES.length - 1,
      numberOfCompletedSuboperations: 1,
      numberOfFailedSuboperations: 0,
      numberOfWarningSuboperations: 0,
    });
    expect(failedList(final)).toEqual([]);
    expect([...(await received(storescp.dir)).keys()]).toEqual([instances[0]!.sopInstanceUid]);
  });
});

describe('C-MOVE refusals and destination failures', () => {
  it('answers 0xA801 for an unknown destination without asking the index', async () => {
    const source = fakeSource(await instancesOf(['CT_small.dcm']));
    const lines: string[] = [];
    const logger = recordingLogger(lines);
    const { final, pending } = await move({ source, port: 1, destination: 'NOBODY', logger });
    expect(lines).toEqual(['warn C-MOVE to an unknown destination']);
    expect(pending).toEqual([]);
    expect(final.status).toBe(Status.MoveDestinationUnknown);
    expect(final.fields?.errorComment).toMatch(/ is not a move destination here$/);
    expect(failedList(final)).toEqual([]);
    expect(source.queries).toEqual([]);
  });

  it('fails every sub-operation with 0xA702 when the destination is down', async () => {
    const instances = await instancesOf(['CT_small.dcm', 'rtplan.dcm']);
    const { final } = await move({ source: fakeSource(instances), port: await freePort() });
    expect(final.status).toBe(Status.OutOfResourcesSuboperations);
    expect(final.fields).toMatchObject({
      numberOfCompletedSuboperations: 0,
      numberOfFailedSuboperations: 2,
      numberOfWarningSuboperations: 0,
      errorComment: 'all sub-operations failed: destination unreachable',
    });
    expect(failedList(final)).toEqual(instances.map((i) => i.sopInstanceUid));
  });

  it('fails every sub-operation with 0xA702 when the destination rejects the association', async () => {
    const acceptor = await startAcceptor('SOMEONE_ELSE', () =>
      Promise.resolve({ status: Status.Success }),
    );
    const instances = await instancesOf(['CT_small.dcm', 'rtplan.dcm']);
    const { final } = await move({ source: fakeSource(instances), port: acceptor.port });
    expect(final.status).toBe(Status.OutOfResourcesSuboperations);
    expect(final.fields?.errorComment).toMatch(/^all sub-operations failed: destination rejected/);
    expect(failedList(final)).toEqual(instances.map((i) => i.sopInstanceUid));
  });

  it('counts a file gone from disk and a C-STORE failure status as failed sub-operations', async () => {
    let stores = 0;
    const acceptor = await startAcceptor(DESTINATION_AE, async (request) => {
      for await (const _ of request.dataset ?? []) {
        // drained
      }
      stores += 1;
      return { status: stores === 1 ? Status.OutOfResources : Status.Success };
    });
    const [ct, rtplan] = await instancesOf(['CT_small.dcm', 'rtplan.dcm']);
    const gone = { ...rtplan!, sopInstanceUid: '1.2.3.999', filePath: '/nowhere/gone.dcm' };
    const { final } = await move({ source: fakeSource([ct!, gone, rtplan!]), port: acceptor.port });
    expect(final.status).toBe(Status.Warning);
    expect(final.fields).toMatchObject({
      numberOfCompletedSuboperations: 1,
      numberOfFailedSuboperations: 2,
    });
    expect(failedList(final)).toEqual([ct!.sopInstanceUid, '1.2.3.999']);
  });
});

/** An acceptor of ours that serves storage with `onRequest`, recording each command. */
async function startAcceptor(aeTitle: string, onRequest: RequestHandler) {
  const commands: CommandSet[] = [];
  const acceptor = new AssociationAcceptor({
    aeTitle,
    served: {
      transferSyntaxesFor: (abstractSyntax) =>
        abstractSyntax.startsWith('1.2.840.10008.5.1.4.1.1.') ? KNOWN_TRANSFER_SYNTAXES : undefined,
      canActAsScuFor: () => false,
      prefersRequestorOrder: () => true,
    },
    maxPduLength: 16 * 1024,
    maxAssociations: 4,
  });
  const outcomes: string[] = [];
  acceptor.on('association', (association) => {
    association.once('closed', (summary) => outcomes.push(summary.outcome));
    new DimseChannel(association, {
      dimseTimeoutMs: 10_000,
      onRequest: (request, signal, channel) => {
        commands.push(request.command);
        return onRequest(request, signal, channel);
      },
    });
  });
  const { port } = await acceptor.listen('127.0.0.1', 0);
  cleanups.push(async () => {
    await acceptor.stopListening();
    await acceptor.abortAll();
  });
  return { port, commands, outcomes };
}

describe('C-MOVE sub-operations as the destination sees them', () => {
  it('carry the Move Originator AE Title and Message ID and the C-MOVE priority, then release', async () => {
    const acceptor = await startAcceptor(DESTINATION_AE, async (request) => {
      for await (const _ of request.dataset ?? []) {
        // drained
      }
      return { status: Status.Success };
    });
    const instances = await instancesOf(['CT_small.dcm', 'JPEG2000.dcm']);
    const { final } = await move({ source: fakeSource(instances), port: acceptor.port });
    expect(final.status).toBe(Status.Success);
    expect(acceptor.commands).toEqual(
      instances.map((instance) =>
        expect.objectContaining({
          commandField: CommandField.CStoreRq,
          affectedSopClassUid: instance.sopClassUid,
          affectedSopInstanceUid: instance.sopInstanceUid,
          priority: Priority.High,
          moveOriginatorAeTitle: 'MOVESCU',
          moveOriginatorMessageId: 7,
        }),
      ),
    );
    await within(
      (async () => {
        while (acceptor.outcomes.length === 0) await new Promise((r) => setTimeout(r, 10));
      })(),
      5_000,
      'sub-association closed',
    );
    expect(acceptor.outcomes).toEqual(['released']);
  });
});

describe('planAssociations', () => {
  it('proposes stored syntaxes and the convertible fallbacks, at most 128 contexts an association', () => {
    const instances = Array.from(
      { length: 100 },
      (_, n): RetrievableInstance => ({
        sopClassUid: `1.2.840.10008.5.1.4.1.1.${1000 + n}`,
        sopInstanceUid: `1.2.3.${n}`,
        transferSyntaxUid:
          n % 2 === 0 ? TransferSyntax.ExplicitVRLittleEndian : TransferSyntax.JPEG2000,
        filePath: `/x/${n}`,
        fileSize: 10,
      }),
    );
    const batches = planAssociations(instances);
    for (const batch of batches) expect(batch.proposals.length).toBeLessThanOrEqual(128);
    // Explicit instances: Explicit and Implicit (2); JPEG 2000 ones: their own syntax only.
    expect(batches.reduce((n, b) => n + b.proposals.length, 0)).toBe(50 * 2 + 50);
    expect(batches).toHaveLength(2);
    const order = batches.flatMap((b) => [...b.instanceUids]);
    expect(order).toEqual(instances.map((i) => i.sopInstanceUid));
    expect(batches[0]!.proposals.slice(0, 3)).toEqual([
      {
        abstractSyntax: instances[0]!.sopClassUid,
        transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian],
      },
      {
        abstractSyntax: instances[0]!.sopClassUid,
        transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian],
      },
      { abstractSyntax: instances[1]!.sopClassUid, transferSyntaxes: [TransferSyntax.JPEG2000] },
    ]);
  });
});
