/**
 * The index as C-FIND, C-MOVE and C-GET see it: the matches of a query at its level, joined up
 * to their parents (patients <- studies <- series <- instances) for the keys above the level,
 * streamed in keyset pages; and every instance under the matches, for a retrieve. How each
 * key is matched is in query-matching.ts.
 *
 * Layer: db (repositories hold all SQL).
 */

import { type CompiledQuery, type Kysely, type RawBuilder, type SqlBool, sql } from 'kysely';
import {
  type IndexMatch,
  type IndexQuery,
  levelsOf,
  type QueryKeyword,
  type QueryLevel,
  type RetrievableInstance,
} from '../../dicom/query/model.js';
import { DicomServerError } from '../../errors.js';
import type { Database } from '../schema.js';
import type { TransactionRunner } from '../transactions.js';
import {
  conditionSql,
  type IndexTable,
  KEY_COLUMNS,
  keyExpression,
  type SqlKind,
  tableOfKey,
} from './query-matching.js';

/** The database a QueryRepository reads (an OpenDatabase will do). */
export interface QueryDatabase {
  readonly db: Kysely<Database>;
  readonly kind: SqlKind;
  /** SQLite's runner skips Kysely's per-query overhead; without one, queries go through Kysely. */
  readonly runner?: TransactionRunner;
}

/** Options of a QueryRepository. */
export interface QueryRepositoryOptions {
  /** Rows fetched per query while streaming matches (default 500). */
  readonly pageSize?: number;
}

/** The table whose rows are the matches of a level. */
const LEVEL_TABLE: Readonly<Record<QueryLevel, IndexTable>> = {
  PATIENT: 'patients',
  STUDY: 'studies',
  SERIES: 'series',
  IMAGE: 'instances',
};

/** How far down the hierarchy a table is. */
const DEPTH: Readonly<Record<IndexTable, number>> = {
  patients: 0,
  studies: 1,
  series: 2,
  instances: 3,
};

/** Top to bottom, as DEPTH numbers them. */
const TABLES_BY_DEPTH: readonly IndexTable[] = ['patients', 'studies', 'series', 'instances'];

/** The join from a table to its parent. */
const PARENT_JOIN: Readonly<Record<Exclude<IndexTable, 'patients'>, RawBuilder<unknown>>> = {
  instances: sql`inner join series on series.id = instances.series_fk`,
  series: sql`inner join studies on studies.id = series.study_fk`,
  studies: sql`inner join patients on patients.id = studies.patient_fk`,
};

/** The column of the level's row id in a page's rows (no key's keyword starts in lower case). */
const ROW_ID = 'row_id';

/** A query on the index, resolved against its level: the SQL parts every page shares. */
interface PlannedQuery {
  readonly levelTable: IndexTable;
  readonly returnKeys: readonly QueryKeyword[];
  readonly conditions: readonly RawBuilder<SqlBool>[];
  /** The highest table the keys need (the level's own table at least). */
  readonly topTable: IndexTable;
}

/** `from <table> inner join <parent> ...` up to `top`. */
function fromClause(bottom: IndexTable, top: IndexTable): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [sql`from ${sql.table(bottom)}`];
  for (let depth = DEPTH[bottom]; depth > DEPTH[top]; depth--) {
    const table = TABLES_BY_DEPTH[depth] as Exclude<IndexTable, 'patients'>;
    parts.push(PARENT_JOIN[table]);
  }
  return sql.join(parts, sql` `);
}

function whereClause(conditions: readonly RawBuilder<SqlBool>[]): RawBuilder<unknown> {
  return conditions.length === 0 ? sql`` : sql`where ${sql.join(conditions, sql` and `)}`;
}

/** A key's value as a match carries it: IS as a number, an empty list as none. */
function matchValue(keyword: QueryKeyword, value: unknown): string | number | null {
  if (value === null || value === undefined) return null;
  switch (KEY_COLUMNS[keyword].kind) {
    case 'integer':
    case 'patient-total':
      // PostgreSQL returns bigint (counts, sums) as text.
      return Number(value);
    case 'list':
      return value === '' ? null : String(value);
    case 'text':
      return String(value);
  }
}

/** Reads the index for C-FIND, C-MOVE and C-GET. */
export class QueryRepository {
  readonly #db: Kysely<Database>;
  readonly #kind: SqlKind;
  readonly #runner: TransactionRunner | undefined;
  readonly #pageSize: number;

  constructor(database: QueryDatabase, options: QueryRepositoryOptions = {}) {
    this.#db = database.db;
    this.#kind = database.kind;
    this.#runner = database.runner;
    this.#pageSize = options.pageSize ?? 500;
  }

