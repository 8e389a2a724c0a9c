/**
 * The storage fields of the status document and the storage rescan's state, as the API sends
 * them (src/server/storage-lifecycle.ts, storage-cleanup.ts and storage-rescan.ts). Kept apart
 * from types.ts; `storageOf` reads the status fields from a ServiceStatus.
 */

import type { ServiceStatus } from './types.js';

/** The cleanup job's last run. */
export interface LastCleanup {
  readonly finishedAt: string;
  readonly studies: number;
  readonly instances: number;
  readonly freedBytes: number;
  /** Usage reached the low-water mark (false: nothing more was old enough or free to go). */
  readonly isEnough: boolean;
}

/** The cleanup job while the service runs with cleanup on and a limit. */
export interface StorageCleanupStatus {
  readonly retentionDays: number;
  readonly lowWaterBytes: number;
  readonly lastRun: LastCleanup | null;
}

/** The status document's storage fields beyond used and limit. */
export interface StorageStatusFields {
  /** Bytes received per day over the last week (from the index); null until measured. */
  readonly storageIntakeBytesPerDay: number | null;
  /** Days until the limit at that rate; null without a limit or intake, or while stopped. */
  readonly storageDaysUntilFull: number | null;
  readonly storageCleanup: StorageCleanupStatus | null;
}

/** The storage fields of a status (null where a server without them sent none). */
export function storageOf(status: ServiceStatus): StorageStatusFields {
  const fields = status as ServiceStatus & Partial<StorageStatusFields>;
  return {
    storageIntakeBytesPerDay: fields.storageIntakeBytesPerDay ?? null,
    storageDaysUntilFull: fields.storageDaysUntilFull ?? null,
    storageCleanup: fields.storageCleanup ?? null,
  };
}

/** What a rescan found so far (GET storage/rescan). */
export interface RescanReport {
  readonly filesChecked: number;
  /** Files the index lacked, indexed now. */
  readonly orphanFiles: number;
  readonly orphanBytes: number;
  /** Files of an instance indexed under another path: left alone. */
  readonly duplicateFiles: number;
  /** Files not readable as DICOM: left alone. */
  readonly unreadableFiles: number;
  /** Files modified in the last minute: left for the next rescan. */
  readonly recentFiles: number;
  readonly instancesChecked: number;
  /** Index rows whose file was gone, removed. */
  readonly missingFiles: number;
  readonly missingBytes: number;
  /** The first paths of each kind (100 at most), relative to the storage root. */
  readonly listed: {
    readonly orphan: readonly string[];
    readonly missing: readonly string[];
    readonly duplicate: readonly string[];
    readonly unreadable: readonly string[];
  };
}

/** The rescan's state (GET and POST storage/rescan). */
export interface RescanStatus {
  readonly state: 'idle' | 'running' | 'done' | 'failed';
  readonly phase: 'files' | 'index' | null;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly startedBy: string | null;
  readonly report: RescanReport | null;
  readonly error: string | null;
}
