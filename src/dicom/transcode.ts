/**
 * Converting a data set between Implicit VR Little Endian and Explicit VR Little Endian (PS3.5
 * §A.1, §A.2), streaming: chunks in, chunks out. Value bytes pass through unchanged (both
 * syntaxes are little endian); what changes is the element headers. Going to explicit VR, the
 * VRs come from the data dictionary (PS3.5 §7.1.1), UN for private and unknown tags, and a value
 * too long for the 2-byte length of its VR becomes UN. Sequences and items are written with
 * undefined length, since their lengths change between the encodings; group lengths
 * (gggg,0000), retired in data sets (PS3.5 §7.2), are dropped rather than recomputed.
 *
 * Layer: dicom. Pure: no I/O. Memory stays bounded whatever the data set: values longer than a
 * small limit (Pixel Data) are never held whole but handed on piece by piece as they arrive.
 */

import { DicomServerError } from '../errors.js';
import { DatasetReader, type DatasetToken } from './reader/dataset-reader.js';
import { formatTag } from './tag.js';
import { TransferSyntax } from './transfer-syntax.js';
import { hasLongLength, type Vr } from './vr.js';
import { type DatasetEncoding, DatasetWriter } from './writer/dataset-writer.js';

/** Values up to this length are collected and written whole; longer ones stream through. */
const MAX_HELD_VALUE = 64 * 1024;
/** Longest value a 2-byte explicit VR length field can state (PS3.5 §7.1.2). */
const MAX_SHORT_LENGTH = 0xffff;
const UNDEFINED_LENGTH = 0xffffffff;
const PIXEL_REPRESENTATION = 0x00280103;
const LUT_DATA = 0x00283006;

/** The two encodings converted between, by transfer syntax. */
const ENCODINGS: ReadonlyMap<string, DatasetEncoding> = new Map([
  [TransferSyntax.ImplicitVRLittleEndian, { isExplicitVr: false, isLittleEndian: true }],
  [TransferSyntax.ExplicitVRLittleEndian, { isExplicitVr: true, isLittleEndian: true }],
]);

const IMPLICIT_LITTLE_ENDIAN: DatasetEncoding = { isExplicitVr: false, isLittleEndian: true };

/**
 * Tags whose dictionary VR is "OB or OW": OW in Implicit VR Little Endian (PS3.5 §A.1, §8.1.2,
 * §8.2), so OW when made explicit. 60xx,3000 (Overlay Data) is matched by mask.
 */
const OB_OR_OW: ReadonlySet<number> = new Set([
  0x00143050, 0x00143070, 0x54000110, 0x54000112, 0x5400100a, 0x54001010, 0x7fe00010,
]);

/**
 * Pixel-value tags whose dictionary VR is "US or SS": SS when Pixel Representation (0028,0103)
 * is 1 (two's complement), as PS3.3 §C.7.6.3.1 ties them to it. The LUT descriptors, also
 * "US or SS", keep US: their first and third values are always unsigned.
 */
const US_OR_SS: ReadonlySet<number> = new Set([
  0x00189810, 0x00221452, 0x00280106, 0x00280107, 0x00280108, 0x00280109, 0x00280120, 0x00280121,
  0x00409211, 0x00409216, 0x00603004, 0x00603006,
]);

/** The encoding of a transfer syntax this module converts from and to, or undefined. */
export function convertibleEncodingOf(transferSyntaxUid: string): DatasetEncoding | undefined {
  return ENCODINGS.get(transferSyntaxUid);
}

/**
 * Streaming converter of one data set from one little endian encoding to the other; see the
 * module comment. `push` each chunk and send on what it returns, then call `end`.
 */
export class DatasetTranscoder {
  readonly #reader: DatasetReader;
  readonly #writer: DatasetWriter;
  readonly #source: DatasetEncoding;
  /** The target encoding of each open sequence's content (a UN sequence's is Implicit VR LE). */
  readonly #targets: DatasetEncoding[] = [];
  readonly #target: DatasetEncoding;
  #out: Buffer[] = [];
  /** Whether the bytes of the value being skipped by the reader are written or dropped. */
  #isDroppingValue = false;
  #isSignedPixelData = false;

