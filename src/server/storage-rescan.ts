/**
 * The storage rescan: the index reconciled with the files on disk, in the background, one
 * rescan at a time (see reconcile.ts): files the index lacks are indexed (orphans), files of
 * an instance indexed under another path and files not readable as DICOM are reported and
 * left alone, and the rows of instances whose file is gone are removed (missing). Files
 * modified in the last minute are left for the next rescan: a store may be indexing them. The
 * progress and the final report are kept in memory; the running store's usage moves with
 * what is indexed and removed, and its cleanup waits while a found file is indexed.
 *
 * Layer: server.
 */

import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AuditRepository } from '../db/repositories/audit-repository.js';
import type { IndexRepository } from '../db/repositories/index-repository.js';
import type { FileInstanceStore } from './instance-store.js';
import { reconcileFiles, removeMissingFiles } from './reconcile.js';

const MINUTE_MS = 60_000;

/** Paths listed per kind in a rescan's report at most (the counts go on). */
const MAX_LISTED = 100;
/** Files modified this recently are left for the next rescan: a store may be indexing them. */
const RECENT_FILE_MS = MINUTE_MS;

/** What a rescan found so far. */
export interface RescanReport {
  /** Files under the storage root looked at. */
  readonly filesChecked: number;
  /** Files the index lacked, indexed now. */
  readonly orphanFiles: number;
  readonly orphanBytes: number;
  /** Files of an instance the index holds under another path: left alone. */
  readonly duplicateFiles: number;
  /** Files not readable as DICOM: left alone. */
  readonly unreadableFiles: number;
  /** Files modified in the last minute: left for the next rescan. */
  readonly recentFiles: number;
  /** Index rows looked at. */
  readonly instancesChecked: number;
  /** Index rows whose file was gone, removed. */
  readonly missingFiles: number;
  readonly missingBytes: number;
  /** The first paths of each kind, relative to the storage root. */
  readonly listed: {
    readonly orphan: readonly string[];
    readonly missing: readonly string[];
    readonly duplicate: readonly string[];
    readonly unreadable: readonly string[];
  };
}

/** A rescan's state: none yet, running (with its progress), done or failed (with its report). */
export interface RescanStatus {
  readonly state: 'idle' | 'running' | 'done' | 'failed';
  /** What a running rescan is at: the files on disk, then the index. */
  readonly phase: 'files' | 'index' | null;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly startedBy: string | null;
  readonly report: RescanReport | null;
  readonly error: string | null;
}

/**
 * A rescan was asked for while one runs: an answer to the caller (HTTP 409), not a failure of
 * the server, so it carries no code of the registry.
 */
export class RescanRunningError extends Error {
  constructor() {
    super('a storage rescan is already running');
    this.name = 'RescanRunningError';
  }
}

type MutableReport = {
  -readonly [K in Exclude<keyof RescanReport, 'listed'>]: RescanReport[K];
} & { listed: { [K in keyof RescanReport['listed']]: string[] } };

function emptyReport(): MutableReport {
  return {
    filesChecked: 0,
    orphanFiles: 0,
    orphanBytes: 0,
    duplicateFiles: 0,
    unreadableFiles: 0,
    recentFiles: 0,
    instancesChecked: 0,
    missingFiles: 0,
    missingBytes: 0,
    listed: { orphan: [], missing: [], duplicate: [], unreadable: [] },
  };
}

function listed(list: string[], path: string): void {
  if (list.length < MAX_LISTED) list.push(path);
}

/** What a rescan works on. */
export interface RescanTarget {
  readonly root: string;
  /** The running store, if any: usage moves with what the rescan indexes and removes. */
  readonly store: () => FileInstanceStore | undefined;
  readonly startedBy: string;
}

