/**
 * The index as C-FIND, C-MOVE and C-GET see it: the matches of a query at its level, joined up
 * to their parents (patients <- studies <- series <- instances) for the keys above the level,
 * streamed in keyset pages, with the stored items of the sequence keys asked for (a query per
 * page and sequence); their number up to a limit, counted before any is sent; and every
 * instance under the matches, for a retrieve. How each key is matched is in query-matching.ts
 * (and the modules it names).
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
  SEQUENCE_KEYS,
  type SequenceCondition,
  type SequenceItemValues,
  type SequenceKey,
  type SequenceKeyword,
} from '../../dicom/query/model.js';
import { DicomServerError } from '../../errors.js';
import type { Database } from '../schema.js';
import type { TransactionRunner } from '../transactions.js';
import {
  conditionSql,
  type IndexTable,
  KEY_COLUMNS,
  keyExpression,
  type MatchOptions,
  type SqlKind,
  tableOfKey,
} from './query-matching.js';
import {
  matchingItemSql,
  SEQUENCE_OWNER_TABLE,
  sequenceConditionSql,
} from './query-matching-sequences.js';

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
  /** Rows counted per query by `count` (default 50,000). */
  readonly countChunkRows?: number;
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

/** A sequence key a query returns: its items, the ones matching its condition if it has one. */
interface ReturnedSequence {
  readonly key: SequenceKey;
  readonly condition: SequenceCondition | undefined;
}

/** The column of a returned sequence's owner row id in a page's rows. */
function ownerColumn(entity: SequenceKey['entity']): string {
  return `owner_${entity}`;
}

/** Rows counted per query by `count`: a bounded piece of synchronous work on SQLite. */
const COUNT_CHUNK_ROWS = 50_000;

/** Owner ids per items query: far below either database's limit on parameters. */
const MAX_OWNERS_PER_QUERY = 500;

/** A query on the index, resolved against its level: the SQL parts every page shares. */
interface PlannedQuery {
  readonly levelTable: IndexTable;
  readonly returnKeys: readonly QueryKeyword[];
  readonly returnSequences: readonly ReturnedSequence[];
  readonly conditions: readonly RawBuilder<SqlBool>[];
  readonly options: MatchOptions;
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

/** The sequence conditions and returned sequences of a query at or above the level's table. */
function sequencesOfLevel(
  query: IndexQuery,
  levelTable: IndexTable,
): {
  conditions: { key: SequenceKey; condition: SequenceCondition }[];
  returned: ReturnedSequence[];
} {
  const isOfLevel = (key: SequenceKey) =>
    DEPTH[SEQUENCE_OWNER_TABLE[key.entity]] <= DEPTH[levelTable];
  const conditions = (query.sequenceConditions ?? []).flatMap((condition) => {
    const key = SEQUENCE_KEYS.get(condition.keyword);
    return key !== undefined && isOfLevel(key) ? [{ key, condition }] : [];
  });
  const returned = [...new Set(query.returnSequences ?? [])].flatMap((keyword) => {
    const key = SEQUENCE_KEYS.get(keyword);
    if (key === undefined || !isOfLevel(key)) return [];
    const condition = conditions.find((c) => c.key === key)?.condition;
    return [{ key, condition }];
  });
  return { conditions, returned };
}

/** A row of sequence_items as a page's items query reads it. */
interface ItemValueRow {
  owner_fk: number | string;
  item_number: number | string;
  element_tag: number | string;
  value: string;
}

/** Groups item value rows (ordered by owner and item) into items, by owner. */
function groupItems(
  key: SequenceKey,
  rows: readonly ItemValueRow[],
  byOwner: Map<number, SequenceItemValues[]>,
): void {
  let last: { owner: number; itemNumber: number; item: Record<string, string> } | undefined;
  for (const row of rows) {
    const owner = Number(row.owner_fk);
    const itemNumber = Number(row.item_number);
    if (last?.owner !== owner || last.itemNumber !== itemNumber) {
      last = { owner, itemNumber, item: {} };
      const items = byOwner.get(owner) ?? [];
      items.push(last.item);
      byOwner.set(owner, items);
    }
    const itemKey = key.itemKeys.get(Number(row.element_tag));
    if (itemKey !== undefined) last.item[itemKey.keyword] = row.value;
  }
}

/** A match's returned sequences: its owner's items of each, none when it has no stored one. */
function sequencesOf(
  plan: PlannedQuery,
  items: ReadonlyMap<SequenceKeyword, ReadonlyMap<number, SequenceItemValues[]>>,
  row: Record<string, unknown>,
): NonNullable<IndexMatch['sequences']> {
  return Object.fromEntries(
    plan.returnSequences.map(({ key }) => [
      key.keyword,
      items.get(key.keyword)?.get(Number(row[ownerColumn(key.entity)])) ?? [],
    ]),
  );
}

/** Reads the index for C-FIND, C-MOVE and C-GET. */
export class QueryRepository {
  readonly #db: Kysely<Database>;
  readonly #kind: SqlKind;
  readonly #runner: TransactionRunner | undefined;
  readonly #pageSize: number;
  readonly #countChunkRows: number;

