/**
 * Writes one file atomically and durably: bytes go to a temporary file on the same volume; on
 * commit it is flushed (fsync, in `fsync` durability), renamed to its final name, never over
 * another file unless replacing is wanted, and its directory is flushed. A file under a final name is therefore always complete; an aborted write leaves only
 * a temporary file, which `abort` removes and start-up cleans.
 *
 * Layer: storage.
 *
 * Performance: on the receive path every thread-pool round trip costs two context switches,
 * which on these 2-core machines dominated the time of a small instance. So data is coalesced
 * into writes of 256 KiB (an async `writev` while more arrives, the rest written at commit),
 * the quick metadata calls (open, close, link, unlink, mkdir of a new folder) are made
 * synchronously, and only the slow ones (fsync of a file or folder) go to the thread pool.
 *
 * The bytes given to `write` are copied at once into accumulation buffers: the receive path
 * reuses its read buffer, so a writer keeps no reference to a chunk once `write` returns. The
 * buffers come from a small pool shared by all writers: a fresh large buffer per instance was
 * measured to double the kernel's cost of copying it to the file (cold memory, page faults).
 *
 * A writer told to `writeDirectly` (its caller knows it is the only one at work: one
 * association) instead writes each chunk at once, synchronously, from where it lies: the kernel
 * copies it into the page cache while it is still in this core's cache, and neither a copy of
 * ours nor a thread-pool round trip is paid; with `fsync`, its file is flushed synchronously
 * at commit too. Measured with CT images of 512 KB on one association: +21% images/s with
 * `os` (with the store handler taking the data set from its first fragment), and +7% more
 * with `fsync` from the synchronous flush (medians of six, 442 to 473). Over four associations
 * it was no faster (the copies into the page cache then all run on the event loop's one
 * core), so it is not used there.
 */

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  constants as fsConstants,
  fsync,
  fsyncSync,
  mkdirSync,
  open as openCallback,
  openSync,
  renameSync,
  rmSync,
  unlinkSync,
  writev,
  writevSync,
} from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { GroupRun } from '../group-run.js';
import type { Settings } from '../settings/schema.js';

const syncFile = promisify(fsync);
const openFd = promisify(openCallback);
const writeBuffers = promisify(writev);

/** `fsync`: file and directory flushed before commit resolves; `os`: left to the operating system. */
export type Durability = Settings['durability'];

/** Suffix of temporary files, all kept in the incoming folder. */
export const TEMP_SUFFIX = '.part';

/** Size of an accumulation buffer: bytes gathered before they are written. */
const FLUSH_BYTES = 256 * 1024;

/** Full buffers waiting or being written at which `write` asks the caller to wait. */
const BACKPRESSURE_BUFFERS = 2;

/**
 * Free accumulation buffers kept for the next writers (4 MiB); more are left to the garbage
 * collector. Enough for five associations receiving at once (a writer uses up to three): with
 * 8, four associations of CT images dropped and reallocated buffers all the time, and the
 * garbage waiting for collection raised peak RSS from about 135 to 145-155 MB.
 */
const MAX_FREE_BUFFERS = 16;

/** The pool of free accumulation buffers, shared by all writers (see the module comment). */
const freeBuffers: Buffer[] = [];

/** A free accumulation buffer of FLUSH_BYTES; its contents are garbage. */
function takeBuffer(): Buffer {
  // Last in, first out: the buffer used last is the likeliest to be warm in the caches.
  // allocUnsafeSlow: a buffer of its own, not a slice of Node's small-buffer pool.
  return freeBuffers.pop() ?? Buffer.allocUnsafeSlow(FLUSH_BYTES);
}

/** Gives a buffer back to the pool; only once no write in flight still reads it. */
function releaseBuffer(buffer: Buffer): void {
  if (freeBuffers.length < MAX_FREE_BUFFERS) freeBuffers.push(buffer);
}

/**
 * Flushes a directory's entries to disk. Opening and closing a folder are quick: made on the
 * calling thread, only the fsync goes to the thread pool (one round trip instead of three).
 */
