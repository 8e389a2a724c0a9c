/**
 * The forward queue: one job per instance and destination, written when a forwarding rule
 * matches (the rules are in routing-rules-repository.ts), claimed by the forwarder per
 * destination when due, finished as done, failed (with the time of its next attempt) or dead,
 * and put back by an operator's retry. Each outcome also moves its destination's last success
 * or last error, which the per-destination summary shows with the jobs' counts.
 *
 * Claims are single UPDATE statements over the due rows, re-checking the state, so that two
 * servers sharing a PostgreSQL index never take the same job.
 *
 * Layer: db (repositories hold all SQL).
 */

import type { Kysely, Selectable } from 'kysely';
import type { Database, ForwardJobsTable } from '../schema.js';
import { rowsOf, type TransactionBody, type TransactionRunner } from '../transactions.js';
import { type ClaimHolder, claimHolders, releaseClaimsOf } from './queue-claims.js';

/**
 * A job's state: pending (due at next_attempt_at, at once when written), in_progress (claimed),
 * done, failed (retried at next_attempt_at), dead (attempts exhausted, or nothing to send).
 */
export const FORWARD_STATES = ['pending', 'in_progress', 'done', 'failed', 'dead'] as const;
export type ForwardState = (typeof FORWARD_STATES)[number];

/** An instance to forward to a destination, as a matching rule writes it. */
export interface ForwardEntry {
  readonly ruleId: number;
  readonly ruleName: string;
  readonly destination: string;
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  readonly transferSyntaxUid: string;
  /** Relative to the storage root. */
  readonly filePath: string;
  readonly fileSize: number;
  readonly patientId: string;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
}

/** A job of the forward queue. */
export interface ForwardJob extends Omit<ForwardEntry, 'ruleId'> {
  readonly id: number;
  /** The rule that matched; null when it was deleted since. */
  readonly ruleId: number | null;
  readonly state: ForwardState;
  readonly attempts: number;
  readonly nextAttemptAt: string | null;
  readonly lastError: string | null;
  readonly claimedBy: string | null;
  readonly claimedAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A claimed job, with where its instance is stored now. */
export interface ClaimedForwardJob extends ForwardJob {
  /** The instance's file as the index holds it now (relative); null when no longer stored. */
  readonly storedFilePath: string | null;
}

/** How an attempt ended. */
export type ForwardOutcome =
  | { readonly isDone: true }
  | {
      readonly isDone: false;
      readonly error: string;
      /** When to try again; undefined: the job is dead. */
      readonly nextAttemptAt: string | undefined;
    };

/** The answer to an operator's retry: done, or why not. */
export type ForwardJobChangeResult =
  | { readonly isChanged: true; readonly job: ForwardJob }
  | {
      readonly isChanged: false;
      readonly reason: 'not-found' | 'conflict';
      readonly message: string;
    };

/** Where one destination stands. */
export interface DestinationSummary {
  readonly aeTitle: string;
  /** Jobs waiting for their first attempt or under way (pending, in progress). */
  readonly queued: number;
  /** Jobs waiting for a retry. */
  readonly failed: number;
  readonly dead: number;
  /** The soonest time a failed job is tried again. */
  readonly nextAttemptAt: string | null;
  readonly lastSuccessAt: string | null;
  readonly lastError: string | null;
  readonly lastErrorAt: string | null;
  /** Named by a rule (enabled or not). */
  readonly isInRules: boolean;
}

/** Which jobs to list. */
export interface ForwardJobFilter {
  readonly state?: ForwardState;
  readonly destination?: string;
}

/** A page of rows, newest first; `nextBeforeId` reads the next page. */
export interface ForwardJobPage {
  readonly rows: ForwardJob[];
  readonly nextBeforeId: number | undefined;
}

type Step<T> = TransactionBody<T>;
type JobRow = Selectable<ForwardJobsTable>;

/** The states the forwarder takes jobs from (when due). */
const DUE_STATES: readonly ForwardState[] = ['pending', 'failed'];
/** The states that still count in a summary. */
const OPEN_STATES: readonly ForwardState[] = ['pending', 'in_progress', 'failed', 'dead'];
/** Longest error text kept on a job or destination. */
const MAX_ERROR_LENGTH = 2_000;
/** Rows per INSERT statement: well under both databases' limits on bound parameters. */
const ROWS_PER_INSERT = 200;

function storedError(text: string): string {
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text;
}

function toJob(row: JobRow): ForwardJob {
  return {
    id: Number(row.id),
    ruleId: row.rule_fk === null ? null : Number(row.rule_fk),
    ruleName: row.rule_name,
    destination: row.destination,
    sopInstanceUid: row.sop_instance_uid,
    sopClassUid: row.sop_class_uid,
    transferSyntaxUid: row.transfer_syntax_uid,
    filePath: row.file_path,
    // PostgreSQL returns bigint as text.
    fileSize: Number(row.file_size),
    patientId: row.patient_id,
    studyInstanceUid: row.study_instance_uid,
    seriesInstanceUid: row.series_instance_uid,
    state: row.state as ForwardState,
    attempts: Number(row.attempts),
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    claimedBy: row.claimed_by,
    claimedAt: row.claimed_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Reads and writes the forward queue. */
export class RoutingRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;

  constructor(database: { readonly db: Kysely<Database>; readonly runner: TransactionRunner }) {
    this.#db = database.db;
    this.#runner = database.runner;
  }

  // ---- the queue: the receive path's side ----------------------------------------------------

  /** Writes the jobs of matched instances (due at once), in one transaction. */
  async enqueue(entries: readonly ForwardEntry[], now: string): Promise<ForwardJob[]> {
    if (entries.length === 0) return [];
    const db = this.#db;
    return this.#runner.runTransaction(function* () {
      const jobs: ForwardJob[] = [];
      for (let start = 0; start < entries.length; start += ROWS_PER_INSERT) {
        const rows = entries.slice(start, start + ROWS_PER_INSERT).map((entry) => ({
          rule_fk: entry.ruleId,
          rule_name: entry.ruleName,
          destination: entry.destination,
          sop_instance_uid: entry.sopInstanceUid,
          sop_class_uid: entry.sopClassUid,
          transfer_syntax_uid: entry.transferSyntaxUid,
          file_path: entry.filePath,
          file_size: entry.fileSize,
          patient_id: entry.patientId,
          study_instance_uid: entry.studyInstanceUid,
          series_instance_uid: entry.seriesInstanceUid,
          state: 'pending',
          attempts: 0,
          next_attempt_at: now,
          created_at: now,
          updated_at: now,
        }));
        const written = yield* rowsOf(
          db.insertInto('forward_jobs').values(rows).returningAll().compile(),
        );
        jobs.push(...written.map(toJob));
      }
      return jobs;
    });
  }

