/**
 * Fuzzing the live server's upper layer: a few thousand random PDUs and mutated DCMTK fixtures
 * (bit flips, truncations, length fields changed, bytes duplicated or shuffled, PDUs spliced),
 * some sent after a valid A-ASSOCIATE-RQ was accepted, over a bounded number of parallel
 * connections that the client ends, resets or leaves for the server to close.
 *
 * Whatever arrives, the server must answer only with well-formed PDUs (nothing after its
 * A-ABORT or A-ASSOCIATE-RJ), close every connection, keep serving (a C-ECHO succeeds) and log
 * nothing at error level: an error-level line is a bug in our own code.
 *
 * Reproducible: every input is drawn from its own generator seeded by (seed, index). The seed is
 * printed; rerun with FUZZ_SEED=<seed> (and FUZZ_INPUTS=<count>) to replay, or add
 * FUZZ_FIRST=<index> FUZZ_INPUTS=1 to replay the one input a failure names.
 *
 * Layer: test (integration).
 */

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SopClass } from '../../src/dicom/uid.js';
import { CommandField, encodeCommand } from '../../src/network/dimse/command.js';
import { decodePdu } from '../../src/network/pdu/decode.js';
import { encodePDataHeader } from '../../src/network/pdu/encode.js';
import { PduFramer } from '../../src/network/pdu/framer.js';
import { PDU_HEADER_LENGTH, type Pdu } from '../../src/network/pdu/types.js';
import { echo } from '../../src/services/scu/echo.js';
import { loadPduFixture } from '../helpers/hex-fixture.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 0x1_0000_0000));
const INPUT_COUNT = Number(process.env.FUZZ_INPUTS ?? 3_000);
/** The index of the first input sent: a failure names its input's index. */
const FIRST_INPUT = Number(process.env.FUZZ_FIRST ?? 0);
const PARALLEL_CONNECTIONS = 8;
/** No new input is started after this long, so that a slow machine still stays in bounds. */
const TIME_BUDGET_MS = 20_000;
/** The longest the server may take to close a connection we leave to it: ARTIM, network timer. */
const SERVER_CLOSE_DEADLINE_MS = 10_000;

/** The fixtures call the AE title STORESCP, so the server under test answers to it. */
const AE_TITLE = 'STORESCP';

const FIXTURES = {
  echoRq: loadPduFixture('echo-01-a-associate-rq.hex'),
  echoAc: loadPduFixture('echo-02-a-associate-ac.hex'),
  echoPData: loadPduFixture('echo-03-p-data-tf-c-echo-rq.hex'),
  echoRspPData: loadPduFixture('echo-04-p-data-tf-c-echo-rsp.hex'),
  releaseRq: loadPduFixture('echo-05-a-release-rq.hex'),
  releaseRp: loadPduFixture('echo-06-a-release-rp.hex'),
  abort: loadPduFixture('abort-05-a-abort.hex'),
  rejection: loadPduFixture('refuse-02-a-associate-rj.hex'),
  storeRq: loadPduFixture('store-01-a-associate-rq.hex'),
  storeAc: loadPduFixture('store-02-a-associate-ac.hex'),
  storeCommand: loadPduFixture('store-03-p-data-tf-c-store-rq.hex'),
  storeData: loadPduFixture('store-06-p-data-tf-data-set-last.hex'),
  storeRsp: loadPduFixture('store-07-p-data-tf-c-store-rsp.hex'),
  getRq: loadPduFixture('get-01-a-associate-rq.hex'),
  getAc: loadPduFixture('get-02-a-associate-ac.hex'),
};
const ALL_FIXTURES = Object.values(FIXTURES);
const PDATA_FIXTURES = [FIXTURES.echoPData, FIXTURES.storeCommand, FIXTURES.storeData];

// ---- a seeded generator ---------------------------------------------------------------------

/** mulberry32: a small, fast 32-bit generator; floats in [0, 1). */
type Rng = () => number;

function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}

/** The generator of input `index`: each input can be replayed alone. */
function rngFor(index: number): Rng {
  return mulberry32(Math.imul(SEED ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35));
}