  /**
   * The matches of a query at its level, in the order their rows were indexed, each with the
   * query's return keys (keys above the level from the parent entities; keys below the level,
   * in return keys or conditions, are not the level's and are left out). Fetched in pages of
   * rows after the last one seen, so that no more than a page is held; stops at `limit`, when
   * the caller stops, or (throwing the signal's reason) when the signal aborts.
   */
  async *find(query: IndexQuery, signal?: AbortSignal): AsyncGenerator<IndexMatch> {
    const plan = this.#plan(query, query.level);
    const id = sql.ref(`${plan.levelTable}.id`);
    const columns = [
      sql`${id} as ${sql.id(ROW_ID)}`,
      ...plan.returnKeys.map((keyword) => sql`${keyExpression(keyword)} as ${sql.id(keyword)}`),
    ];
    let remaining = query.limit ?? Number.POSITIVE_INFINITY;
    let after = 0;
    while (remaining > 0) {
      signal?.throwIfAborted();
      const pageSize = Math.min(this.#pageSize, remaining);
      const rows = await this.#rows<Record<string, unknown>>(
        sql`select ${sql.join(columns)} ${fromClause(plan.levelTable, plan.topTable)} ${whereClause(
          [...plan.conditions, sql<SqlBool>`${id} > ${after}`],
        )} order by ${id} limit ${pageSize}`.compile(this.#db),
      );
      for (const row of rows) {
        signal?.throwIfAborted();
        yield Object.fromEntries(
          plan.returnKeys.map((keyword) => [keyword, matchValue(keyword, row[keyword])]),
        );
      }
      remaining -= rows.length;
      if (rows.length < pageSize) return;
      after = Number(rows[rows.length - 1]?.[ROW_ID]);
    }
  }

  /**
   * Every instance under the matches of a query (a C-MOVE or C-GET), ordered by study (as
   * indexed), series (by Series Number, then as indexed), Instance Number and as indexed. File
   * paths are relative to the storage root, as the index holds them.
   */
  async retrievable(query: IndexQuery, signal?: AbortSignal): Promise<RetrievableInstance[]> {
    signal?.throwIfAborted();
    const plan = this.#plan({ ...query, returnKeys: [] }, query.level);
    const top = DEPTH[plan.topTable] < DEPTH.studies ? plan.topTable : 'studies';
    const rows = await this.#rows<{
      sop_class_uid: string;
      sop_instance_uid: string;
      transfer_syntax_uid: string;
      file_path: string;
      file_size: number | string;
    }>(
      sql`select instances.sop_class_uid, instances.sop_instance_uid, instances.transfer_syntax_uid, instances.file_path, instances.file_size ${fromClause(
        'instances',
        top,
      )} ${whereClause(plan.conditions)} order by studies.id, series.series_number is null, series.series_number, series.id, instances.instance_number is null, instances.instance_number, instances.id`.compile(
        this.#db,
      ),
    );
    signal?.throwIfAborted();
    return rows.map((row) => ({
      sopClassUid: row.sop_class_uid,
      sopInstanceUid: row.sop_instance_uid,
      transferSyntaxUid: row.transfer_syntax_uid,
      filePath: row.file_path,
      // PostgreSQL returns bigint as text.
      fileSize: Number(row.file_size),
    }));
  }

  /** The SQL parts of a query at `level`: its conditions and return keys of that level or above. */
  #plan(query: IndexQuery, level: QueryLevel): PlannedQuery {
    if (!levelsOf(query.root).includes(level)) {
      throw new DicomServerError('ERR_INVALID_ARGUMENT', 'query level not in the query root', {
        root: query.root,
        level,
      });
    }
    const levelTable = LEVEL_TABLE[level];
    const isOfLevel = (keyword: QueryKeyword) =>
      KEY_COLUMNS[keyword] !== undefined && DEPTH[tableOfKey(keyword)] <= DEPTH[levelTable];
    const returnKeys = [...new Set(query.returnKeys)].filter(isOfLevel);
    const conditionKeys = query.conditions.filter((c) => isOfLevel(c.keyword));
    const options = {
      kind: this.#kind,
      isPersonNameCaseInsensitive: query.isPersonNameCaseInsensitive === true,
    };
    const used = [...returnKeys, ...conditionKeys.map((c) => c.keyword)];
    const topDepth = Math.min(DEPTH[levelTable], ...used.map((k) => DEPTH[tableOfKey(k)]));
    return {
      levelTable,
      returnKeys,
      conditions: conditionKeys.map((c) => conditionSql(c.keyword, c.match, options)),
      topTable: TABLES_BY_DEPTH[topDepth] ?? levelTable,
    };
  }

  async #rows<Row>(query: CompiledQuery<unknown>): Promise<Row[]> {
    if (this.#runner !== undefined) return (await this.#runner.runQuery(query)) as Row[];
    return (await this.#db.executeQuery(query)).rows as Row[];
  }
}
