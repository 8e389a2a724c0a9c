/**
 * A streaming data set reader (PS3.5 §7): bytes in, in chunks of any size, tokens out
 * (elements, sequences and items, encapsulated fragments) in the order of the encoding.
 *
 * Layer: dicom. Pure: no I/O. Bounded whatever the input: nesting depth is capped, every
 * declared length is checked against the container holding it, and no buffer is ever sized by a
 * declared length: values are collected as their bytes arrive, only when wanted and only up to
 * `maxValueLength`; other values are skipped as they stream past.
 */

import { DicomServerError } from '../../errors.js';
import { implicitVrOf } from '../dictionary.js';
import { hasLongLength, type Vr, vrAt } from '../vr.js';

/** Tag of Pixel Data, whose undefined length means encapsulated fragments (PS3.5 §A.4). */
const PIXEL_DATA = 0x7fe00010;
const ITEM = 0xfffee000;
const ITEM_DELIMITATION = 0xfffee00d;
const SEQUENCE_DELIMITATION = 0xfffee0dd;
const UNDEFINED_LENGTH = 0xffffffff;

/** One token of a data set. Offsets are in bytes from the start of the data set. */
export type DatasetToken =
  | {
      readonly type: 'element';
      readonly tag: number;
      readonly vr: Vr;
      readonly length: number;
      readonly offset: number;
      /** The value's bytes, when it was collected (see `collect` and `maxValueLength`). */
      readonly value?: Buffer;
    }
  | {
      readonly type: 'sequence-start';
      readonly tag: number;
      /** SQ, or UN for a sequence of unknown VR encoded in Implicit VR (PS3.5 §6.2.2). */
      readonly vr: Vr;
      /** undefined for undefined length (ended by a delimiter). */
      readonly length: number | undefined;
      readonly offset: number;
    }
  | { readonly type: 'sequence-end'; readonly hasDelimiter: boolean }
  | { readonly type: 'item-start'; readonly length: number | undefined; readonly offset: number }
  | { readonly type: 'item-end'; readonly hasDelimiter: boolean }
  | {
      readonly type: 'fragments-start';
      readonly tag: number;
      readonly vr: Vr;
      readonly offset: number;
    }
  | {
      readonly type: 'fragment';
      readonly length: number;
      readonly offset: number;
      readonly value?: Buffer;
    }
  | { readonly type: 'fragments-end' };

/** How the data set is encoded and what the reader should keep. */
export interface DatasetReaderOptions {
  readonly isExplicitVr: boolean;
  readonly isLittleEndian: boolean;
  readonly onToken: (token: DatasetToken) => void;
  /** Which values to collect (default: all that fit `maxValueLength`). Depth 0 is the top level. */
  readonly collect?: (tag: number, vr: Vr, depth: number) => boolean;
  /** Longest value collected; longer ones are skipped. Default 1 MiB. */
  readonly maxValueLength?: number;
  /** Whether to collect encapsulated fragments (default false: skipped). */
  readonly collectFragments?: boolean;
  /** Deepest sequence nesting accepted. Default 64. */
  readonly maxDepth?: number;
  /** Stop reading, without error, at the first element for which this is true. */
  readonly stopAt?: (tag: number, depth: number) => boolean;
  /**
   * Receives the bytes of each value that is skipped rather than collected (elements and
   * fragments), in order, right after that value's token, as views of the input in pieces of
   * any size. Without it skipped bytes are dropped. Lets a consumer stream large values (Pixel
   * Data) on without the reader ever holding one whole. With `isInputTransient` the views are
   * valid only during the call: a consumer keeping bytes copies them.
   */
  readonly onSkippedValue?: (bytes: Buffer) => void;
  /**
   * Whether the caller reuses a chunk's memory once `push` returns (default false: the reader
   * may keep views of pushed chunks, and emitted values may be views of them). When true, the
   * reader keeps no reference into a chunk after `push` returns: collected values are copies,
   * and the few bytes of a header split across pushes are copied. Skipped values are still
   * handed on as views (see `onSkippedValue`), never copied.
   */
  readonly isInputTransient?: boolean;
}

