/**
 * The hand-off outbox: the jobs of each completed series (a queue item downstream tools claim
 * and acknowledge; a folder copy, a webhook per URL, a command, which the worker runs), each
 * with its state, attempts and next attempt time; and how a series' hand-off state follows from
 * the jobs of its latest completion. Here: the worker's side (due deliveries claimed, their
 * outcomes, claims of gone processes released) and the lists. The completion that writes the
 * jobs is in series-state-repository.ts; the queue's claims and the retries are in
 * processing-queue-repository.ts.
 *
 * Claims are single UPDATE statements over the due rows, re-checking the state, so that two
 * servers sharing a PostgreSQL index never take the same job. Deliveries of a completion wait
 * for its folder copy (they are given the folder); so do its queue items.
 *
 * Layer: db (repositories hold all SQL).
 */

import type { Kysely, OperandValueExpressionOrList, Selectable } from 'kysely';
import type { Database, HandoffJobsTable } from '../schema.js';
import { rowsOf, type TransactionBody, type TransactionRunner } from '../transactions.js';
import { type ClaimHolder, claimHolders, releaseClaimsOf } from './queue-claims.js';

/** Where a series is in its hand-off (see SeriesStatesTable). */
export const SERIES_STATES = [
  'receiving',
  'complete',
  'handed_off',
  'acknowledged',
  'failed',
] as const;
export type SeriesState = (typeof SERIES_STATES)[number];

/** What a job does: a queue item (auto import), a folder copy, a webhook, a command. */
export const JOB_KINDS = ['queue', 'copy', 'webhook', 'command'] as const;
export type JobKind = (typeof JOB_KINDS)[number];
/** The jobs the worker runs. */
export type DeliveryKind = Exclude<JobKind, 'queue'>;
export const DELIVERY_KINDS: readonly DeliveryKind[] = ['copy', 'webhook', 'command'];

/**
 * A job's state. Deliveries: pending, in_progress, done, failed (retried at next_attempt_at),
 * dead (attempts exhausted). Queue items: pending, processing (claimed), done, failed.
 */
