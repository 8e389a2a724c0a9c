/**
 * Reads a TCP socket into memory we provide instead of a new buffer per read.
 *
 * Layer: network/association.
 *
 * Why: Node's stream reading allocates a fresh 64 KiB buffer for every read and hands it on as
 * a 'data' chunk. On the receive path of a 512 KB CT image that is measured to cost more than
 * everything else together:
 * - the kernel's copy into cold memory (page faults, cache misses);
 * - the collection of the dead chunks.
 * Reading into the framer's own buffer, reused for the whole association, made a loopback
 * transfer three to five times cheaper here.
 *
 * How: Node supports this through the documented `onread` option of `new net.Socket()` and
 * `net.connect()`, but not for the sockets a `net.Server` accepts. `onread` keeps its buffer
 * source and callback in two properties of the socket, which the socket's read path consults
 * for every read. Their keys are found once, on a socket made with `onread` (by value, not by
 * name), and the same two properties are then set on an accepted socket, whose handle is told
 * to read into the memory given. If the keys cannot be found (another Node.js version), or the
 * handle lacks the call, nothing is changed and the caller reads 'data' events as before.
 */

import net from 'node:net';

/** Where the socket's read path keeps the `onread` buffer source and callback. */
interface OnreadKeys {
  readonly buffer: symbol;
  readonly generator: symbol;
  readonly callback: symbol;
}

let keys: OnreadKeys | null | undefined;

/** Finds the keys on a socket made with `onread` (never connected), or null. */
function findKeys(): OnreadKeys | null {
  const generator = () => Buffer.alloc(1);
  const callback = () => true;
  // `onread` is documented for this constructor, but missing from its type in @types/node 20.
  const options = { onread: { buffer: generator, callback } };
  const probe = new net.Socket(options as net.SocketConstructorOpts);
  const plain = new net.Socket();
  const symbols = Object.getOwnPropertySymbols(probe);
  const record = probe as unknown as Record<symbol, unknown>;
  const plainRecord = plain as unknown as Record<symbol, unknown>;
  const keyOf = (value: unknown) => symbols.find((symbol) => record[symbol] === value);
  const found = {
    // With a function as its buffer, `onread` marks the socket with `true` under the buffer
    // key, which a socket without `onread` does not have set.
    buffer: symbols.filter((symbol) => record[symbol] === true && plainRecord[symbol] !== true),
    generator: keyOf(generator),
    callback: keyOf(callback),
  };
  probe.destroy();
  plain.destroy();
  if (found.generator === undefined || found.callback === undefined) return null;
  if (found.buffer.length !== 1) return null;
  return { buffer: found.buffer[0]!, generator: found.generator, callback: found.callback };
}

interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

/**
 * Makes `socket` read into the memory `target()` returns, calling `onRead(bytes)` after each
 * read with the number of bytes written there; `target` is asked again after each call. False,
 * with the socket unchanged, when this Node.js cannot do it: read 'data' events then.
 *
 * Call it before the event loop turns after the socket was accepted or created (no read has
 * happened yet). 'end', 'close', 'error', pause() and resume() work as usual; 'data' is not
 * emitted. `onRead` returning false pauses the socket, as a full stream buffer would.
 */
export function readInto(
  socket: net.Socket,
  target: () => Buffer,
  onRead: (bytes: number) => boolean,
): boolean {
  keys ??= findKeys();
  const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> })._handle;
  if (keys === null || typeof handle?.useUserBuffer !== 'function') return false;
  if (socket.readableLength > 0) return false;
  const record = socket as unknown as Record<symbol, unknown>;
  record[keys.buffer] = true;
  record[keys.generator] = target;
  record[keys.callback] = (bytes: number) => onRead(bytes);
  // biome-ignore lint/correctness/useHookAtTopLevel: a method of Node's stream handle, not a React hook.
  handle.useUserBuffer(target());
  return true;
}
