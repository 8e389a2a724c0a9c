/**
 * What the metrics read from the index at scrape time, each answer cheap: the hand-off jobs
 * waiting (per kind, with the oldest one's creation time; an indexed range over the waiting
 * states, never the done rows) and the size of the index itself (SQLite: the database file and
 * its write-ahead log; PostgreSQL: the tables of our schema with their indexes and TOAST).
 *
 * Layer: db (repositories hold all SQL).
 */

import { stat } from 'node:fs/promises';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../schema.js';
import type { TransactionRunner } from '../transactions.js';
import type { JobKind } from './handoff-repository.js';

/** The hand-off jobs of one kind that wait. */
export interface WaitingJobs {
  readonly kind: JobKind;
  readonly count: number;
  /** Creation time (ISO 8601) of the oldest. */
  readonly oldestCreatedAt: string;
}

/** The index as the metrics see it. */
export class MetricsRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;
  readonly #kind: 'sqlite' | 'postgres';
  readonly #location: string;

  constructor(database: {
    readonly db: Kysely<Database>;
    readonly runner: TransactionRunner;
    readonly kind: 'sqlite' | 'postgres';
    readonly location: string;
  }) {
    this.#db = database.db;
    this.#runner = database.runner;
    this.#kind = database.kind;
    this.#location = database.location;
  }

  /**
   * The hand-off jobs waiting, by kind (kinds with none are absent): queue items not yet
   * claimed downstream (pending), and deliveries not yet run or to be retried (pending, failed).
   */
  async waitingHandoffJobs(): Promise<WaitingJobs[]> {
    const rows = await this.#runner.runQuery(
      this.#db
        .selectFrom('handoff_jobs')
        .select((eb) => [
          'kind',
          eb.fn.countAll<number>().as('n'),
          eb.fn.min<string>('created_at').as('oldest'),
        ])
        // The range of handoff_jobs_due (state, next_attempt_at): done and dead rows are not read.
        .where('state', 'in', ['pending', 'failed'])
        .where((eb) => eb.or([eb('state', '=', 'pending'), eb('kind', '!=', 'queue')]))
        .groupBy('kind')
        .compile(),
    );
    return rows.map((row) => ({
      kind: row.kind as JobKind,
      count: Number(row.n),
      oldestCreatedAt: row.oldest,
    }));
  }

  /**
   * The bytes the index takes. SQLite: the database file and its write-ahead log (a file not
   * there counts 0). PostgreSQL: every table of the current schema, with indexes and TOAST.
   */
  async sizeBytes(): Promise<number> {
    if (this.#kind === 'postgres') {
      const { rows } = await sql<{ bytes: string | number | null }>`
        select sum(pg_total_relation_size(c.oid)) as bytes
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p')`.execute(this.#db);
      return Number(rows[0]?.bytes ?? 0);
    }
    const sizes = await Promise.all(
      [this.#location, `${this.#location}-wal`].map((file) =>
        stat(file).then(
          (info) => info.size,
          (error: NodeJS.ErrnoException) => {
            if (error.code === 'ENOENT') return 0;
            throw error;
          },
        ),
      ),
    );
    return sizes.reduce((sum, size) => sum + size, 0);
  }
}
