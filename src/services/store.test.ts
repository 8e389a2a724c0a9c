/**
 * The C-STORE handler's header parse hands the index the items of the indexed sequence keys
 * with the other attributes, in plain and deflated data sets alike, received in fragments of
 * any size; the bytes stored are the bytes received.
 *
 * Layer: services (unit test). The instance store is a fake that keeps what it is given.
 */
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { DatasetToken } from '../dicom/reader/dataset-reader.js';
import { TransferSyntax } from '../dicom/transfer-syntax.js';
import type { Vr } from '../dicom/vr.js';
import { encodeTokens } from '../dicom/writer/dataset-writer.js';
import { DatasetStream } from '../network/dimse/assembler.js';
import { CommandField } from '../network/dimse/command.js';
import { Status } from '../network/dimse/status.js';
import type { InstanceAttributes, InstanceFile, InstanceStore } from './ports.js';
import { createStoreHandler } from './store.js';

const SOP_CLASS = '1.2.840.10008.5.1.4.1.1.7';
const SOP_INSTANCE = '1.2.826.0.1.3680043.9.7777.90.1';

function element(tag: number, vr: Vr, text: string): DatasetToken {
  const value = Buffer.from(text.length % 2 === 0 ? text : `${text}${vr === 'UI' ? '\0' : ' '}`);
  return { type: 'element', tag, vr, length: value.length, offset: 0, value };
}

function sequence(tag: number, items: DatasetToken[][]): DatasetToken[] {
  return [
    { type: 'sequence-start', tag, vr: 'SQ', length: undefined, offset: 0 },
    ...items.flatMap((item): DatasetToken[] => [
      { type: 'item-start', length: undefined, offset: 0 },
      ...item,
      { type: 'item-end', hasDelimiter: true },
    ]),
    { type: 'sequence-end', hasDelimiter: true },
  ];
}

const DATASET = encodeTokens(
  [
    element(0x00080016, 'UI', SOP_CLASS),
    element(0x00080018, 'UI', SOP_INSTANCE),
    ...sequence(0x00081032, [
      [element(0x00080100, 'SH', 'P1'), element(0x00080102, 'SH', 'LOCAL')],
      [element(0x00080100, 'SH', 'P2')],
    ]),
    element(0x00100020, 'LO', 'PID-1'),
    element(0x0020000d, 'UI', '1.2.3'),
    element(0x0020000e, 'UI', '1.2.3.4'),
    ...sequence(0x00400275, [[element(0x00401001, 'SH', 'RP1')]]),
    element(0x7fe00010, 'OB', 'PIXELS'),
  ],
  { isExplicitVr: true, isLittleEndian: true },
);

/** A store that keeps the bytes written and the attributes committed. */
class FakeStore implements InstanceStore {
  readonly duplicatePolicy = 'overwrite' as const;
  readonly written: Buffer[] = [];
  committed: InstanceAttributes | undefined;

  async isStored(): Promise<boolean> {
    return false;
  }

  async hasRoom(): Promise<boolean> {
    return true;
  }

  async open(): Promise<InstanceFile> {
    return {
      write: (chunk) => {
        this.written.push(Buffer.from(chunk));
        return true;
      },
      drained: async () => undefined,
      commit: async (attributes) => {
        this.committed = attributes;
        return { filePath: 'x.dcm', fileSize: 1 };
      },
      abort: async () => undefined,
    };
  }
}

async function store(bytes: Buffer, transferSyntax: string, fragmentBytes: number) {
  const dataset = new DatasetStream(4 * 1024 * 1024, () => undefined);
  for (let at = 0; at < bytes.length; at += fragmentBytes) {
    dataset.pushFragment(bytes.subarray(at, at + fragmentBytes));
  }
  dataset.complete();
  const fake = new FakeStore();
  const response = await handle(fake, dataset, transferSyntax);
  return { response, fake };
}

/** The C-STORE handler over `instances`, given a C-STORE-RQ of SOP_INSTANCE with `dataset`. */
function handle(instances: InstanceStore, dataset: DatasetStream, transferSyntax: string) {
  return createStoreHandler(instances)(
    {
      context: {
        id: 1,
        abstractSyntax: SOP_CLASS,
        transferSyntax,
        requestorIsScu: true,
        requestorIsScp: false,
      },
      command: {
        commandField: CommandField.CStoreRq,
        messageId: 1,
        affectedSopClassUid: SOP_CLASS,
        affectedSopInstanceUid: SOP_INSTANCE,
        priority: 0,
        hasDataset: true,
      },
      dataset,
    },
    'STORESCU',
  );
}

