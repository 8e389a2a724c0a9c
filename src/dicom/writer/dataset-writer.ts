/**
 * A streaming data set writer (PS3.5 §7): the inverse of the data set reader. Tokens in, in the
 * order of the encoding, bytes out: element headers in explicit or implicit VR form, sequences
 * and items with defined length or undefined length and delimiters exactly as the tokens say
 * (PS3.5 §7.5), encapsulated fragments (PS3.5 §A.4), and UN sequences whose content is Implicit
 * VR Little Endian (PS3.5 §6.2.2). Writing the tokens the reader gives for a data set yields that
 * data set's bytes.
 *
 * Layer: dicom. Pure: no I/O. Values are passed through as views, never copied; the writer
 * checks the structure (what may appear where, declared lengths against what was written) and
 * throws ERR_INVALID_ARGUMENT rather than produce bytes the reader would reject.
 */

import { DicomServerError, type ErrorDetails } from '../../errors.js';
import type { DatasetToken } from '../reader/dataset-reader.js';
import { formatTag } from '../tag.js';
import { hasLongLength, type Vr } from '../vr.js';

const ITEM = 0xfffee000;
const ITEM_DELIMITATION = 0xfffee00d;
const SEQUENCE_DELIMITATION = 0xfffee0dd;
const UNDEFINED_LENGTH = 0xffffffff;
/** Longest value a 2-byte explicit VR length field can state (PS3.5 §7.1.2). */
const MAX_SHORT_LENGTH = 0xffff;

/** How a data set is encoded: the two properties of its transfer syntax the bytes depend on. */
export interface DatasetEncoding {
  readonly isExplicitVr: boolean;
  readonly isLittleEndian: boolean;
}

interface Frame {
  readonly kind: 'sequence' | 'item' | 'fragments';
  /** Declared length of the content, or undefined for undefined length (ended by a delimiter). */
  readonly length: number | undefined;
  /** Bytes written before the content started. */
  readonly contentStart: number;
  /** Encoding of the container's contents (a UN sequence switches to Implicit VR LE). */
  readonly encoding: DatasetEncoding;
}

const IMPLICIT_LITTLE_ENDIAN: DatasetEncoding = { isExplicitVr: false, isLittleEndian: true };

function invalid(message: string, details: ErrorDetails = {}): never {
  throw new DicomServerError('ERR_INVALID_ARGUMENT', message, details);
}

/**
 * Streaming data set encoder; see the module comment. Feed it the tokens of one data set with
 * `write`, then call `end`.
 */
export class DatasetWriter {
  readonly #encoding: DatasetEncoding;
  readonly #stack: Frame[] = [];
  #offset = 0;

  constructor(encoding: DatasetEncoding) {
    this.#encoding = encoding;
  }

  /** Bytes written so far. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * The bytes of one token: a header, then the value as a view of the token's buffer. Throws
   * ERR_INVALID_ARGUMENT for a token out of place, an element or fragment without its value, a
   * value too long for its length field, or a container whose content does not match its length.
   */
  write(token: DatasetToken): Buffer[] {
    const out = this.#encode(token);
    for (const part of out) this.#offset += part.length;
    return out;
  }

  /** The data set is complete: throws ERR_INVALID_ARGUMENT if a container is still open. */
  end(): void {
    if (this.#stack.length > 0) {
      invalid(`data set ends inside a ${this.#stack.at(-1)!.kind}`, {
        openContainers: this.#stack.length,
      });
    }
  }

  #encode(token: DatasetToken): Buffer[] {
    switch (token.type) {
      case 'element':
        this.#expectIn('element', 'item');
        return this.#element(token.tag, token.vr, token.length, token.value);
      case 'sequence-start':
        this.#expectIn('sequence', 'item');
        return [this.#sequenceStart(token.tag, token.vr, token.length)];
      case 'item-start':
        this.#expectIn('item', 'sequence');
        return [this.#itemStart(token.length)];
      case 'fragments-start':
        this.#expectIn('encapsulated pixel data', 'item');
        return [this.#fragmentsStart(token.tag, token.vr)];
      case 'fragment':
        this.#expectIn('fragment', 'fragments');
        return this.#fragment(token.length, token.value);
      case 'sequence-end':
        return this.#close('sequence', SEQUENCE_DELIMITATION, token.hasDelimiter);
      case 'item-end':
        return this.#close('item', ITEM_DELIMITATION, token.hasDelimiter);
      case 'fragments-end':
        return this.#close('fragments', SEQUENCE_DELIMITATION, true);
      default: {
        const never: never = token;
        return invalid(`unknown token ${JSON.stringify(never)}`);
      }
    }
  }

  /** The encoding at the current position. */
  get #current(): DatasetEncoding {
    return this.#stack.at(-1)?.encoding ?? this.#encoding;
  }

  /** Throws unless the innermost container is `parent` (`item` also allows the top level). */
  #expectIn(what: string, parent: Frame['kind']): void {
    const kind = this.#stack.at(-1)?.kind ?? 'item';
    if (kind !== parent) invalid(`${what} inside a ${kind}`, { offset: this.#offset });
  }

  #element(tag: number, vr: Vr, length: number, value: Buffer | undefined): Buffer[] {
    if (value === undefined) {
      invalid(`element ${formatTag(tag)} has no value (it was skipped when read)`, { tag });
    }
    if (value.length !== length || length >= UNDEFINED_LENGTH) {
      invalid(`element ${formatTag(tag)} declares ${length} bytes but holds ${value.length}`, {
        tag,
      });
    }
    if (tag >>> 16 === 0xfffe) {
      invalid(`element with item or delimiter tag ${formatTag(tag)}`, { tag });
    }
    return [this.#header(tag, vr, length), value];
  }

  #sequenceStart(tag: number, vr: Vr, length: number | undefined): Buffer {
    if (vr !== 'SQ' && vr !== 'UN') invalid(`sequence ${formatTag(tag)} with VR ${vr}`, { tag });
    const header = this.#header(tag, vr, length ?? UNDEFINED_LENGTH);
    // A UN sequence is a value of unknown VR: its items are Implicit VR Little Endian (CP-246).
    const encoding = vr === 'UN' ? IMPLICIT_LITTLE_ENDIAN : this.#current;
    this.#push('sequence', length, header.length, encoding);
    return header;
  }

  #fragmentsStart(tag: number, vr: Vr): Buffer {
    if (this.#current.isExplicitVr && !hasLongLength(vr)) {
      invalid(`encapsulated ${formatTag(tag)} with VR ${vr}, which has no 32-bit length`, { tag });
    }
    const header = this.#header(tag, vr, UNDEFINED_LENGTH);
    this.#push('fragments', undefined, header.length, this.#current);
    return header;
  }

