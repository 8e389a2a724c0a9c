/**
 * Series states for the hand-off: a series starts (or starts again) receiving with its first
 * instance, and is completed with its event and jobs in one transaction: the series and its
 * file list are read from the index then, so the event holds exactly what was stored.
 *
 * Nothing here runs per instance: only when a series starts receiving, reopens, or completes.
 *
 * Layer: db (repositories hold all SQL).
 */

import { join } from 'node:path';
import type { Kysely, Selectable } from 'kysely';
import type { Database, SeriesStatesTable } from '../schema.js';
import { rowsOf, type TransactionBody, type TransactionRunner } from '../transactions.js';
import {
  type HandoffEventRecord,
  type HandoffFileRecord,
  type HandoffSeriesRecord,
  type JobKind,
  type Page,
  refreshSeriesState,
  type SeriesState,
  type SeriesStateChange,
} from './handoff-repository.js';

/** The first instance of a series (or the first after a completion). */
export interface ReceivingSeries {
  readonly seriesInstanceUid: string;
  readonly studyInstanceUid: string;
  readonly patientId: string;
  readonly receivedAt: string;
}

/** A series' hand-off state, as listed. */
export interface SeriesStatus {
  readonly id: number;
  readonly seriesInstanceUid: string;
  readonly studyInstanceUid: string;
  readonly patientId: string;
  readonly state: SeriesState;
  readonly completion: number;
  readonly firstReceivedAt: string;
  readonly lastReceivedAt: string;
  readonly completedAt: string | null;
  readonly lastError: string | null;
  readonly updatedAt: string;
}

/** A job a completion writes. */
export interface PlannedJob {
  readonly kind: JobKind;
  /** The folder, URL or command line; '' for the queue. */
  readonly target: string;
}

/** What a completion wrote. */
export interface Completion {
  readonly eventId: number;
  readonly event: HandoffEventRecord;
  readonly jobs: number;
  readonly series: SeriesStateChange;
}

/** Which series to list. */
export interface SeriesFilter {
  readonly state?: SeriesState;
  readonly seriesInstanceUid?: string;
  readonly studyInstanceUid?: string;
}

type Step<T> = TransactionBody<T>;

function toStatus(row: Selectable<SeriesStatesTable>): SeriesStatus {
  return {
    id: Number(row.id),
    seriesInstanceUid: row.series_instance_uid,
    studyInstanceUid: row.study_instance_uid,
    patientId: row.patient_id,
    state: row.state as SeriesState,
    completion: Number(row.completion),
    firstReceivedAt: row.first_received_at,
    lastReceivedAt: row.last_received_at,
    completedAt: row.completed_at,
    lastError: row.last_error,
    updatedAt: row.updated_at,
  };
}