function int(rng: Rng, low: number, high: number): number {
  return low + Math.floor(rng() * (high - low + 1));
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[int(rng, 0, items.length - 1)]!;
}

function chance(rng: Rng, probability: number): boolean {
  return rng() < probability;
}

function randomBytes(rng: Rng, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = int(rng, 0, 255);
  return bytes;
}

// ---- mutations --------------------------------------------------------------------------------

type Mutation = (rng: Rng, bytes: Buffer) => Buffer;

const MUTATIONS: Readonly<Record<string, Mutation>> = {
  flipBits: (rng, bytes) => {
    const out = Buffer.from(bytes);
    for (let n = int(rng, 1, 8); n > 0 && out.length > 0; n--) {
      out[int(rng, 0, out.length - 1)]! ^= 1 << int(rng, 0, 7);
    }
    return out;
  },
  /** Bit flips past the 12 bytes of PDU and PDV headers: reaches the DIMSE layer. */
  flipPayloadBits: (rng, bytes) => {
    const out = Buffer.from(bytes);
    if (out.length <= 12) return out;
    for (let n = int(rng, 1, 4); n > 0; n--) {
      out[int(rng, 12, out.length - 1)]! ^= 1 << int(rng, 0, 7);
    }
    return out;
  },
  truncate: (rng, bytes) => bytes.subarray(0, int(rng, 0, Math.max(0, bytes.length - 1))),
  pduLength: (rng, bytes) => {
    const out = Buffer.from(bytes);
    if (out.length < PDU_HEADER_LENGTH) return out;
    const actual = out.length - PDU_HEADER_LENGTH;
    const length = chance(rng, 0.7)
      ? Math.max(0, actual + int(rng, -16, 16))
      : int(rng, 0, 0xffffffff);
    out.writeUInt32BE(length, 2);
    return out;
  },
  /** A 16-bit length somewhere in the body: hits item, sub-item and UID lengths. */
  itemLength: (rng, bytes) => {
    const out = Buffer.from(bytes);
    if (out.length < PDU_HEADER_LENGTH + 2) return out;
    const offset = int(rng, PDU_HEADER_LENGTH, out.length - 2);
    const value = chance(rng, 0.7)
      ? Math.min(0xffff, Math.max(0, out.readUInt16BE(offset) + int(rng, -8, 8)))
      : int(rng, 0, 0xffff);
    out.writeUInt16BE(value, offset);
    return out;
  },
  duplicate: (rng, bytes) => {
    if (bytes.length === 0) return bytes;
    const start = int(rng, 0, bytes.length - 1);
    const slice = bytes.subarray(start, start + int(rng, 1, 64));
    const at = int(rng, 0, bytes.length);
    return Buffer.concat([bytes.subarray(0, at), slice, bytes.subarray(at)]);
  },
  shuffle: (rng, bytes) => {
    const out = Buffer.from(bytes);
    if (out.length < 2) return out;
    const start = int(rng, 0, out.length - 2);
    const end = Math.min(out.length, start + int(rng, 2, 32));
    for (let i = end - 1; i > start; i--) {
      const j = int(rng, start, i);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  },
  splice: (rng, bytes) => {
    const other = pick(rng, ALL_FIXTURES);
    return Buffer.concat([
      bytes.subarray(0, int(rng, 0, bytes.length)),
      other.subarray(int(rng, 0, other.length)),
    ]);
  },
};
const MUTATION_NAMES = Object.keys(MUTATIONS);

/** 1 to 3 mutations; then, often, the PDU-length made to fit so the decoder sees the damage. */
function mutate(rng: Rng, bytes: Buffer, names: string[]): Buffer {
  let out = bytes;
  for (let n = int(rng, 1, 3); n > 0; n--) {
    const name = pick(rng, MUTATION_NAMES);
    names.push(name);
    out = MUTATIONS[name]!(rng, out);
  }
  if (out.length >= PDU_HEADER_LENGTH && chance(rng, 0.6)) {
    out = Buffer.from(out);
    out.writeUInt32BE(out.length - PDU_HEADER_LENGTH, 2);
    names.push('fitLength');
  }
  return out;
}

// ---- inputs -----------------------------------------------------------------------------------

type Ending = 'end' | 'destroy' | 'reset' | 'await-server';

/** One connection's worth of input. */
interface FuzzInput {
  readonly index: number;
  readonly description: string;
  /** Sent first; the rest waits for its A-ASSOCIATE-AC. */
  readonly associate?: Buffer;
  readonly chunks: readonly Buffer[];
  readonly ending: Ending;
}

function randomPdu(rng: Rng): Buffer {
  const type = chance(rng, 0.85) ? int(rng, 1, 7) : int(rng, 0, 255);
  const body = randomBytes(rng, chance(rng, 0.3) ? 4 : int(rng, 0, 300));
  const header = Buffer.alloc(PDU_HEADER_LENGTH);
  header[0] = type;
  header.writeUInt32BE(chance(rng, 0.7) ? body.length : int(rng, 0, body.length + 64), 2);
  return Buffer.concat([header, body]);
}

/** A DIMSE command of random field values on context 1, whole in one P-DATA-TF. */
function randomCommandPData(rng: Rng): Buffer {
  const commandField = chance(rng, 0.8)
    ? pick(rng, Object.values(CommandField))
    : int(rng, 0, 0xffff);
  const command = encodeCommand({
    commandField,
    messageId: int(rng, 0, 3),
    ...(chance(rng, 0.5) && { messageIdBeingRespondedTo: int(rng, 0, 3) }),
    ...(chance(rng, 0.8) && {
      affectedSopClassUid: chance(rng, 0.7) ? SopClass.Verification : '1.2.3.4',
    }),
    ...(chance(rng, 0.3) && { status: int(rng, 0, 0xffff) }),
    hasDataset: chance(rng, 0.3),
  });
  const isLast = chance(rng, 0.9);
  const contextId = chance(rng, 0.9) ? 1 : int(rng, 0, 255);
  return Buffer.concat([encodePDataHeader(contextId, true, isLast, command.length), command]);
}

/** Splits `bytes` into 1 to 4 writes. */
function chunked(rng: Rng, bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  let rest = bytes;
  for (let n = int(rng, 0, 3); n > 0 && rest.length > 1; n--) {
    const cut = int(rng, 1, rest.length - 1);
    chunks.push(rest.subarray(0, cut));
    rest = rest.subarray(cut);
  }
  chunks.push(rest);
  return chunks;
}

function afterAssociation(rng: Rng, names: string[]): Buffer {
  const roll = rng();
  if (roll < 0.45) return mutate(rng, pick(rng, PDATA_FIXTURES), names);
  if (roll < 0.65) {
    names.push('command');
    return randomCommandPData(rng);
  }
  if (roll < 0.75) {
    // Two commands with one message ID in one write: the second is a duplicate invocation.
    names.push('twoEchoes');
    return Buffer.concat([FIXTURES.echoPData, FIXTURES.echoPData]);
  }
  if (roll < 0.85) {
    names.push('randomPdu');
    return randomPdu(rng);
  }
  const valid = pick(rng, [
    FIXTURES.echoPData,
    FIXTURES.releaseRq,
    FIXTURES.releaseRp,
    FIXTURES.abort,
    FIXTURES.echoRq,
  ]);
  names.push(`valid${valid[0]}`);
  return valid;
}

function generate(index: number): FuzzInput {
  const rng = rngFor(index);
  const names: string[] = [];
  let associate: Buffer | undefined;
  let payload: Buffer;
  const roll = rng();
  if (roll < 0.15) {
    names.push('randomPdu');
    payload = randomPdu(rng);
  } else if (roll < 0.2) {
    names.push('randomBytes');
    payload = randomBytes(rng, int(rng, 1, 200));
  } else if (roll < 0.6) {
    const fixture = pick(rng, ALL_FIXTURES);
    names.push(`fixture${ALL_FIXTURES.indexOf(fixture)}`);
    payload = mutate(rng, fixture, names);
  } else if (roll < 0.7) {
    names.push('sequence');
    const parts: Buffer[] = [];
    for (let n = int(rng, 2, 4); n > 0; n--) {
      const part = pick(rng, ALL_FIXTURES);
      parts.push(chance(rng, 0.5) ? mutate(rng, part, names) : part);
    }
    payload = Buffer.concat(parts);
  } else {
    associate = chance(rng, 0.85) ? FIXTURES.echoRq : FIXTURES.storeRq;
    names.push(associate === FIXTURES.echoRq ? 'echoAssociation' : 'storeAssociation');
    const parts: Buffer[] = [];
    for (let n = int(rng, 1, 3); n > 0; n--) parts.push(afterAssociation(rng, names));
    payload = Buffer.concat(parts);
  }
  const endingRoll = rng();
  const ending: Ending =
    endingRoll < 0.6
      ? 'end'
      : endingRoll < 0.75
        ? 'destroy'
        : endingRoll < 0.9
          ? 'reset'
          : 'await-server';
  return {
    index,
    description: `${names.join('+')} (${payload.length} bytes, ${ending})`,
    ...(associate !== undefined && { associate }),
    chunks: chunked(rng, payload),
    ending,
  };
}

// ---- a raw client that checks what the server says --------------------------------------------

/** A raw connection collecting the server's bytes. */
class FuzzClient {
  readonly socket: net.Socket;
  readonly #chunks: Buffer[] = [];
  readonly closed: Promise<void>;
  #isClosed = false;
  #wake: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#wake?.();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#isClosed = true;
        this.#wake?.();
        resolve();
      }),
    );
  }

  static connect(port: number): Promise<FuzzClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.off('error', reject);
        resolve(new FuzzClient(socket));
      });
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** The PDUs received so far, and the bytes of an incomplete one after them. */
  parse(): { pdus: Pdu[]; trailingBytes: number } {
    const framer = new PduFramer(() => 16 * 1024 * 1024);
    framer.push(Buffer.concat(this.#chunks));
    const pdus: Pdu[] = [];
    for (let bytes = framer.next(); bytes !== null; bytes = framer.next()) {
      pdus.push(decodePdu(bytes));
    }
    return { pdus, trailingBytes: framer.bufferedBytes };
  }

  /** True once an A-ASSOCIATE-AC arrived; false on anything else, on close or at the deadline. */
  async waitForAcceptance(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const [first] = this.parse().pdus;
      if (first !== undefined) return first.type === 'AAssociateAc';
      if (this.#isClosed || Date.now() > deadline) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Resolves true when the connection closed within `timeoutMs`. */
  async waitForClose(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([this.closed.then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** What the server sent breaks an invariant: the reason, or undefined. */
function checkServerOutput(client: FuzzClient, ending: Ending): string | undefined {
  let parsed: { pdus: Pdu[]; trailingBytes: number };
  try {
    parsed = client.parse();
  } catch (error) {
    return `the server sent a malformed PDU: ${String(error)}`;
  }
  const types = parsed.pdus.map((pdu) => pdu.type);
  const [first] = types;
  if (first !== undefined && !['AAssociateAc', 'AAssociateRj', 'AAbort'].includes(first)) {
    return `the server's first PDU is ${first}`;
  }
  // In Sta13 the server may only repeat its A-ABORT (AA-7, PS3.8 Table 9-10).
  const final = types.findIndex((type) => type === 'AAbort' || type === 'AAssociateRj');
  const after = final < 0 ? [] : types.slice(final + 1).filter((type) => type !== 'AAbort');
  if (after.length > 0) return `the server sent ${after.join(', ')} after ${types[final]}`;
  // When we ended the connection ourselves, the server's last PDU may have been cut short.
  if (ending === 'await-server' && parsed.trailingBytes > 0) {
    return `the server closed after ${parsed.trailingBytes} bytes of an incomplete PDU`;
  }
  return undefined;
}

/** Sends one input; resolves with a broken invariant, or undefined. */
async function run(input: FuzzInput, port: number): Promise<string | undefined> {
  const client = await FuzzClient.connect(port);
  try {
    if (input.associate !== undefined) {
      client.socket.write(input.associate);
      // Rejected (too many associations) or closed: the rest would not reach Sta6; end here.
      if (!(await client.waitForAcceptance(5_000))) {
        client.socket.end();
        if (!(await client.waitForClose(SERVER_CLOSE_DEADLINE_MS))) return 'not closed after RJ';
        return checkServerOutput(client, 'await-server');
      }
    }
    for (const chunk of input.chunks) client.socket.write(chunk);
    switch (input.ending) {
      case 'end':
        client.socket.end();
        break;
      case 'destroy':
        client.socket.destroy();
        break;
      case 'reset':
        client.socket.resetAndDestroy();
        break;
      case 'await-server':
        break;
      default: {
        const unreachable: never = input.ending;
        throw new Error(`unknown ending ${String(unreachable)}`);
      }
    }
    if (!(await client.waitForClose(SERVER_CLOSE_DEADLINE_MS))) {
      return `the server did not close the connection within ${SERVER_CLOSE_DEADLINE_MS} ms`;
    }
    return checkServerOutput(client, input.ending);
  } finally {
    client.socket.destroy();
  }
}

describe('fuzzing the live server', () => {
  let test: TestServer;

  beforeAll(async () => {
    test = await startTestServer({
      aeTitle: AE_TITLE,
      maxAssociations: 16,
      // Short timers: what the server has to wait out, it waits out quickly.
      timeouts: { artimMs: 200, networkMs: 1_000, acseMs: 1_000, dimseMs: 1_000 },
    });
  });

  afterAll(async () => {
    await test?.stop();
  });

  it('survives random and mutated PDUs: every connection closed, C-ECHO served, no error logged', async () => {
    console.log(
      `fuzz seed ${SEED}: replay with FUZZ_SEED=${SEED} FUZZ_INPUTS=${INPUT_COUNT} npx vitest run test/integration/fuzz.test.ts`,
    );
    const stopAt = Date.now() + TIME_BUDGET_MS;
    const failures: string[] = [];
    // What escapes to the process (it would end a production server) is blamed on the inputs in
    // flight and those just finished: one of them is the culprit.
    const inFlight = new Set<FuzzInput>();
    const recent: FuzzInput[] = [];
    const suspects = () =>
      [...inFlight, ...recent].map((input) => `#${input.index} ${input.description}`).join('; ');
    const onEscape = (reason: unknown) =>
      failures.push(`escaped to the process: ${String(reason)}; suspects: ${suspects()}`);
    process.on('unhandledRejection', onEscape);
    process.on('uncaughtException', onEscape);
    let next = FIRST_INPUT;
    const lane = async () => {
      while (next < FIRST_INPUT + INPUT_COUNT && Date.now() < stopAt) {
        const input = generate(next++);
        inFlight.add(input);
        const failure = await run(input, test.port).catch((error: unknown) => String(error));
        inFlight.delete(input);
        recent.push(input);
        if (recent.length > PARALLEL_CONNECTIONS) recent.shift();
        if (failure !== undefined)
          failures.push(`#${input.index} ${input.description}: ${failure}`);
      }
    };
    try {
      await Promise.all(Array.from({ length: PARALLEL_CONNECTIONS }, lane));
      console.log(`fuzz seed ${SEED}: ${next - FIRST_INPUT} inputs sent`);
      await waitFor(
        () => test.server.openConnections === 0 && test.server.activeAssociations === 0,
        SERVER_CLOSE_DEADLINE_MS,
        'every connection and association to close',
      ).catch((error: unknown) => {
        failures.push(
          `${String(error)}: ${test.server.openConnections} connections, ${test.server.activeAssociations} associations open`,
        );
      });
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', onEscape);
      process.off('uncaughtException', onEscape);
    }

    const result = await echo({
      host: '127.0.0.1',
      port: test.port,
      callingAeTitle: 'ECHOSCU',
      calledAeTitle: AE_TITLE,
    });
    expect(result.status).toBe(0);

    const errors = test.logs.filter((line) => line.level >= 50);
    for (const line of errors) console.error(`seed ${SEED}: error-level log line`, line);
    for (const failure of failures) console.error(`seed ${SEED}: ${failure}`);
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(errors, `seed ${SEED}: log lines at error level`).toEqual([]);
    expect(next).toBeGreaterThan(FIRST_INPUT);
  }, 60_000);
});
