/**
 * The index of stored instances: patients, studies, series and instances rows, with the
 * related counts and lists that C-FIND returns (number of related series and instances,
 * modalities and SOP classes in study) kept up to date as instances arrive and go; and the
 * items of the sequence keys C-FIND matches (sequence_items), kept per patient, study and
 * series.
 *
 * Storage cleanup reads and removes whole studies here too: which studies may go (old enough,
 * their hand-off done: it reads the hand-off tables for that) and their rows, in one
 * transaction; a storage rescan removes the rows of instances whose file is gone.
 *
 * Layer: db (repositories hold all SQL).
 */

import { type Compilable, CompiledQuery, type Insertable, type Kysely } from 'kysely';
import { SEQUENCE_KEYS_BY_TAG, type SequenceValues } from '../../dicom/query/model.js';
import type { Database, SequenceItemsTable } from '../schema.js';
import {
  firstRowOf,
  rowsOf,
  type TransactionBody,
  type TransactionRunner,
} from '../transactions.js';
import type { JobState } from './handoff-repository.js';

/** The attributes of one received instance that the index keeps. */
export interface InstanceRecord {
  readonly patientId: string;
  readonly issuerOfPatientId: string;
  readonly patientName: string | null;
  readonly patientBirthDate: string | null;
  readonly patientSex: string | null;
  readonly studyInstanceUid: string;
  readonly studyDate: string | null;
  readonly studyTime: string | null;
  readonly accessionNumber: string | null;
  readonly studyId: string | null;
  readonly studyDescription: string | null;
  readonly referringPhysicianName: string | null;
  readonly patientAge: string | null;
  readonly seriesInstanceUid: string;
  readonly modality: string | null;
  readonly seriesNumber: number | null;
  readonly seriesDescription: string | null;
  readonly bodyPartExamined: string | null;
  readonly seriesDate: string | null;
  readonly seriesTime: string | null;
  readonly protocolName: string | null;
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  readonly instanceNumber: number | null;
  readonly transferSyntaxUid: string;
  /** Relative to the storage root. */
  readonly filePath: string;
  readonly fileSize: number;
  readonly callingAe: string;
  readonly receivedAt: string;
  /**
   * The indexed sequence keys the instance carries (each with items holding values), for its
   * patient, study or series by the key's entity. A sequence replaces the entity's stored items
   * when they differ; one the instance does not carry leaves them as they are.
   */
  readonly sequences?: readonly SequenceValues[];
}

/** A study as the dashboard lists it. */
export interface RecentStudy {
  readonly studyInstanceUid: string;
  readonly patientId: string;
  readonly patientName: string | null;
  readonly studyDate: string | null;
  readonly studyDescription: string | null;
  readonly accessionNumber: string | null;
  readonly modalitiesInStudy: string;
  readonly numberOfSeries: number;
  readonly numberOfInstances: number;
  readonly updatedAt: string;
}

/** Where an indexed instance's file is. */
export interface StoredInstance {
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  readonly transferSyntaxUid: string;
  readonly filePath: string;
  readonly fileSize: number;
  readonly receivedAt: string;
}

/** A study storage cleanup may remove (the shape of storage/cleanup.ts CleanupCandidate). */
export interface StudyCleanupCandidate {
  readonly studyInstanceUid: string;
  readonly newestReceivedAt: string;
  readonly sizeBytes: number;
  readonly instanceCount: number;
}

/** A study whose rows were removed, with its files (the shape of storage/cleanup.ts RemovedStudy). */
export interface RemovedStudyRows {
  readonly studyInstanceUid: string;
  readonly newestReceivedAt: string;
  readonly sizeBytes: number;
  readonly files: readonly {
    readonly sopInstanceUid: string;
    readonly filePath: string;
    readonly fileSize: number;
  }[];
}

/**
 * Hand-off job states that keep a series' files: a delivery pending, under way or to be
 * retried, a queue item not yet claimed, being processed or failed (to be retried). Done and
 * dead (given up) jobs do not.
 */
const UNFINISHED_JOB_STATES: readonly JobState[] = [
  'pending',
  'in_progress',
  'processing',
  'failed',
];

/**
 * The series whose hand-off is not done, with their study: still receiving (or received
 * again), or with a job of their latest completion unfinished. Driven from the state and job
 * indexes: few rows, however many series were ever received.
 */
function heldSeries(db: Kysely<Database>) {
  return db
    .selectFrom('series_states')
    .select(['series_states.series_instance_uid', 'series_states.study_instance_uid'])
    .where('series_states.state', '=', 'receiving')
    .union(
      db
        .selectFrom('handoff_jobs')
        .innerJoin('series_states', (join) =>
          join
            .onRef('series_states.series_instance_uid', '=', 'handoff_jobs.series_instance_uid')
            .onRef('series_states.completion', '=', 'handoff_jobs.completion'),
        )
        .select(['series_states.series_instance_uid', 'series_states.study_instance_uid'])
        .where('handoff_jobs.state', 'in', UNFINISHED_JOB_STATES),
    );
}

