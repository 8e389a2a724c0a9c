/**
 * Checks the reassembly of DIMSE messages from PDVs (PS3.7 §9.2, PS3.8 Annex E): a command in
 * one or many fragments, a data set handed on as it streams in, each PDV sequence PS3.7 does not
 * allow raising its own error, and backpressure: a consumer that does not read pauses the
 * source, reading resumes it exactly once per pause, destroying the stream releases it.
 *
 * Layer: network/dimse (unit test). The "source" here is a counter of pause() and resume()
 * calls standing in for the association.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DicomServerError } from '../../errors.js';
import { AbortReason, type Pdv } from '../pdu/types.js';
import { type AssembledMessage, MessageAssembler } from './assembler.js';
import { CommandField, type CommandSet, encodeCommand, MAX_COMMAND_SET_LENGTH } from './command.js';

const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';

const ECHO_RQ: CommandSet = {
  commandField: CommandField.CEchoRq,
  messageId: 7,
  affectedSopClassUid: '1.2.840.10008.1.1',
  hasDataset: false,
};
const STORE_RQ: CommandSet = {
  commandField: CommandField.CStoreRq,
  messageId: 8,
  affectedSopClassUid: CT_IMAGE_STORAGE,
  affectedSopInstanceUid: '1.2.3.4.5.6.7',
  priority: 0,
  hasDataset: true,
};

function commandPdv(data: Buffer, isLast = true, contextId = 1): Pdv {
  return { contextId, isCommand: true, isLast, data };
}

function datasetPdv(data: Buffer, isLast = false, contextId = 1): Pdv {
  return { contextId, isCommand: false, isLast, data };
}

/** An assembler with accepted contexts 1 and 3, recording messages, pauses and resumes. */
function harness(highWaterMark = 64 * 1024) {
  const state = {
    messages: [] as AssembledMessage[],
    pauses: 0,
    resumes: 0,
    /** Set when resume() was called more often than pause(). */
    isOverResumed: false,
    resumeWaiters: [] as (() => void)[],
  };
  const assembler = new MessageAssembler({
    isAcceptedContext: (id) => id === 1 || id === 3,
    onMessage: (message) => state.messages.push(message),
    pause: () => {
      state.pauses += 1;
    },
    resume: () => {
      state.resumes += 1;
      if (state.resumes > state.pauses) state.isOverResumed = true;
      for (const wake of state.resumeWaiters.splice(0)) wake();
    },
    highWaterMark,
  });
  const isPaused = () => state.pauses > state.resumes;
  /** Resolves at the next resume(); rejects when none comes within `timeoutMs`. */
  const nextResume = (timeoutMs = 2_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the source was never resumed')), timeoutMs);
      state.resumeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  return { assembler, state, isPaused, nextResume };
}

function violation(push: () => void): DicomServerError {
  try {
    push();
  } catch (error) {
    expect(error).toBeInstanceOf(DicomServerError);
    return error as DicomServerError;
  }
  throw new Error('the assembler accepted a PDV sequence PS3.7 does not allow');
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('MessageAssembler: commands', () => {
  it('delivers a command without data set sent in one fragment', () => {
    const { assembler, state } = harness();
    assembler.push(commandPdv(encodeCommand(ECHO_RQ), true, 3));
    expect(state.messages).toEqual([{ contextId: 3, command: ECHO_RQ }]);
    expect(assembler.openDataset).toBeUndefined();
  });

  it('joins a command cut into any number of fragments, delivering it after the last', () => {
    const bytes = encodeCommand(STORE_RQ);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 20 }),
        (cuts) => {
          const { assembler, state } = harness();
          const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
          for (let i = 0; i + 1 < points.length; i += 1) {
            expect(state.messages).toHaveLength(0);
            const isLast = i + 2 === points.length;
            assembler.push(commandPdv(bytes.subarray(points[i], points[i + 1]), isLast));
          }
          expect(state.messages).toHaveLength(1);
          expect(state.messages[0]!.command).toEqual(STORE_RQ);
        },
      ),
    );
  });

  it('takes one message after another on different contexts', () => {
    const { assembler, state } = harness();
    assembler.push(commandPdv(encodeCommand(ECHO_RQ), true, 1));
    assembler.push(commandPdv(encodeCommand({ ...ECHO_RQ, messageId: 9 }), true, 3));
    expect(state.messages.map((m) => [m.contextId, m.command.messageId])).toEqual([
      [1, 7],
      [3, 9],
    ]);
  });
});

