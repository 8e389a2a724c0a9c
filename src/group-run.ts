/**
 * A group commit: one run of an operation serves every caller who asked before it began. A
 * caller arriving while a run is under way waits for the next run, which all who arrive
 * meanwhile share. Made for fsync: one flush of a file or folder makes durable every change
 * made to it before the flush started, so concurrent callers need not each pay for one.
 *
 * Shared by the layers (like errors.ts): the index's write-ahead log and the storage's folders
 * are synced this way. No I/O of its own.
 */
export class GroupRun {
  readonly #operation: () => Promise<void>;
  /** The run under way. */
  #running: Promise<void> | undefined;
  /** The run to start when the current one ends, shared by those who asked meanwhile. */
  #next: Promise<void> | undefined;

  constructor(operation: () => Promise<void>) {
    this.#operation = operation;
  }

  /** True while a run is under way or waiting to start. */
  get isBusy(): boolean {
    return this.#running !== undefined || this.#next !== undefined;
  }

  /** Resolves once a run that began after this call has completed; rejects with its error. */
  run(): Promise<void> {
    if (this.#running === undefined) return this.#start();
    this.#next ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#next = undefined;
        return this.#start();
      });
    return this.#next;
  }

  /** Settles once nothing runs or waits to run (for closing). */
  async settled(): Promise<void> {
    while (this.isBusy) await Promise.allSettled([this.#running, this.#next]);
  }

  #start(): Promise<void> {
    const running = this.#operation().finally(() => {
      if (this.#running === running) this.#running = undefined;
    });
    this.#running = running;
    return running;
  }
}