/** A step of a transaction body (see transactions.ts). */
type Step<T> = TransactionBody<T>;

/** The instance columns a StoredInstance is read from. */
const STORED_INSTANCE_COLUMNS = [
  'sop_instance_uid',
  'sop_class_uid',
  'transfer_syntax_uid',
  'file_path',
  'file_size',
  'received_at',
] as const;

function toStoredInstance(row: {
  sop_instance_uid: string;
  sop_class_uid: string;
  transfer_syntax_uid: string;
  file_path: string;
  file_size: number;
  received_at: string;
}): StoredInstance {
  return {
    sopInstanceUid: row.sop_instance_uid,
    sopClassUid: row.sop_class_uid,
    transferSyntaxUid: row.transfer_syntax_uid,
    filePath: row.file_path,
    // PostgreSQL returns bigint as text.
    fileSize: Number(row.file_size),
    receivedAt: row.received_at,
  };
}

/** The columns of a new instance row, in the order of the prepared insert's parameters. */
const INSERTED_INSTANCE_COLUMNS = [
  'sop_instance_uid',
  'series_fk',
  'sop_class_uid',
  'instance_number',
  'transfer_syntax_uid',
  'file_path',
  'file_size',
  'calling_ae',
  'received_at',
] as const;

/**
 * A query Kysely builds and compiles once, then runs again with new parameters, in the order
 * they appear in the SQL: on the receive path, building and compiling each query anew cost
 * more than running it.
 */
class PreparedQuery<Row> {
  readonly #build: (db: Kysely<Database>) => Compilable<Row>;
  #sql: string | undefined;

  constructor(build: (db: Kysely<Database>) => Compilable<Row>) {
    this.#build = build;
  }

  with(db: Kysely<Database>, parameters: readonly unknown[]): CompiledQuery<Row> {
    this.#sql ??= this.#build(db).compile().sql;
    return CompiledQuery.raw(this.#sql, [...parameters]) as CompiledQuery<Row>;
  }
}

/** What the index remembers of a series' rows between instances (see IndexRepository). */
interface CachedSeries {
  /** The patient, study and series attributes the rows were last written with. */
  readonly key: string;
  /** The record's sequences when they were last written with these rows; undefined if not. */
  readonly sequencesKey: string | undefined;
  readonly seriesId: number;
  readonly studyId: number;
  readonly modalities: string;
  readonly sopClasses: string;
}

/** Series remembered at most; the cache is dropped whole beyond that. */
const MAX_CACHED_SERIES = 1_000;

function cacheEntry(rows: CachedSeries): CachedSeries {
  const { key, sequencesKey, seriesId, studyId, modalities, sopClasses } = rows;
  return { key, sequencesKey, seriesId, studyId, modalities, sopClasses };
}

/** A record's sequences as one comparable string; undefined when it carries none. */
function sequencesKeyOf(r: InstanceRecord): string | undefined {
  return r.sequences === undefined || r.sequences.length === 0
    ? undefined
    : JSON.stringify(r.sequences);
}

/** A sequence item value row, as compared and written (without its owner). */
type ItemRow = Pick<SequenceItemsTable, 'item_number' | 'element_tag' | 'value'>;

/**
 * A sequence's rows: items numbered from 1, in order; within an item, by tag, the first value
 * of a tag kept (an item holds a tag once; a malformed one may repeat it).
 */
function itemRowsOf(sequence: SequenceValues): ItemRow[] {
  return sequence.items.flatMap((item, index) => {
    const byTag = new Map<number, string>();
    for (const { tag, value } of item) if (!byTag.has(tag)) byTag.set(tag, value);
    return [...byTag]
      .sort(([a], [b]) => a - b)
      .map(([tag, value]) => ({ item_number: index + 1, element_tag: tag, value }));
  });
}

function isSameRows(a: readonly ItemRow[], b: readonly ItemRow[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (row, i) =>
        row.item_number === b[i]?.item_number &&
        row.element_tag === b[i]?.element_tag &&
        row.value === b[i]?.value,
    )
  );
}

/** The patient, study and series attributes of a record, as one comparable string. */
function attributesKey(r: InstanceRecord): string {
  return JSON.stringify([
    r.patientId,
    r.issuerOfPatientId,
    r.patientName,
    r.patientBirthDate,
    r.patientSex,
    r.studyInstanceUid,
    r.studyDate,
    r.studyTime,
    r.accessionNumber,
    r.studyId,
    r.studyDescription,
    r.referringPhysicianName,
    r.patientAge,
    r.modality,
    r.seriesNumber,
    r.seriesDescription,
    r.bodyPartExamined,
    r.seriesDate,
    r.seriesTime,
    r.protocolName,
  ]);
}

