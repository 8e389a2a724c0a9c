/**
 * Cuts whole PDUs out of a TCP byte stream, however the stream is split or packed.
 *
 * Layer: network/pdu. Pure: no I/O. The announced length of a PDU is checked against the limit
 * for its type as soon as its 6-byte header is in, before anything is buffered for it, so that a
 * peer cannot make us allocate what it announces. The bytes live in one buffer per framer,
 * reused, which the transport can read into directly (see association/read-into.ts): a PDU is
 * returned as a view into it, never copied but to move a partly received one to the front.
 */

import { DicomServerError } from '../../errors.js';
import { AbortReason, PDU_HEADER_LENGTH, PduType } from './types.js';

const KNOWN_TYPES = new Set<number>(Object.values(PduType));

/** The largest PDU body length accepted for a PDU type, given the association's state. */
export type PduLengthLimit = (pduType: number) => number;

/** Free space a read is given at least (and what a new framer starts with). */
const MIN_READ_BYTES = 64 * 1024;

/** A buffer larger than this (grown for PDUs of megabytes) is not kept once it is empty. */
const MAX_KEPT_BYTES = 4 * 1024 * 1024;

/**
 * Incremental PDU reader. Bytes come in two ways: `push` copies a received chunk in, or the
 * transport reads straight into `readTarget()` and reports with `commitRead`. `next()` returns
 * whole PDUs as views into the framer's own buffer, which is reused: a PDU is valid until the
 * next `push` or `readTarget`, so whoever keeps any of its bytes must copy them.
 */
export class PduFramer {
  readonly #limit: PduLengthLimit;
  #buffer: Buffer;
  /** First byte not yet returned as a PDU. */
  #start = 0;
  /** One past the last byte received. */
  #end = 0;
  /** Length (header included) of the PDU at `#start`, once its header is in and checked. */
  #expected = 0;

  constructor(limit: PduLengthLimit) {
    this.#limit = limit;
    this.#buffer = Buffer.allocUnsafeSlow(MIN_READ_BYTES);
  }

  /** Bytes received and not yet returned as a PDU. */
  get bufferedBytes(): number {
    return this.#end - this.#start;
  }

  /** Adds bytes received from the transport (copied: `chunk` may be reused afterwards). */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#makeRoom(chunk.length);
    chunk.copy(this.#buffer, this.#end);
    this.#end += chunk.length;
  }

  /**
   * Free space at the end of the buffer for the transport to read into (at least 64 KiB);
   * report what was read with `commitRead`.
   */
  readTarget(): Buffer {
    this.#makeRoom(MIN_READ_BYTES);
    return this.#buffer.subarray(this.#end);
  }

  /** `bytes` were read into the last `readTarget()` (nothing was pushed since). */
  commitRead(bytes: number): void {
    this.#end += bytes;
  }

  /** Drops every byte received and not yet returned (what follows a malformed PDU). */
  discard(): void {
    this.#start = this.#end;
    this.#expected = 0;
  }

  /**
   * The next complete PDU (header included), or null when more bytes are needed. Throws
   * ERR_PDU_UNKNOWN_TYPE or ERR_PDU_TOO_LARGE as soon as the header shows either.
   */
  next(): Buffer | null {
    const available = this.#end - this.#start;
    if (this.#expected === 0) {
      if (available < PDU_HEADER_LENGTH) return null;
      this.#expected = PDU_HEADER_LENGTH + this.#checkHeader();
    }
    const total = this.#expected;
    if (available < total) return null;
    const pdu = this.#buffer.subarray(this.#start, this.#start + total);
    // Bytes are never moved here, only in `push` and `readTarget`: the transport may be
    // reading into the space given last while PDUs are taken (a paused association resumed).
    this.#start += total;
    this.#expected = 0;
    return pdu;
  }

  /** Checks the header at `#start`; returns the PDU's announced body length. */
  #checkHeader(): number {
    const type = this.#buffer[this.#start]!;
    const length = this.#buffer.readUInt32BE(this.#start + 2);
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
    return length;
  }

  /**
   * Makes `free` bytes of room after `#end`: the bytes not yet returned move to the front, or
   * to a larger buffer. The buffer grows with what was received, never with what a header
   * announces: a peer cannot make us allocate by announcing a large PDU. Once empty, a buffer
   * grown for very large PDUs is given up.
   */
  #makeRoom(free: number): void {
    const pending = this.#end - this.#start;
    if (pending === 0) {
      this.#start = 0;
      this.#end = 0;
      if (this.#buffer.length > MAX_KEPT_BYTES)
        this.#buffer = Buffer.allocUnsafeSlow(MIN_READ_BYTES);
    }
    const buffer = this.#buffer;
    if (buffer.length - this.#end >= free) return;
    if (buffer.length >= pending + free) {
      buffer.copyWithin(0, this.#start, this.#end);
    } else {
      // Twice the need: a PDU arriving over many reads is moved a few times, not at each.
      const larger = Buffer.allocUnsafeSlow(2 * (pending + free));
      buffer.copy(larger, 0, this.#start, this.#end);
      this.#buffer = larger;
    }
    this.#start = 0;
    this.#end = pending;
  }
}
