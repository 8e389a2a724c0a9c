/**
 * Checks `PduFramer`: a stream of DCMTK-recorded PDUs gives the same PDUs however it is cut into
 * chunks or read into the framer's buffer, pushed chunks are copied, PDUs are views into the
 * framer's own buffer; a header announcing too much or an unknown type throws as soon as the
 * header is in, before any body is buffered.
 *
 * Layer: network/pdu (unit test).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadPduFixture } from '../../../test/helpers/hex-fixture.js';
import { DicomServerError } from '../../errors.js';
import { PduFramer, type PduLengthLimit } from './framer.js';
import { AbortReason, PDU_HEADER_LENGTH, PduType } from './types.js';

/** The echo exchange, a large data set fragment and a C-STORE-RQ, both directions interleaved. */
const PDUS = [
  'echo-01-a-associate-rq.hex',
  'echo-02-a-associate-ac.hex',
  'echo-03-p-data-tf-c-echo-rq.hex',
  'echo-04-p-data-tf-c-echo-rsp.hex',
  'store-03-p-data-tf-c-store-rq.hex',
  'store-06-p-data-tf-data-set-last.hex',
  'echo-05-a-release-rq.hex',
  'echo-06-a-release-rp.hex',
  'abort-05-a-abort.hex',
].map(loadPduFixture);
const STREAM = Buffer.concat(PDUS);
/** The PDUs as hex: comparing strings is fast, and a failure shows a readable diff. */
const PDUS_HEX = PDUS.map((pdu) => pdu.toString('hex'));

const GENEROUS: PduLengthLimit = () => 1 << 20;

/**
 * Pushes each chunk, overwritten right after (the transport reuses its buffers), and takes
 * every PDU that is complete after it, as hex (a PDU is valid only until the next push).
 */
function frame(chunks: readonly Buffer[], limit: PduLengthLimit = GENEROUS): string[] {
  const framer = new PduFramer(limit);
  const pdus: string[] = [];
  for (const chunk of chunks) {
    const reused = Buffer.from(chunk);
    framer.push(reused);
    reused.fill(0xab);
    for (let pdu = framer.next(); pdu !== null; pdu = framer.next()) pdus.push(pdu.toString('hex'));
  }
  expect(framer.bufferedBytes).toBe(0);
  return pdus;
}

/** As `frame`, but the bytes are read into `readTarget()`, at most `sizes[i]` at a time. */
function frameReadInto(bytes: Buffer, sizes: readonly number[]): string[] {
  const framer = new PduFramer(GENEROUS);
  const pdus: string[] = [];
  let offset = 0;
  for (let i = 0; offset < bytes.length; i += 1) {
    const target = framer.readTarget();
    const n = Math.min(sizes[i % sizes.length]!, target.length, bytes.length - offset);
    bytes.copy(target, 0, offset, offset + n);
    framer.commitRead(n);
    offset += n;
    for (let pdu = framer.next(); pdu !== null; pdu = framer.next()) pdus.push(pdu.toString('hex'));
  }
  expect(framer.bufferedBytes).toBe(0);
  return pdus;
}

/** `bytes` cut at the given offsets (sorted, duplicates give empty chunks). */
function cutAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const bounds = [0, ...[...offsets].sort((a, b) => a - b), bytes.length];
  return bounds.slice(1).map((end, index) => bytes.subarray(bounds[index], end));
}

/** `bytes` cut into chunks of `size` bytes (the last one shorter). */
function chunksOf(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += size) {
    chunks.push(bytes.subarray(start, start + size));
  }
  return chunks;
}

/** The error `framer.next()` throws; fails the test if it throws none or another kind. */
function nextError(framer: PduFramer): DicomServerError {
  try {
    framer.next();
  } catch (error) {
    if (error instanceof DicomServerError) return error;
    throw error;
  }
  throw new Error('next() did not throw');
}

