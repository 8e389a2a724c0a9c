/**
 * Cuts whole PDUs out of a TCP byte stream, however the stream is split or packed.
 *
 * Layer: network/pdu. Pure: no I/O. The announced length of a PDU is checked against the limit
 * for its type as soon as its 6-byte header is in, before anything is buffered for it, so that a
 * peer cannot make us allocate what it announces. A PDU lying inside one received chunk is
 * returned as a view into that chunk; one spanning chunks is joined once.
 */

import { DicomServerError } from '../../errors.js';
import { AbortReason, PDU_HEADER_LENGTH, PduType } from './types.js';

const KNOWN_TYPES = new Set<number>(Object.values(PduType));

/** The largest PDU body length accepted for a PDU type, given the association's state. */
export type PduLengthLimit = (pduType: number) => number;

/** Incremental PDU reader: push received chunks, then take whole PDUs with `next()`. */
export class PduFramer {
  readonly #limit: PduLengthLimit;
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(limit: PduLengthLimit) {
    this.#limit = limit;
  }

  /** Bytes received and not yet returned as a PDU. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Adds bytes received from the transport. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /**
   * The next complete PDU (header included), or null when more bytes are needed. Throws
   * ERR_PDU_UNKNOWN_TYPE or ERR_PDU_TOO_LARGE as soon as the header shows either.
   */
  next(): Buffer | null {
    if (this.#buffered < PDU_HEADER_LENGTH) return null;
    const header = this.#peek(PDU_HEADER_LENGTH);
    const type = header[0]!;
    const length = header.readUInt32BE(2);
    if (!KNOWN_TYPES.has(type)) {
      throw new DicomServerError(
        'ERR_PDU_UNKNOWN_TYPE',
        `unknown PDU type 0x${type.toString(16)}`,
        {
          pduType: type,
          offset: 0,
          abortReason: AbortReason.UnrecognizedPdu,
        },
      );
    }
    const limit = this.#limit(type);
    if (length > limit) {
      throw new DicomServerError('ERR_PDU_TOO_LARGE', `PDU of ${length} bytes exceeds ${limit}`, {
        pduType: type,
        length,
        limit,
        offset: 2,
        abortReason: AbortReason.InvalidPduParameterValue,
      });
    }
    const total = PDU_HEADER_LENGTH + length;
    if (this.#buffered < total) return null;
    return this.#take(total);
  }

  /** The first `n` bytes without consuming them (n is small: a header). */
  #peek(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first;
    const parts: Buffer[] = [];
    let have = 0;
    for (const chunk of this.#chunks) {
      parts.push(chunk);
      have += chunk.length;
      if (have >= n) break;
    }
    return Buffer.concat(parts, have);
  }

  /** Removes and returns the first `n` bytes; a view when they lie in one chunk. */
  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    this.#buffered -= n;
    if (first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const want = n - filled;
      if (chunk.length <= want) {
        chunk.copy(out, filled);
        filled += chunk.length;
        this.#chunks.shift();
      } else {
        chunk.copy(out, filled, 0, want);
        filled += want;
        this.#chunks[0] = chunk.subarray(want);
      }
    }
    return out;
  }
}