/** Reads and writes series states. */
export class SeriesStateRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;

  constructor(database: { readonly db: Kysely<Database>; readonly runner: TransactionRunner }) {
    this.#db = database.db;
    this.#runner = database.runner;
  }

  /**
   * Marks a series receiving: new, or reopened after a completion (its next completion is then
   * an update). One statement. The completions so far.
   */
  async startReceiving(series: ReceivingSeries): Promise<number> {
    const at = series.receivedAt;
    const [row] = await this.#runner.runQuery(
      this.#db
        .insertInto('series_states')
        .values({
          series_instance_uid: series.seriesInstanceUid,
          study_instance_uid: series.studyInstanceUid,
          patient_id: series.patientId,
          state: 'receiving',
          completion: 0,
          first_received_at: at,
          last_received_at: at,
          completed_at: null,
          last_error: null,
          updated_at: at,
        })
        .onConflict((oc) =>
          oc.column('series_instance_uid').doUpdateSet((eb) => ({
            state: 'receiving',
            study_instance_uid: eb.ref('excluded.study_instance_uid'),
            patient_id: eb.ref('excluded.patient_id'),
            // A series already receiving (another server) keeps the start of its reception.
            first_received_at: eb
              .case()
              .when('series_states.state', '=', 'receiving')
              .then(eb.ref('series_states.first_received_at'))
              .else(eb.ref('excluded.first_received_at'))
              .end(),
            last_received_at: eb.ref('excluded.last_received_at'),
            last_error: null,
            updated_at: at,
          })),
        )
        .returning('completion')
        .compile(),
    );
    return Number(row?.completion ?? 0);
  }

  /**
   * The series still receiving (after a restart), each with its newest instance's reception
   * time (from the index; the state row's when it has none).
   */
  async receivingSeries(): Promise<
    { seriesInstanceUid: string; lastReceivedAt: string; completion: number }[]
  > {
    const rows = await this.#runner.runQuery(
      this.#db
        .selectFrom('series_states')
        .leftJoin('series', 'series.series_instance_uid', 'series_states.series_instance_uid')
        .leftJoin('instances', 'instances.series_fk', 'series.id')
        .select((eb) => [
          'series_states.series_instance_uid',
          'series_states.last_received_at',
          'series_states.completion',
          eb.fn.max('instances.received_at').as('newest'),
        ])
        .where('series_states.state', '=', 'receiving')
        .groupBy([
          'series_states.series_instance_uid',
          'series_states.last_received_at',
          'series_states.completion',
        ])
        .compile(),
    );
    return rows.map((row) => ({
      seriesInstanceUid: row.series_instance_uid,
      lastReceivedAt:
        row.newest !== null && row.newest > row.last_received_at
          ? row.newest
          : row.last_received_at,
      completion: Number(row.completion),
    }));
  }

  /**
   * Completes a receiving series: its completion number moves on, its event (the series and
   * files from the index, paths under `storageRoot`) and `jobs` are written, all in one
   * transaction. Undefined when the series is not receiving (completed elsewhere meanwhile), or
   * has no instance in the index (its state row then goes).
   */
  async completeSeries(
    seriesInstanceUid: string,
    options: { readonly storageRoot: string; readonly jobs: readonly PlannedJob[]; now: string },
  ): Promise<Completion | undefined> {
    const db = this.#db;
    const { now } = options;
    return this.#runner.runTransaction(function* (): Step<Completion | undefined> {
      const [state] = yield* rowsOf(
        db
          .updateTable('series_states')
          .set((eb) => ({
            state: 'complete',
            completion: eb('completion', '+', 1),
            completed_at: now,
            last_error: null,
            updated_at: now,
          }))
          .where('series_instance_uid', '=', seriesInstanceUid)
          .where('state', '=', 'receiving')
          .returning(['completion'])
          .compile(),
      );
      if (state === undefined) return undefined;
      const completion = Number(state.completion);
      const series = yield* seriesRecord(db, seriesInstanceUid, options.storageRoot);
      if (series === undefined) {
        yield* rowsOf(
          db
            .deleteFrom('series_states')
            .where('series_instance_uid', '=', seriesInstanceUid)
            .compile(),
        );
        return undefined;
      }
      const event: HandoffEventRecord = {
        type: completion > 1 ? 'series.updated' : 'series.completed',
        idempotencyKey: `${seriesInstanceUid}:${completion}`,
        occurredAt: now,
        series: series.record,
      };
      const [inserted] = yield* rowsOf(
        db
          .insertInto('handoff_events')
          .values({
            series_instance_uid: seriesInstanceUid,
            completion,
            type: event.type,
            idempotency_key: event.idempotencyKey,
            occurred_at: now,
            payload_json: JSON.stringify(event.series),
          })
          .returning('id')
          .compile(),
      );
      const eventId = Number(inserted?.id);
      if (options.jobs.length > 0) {
        yield* rowsOf(
          db
            .insertInto('handoff_jobs')
            .values(
              options.jobs.map((job) => ({
                event_fk: eventId,
                series_instance_uid: seriesInstanceUid,
                completion,
                kind: job.kind,
                target: job.target,
                state: 'pending',
                attempts: 0,
                next_attempt_at: job.kind === 'queue' ? null : now,
                created_at: now,
                updated_at: now,
              })),
            )
            .compile(),
        );
      }
      yield* rowsOf(
        db
          .updateTable('series_states')
          .set({
            last_received_at: series.newestReceivedAt,
            study_instance_uid: series.record.studyInstanceUid,
            patient_id: series.record.patientId,
          })
          .where('series_instance_uid', '=', seriesInstanceUid)
          .compile(),
      );
      const changed = yield* refreshSeriesState(db, seriesInstanceUid, completion, now);
      return {
        eventId,
        event,
        jobs: options.jobs.length,
        series: changed ?? {
          seriesInstanceUid,
          completion,
          state: 'complete' as const,
          lastError: null,
        },
      };
    });
  }

  /** A series' state. */
  async get(seriesInstanceUid: string): Promise<SeriesStatus | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#db
        .selectFrom('series_states')
        .selectAll()
        .where('series_instance_uid', '=', seriesInstanceUid)
        .compile(),
    );
    return row === undefined ? undefined : toStatus(row);
  }

  /** A page of series matching `filter`, most recently changed first (by id within a page). */
  async page(filter: SeriesFilter, limit: number, beforeId?: number): Promise<Page<SeriesStatus>> {
    let query = this.#filtered(filter).selectAll();
    if (beforeId !== undefined) query = query.where('id', '<', beforeId);
    const rows = await this.#runner.runQuery(
      query
        .orderBy('id', 'desc')
        .limit(limit + 1)
        .compile(),
    );
    const page = rows.slice(0, limit).map(toStatus);
    return { rows: page, nextBeforeId: rows.length > limit ? page.at(-1)?.id : undefined };
  }

  /** How many series match `filter`. */
  async count(filter: SeriesFilter): Promise<number> {
    const [row] = await this.#runner.runQuery(
      this.#filtered(filter)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .compile(),
    );
    return Number(row?.n ?? 0);
  }

  #filtered(filter: SeriesFilter) {
    let query = this.#db.selectFrom('series_states');
    if (filter.state !== undefined) query = query.where('state', '=', filter.state);
    if (filter.seriesInstanceUid !== undefined) {
      query = query.where('series_instance_uid', '=', filter.seriesInstanceUid);
    }
    if (filter.studyInstanceUid !== undefined) {
      query = query.where('study_instance_uid', '=', filter.studyInstanceUid);
    }
    return query;
  }
}

