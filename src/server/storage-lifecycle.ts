/**
 * The storage's life beyond single instances, as the service controller sees it: one index
 * for the store, the cleanup and the rescan (so that the index's series cache sees every
 * removal); the cleanup job (storage-cleanup.ts) started with the service when cleanup is on
 * and there is a limit, every removed study audited; the intake rate, bytes received per day
 * over the last week from the index (a sum over instances.received_at, never a file scan),
 * cached and measured again at most every few minutes, with the projected days until full;
 * and the rescan (storage-rescan.ts), on the running store or, stopped, on the storage path.
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import type { OpenDatabase } from '../db/dialect.js';
import { AuditRepository } from '../db/repositories/audit-repository.js';
import { IndexRepository } from '../db/repositories/index-repository.js';
import type { Settings } from '../settings/schema.js';
import { lowWaterBytes, type StudyCleanupReport } from '../storage/cleanup.js';
import type { FileInstanceStore, StorageOptions } from './instance-store.js';
import {
  auditRemovedStudy,
  type CleanupTiming,
  DEFAULT_CLEANUP_TIMING,
  type LastCleanup,
  StorageCleanupJob,
} from './storage-cleanup.js';
import { type RescanStatus, StorageRescan } from './storage-rescan.js';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** The cleanup job as the status shows it. */
export interface StorageCleanupStatus {
  readonly retentionDays: number;
  /** Usage the job brings storage down to. */
  readonly lowWaterBytes: number;
  readonly lastRun: LastCleanup | null;
}

/** The storage fields of the service status. */
export interface StorageStatus {
  /** Bytes received per day over the last week, from the index; null until first measured. */
  readonly storageIntakeBytesPerDay: number | null;
  /** Days until the limit at that rate; null without a limit or intake, or while stopped. */
  readonly storageDaysUntilFull: number | null;
  /** The cleanup job while the service runs with cleanup on and a limit; null otherwise. */
  readonly storageCleanup: StorageCleanupStatus | null;
}

/** What the storage lifecycle runs with. */
export interface StorageLifecycleOptions {
  readonly database: OpenDatabase;
  readonly logger: Logger;
  /** When the cleanup job runs (tests shorten it). */
  readonly cleanup?: Partial<CleanupTiming>;
  /** How long a measured intake rate is used (default five minutes). */
  readonly intakeRefreshMs?: number;
}

/** The cleanup job, the intake rate and the rescan, for the service controller. */
export class StorageLifecycle {
  /** The index the store, the cleanup and the rescan share. */
  readonly index: IndexRepository;
  readonly #audit: AuditRepository;
  readonly #options: StorageLifecycleOptions;
  readonly #logger: Logger;
  readonly #intake: IntakeMeter;
  readonly #rescan: StorageRescan;
  #running: { store: FileInstanceStore; root: string } | undefined;
  #job: { job: StorageCleanupJob; retentionDays: number } | undefined;

  constructor(options: StorageLifecycleOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'storage' });
    this.index = new IndexRepository(options.database);
    this.#audit = new AuditRepository(options.database);
    this.#intake = new IntakeMeter({
      index: this.index,
      logger: this.#logger,
      ...(options.intakeRefreshMs !== undefined && { refreshMs: options.intakeRefreshMs }),
    });
    this.#rescan = new StorageRescan({
      index: this.index,
      audit: this.#audit,
      logger: this.#logger,
    });
  }

  /** The store's cleanup for these settings: undefined when cleanup is off. */
  cleanupOptions(settings: Settings): StorageOptions['cleanup'] {
    if (!settings.enable_storage_cleanup) return undefined;
    return {
      retentionDays: settings.storage_retention_days,
      onStudyRemoved: (study, reason) => auditRemovedStudy(this.#audit, study, reason),
      onLimitReached: () => this.#job?.job.runSoon(),
    };
  }

  /** The service runs with `store`: the cleanup job starts when cleanup is on with a limit. */
  started(store: FileInstanceStore, root: string, settings: Settings): void {
    this.#running = { store, root };
    void this.#intake.refresh();
    const mark = lowWaterBytes(store.limitBytes, settings.storage_cleanup_low_water_percent);
    if (!settings.enable_storage_cleanup || mark === undefined) return;
    const job = new StorageCleanupJob({
      store,
      lowWaterBytes: mark,
      timing: { ...DEFAULT_CLEANUP_TIMING, ...this.#options.cleanup },
      logger: this.#logger,
    });
    this.#job = { job, retentionDays: settings.storage_retention_days };
    job.start();
  }

  /** The service stops: the job ends (after the study it is removing). */
  async stopping(): Promise<void> {
    const job = this.#job?.job;
    this.#job = undefined;
    await job?.stop();
  }

  /** The service stopped: its store is closed. */
  stopped(): void {
    this.#running = undefined;
  }

  /** Ends a rescan in progress and waits for a measurement under way (process exit). */
  async close(): Promise<void> {
    await this.stopping();
    await this.#rescan.stop();
    await this.#intake.settled();
  }

  /** The storage fields of the status. */
  status(): StorageStatus {
    const store = this.#running?.store;
    const intake = this.#intake.current()?.bytesPerDay ?? null;
    const job = this.#job;
    return {
      storageIntakeBytesPerDay: intake,
      storageDaysUntilFull:
        store === undefined ? null : daysUntilFull(store.usedBytes, store.limitBytes, intake),
      storageCleanup:
        job === undefined
          ? null
          : {
              retentionDays: job.retentionDays,
              lowWaterBytes: job.job.lowWaterBytes,
              lastRun: job.job.last ?? null,
            },
    };
  }

  /** Runs the cleanup job now (while the service runs with it); what it did. */
  runCleanup(): Promise<StudyCleanupReport | undefined> {
    return this.#job?.job.runNow() ?? Promise.resolve(undefined);
  }

  /** Measures the intake rate now. */
  refreshIntake(): Promise<StorageIntake | undefined> {
    return this.#intake.refresh();
  }

  /** The rescan's state and report. */
  get rescanStatus(): RescanStatus {
    return this.#rescan.status;
  }

  /**
   * Starts a rescan on the running store's root or, stopped, on `storagePath`; throws
   * RescanRunningError while one runs.
   */
  startRescan(startedBy: string, storagePath: string): RescanStatus {
    return this.#rescan.start({
      root: this.#running?.root ?? storagePath,
      store: () => this.#running?.store,
      startedBy,
    });
  }

  /** Resolves when no rescan runs. */
  rescanSettled(): Promise<void> {
    return this.#rescan.settled();
  }
}

