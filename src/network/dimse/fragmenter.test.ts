/**
 * Checks that messages are cut into PDV fragments that fit the peer's maximum PDU length
 * (PS3.8 §9.3.5, Annex D.1): every fragment but the last is full, only the last is flagged
 * last, the bytes come out unchanged, and a stream fed in chunks of any size gives exactly the
 * fragments of the same bytes as one buffer.
 *
 * Layer: network/dimse (unit test).
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Fragment,
  fragmentBuffer,
  fragmentStream,
  maxFragmentLength,
  UNLIMITED_FRAGMENT_LENGTH,
} from './fragmenter.js';

/** Odd and awkward maximum PDU lengths, each with the largest (even) fragment it allows. */
const ODD_MAX_PDU_LENGTHS: readonly [number, number][] = [
  [4097, 4090],
  [4096 + 1023, 5112],
  [16385, 16378],
  [7, 2],
];

/** Feeds `bytes` as chunks of the given sizes (cycled), with an empty chunk now and then. */
async function* chunked(bytes: Buffer, sizes: readonly number[]): AsyncGenerator<Buffer> {
  let offset = 0;
  for (let i = 0; offset < bytes.length; i += 1) {
    const size = sizes[i % sizes.length]!;
    yield bytes.subarray(offset, offset + size);
    offset += size;
  }
}

async function collect(fragments: AsyncIterable<Fragment>): Promise<Fragment[]> {
  const out: Fragment[] = [];
  for await (const fragment of fragments) out.push(fragment);
  return out;
}

/** Every fragment within `max`, all but the last full, only the last flagged, bytes unchanged. */
function expectWellCut(fragments: readonly Fragment[], bytes: Buffer, max: number): void {
  expect(fragments.length).toBe(Math.max(1, Math.ceil(bytes.length / max)));
  for (const [i, fragment] of fragments.entries()) {
    const isLast = i === fragments.length - 1;
    expect(fragment.isLast).toBe(isLast);
    expect(fragment.data.length).toBeLessThanOrEqual(max);
    if (!isLast) expect(fragment.data.length).toBe(max);
    else if (bytes.length > 0) expect(fragment.data.length).toBeGreaterThan(0);
  }
  expect(Buffer.concat(fragments.map((f) => f.data)).equals(bytes)).toBe(true);
}

describe('maxFragmentLength', () => {
  it.each(ODD_MAX_PDU_LENGTHS)('leaves room for the 6-byte PDV header in %d', (pdu, fragment) => {
    expect(maxFragmentLength(pdu)).toBe(fragment);
  });

  it('uses a large fragment when the peer announced no limit (0)', () => {
    expect(maxFragmentLength(0)).toBe(UNLIMITED_FRAGMENT_LENGTH);
  });
});

describe('fragmentBuffer', () => {
  it.each(ODD_MAX_PDU_LENGTHS)('cuts up to 100 kB for a peer maximum of %d', (pdu) => {
    const max = maxFragmentLength(pdu);
    const bytes = randomBytes(Math.min(100_000, max * 1000 + 3));
    const fragments = [...fragmentBuffer(bytes, max)];
    expectWellCut(fragments, bytes, max);
  });

  it('gives views into the buffer, not copies', () => {
    const bytes = randomBytes(10_000);
    for (const fragment of fragmentBuffer(bytes, 4091)) {
      expect(fragment.data.buffer).toBe(bytes.buffer);
    }
  });

  it('cuts an exact multiple of the fragment size into full fragments, the last one flagged', () => {
    const bytes = randomBytes(4091 * 3);
    const fragments = [...fragmentBuffer(bytes, 4091)];
    expect(fragments.map((f) => [f.data.length, f.isLast])).toEqual([
      [4091, false],
      [4091, false],
      [4091, true],
    ]);
    expectWellCut(fragments, bytes, 4091);
  });

  it('gives one fragment for a message of exactly one fragment size', () => {
    const bytes = randomBytes(4091);
    expect([...fragmentBuffer(bytes, 4091)].map((f) => [f.data.length, f.isLast])).toEqual([
      [4091, true],
    ]);
  });

  it('gives one empty last fragment for an empty buffer', () => {
    expect([...fragmentBuffer(Buffer.alloc(0), 4091)]).toEqual([
      { data: Buffer.alloc(0), isLast: true },
    ]);
  });
});

describe('fragmentStream', () => {
  it.each(ODD_MAX_PDU_LENGTHS)(
    'cuts a stream fed in random chunks like the whole buffer, for a maximum of %d',
    async (pdu) => {
      const max = maxFragmentLength(pdu);
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 5 * max + 3 }),
          fc.array(fc.integer({ min: 0, max: 3 * max }), { minLength: 1, maxLength: 8 }),
          async (length, sizes) => {
            const bytes = randomBytes(length);
            // A cycle of only empty chunks would never end: give it one byte at least.
            const usable = sizes.some((s) => s > 0) ? sizes : [...sizes, 1];
            const fromStream = await collect(fragmentStream(chunked(bytes, usable), max));
            const fromBuffer = [...fragmentBuffer(bytes, max)];
            expect(fromStream.map((f) => f.isLast)).toEqual(fromBuffer.map((f) => f.isLast));
            expect(fromStream.map((f) => f.data.toString('hex'))).toEqual(
              fromBuffer.map((f) => f.data.toString('hex')),
            );
            expectWellCut(fromStream, bytes, max);
          },
        ),
        { numRuns: 100 },
      );
    },
  );

  it('cuts an exact multiple of the fragment size without a trailing empty fragment', async () => {
    const bytes = randomBytes(4091 * 4);
    for (const sizes of [[4091], [1], [4090, 2], [4091 * 4], [8183, 1]]) {
      const fragments = await collect(fragmentStream(chunked(bytes, sizes), 4091));
      expect(fragments.map((f) => [f.data.length, f.isLast])).toEqual([
        [4091, false],
        [4091, false],
        [4091, false],
        [4091, true],
      ]);
      expectWellCut(fragments, bytes, 4091);
    }
  });

  it('flags the last fragment only once the stream has ended', async () => {
    // The source holds back its end: the full fragment it has sent so far must not be flagged last.
    let release: (() => void) | undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const bytes = randomBytes(4091);
    async function* source(): AsyncGenerator<Buffer> {
      yield bytes;
      await held;
    }
    const iterator = fragmentStream(source(), 4091)[Symbol.asyncIterator]();
    const first = iterator.next();
    let isSettled = false;
    void first.then(() => {
      isSettled = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(isSettled).toBe(false);
    release!();
    expect(await first).toEqual({ done: false, value: { data: bytes, isLast: true } });
    expect((await iterator.next()).done).toBe(true);
  });

  it('gives one empty last fragment for a stream without bytes', async () => {
    async function* nothing(): AsyncGenerator<Buffer> {}
    async function* empties(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(0);
      yield Buffer.alloc(0);
    }
    for (const source of [nothing(), empties()]) {
      expect(await collect(fragmentStream(source, 4091))).toEqual([
        { data: Buffer.alloc(0), isLast: true },
      ]);
    }
  });
});