export const JOB_STATES = [
  'pending',
  'in_progress',
  'processing',
  'done',
  'failed',
  'dead',
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** An event's type: the first completion of a series, or a later one (late instances). */
export type HandoffEventType = 'series.completed' | 'series.updated';

/** A file of a completed series (`path` absolute); server/handoff/types.ts names it HandoffFile. */
export interface HandoffFileRecord {
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  readonly transferSyntaxUid: string;
  readonly path: string;
  readonly sizeBytes: number;
}

/** A completed series: patient, study and series attributes and its files (HandoffSeries). */
export interface HandoffSeriesRecord {
  readonly patientId: string;
  readonly patientName: string | null;
  readonly studyInstanceUid: string;
  readonly studyDate: string | null;
  readonly studyDescription: string | null;
  readonly accessionNumber: string | null;
  readonly seriesInstanceUid: string;
  readonly seriesNumber: number | null;
  readonly seriesDescription: string | null;
  readonly modality: string | null;
  readonly files: readonly HandoffFileRecord[];
}

/** One completion's event, as stored and as handed to the actions (HandoffEvent). */
export interface HandoffEventRecord {
  readonly type: HandoffEventType;
  readonly idempotencyKey: string;
  readonly occurredAt: string;
  readonly series: HandoffSeriesRecord;
  /** The completion's folder copy, once done. */
  readonly folder?: string;
}

/** A job row. */
export interface HandoffJob {
  readonly id: number;
  readonly eventId: number;
  readonly seriesInstanceUid: string;
  readonly completion: number;
  readonly kind: JobKind;
  readonly target: string;
  readonly state: JobState;
  readonly attempts: number;
  readonly nextAttemptAt: string | null;
  readonly lastError: string | null;
  readonly claimedBy: string | null;
  readonly claimedAt: string | null;
  readonly result: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A job with the event it delivers. */
export interface HandoffJobWithEvent extends HandoffJob {
  readonly event: HandoffEventRecord;
}

/** A job as listed: with its event's type and key. */
export interface ListedHandoffJob extends HandoffJob {
  readonly eventType: HandoffEventType;
  readonly idempotencyKey: string;
}

/** A series whose hand-off state changed. */
export interface SeriesStateChange {
  readonly seriesInstanceUid: string;
  readonly completion: number;
  readonly state: SeriesState;
  readonly lastError: string | null;
  /**
   * Receiving only: whether an association that stored instances of it is still open; when
   * none is, it is waiting for its completion time (told by the live completion tracker).
   */
  readonly isSending?: boolean;
}

/** A change to a job, and to its series' state when that moved. */
export interface JobUpdate {
  readonly job: HandoffJob;
  readonly series?: SeriesStateChange;
}

/** The answer to an operator's or a tool's change: done, or why not. */
export type JobChangeResult =
  | ({ readonly isChanged: true } & JobUpdate)
  | {
      readonly isChanged: false;
      readonly reason: 'not-found' | 'conflict';
      readonly message: string;
    };

/** How a delivery attempt ended. */
export type DeliveryOutcome =
  | { readonly isDone: true; readonly result?: string }
  | {
      readonly isDone: false;
      readonly error: string;
      /** When to try again; undefined: attempts exhausted, the job is dead. */
      readonly nextAttemptAt: string | undefined;
    };

/** Which jobs to list. */
export interface JobFilter {
  readonly state?: JobState;
  readonly kind?: JobKind;
  readonly seriesInstanceUid?: string;
}

/** A page of rows, newest first; `nextBeforeId` reads the next page. */
export interface Page<T> {
  readonly rows: T[];
  readonly nextBeforeId: number | undefined;
}

type Step<T> = TransactionBody<T>;
/** A job row as stored. */
export type JobRow = Selectable<HandoffJobsTable>;

/** Longest error text kept on a job or series. */
const MAX_ERROR_LENGTH = 2_000;

/** An error text as stored: bounded. */
export function storedError(text: string): string {
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text;
}

/** A job row as read. */
export function toJob(row: JobRow): HandoffJob {
  return {
    id: Number(row.id),
    eventId: Number(row.event_fk),
    seriesInstanceUid: row.series_instance_uid,
    completion: Number(row.completion),
    kind: row.kind as JobKind,
    target: row.target,
    state: row.state as JobState,
    attempts: Number(row.attempts),
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    claimedBy: row.claimed_by,
    claimedAt: row.claimed_at,
    result: row.result,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * A series' state from the jobs of its latest completion: failed when a delivery is dead or
 * the queue item failed; complete while a delivery is not done (or there is no job at all);
 * then acknowledged when the queue item is done, handed off otherwise.
 */
export function seriesStateOf(
  jobs: readonly { readonly kind: string; readonly state: string }[],
): SeriesState {
  if (jobs.length === 0) return 'complete';
  const isQueue = (job: { kind: string }) => job.kind === 'queue';
  if (jobs.some((job) => (isQueue(job) ? job.state === 'failed' : job.state === 'dead'))) {
    return 'failed';
  }
  if (jobs.some((job) => !isQueue(job) && job.state !== 'done')) return 'complete';
  const queue = jobs.filter(isQueue);
  return queue.length > 0 && queue.every((job) => job.state === 'done')
    ? 'acknowledged'
    : 'handed_off';
}

/**
 * Brings a series' state in line with the jobs of `completion`, unless the series is receiving
 * again or has completed since; the change, if it moved.
 */
export function* refreshSeriesState(
  db: Kysely<Database>,
  seriesInstanceUid: string,
  completion: number,
  now: string,
): Step<SeriesStateChange | undefined> {
  const [series] = yield* rowsOf(
    db
      .selectFrom('series_states')
      .select(['state', 'completion', 'last_error'])
      .where('series_instance_uid', '=', seriesInstanceUid)
      .compile(),
  );
  if (series === undefined || series.state === 'receiving') return undefined;
  if (Number(series.completion) !== completion) return undefined;
  const jobs = yield* rowsOf(
    db
      .selectFrom('handoff_jobs')
      .select(['kind', 'state', 'last_error'])
      .where('series_instance_uid', '=', seriesInstanceUid)
      .where('completion', '=', completion)
      .orderBy('id')
      .compile(),
  );
  const state = seriesStateOf(jobs);
  const lastError =
    state === 'failed'
      ? (jobs.find((job) => job.state === 'dead' || job.state === 'failed')?.last_error ?? null)
      : null;
  if (state === series.state && lastError === series.last_error) return undefined;
  yield* rowsOf(
    db
      .updateTable('series_states')
      .set({ state, last_error: lastError, updated_at: now })
      .where('series_instance_uid', '=', seriesInstanceUid)
      .compile(),
  );
  return { seriesInstanceUid, completion, state, lastError };
}

/** Reads and writes the hand-off jobs. */
export class HandoffRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;

  constructor(database: { readonly db: Kysely<Database>; readonly runner: TransactionRunner }) {
    this.#db = database.db;
    this.#runner = database.runner;
  }

  /** The ids of deliveries that may run at `now` (due, and their completion's copy done). */
  #runnable(now: string | undefined) {
    const db = this.#db;
    let query = db
      .selectFrom('handoff_jobs as j')
      .where('j.kind', 'in', DELIVERY_KINDS)
      .where('j.state', 'in', ['pending', 'failed'])
      .where((eb) =>
        eb.or([
          eb('j.kind', '=', 'copy'),
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
        ]),
      );
    if (now !== undefined) query = query.where('j.next_attempt_at', '<=', now);
    return query;
  }

  /** When the next delivery that may run is due (ISO time); undefined when none waits. */
  async nextDueAt(): Promise<string | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#runnable(undefined)
        .select((eb) => eb.fn.min('j.next_attempt_at').as('due'))
        .compile(),
    );
    return row?.due ?? undefined;
  }

  /**
   * Takes up to `limit` due deliveries for `worker`: in progress, attempts counted; with their
   * events (and the completion's folder).
   */
  async claimDueDeliveries(
    worker: string,
    now: string,
    limit: number,
  ): Promise<HandoffJobWithEvent[]> {
    const db = this.#db;
    const ids = this.#runnable(now)
      .select('j.id')
      .orderBy('j.next_attempt_at')
      .orderBy('j.id')
      .limit(limit);
    return this.#runner.runTransaction(function* () {
      const jobs = yield* claimJobs(db, ids, {
        from: ['pending', 'failed'],
        to: 'in_progress',
        worker,
        now,
      });
      return yield* withEvents(db, jobs);
    });
  }

  /** Records how a delivery's attempt ended; the series' state follows. */
  async finishDelivery(id: number, outcome: DeliveryOutcome, now: string): Promise<JobUpdate> {
    const db = this.#db;
    return this.#runner.runTransaction(function* () {
      const values = outcome.isDone
        ? {
            state: 'done',
            next_attempt_at: null,
            last_error: null,
            ...(outcome.result !== undefined && { result: outcome.result }),
          }
        : {
            state: outcome.nextAttemptAt === undefined ? 'dead' : 'failed',
            next_attempt_at: outcome.nextAttemptAt ?? null,
            last_error: storedError(outcome.error),
          };
      const [row] = yield* rowsOf(
        db
          .updateTable('handoff_jobs')
          .set({ ...values, updated_at: now })
          .where('id', '=', id)
          .where('state', '=', 'in_progress')
          .returningAll()
          .compile(),
      );
      if (row === undefined) throw new Error(`hand-off job ${id} is not in progress`);
      const job = toJob(row);
      const series = yield* refreshSeriesState(db, job.seriesInstanceUid, job.completion, now);
      return { job, ...(series !== undefined && { series }) };
    });
  }

  /** The claimers of deliveries in progress (for releasing those of a process that is gone). */
  async deliveryClaimers(): Promise<ClaimHolder[]> {
    return claimHolders({ db: this.#db, runner: this.#runner }, 'handoff_jobs');
  }

  /**
   * Puts the deliveries in progress under these claimers back to pending (their process died
   * during the attempt, which counts); how many.
   */
  async releaseDeliveries(claimers: readonly string[], now: string): Promise<number> {
    return releaseClaimsOf({ db: this.#db, runner: this.#runner }, 'handoff_jobs', claimers, now);
  }

  /** A job with its event. */
  async get(id: number): Promise<HandoffJobWithEvent | undefined> {
    const db = this.#db;
    const [job] = await this.#runner.runTransaction(function* () {
      const rows = yield* rowsOf(
        db.selectFrom('handoff_jobs').selectAll().where('id', '=', id).compile(),
      );
      return yield* withEvents(db, rows.map(toJob));
    });
    return job;
  }

  /** A page of jobs matching `filter`, newest first, older than `beforeId` when given. */
  async page(filter: JobFilter, limit: number, beforeId?: number): Promise<Page<ListedHandoffJob>> {
    let query = this.#filtered(filter)
      .innerJoin('handoff_events', 'handoff_events.id', 'handoff_jobs.event_fk')
      .selectAll('handoff_jobs')
      .select(['handoff_events.type as event_type', 'handoff_events.idempotency_key']);
    if (beforeId !== undefined) query = query.where('handoff_jobs.id', '<', beforeId);
    const rows = await this.#runner.runQuery(
      query
        .orderBy('handoff_jobs.id', 'desc')
        .limit(limit + 1)
        .compile(),
    );
    const page = rows.slice(0, limit).map((row) => ({
      ...toJob(row),
      eventType: row.event_type as HandoffEventType,
      idempotencyKey: row.idempotency_key,
    }));
    return { rows: page, nextBeforeId: rows.length > limit ? page.at(-1)?.id : undefined };
  }

  /** How many jobs match `filter`. */
  async count(filter: JobFilter): Promise<number> {
    const [row] = await this.#runner.runQuery(
      this.#filtered(filter)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .compile(),
    );
    return Number(row?.n ?? 0);
  }

  #filtered(filter: JobFilter) {
    let query = this.#db.selectFrom('handoff_jobs');
    if (filter.state !== undefined) query = query.where('handoff_jobs.state', '=', filter.state);
    if (filter.kind !== undefined) query = query.where('handoff_jobs.kind', '=', filter.kind);
    if (filter.seriesInstanceUid !== undefined) {
      query = query.where('handoff_jobs.series_instance_uid', '=', filter.seriesInstanceUid);
    }
    return query;
  }
}

