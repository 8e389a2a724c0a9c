/**
 * The sub-operation machinery of C-MOVE and C-GET with a fake sender: pending responses and
 * their counts, each final status of PS3.4 §C.4.2.3.1 / §C.4.3.3.1 with its counts and Failed
 * SOP Instance UID List, C-CANCEL between sub-operations, the choice of context per instance,
 * and the reading of the request (refusals, the index failing).
 *
 * Layer: services (unit test).
 */

import { inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  type IdentifierElement,
  readIdentifier,
  writeIdentifier,
} from '../dicom/query/identifier.js';
import type { IndexQuery, RetrievableInstance } from '../dicom/query/model.js';
import { TransferSyntax } from '../dicom/transfer-syntax.js';
import { SopClass } from '../dicom/uid.js';
import type { DatasetEncoding } from '../dicom/writer/dataset-writer.js';
import type { AcceptedContext } from '../network/association/negotiation.js';
import { DatasetStream } from '../network/dimse/assembler.js';
import type { IncomingRequest, ResponseSpec } from '../network/dimse/channel.js';
import { CommandField } from '../network/dimse/command.js';
import { Status } from '../network/dimse/status.js';
import type { QuerySource } from './ports.js';
import {
  chooseContext,
  failedListIdentifier,
  instancesToRetrieve,
  runSubOperations,
  type SubOperationOutcome,
  type SubOperationSender,
} from './retrieve.js';

const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
const MR_IMAGE = '1.2.840.10008.5.1.4.1.1.4';
const FAILED_SOP_INSTANCE_UID_LIST = 0x00080058;
const EXPLICIT: DatasetEncoding = { isExplicitVr: true, isLittleEndian: true };
const IMPLICIT: DatasetEncoding = { isExplicitVr: false, isLittleEndian: true };

function instance(n: number, sopClassUid = CT_IMAGE): RetrievableInstance {
  return {
    sopClassUid,
    sopInstanceUid: `1.2.826.0.1.3680043.2.1125.${n}`,
    transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
    filePath: `/nowhere/${n}.dcm`,
    fileSize: 1000,
  };
}