describe('MessageAssembler: data sets', () => {
  it('hands on the data set as it streams in, the bytes unchanged', async () => {
    const { assembler, state } = harness();
    const dataset = randomBytes(50_000);
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    // The message is announced as soon as its command is complete, before any data set bytes.
    expect(state.messages).toHaveLength(1);
    const stream = state.messages[0]!.dataset!;
    expect(stream).toBeDefined();
    expect(assembler.openDataset).toBe(stream);
    const received = readAll(stream);
    for (let offset = 0; offset < dataset.length; offset += 4091) {
      const end = Math.min(dataset.length, offset + 4091);
      assembler.push(datasetPdv(dataset.subarray(offset, end), end === dataset.length));
    }
    expect((await received).equals(dataset)).toBe(true);
    expect(stream.receivedBytes).toBe(dataset.length);
    expect(assembler.openDataset).toBeUndefined();
  });

  it('reads the next message once a data set has ended', async () => {
    const { assembler, state } = harness();
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    assembler.push(datasetPdv(Buffer.from('abcd'), true));
    assembler.push(commandPdv(encodeCommand(ECHO_RQ)));
    expect(state.messages.map((m) => m.command.commandField)).toEqual([
      CommandField.CStoreRq,
      CommandField.CEchoRq,
    ]);
    expect((await readAll(state.messages[0]!.dataset!)).toString()).toBe('abcd');
  });

  it('ends a data set still arriving with the error it is closed with', async () => {
    const { assembler, state } = harness();
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    assembler.push(datasetPdv(Buffer.from('abcd')));
    const closing = new DicomServerError('ERR_CONNECTION_CLOSED', 'association ended');
    assembler.close(closing);
    await expect(readAll(state.messages[0]!.dataset!)).rejects.toBe(closing);
    expect(assembler.openDataset).toBeUndefined();
  });

  it('keeps the error of a data set closed before anyone reads it for a later reader', async () => {
    // A handler may not have started reading when the association ends: that must not raise
    // an 'error' event nobody listens to, which would end the process.
    const escaped: unknown[] = [];
    const onEscape = (reason: unknown) => escaped.push(reason);
    process.on('uncaughtException', onEscape);
    try {
      const { assembler, state } = harness();
      assembler.push(commandPdv(encodeCommand(STORE_RQ)));
      assembler.push(datasetPdv(Buffer.from('abcd')));
      const closing = new DicomServerError('ERR_CONNECTION_CLOSED', 'association ended');
      assembler.close(closing);
      await tick();
      await tick();
      expect(escaped).toEqual([]);
      const stream = state.messages[0]!.dataset!;
      expect(stream.errored).toBe(closing);
      await expect(readAll(stream)).rejects.toBe(closing);
    } finally {
      process.off('uncaughtException', onEscape);
    }
  });
});