interface Frame {
  readonly kind: 'sequence' | 'item' | 'fragments';
  /** Absolute offset where the container ends, or undefined for undefined length. */
  readonly end: number | undefined;
  /** Encoding of the container's contents (a UN sequence switches to Implicit VR LE). */
  readonly isExplicitVr: boolean;
  readonly isLittleEndian: boolean;
}

type Pending =
  | {
      readonly kind: 'collect';
      readonly token: 'element' | 'fragment';
      readonly tag: number;
      readonly vr: Vr;
      readonly offset: number;
      readonly length: number;
      readonly parts: Buffer[];
      got: number;
    }
  | { readonly kind: 'skip'; remaining: number };

function malformed(
  message: string,
  offset: number,
  details: Record<string, number | string> = {},
): never {
  throw new DicomServerError('ERR_DATASET_MALFORMED', `${message} at byte ${offset}`, {
    offset,
    ...details,
  });
}

/** Streaming data set tokenizer; see the module comment. */
export class DatasetReader {
  readonly #options: DatasetReaderOptions;
  readonly #maxValueLength: number;
  readonly #maxDepth: number;
  readonly #isInputTransient: boolean;
  readonly #stack: Frame[] = [];
  /** The input not yet consumed: `#chunks`, less the first `#head` bytes of the first. */
  #chunks: Buffer[] = [];
  #head = 0;
  #available = 0;
  /** Where `#peek` puts a header: each view or copy of one would be a new object. */
  readonly #scratch = Buffer.alloc(12);
  #offset = 0;
  #pending: Pending | undefined;
  #sequenceDepth = 0;
  #isStopped = false;
  #stoppedAtTag: number | undefined;

  constructor(options: DatasetReaderOptions) {
    this.#options = options;
    this.#maxValueLength = options.maxValueLength ?? 1024 * 1024;
    this.#maxDepth = options.maxDepth ?? 64;
    this.#isInputTransient = options.isInputTransient ?? false;
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.#offset;
  }
  /** True once `stopAt` matched; further input is ignored. */
  get isStopped(): boolean {
    return this.#isStopped;
  }
  /** The tag `stopAt` matched, if it did. */
  get stoppedAtTag(): number | undefined {
    return this.#stoppedAtTag;
  }

