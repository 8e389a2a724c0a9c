/**
 * Identifiers (PS3.4 §C.4.1.1.3): the small data sets of C-FIND, C-MOVE and C-GET requests and
 * C-FIND responses, read whole into a tree of elements and written back. Values stay bytes in
 * the identifier's encoding; what they mean is for the query code to decide.
 *
 * Layer: dicom. Pure: no I/O.
 */

import { DicomServerError } from '../../errors.js';
import type { DatasetToken } from '../reader/dataset-reader.js';
import { DatasetReader } from '../reader/dataset-reader.js';
import type { Vr } from '../vr.js';
import { type DatasetEncoding, encodeTokens } from '../writer/dataset-writer.js';

/**
 * Largest identifier read: far above any real one (a few hundred bytes), for the responses of
 * other PACS; the requests our SCP reads are held to 64 KiB before they get here.
 */
export const MAX_IDENTIFIER_BYTES = 1024 * 1024;

/** One element of an identifier; a sequence has items instead of a value. */
export interface IdentifierElement {
  readonly tag: number;
  readonly vr: Vr;
  /** The value's bytes, padding included (empty for zero length and for sequences). */
  readonly value: Buffer;
  /** For a sequence (SQ, or UN read as a sequence): its items, each a list of elements. */
  readonly items?: readonly (readonly IdentifierElement[])[];
}

interface OpenSequence {
  readonly tag: number;
  readonly vr: Vr;
  readonly items: IdentifierElement[][];
}

/**
 * Reads an identifier into its top-level elements, in the order they came. Throws
 * ERR_DATASET_MALFORMED or ERR_DATASET_TRUNCATED for bytes that are not a data set, and for
 * encapsulated pixel data, which has no place in an identifier.
 */
export function readIdentifier(bytes: Buffer, encoding: DatasetEncoding): IdentifierElement[] {
  if (bytes.length > MAX_IDENTIFIER_BYTES) {
    throw new DicomServerError('ERR_DATASET_MALFORMED', 'identifier is too large', {
      length: bytes.length,
    });
  }
  const top: IdentifierElement[] = [];
  // The element lists being filled, innermost last; sequences being read alongside.
  const lists: IdentifierElement[][] = [top];
  const sequences: OpenSequence[] = [];
  const onToken = (token: DatasetToken): void => {
    const list = lists.at(-1)!;
    switch (token.type) {
      case 'element':
        list.push({ tag: token.tag, vr: token.vr, value: token.value ?? Buffer.alloc(0) });
        return;
      case 'sequence-start':
        sequences.push({ tag: token.tag, vr: token.vr, items: [] });
        return;
      case 'item-start': {
        const item: IdentifierElement[] = [];
        sequences.at(-1)!.items.push(item);
        lists.push(item);
        return;
      }
      case 'item-end':
        lists.pop();
        return;
      case 'sequence-end': {
        const sequence = sequences.pop()!;
        lists.at(-1)!.push({
          tag: sequence.tag,
          vr: sequence.vr,
          value: Buffer.alloc(0),
          items: sequence.items,
        });
        return;
      }
      case 'fragments-start':
      case 'fragment':
      case 'fragments-end':
        throw new DicomServerError(
          'ERR_DATASET_MALFORMED',
          'an identifier cannot hold encapsulated data',
          {},
        );
      default: {
        const never: never = token;
        throw new Error(`unknown token ${JSON.stringify(never)}`);
      }
    }
  };
  const reader = new DatasetReader({
    isExplicitVr: encoding.isExplicitVr,
    isLittleEndian: encoding.isLittleEndian,
    maxValueLength: MAX_IDENTIFIER_BYTES,
    onToken,
  });
  reader.push(bytes);
  reader.end();
  return top;
}

/** Writes elements as an identifier; sequences and items get undefined length. */
export function writeIdentifier(
  elements: readonly IdentifierElement[],
  encoding: DatasetEncoding,
): Buffer {
  return encodeTokens(tokensOf(elements), encoding);
}

function* tokensOf(elements: readonly IdentifierElement[], offset = 0): Generator<DatasetToken> {
  for (const element of [...elements].sort((a, b) => a.tag - b.tag)) {
    if (element.items === undefined) {
      yield {
        type: 'element',
        tag: element.tag,
        vr: element.vr,
        length: element.value.length,
        offset,
        value: element.value,
      };
      continue;
    }
    yield { type: 'sequence-start', tag: element.tag, vr: 'SQ', length: undefined, offset };
    for (const item of element.items) {
      yield { type: 'item-start', length: undefined, offset };
      yield* tokensOf(item, offset);
      yield { type: 'item-end', hasDelimiter: true };
    }
    yield { type: 'sequence-end', hasDelimiter: true };
  }
}
