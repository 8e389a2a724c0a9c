/**
 * The processing queue as downstream tools and operators change it: queue items claimed
 * (oldest first, once: a single UPDATE re-checking the state, so two claimers never share an
 * item; a completion's items wait for its folder copy), acknowledged or failed by their
 * claimer; and any failed job put back to pending by an operator (a dead or failed delivery,
 * a failed queue item, or one whose claimer is gone). Each change brings the series' hand-off
 * state along (see handoff-repository.ts).
 *
 * Layer: db (repositories hold all SQL).
 */

import type { Kysely } from 'kysely';
import type { Database } from '../schema.js';
import { rowsOf, type TransactionBody, type TransactionRunner } from '../transactions.js';
import {
  claimJobs,
  type HandoffJobWithEvent,
  type JobChangeResult,
  refreshSeriesState,
  storedError,
  toJob,
  withEvents,
} from './handoff-repository.js';

type Step<T> = TransactionBody<T>;

/** Changes queue items and retries jobs. */
export class ProcessingQueueRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;

  constructor(database: { readonly db: Kysely<Database>; readonly runner: TransactionRunner }) {
    this.#db = database.db;
    this.#runner = database.runner;
  }

  /**
   * Claims up to `limit` waiting queue items for a downstream `worker` (processing), oldest
   * first; a completion's items wait for its folder copy.
   */
  async claimQueueItems(
    worker: string,
    limit: number,
    now: string,
  ): Promise<HandoffJobWithEvent[]> {
    const db = this.#db;
    const ids = db
      .selectFrom('handoff_jobs as j')
      .select('j.id')
      .where('j.kind', '=', 'queue')
      .where('j.state', '=', 'pending')
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('handoff_jobs as c')
              .select('c.id')
              .whereRef('c.event_fk', '=', 'j.event_fk')
              .where('c.kind', '=', 'copy')
              .where('c.state', '!=', 'done'),
          ),
        ),
      )
      .orderBy('j.id')
      .limit(limit);
    return this.#runner.runTransaction(function* () {
      const claimed = yield* claimJobs(db, ids, {
        from: ['pending'],
        to: 'processing',
        worker,
        now,
      });
      return yield* withEvents(
        db,
        claimed.sort((a, b) => a.id - b.id),
      );
    });
  }

  /** A claimed queue item is done (`worker`, when given, must be its claimer). */
  acknowledge(id: number, worker: string | undefined, now: string): Promise<JobChangeResult> {
    return this.#finishQueueItem(id, worker, now, { state: 'done', last_error: null });
  }

  /** A claimed queue item failed downstream, with why. */
  failQueueItem(
    id: number,
    error: string,
    worker: string | undefined,
    now: string,
  ): Promise<JobChangeResult> {
    return this.#finishQueueItem(id, worker, now, {
      state: 'failed',
      last_error: storedError(error),
    });
  }

  #finishQueueItem(
    id: number,
    worker: string | undefined,
    now: string,
    values: { state: 'done' | 'failed'; last_error: string | null },
  ): Promise<JobChangeResult> {
    const db = this.#db;
    return this.#runner.runTransaction(function* (): Step<JobChangeResult> {
      const [current] = yield* rowsOf(
        db.selectFrom('handoff_jobs').selectAll().where('id', '=', id).compile(),
      );
      if (current === undefined) return notFound(id);
      if (current.kind !== 'queue') {
        return conflict(`job ${id} is a ${current.kind}, not a queue item`);
      }
      if (current.state !== 'processing') {
        return conflict(`queue item ${id} is ${current.state}, not processing (claim it first)`);
      }
      if (worker !== undefined && current.claimed_by !== worker) {
        return conflict(`queue item ${id} is claimed by another worker`);
      }
      const [row] = yield* rowsOf(
        db
          .updateTable('handoff_jobs')
          .set({ ...values, updated_at: now })
          .where('id', '=', id)
          .where('state', '=', 'processing')
          .returningAll()
          .compile(),
      );
      if (row === undefined) return conflict(`queue item ${id} changed meanwhile`);
      const job = toJob(row);
      const series = yield* refreshSeriesState(db, job.seriesInstanceUid, job.completion, now);
      return { isChanged: true, job, ...(series !== undefined && { series }) };
    });
  }

  /**
   * Puts a job back to pending with its attempts reset: a failed or dead delivery (due now), a
   * failed queue item, or a claimed one whose worker is gone.
   */
  async retry(id: number, now: string): Promise<JobChangeResult> {
    const db = this.#db;
    return this.#runner.runTransaction(function* (): Step<JobChangeResult> {
      const [current] = yield* rowsOf(
        db.selectFrom('handoff_jobs').selectAll().where('id', '=', id).compile(),
      );
      if (current === undefined) return notFound(id);
      const isQueue = current.kind === 'queue';
      const retryable = isQueue ? ['failed', 'processing'] : ['failed', 'dead'];
      if (!retryable.includes(current.state)) {
        const what = isQueue ? 'queue item' : current.kind;
        const which = retryable.join(' or ');
        return conflict(`${what} ${id} is ${current.state}: only ${which} ones are retried`);
      }
      const [row] = yield* rowsOf(
        db
          .updateTable('handoff_jobs')
          .set({
            state: 'pending',
            attempts: 0,
            next_attempt_at: isQueue ? null : now,
            last_error: null,
            claimed_by: null,
            claimed_at: null,
            updated_at: now,
          })
          .where('id', '=', id)
          .where('state', '=', current.state)
          .returningAll()
          .compile(),
      );
      if (row === undefined) return conflict(`job ${id} changed meanwhile`);
      const job = toJob(row);
      const series = yield* refreshSeriesState(db, job.seriesInstanceUid, job.completion, now);
      return { isChanged: true, job, ...(series !== undefined && { series }) };
    });
  }
}

function notFound(id: number): JobChangeResult {
  return { isChanged: false, reason: 'not-found', message: `no hand-off job ${id}` };
}

function conflict(message: string): JobChangeResult {
  return { isChanged: false, reason: 'conflict', message };
}