describe('MessageAssembler: sequences PS3.7 does not allow', () => {
  it('rejects a data set fragment without a command announcing one', () => {
    const { assembler } = harness();
    const error = violation(() => assembler.push(datasetPdv(Buffer.from('abcd'))));
    expect(error.code).toBe('ERR_DIMSE_UNEXPECTED');
  });

  it('rejects a data set fragment after a command that announced none', () => {
    const { assembler } = harness();
    assembler.push(commandPdv(encodeCommand(ECHO_RQ)));
    const error = violation(() => assembler.push(datasetPdv(Buffer.from('abcd'), true)));
    expect(error.code).toBe('ERR_DIMSE_UNEXPECTED');
  });

  it('rejects a command fragment before the data set has ended', () => {
    const { assembler } = harness();
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    assembler.push(datasetPdv(Buffer.from('abcd')));
    const error = violation(() => assembler.push(commandPdv(encodeCommand(ECHO_RQ))));
    expect(error.code).toBe('ERR_DIMSE_UNEXPECTED');
  });

  it('rejects a switch of presentation context in the middle of a command', () => {
    const { assembler } = harness();
    const bytes = encodeCommand(ECHO_RQ);
    assembler.push(commandPdv(bytes.subarray(0, 10), false, 1));
    const error = violation(() => assembler.push(commandPdv(bytes.subarray(10), true, 3)));
    expect(error.code).toBe('ERR_DIMSE_UNEXPECTED');
    expect(error.details).toMatchObject({ contextId: 3, expected: 1 });
  });

  it('rejects a switch of presentation context in the middle of a data set', () => {
    const { assembler } = harness();
    assembler.push(commandPdv(encodeCommand(STORE_RQ), true, 1));
    assembler.push(datasetPdv(Buffer.from('abcd'), false, 1));
    const error = violation(() => assembler.push(datasetPdv(Buffer.from('efgh'), true, 3)));
    expect(error.code).toBe('ERR_DIMSE_UNEXPECTED');
    expect(error.details).toMatchObject({ contextId: 3, expected: 1 });
  });

  it.each([
    ['a command', commandPdv(encodeCommand(ECHO_RQ), true, 5)],
    ['a data set', datasetPdv(Buffer.from('abcd'), true, 5)],
  ])('rejects %s on a context that was not accepted as an invalid PDU parameter', (_, pdv) => {
    const { assembler } = harness();
    const error = violation(() => assembler.push(pdv));
    expect(error.code).toBe('ERR_DIMSE_UNEXPECTED');
    expect(error.details).toMatchObject({
      contextId: 5,
      abortReason: AbortReason.InvalidPduParameterValue,
    });
    expect(AbortReason.InvalidPduParameterValue).toBe(6);
  });

  it('rejects a command set over the limit as soon as it passes it, before its last fragment', () => {
    const { assembler } = harness();
    const chunk = Buffer.alloc(16 * 1024);
    let pushed = 0;
    const error = violation(() => {
      while (pushed <= MAX_COMMAND_SET_LENGTH + chunk.length) {
        assembler.push(commandPdv(chunk, false));
        pushed += chunk.length;
      }
    });
    expect(error.code).toBe('ERR_DIMSE_MALFORMED');
    expect(error.details).toMatchObject({ limit: MAX_COMMAND_SET_LENGTH });
    expect(pushed).toBe(MAX_COMMAND_SET_LENGTH);
  });

  it('rejects a command set that cannot be decoded', () => {
    const { assembler } = harness();
    const error = violation(() => assembler.push(commandPdv(Buffer.from([0, 0, 0, 1, 2]))));
    expect(error.code).toBe('ERR_DIMSE_MALFORMED');
  });
});