/** Jobs with their events, and the folder of their completion's copy when it is done. */
/**
 * Claims the jobs among `ids` that are still in one of the `from` states for `worker`: their
 * new state, claimer, claim time and one more attempt; the claimed jobs (others took the rest).
 */
export function* claimJobs(
  db: Kysely<Database>,
  ids: OperandValueExpressionOrList<Database, 'handoff_jobs', 'id'>,
  claim: { from: readonly JobState[]; to: JobState; worker: string; now: string },
): TransactionBody<HandoffJob[]> {
  const rows = yield* rowsOf(
    db
      .updateTable('handoff_jobs')
      .set((eb) => ({
        state: claim.to,
        claimed_by: claim.worker,
        claimed_at: claim.now,
        attempts: eb('attempts', '+', 1),
        updated_at: claim.now,
      }))
      .where('id', 'in', ids)
      .where('state', 'in', [...claim.from])
      .returningAll()
      .compile(),
  );
  return rows.map(toJob);
}

export function* withEvents(
  db: Kysely<Database>,
  jobs: readonly HandoffJob[],
): Step<HandoffJobWithEvent[]> {
  if (jobs.length === 0) return [];
  const eventIds = [...new Set(jobs.map((job) => job.eventId))];
  const events = yield* rowsOf(
    db.selectFrom('handoff_events').selectAll().where('id', 'in', eventIds).compile(),
  );
  const copies = yield* rowsOf(
    db
      .selectFrom('handoff_jobs')
      .select(['event_fk', 'result'])
      .where('event_fk', 'in', eventIds)
      .where('kind', '=', 'copy')
      .where('state', '=', 'done')
      .compile(),
  );
  const folders = new Map(copies.map((copy) => [Number(copy.event_fk), copy.result]));
  const byId = new Map(events.map((event) => [Number(event.id), event]));
  return jobs.map((job) => {
    const event = byId.get(job.eventId);
    if (event === undefined) throw new Error(`hand-off event ${job.eventId} missing`);
    const folder = folders.get(job.eventId);
    return {
      ...job,
      event: {
        type: event.type as HandoffEventType,
        idempotencyKey: event.idempotency_key,
        occurredAt: event.occurred_at,
        series: JSON.parse(event.payload_json) as HandoffSeriesRecord,
        ...(folder !== undefined && folder !== null && { folder }),
      },
    };
  });
}