/**
 * A series as its event carries it, from the index: patient, study and series attributes and
 * its files in instance order; with its newest reception time. Undefined when not indexed.
 */
function* seriesRecord(
  db: Kysely<Database>,
  seriesInstanceUid: string,
  storageRoot: string,
): Step<{ record: HandoffSeriesRecord; newestReceivedAt: string } | undefined> {
  const [series] = yield* rowsOf(
    db
      .selectFrom('series')
      .innerJoin('studies', 'studies.id', 'series.study_fk')
      .innerJoin('patients', 'patients.id', 'studies.patient_fk')
      .select([
        'series.id',
        'series.series_number',
        'series.series_description',
        'series.modality',
        'studies.study_instance_uid',
        'studies.study_date',
        'studies.study_description',
        'studies.accession_number',
        'patients.patient_id',
        'patients.patient_name',
      ])
      .where('series.series_instance_uid', '=', seriesInstanceUid)
      .compile(),
  );
  if (series === undefined) return undefined;
  const instances = yield* rowsOf(
    db
      .selectFrom('instances')
      .select([
        'sop_instance_uid',
        'sop_class_uid',
        'transfer_syntax_uid',
        'file_path',
        'file_size',
        'received_at',
        'instance_number',
      ])
      .where('series_fk', '=', series.id)
      .orderBy('instance_number')
      .orderBy('id')
      .compile(),
  );
  if (instances.length === 0) return undefined;
  const files: HandoffFileRecord[] = instances.map((row) => ({
    sopInstanceUid: row.sop_instance_uid,
    sopClassUid: row.sop_class_uid,
    transferSyntaxUid: row.transfer_syntax_uid,
    path: join(storageRoot, row.file_path),
    // PostgreSQL returns bigint as text.
    sizeBytes: Number(row.file_size),
  }));
  // ISO times compare as text.
  let newestReceivedAt = '';
  for (const row of instances) {
    if (row.received_at > newestReceivedAt) newestReceivedAt = row.received_at;
  }
  return {
    record: {
      patientId: series.patient_id,
      patientName: series.patient_name,
      studyInstanceUid: series.study_instance_uid,
      studyDate: series.study_date,
      studyDescription: series.study_description,
      accessionNumber: series.accession_number,
      seriesInstanceUid,
      seriesNumber: series.series_number === null ? null : Number(series.series_number),
      seriesDescription: series.series_description,
      modality: series.modality,
      files,
    },
    newestReceivedAt,
  };
}