  constructor(source: DatasetEncoding, target: DatasetEncoding) {
    if (!source.isLittleEndian || !target.isLittleEndian) {
      throw new DicomServerError(
        'ERR_INVALID_ARGUMENT',
        'only little endian data sets are converted',
        {},
      );
    }
    this.#source = source;
    this.#target = target;
    this.#writer = new DatasetWriter(target);
    this.#reader = new DatasetReader({
      ...source,
      maxValueLength: MAX_HELD_VALUE,
      onToken: (token) => this.#onToken(token),
      onSkippedValue: (bytes) => {
        if (!this.#isDroppingValue) this.#out.push(bytes);
      },
    });
  }

  /**
   * Converts a chunk; returns the bytes to send on (views of the input where values pass
   * through). Throws ERR_DATASET_MALFORMED or ERR_DATASET_TOO_DEEP as the reader does, and
   * ERR_DATASET_MALFORMED for encapsulated pixel data, which these syntaxes cannot hold.
   */
  push(chunk: Buffer): Buffer[] {
    this.#reader.push(chunk);
    return this.#take();
  }

  /** The data set has ended: throws ERR_DATASET_TRUNCATED if it ended inside something. */
  end(): Buffer[] {
    this.#reader.end();
    this.#writer.end();
    return this.#take();
  }

  #take(): Buffer[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #write(token: DatasetToken): void {
    for (const part of this.#writer.write(token)) this.#out.push(part);
  }

  #onToken(token: DatasetToken): void {
    switch (token.type) {
      case 'element':
        this.#onElement(token);
        return;
      case 'sequence-start': {
        const parent = this.#targets.at(-1) ?? this.#target;
        this.#targets.push(token.vr === 'UN' ? IMPLICIT_LITTLE_ENDIAN : parent);
        this.#write({ ...token, length: undefined });
        return;
      }
      case 'sequence-end':
        this.#targets.pop();
        this.#write({ type: 'sequence-end', hasDelimiter: true });
        return;
      case 'item-start':
        this.#write({ ...token, length: undefined });
        return;
      case 'item-end':
        this.#write({ type: 'item-end', hasDelimiter: true });
        return;
      case 'fragments-start':
      case 'fragment':
      case 'fragments-end':
        throw new DicomServerError(
          'ERR_DATASET_MALFORMED',
          'encapsulated pixel data in a native transfer syntax',
          {},
        );
      default: {
        const never: never = token;
        throw new Error(`unknown token ${JSON.stringify(never)}`);
      }
    }
  }

  #onElement(token: DatasetToken & { type: 'element' }): void {
    this.#isDroppingValue = (token.tag & 0xffff) === 0;
    if (this.#isDroppingValue) return;
    if (token.tag === PIXEL_REPRESENTATION && this.#targets.length === 0) {
      this.#isSignedPixelData = token.value?.length === 2 && token.value.readUInt16LE(0) === 1;
    }
    const vr = this.#vrOf(token.tag, token.vr, token.length);
    if (token.value !== undefined) {
      this.#write({ ...token, vr });
      return;
    }
    // A value too long to hold: its header now, its bytes as the reader hands them on. The
    // writer's count of bytes written falls behind, which matters only for containers of
    // defined length, and we write none.
    this.#out.push(
      elementHeader(token.tag, vr, token.length, this.#targets.at(-1) ?? this.#target),
    );
  }

  /** The VR to write: the source's when it was explicit, else the dictionary's, adjusted. */
  #vrOf(tag: number, vr: Vr, length: number): Vr {
    if (this.#source.isExplicitVr) return vr;
    let chosen = vr;
    if (OB_OR_OW.has(tag) || (tag & 0xff00ffff) === 0x60003000) chosen = 'OW';
    else if (tag === LUT_DATA && length > MAX_SHORT_LENGTH) chosen = 'OW';
    else if (US_OR_SS.has(tag) && this.#isSignedPixelData) chosen = 'SS';
    // A value the explicit 2-byte length cannot state is written as UN (PS3.5 §6.2.2).
    return !hasLongLength(chosen) && length > MAX_SHORT_LENGTH ? 'UN' : chosen;
  }
}

/** The header of an element whose value follows separately (PS3.5 §7.1.1-7.1.3). */
function elementHeader(tag: number, vr: Vr, length: number, encoding: DatasetEncoding): Buffer {
  if (length >= UNDEFINED_LENGTH) {
    throw new DicomServerError('ERR_INVALID_ARGUMENT', `length of ${formatTag(tag)} too large`, {
      tag,
      length,
    });
  }
  const isLong = encoding.isExplicitVr && hasLongLength(vr);
  const header = Buffer.alloc(isLong ? 12 : 8);
  header.writeUInt16LE(tag >>> 16, 0);
  header.writeUInt16LE(tag & 0xffff, 2);
  if (!encoding.isExplicitVr) header.writeUInt32LE(length, 4);
  else if (isLong) {
    header.write(vr, 4, 'latin1');
    header.writeUInt32LE(length, 8);
  } else {
    header.write(vr, 4, 'latin1');
    header.writeUInt16LE(length, 6);
  }
  return header;
}

/**
 * A data set converted from one little endian encoding to the other, as its chunks arrive;
 * see `DatasetTranscoder`. Throws (while iterating) what the transcoder throws.
 */
export async function* transcodeDataset(
  chunks: AsyncIterable<Buffer>,
  source: DatasetEncoding,
  target: DatasetEncoding,
): AsyncGenerator<Buffer> {
  const transcoder = new DatasetTranscoder(source, target);
  for await (const chunk of chunks) {
    const out = transcoder.push(chunk);
    if (out.length > 0) yield joined(out);
  }
  const last = transcoder.end();
  if (last.length > 0) yield joined(last);
}

/** One buffer of the parts: small headers and values are copied together; one part stays a view. */
function joined(parts: readonly Buffer[]): Buffer {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
