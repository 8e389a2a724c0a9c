/**
 * Group commit for the index: instances that finish while a commit is running are indexed
 * together in the next transaction, so several associations share one fsync of the database.
 * A record resolves only once its transaction has committed.
 *
 * Layer: server.
 */

import type { IndexRepository, InstanceRecord } from '../db/repositories/index-repository.js';

interface Waiting {
  readonly record: InstanceRecord;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Batches `addInstances` calls. */
export class IndexBatcher {
  readonly #index: IndexRepository;
  #queue: Waiting[] = [];
  #isCommitting = false;

  constructor(index: IndexRepository) {
    this.#index = index;
  }

  /** Indexes a record; resolves when it is committed. */
  add(record: InstanceRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ record, resolve, reject });
      if (!this.#isCommitting) {
        this.#isCommitting = true;
        // Instances finishing in this same tick join the batch; those finishing while it
        // commits (PostgreSQL, or an fsync) make the next one. A setImmediate here would
        // wait for a whole turn of the event loop, which cost more than the commit.
        queueMicrotask(() => void this.#commitLoop());
      }
    });
  }

  async #commitLoop(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        await this.#index.addInstances(batch.map((w) => w.record));
        for (const waiting of batch) waiting.resolve();
      } catch {
        // One bad record must not fail the others: retry them one by one.
        for (const waiting of batch) {
          try {
            await this.#index.addInstances([waiting.record]);
            waiting.resolve();
          } catch (error) {
            waiting.reject(error);
          }
        }
      }
    }
    this.#isCommitting = false;
  }
}