/** Reconciles the index with the files on disk, in the background, one rescan at a time. */
export class StorageRescan {
  readonly #index: IndexRepository;
  readonly #audit: AuditRepository;
  readonly #logger: Logger;
  readonly #stopping = new AbortController();
  #status: RescanStatus = {
    state: 'idle',
    phase: null,
    startedAt: null,
    finishedAt: null,
    startedBy: null,
    report: null,
    error: null,
  };
  #report: MutableReport | undefined;
  #running: Promise<void> | undefined;

  constructor(options: {
    readonly index: IndexRepository;
    readonly audit: AuditRepository;
    readonly logger: Logger;
  }) {
    this.#index = options.index;
    this.#audit = options.audit;
    this.#logger = options.logger;
  }

  /** The state, with a copy of the report so far. */
  get status(): RescanStatus {
    const report = this.#report;
    if (this.#status.state !== 'running' || report === undefined) return this.#status;
    return { ...this.#status, report: copyOf(report) };
  }

  /** Starts a rescan; throws RescanRunningError while one runs. The state at its start. */
  start(target: RescanTarget): RescanStatus {
    if (this.#running !== undefined) throw new RescanRunningError();
    const report = emptyReport();
    this.#report = report;
    this.#status = {
      state: 'running',
      phase: 'files',
      startedAt: new Date().toISOString(),
      finishedAt: null,
      startedBy: target.startedBy,
      report: null,
      error: null,
    };
    this.#running = this.#run(target, report).finally(() => {
      this.#running = undefined;
    });
    return this.status;
  }

  /** Resolves when no rescan runs. */
  async settled(): Promise<void> {
    await this.#running;
  }

  /** Ends a rescan in progress early (process exit). */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#running;
  }

  async #run(target: RescanTarget, report: MutableReport): Promise<void> {
    const signal = this.#stopping.signal;
    let error: string | null = null;
    try {
      const info = await stat(target.root).catch(() => undefined);
      if (info === undefined || !info.isDirectory()) {
        throw new Error(`storage path ${target.root} does not exist`);
      }
      await this.#checkFiles(target, report, signal);
      this.#status = { ...this.#status, phase: 'index' };
      await removeMissingFiles(target.root, this.#index, {
        signal,
        onMissing: (filePath, sizeBytes) => {
          report.missingFiles += 1;
          report.missingBytes += sizeBytes;
          listed(report.listed.missing, filePath);
          target.store()?.countRemoved(sizeBytes);
        },
        onProgress: (checked) => {
          report.instancesChecked = checked;
        },
      });
      if (signal.aborted) error = 'stopped before the end (the server stopped)';
    } catch (failure) {
      error = failure instanceof Error ? failure.message : String(failure);
      this.#logger.error({ err: failure }, 'storage rescan failed');
    }
    this.#status = {
      ...this.#status,
      state: error === null ? 'done' : 'failed',
      phase: null,
      finishedAt: new Date().toISOString(),
      report: copyOf(report),
      error,
    };
    const counts = summaryOf(report);
    this.#logger.info({ ...counts, error }, 'storage rescan finished');
    await this.#audit
      .record({
        username: target.startedBy,
        action: 'storage rescan finished',
        outcome: error === null ? 'success' : 'failure',
        remoteAddress: '',
        detail: error ?? JSON.stringify(counts),
      })
      .catch((failure: unknown) =>
        this.#logger.error({ err: failure }, 'audit log entry not written'),
      );
  }

  /** The files on disk against the index: orphans indexed, duplicates reported. */
  async #checkFiles(target: RescanTarget, report: MutableReport, signal: AbortSignal) {
    await reconcileFiles(target.root, this.#index, this.#logger, {
      duplicates: 'report',
      settledBefore: () => Date.now() - RECENT_FILE_MS,
      signal,
      inTurn: (work) => {
        const store = target.store();
        return store === undefined ? work() : store.inCleanupTurn(work);
      },
      onFile: (filePath, outcome, sizeBytes) => {
        report.filesChecked += 1;
        switch (outcome) {
          case 'indexed':
            report.orphanFiles += 1;
            report.orphanBytes += sizeBytes;
            listed(report.listed.orphan, filePath);
            target.store()?.countIndexed(sizeBytes);
            break;
          case 'duplicate':
            report.duplicateFiles += 1;
            listed(report.listed.duplicate, filePath);
            break;
          case 'unreadable':
            report.unreadableFiles += 1;
            listed(report.listed.unreadable, filePath);
            break;
          case 'recent':
            report.recentFiles += 1;
            break;
          case 'known':
          case 'removed':
          case 'gone':
            break;
          default: {
            const unknown: never = outcome;
            throw new Error(`unknown outcome ${String(unknown)}`);
          }
        }
      },
    });
  }
}

function copyOf(report: MutableReport): RescanReport {
  return {
    ...report,
    listed: {
      orphan: [...report.listed.orphan],
      missing: [...report.listed.missing],
      duplicate: [...report.listed.duplicate],
      unreadable: [...report.listed.unreadable],
    },
  };
}

/** The counts of a report (for the log and the audit entry: no paths, which hold patient IDs). */
function summaryOf(report: MutableReport): Omit<RescanReport, 'listed'> {
  const { listed: _paths, ...counts } = report;
  return counts;
}
