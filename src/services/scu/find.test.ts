/**
 * The Q/R SCU's identifiers (encoded with their Specific Character Set, decoded back to text)
 * and C-FIND against an in-process acceptor: matches in order, the final status, and C-CANCEL
 * on the signal (PS3.7 §9.3.2.3) whether it aborts before or after the first match.
 *
 * Layer: services (unit test; the peer is our own network layer on 127.0.0.1, port 0).
 */

import { afterEach, describe, expect, it } from 'vitest';
import { readIdentifier } from '../../dicom/query/identifier.js';
import { decodeValue } from '../../dicom/query/values.js';
import { TransferSyntax } from '../../dicom/transfer-syntax.js';
import { SopClass } from '../../dicom/uid.js';
import { hasCode } from '../../errors.js';
import { AssociationAcceptor } from '../../network/association/acceptor.js';
import {
  DimseChannel,
  type RequestHandler,
  type ResponseSpec,
} from '../../network/dimse/channel.js';
import { Status } from '../../network/dimse/status.js';
import {
  buildIdentifier,
  decodeIdentifier,
  type FindResponse,
  find,
  QueryTag,
  type RequestIdentifier,
  type ScuTarget,
} from './find.js';

const EXPLICIT_LE = { isExplicitVr: true, isLittleEndian: true };
const IMPLICIT_LE = { isExplicitVr: false, isLittleEndian: true };
const PATIENT_NAME = 0x00100010;
const PATIENT_ID = 0x00100020;
const STUDY_DATE = 0x00080020;
const STUDY_INSTANCE_UID = 0x0020000d;
const REFERENCED_STUDY_SEQUENCE = 0x00081110;
const ROWS = 0x00280010;
const SCP_AE = 'FIND_SCP';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An acceptor serving Study Root FIND with `onRequest`; resolves with the target to query. */
async function startScp(onRequest: RequestHandler): Promise<ScuTarget> {
  const acceptor = new AssociationAcceptor({
    aeTitle: SCP_AE,
    served: {
      transferSyntaxesFor: (abstractSyntax) =>
        abstractSyntax === SopClass.StudyRootQueryRetrieveInformationModelFind
          ? [TransferSyntax.ImplicitVRLittleEndian]
          : undefined,
      canActAsScuFor: () => false,
    },
    maxPduLength: 16_384,
    maxAssociations: 2,
  });
  acceptor.on('association', (association) => {
    new DimseChannel(association, { onRequest, dimseTimeoutMs: 10_000 });
  });
  const { port } = await acceptor.listen('127.0.0.1', 0);
  cleanups.push(async () => {
    await acceptor.stopListening();
    await acceptor.abortAll();
  });
  const timeouts = { artimMs: 5_000, acseMs: 5_000, networkMs: 5_000, dimseMs: 5_000 };
  return { host: '127.0.0.1', port, callingAeTitle: 'FIND_SCU', calledAeTitle: SCP_AE, timeouts };
}

async function identifierOf(dataset: AsyncIterable<Buffer> | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of dataset ?? []) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function matchWith(name: string): Buffer {
  return buildIdentifier(
    { level: 'STUDY', keys: [{ tag: PATIENT_NAME, vr: 'PN', value: name }] },
    IMPLICIT_LE,
  );
}

async function collect(responses: AsyncIterable<FindResponse>): Promise<FindResponse[]> {
  const out: FindResponse[] = [];
  for await (const response of responses) out.push(response);
  return out;
}

