/**
 * Writes one file atomically and durably: bytes go to a temporary file on the same volume; on
 * commit it is flushed (fsync, in `fsync` durability), linked under its final name without ever
 * replacing another file (or renamed over it, when replacing is wanted), and its directory is
 * flushed. A file under a final name is therefore always complete; an aborted write leaves only
 * a temporary file, which `abort` removes and start-up cleans.
 *
 * Layer: storage.
 */

import { randomBytes } from 'node:crypto';
import {
  close,
  createWriteStream,
  constants as fsConstants,
  fsync,
  open as openFd,
  type WriteStream,
} from 'node:fs';
import { link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const openFile = promisify(openFd);
const syncFile = promisify(fsync);
const closeFile = promisify(close);

/** `fsync`: file and directory flushed before commit resolves; `os`: left to the operating system. */
export type Durability = 'fsync' | 'os';

/** Suffix of temporary files, all kept in the incoming folder. */
export const TEMP_SUFFIX = '.part';

/** Flushes a directory's entries to disk. */
export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, fsConstants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Creates `path` and its missing parents, flushing each parent that gained an entry. */
export async function makeDirectories(path: string, durability: Durability): Promise<void> {
  const first = await mkdir(path, { recursive: true });
  if (first === undefined || durability === 'os') return;
  // Every directory from the first one created down to `path` is new: flush its parent.
  for (let dir = path; ; dir = dirname(dir)) {
    await syncDirectory(dirname(dir));
    if (dir === first) break;
  }
}

/** One file being written. */
export class AtomicWriter {
  readonly tempPath: string;
  /** A plain descriptor: the stream writes through it, and we fsync and close it ourselves. */
  readonly #fd: number;
  readonly #stream: WriteStream;
  #bytes = 0;
  #isDone = false;
  #isFinished = false;

  private constructor(tempPath: string, fd: number) {
    this.tempPath = tempPath;
    this.#fd = fd;
    this.#stream = createWriteStream('', { fd, autoClose: false, highWaterMark: 1024 * 1024 });
    // An error is reported by commit or abort; until then it must not escape as an event.
    this.#stream.on('error', () => undefined);
  }

  /** Opens a new temporary file in `incomingDir`. */
  static async create(incomingDir: string): Promise<AtomicWriter> {
    const tempPath = join(
      incomingDir,
      `${Date.now()}-${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`,
    );
    const fd = await openFile(tempPath, 'wx', 0o644);
    return new AtomicWriter(tempPath, fd);
  }

  get bytesWritten(): number {
    return this.#bytes;
  }

  /** Queues bytes; false when the caller should await `drained()` before writing more. */
  write(chunk: Buffer): boolean {
    this.#bytes += chunk.length;
    return this.#stream.write(chunk);
  }

  /** Resolves when queued bytes have gone to the file (or the stream failed). */
  drained(): Promise<void> {
    // A stream that failed emits neither 'drain' nor another 'error': commit reports the error.
    if (!this.#stream.writableNeedDrain || this.#stream.errored !== null || this.#stream.destroyed)
      return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#stream.off('drain', done);
        this.#stream.off('error', done);
        resolve();
      };
      this.#stream.on('drain', done);
      this.#stream.on('error', done);
    });
  }

  /**
   * Finishes the file and puts it under the first free name `pathFor(0)`, `pathFor(1)`, ...
   * Without `replace` an existing file is never touched (a hard link fails on it); with
   * `replace`, `pathFor(0)` is replaced atomically. Returns the path used.
   */
  async commit(
    pathFor: (attempt: number) => string,
    durability: Durability,
    replace = false,
  ): Promise<string> {
    await this.#finish(durability);
    let finalPath = pathFor(0);
    await makeDirectories(dirname(finalPath), durability);
    if (replace) {
      await rename(this.tempPath, finalPath);
    } else {
      for (let attempt = 1; ; attempt++) {
        try {
          await link(this.tempPath, finalPath);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 10_000) throw error;
          finalPath = pathFor(attempt);
        }
      }
      await unlink(this.tempPath);
    }
    this.#isDone = true;
    if (durability === 'fsync') await syncDirectory(dirname(finalPath));
    return finalPath;
  }

  /** Drops the temporary file. Safe to call after a failed commit. */
  async abort(): Promise<void> {
    if (this.#isDone) return;
    this.#isDone = true;
    if (!this.#stream.destroyed) this.#stream.destroy();
    if (!this.#isFinished) await closeFile(this.#fd).catch(() => undefined);
    await unlink(this.tempPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }

  async #finish(durability: Durability): Promise<void> {
    if (this.#isFinished) return;
    // A write that failed earlier (ENOSPC, EIO, EFBIG) must fail the commit, not leave a short
    // file under a final name: the stream reports it to `end`'s callback, not as a new event.
    await new Promise<void>((resolve, reject) => {
      this.#stream.end((error?: Error | null) => (error ? reject(error) : resolve()));
    });
    if (durability === 'fsync') await syncFile(this.#fd);
    this.#isFinished = true;
    await closeFile(this.#fd);
  }
}
