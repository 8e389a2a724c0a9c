/**
 * The hand-off of completed series as one unit that starts and stops with the DICOM service:
 * the completion tracker (fed by the store and the associations) and the worker that delivers
 * what completions write. After a restart, copies a crash cut short are cleared from the
 * handler folder before any copy runs, deliveries left pending run again, and series left
 * receiving get their timers back.
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import type { OpenDatabase } from '../db/dialect.js';
import { HandoffRepository } from '../db/repositories/handoff-repository.js';
import { SeriesStateRepository } from '../db/repositories/series-state-repository.js';
import type { Settings } from '../settings/schema.js';
import type { AssociationActivity } from './dicom-server.js';
import type { ServerEvents } from './events.js';
import { cleanHandlerIncoming } from './handoff/folder-copy.js';
import { type HandoffActions, HandoffWorker, type RetryPolicy } from './handoff-worker.js';
import {
  handlerFolderOf,
  type ReceivedInstance,
  SeriesCompletionTracker,
} from './series-completion.js';
import type { TransactionLog } from './transaction-log.js';

/** What the hand-off runs with. */
export interface HandoffServiceOptions {
  readonly database: OpenDatabase;
  readonly settings: () => Settings;
  readonly storageRoot: string;
  readonly dataDir: string;
  readonly logger: Logger;
  readonly transactionLog: TransactionLog;
  readonly events?: ServerEvents;
  /** The actions and retry timing (tests shorten them). */
  readonly actions?: HandoffActions;
  readonly retry?: Partial<RetryPolicy>;
}

/** Series completion and the delivery of what completes. */
export class HandoffService {
  readonly #options: HandoffServiceOptions;
  readonly #completion: SeriesCompletionTracker;
  readonly #worker: HandoffWorker;

  constructor(options: HandoffServiceOptions) {
    this.#options = options;
    const { database, settings, logger, events } = options;
    this.#worker = new HandoffWorker({
      jobs: new HandoffRepository(database),
      settings,
      logger: logger.child({ component: 'handoff' }),
      transactionLog: options.transactionLog,
      ...(events !== undefined && { events }),
      ...(options.actions !== undefined && { actions: options.actions }),
      ...(options.retry !== undefined && { retry: options.retry }),
    });
    this.#completion = new SeriesCompletionTracker({
      states: new SeriesStateRepository(database),
      settings,
      storageRoot: options.storageRoot,
      dataDir: options.dataDir,
      logger: logger.child({ component: 'series-completion' }),
      ...(events !== undefined && { events }),
      onCompleted: (done) => {
        if (done.jobs > 0) this.#worker.notify();
      },
    });
  }

  /** Series being received now (waiting for their completion). */
  get receivingCount(): number {
    return this.#completion.receivingCount;
  }

  /** Whether a series being received is being sent now (see SeriesCompletionTracker). */
  isSending(seriesInstanceUid: string): boolean | undefined {
    return this.#completion.isSending(seriesInstanceUid);
  }

  /** An instance was stored and indexed (the store's hook). */
  instanceReceived(instance: ReceivedInstance): Promise<void> | undefined {
    return this.#completion.instanceReceived(instance);
  }

  /** An association stored an instance of a series, or ended (the DICOM server's hook). */
  associationActivity(activity: AssociationActivity): void {
    if (activity.type === 'stored') {
      this.#completion.associationStored(activity.associationId, activity.seriesInstanceUid);
    } else {
      this.#completion.associationClosed(activity.associationId, activity.isReleased);
    }
  }

  /** Jobs may be due now (an operator retried one). */
  notify(): void {
    this.#worker.notify();
  }

  /** Clears interrupted copies, then runs what is pending and restores the receiving series. */
  async start(): Promise<void> {
    await this.#cleanHandlerFolder();
    await this.#worker.start();
    await this.#completion
      .start()
      .catch((error: unknown) =>
        this.#options.logger.error({ err: error }, 'series left receiving not taken back'),
      );
  }

  /** Stops completion (receiving series stay stored) and the worker; never throws. */
  async stop(graceMs: number): Promise<void> {
    try {
      await this.#completion.stop();
      await this.#worker.stop(graceMs);
    } catch (error) {
      this.#options.logger.error({ err: error }, 'hand-off did not stop cleanly');
    }
  }

  /** Removes the leftovers of interrupted copies from the handler folder; never throws. */
  async #cleanHandlerFolder(): Promise<void> {
    const folder = handlerFolderOf(this.#options.settings(), this.#options.dataDir);
    if (folder === undefined) return;
    try {
      const removed = await cleanHandlerIncoming(folder);
      if (removed > 0) {
        this.#options.logger.info({ removed }, 'removed interrupted handler-folder copies');
      }
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'handler folder not cleaned of interrupted copies');
    }
  }
}