/** Bytes received per day lately, as measured from the index. */
export interface StorageIntake {
  readonly bytesPerDay: number;
  /** The days the rate is taken over: the window, or less when the index is younger. */
  readonly overDays: number;
  readonly measuredAt: string;
}

/** The days of intake the rate is taken over. */
const INTAKE_WINDOW_DAYS = 7;

/**
 * The intake rate from the index, cached: read again at most every `refreshMs`, in the
 * background of the status that asks for it.
 */
export class IntakeMeter {
  readonly #index: IndexRepository;
  readonly #refreshMs: number;
  readonly #logger: Logger;
  #current: StorageIntake | undefined;
  #measuredAtMs = 0;
  #refreshing: Promise<StorageIntake | undefined> | undefined;

  constructor(options: {
    readonly index: IndexRepository;
    readonly logger: Logger;
    readonly refreshMs?: number;
  }) {
    this.#index = options.index;
    this.#logger = options.logger;
    this.#refreshMs = options.refreshMs ?? 5 * MINUTE_MS;
  }

  /** The rate last measured (undefined before the first); an old one is measured again. */
  current(): StorageIntake | undefined {
    if (Date.now() - this.#measuredAtMs >= this.#refreshMs) void this.refresh();
    return this.#current;
  }

  /** Measures now (joining a measurement under way); undefined when the index failed. */
  refresh(): Promise<StorageIntake | undefined> {
    this.#refreshing ??= this.#measure().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /** Resolves when no measurement is under way. */
  async settled(): Promise<void> {
    await this.#refreshing;
  }

  async #measure(): Promise<StorageIntake | undefined> {
    const now = Date.now();
    // Not asked again before the interval, even when the index fails.
    this.#measuredAtMs = now;
    try {
      const since = now - INTAKE_WINDOW_DAYS * DAY_MS;
      const { bytes, firstReceivedAt } = await this.#index.intakeSince(
        new Date(since).toISOString(),
      );
      this.#current = intakeRate(bytes, firstReceivedAt, now);
      return this.#current;
    } catch (error) {
      this.#logger.error({ err: error }, 'storage intake rate not measured');
      return undefined;
    }
  }
}

/**
 * The rate of `bytes` received since the window's start or the first instance in the index,
 * whichever is later, taken over one day at least (a first hour's intake is not a day's).
 */
export function intakeRate(
  bytes: number,
  firstReceivedAt: string | null,
  nowMs: number,
): StorageIntake {
  const first = firstReceivedAt === null ? nowMs : Date.parse(firstReceivedAt);
  const overDays = Math.min(INTAKE_WINDOW_DAYS, Math.max(1, (nowMs - first) / DAY_MS));
  return {
    bytesPerDay: Math.round(bytes / overDays),
    overDays: Math.round(overDays * 10) / 10,
    measuredAt: new Date(nowMs).toISOString(),
  };
}

/**
 * Days until the limit at the intake rate, to one decimal; 0 when at or past it; null without
 * a limit or without intake.
 */
export function daysUntilFull(
  usedBytes: number,
  limitBytes: number | null,
  bytesPerDay: number | null,
): number | null {
  if (limitBytes === null || limitBytes <= 0) return null;
  if (usedBytes >= limitBytes) return 0;
  if (bytesPerDay === null || bytesPerDay <= 0) return null;
  return Math.floor(((limitBytes - usedBytes) / bytesPerDay) * 10) / 10;
}