/** A bare PDU header: type, reserved, 32-bit length. */
function header(type: number, length: number): Buffer {
  const bytes = Buffer.alloc(PDU_HEADER_LENGTH);
  bytes[0] = type;
  bytes.writeUInt32BE(length, 2);
  return bytes;
}

describe('PduFramer on a recorded stream', () => {
  it('returns every PDU when the stream arrives in one chunk', () => {
    expect(frame([STREAM])).toEqual(PDUS_HEX);
  });

  it('returns every PDU when the stream arrives one byte at a time', () => {
    expect(frame(chunksOf(STREAM, 1))).toEqual(PDUS_HEX);
  });

  it.each([2, 3, 5, 7, 13, 211, 4099])('returns every PDU from chunks of %i bytes', (size) => {
    expect(frame(chunksOf(STREAM, size))).toEqual(PDUS_HEX);
  });

  it('returns every PDU at random splits', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: STREAM.length }), { maxLength: 60 }),
        (offsets) => {
          expect(frame(cutAt(STREAM, offsets))).toEqual(PDUS_HEX);
        },
      ),
      { seed: 4242, numRuns: 300 },
    );
  });

  it('ignores empty chunks', () => {
    const chunks = [Buffer.alloc(0), STREAM.subarray(0, 3), Buffer.alloc(0), STREAM.subarray(3)];
    expect(frame(chunks)).toEqual(PDUS_HEX);
  });
});

describe('PduFramer buffers', () => {
  it('returns PDUs as views into its own buffer, not into the chunk pushed', () => {
    const chunk = Buffer.concat([PDUS[0]!, PDUS[1]!, PDUS[2]!.subarray(0, 10)]);
    const framer = new PduFramer(GENEROUS);
    framer.push(chunk);
    const first = framer.next()!;
    const second = framer.next()!;
    expect(framer.next()).toBeNull();
    expect(first.buffer).not.toBe(chunk.buffer);
    expect(second.buffer).toBe(first.buffer);
    expect(second.byteOffset).toBe(first.byteOffset + PDUS[0]!.length);
    expect([first, second]).toEqual([PDUS[0], PDUS[1]]);
  });

  it('gives the same PDUs when the transport reads into it, however the reads are cut', () => {
    for (const sizes of [[1], [7, 300, 2], [65536], [4096, 1, 100_000]]) {
      expect(frameReadInto(STREAM, sizes)).toEqual(PDUS_HEX);
    }
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 8 }),
        (sizes) => {
          expect(frameReadInto(STREAM, sizes)).toEqual(PDUS_HEX);
        },
      ),
      { seed: 2424, numRuns: 100 },
    );
  });

  it('grows with the bytes received, not with the length a header announces', () => {
    const framer = new PduFramer(GENEROUS);
    expect(framer.readTarget().length).toBeGreaterThanOrEqual(65536);
    const big = 1_000_000;
    framer.push(header(PduType.PDataTf, big));
    expect(framer.next()).toBeNull();
    // Six bytes announcing a megabyte make no megabyte-sized buffer.
    expect(framer.readTarget().length).toBeLessThan(256 * 1024);
    const body = Buffer.alloc(big, 7);
    for (let offset = 0; offset < big; ) {
      const target = framer.readTarget();
      expect(target.length).toBeGreaterThanOrEqual(65536);
      const n = Math.min(target.length, big - offset);
      body.copy(target, 0, offset, offset + n);
      framer.commitRead(n);
      offset += n;
    }
    const pdu = framer.next()!;
    expect(pdu.length).toBe(PDU_HEADER_LENGTH + big);
    expect(pdu.subarray(PDU_HEADER_LENGTH).equals(body)).toBe(true);
  });

  it('drops what it holds when told to discard', () => {
    const framer = new PduFramer(GENEROUS);
    framer.push(STREAM.subarray(0, 50));
    framer.discard();
    expect(framer.bufferedBytes).toBe(0);
    framer.push(PDUS[1]!);
    expect(framer.next()).toEqual(PDUS[1]);
  });

  it('joins a PDU spanning chunks into one new buffer', () => {
    const pdu = PDUS[0]!;
    const framer = new PduFramer(GENEROUS);
    framer.push(pdu.subarray(0, 100));
    expect(framer.next()).toBeNull();
    framer.push(pdu.subarray(100));
    const joined = framer.next()!;
    expect(joined).toEqual(pdu);
    expect(joined.buffer).not.toBe(pdu.buffer);
  });

  it('counts bytes received and not yet returned', () => {
    const framer = new PduFramer(GENEROUS);
    expect(framer.bufferedBytes).toBe(0);
    framer.push(STREAM.subarray(0, 4));
    expect(framer.bufferedBytes).toBe(4);
    expect(framer.next()).toBeNull();
    expect(framer.bufferedBytes).toBe(4);
    framer.push(Buffer.alloc(0));
    expect(framer.bufferedBytes).toBe(4);
    const upToThird = PDUS[0]!.length + PDUS[1]!.length + 7;
    framer.push(STREAM.subarray(4, upToThird));
    expect(framer.bufferedBytes).toBe(upToThird);
    expect(framer.next()).toEqual(PDUS[0]);
    expect(framer.bufferedBytes).toBe(upToThird - PDUS[0]!.length);
    expect(framer.next()).toEqual(PDUS[1]);
    expect(framer.bufferedBytes).toBe(7);
    expect(framer.next()).toBeNull();
    expect(framer.bufferedBytes).toBe(7);
  });
});