/** Appends `value` to a backslash-separated list unless it is there already. */
function withListed(list: string, value: string | null): string {
  if (value === null || value === '') return list;
  const items = list === '' ? [] : list.split('\\');
  return items.includes(value) ? list : [...items, value].join('\\');
}

/** Reads and writes the instance index. */
export class IndexRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;
  /**
   * The rows the last instances of each series went to, so that the next instance of the same
   * series with the same patient, study and series attributes skips their upserts: the receive
   * path then costs four statements an instance instead of a dozen. Entries are kept only
   * once their transaction committed, and dropped whenever rows are removed.
   */
  readonly #seriesRows = new Map<string, CachedSeries>();
  /**
   * Moves whenever rows are removed outside the receive path (cleanup, rescan): an index
   * transaction that ran meanwhile does not cache what it staged, which may point at them.
   */
  #removals = 0;
  /** The statements every stored instance runs, compiled once (see PreparedQuery). */
  readonly #hot = {
    instanceByUid: new PreparedQuery((db) =>
      db.selectFrom('instances').select(['id', 'series_fk']).where('sop_instance_uid', '=', ''),
    ),
    storedInstanceByUid: new PreparedQuery((db) =>
      db.selectFrom('instances').select(STORED_INSTANCE_COLUMNS).where('sop_instance_uid', '=', ''),
    ),
    // Columns and parameters come from one list, so that their orders cannot drift apart.
    insertInstance: new PreparedQuery((db) =>
      db
        .insertInto('instances')
        .values(
          Object.fromEntries(
            INSERTED_INSTANCE_COLUMNS.map((column) => [column, '']),
          ) as unknown as Insertable<Database['instances']>,
        ),
    ),
    countSeries: new PreparedQuery((db) =>
      db
        .updateTable('series')
        .set((eb) => ({ num_instances: eb('num_instances', '+', 0) }))
        .where('id', '=', 0)
        .returning('study_fk'),
    ),
    countStudy: new PreparedQuery((db) =>
      db
        .updateTable('studies')
        .set((eb) => ({ num_instances: eb('num_instances', '+', 0) }))
        .where('id', '=', 0),
    ),
  };

  constructor(database: { readonly db: Kysely<Database>; readonly runner: TransactionRunner }) {
    this.#db = database.db;
    this.#runner = database.runner;
  }

  /** Runs a prepared hot query's compiled form inside a transaction body. */
  *#hotRows<Row>(query: PreparedQuery<Row>, parameters: readonly unknown[]): Step<Row[]> {
    return yield* rowsOf(query.with(this.#db, parameters));
  }

  /**
   * The studies whose newest instance was received before `before` (ISO time) and whose
   * hand-off is done (see heldSeries), oldest first by that newest instance, at most `limit`:
   * what storage cleanup may remove.
   */
  async cleanupCandidates(before: string, limit: number): Promise<StudyCleanupCandidate[]> {
    const rows = await this.#runner.runQuery(
      this.#cleanupCandidates(before)
        .orderBy('newest')
        .orderBy('studies.id')
        .limit(limit)
        .compile(),
    );
    return rows.map((row) => ({
      studyInstanceUid: row.study_instance_uid,
      newestReceivedAt: row.newest,
      // PostgreSQL returns sums and counts of bigint as text.
      sizeBytes: Number(row.size_bytes),
      instanceCount: Number(row.instance_count),
    }));
  }

  /**
   * Removes a study's rows (instances, series, study, sequence items, and its patient when it
   * has no other study) if it still qualifies for cleanup (as cleanupCandidates), checked in
   * the same transaction; what was removed, or undefined. On PostgreSQL the study's row is
   * locked first: an instance being indexed into the study meanwhile waits, then fails (its
   * series is gone) instead of joining a study that no longer exists.
   */
  async removeStudy(
    studyInstanceUid: string,
    before: string,
  ): Promise<RemovedStudyRows | undefined> {
    const db = this.#db;
    const self = this;
    const qualifying = this.#cleanupCandidates(before);
    return this.#runner.runTransaction(function* (): Step<RemovedStudyRows | undefined> {
      const [study] = yield* rowsOf(
        db
          .updateTable('studies')
          .set((eb) => ({ num_instances: eb.ref('studies.num_instances') }))
          .where('study_instance_uid', '=', studyInstanceUid)
          .returning(['id', 'patient_fk'])
          .compile(),
      );
      if (study === undefined) return undefined;
      const [candidate] = yield* rowsOf(qualifying.where('studies.id', '=', study.id).compile());
      if (candidate === undefined) return undefined;
      const files = yield* rowsOf(
        db
          .selectFrom('instances')
          .innerJoin('series', 'series.id', 'instances.series_fk')
          .select(['instances.sop_instance_uid', 'instances.file_path', 'instances.file_size'])
          .where('series.study_fk', '=', study.id)
          .orderBy('instances.id')
          .compile(),
      );
      const seriesOfStudy = db.selectFrom('series').select('id').where('study_fk', '=', study.id);
      yield* rowsOf(db.deleteFrom('instances').where('series_fk', 'in', seriesOfStudy).compile());
      yield* rowsOf(
        db
          .deleteFrom('sequence_items')
          .where('entity', '=', 'series')
          .where('owner_fk', 'in', seriesOfStudy)
          .compile(),
      );
      yield* rowsOf(db.deleteFrom('series').where('study_fk', '=', study.id).compile());
      yield* self.#removeItems('study', study.id);
      yield* rowsOf(db.deleteFrom('studies').where('id', '=', study.id).compile());
      const [otherStudy] = yield* rowsOf(
        db
          .selectFrom('studies')
          .select('id')
          .where('patient_fk', '=', study.patient_fk)
          .limit(1)
          .compile(),
      );
      if (otherStudy === undefined) {
        // A patient without studies would still answer a patient-level C-FIND.
        yield* self.#removeItems('patient', study.patient_fk);
        yield* rowsOf(db.deleteFrom('patients').where('id', '=', study.patient_fk).compile());
      }
      self.#forgetSeriesRows();
      return {
        studyInstanceUid,
        newestReceivedAt: candidate.newest,
        sizeBytes: Number(candidate.size_bytes),
        files: files.map((row) => ({
          sopInstanceUid: row.sop_instance_uid,
          filePath: row.file_path,
          fileSize: Number(row.file_size),
        })),
      };
    });
  }

  /**
   * The studies cleanup may remove, grouped with their newest reception time, size and count
   * (not ordered): those with every instance received before `before` and none of whose
   * series is held by its hand-off, by series or by study (a series whose first instance is
   * being indexed is receiving before it is in the index).
   */
  #cleanupCandidates(before: string) {
    const db = this.#db;
    const held = () => db.selectFrom(heldSeries(db).as('held'));
    return db
      .selectFrom('studies')
      .innerJoin('series', 'series.study_fk', 'studies.id')
      .innerJoin('instances', 'instances.series_fk', 'series.id')
      .select((eb) => [
        'studies.id',
        'studies.study_instance_uid',
        eb.fn.max('instances.received_at').as('newest'),
        eb.fn.sum<number>('instances.file_size').as('size_bytes'),
        eb.fn.countAll<number>().as('instance_count'),
      ])
      .where('studies.study_instance_uid', 'not in', held().select('held.study_instance_uid'))
      .where(
        'studies.id',
        'not in',
        db
          .selectFrom('series as held_series')
          .select('held_series.study_fk')
          .where(
            'held_series.series_instance_uid',
            'in',
            held().select('held.series_instance_uid'),
          ),
      )
      .groupBy(['studies.id', 'studies.study_instance_uid'])
      .having((eb) => eb(eb.fn.max('instances.received_at'), '<', before));
  }

  /**
   * Removes the rows of instances whose file is gone (a storage rescan), each only if it still
   * names that file (an instance replaced meanwhile keeps its new row); counts and lists as
   * removeInstances. The rows removed, with their sizes.
   */
  async removeMissingInstances(
    missing: readonly { readonly sopInstanceUid: string; readonly filePath: string }[],
  ): Promise<{ sopInstanceUid: string; filePath: string; fileSize: number }[]> {
    if (missing.length === 0) return [];
    const db = this.#db;
    const self = this;
    return this.#runner.runTransaction(function* () {
      const removed: { sopInstanceUid: string; filePath: string; fileSize: number }[] = [];
      for (const { sopInstanceUid, filePath } of missing) {
        const [row] = yield* rowsOf(
          db
            .deleteFrom('instances')
            .where('sop_instance_uid', '=', sopInstanceUid)
            .where('file_path', '=', filePath)
            .returning(['series_fk', 'file_size'])
            .compile(),
        );
        if (row === undefined) continue;
        yield* self.#detach(row.series_fk);
        removed.push({ sopInstanceUid, filePath, fileSize: Number(row.file_size) });
      }
      self.#forgetSeriesRows();
      return removed;
    });
  }

  /**
   * Indexed instances after id `afterId`, by id, at most `limit` (a rescan reads them all); only
   * those received at or after `receivedSince` (ISO time) when given.
   */
  async instancesAfter(
    afterId: number,
    limit: number,
    receivedSince?: string,
  ): Promise<{ id: number; sopInstanceUid: string; filePath: string; fileSize: number }[]> {
    const rows = await this.#runner.runQuery(
      this.#db
        .selectFrom('instances')
        .select(['id', 'sop_instance_uid', 'file_path', 'file_size'])
        .where('id', '>', afterId)
        .$if(receivedSince !== undefined, (qb) => qb.where('received_at', '>=', receivedSince!))
        .orderBy('id')
        .limit(limit)
        .compile(),
    );
    return rows.map((row) => ({
      id: Number(row.id),
      sopInstanceUid: row.sop_instance_uid,
      filePath: row.file_path,
      fileSize: Number(row.file_size),
    }));
  }

  /**
   * Bytes of the instances received since `since` (ISO time) that are still indexed, and the
   * oldest reception time in the index (how far back the intake can be measured).
   */
  async intakeSince(since: string): Promise<{ bytes: number; firstReceivedAt: string | null }> {
    const [recent] = await this.#runner.runQuery(
      this.#db
        .selectFrom('instances')
        .select((eb) => eb.fn.sum<number>('file_size').as('bytes'))
        .where('received_at', '>=', since)
        .compile(),
    );
    const [first] = await this.#runner.runQuery(
      this.#db
        .selectFrom('instances')
        .select((eb) => eb.fn.min('received_at').as('first'))
        .compile(),
    );
    return { bytes: Number(recent?.bytes ?? 0), firstReceivedAt: first?.first ?? null };
  }

  /** Rows were removed: nothing remembered of a series may point at them. */
  #forgetSeriesRows(): void {
    this.#seriesRows.clear();
    this.#removals += 1;
  }

  /**
   * Removes instances from the index, with the counts and lists of their series and studies;
   * a series or study left empty goes too.
   */
  async removeInstances(sopInstanceUids: readonly string[]): Promise<void> {
    const db = this.#db;
    const self = this;
    await this.#runner.runTransaction(function* () {
      for (const uid of sopInstanceUids) {
        const [row] = yield* rowsOf(
          db
            .deleteFrom('instances')
            .where('sop_instance_uid', '=', uid)
            .returning('series_fk')
            .compile(),
        );
        if (row !== undefined) yield* self.#detach(row.series_fk);
      }
    });
  }

  /** The indexed instance with this SOP Instance UID, if any. */
  async findInstance(sopInstanceUid: string): Promise<StoredInstance | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#hot.storedInstanceByUid.with(this.#db, [sopInstanceUid]),
    );
    return row === undefined ? undefined : toStoredInstance(row);
  }

  /**
   * Resolves once every commit made before the call is on disk (see TransactionRunner.durable):
   * what a success status waits for, after the instance's row and what its hooks wrote.
   */
  durable(): Promise<void> {
    return this.#runner.durable();
  }

  /** Indexes several instances in one transaction (one commit for all). */
  async addInstances(records: readonly InstanceRecord[]): Promise<void> {
    const staged = new Map<string, CachedSeries>();
    const removalsBefore = this.#removals;
    try {
      const self = this;
      await this.#runner.runTransaction(function* () {
        for (const record of records) yield* self.#add(record, staged);
      });
    } catch (error) {
      for (const record of records) this.#seriesRows.delete(record.seriesInstanceUid);
      throw error;
    }
    if (this.#removals !== removalsBefore) return;
    if (this.#seriesRows.size + staged.size > MAX_CACHED_SERIES) this.#seriesRows.clear();
    for (const [uid, rows] of staged) this.#seriesRows.set(uid, rows);
  }

  /** The studies that received instances last, newest first, with their patient and counts. */
  async recentStudies(limit: number): Promise<RecentStudy[]> {
    const rows = await this.#runner.runQuery(
      this.#db
        .selectFrom('studies')
        .innerJoin('patients', 'patients.id', 'studies.patient_fk')
        .select([
          'study_instance_uid',
          'patients.patient_id',
          'patients.patient_name',
          'study_date',
          'study_description',
          'accession_number',
          'modalities_in_study',
          'num_series',
          'num_instances',
          'studies.updated_at',
        ])
        .orderBy('studies.updated_at', 'desc')
        .limit(limit)
        .compile(),
    );
    return rows.map((row) => ({
      studyInstanceUid: row.study_instance_uid,
      patientId: row.patient_id,
      patientName: row.patient_name,
      studyDate: row.study_date,
      studyDescription: row.study_description,
      accessionNumber: row.accession_number,
      modalitiesInStudy: row.modalities_in_study,
      numberOfSeries: Number(row.num_series),
      numberOfInstances: Number(row.num_instances),
      updatedAt: row.updated_at,
    }));
  }

  /** Total bytes and number of indexed instances. */
  async totals(): Promise<{ instances: number; bytes: number }> {
    const row = await this.#db
      .selectFrom('instances')
      .select((eb) => [
        eb.fn.countAll<number>().as('n'),
        eb.fn.sum<number>('file_size').as('bytes'),
      ])
      .executeTakeFirstOrThrow();
    return { instances: Number(row.n), bytes: Number(row.bytes ?? 0) };
  }

  /** Counts of the index tables, for status and tests. */
  async counts(): Promise<{
    patients: number;
    studies: number;
    series: number;
    instances: number;
  }> {
    const count = async (table: 'patients' | 'studies' | 'series' | 'instances') =>
      Number(
        (
          await this.#db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    return {
      patients: await count('patients'),
      studies: await count('studies'),
      series: await count('series'),
      instances: await count('instances'),
    };
  }

  /** Increments and returns a named counter, starting at 1; persisted across restarts. */
  async nextCounter(name: string): Promise<number> {
    // One statement: concurrent callers (PostgreSQL runs them in parallel) never share a value.
    const row = await this.#db
      .insertInto('counters')
      .values({ name, value: 1 })
      .onConflict((oc) =>
        oc.column('name').doUpdateSet((eb) => ({ value: eb('counters.value', '+', 1) })),
      )
      .returning('value')
      .executeTakeFirstOrThrow();
    return Number(row.value);
  }

  *#add(r: InstanceRecord, staged: Map<string, CachedSeries>): Step<void> {
    const key = attributesKey(r);
    const sequencesKey = sequencesKeyOf(r);
    const known = staged.get(r.seriesInstanceUid) ?? this.#seriesRows.get(r.seriesInstanceUid);
    // An instance without sequences leaves the stored items alone: only the attributes count.
    const isKnown =
      known?.key === key && (sequencesKey === undefined || known.sequencesKey === sequencesKey);
    const rows = isKnown
      ? { ...known, isNewSeries: false }
      : yield* this.#upsertParents(r, key, sequencesKey);
    const [existing] = yield* this.#hotRows(this.#hot.instanceByUid, [r.sopInstanceUid]);
    const values = {
      series_fk: rows.seriesId,
      sop_class_uid: r.sopClassUid,
      instance_number: r.instanceNumber,
      transfer_syntax_uid: r.transferSyntaxUid,
      file_path: r.filePath,
      file_size: r.fileSize,
      calling_ae: r.callingAe,
      received_at: r.receivedAt,
    };
    if (existing !== undefined) {
      // A replaced instance (duplicate policy "overwrite"): same UID, new file and attributes.
      yield* rowsOf(
        this.#db.updateTable('instances').set(values).where('id', '=', existing.id).compile(),
      );
      if (existing.series_fk === rows.seriesId) {
        staged.set(r.seriesInstanceUid, cacheEntry(rows));
        return;
      }
      yield* this.#detach(existing.series_fk);
    } else {
      const row = { sop_instance_uid: r.sopInstanceUid, ...values };
      yield* this.#hotRows(
        this.#hot.insertInstance,
        INSERTED_INSTANCE_COLUMNS.map((column) => row[column]),
      );
    }
    yield* this.#adjustCounts(rows.seriesId, +1);
    const modalities = withListed(rows.modalities, r.modality);
    const sopClasses = withListed(rows.sopClasses, r.sopClassUid);
    if (rows.isNewSeries || modalities !== rows.modalities || sopClasses !== rows.sopClasses) {
      // Read again inside the transaction: another server sharing the index may have added to them.
      const current = yield* firstRowOf(
        this.#db
          .selectFrom('studies')
          .select(['modalities_in_study', 'sop_classes_in_study'])
          .where('id', '=', rows.studyId)
          .compile(),
      );
      const lists = {
        modalities_in_study: withListed(current.modalities_in_study, r.modality),
        sop_classes_in_study: withListed(current.sop_classes_in_study, r.sopClassUid),
      };
      yield* rowsOf(
        this.#db
          .updateTable('studies')
          .set({
            ...lists,
            ...(rows.isNewSeries && { num_series: (eb) => eb('num_series', '+', 1) }),
          })
          .where('id', '=', rows.studyId)
          .compile(),
      );
      staged.set(
        r.seriesInstanceUid,
        cacheEntry({
          ...rows,
          modalities: lists.modalities_in_study,
          sopClasses: lists.sop_classes_in_study,
        }),
      );
      return;
    }
    staged.set(r.seriesInstanceUid, cacheEntry(rows));
  }

  /**
   * Upserts the patient, study and series rows of a record, and their sequence items if it
   * carries any; what the cache keeps of them.
   */
  *#upsertParents(
    r: InstanceRecord,
    key: string,
    sequencesKey: string | undefined,
  ): Step<CachedSeries & { isNewSeries: boolean }> {
    const now = r.receivedAt;
    const patientFk = yield* this.#upsertPatient(r, now);
    const study = yield* this.#upsertStudy(r, patientFk, now);
    const series = yield* this.#upsertSeries(r, study.id, now);
    if (sequencesKey !== undefined) {
      const owners = { patient: patientFk, study: study.id, series: series.id };
      for (const sequence of r.sequences ?? []) yield* this.#replaceItems(sequence, owners);
    }
    const lists = yield* firstRowOf(
      this.#db
        .selectFrom('studies')
        .select(['modalities_in_study', 'sop_classes_in_study'])
        .where('id', '=', study.id)
        .compile(),
    );
    return {
      key,
      sequencesKey,
      seriesId: series.id,
      studyId: study.id,
      modalities: lists.modalities_in_study,
      sopClasses: lists.sop_classes_in_study,
      isNewSeries: series.isNew,
    };
  }

  /**
   * Replaces an entity's stored items of a sequence when they differ from the record's. Runs
   * after the entity's row was written in the same transaction: on PostgreSQL that row's lock
   * keeps two servers from replacing the same items at once.
   */
  *#replaceItems(
    sequence: SequenceValues,
    owners: Readonly<Record<SequenceItemsTable['entity'], number>>,
  ): Step<void> {
    const key = SEQUENCE_KEYS_BY_TAG.get(sequence.tag);
    if (key === undefined) return;
    const owner = { entity: key.entity, owner_fk: owners[key.entity], sequence_tag: key.tag };
    const rows = itemRowsOf(sequence);
    const stored = yield* rowsOf(
      this.#db
        .selectFrom('sequence_items')
        .select(['item_number', 'element_tag', 'value'])
        .where('entity', '=', owner.entity)
        .where('owner_fk', '=', owner.owner_fk)
        .where('sequence_tag', '=', owner.sequence_tag)
        .orderBy('item_number')
        .orderBy('element_tag')
        .compile(),
    );
    if (isSameRows(stored, rows)) return;
    if (stored.length > 0) {
      yield* rowsOf(
        this.#db
          .deleteFrom('sequence_items')
          .where('entity', '=', owner.entity)
          .where('owner_fk', '=', owner.owner_fk)
          .where('sequence_tag', '=', owner.sequence_tag)
          .compile(),
      );
    }
    if (rows.length === 0) return;
    yield* rowsOf(
      this.#db
        .insertInto('sequence_items')
        .values(rows.map((row) => ({ ...owner, ...row })))
        .compile(),
    );
  }

  /** Removes the sequence items of a series or study whose row goes. */
  *#removeItems(entity: SequenceItemsTable['entity'], ownerFk: number): Step<void> {
    yield* rowsOf(
      this.#db
        .deleteFrom('sequence_items')
        .where('entity', '=', entity)
        .where('owner_fk', '=', ownerFk)
        .compile(),
    );
  }

  /**
   * Counts an instance out of the series it left (it came back in another series). A series or
   * study left empty is removed, so that C-FIND reports neither; the study's lists are rebuilt
   * from what it still holds. Rare (overwrite with other UIDs), so plain queries will do.
   */
  *#detach(seriesFk: number): Step<void> {
    // Rows may be removed below: nothing cached may point at them.
    this.#seriesRows.clear();
    yield* this.#adjustCounts(seriesFk, -1);
    const series = yield* firstRowOf(
      this.#db
        .selectFrom('series')
        .select(['study_fk', 'num_instances'])
        .where('id', '=', seriesFk)
        .compile(),
    );
    if (Number(series.num_instances) > 0) {
      yield* this.#rebuildLists(series.study_fk);
      return;
    }
    yield* rowsOf(this.#db.deleteFrom('series').where('id', '=', seriesFk).compile());
    yield* this.#removeItems('series', seriesFk);
    // The series the instance moved to may be in this study, new and not yet counted.
    const [remaining] = yield* rowsOf(
      this.#db.selectFrom('series').select('id').where('study_fk', '=', series.study_fk).compile(),
    );
    if (remaining === undefined) {
      yield* rowsOf(this.#db.deleteFrom('studies').where('id', '=', series.study_fk).compile());
      yield* this.#removeItems('study', series.study_fk);
      return;
    }
    yield* rowsOf(
      this.#db
        .updateTable('studies')
        .set((eb) => ({ num_series: eb('num_series', '-', 1) }))
        .where('id', '=', series.study_fk)
        .compile(),
    );
    yield* this.#rebuildLists(series.study_fk);
  }

  /** Recomputes a study's Modalities in Study and SOP Classes in Study from its rows. */
  *#rebuildLists(studyFk: number): Step<void> {
    const modalities = yield* rowsOf(
      this.#db
        .selectFrom('series')
        .select('modality')
        .where('study_fk', '=', studyFk)
        .orderBy('id')
        .compile(),
    );
    const sopClasses = yield* rowsOf(
      this.#db
        .selectFrom('instances')
        .innerJoin('series', 'series.id', 'instances.series_fk')
        .select('instances.sop_class_uid')
        .where('series.study_fk', '=', studyFk)
        .groupBy('instances.sop_class_uid')
        .orderBy((eb) => eb.fn.min('instances.id'))
        .compile(),
    );
    yield* rowsOf(
      this.#db
        .updateTable('studies')
        .set({
          modalities_in_study: modalities.reduce((list, row) => withListed(list, row.modality), ''),
          sop_classes_in_study: sopClasses.reduce(
            (list, row) => withListed(list, row.sop_class_uid),
            '',
          ),
        })
        .where('id', '=', studyFk)
        .compile(),
    );
  }

  /** Moves the instance counts of a series and its study by `delta`. */
  *#adjustCounts(seriesFk: number, delta: number): Step<void> {
    const [series] = yield* this.#hotRows(this.#hot.countSeries, [delta, seriesFk]);
    if (series === undefined) throw new Error(`series ${seriesFk} not found`);
    yield* this.#hotRows(this.#hot.countStudy, [delta, series.study_fk]);
  }

  *#upsertPatient(r: InstanceRecord, now: string): Step<number> {
    const row = yield* firstRowOf(
      this.#db
        .insertInto('patients')
        .values({
          patient_id: r.patientId,
          issuer_of_patient_id: r.issuerOfPatientId,
          patient_name: r.patientName,
          patient_birth_date: r.patientBirthDate,
          patient_sex: r.patientSex,
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) =>
          oc.columns(['patient_id', 'issuer_of_patient_id']).doUpdateSet((eb) => ({
            patient_name: eb.fn.coalesce(
              eb.ref('excluded.patient_name'),
              eb.ref('patients.patient_name'),
            ),
            patient_birth_date: eb.fn.coalesce(
              eb.ref('excluded.patient_birth_date'),
              eb.ref('patients.patient_birth_date'),
            ),
            patient_sex: eb.fn.coalesce(
              eb.ref('excluded.patient_sex'),
              eb.ref('patients.patient_sex'),
            ),
            updated_at: now,
          })),
        )
        .returning('id')
        .compile(),
    );
    return row.id;
  }

  *#upsertStudy(r: InstanceRecord, patientFk: number, now: string): Step<{ id: number }> {
    const [existing] = yield* rowsOf(
      this.#db
        .selectFrom('studies')
        .select('id')
        .where('study_instance_uid', '=', r.studyInstanceUid)
        .compile(),
    );
    const attributes = {
      patient_fk: patientFk,
      study_date: r.studyDate,
      study_time: r.studyTime,
      accession_number: r.accessionNumber,
      study_id: r.studyId,
      study_description: r.studyDescription,
      referring_physician_name: r.referringPhysicianName,
      patient_age: r.patientAge,
      updated_at: now,
    };
    if (existing !== undefined) {
      yield* rowsOf(
        this.#db.updateTable('studies').set(attributes).where('id', '=', existing.id).compile(),
      );
      return existing;
    }
    return yield* firstRowOf(
      this.#db
        .insertInto('studies')
        .values({
          study_instance_uid: r.studyInstanceUid,
          ...attributes,
          modalities_in_study: '',
          sop_classes_in_study: '',
          num_series: 0,
          num_instances: 0,
          created_at: now,
        })
        .returning('id')
        .compile(),
    );
  }

  *#upsertSeries(
    r: InstanceRecord,
    studyFk: number,
    now: string,
  ): Step<{ id: number; isNew: boolean }> {
    const [existing] = yield* rowsOf(
      this.#db
        .selectFrom('series')
        .select('id')
        .where('series_instance_uid', '=', r.seriesInstanceUid)
        .compile(),
    );
    const attributes = {
      study_fk: studyFk,
      modality: r.modality,
      series_number: r.seriesNumber,
      series_description: r.seriesDescription,
      body_part_examined: r.bodyPartExamined,
      series_date: r.seriesDate,
      series_time: r.seriesTime,
      protocol_name: r.protocolName,
      updated_at: now,
    };
    if (existing !== undefined) {
      yield* rowsOf(
        this.#db.updateTable('series').set(attributes).where('id', '=', existing.id).compile(),
      );
      return { id: existing.id, isNew: false };
    }
    const row = yield* firstRowOf(
      this.#db
        .insertInto('series')
        .values({
          series_instance_uid: r.seriesInstanceUid,
          ...attributes,
          num_instances: 0,
          created_at: now,
        })
        .returning('id')
        .compile(),
    );
    return { id: row.id, isNew: true };
  }
}