  /** Reads a chunk; throws ERR_DATASET_MALFORMED or ERR_DATASET_TOO_DEEP. */
  push(chunk: Buffer): void {
    if (this.#isStopped || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#available += chunk.length;
    this.#run();
    if (this.#isInputTransient && this.#chunks.length > 0) this.#keepLeftover();
  }

  /** The data set has ended: throws ERR_DATASET_TRUNCATED if it ended inside something. */
  end(): void {
    if (this.#isStopped) return;
    this.#closeFinishedFrames();
    const openFrame = this.#stack.length > 0;
    if (this.#pending !== undefined || this.#available > 0 || openFrame) {
      throw new DicomServerError(
        'ERR_DATASET_TRUNCATED',
        `data set ends inside an element or sequence at byte ${this.#offset}`,
        {
          offset: this.#offset,
          openContainers: this.#stack.length,
        },
      );
    }
  }

  #run(): void {
    while (!this.#isStopped) {
      if (this.#pending !== undefined) {
        if (!this.#advancePending()) return;
        continue;
      }
      this.#closeFinishedFrames();
      // Whatever comes next (element, item or delimiter) has a header of 8 bytes at least, and
      // headers of undefined length are not checked when read: fewer bytes left in a container
      // of defined length than that, or a header already past its end, is an overrun.
      if (this.#offset + 8 > this.#limit()) {
        malformed('header overruns its container', this.#offset, { end: this.#limit() });
      }
      const top = this.#stack[this.#stack.length - 1];
      if (this.#available < 8) return;
      const encoding = top ?? this.#options;
      const head = this.#peek(8);
      const tag = readTag(head, encoding.isLittleEndian);
      if (top?.kind === 'sequence') this.#onInSequence(tag, head, encoding.isLittleEndian);
      else if (top?.kind === 'fragments') this.#onInFragments(tag, head, encoding.isLittleEndian);
      else if (!this.#onElement(tag, encoding.isExplicitVr, encoding.isLittleEndian)) return;
    }
  }

  /** Pops containers of defined length that end where we are. */
  #closeFinishedFrames(): void {
    for (
      let top = this.#stack.at(-1);
      top?.end !== undefined && this.#offset >= top.end;
      top = this.#stack.at(-1)
    ) {
      if (this.#offset > top.end)
        malformed('content overruns its container', this.#offset, { end: top.end });
      this.#pop(false);
    }
  }

  #pop(hasDelimiter: boolean): void {
    const frame = this.#stack.pop()!;
    if (frame.kind === 'sequence') {
      this.#sequenceDepth -= 1;
      this.#emit({ type: 'sequence-end', hasDelimiter });
    } else if (frame.kind === 'item') {
      this.#emit({ type: 'item-end', hasDelimiter });
    } else {
      this.#emit({ type: 'fragments-end' });
    }
  }

  /** The end of the innermost container of defined length. */
  #limit(): number {
    for (let i = this.#stack.length - 1; i >= 0; i--) {
      const end = this.#stack[i]!.end;
      if (end !== undefined) return end;
    }
    return Number.POSITIVE_INFINITY;
  }

  /** `what`: what the length is of, for the error (`tag`: of that element's value). */
  #checkFits(length: number, headerLength: number, what: string | number): void {
    const valueStart = this.#offset + headerLength;
    if (valueStart + length > this.#limit()) {
      // The name is made only here: made for every element, it cost more than the check.
      const name = typeof what === 'number' ? `value of ${hex(what)}` : what;
      malformed(`${name} of ${length} bytes overruns its container`, this.#offset, {
        length,
        end: this.#limit(),
      });
    }
  }

  #onInSequence(tag: number, head: Buffer, isLittleEndian: boolean): void {
    const length = readUint32(head, 4, isLittleEndian);
    const offset = this.#offset;
    if (tag === ITEM) {
      const isUndefined = length === UNDEFINED_LENGTH;
      if (!isUndefined) this.#checkFits(length, 8, 'item');
      this.#consume(8);
      const top = this.#stack.at(-1)!;
      this.#stack.push({
        kind: 'item',
        end: isUndefined ? undefined : this.#offset + length,
        isExplicitVr: top.isExplicitVr,
        isLittleEndian: top.isLittleEndian,
      });
      this.#emit({ type: 'item-start', length: isUndefined ? undefined : length, offset });
      return;
    }
    if (tag === SEQUENCE_DELIMITATION && this.#stack.at(-1)!.end === undefined) {
      if (length !== 0) malformed('sequence delimiter with non-zero length', offset);
      this.#consume(8);
      this.#pop(true);
      return;
    }
    malformed(`expected an item in a sequence, found tag ${hex(tag)}`, offset, { tag });
  }