/** A sender answering each instance from a table: a status, or an error thrown. */
function fakeSender(
  answers: (n: number) => number | Error,
  onStore?: (n: number) => void,
): SubOperationSender & { readonly stored: string[] } {
  const stored: string[] = [];
  return {
    stored,
    store: async (target) => {
      const n = stored.length;
      stored.push(target.sopInstanceUid);
      onStore?.(n);
      const answer = answers(n);
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}

async function collect(
  instances: readonly RetrievableInstance[],
  sender: SubOperationSender,
  signal = new AbortController().signal,
  encoding = EXPLICIT,
) {
  const outcomes: SubOperationOutcome[] = [];
  const responses: ResponseSpec[] = [];
  for await (const response of runSubOperations(instances, sender, {
    signal,
    encoding,
    onSubOperation: (outcome) => outcomes.push(outcome),
  })) {
    responses.push(response);
  }
  return { pending: responses.slice(0, -1), final: responses.at(-1)!, outcomes };
}

async function runWithoutEncoding(
  instances: readonly RetrievableInstance[],
  answers: (n: number) => number | Error,
) {
  const responses: ResponseSpec[] = [];
  for await (const response of runSubOperations(instances, fakeSender(answers), {
    signal: new AbortController().signal,
  })) {
    responses.push(response);
  }
  return { final: responses.at(-1)! };
}

function failedList(response: ResponseSpec, encoding = EXPLICIT): string[] {
  expect(Buffer.isBuffer(response.dataset)).toBe(true);
  const elements = readIdentifier(response.dataset as Buffer, encoding);
  expect(elements.map((e) => e.tag)).toEqual([FAILED_SOP_INSTANCE_UID_LIST]);
  const text = elements[0]!.value.toString('latin1').replace(/\0$/, '');
  return text === '' ? [] : text.split('\\');
}

function context(id: number, abstractSyntax: string, transferSyntax: string): AcceptedContext {
  return { id, abstractSyntax, transferSyntax, requestorIsScu: true, requestorIsScp: true };
}

describe('runSubOperations', () => {
  it('answers a pending response after each sub-operation but the last, then success', async () => {
    const instances = [1, 2, 3].map((n) => instance(n));
    const sender = fakeSender(() => Status.Success);
    const { pending, final, outcomes } = await collect(instances, sender);
    expect(sender.stored).toEqual(instances.map((i) => i.sopInstanceUid));
    expect(pending.map((r) => [r.status, r.fields])).toEqual([
      [
        Status.Pending,
        {
          numberOfRemainingSuboperations: 2,
          numberOfCompletedSuboperations: 1,
          numberOfFailedSuboperations: 0,
          numberOfWarningSuboperations: 0,
        },
      ],
      [
        Status.Pending,
        {
          numberOfRemainingSuboperations: 1,
          numberOfCompletedSuboperations: 2,
          numberOfFailedSuboperations: 0,
          numberOfWarningSuboperations: 0,
        },
      ],
    ]);
    for (const response of pending) expect(response.dataset).toBeUndefined();
    // Success: counts without Remaining, and no identifier (PS3.4 §C.4.2.1.4-8).
    expect(final.status).toBe(Status.Success);
    expect(final.fields).toEqual({
      numberOfCompletedSuboperations: 3,
      numberOfFailedSuboperations: 0,
      numberOfWarningSuboperations: 0,
    });
    expect(final.dataset).toBeUndefined();
    expect(outcomes.map((o) => o.result)).toEqual(['completed', 'completed', 'completed']);
  });

  it('answers success with zero counts when nothing matched', async () => {
    const { pending, final } = await collect(
      [],
      fakeSender(() => Status.Success),
    );
    expect(pending).toEqual([]);
    expect(final.status).toBe(Status.Success);
    expect(final.fields).toMatchObject({
      numberOfCompletedSuboperations: 0,
      numberOfFailedSuboperations: 0,
      numberOfWarningSuboperations: 0,
    });
  });

  it('counts failures and warnings and lists the failed instances with 0xB000', async () => {
    const instances = [1, 2, 3, 4, 5].map((n) => instance(n));
    const answers = [Status.Success, Status.OutOfResources, 0xb007, new Error('file gone'), 0];
    const { final, outcomes } = await collect(
      instances,
      fakeSender((n) => answers[n]!),
    );
    expect(final.status).toBe(Status.Warning);
    expect(final.fields).toEqual({
      numberOfCompletedSuboperations: 2,
      numberOfFailedSuboperations: 2,
      numberOfWarningSuboperations: 1,
    });
    expect(failedList(final)).toEqual([instances[1]!.sopInstanceUid, instances[3]!.sopInstanceUid]);
    expect(outcomes[3]).toMatchObject({ result: 'failed', error: { message: 'file gone' } });
    expect(outcomes[1]).toMatchObject({ result: 'failed', status: Status.OutOfResources });
  });

  it('fails an instance marked unavailable without trying it, and goes on with the others', async () => {
    const outside = { ...instance(2), unavailable: 'file path outside the storage root' };
    const instances = [instance(1), outside, instance(3)];
    const sender = fakeSender(() => Status.Success);
    const { pending, final, outcomes } = await collect(instances, sender);
    expect(sender.stored).toEqual([instances[0]!.sopInstanceUid, instances[2]!.sopInstanceUid]);
    expect(pending.map((r) => r.fields?.numberOfFailedSuboperations)).toEqual([0, 1]);
    expect(final.status).toBe(Status.Warning);
    expect(final.fields).toEqual({
      numberOfCompletedSuboperations: 2,
      numberOfFailedSuboperations: 1,
      numberOfWarningSuboperations: 0,
    });
    expect(failedList(final)).toEqual([outside.sopInstanceUid]);
    expect(outcomes[1]).toMatchObject({
      result: 'failed',
      error: { message: 'file path outside the storage root' },
    });
  });

  it('answers 0xB000 with an empty failed list when every sub-operation had a warning', async () => {
    const { final } = await collect(
      [instance(1), instance(2)],
      fakeSender(() => 0xb000),
    );
    expect(final.status).toBe(Status.Warning);
    expect(final.fields).toMatchObject({ numberOfWarningSuboperations: 2 });
    expect(failedList(final)).toEqual([]);
  });

  it('answers 0xA702 naming the first failure when every sub-operation failed', async () => {
    const instances = [instance(1), instance(2)];
    const sender = fakeSender(() => new Error('destination unreachable'));
    const { pending, final } = await collect(instances, sender, undefined, IMPLICIT);
    expect(pending).toHaveLength(1);
    expect(pending[0]!.fields).toMatchObject({ numberOfFailedSuboperations: 1 });
    expect(final.status).toBe(Status.OutOfResourcesSuboperations);
    expect(final.fields).toMatchObject({
      numberOfCompletedSuboperations: 0,
      numberOfFailedSuboperations: 2,
      numberOfWarningSuboperations: 0,
      errorComment: 'all sub-operations failed: destination unreachable',
    });
    expect(failedList(final, IMPLICIT)).toEqual(instances.map((i) => i.sopInstanceUid));
    const refused = await collect(
      [instance(1)],
      fakeSender(() => Status.OutOfResources),
    );
    expect(refused.final.fields?.errorComment).toBe(
      'all sub-operations failed: C-STORE status 0xA700',
    );
  });

  it('leaves the identifier out when given no encoding (C-GET)', async () => {
    const { final } = await runWithoutEncoding([instance(1), instance(2)], (n) =>
      n === 0 ? Status.Success : new Error('gone'),
    );
    expect(final.status).toBe(Status.Warning);
    expect(final.fields).toMatchObject({ numberOfFailedSuboperations: 1 });
    expect(final.dataset).toBeUndefined();
  });

  it('stops after the current sub-operation on C-CANCEL and answers 0xFE00 with what was not started', async () => {
    const controller = new AbortController();
    const instances = [1, 2, 3, 4].map((n) => instance(n));
    // The cancel arrives while the second sub-operation runs: it completes, no third starts.
    const sender = fakeSender(
      (n) => (n === 0 ? Status.Success : Status.ProcessingFailure),
      (n) => {
        if (n === 1) controller.abort();
      },
    );
    const { pending, final } = await collect(instances, sender, controller.signal);
    expect(sender.stored).toHaveLength(2);
    expect(pending).toHaveLength(2);
    expect(final.status).toBe(Status.Cancel);
    expect(final.fields).toEqual({
      numberOfRemainingSuboperations: 2,
      numberOfCompletedSuboperations: 1,
      numberOfFailedSuboperations: 1,
      numberOfWarningSuboperations: 0,
    });
    expect(failedList(final)).toEqual([instances[1]!.sopInstanceUid]);
  });

  it('answers 0xFE00 when cancelled before any sub-operation', async () => {
    const controller = new AbortController();
    controller.abort();
    const sender = fakeSender(() => Status.Success);
    for (const instances of [[], [instance(1)]]) {
      const { final } = await collect(instances, sender, controller.signal);
      expect(final.status).toBe(Status.Cancel);
      expect(final.fields).toMatchObject({ numberOfRemainingSuboperations: instances.length });
    }
    expect(sender.stored).toEqual([]);
  });

  it('caps counts at 65535, the largest US', async () => {
    const instances = Array.from({ length: 70_000 }, (_, n) => instance(n));
    let last: ResponseSpec | undefined;
    let first: ResponseSpec | undefined;
    for await (const response of runSubOperations(
      instances,
      fakeSender(() => 0),
      {
        signal: new AbortController().signal,
        encoding: EXPLICIT,
      },
    )) {
      first ??= response;
      last = response;
    }
    expect(first?.fields?.numberOfRemainingSuboperations).toBe(0xffff);
    expect(last?.fields?.numberOfCompletedSuboperations).toBe(0xffff);
  });
});

describe('failedListIdentifier', () => {
  it('cuts a list too long for the 16-bit explicit VR length, keeps it whole in implicit VR', () => {
    const uids = Array.from({ length: 3000 }, (_, n) => instance(n).sopInstanceUid);
    const explicit = failedList({ status: 0, dataset: failedListIdentifier(uids, EXPLICIT) });
    expect(explicit.length).toBeGreaterThan(1500);
    expect(explicit.length).toBeLessThan(3000);
    expect(explicit).toEqual(uids.slice(0, explicit.length));
    const implicit = failedList(
      { status: 0, dataset: failedListIdentifier(uids, IMPLICIT) },
      IMPLICIT,
    );
    expect(implicit).toEqual(uids);
  });
});

describe('failedListIdentifier in a deflated context', () => {
  it('deflates the identifier, padded to even length', () => {
    const uids = [instance(1).sopInstanceUid, instance(2).sopInstanceUid];
    const bytes = failedListIdentifier(uids, { ...EXPLICIT, isDeflated: true });
    expect(bytes.length % 2).toBe(0);
    const inflated = inflateRawSync(bytes);
    expect(inflated.equals(failedListIdentifier(uids, EXPLICIT))).toBe(true);
  });
});

describe('chooseContext', () => {
  const contexts = [
    context(1, CT_IMAGE, TransferSyntax.ImplicitVRLittleEndian),
    context(3, CT_IMAGE, TransferSyntax.ExplicitVRLittleEndian),
    context(5, CT_IMAGE, TransferSyntax.JPEG2000),
    context(7, MR_IMAGE, TransferSyntax.ImplicitVRLittleEndian),
  ];

  it('prefers the stored syntax, then Explicit, then Implicit VR Little Endian', () => {
    const pick = (sopClass: string, stored: string, among = contexts) =>
      chooseContext(among, sopClass, stored)?.id;
    expect(pick(CT_IMAGE, TransferSyntax.ImplicitVRLittleEndian)).toBe(1);
    expect(pick(CT_IMAGE, TransferSyntax.JPEG2000)).toBe(5);
    expect(pick(CT_IMAGE, TransferSyntax.DeflatedExplicitVRLittleEndian)).toBe(3);
    expect(pick(MR_IMAGE, TransferSyntax.ExplicitVRLittleEndian)).toBe(7);
    expect(pick(CT_IMAGE, TransferSyntax.ImplicitVRLittleEndian, contexts.slice(1))).toBe(3);
  });

  it('finds none for a compressed or big endian instance the peer cannot take as stored', () => {
    expect(chooseContext(contexts, MR_IMAGE, TransferSyntax.JPEG2000)).toBeUndefined();
    expect(chooseContext(contexts, CT_IMAGE, TransferSyntax.RLELossless)).toBeUndefined();
    expect(chooseContext(contexts, CT_IMAGE, TransferSyntax.ExplicitVRBigEndian)).toBeUndefined();
    expect(chooseContext(contexts, '1.2.3', TransferSyntax.ExplicitVRLittleEndian)).toBeUndefined();
  });
});

describe('instancesToRetrieve', () => {
  const STUDY_ROOT_MOVE = SopClass.StudyRootQueryRetrieveInformationModelMove;
  const association = { callingAeTitle: 'MOVESCU', isRelational: () => false };

  function request(elements: IdentifierElement[] | undefined, sopClass = STUDY_ROOT_MOVE) {
    let dataset: DatasetStream | undefined;
    if (elements !== undefined) {
      dataset = new DatasetStream(1024 * 1024, () => undefined);
      dataset.pushFragment(writeIdentifier(elements, EXPLICIT));
      dataset.complete();
    }
    const incoming: IncomingRequest = {
      context: context(1, sopClass, TransferSyntax.ExplicitVRLittleEndian),
      command: {
        commandField: CommandField.CMoveRq,
        messageId: 1,
        affectedSopClassUid: sopClass,
        moveDestination: 'DEST',
        hasDataset: dataset !== undefined,
      },
      ...(dataset !== undefined && { dataset }),
    };
    return incoming;
  }

  const studyLevel: IdentifierElement[] = [
    { tag: 0x00080052, vr: 'CS', value: Buffer.from('STUDY ') },
    { tag: 0x0020000d, vr: 'UI', value: Buffer.from('1.2.3.4\0') },
  ];

  function source(
    retrievable: QuerySource['retrievable'],
  ): QuerySource & { queries: IndexQuery[] } {
    const queries: IndexQuery[] = [];
    return {
      queries,
      find: () => {
        throw new Error('not used');
      },
      count: () => {
        throw new Error('not used');
      },
      retrievable: (query, signal) => {
        queries.push(query);
        return retrievable(query, signal);
      },
    };
  }

  it('asks the index with the query the identifier makes', async () => {
    const fake = source(async () => [instance(1)]);
    const signal = new AbortController().signal;
    const result = await instancesToRetrieve(
      request(studyLevel),
      'move',
      association,
      fake,
      signal,
    );
    expect(result).toEqual([instance(1)]);
    expect(fake.queries).toEqual([
      expect.objectContaining({
        root: 'study',
        level: 'STUDY',
        conditions: [{ keyword: 'StudyInstanceUID', match: { kind: 'single', value: '1.2.3.4' } }],
      }),
    ]);
  });

  it('refuses with 0xA701 when the index fails, and the request checks with their statuses', async () => {
    const signal = new AbortController().signal;
    const failing = source(async () => {
      throw new Error('database is locked');
    });
    const run = (incoming: IncomingRequest, kind: 'move' | 'get' = 'move') =>
      instancesToRetrieve(incoming, kind, association, failing, signal);
    expect(await run(request(studyLevel))).toEqual({
      status: Status.OutOfResourcesMatches,
      errorComment: 'index query failed: database is locked',
    });
    expect(await run(request(undefined))).toMatchObject({
      status: Status.DataSetDoesNotMatchSopClass,
    });
    expect(await run(request(studyLevel), 'get')).toMatchObject({
      status: Status.SopClassNotSupported,
    });
    // No Query/Retrieve Level: the identifier does not fit the SOP class.
    expect(await run(request(studyLevel.slice(1)))).toMatchObject({
      status: Status.DataSetDoesNotMatchSopClass,
    });
    expect(failing.queries).toHaveLength(1);
  });

  it('refuses an identifier over 64 KiB with 0xC000, without asking the index', async () => {
    const fake = source(async () => [instance(1)]);
    const dataset = new DatasetStream(1024 * 1024, () => undefined);
    for (let i = 0; i < 5; i++) dataset.pushFragment(Buffer.alloc(16 * 1024));
    dataset.complete();
    const incoming: IncomingRequest = { ...request(studyLevel), dataset };
    const result = await instancesToRetrieve(
      incoming,
      'move',
      association,
      fake,
      new AbortController().signal,
    );
    expect(result).toEqual({
      status: Status.CannotUnderstand,
      errorComment: 'identifier too large: over 64 KiB',
    });
    expect(dataset.destroyed).toBe(true);
    expect(fake.queries).toEqual([]);
  });

  it('gives no instances when the C-CANCEL comes while the index is asked', async () => {
    const controller = new AbortController();
    const aborting = source(async () => {
      controller.abort();
      throw new Error('aborted');
    });
    const result = await instancesToRetrieve(
      request(studyLevel),
      'move',
      association,
      aborting,
      controller.signal,
    );
    expect(result).toEqual([]);
  });
});
