/**
 * The DICOM service's status (the specification's DicomServiceStatus): one row, written as the
 * service changes state and, while it runs, as its totals move.
 *
 * Layer: db (repositories hold all SQL).
 */

import type { Kysely } from 'kysely';
import type { Database } from '../schema.js';
import type { TransactionRunner } from '../transactions.js';

const STATUS_ROW = 1;

/** The service states. */
export const SERVICE_STATES = ['stopped', 'starting', 'running', 'stopping', 'error'] as const;
export type ServiceState = (typeof SERVICE_STATES)[number];

/** The stored status. */
export interface StoredServiceStatus {
  readonly state: ServiceState;
  readonly pid: number | null;
  readonly hostname: string;
  readonly startedAt: string | null;
  readonly stoppedAt: string | null;
  readonly activeAssociations: number;
  readonly filesReceived: number;
  readonly bytesReceived: number;
  readonly errors: number;
  readonly lastError: string | null;
  readonly lastErrorAt: string | null;
  readonly updatedAt: string;
}

/** Reads and writes the service status row. */
export class ServiceStatusRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;

  constructor(database: { readonly db: Kysely<Database>; readonly runner: TransactionRunner }) {
    this.#db = database.db;
    this.#runner = database.runner;
  }

  /** The stored status; undefined before the service was ever started. */
  async get(): Promise<StoredServiceStatus | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#db.selectFrom('service_status').selectAll().where('id', '=', STATUS_ROW).compile(),
    );
    if (row === undefined) return undefined;
    return {
      state: row.state as ServiceState,
      pid: row.pid,
      hostname: row.hostname,
      startedAt: row.started_at,
      stoppedAt: row.stopped_at,
      activeAssociations: Number(row.active_associations),
      // PostgreSQL returns bigint as text.
      filesReceived: Number(row.files_received),
      bytesReceived: Number(row.bytes_received),
      errors: Number(row.errors),
      lastError: row.last_error,
      lastErrorAt: row.last_error_at,
      updatedAt: row.updated_at,
    };
  }

  /** Stores the status whole. */
  async save(status: StoredServiceStatus): Promise<void> {
    const values = {
      state: status.state,
      pid: status.pid,
      hostname: status.hostname,
      started_at: status.startedAt,
      stopped_at: status.stoppedAt,
      active_associations: status.activeAssociations,
      files_received: status.filesReceived,
      bytes_received: status.bytesReceived,
      errors: status.errors,
      last_error: status.lastError,
      last_error_at: status.lastErrorAt,
      updated_at: status.updatedAt,
    };
    await this.#runner.runQuery(
      this.#db
        .insertInto('service_status')
        .values({ id: STATUS_ROW, ...values })
        .onConflict((oc) => oc.column('id').doUpdateSet(values))
        .compile(),
    );
  }
}