describe('PduFramer limits', () => {
  const P_DATA_LIMIT = 16384;
  const limit: PduLengthLimit = (type) => (type === PduType.PDataTf ? P_DATA_LIMIT : 1 << 20);

  it('throws ERR_PDU_TOO_LARGE from the header alone, before the body arrives', () => {
    const framer = new PduFramer(limit);
    framer.push(header(PduType.PDataTf, P_DATA_LIMIT + 1));
    const error = nextError(framer);
    expect(error.code).toBe('ERR_PDU_TOO_LARGE');
    expect(error.details).toMatchObject({
      pduType: PduType.PDataTf,
      length: P_DATA_LIMIT + 1,
      limit: P_DATA_LIMIT,
      abortReason: AbortReason.InvalidPduParameterValue,
    });
  });

  it('throws ERR_PDU_TOO_LARGE once a header split across chunks is complete', () => {
    const framer = new PduFramer(limit);
    const bytes = header(PduType.PDataTf, 0xffffffff);
    framer.push(bytes.subarray(0, 3));
    expect(framer.next()).toBeNull();
    framer.push(bytes.subarray(3));
    expect(nextError(framer).code).toBe('ERR_PDU_TOO_LARGE');
  });

  it('waits for a PDU of exactly the limit', () => {
    const framer = new PduFramer(limit);
    framer.push(header(PduType.PDataTf, P_DATA_LIMIT));
    expect(framer.next()).toBeNull();
  });

  it('asks the limit for the type in the header', () => {
    const asked: number[] = [];
    const framer = new PduFramer((type) => {
      asked.push(type);
      return 1 << 20;
    });
    framer.push(PDUS[0]!);
    framer.next();
    expect(asked).toEqual([PduType.AAssociateRq]);
  });

  it.each(
    [0x00, 0x08, 0x10, 0xff].map((type) => ({ type, hex: type.toString(16).padStart(2, '0') })),
  )('throws ERR_PDU_UNKNOWN_TYPE at once for type $hex', ({ type }) => {
    const framer = new PduFramer(limit);
    framer.push(header(type, 4));
    const error = nextError(framer);
    expect(error.code).toBe('ERR_PDU_UNKNOWN_TYPE');
    expect(error.details).toMatchObject({
      pduType: type,
      abortReason: AbortReason.UnrecognizedPdu,
    });
  });

  it('reports an unknown type before a length over the limit', () => {
    const framer = new PduFramer(limit);
    framer.push(header(0x09, 0xffffffff));
    expect(nextError(framer).code).toBe('ERR_PDU_UNKNOWN_TYPE');
  });
});