  #fragment(length: number, value: Buffer | undefined): Buffer[] {
    if (value === undefined) invalid('fragment has no value (it was skipped when read)');
    if (value.length !== length || length >= UNDEFINED_LENGTH) {
      invalid(`fragment declares ${length} bytes but holds ${value.length}`, { length });
    }
    return [this.#tagAndLength(ITEM, length, this.#current.isLittleEndian), value];
  }

  /** An item header with its length, or undefined length. */
  #itemStart(length: number | undefined): Buffer {
    const header = this.#tagAndLength(
      ITEM,
      length ?? UNDEFINED_LENGTH,
      this.#current.isLittleEndian,
    );
    this.#push('item', length, header.length, this.#current);
    return header;
  }

  #push(
    kind: Frame['kind'],
    length: number | undefined,
    headerLength: number,
    encoding: DatasetEncoding,
  ): void {
    if (length !== undefined && length >= UNDEFINED_LENGTH) {
      invalid(`${kind} length ${length} does not fit 32 bits`, { length });
    }
    this.#stack.push({ kind, length, contentStart: this.#offset + headerLength, encoding });
  }

  /** Ends the innermost container: its delimiter, or a check that its length was met. */
  #close(kind: Frame['kind'], delimiter: number, hasDelimiter: boolean): Buffer[] {
    const frame = this.#stack.at(-1);
    if (frame?.kind !== kind) invalid(`${kind} end inside a ${frame?.kind ?? 'data set'}`);
    if (hasDelimiter !== (frame.length === undefined)) {
      const length = frame.length ?? 'undefined';
      invalid(`${kind} of ${length} length ends with hasDelimiter ${hasDelimiter}`);
    }
    const written = this.#offset - frame.contentStart;
    if (frame.length !== undefined && written !== frame.length) {
      invalid(`${kind} declares ${frame.length} bytes but holds ${written}`, {
        length: frame.length,
        written,
      });
    }
    this.#stack.pop();
    return hasDelimiter ? [this.#tagAndLength(delimiter, 0, frame.encoding.isLittleEndian)] : [];
  }

  /** An element header in the current encoding (PS3.5 §7.1.1-7.1.3). */
  #header(tag: number, vr: Vr, length: number): Buffer {
    const { isExplicitVr, isLittleEndian } = this.#current;
    if (!isExplicitVr) return this.#tagAndLength(tag, length, isLittleEndian);
    if (hasLongLength(vr)) {
      const header = Buffer.alloc(12);
      writeTag(header, tag, isLittleEndian);
      header.write(vr, 4, 'latin1');
      writeUint32(header, 8, length, isLittleEndian);
      return header;
    }
    if (length > MAX_SHORT_LENGTH) {
      invalid(`${length} bytes for ${formatTag(tag)} overflow the 16-bit length of ${vr}`, {
        tag,
        length,
      });
    }
    const header = Buffer.allocUnsafe(8);
    writeTag(header, tag, isLittleEndian);
    header.write(vr, 4, 'latin1');
    if (isLittleEndian) header.writeUInt16LE(length, 6);
    else header.writeUInt16BE(length, 6);
    return header;
  }

  #tagAndLength(tag: number, length: number, isLittleEndian: boolean): Buffer {
    const header = Buffer.allocUnsafe(8);
    writeTag(header, tag, isLittleEndian);
    writeUint32(header, 4, length, isLittleEndian);
    return header;
  }
}

/** The bytes of a whole data set's tokens, in one buffer; see `DatasetWriter`. */
export function encodeTokens(tokens: Iterable<DatasetToken>, encoding: DatasetEncoding): Buffer {
  const writer = new DatasetWriter(encoding);
  const parts: Buffer[] = [];
  for (const token of tokens) parts.push(...writer.write(token));
  writer.end();
  return Buffer.concat(parts, writer.offset);
}

function writeTag(buf: Buffer, tag: number, isLittleEndian: boolean): void {
  if (isLittleEndian) {
    buf.writeUInt16LE(tag >>> 16, 0);
    buf.writeUInt16LE(tag & 0xffff, 2);
  } else {
    buf.writeUInt16BE(tag >>> 16, 0);
    buf.writeUInt16BE(tag & 0xffff, 2);
  }
}

function writeUint32(buf: Buffer, offset: number, value: number, isLittleEndian: boolean): void {
  if (isLittleEndian) buf.writeUInt32LE(value, offset);
  else buf.writeUInt32BE(value, offset);
}