describe('MessageAssembler: backpressure', () => {
  it('pauses the source while the consumer does not read, and reading resumes it once', async () => {
    const { assembler, state } = harness(1000);
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    const stream = state.messages[0]!.dataset!;
    assembler.push(datasetPdv(Buffer.alloc(600, 1)));
    expect(state.pauses).toBe(0);
    assembler.push(datasetPdv(Buffer.alloc(600, 2)));
    expect(state.pauses).toBe(1);
    // More PDVs of the same P-DATA-TF arrive after the pause: no second pause.
    assembler.push(datasetPdv(Buffer.alloc(600, 3)));
    assembler.push(datasetPdv(Buffer.alloc(600, 4)));
    expect(state.pauses).toBe(1);
    await tick();
    await tick();
    expect(state.resumes).toBe(0);
    expect(stream.read()).not.toBeNull();
    expect(state.resumes).toBe(1);
    expect(stream.read()).toBeNull();
    expect(state.resumes).toBe(1);
    assembler.push(datasetPdv(Buffer.alloc(10, 5), true));
    expect((await readAll(stream)).length).toBe(10);
    expect(state.pauses).toBe(1);
    expect(state.resumes).toBe(1);
  });

  it('resumes exactly once per pause with a slow consumer, several PDVs per P-DATA-TF', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 100, max: 3000 }),
        fc.integer({ min: 0, max: 3 }),
        async (pdvsPerPdu, fragmentLength, ticksPerRead) => {
          const { assembler, state, isPaused, nextResume } = harness(4096);
          const dataset = randomBytes(100_000);
          assembler.push(commandPdv(encodeCommand(STORE_RQ)));
          const stream = state.messages[0]!.dataset!;
          const consume = async () => {
            const chunks: Buffer[] = [];
            for await (const chunk of stream) {
              chunks.push(chunk);
              for (let i = 0; i < ticksPerRead; i += 1) await tick();
            }
            return Buffer.concat(chunks);
          };
          // The consumer starts late, so that the source is paused at least once.
          let consumed: Promise<Buffer> | undefined;
          // The association: one P-DATA-TF's PDVs at a time, no more while paused.
          let offset = 0;
          while (offset < dataset.length) {
            for (let i = 0; i < pdvsPerPdu && offset < dataset.length; i += 1) {
              const end = Math.min(dataset.length, offset + fragmentLength);
              assembler.push(datasetPdv(dataset.subarray(offset, end), end === dataset.length));
              offset = end;
            }
            if (isPaused()) {
              const resumed = nextResume();
              consumed ??= consume();
              await resumed;
            } else {
              await tick();
            }
          }
          consumed ??= consume();
          expect((await consumed).equals(dataset)).toBe(true);
          expect(state.pauses).toBeGreaterThan(0);
          expect(state.resumes).toBe(state.pauses);
          expect(state.isOverResumed).toBe(false);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('resumes the source when a data set that ended while paused has been read', async () => {
    // Several PDVs in one P-DATA-TF: the last fragment arrives after the pause took effect.
    const { assembler, state } = harness(1000);
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    const stream = state.messages[0]!.dataset!;
    assembler.push(datasetPdv(Buffer.alloc(600, 1)));
    assembler.push(datasetPdv(Buffer.alloc(600, 2)));
    assembler.push(datasetPdv(Buffer.alloc(600, 3), true));
    expect(state.pauses).toBe(1);
    expect((await readAll(stream)).length).toBe(1800);
    expect(state.resumes).toBe(1);
  });

  it('releases the pause when the consumer destroys the stream, and drops the rest', async () => {
    const { assembler, state } = harness(1000);
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    const stream = state.messages[0]!.dataset!;
    assembler.push(datasetPdv(Buffer.alloc(600)));
    assembler.push(datasetPdv(Buffer.alloc(600)));
    expect(state.pauses).toBe(1);
    stream.destroy();
    expect(state.resumes).toBe(1);
    // The rest of the data set still arrives; it is dropped without pausing again.
    for (let i = 0; i < 10; i += 1) assembler.push(datasetPdv(Buffer.alloc(600)));
    assembler.push(datasetPdv(Buffer.alloc(600), true));
    expect(stream.receivedBytes).toBe(13 * 600);
    assembler.push(commandPdv(encodeCommand(ECHO_RQ)));
    expect(state.messages.map((m) => m.command.commandField)).toEqual([
      CommandField.CStoreRq,
      CommandField.CEchoRq,
    ]);
    await tick();
    expect(state.pauses).toBe(1);
    expect(state.resumes).toBe(1);
  });

  it('does not resume a source it never paused when the stream is destroyed', () => {
    const { assembler, state } = harness(1000);
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    assembler.push(datasetPdv(Buffer.alloc(100)));
    state.messages[0]!.dataset!.destroy();
    expect(state.pauses).toBe(0);
    expect(state.resumes).toBe(0);
  });
});