describe('C-STORE header parse of sequence keys', () => {
  for (const [name, transferSyntax, bytes] of [
    ['Explicit VR Little Endian', TransferSyntax.ExplicitVRLittleEndian, DATASET],
    [
      'Deflated Explicit VR Little Endian',
      TransferSyntax.DeflatedExplicitVRLittleEndian,
      deflateRawSync(DATASET),
    ],
  ] as const) {
    it(`commits the indexed sequences' items with the attributes (${name})`, async () => {
      for (const fragmentBytes of [3, 64, bytes.length]) {
        const { response, fake } = await store(bytes, transferSyntax, fragmentBytes);
        expect(response.status).toBe(Status.Success);
        expect(Buffer.concat(fake.written).equals(bytes)).toBe(true);
        expect(fake.committed?.patientId).toBe('PID-1');
        expect(fake.committed?.sequences).toEqual([
          {
            tag: 0x00081032,
            items: [
              [
                { tag: 0x00080100, value: 'P1' },
                { tag: 0x00080102, value: 'LOCAL' },
              ],
              [{ tag: 0x00080100, value: 'P2' }],
            ],
          },
          { tag: 0x00400275, items: [[{ tag: 0x00401001, value: 'RP1' }]] },
        ]);
      }
    });
  }
});

/**
 * A store with a file ready at once (`openNow`) whose checks answer when the test says, and
 * which records what happens to the file.
 */
class CheckedStore implements InstanceStore {
  readonly written: Buffer[] = [];
  readonly events: string[] = [];
  #answerStored: (value: boolean) => void = () => undefined;
  #answerRoom: (value: boolean) => void = () => undefined;
  readonly #stored = new Promise<boolean>((resolve) => {
    this.#answerStored = resolve;
  });
  readonly #room = new Promise<boolean>((resolve) => {
    this.#answerRoom = resolve;
  });

  constructor(
    readonly duplicatePolicy: 'keep_first' | 'reject' | 'overwrite',
    readonly isReady: boolean,
  ) {}

  answer(isStored: boolean, hasRoom = true): void {
    this.#answerStored(isStored);
    this.#answerRoom(hasRoom);
  }

  isStored(): Promise<boolean> {
    return this.#stored;
  }

  hasRoom(): Promise<boolean> {
    return this.#room;
  }

  async open(): Promise<InstanceFile> {
    this.events.push('open');
    return this.#file();
  }

  openNow(): InstanceFile | undefined {
    if (!this.isReady) return undefined;
    this.events.push('openNow');
    return this.#file();
  }

  #file(): InstanceFile {
    return {
      write: (chunk) => {
        this.written.push(Buffer.from(chunk));
        return true;
      },
      drained: async () => undefined,
      commit: async () => {
        this.events.push('commit');
        return { filePath: 'x.dcm', fileSize: 1 };
      },
      abort: async () => {
        this.events.push('abort');
      },
    };
  }
}

describe('C-STORE checks while the data set arrives', () => {
  const half = Math.floor(DATASET.length / 2);

  /** Starts the handler on a data set of which only the first half has arrived. */
  function begin(fake: CheckedStore) {
    const dataset = new DatasetStream(4 * 1024 * 1024, () => undefined);
    dataset.pushFragment(DATASET.subarray(0, half));
    const response = handle(fake, dataset, TransferSyntax.ExplicitVRLittleEndian);
    const rest = () => {
      dataset.pushFragment(DATASET.subarray(half));
      dataset.complete();
    };
    return { response, rest };
  }

  it('with a file ready, writes the data set before the checks answer, then commits', async () => {
    const fake = new CheckedStore('keep_first', true);
    const { response, rest } = begin(fake);
    rest();
    await new Promise((resolve) => setImmediate(resolve));
    expect(Buffer.concat(fake.written).equals(DATASET)).toBe(true);
    expect(fake.events).toEqual(['openNow']);
    fake.answer(false);
    expect((await response).status).toBe(Status.Success);
    expect(fake.events).toEqual(['openNow', 'commit']);
  });

  for (const [policy, isStored, hasRoom, status] of [
    ['keep_first', true, true, Status.Success],
    ['reject', true, true, Status.DuplicateSopInstance],
    ['keep_first', false, false, Status.OutOfResources],
  ] as const) {
    it(`with a file ready, answers a refusal (${policy}, stored ${isStored}, room ${hasRoom}): file dropped, the rest not written`, async () => {
      const fake = new CheckedStore(policy, true);
      const { response, rest } = begin(fake);
      fake.answer(isStored, hasRoom);
      await new Promise((resolve) => setImmediate(resolve));
      rest();
      expect((await response).status).toBe(status);
      expect(fake.events).toEqual(['openNow', 'abort']);
      expect(Buffer.concat(fake.written).equals(DATASET.subarray(0, half))).toBe(true);
    });
  }

  it('with no file ready, checks first: a refusal opens no file', async () => {
    const fake = new CheckedStore('reject', false);
    const { response, rest } = begin(fake);
    fake.answer(true);
    rest();
    expect((await response).status).toBe(Status.DuplicateSopInstance);
    expect(fake.events).toEqual([]);
    expect(fake.written).toEqual([]);
  });

  it('with no file ready, opens one once the checks pass', async () => {
    const fake = new CheckedStore('keep_first', false);
    const { response, rest } = begin(fake);
    fake.answer(false);
    rest();
    expect((await response).status).toBe(Status.Success);
    expect(fake.events).toEqual(['open', 'commit']);
    expect(Buffer.concat(fake.written).equals(DATASET)).toBe(true);
  });
});
