/**
 * Storage cleanup as the service runs it: the store's `StudyCleaner` removes whole oldest
 * studies past the retention period whose hand-off is done (storage/cleanup.ts over the
 * index), one cleanup at a time, for an instance that would pass the limit and for the
 * periodic job; `StorageCleanupJob` is that job, a timer that brings usage down to the
 * low-water mark a little after start-up, then every interval, and sooner once an instance
 * found the storage at its limit. Every removed study goes to the audit log as `system`.
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import type { AuditRepository } from '../db/repositories/audit-repository.js';
import {
  type RemovedStudy,
  removeOldStudies,
  type StudyCleanupIndex,
  type StudyCleanupReport,
} from '../storage/cleanup.js';
import type { FileInstanceStore } from './instance-store.js';

const MINUTE_MS = 60_000;

/** Why studies are removed: an instance found the limit, or the job's low-water mark. */
export type CleanupReason = 'limit' | 'low-water';

/** A cleanup that had nothing to do. */
export const NOTHING_CLEANED: StudyCleanupReport = {
  isEnough: false,
  studies: 0,
  instances: 0,
  freedBytes: 0,
  filesNotRemoved: [],
};

/** What the store's cleaner works with. */
export interface StudyCleanerOptions {
  readonly index: StudyCleanupIndex;
  readonly root: string;
  readonly retentionDays: number;
  readonly logger: Logger;
  /** Gives a removed study's bytes back (the quota). */
  readonly release: (bytes: number) => void;
  /** Told of each removed study (the audit log); a failure is logged, the cleanup goes on. */
  readonly onStudyRemoved?: (study: RemovedStudy, reason: CleanupReason) => Promise<void>;
}

/**
 * Runs the store's cleanups one at a time: one asked for while another runs waits for it
 * (and then usually finds its condition met).
 */
export class StudyCleaner {
  readonly #options: StudyCleanerOptions;
  #turn: Promise<void> = Promise.resolve();

  constructor(options: StudyCleanerOptions) {
    this.#options = options;
  }

  /** Removes old studies until `isEnough` holds (checked before each) or none may go. */
  run(reason: CleanupReason, isEnough: () => boolean): Promise<StudyCleanupReport> {
    return this.inTurn(() => this.#run(reason, isEnough));
  }

  /** Runs `work` after the cleanup in progress, holding the next one back until it ends. */
  inTurn<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(work);
    this.#turn = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #run(reason: CleanupReason, isEnough: () => boolean): Promise<StudyCleanupReport> {
    const { logger, retentionDays } = this.#options;
    const report = await removeOldStudies({
      index: this.#options.index,
      root: this.#options.root,
      retentionDays,
      now: Date.now(),
      isEnough,
      onRemoved: async (study) => {
        this.#options.release(study.sizeBytes);
        await this.#tell(study, reason);
      },
    });
    for (const file of report.filesNotRemoved) {
      // The path holds the patient ID in most layouts: debug only.
      logger.warn({ sopInstanceUid: file.sopInstanceUid, code: file.code }, 'file not removed');
      logger.debug({ filePath: file.filePath }, 'file not removed');
    }
    if (report.studies > 0 || !report.isEnough) {
      const { studies, instances, freedBytes, isEnough: isDone } = report;
      logger.info(
        { reason, studies, instances, freedBytes, retentionDays, isEnough: isDone },
        'storage cleanup removed studies older than the retention period',
      );
    }
    return report;
  }

  async #tell(study: RemovedStudy, reason: CleanupReason): Promise<void> {
    try {
      await this.#options.onStudyRemoved?.(study, reason);
    } catch (error) {
      this.#options.logger.error(
        { err: error, studyInstanceUid: study.studyInstanceUid },
        'removed study not reported',
      );
    }
  }
}

/** Writes a removed study to the audit log, as the user `system`. */
export async function auditRemovedStudy(
  audit: AuditRepository,
  study: RemovedStudy,
  reason: CleanupReason,
): Promise<void> {
  const why = reason === 'limit' ? 'storage limit reached' : 'above the low-water mark';
  await audit.record({
    username: 'system',
    action: 'storage cleanup',
    outcome: 'success',
    remoteAddress: '',
    detail:
      `study ${study.studyInstanceUid} deleted (${why}): ${study.files.length} instances, ` +
      `${study.sizeBytes} bytes, newest received ${study.newestReceivedAt}`,
  });
}