describe('MessageAssembler with fragments in a reused buffer', () => {
  /** Pushes `bytes` as data set PDVs of `size` through one reused buffer, overwritten after each. */
  function pushThroughReusedBuffer(
    assembler: MessageAssembler,
    bytes: Buffer,
    size: number,
    isEnding = true,
  ): void {
    const reused = Buffer.alloc(size);
    for (let start = 0; start < bytes.length; start += size) {
      const part = bytes.subarray(start, start + size);
      part.copy(reused);
      const isLast = isEnding && start + size >= bytes.length;
      assembler.push(datasetPdv(reused.subarray(0, part.length), isLast));
      reused.fill(0xab);
    }
  }

  it('keeps a command in several fragments whole when each fragment is overwritten after', () => {
    const { assembler, state } = harness();
    const encoded = encodeCommand(ECHO_RQ);
    const reused = Buffer.alloc(encoded.length);
    for (let start = 0; start < encoded.length; start += 10) {
      const part = encoded.subarray(start, start + 10);
      part.copy(reused);
      assembler.push(commandPdv(reused.subarray(0, part.length), start + 10 >= encoded.length));
      reused.fill(0xab);
    }
    expect(state.messages[0]?.command).toMatchObject({ messageId: 7 });
  });

  it('hands a data set read as a stream copies of the fragments', async () => {
    const { assembler, state } = harness(1024 * 1024);
    const bytes = randomBytes(100_000);
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    pushThroughReusedBuffer(assembler, bytes, 4096);
    const chunks: Buffer[] = [];
    for await (const chunk of state.messages[0]!.dataset!) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
  });

  it('gives a sink what arrived before it and the rest as it arrives, in order', async () => {
    const { assembler, state } = harness(1024 * 1024);
    const bytes = randomBytes(50_000);
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    pushThroughReusedBuffer(assembler, bytes.subarray(0, 20_000), 3000, false);
    const dataset = state.messages[0]!.dataset!;
    const taken: Buffer[] = [];
    const consumed = dataset.consume((fragment) => {
      taken.push(Buffer.from(fragment));
      return undefined;
    });
    const rest = bytes.subarray(20_000);
    const reused = Buffer.alloc(rest.length);
    rest.copy(reused);
    assembler.push(datasetPdv(reused, true));
    reused.fill(0);
    await consumed;
    expect(Buffer.concat(taken).equals(bytes)).toBe(true);
    expect(dataset.receivedBytes).toBe(bytes.length);
    // A second consumer (the channel's drain) finds it done.
    await expect(dataset.consume(() => undefined)).resolves.toBeUndefined();
  });

  it('holds the source back while the sink is behind, and resumes it once', async () => {
    const { assembler, state, isPaused, nextResume } = harness();
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    let release!: () => void;
    const behind = new Promise<void>((resolve) => {
      release = resolve;
    });
    const consumed = state.messages[0]!.dataset!.consume(() => behind);
    assembler.push(datasetPdv(Buffer.alloc(100)));
    expect(isPaused()).toBe(true);
    const resumed = nextResume();
    release();
    await resumed;
    expect(isPaused()).toBe(false);
    expect(state.isOverResumed).toBe(false);
    assembler.push(datasetPdv(Buffer.alloc(10), true));
    await consumed;
  });

  it('rejects the sink when the association ends part-way through the data set', async () => {
    const { assembler, state } = harness();
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    const consumed = state.messages[0]!.dataset!.consume(() => undefined);
    assembler.push(datasetPdv(Buffer.alloc(100)));
    assembler.close(new DicomServerError('ERR_CONNECTION_CLOSED', 'gone'));
    await expect(consumed).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
  });

  it('rejects a sink attached after the association ended part-way', async () => {
    const { assembler, state } = harness();
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    assembler.push(datasetPdv(Buffer.alloc(100)));
    assembler.close(new DicomServerError('ERR_CONNECTION_CLOSED', 'gone'));
    await expect(state.messages[0]!.dataset!.consume(() => undefined)).rejects.toMatchObject({
      code: 'ERR_CONNECTION_CLOSED',
    });
  });
});

describe('DatasetStream.consume', () => {
  it('holds the source back until every promise of the sink has settled', async () => {
    const { assembler, state, isPaused } = harness();
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    const releases: (() => void)[] = [];
    const consumed = state.messages[0]!.dataset!.consume(
      () =>
        new Promise<void>((resolve) => {
          releases.push(resolve);
        }),
    );
    assembler.push(datasetPdv(Buffer.alloc(10)));
    assembler.push(datasetPdv(Buffer.alloc(10)));
    expect(isPaused()).toBe(true);
    releases[0]!();
    await new Promise((resolve) => setImmediate(resolve));
    // The second write is still behind: the association stays paused.
    expect(isPaused()).toBe(true);
    releases[1]!();
    await new Promise((resolve) => setImmediate(resolve));
    expect(isPaused()).toBe(false);
    expect(state.isOverResumed).toBe(false);
    assembler.push(datasetPdv(Buffer.alloc(10), true));
    releases[2]!();
    await consumed;
  });

  it('rejects at once on a stream given up without an error', async () => {
    const { assembler, state } = harness();
    assembler.push(commandPdv(encodeCommand(STORE_RQ)));
    const dataset = state.messages[0]!.dataset!;
    dataset.destroy();
    await expect(dataset.consume(() => undefined)).rejects.toMatchObject({
      code: 'ERR_CONNECTION_CLOSED',
    });
  });
});