  #onInFragments(tag: number, head: Buffer, isLittleEndian: boolean): void {
    const length = readUint32(head, 4, isLittleEndian);
    const offset = this.#offset;
    if (tag === ITEM && length !== UNDEFINED_LENGTH) {
      this.#checkFits(length, 8, 'fragment');
      this.#consume(8);
      if (this.#options.collectFragments === true && length <= this.#maxValueLength) {
        this.#pending = {
          kind: 'collect',
          token: 'fragment',
          tag,
          vr: 'OB',
          offset,
          length,
          parts: [],
          got: 0,
        };
      } else {
        this.#emit({ type: 'fragment', length, offset });
        this.#pending = { kind: 'skip', remaining: length };
      }
      return;
    }
    if (tag === SEQUENCE_DELIMITATION) {
      if (length !== 0) malformed('sequence delimiter with non-zero length', offset);
      this.#consume(8);
      this.#pop(true);
      return;
    }
    malformed(`expected a fragment in encapsulated pixel data, found ${hex(tag)}`, offset, { tag });
  }

  /** Reads an element header; false when more bytes are needed. */
  #onElement(tag: number, isExplicitVr: boolean, isLittleEndian: boolean): boolean {
    const offset = this.#offset;
    const top = this.#stack.at(-1);
    if (tag === ITEM_DELIMITATION && top?.kind === 'item' && top.end === undefined) {
      if (readUint32(this.#peek(8), 4, isLittleEndian) !== 0)
        malformed('item delimiter with non-zero length', offset);
      this.#consume(8);
      this.#pop(true);
      return true;
    }
    if (tag >>> 16 === 0xfffe) malformed(`delimiter ${hex(tag)} out of place`, offset, { tag });
    const depth = this.#sequenceDepth;
    if (this.#options.stopAt?.(tag, depth) === true) {
      this.#isStopped = true;
      this.#stoppedAtTag = tag;
      return false;
    }
    let vr: Vr;
    let length: number;
    let headerLength: number;
    if (isExplicitVr) {
      const head = this.#peek(8);
      const known = vrAt(head, 4);
      if (known === undefined) {
        const vrText = head.toString('latin1', 4, 6);
        malformed(`invalid VR '${vrText.replace(/[^\x20-\x7e]/g, '?')}' for ${hex(tag)}`, offset, {
          tag,
        });
      }
      vr = known;
      if (hasLongLength(vr)) {
        if (this.#available < 12) return false;
        length = readUint32(this.#peek(12), 8, isLittleEndian);
        headerLength = 12;
      } else {
        length = isLittleEndian ? head.readUInt16LE(6) : head.readUInt16BE(6);
        headerLength = 8;
      }
    } else {
      vr = implicitVrOf(tag);
      length = readUint32(this.#peek(8), 4, isLittleEndian);
      headerLength = 8;
    }
    if (length === UNDEFINED_LENGTH) {
      this.#consume(headerLength);
      this.#openUndefined(tag, vr, offset, isExplicitVr, isLittleEndian);
      return true;
    }
    this.#checkFits(length, headerLength, tag);
    this.#consume(headerLength);
    if (vr === 'SQ') {
      this.#openSequence(tag, vr, length, offset, isExplicitVr, isLittleEndian);
      return true;
    }
    const wants =
      length <= this.#maxValueLength && (this.#options.collect?.(tag, vr, depth) ?? true);
    if (wants) {
      this.#pending = {
        kind: 'collect',
        token: 'element',
        tag,
        vr,
        offset,
        length,
        parts: [],
        got: 0,
      };
    } else {
      this.#emit({ type: 'element', tag, vr, length, offset });
      this.#pending = { kind: 'skip', remaining: length };
    }
    return true;
  }

  #openUndefined(
    tag: number,
    vr: Vr,
    offset: number,
    isExplicitVr: boolean,
    isLittleEndian: boolean,
  ): void {
    // Undefined length on Pixel Data (or another OB/OW) means encapsulated fragments (PS3.5 §A.4).
    if (tag === PIXEL_DATA || (isExplicitVr && (vr === 'OB' || vr === 'OW'))) {
      this.#stack.push({ kind: 'fragments', end: undefined, isExplicitVr, isLittleEndian });
      this.#emit({ type: 'fragments-start', tag, vr, offset });
      return;
    }
    if (vr === 'SQ' || !isExplicitVr) {
      this.#openSequence(tag, 'SQ', undefined, offset, isExplicitVr, isLittleEndian);
      return;
    }
    if (vr === 'UN') {
      // A sequence whose VR the sender did not know: its content is Implicit VR Little Endian
      // (PS3.5 §6.2.2, CP-246).
      this.#openSequence(tag, 'UN', undefined, offset, false, true);
      return;
    }
    malformed(`undefined length on VR ${vr} of ${hex(tag)}`, offset, { tag });
  }

  #openSequence(
    tag: number,
    vr: Vr,
    length: number | undefined,
    offset: number,
    isExplicitVr: boolean,
    isLittleEndian: boolean,
  ): void {
    if (this.#sequenceDepth >= this.#maxDepth) {
      throw new DicomServerError(
        'ERR_DATASET_TOO_DEEP',
        `sequences nested deeper than ${this.#maxDepth}`,
        {
          offset,
          maxDepth: this.#maxDepth,
        },
      );
    }
    this.#sequenceDepth += 1;
    this.#stack.push({
      kind: 'sequence',
      end: length === undefined ? undefined : this.#offset + length,
      isExplicitVr,
      isLittleEndian,
    });
    this.#emit({ type: 'sequence-start', tag, vr, length, offset });
  }

  /** Moves a pending value forward; false when it needs more bytes. */
  #advancePending(): boolean {
    const pending = this.#pending!;
    if (pending.kind === 'skip') {
      const n = Math.min(pending.remaining, this.#available);
      const onSkippedValue = this.#options.onSkippedValue;
      if (onSkippedValue === undefined) this.#consume(n);
      else this.#handOn(n, onSkippedValue);
      pending.remaining -= n;
      if (pending.remaining > 0) return false;
      this.#pending = undefined;
      return true;
    }
    const n = Math.min(pending.length - pending.got, this.#available);
    if (n > 0) pending.parts.push(this.#take(n));
    pending.got += n;
    if (pending.got < pending.length) return false;
    this.#pending = undefined;
    const value =
      pending.parts.length === 1 ? pending.parts[0]! : Buffer.concat(pending.parts, pending.length);
    if (pending.token === 'element') {
      this.#emit({
        type: 'element',
        tag: pending.tag,
        vr: pending.vr,
        length: pending.length,
        offset: pending.offset,
        value,
      });
    } else {
      this.#emit({ type: 'fragment', length: pending.length, offset: pending.offset, value });
    }
    return true;
  }

  #emit(token: DatasetToken): void {
    this.#options.onToken(token);
  }

  /**
   * The first `n` available bytes (at most 12: a header), copied to the start of a scratch
   * buffer that the next call overwrites.
   */
  #peek(n: number): Buffer {
    const scratch = this.#scratch;
    let filled = 0;
    // Byte by byte: Buffer#copy makes a view of its source for every call.
    for (let c = 0, from = this.#head; filled < n; c++, from = 0) {
      const chunk = this.#chunks[c]!;
      for (let i = from; i < chunk.length && filled < n; i++) scratch[filled++] = chunk[i]!;
    }
    return scratch;
  }

  #consume(n: number): void {
    let left = n;
    while (left > 0) {
      const rest = this.#chunks[0]!.length - this.#head;
      if (rest <= left) {
        left -= rest;
        this.#chunks.shift();
        this.#head = 0;
      } else {
        this.#head += left;
        left = 0;
      }
    }
    this.#available -= n;
    this.#offset += n;
  }

  /**
   * Stops referring to the caller's chunks (`isInputTransient`). What is left once `#run`
   * returns is only the start of a header (under 12 bytes: a pending value takes all that is
   * available), so copying it is cheap; once stopped, the rest of the input is never read.
   */
  #keepLeftover(): void {
    if (this.#isStopped) {
      this.#chunks = [];
      this.#head = 0;
      this.#available = 0;
      return;
    }
    // Buffer.concat copies, even a single chunk.
    const [first, ...rest] = this.#chunks;
    this.#chunks = [Buffer.concat([first!.subarray(this.#head), ...rest], this.#available)];
    this.#head = 0;
  }

  /** Removes `n` available bytes and hands them on chunk by chunk, as views. */
  #handOn(n: number, receive: (bytes: Buffer) => void): void {
    let left = n;
    while (left > 0) {
      const first = this.#chunks[0]!;
      const part = Math.min(first.length - this.#head, left);
      const view = first.subarray(this.#head, this.#head + part);
      this.#consume(part);
      left -= part;
      receive(view);
    }
  }

  /**
   * Removes and returns `n` available bytes: a view when they lie in one chunk, unless the
   * input is transient (the value, or a part of one arriving over several pushes, must outlive
   * the chunk: values are at most `maxValueLength`, so the copy is cheap).
   */
  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length - this.#head >= n && !this.#isInputTransient) {
      const out = first.subarray(this.#head, this.#head + n);
      this.#consume(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let from = this.#head;
    for (const chunk of this.#chunks) {
      filled += chunk.copy(out, filled, from, Math.min(chunk.length, from + n - filled));
      if (filled === n) break;
      from = 0;
    }
    this.#consume(n);
    return out;
  }
}

function readTag(head: Buffer, isLittleEndian: boolean): number {
  const group = isLittleEndian ? head.readUInt16LE(0) : head.readUInt16BE(0);
  const element = isLittleEndian ? head.readUInt16LE(2) : head.readUInt16BE(2);
  return ((group << 16) | element) >>> 0;
}

function readUint32(buf: Buffer, offset: number, isLittleEndian: boolean): number {
  return isLittleEndian ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset);
}

function hex(tag: number): string {
  return `(${(tag >>> 16).toString(16).toUpperCase().padStart(4, '0')},${(tag & 0xffff).toString(16).toUpperCase().padStart(4, '0')})`;
}