  constructor(database: QueryDatabase, options: QueryRepositoryOptions = {}) {
    this.#db = database.db;
    this.#kind = database.kind;
    this.#runner = database.runner;
    this.#pageSize = options.pageSize ?? 500;
    this.#countChunkRows = options.countChunkRows ?? COUNT_CHUNK_ROWS;
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
    const owners = [...new Set(plan.returnSequences.map((returned) => returned.key.entity))];
    const columns = [
      sql`${id} as ${sql.id(ROW_ID)}`,
      ...plan.returnKeys.map((keyword) => sql`${keyExpression(keyword)} as ${sql.id(keyword)}`),
      ...owners.map(
        (entity) =>
          sql`${sql.ref(`${SEQUENCE_OWNER_TABLE[entity]}.id`)} as ${sql.id(ownerColumn(entity))}`,
      ),
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
      const items = await this.#returnedItems(plan, rows);
      for (const row of rows) {
        signal?.throwIfAborted();
        const match: IndexMatch = Object.fromEntries(
          plan.returnKeys.map((keyword) => [keyword, matchValue(keyword, row[keyword])]),
        );
        yield items.size === 0 ? match : { ...match, sequences: sequencesOf(plan, items, row) };
      }
      remaining -= rows.length;
      if (rows.length < pageSize) return;
      after = Number(rows[rows.length - 1]?.[ROW_ID]);
    }
  }

  /**
   * The number of matches of a query, counted no further than `limit` (a query with more gives
   * `limit`): a match limit is checked before any match is sent, without holding the matches.
   * Counted in chunks of rows after the last one counted, the event loop free between them
   * (SQLite runs each chunk synchronously); the signal aborts it between chunks.
   */
  async count(query: IndexQuery, limit: number, signal?: AbortSignal): Promise<number> {
    const plan = this.#plan({ ...query, returnKeys: [], returnSequences: [] }, query.level);
    const id = sql.ref(`${plan.levelTable}.id`);
    let counted = 0;
    let after = 0;
    while (counted < limit) {
      signal?.throwIfAborted();
      const chunkRows = Math.min(this.#countChunkRows, limit - counted);
      const [chunk] = await this.#rows<{ matches: number | string; last: number | string | null }>(
        sql`select count(*) as matches, max(row_id) as last from (select ${id} as row_id ${fromClause(
          plan.levelTable,
          plan.topTable,
        )} ${whereClause([
          ...plan.conditions,
          sql<SqlBool>`${id} > ${after}`,
        ])} order by ${id} limit ${chunkRows}) as chunk`.compile(this.#db),
      );
      // PostgreSQL returns count(*) as text.
      const matches = Number(chunk?.matches ?? 0);
      counted += matches;
      if (matches < chunkRows) break;
      after = Number(chunk?.last);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return counted;
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
    const options: MatchOptions = {
      kind: this.#kind,
      isPersonNameCaseInsensitive: query.isPersonNameCaseInsensitive === true,
    };
    const sequences = sequencesOfLevel(query, levelTable);
    const used = [
      ...[...returnKeys, ...conditionKeys.map((c) => c.keyword)].map(tableOfKey),
      ...[...sequences.conditions, ...sequences.returned].map(
        ({ key }) => SEQUENCE_OWNER_TABLE[key.entity],
      ),
    ];
    const topDepth = Math.min(DEPTH[levelTable], ...used.map((table) => DEPTH[table]));
    return {
      levelTable,
      returnKeys,
      returnSequences: sequences.returned,
      conditions: [
        ...conditionKeys.map((c) => conditionSql(c.keyword, c.match, options)),
        ...sequences.conditions.map(({ condition }) => sequenceConditionSql(condition, options)),
      ],
      options,
      topTable: TABLES_BY_DEPTH[topDepth] ?? levelTable,
    };
  }

  /**
   * The stored items of the sequences a page returns, by sequence and owner row id: the items
   * matching the sequence's condition, or all, each as its item keys' values, in item order.
   */
  async #returnedItems(
    plan: PlannedQuery,
    rows: readonly Record<string, unknown>[],
  ): Promise<Map<SequenceKeyword, Map<number, SequenceItemValues[]>>> {
    const items = new Map<SequenceKeyword, Map<number, SequenceItemValues[]>>();
    for (const { key, condition } of plan.returnSequences) {
      const byOwner = new Map<number, SequenceItemValues[]>();
      items.set(key.keyword, byOwner);
      const owners = [...new Set(rows.map((row) => Number(row[ownerColumn(key.entity)])))];
      for (let start = 0; start < owners.length; start += MAX_OWNERS_PER_QUERY) {
        const some = owners.slice(start, start + MAX_OWNERS_PER_QUERY);
        const filter =
          condition === undefined
            ? sql``
            : sql`and ${matchingItemSql('s', condition, plan.options)}`;
        const values = await this.#rows<ItemValueRow>(
          sql`select s.owner_fk, s.item_number, s.element_tag, s.value from sequence_items as s where s.entity = ${key.entity} and s.sequence_tag = ${key.tag} and s.owner_fk in (${sql.join(some)}) ${filter} order by s.owner_fk, s.item_number, s.element_tag`.compile(
            this.#db,
          ),
        );
        groupItems(key, values, byOwner);
      }
    }
    return items;
  }

  async #rows<Row>(query: CompiledQuery<unknown>): Promise<Row[]> {
    if (this.#runner !== undefined) return (await this.#runner.runQuery(query)) as Row[];
    return (await this.#db.executeQuery(query)).rows as Row[];
  }
}