/** When the cleanup job runs. */
export interface CleanupTiming {
  /** After start-up. */
  readonly firstRunMs: number;
  /** Between the end of a run and the next. */
  readonly intervalMs: number;
  /** At least this long between the end of a run and a run asked for sooner (limit reached). */
  readonly minGapMs: number;
}

export const DEFAULT_CLEANUP_TIMING: CleanupTiming = {
  firstRunMs: MINUTE_MS,
  intervalMs: 10 * MINUTE_MS,
  minGapMs: MINUTE_MS,
};

/** The last run of the cleanup job. */
export interface LastCleanup {
  readonly finishedAt: string;
  readonly studies: number;
  readonly instances: number;
  readonly freedBytes: number;
  /** Usage reached the low-water mark (false: nothing more was old enough or free to go). */
  readonly isEnough: boolean;
}

/** Brings usage down to the low-water mark, on a timer, while the service runs. */
export class StorageCleanupJob {
  readonly #store: FileInstanceStore;
  readonly #lowWaterBytes: number;
  readonly #timing: CleanupTiming;
  readonly #logger: Logger;
  readonly #stopping = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #nextRunAt = 0;
  #lastEndedAt = 0;
  #running: Promise<StudyCleanupReport | undefined> | undefined;
  #last: LastCleanup | undefined;

  constructor(options: {
    readonly store: FileInstanceStore;
    readonly lowWaterBytes: number;
    readonly timing: CleanupTiming;
    readonly logger: Logger;
  }) {
    this.#store = options.store;
    this.#lowWaterBytes = options.lowWaterBytes;
    this.#timing = options.timing;
    this.#logger = options.logger;
  }

  get lowWaterBytes(): number {
    return this.#lowWaterBytes;
  }

  /** The last run that finished, if any. */
  get last(): LastCleanup | undefined {
    return this.#last;
  }

  /** Schedules the first run. */
  start(): void {
    this.#schedule(Date.now() + this.#timing.firstRunMs);
  }

  /** An instance found the storage at its limit: the next run comes sooner (not before the gap). */
  runSoon(): void {
    if (this.#running !== undefined) return;
    this.#schedule(Math.max(Date.now(), this.#lastEndedAt + this.#timing.minGapMs));
  }

  /** Runs now (after a run in progress); what it did, undefined once stopped or failed. */
  async runNow(): Promise<StudyCleanupReport | undefined> {
    await this.#running;
    return this.#run();
  }

  /** No more runs; waits for one in progress (told to end after its current study). */
  async stop(): Promise<void> {
    this.#stopping.abort();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** Sets the timer for `at`, unless one is set for earlier. */
  #schedule(at: number): void {
    if (this.#stopping.signal.aborted) return;
    if (this.#timer !== undefined && this.#nextRunAt <= at) return;
    clearTimeout(this.#timer);
    this.#nextRunAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.#run();
      },
      Math.max(0, at - Date.now()),
    );
    this.#timer.unref();
  }

  #run(): Promise<StudyCleanupReport | undefined> {
    if (this.#stopping.signal.aborted) return Promise.resolve(undefined);
    if (this.#running !== undefined) return this.#running;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const running = this.#store
      .cleanUp(this.#lowWaterBytes, this.#stopping.signal)
      .then((report) => {
        const { studies, instances, freedBytes, isEnough } = report;
        const finishedAt = new Date().toISOString();
        this.#last = { finishedAt, studies, instances, freedBytes, isEnough };
        return report;
      })
      .catch((error: unknown) => {
        this.#logger.error({ err: error }, 'storage cleanup failed');
        return undefined;
      })
      .finally(() => {
        this.#running = undefined;
        this.#lastEndedAt = Date.now();
        this.#schedule(this.#lastEndedAt + this.#timing.intervalMs);
      });
    this.#running = running;
    return running;
  }
}
