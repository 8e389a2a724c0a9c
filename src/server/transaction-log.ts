/**
 * The transaction log writer: rows are collected and written in batches (one transaction per
 * quarter second, or sooner when many are waiting), so that the audit trail costs the receive
 * path one statement per batch rather than one per instance; rows older than the retention
 * period are pruned as it goes. A failed write is logged and its rows dropped: the audit trail
 * must never hold back or fail a DICOM operation.
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import type {
  TransactionLogRepository,
  TransactionRecord,
} from '../db/repositories/transaction-log-repository.js';
import type { ServerEvents } from './events.js';

/** Longest a row waits before it is written. */
const FLUSH_MS = 250;
/** Rows that trigger a write at once. */
const FLUSH_ROWS = 500;
/** Rows kept waiting at most (the database is down): beyond that new ones are dropped. */
const MAX_WAITING = 50_000;
/** How often old rows are pruned. */
const PRUNE_EVERY_MS = 60 * 60 * 1000;

/** Writes transaction rows in batches. */
export class TransactionLog {
  readonly #repository: TransactionLogRepository;
  readonly #logger: Logger;
  readonly #retentionDays: () => number;
  #waiting: TransactionRecord[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #lastPrune = 0;
  #dropped = 0;

  readonly #events: ServerEvents | undefined;

  constructor(
    repository: TransactionLogRepository,
    logger: Logger,
    retentionDays: () => number,
    events?: ServerEvents,
  ) {
    this.#repository = repository;
    this.#logger = logger;
    this.#retentionDays = retentionDays;
    this.#events = events;
  }

  /** Queues a row. */
  record(row: TransactionRecord): void {
    if (this.#waiting.length >= MAX_WAITING) {
      this.#dropped += 1;
      return;
    }
    this.#waiting.push(row);
    if (this.#waiting.length >= FLUSH_ROWS) this.#flushSoon(0);
    else this.#flushSoon(FLUSH_MS);
  }

  /** Writes every waiting row. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#waiting;
    this.#waiting = [];
    const write = this.#writing.then(() => this.#write(batch));
    this.#writing = write;
    await write;
  }

  #flushSoon(delayMs: number): void {
    if (this.#timer !== undefined && delayMs > 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.flush(), delayMs);
    this.#timer.unref();
  }

  async #write(batch: TransactionRecord[]): Promise<void> {
    if (this.#dropped > 0) {
      this.#logger.warn(
        { dropped: this.#dropped },
        'transaction log rows dropped: too many waiting',
      );
      this.#dropped = 0;
    }
    try {
      if (batch.length > 0) {
        await this.#repository.insert(batch);
        this.#events?.emit('transactions', batch);
      }
      if (Date.now() - this.#lastPrune >= PRUNE_EVERY_MS) {
        this.#lastPrune = Date.now();
        const before = new Date(Date.now() - this.#retentionDays() * 86_400_000).toISOString();
        const removed = await this.#repository.prune(before);
        if (removed > 0) this.#logger.info({ removed, before }, 'transaction log pruned');
      }
    } catch (error) {
      this.#logger.error({ err: error, rows: batch.length }, 'transaction log rows not written');
    }
  }
}