export async function syncDirectory(path: string): Promise<void> {
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await syncFile(fd);
  } finally {
    closeSync(fd);
  }
}

/** Creates `path` and its missing parents, flushing each parent that gained an entry. */
export async function makeDirectories(path: string, durability: Durability): Promise<void> {
  const first = await mkdir(path, { recursive: true });
  await syncNewDirectories(path, first, durability);
}

/** With `fsync`, flushes the parent of every directory from `first` (newly made) down to `path`. */
async function syncNewDirectories(
  path: string,
  first: string | undefined,
  durability: Durability,
): Promise<void> {
  if (first === undefined || durability === 'os') return;
  for (let dir = path; ; dir = dirname(dir)) {
    await syncDirectory(dirname(dir));
    if (dir === first) break;
  }
}

/**
 * Folders known to exist, so that a series of files into one folder asks the disk once; and
 * the flushes of folders, shared by files renamed into one folder at the same time.
 */
export class KnownDirectories {
  readonly #known = new Set<string>();
  /** Folders being made: a second store into a new folder waits until its entry is durable. */
  readonly #making = new Map<string, Promise<void>>();
  /** The flushes under way, by folder (removed once none runs or waits). */
  readonly #syncing = new Map<string, GroupRun>();
  readonly #limit: number;

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  /** Makes sure `path` exists (and, with `fsync`, that new folders are durable). */
  async ensure(path: string, durability: Durability): Promise<void> {
    if (this.#known.has(path)) return;
    const making = this.#making.get(path);
    if (making !== undefined) return making;
    const made = (async () => {
      const first = mkdirSync(path, { recursive: true });
      await syncNewDirectories(path, first, durability);
      if (this.#known.size >= this.#limit) this.#known.clear();
      this.#known.add(path);
    })();
    this.#making.set(path, made);
    try {
      await made;
    } finally {
      this.#making.delete(path);
    }
  }

  /**
   * Flushes the entries of folder `path` to disk. One flush serves every rename into the folder
   * made before it started: several associations storing one series at once share flushes
   * instead of queueing one each.
   */
  async sync(path: string): Promise<void> {
    let group = this.#syncing.get(path);
    if (group === undefined) {
      group = new GroupRun(() => syncDirectory(path));
      this.#syncing.set(path, group);
    }
    try {
      await group.run();
    } finally {
      if (!group.isBusy && this.#syncing.get(path) === group) this.#syncing.delete(path);
    }
  }

  /** Forgets a folder (it was removed). */
  forget(path: string): void {
    this.#known.delete(path);
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Writes all of `buffers` at the current position, however many calls it takes. */
async function writeAll(fd: number, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    let { bytesWritten: written } = await writeBuffers(fd, rest);
    const next: Buffer[] = [];
    for (const buffer of rest) {
      if (written >= buffer.length) written -= buffer.length;
      else {
        next.push(buffer.subarray(written));
        written = 0;
      }
    }
    rest = next;
  }
}

function writeAllSync(fd: number, buffers: Buffer[]): void {
  let rest = buffers;
  while (rest.length > 0) {
    let written = writevSync(fd, rest);
    const next: Buffer[] = [];
    for (const buffer of rest) {
      if (written >= buffer.length) written -= buffer.length;
      else {
        next.push(buffer.subarray(written));
        written = 0;
      }
    }
    rest = next;
  }
}

/** Tells apart the temporary files this process makes (a random start: another process's are others). */
let tempCounter = randomBytes(4).readUInt32BE(0);

/**
 * A new temporary file's path: unique in this process by a counter (a random number per file
 * cost more than its write), and opened with `wx`, so a name taken all the same fails.
 */
function newTempPath(incomingDir: string): string {
  tempCounter = (tempCounter + 1) % 0x1_0000_0000;
  return join(incomingDir, `${Date.now()}-${process.pid}-${tempCounter}${TEMP_SUFFIX}`);
}

/**
 * Temporary files opened ahead of need. Creating a file is the slowest step of a small
 * instance's reception when the file system is busy (0.3 to 0.7 ms measured here, most of it in
 * ext4's inode allocation): a file opened on the thread pool while the previous instance was
 * still arriving takes that off the path between the peer's request and our response.
 *
 * The files are spread over several folders: renaming a file out of a folder waits for that
 * folder's lock, which a create in it holds for as long as the create takes (perf showed the
 * main thread spinning on it when spares and received files shared one folder).
 */
export class SpareTempFiles {
  readonly #folders: readonly string[];
  readonly #size: number;
  readonly #ready: AtomicWriter[] = [];
  #next = 0;
  #opening = 0;
  #isClosed = false;
  /** Resolves the callers of `settled` once nothing is being opened. */
  #settledWaiters: (() => void)[] = [];

  /** `folders`: existing folders on the storage volume, used in turn. */
  constructor(folders: readonly string[], size = 2) {
    this.#folders = folders;
    this.#size = size;
  }

  /** The paths of the spare files ready now (for tests: every other temporary file is in use). */
  get readyPaths(): string[] {
    return this.#ready.map((writer) => writer.tempPath);
  }

  /**
   * Resolves once no spare is being opened (for tests: a file being opened ahead is on disk
   * before it is among `readyPaths`).
   */
  settled(): Promise<void> {
    if (this.#opening === 0) return Promise.resolve();
    return new Promise((resolve) => this.#settledWaiters.push(resolve));
  }

  /** A temporary file: a spare one if ready, else one opened now. Tops the spares up. */
  async take(): Promise<AtomicWriter> {
    return this.takeReady() ?? this.#tookNow(await AtomicWriter.create(this.#nextFolder()));
  }

  /** A spare temporary file if one is ready, at once; else undefined. Tops the spares up. */
  takeReady(): AtomicWriter | undefined {
    const writer = this.#ready.shift();
    return writer === undefined ? undefined : this.#tookNow(writer);
  }

  #tookNow(writer: AtomicWriter): AtomicWriter {
    this.#refill();
    return writer;
  }

  /** Removes the spare files; `take` opens files on demand from then on. */
  async close(): Promise<void> {
    this.#isClosed = true;
    for (const writer of this.#ready.splice(0)) await writer.abort();
  }

  #nextFolder(): string {
    const folder = this.#folders[this.#next % this.#folders.length]!;
    this.#next += 1;
    return folder;
  }

  #refill(): void {
    while (!this.#isClosed && this.#ready.length + this.#opening < this.#size) {
      this.#opening += 1;
      AtomicWriter.createInBackground(this.#nextFolder())
        .then(
          async (writer) => {
            if (this.#isClosed) await writer.abort();
            else this.#ready.push(writer);
          },
          () => {
            // The next take opens its file itself, and reports the error then.
          },
        )
        .finally(() => {
          this.#opening -= 1;
          if (this.#opening === 0) for (const resolve of this.#settledWaiters.splice(0)) resolve();
        });
    }
  }
}

/** One file being written. */
export class AtomicWriter {
  readonly tempPath: string;
  readonly #fd: number;
  /** The buffer being filled (taken from the pool on the first byte), and how full it is. */
  #current: Buffer | undefined;
  #filled = 0;
  /** Full buffers waiting for the write in flight to end, in file order. */
  #queued: Buffer[] = [];
  /** The buffers of the write in flight: back to the pool when it has ended. */
  #writing: Buffer[] = [];
  /** The write in flight; settles (never rejects) once it ended and the next one started. */
  #flushing: Promise<void> | undefined;
  #error: Error | undefined;
  #bytes = 0;
  /** Each chunk written at once, synchronously, without accumulation buffers. */
  #isDirect = false;
  #isClosed = false;
  #isDone = false;

  private constructor(tempPath: string, fd: number) {
    this.tempPath = tempPath;
    this.#fd = fd;
  }

  /** Opens a new temporary file in `incomingDir`, on the calling thread. */
  static async create(incomingDir: string): Promise<AtomicWriter> {
    const tempPath = newTempPath(incomingDir);
    return new AtomicWriter(tempPath, openSync(tempPath, 'wx', 0o644));
  }

  /** Opens a new temporary file in `incomingDir` on the thread pool. */
  static async createInBackground(incomingDir: string): Promise<AtomicWriter> {
    const tempPath = newTempPath(incomingDir);
    return new AtomicWriter(tempPath, await openFd(tempPath, 'wx', 0o644));
  }

  get bytesWritten(): number {
    return this.#bytes;
  }

  /**
   * From now on, writes each chunk at once, synchronously, from where it lies, and flushes the
   * file synchronously at commit (see the top of this file): for a writer that is the only one
   * at work. Before the first byte, or not at all.
   */
  writeDirectly(): void {
    if (this.#bytes === 0) this.#isDirect = true;
  }

  /**
   * Copies bytes in to be written; false when the caller should await `drained()` before
   * writing more. `chunk` is not referred to once this returns: the caller may reuse it.
   */
  write(chunk: Buffer): boolean {
    // After a failed write nothing more is kept (commit reports the error): memory stays flat
    // while the sender finishes. After an abort nothing is kept either.
    if (chunk.length === 0 || this.#error !== undefined || this.#isDone) return true;
    this.#bytes += chunk.length;
    if (this.#isDirect) {
      // A failure is kept for commit to report, as a failed write on the thread pool is.
      try {
        writeAllSync(this.#fd, [chunk]);
      } catch (error) {
        this.#error = error as Error;
      }
      return true;
    }
    // A chunk larger than the room left (up to 16 MiB) is split over several buffers.
    for (let from = 0; from < chunk.length; ) {
      this.#current ??= takeBuffer();
      const copied = chunk.copy(this.#current, this.#filled, from);
      from += copied;
      this.#filled += copied;
      if (this.#filled === FLUSH_BYTES) {
        this.#queued.push(this.#current);
        this.#current = undefined;
        this.#filled = 0;
        // Started at once, so that the thread pool writes while the rest is copied.
        if (this.#flushing === undefined) this.#flush();
      }
    }
    return this.#fullBuffers() < BACKPRESSURE_BUFFERS;
  }

  /** Resolves when the writer can take more (or a write failed: commit reports it). */
  async drained(): Promise<void> {
    while (
      this.#flushing !== undefined &&
      this.#fullBuffers() >= BACKPRESSURE_BUFFERS &&
      this.#error === undefined
    ) {
      await this.#flushing;
    }
  }

  /**
   * Finishes the file and puts it under the first free name `pathFor(0)`, `pathFor(1)`, ...
   * Without `replace` an existing file is never touched (another process writing into the same
   * storage is not supported); with `replace`, `pathFor(0)` is replaced atomically. Returns
   * the path used, once the file is durable under it (with `fsync`: its folder flushed too;
   * on a failure to flush it, the file is removed again).
   */
  async commit(
    pathFor: (attempt: number) => string,
    durability: Durability,
    replace = false,
    directories: KnownDirectories = new KnownDirectories(),
  ): Promise<string> {
    const placed = await this.place(pathFor, durability, replace, directories);
    await placed.makeDurable();
    return placed.path;
  }

  /**
   * As `commit`, but resolves as soon as the file is under its final name (complete, its data
   * flushed with `fsync`), leaving the flush of its folder to `makeDurable`: the caller may index
   * first and flush the folder and the index together (one journal commit of the file system
   * can then carry both), and must wait for both before it answers. If the flush fails, the
   * file is removed (unless it replaced another) and `makeDurable` rejects.
   */
  async place(
    pathFor: (attempt: number) => string,
    durability: Durability,
    replace = false,
    directories: KnownDirectories = new KnownDirectories(),
  ): Promise<{ readonly path: string; makeDurable(): Promise<void> }> {
    await this.#finish(durability);
    let finalPath = pathFor(0);
    await directories.ensure(dirname(finalPath), durability);
    if (replace) {
      renameSync(this.tempPath, finalPath);
    } else {
      let attempt = 0;
      let hasRemadeFolder = false;
      for (;;) {
        // No await between the check and the rename: no other store of this process can take
        // the name in between, and one rename costs the file system less than link + unlink.
        if (existsSync(finalPath)) {
          if (attempt >= 10_000) throw new Error(`no free name for ${pathFor(0)}`);
          attempt += 1;
          finalPath = pathFor(attempt);
          await directories.ensure(dirname(finalPath), durability);
          continue;
        }
        try {
          renameSync(this.tempPath, finalPath);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || hasRemadeFolder) throw error;
          // The folder went away since we last saw it (cleanup): make it again, once.
          hasRemadeFolder = true;
          directories.forget(dirname(finalPath));
          await directories.ensure(dirname(finalPath), durability);
        }
      }
    }
    this.#isDone = true;
    const path = finalPath;
    const makeDurable = async (): Promise<void> => {
      if (durability !== 'fsync') return;
      try {
        await directories.sync(dirname(path));
      } catch (error) {
        // Not durable, so not stored: the caller answers a failure, and no file may stay.
        if (!replace) rmSync(path, { force: true });
        throw error;
      }
    };
    return { path, makeDurable };
  }

  /** Drops the temporary file. Safe to call after a failed commit. */
  async abort(): Promise<void> {
    if (this.#isDone) return;
    this.#isDone = true;
    // Once done, an ended write starts no other, and the buffers go back to the pool only when
    // no write reads them any more.
    while (this.#flushing !== undefined) await this.#flushing;
    this.#releaseBuffers();
    this.#close();
    try {
      unlinkSync(this.tempPath);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /** Full buffers waiting or being written. */
  #fullBuffers(): number {
    return this.#queued.length + this.#writing.length;
  }

  /** Writes every queued buffer, in one `writev`, on the thread pool; one write at a time. */
  #flush(): void {
    const buffers = this.#queued;
    this.#queued = [];
    this.#writing = buffers;
    this.#flushing = writeAll(this.#fd, buffers).then(
      () => {
        this.#endWrite(buffers);
        if (this.#queued.length > 0 && !this.#isDone) this.#flush();
      },
      (error: Error) => {
        this.#error ??= error;
        this.#endWrite(buffers);
        // Nothing more is written: what waits is dropped (commit reports the error).
        this.#releaseBuffers();
      },
    );
  }

  #endWrite(buffers: readonly Buffer[]): void {
    this.#flushing = undefined;
    this.#writing = [];
    for (const buffer of buffers) releaseBuffer(buffer);
  }

  /** Gives back the buffers no write is reading (queued and current); none may be in flight. */
  #releaseBuffers(): void {
    for (const buffer of this.#queued) releaseBuffer(buffer);
    this.#queued = [];
    if (this.#current !== undefined) releaseBuffer(this.#current);
    this.#current = undefined;
    this.#filled = 0;
  }

  /** Writes what is left, flushes (with `fsync`) and closes; throws a write error from any time. */
  async #finish(durability: Durability): Promise<void> {
    if (this.#isClosed) return;
    // Each ended write starts the next while buffers are queued: once none is in flight, all
    // full buffers are in the file (or a write failed).
    while (this.#flushing !== undefined) await this.#flushing;
    if (this.#error !== undefined) throw this.#error;
    const rest = this.#current;
    if (rest !== undefined) {
      const filled = this.#filled;
      this.#current = undefined;
      this.#filled = 0;
      // A short write that failed (ENOSPC, EIO, EFBIG) must fail the commit, not leave a short
      // file under a final name. Synchronous: the buffer is free again when it returns.
      try {
        writeAllSync(this.#fd, [rest.subarray(0, filled)]);
      } finally {
        releaseBuffer(rest);
      }
    }
    if (durability === 'fsync') {
      // The only writer at work has nothing to let run meanwhile: no thread-pool round trip.
      if (this.#isDirect) fsyncSync(this.#fd);
      else await syncFile(this.#fd);
    }
    this.#close();
  }

  #close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    closeSync(this.#fd);
  }
}