describe('request identifiers', () => {
  const request: RequestIdentifier = {
    level: 'STUDY',
    keys: [
      { tag: PATIENT_NAME, vr: 'PN', value: 'SM?TH*' },
      { tag: STUDY_DATE, vr: 'DA', value: '20240101-' },
      { tag: STUDY_INSTANCE_UID, vr: 'UI', value: '1.2.3\\1.2.4' },
      { tag: REFERENCED_STUDY_SEQUENCE, vr: 'SQ', value: '' },
      { tag: ROWS, vr: 'US', value: '' },
    ],
  };

  it('writes the level, each key in tag order and no character set for ASCII values', () => {
    for (const encoding of [EXPLICIT_LE, IMPLICIT_LE]) {
      const elements = readIdentifier(buildIdentifier(request, encoding), encoding);
      expect(elements.map((e) => e.tag)).toEqual([
        STUDY_DATE,
        QueryTag.QueryRetrieveLevel,
        REFERENCED_STUDY_SEQUENCE,
        PATIENT_NAME,
        STUDY_INSTANCE_UID,
        ROWS,
      ]);
      const text = (tag: number) => {
        const element = elements.find((e) => e.tag === tag)!;
        return decodeValue(element.value, element.vr, undefined);
      };
      expect(text(QueryTag.QueryRetrieveLevel)).toBe('STUDY');
      expect(text(PATIENT_NAME)).toBe('SM?TH*');
      expect(text(STUDY_DATE)).toBe('20240101-');
      expect(text(STUDY_INSTANCE_UID)).toBe('1.2.3\\1.2.4');
      expect(elements.find((e) => e.tag === REFERENCED_STUDY_SEQUENCE)?.items).toEqual([]);
      expect(elements.find((e) => e.tag === ROWS)?.value.length).toBe(0);
    }
  });

  it('states ISO_IR 192 and writes UTF-8 when a value is not ASCII', () => {
    const bytes = buildIdentifier(
      { level: 'PATIENT', keys: [{ tag: PATIENT_NAME, vr: 'PN', value: 'Gérard*' }] },
      EXPLICIT_LE,
    );
    const decoded = decodeIdentifier(bytes, EXPLICIT_LE);
    expect(decoded.find((e) => e.tag === QueryTag.SpecificCharacterSet)?.value).toBe('ISO_IR 192');
    expect(decoded.find((e) => e.tag === PATIENT_NAME)?.value).toBe('Gérard*');
    expect(bytes.includes(Buffer.from('Gérard*', 'utf8'))).toBe(true);
  });

  it('refuses a value on a binary key and a level or character set given as a key', () => {
    const attempts = [
      { tag: ROWS, vr: 'US', value: '512' },
      { tag: QueryTag.QueryRetrieveLevel, vr: 'CS', value: 'IMAGE' },
      { tag: QueryTag.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 100' },
    ] as const;
    for (const key of attempts) {
      expect(() => buildIdentifier({ level: 'STUDY', keys: [key] }, EXPLICIT_LE)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
      );
    }
  });

  it('decodes binary values as numbers, several joined by a backslash', () => {
    // Implicit VR LE: (0028,0010) Rows, VR US from the dictionary, length 4: 512 and 256.
    const bytes = Buffer.from([
      0x28, 0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,
    ]);
    expect(decodeIdentifier(bytes, IMPLICIT_LE)).toEqual([
      { tag: ROWS, vr: 'US', value: '512\\256' },
    ]);
  });
});

describe('find against an in-process SCP', () => {
  it('yields each match in order, then the final success', async () => {
    let received: Buffer | undefined;
    const target = await startScp(async function* (request): AsyncGenerator<ResponseSpec> {
      received = await identifierOf(request.dataset);
      yield { status: Status.Pending, dataset: matchWith('DOE^JOHN') };
      yield { status: Status.Pending, dataset: matchWith('DOE^JANE') };
      yield { status: Status.Success };
    });
    const identifier: RequestIdentifier = {
      level: 'STUDY',
      keys: [
        { tag: PATIENT_NAME, vr: 'PN', value: 'DOE*' },
        { tag: PATIENT_ID, vr: 'LO', value: '' },
      ],
    };
    const responses = await collect(find({ target, root: 'study', identifier }));
    expect(responses.map((r) => r.type)).toEqual(['match', 'match', 'final']);
    const names = responses.map((r) =>
      r.type === 'match' ? r.elements.find((e) => e.tag === PATIENT_NAME)?.value : r.status,
    );
    expect(names).toEqual(['DOE^JOHN', 'DOE^JANE', Status.Success]);
    // The peer took implicit VR only: the identifier went in that encoding.
    const sent = decodeIdentifier(received!, IMPLICIT_LE);
    expect(sent.map((e) => [e.tag, e.value])).toEqual([
      [QueryTag.QueryRetrieveLevel, 'STUDY'],
      [PATIENT_NAME, 'DOE*'],
      [PATIENT_ID, ''],
    ]);
  });

  it('sends C-CANCEL when the signal aborts and ends with the peer final status', async () => {
    let wasCancelled = false;
    const target = await startScp(async function* (_request, signal): AsyncGenerator<ResponseSpec> {
      yield { status: Status.Pending, dataset: matchWith('FIRST') };
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      wasCancelled = true;
      yield { status: Status.Cancel };
    });
    const controller = new AbortController();
    const responses: FindResponse[] = [];
    for await (const response of find({
      target,
      root: 'study',
      identifier: { level: 'STUDY', keys: [] },
      signal: controller.signal,
    })) {
      responses.push(response);
      if (response.type === 'match') controller.abort();
    }
    expect(wasCancelled).toBe(true);
    expect(responses.map((r) => r.type)).toEqual(['match', 'final']);
    expect(responses.at(-1)?.status).toBe(Status.Cancel);
  });

  it('sends C-CANCEL right behind the request when the signal is already aborted', async () => {
    const target = await startScp(async function* (_request, signal): AsyncGenerator<ResponseSpec> {
      await new Promise((resolve) => {
        if (signal.aborted) resolve(undefined);
        else signal.addEventListener('abort', resolve, { once: true });
      });
      yield { status: Status.Cancel };
    });
    const responses = await collect(
      find({
        target,
        root: 'study',
        identifier: { level: 'STUDY', keys: [] },
        signal: AbortSignal.abort(),
      }),
    );
    expect(responses).toEqual([{ type: 'final', status: Status.Cancel }]);
  });

  it('passes on a failure status with its error comment', async () => {
    const target = await startScp(async () => ({
      status: Status.CannotUnderstand,
      fields: { errorComment: 'no such key' },
    }));
    const responses = await collect(
      find({ target, root: 'study', identifier: { level: 'STUDY', keys: [] } }),
    );
    expect(responses).toEqual([
      { type: 'final', status: Status.CannotUnderstand, errorComment: 'no such key' },
    ]);
  });

  it('fails with ERR_NO_ACCEPTED_CONTEXT when the peer does not take the model', async () => {
    const target = await startScp(async () => ({ status: Status.Success }));
    const error = await collect(
      find({ target, root: 'patient', identifier: { level: 'PATIENT', keys: [] } }),
    ).catch((e: unknown) => e);
    expect(hasCode(error, 'ERR_NO_ACCEPTED_CONTEXT')).toBe(true);
  });
});