  // ---- the queue: the forwarder's side -------------------------------------------------------

  /** The destinations with jobs due at `now`, but those in `except`. */
  async dueDestinations(now: string, except: readonly string[] = []): Promise<string[]> {
    let query = this.#db
      .selectFrom('forward_jobs')
      .select('destination')
      .distinct()
      .where('state', 'in', DUE_STATES)
      .where('next_attempt_at', '<=', now);
    if (except.length > 0) query = query.where('destination', 'not in', except);
    const rows = await this.#runner.runQuery(query.orderBy('destination').compile());
    return rows.map((row) => row.destination);
  }

  /** When the next job falls due, among destinations but those in `except`. */
  async nextDueAt(except: readonly string[] = []): Promise<string | undefined> {
    let query = this.#db
      .selectFrom('forward_jobs')
      .select((eb) => eb.fn.min('next_attempt_at').as('due'))
      .where('state', 'in', DUE_STATES);
    if (except.length > 0) query = query.where('destination', 'not in', except);
    const [row] = await this.#runner.runQuery(query.compile());
    return row?.due ?? undefined;
  }

  /**
   * Claims up to `limit` jobs of `destination` due at `now` for `worker` (in progress, the
   * attempt counted), oldest first, with where each instance is stored now.
   */
  async claimDue(
    destination: string,
    worker: string,
    now: string,
    limit: number,
  ): Promise<ClaimedForwardJob[]> {
    const db = this.#db;
    const ids = db
      .selectFrom('forward_jobs')
      .select('id')
      .where('destination', '=', destination)
      .where('state', 'in', DUE_STATES)
      .where('next_attempt_at', '<=', now)
      .orderBy('id')
      .limit(limit);
    return this.#runner.runTransaction(function* () {
      const rows = yield* rowsOf(
        db
          .updateTable('forward_jobs')
          .set((eb) => ({
            state: 'in_progress',
            claimed_by: worker,
            claimed_at: now,
            attempts: eb('attempts', '+', 1),
            updated_at: now,
          }))
          .where('id', 'in', ids)
          .where('state', 'in', DUE_STATES)
          .returningAll()
          .compile(),
      );
      if (rows.length === 0) return [];
      const uids = [...new Set(rows.map((row) => row.sop_instance_uid))];
      const stored = yield* rowsOf(
        db
          .selectFrom('instances')
          .select(['sop_instance_uid', 'file_path'])
          .where('sop_instance_uid', 'in', uids)
          .compile(),
      );
      const paths = new Map(stored.map((row) => [row.sop_instance_uid, row.file_path]));
      return rows
        .map((row) => ({ ...toJob(row), storedFilePath: paths.get(row.sop_instance_uid) ?? null }))
        .sort((a, b) => a.id - b.id);
    });
  }

  /** Records how a claimed job's attempt ended, and moves its destination's status. */
  async finish(id: number, outcome: ForwardOutcome, now: string): Promise<ForwardJob> {
    const db = this.#db;
    return this.#runner.runTransaction(function* () {
      const values = outcome.isDone
        ? { state: 'done', next_attempt_at: null, last_error: null }
        : {
            state: outcome.nextAttemptAt === undefined ? 'dead' : 'failed',
            next_attempt_at: outcome.nextAttemptAt ?? null,
            last_error: storedError(outcome.error),
          };
      const [row] = yield* rowsOf(
        db
          .updateTable('forward_jobs')
          .set({ ...values, claimed_by: null, updated_at: now })
          .where('id', '=', id)
          .where('state', '=', 'in_progress')
          .returningAll()
          .compile(),
      );
      if (row === undefined) throw new Error(`forward job ${id} is not in progress`);
      const status = outcome.isDone
        ? { last_success_at: now }
        : { last_error: storedError(outcome.error), last_error_at: now };
      yield* rowsOf(
        db
          .insertInto('forward_destinations')
          .values({ ae_title: row.destination, ...status, updated_at: now })
          .onConflict((conflict) =>
            conflict.column('ae_title').doUpdateSet({ ...status, updated_at: now }),
          )
          .compile(),
      );
      return toJob(row);
    });
  }

  /**
   * Puts claimed jobs back as they were before their claim (a stop came before their attempt):
   * pending again at once, the attempt not counted; how many.
   */
  async unclaim(ids: readonly number[], now: string): Promise<number> {
    if (ids.length === 0) return 0;
    const rows = await this.#runner.runQuery(
      this.#db
        .updateTable('forward_jobs')
        .set((eb) => ({
          state: 'pending',
          attempts: eb('attempts', '-', 1),
          next_attempt_at: now,
          claimed_by: null,
          updated_at: now,
        }))
        .where('id', 'in', ids)
        .where('state', '=', 'in_progress')
        .returning('id')
        .compile(),
    );
    return rows.length;
  }

  /** The claimers of jobs in progress (for releasing those of a process that is gone). */
  async claimers(): Promise<ClaimHolder[]> {
    return claimHolders({ db: this.#db, runner: this.#runner }, 'forward_jobs');
  }

  /**
   * Puts the jobs in progress under these claimers back to pending (their process died during
   * the attempt, which counts); how many.
   */
  async releaseClaims(claimers: readonly string[], now: string): Promise<number> {
    return releaseClaimsOf({ db: this.#db, runner: this.#runner }, 'forward_jobs', claimers, now);
  }

  /** Removes done jobs last changed before `before` (ISO time), at most `limit`; how many. */
  async pruneDone(before: string, limit = 10_000): Promise<number> {
    const db = this.#db;
    return this.#runner.runTransaction(function* () {
      const removed = yield* rowsOf(
        db
          .deleteFrom('forward_jobs')
          .where(
            'id',
            'in',
            db
              .selectFrom('forward_jobs')
              .select('id')
              .where('state', '=', 'done')
              .where('updated_at', '<', before)
              .orderBy('id')
              .limit(limit),
          )
          .returning('id')
          .compile(),
      );
      return removed.length;
    });
  }

  // ---- the queue: the operator's side --------------------------------------------------------

  /** Puts a failed or dead job back to pending, due now, its attempts reset. */
  async retry(id: number, now: string): Promise<ForwardJobChangeResult> {
    const db = this.#db;
    return this.#runner.runTransaction(function* (): Step<ForwardJobChangeResult> {
      const [current] = yield* rowsOf(
        db.selectFrom('forward_jobs').select('state').where('id', '=', id).compile(),
      );
      if (current === undefined) {
        return { isChanged: false, reason: 'not-found', message: `no forward job ${id}` };
      }
      if (current.state !== 'failed' && current.state !== 'dead') {
        return {
          isChanged: false,
          reason: 'conflict',
          message: `forward job ${id} is ${current.state}: only failed or dead ones are retried`,
        };
      }
      const [row] = yield* rowsOf(
        db
          .updateTable('forward_jobs')
          .set({
            state: 'pending',
            attempts: 0,
            next_attempt_at: now,
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
      if (row === undefined) {
        return {
          isChanged: false,
          reason: 'conflict',
          message: `forward job ${id} changed meanwhile`,
        };
      }
      return { isChanged: true, job: toJob(row) };
    });
  }

  /** One job. */
  async getJob(id: number): Promise<ForwardJob | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#db.selectFrom('forward_jobs').selectAll().where('id', '=', id).compile(),
    );
    return row === undefined ? undefined : toJob(row);
  }

  /** A page of jobs matching `filter`, newest first, older than `beforeId` when given. */
  async page(filter: ForwardJobFilter, limit: number, beforeId?: number): Promise<ForwardJobPage> {
    let query = this.#filtered(filter).selectAll();
    if (beforeId !== undefined) query = query.where('id', '<', beforeId);
    const rows = await this.#runner.runQuery(
      query
        .orderBy('id', 'desc')
        .limit(limit + 1)
        .compile(),
    );
    const page = rows.slice(0, limit).map(toJob);
    return { rows: page, nextBeforeId: rows.length > limit ? page.at(-1)?.id : undefined };
  }

  /** How many jobs match `filter`. */
  async count(filter: ForwardJobFilter): Promise<number> {
    const [row] = await this.#runner.runQuery(
      this.#filtered(filter)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .compile(),
    );
    return Number(row?.n ?? 0);
  }

  /**
   * Every destination a rule names or a job or status row knows, by AE title: its open jobs'
   * counts, the next retry, the last success and the last error.
   */
  async destinationSummaries(): Promise<DestinationSummary[]> {
    const counts = await this.#runner.runQuery(
      this.#db
        .selectFrom('forward_jobs')
        .select((eb) => [
          'destination',
          'state',
          eb.fn.countAll<number>().as('n'),
          eb.fn.min('next_attempt_at').as('next_attempt_at'),
        ])
        .where('state', 'in', OPEN_STATES)
        .groupBy(['destination', 'state'])
        .compile(),
    );
    const statuses = await this.#runner.runQuery(
      this.#db.selectFrom('forward_destinations').selectAll().compile(),
    );
    const rules = await this.#runner.runQuery(
      this.#db.selectFrom('routing_rules').select('destinations_json').compile(),
    );
    const named = new Set(rules.flatMap((rule) => JSON.parse(rule.destinations_json) as string[]));
    const titles = new Set([
      ...named,
      ...counts.map((row) => row.destination),
      ...statuses.map((row) => row.ae_title),
    ]);
    const statusOf = new Map(statuses.map((row) => [row.ae_title, row]));
    return [...titles].sort().map((aeTitle) => {
      const of = (state: ForwardState) =>
        counts.find((row) => row.destination === aeTitle && row.state === state);
      const n = (state: ForwardState) => Number(of(state)?.n ?? 0);
      const status = statusOf.get(aeTitle);
      return {
        aeTitle,
        queued: n('pending') + n('in_progress'),
        failed: n('failed'),
        dead: n('dead'),
        nextAttemptAt: of('failed')?.next_attempt_at ?? null,
        lastSuccessAt: status?.last_success_at ?? null,
        lastError: status?.last_error ?? null,
        lastErrorAt: status?.last_error_at ?? null,
        isInRules: named.has(aeTitle),
      };
    });
  }

  #filtered(filter: ForwardJobFilter) {
    let query = this.#db.selectFrom('forward_jobs');
    if (filter.state !== undefined) query = query.where('state', '=', filter.state);
    if (filter.destination !== undefined) {
      query = query.where('destination', '=', filter.destination);
    }
    return query;
  }
}
