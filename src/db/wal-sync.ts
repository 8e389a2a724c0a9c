/**
 * Durable SQLite commits without blocking the event loop. With `synchronous = FULL` SQLite
 * fsyncs its write-ahead log inside COMMIT, and better-sqlite3 runs COMMIT on the calling
 * thread: every received instance held the whole process for one fsync (1.6 to 2.2 ms on these
 * machines), during which no other association moved. Instead the connection runs with
 * `synchronous = NORMAL` (COMMIT writes the log's frames without an fsync) and the log is
 * fsynced here, on the thread pool, through a descriptor of our own: once that fsync returns,
 * every transaction committed before it began is as durable as FULL would have made it (the
 * same frames, synced; recovery keeps every frame up to the last valid commit).
 *
 * One fsync serves every commit made before it starts (a group commit across associations);
 * a caller arriving while one runs waits for the next. A timer syncs once a second, so that
 * writes nobody waits for (settings, job states) are durable soon after too.
 *
 * Layer: db.
 */

import { closeSync, fstatSync, fsync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import { GroupRun } from '../group-run.js';

const syncFile = promisify(fsync);

/** How often the log is synced when nobody asks (writes nobody waits for). */
const BACKGROUND_SYNC_MS = 1_000;

/** Fsyncs a SQLite database's write-ahead log on demand, one fsync for all waiting. */
export class WalSync {
  readonly #walPath: string;
  #fd: number | undefined;
  /** One fsync for every commit made before it starts. */
  readonly #group = new GroupRun(() => this.#syncOnce());
  #timer: NodeJS.Timeout | undefined;
  #isClosed = false;

  /** `databaseFile`: the SQLite file; its log is `<file>-wal`. */
  constructor(databaseFile: string) {
    this.#walPath = `${databaseFile}-wal`;
  }

  /** Starts (or stops) syncing once a second in the background. */
  setBackground(isOn: boolean): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (!isOn || this.#isClosed) return;
    this.#timer = setInterval(() => {
      this.sync().catch(() => {
        // The next sync a receive waits for reports the error.
      });
    }, BACKGROUND_SYNC_MS);
    this.#timer.unref();
  }

  /** Resolves once every transaction committed before this call is on disk. */
  sync(): Promise<void> {
    return this.#group.run();
  }

  /** Stops the timer and closes the descriptor (after a sync under way). */
  async close(): Promise<void> {
    this.#isClosed = true;
    this.setBackground(false);
    await this.#group.settled();
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  async #syncOnce(): Promise<void> {
    const fd = this.#descriptor();
    // No log yet: nothing was committed since it was last removed.
    if (fd === undefined) return;
    await syncFile(fd);
  }

  /**
   * Our descriptor of the log, opened when first needed and again when the log was removed
   * and made anew (SQLite removes it when the last connection closes).
   */
  #descriptor(): number | undefined {
    if (this.#fd !== undefined && fstatSync(this.#fd).nlink > 0) return this.#fd;
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    try {
      this.#fd = openSync(this.#walPath, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    return this.#fd;
  }
}
