/**
 * Cuts a DIMSE message into PDV fragments that fit the peer's maximum PDU length (PS3.8 §9.3.5,
 * Annex D.1): each P-DATA-TF we send carries one PDV, so a fragment holds at most the peer's
 * Maximum Length Received less the 6 bytes of the PDV header.
 *
 * Layer: network/dimse. Pure: works on buffers and async iterables, sends nothing itself.
 */

import { PDV_HEADER_LENGTH } from '../pdu/encode.js';

/** Fragment size when the peer announced no limit (0): large enough to amortize headers. */
export const UNLIMITED_FRAGMENT_LENGTH = 1024 * 1024;

/** One fragment of a message and whether it is the last of its kind (command or data set). */
export interface Fragment {
  readonly data: Buffer;
  readonly isLast: boolean;
}

/** The largest fragment for a peer that announced `peerMaxPduLength` (0: no limit). */
export function maxFragmentLength(peerMaxPduLength: number): number {
  if (peerMaxPduLength === 0) return UNLIMITED_FRAGMENT_LENGTH;
  // Fragments of even length: values are even (PS3.5 §7.1) and DCMTK refuses an odd fragment
  // ("DIMSE: Odd Fragment Length"), so an odd maximum such as 4097 gives 4090, not 4091.
  return Math.max(2, (peerMaxPduLength - PDV_HEADER_LENGTH) & ~1);
}

/** Fragments of a buffer: views, never copies. An empty buffer gives one empty last fragment. */
export function* fragmentBuffer(bytes: Buffer, maxLength: number): Generator<Fragment> {
  if (bytes.length === 0) {
    yield { data: bytes, isLast: true };
    return;
  }
  for (let offset = 0; offset < bytes.length; offset += maxLength) {
    const end = Math.min(bytes.length, offset + maxLength);
    yield { data: bytes.subarray(offset, end), isLast: end === bytes.length };
  }
}

/**
 * Fragments of a stream of chunks of any size. A fragment is sent only once we know whether
 * more follows, so the last one carries the last-fragment flag.
 */
export async function* fragmentStream(
  chunks: AsyncIterable<Buffer>,
  maxLength: number,
): AsyncGenerator<Fragment> {
  let pending: Buffer[] = [];
  let pendingLength = 0;
  const take = (n: number): Buffer => {
    const first = pending[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) pending.shift();
      else pending[0] = first.subarray(n);
      pendingLength -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = pending[0]!;
      const part = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      if (part === chunk.length) pending.shift();
      else pending[0] = chunk.subarray(part);
    }
    pendingLength -= n;
    return out;
  };
  for await (const chunk of chunks) {
    if (chunk.length === 0) continue;
    pending.push(chunk);
    pendingLength += chunk.length;
    // Strictly more than one fragment's worth: what we send now is certainly not the last.
    while (pendingLength > maxLength) yield { data: take(maxLength), isLast: false };
  }
  const rest = pendingLength === 0 ? Buffer.alloc(0) : take(pendingLength);
  pending = [];
  yield { data: rest, isLast: true };
}
