/**
 * The transaction log (the specification's DicomTransaction): one row per association event,
 * per DIMSE operation and per hand-off attempt, written in batches, read back filtered and a
 * page at a time (newest first, by id), pruned by age.
 *
 * Layer: db (repositories hold all SQL).
 */

import {
  CompiledQuery,
  type Insertable,
  type Kysely,
  type Selectable,
  type SelectQueryBuilder,
} from 'kysely';
import type { Database, TransactionsTable } from '../schema.js';
import { rowsOf, type TransactionRunner } from '../transactions.js';

/**
 * What a row records: an association event, a DIMSE operation, or an attempt to hand a
 * completed series to processing (HANDOFF: a folder copy, webhook or command; no association,
 * the target in the message), or an attempt to forward an instance to a destination AE (FORWARD:
 * the C-STORE's status, the destination as called AE, the attempt in the message).
 */
export const TRANSACTION_TYPES = [
  'ASSOCIATE',
  'RELEASE',
  'ABORT',
  'C-ECHO',
  'C-STORE',
  'C-FIND',
  'C-MOVE',
  'C-GET',
  'HANDOFF',
  'FORWARD',
] as const;
export type TransactionType = (typeof TRANSACTION_TYPES)[number];

/** How it ended. */
export const TRANSACTION_STATUSES = ['success', 'warning', 'failure', 'rejected'] as const;
export type TransactionStatus = (typeof TRANSACTION_STATUSES)[number];

/** One row to write. */
export interface TransactionRecord {
  readonly occurredAt: string;
  readonly type: TransactionType;
  readonly status: TransactionStatus;
  readonly statusCode?: number;
  readonly associationId: string;
  readonly callingAe: string;
  readonly calledAe: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly sopClassUid?: string;
  readonly sopInstanceUid?: string;
  readonly patientId?: string;
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;
  readonly filePath?: string;
  readonly bytes?: number;
  readonly durationMs?: number;
  readonly transferRateMbps?: number;
  readonly message?: string;
}

/** A row read back. */
export type TransactionRow = Selectable<TransactionsTable>;

/** Which rows to read. */
export interface TransactionFilter {
  readonly type?: TransactionType;
  readonly status?: TransactionStatus;
  /** Calling or called AE title. */
  readonly aeTitle?: string;
  /** ISO times, inclusive start, exclusive end. */
  readonly since?: string;
  readonly until?: string;
}

/** A page of rows, newest first; `nextBeforeId` reads the next page. */
export interface TransactionPage {
  readonly rows: TransactionRow[];
  readonly nextBeforeId: number | undefined;
}

/** A calling AE title seen lately, from the association rows. */
export interface SeenCallingAe {
  readonly callingAe: string;
  readonly remoteAddress: string;
  readonly lastSeen: string;
  readonly associations: number;
  /** The message of its latest association row (why it was, or would have been, rejected). */
  readonly lastMessage: string | null;
  readonly lastStatus: TransactionStatus;
}

/**
 * Rows per INSERT statement: a batch is written in statements of these sizes, largest first
 * (200 rows: 128 + 64 + 8). Each size is one SQL text, prepared once and cached; a statement of
 * exactly the batch's size, as before, made a new one for nearly every batch. Measured: up to
 * 200 cached statements of up to 200 rows, the process's native memory growing by some 3 MB
 * every 2,000 instances received, for good.
 */
const INSERT_SIZES = [128, 64, 32, 16, 8, 4, 2, 1] as const;

/** The columns an INSERT writes, each with its value in a record, in the SQL's order. */
const INSERTED_COLUMNS: readonly (readonly [
  keyof TransactionsTable,
  (record: TransactionRecord) => string | number | null,
])[] = [
  ['occurred_at', (r) => r.occurredAt],
  ['type', (r) => r.type],
  ['status', (r) => r.status],
  ['status_code', (r) => r.statusCode ?? null],
  ['association_id', (r) => r.associationId],
  ['calling_ae', (r) => r.callingAe],
  ['called_ae', (r) => r.calledAe],
  ['remote_address', (r) => r.remoteAddress],
  ['remote_port', (r) => r.remotePort],
  ['sop_class_uid', (r) => r.sopClassUid ?? null],
  ['sop_instance_uid', (r) => r.sopInstanceUid ?? null],
  ['patient_id', (r) => r.patientId ?? null],
  ['study_instance_uid', (r) => r.studyInstanceUid ?? null],
  ['series_instance_uid', (r) => r.seriesInstanceUid ?? null],
  ['file_path', (r) => r.filePath ?? null],
  ['bytes', (r) => r.bytes ?? null],
  ['duration_ms', (r) => r.durationMs ?? null],
  ['transfer_rate_mbps', (r) => r.transferRateMbps ?? null],
  ['message', (r) => r.message ?? null],
];

/** `count` split into INSERT_SIZES, largest first. */
export function insertSizes(count: number): number[] {
  const sizes: number[] = [];
  let rest = count;
  for (const size of INSERT_SIZES) {
    while (rest >= size) {
      sizes.push(size);
      rest -= size;
    }
  }
  return sizes;
}

/** Reads and writes the transaction log. */
export class TransactionLogRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;
  readonly #insertSqlBySize = new Map<number, string>();

  constructor(database: { readonly db: Kysely<Database>; readonly runner: TransactionRunner }) {
    this.#db = database.db;
    this.#runner = database.runner;
  }

  /** Writes rows in one transaction. */
  async insert(records: readonly TransactionRecord[]): Promise<void> {
    if (records.length === 0) return;
    const self = this;
    await this.#runner.runTransaction(function* () {
      let start = 0;
      for (const size of insertSizes(records.length)) {
        const parameters: (string | number | null)[] = [];
        for (const record of records.slice(start, start + size)) {
          for (const [, value] of INSERTED_COLUMNS) parameters.push(value(record));
        }
        start += size;
        yield* rowsOf(CompiledQuery.raw(self.#insertSql(size), parameters));
      }
    });
  }

  /**
   * The INSERT of `rows` rows, its parameters row by row in INSERTED_COLUMNS' order, compiled
   * by Kysely once per size, not for every batch (it cost more than the insert).
   */
  #insertSql(rows: number): string {
    let sql = this.#insertSqlBySize.get(rows);
    if (sql === undefined) {
      const row = Object.fromEntries(INSERTED_COLUMNS.map(([column]) => [column, null]));
      sql = this.#db
        .insertInto('transactions')
        .values(Array.from({ length: rows }, () => row as Insertable<TransactionsTable>))
        .compile().sql;
      this.#insertSqlBySize.set(rows, sql);
    }
    return sql;
  }

  /** A page of rows matching `filter`, newest first, older than `beforeId` when given. */
  async page(
    filter: TransactionFilter,
    limit: number,
    beforeId?: number,
  ): Promise<TransactionPage> {
    let query = this.#filtered(filter).selectAll();
    if (beforeId !== undefined) query = query.where('id', '<', beforeId);
    const rows = await this.#runner.runQuery(
      query
        .orderBy('id', 'desc')
        .limit(limit + 1)
        .compile(),
    );
    const hasMore = rows.length > limit;
    const page = rows.slice(0, limit).map((row) => ({
      ...row,
      // PostgreSQL returns bigint as text.
      bytes: row.bytes === null ? null : Number(row.bytes),
    }));
    return { rows: page, nextBeforeId: hasMore ? page.at(-1)?.id : undefined };
  }

  /** How many rows match `filter`. */
  async count(filter: TransactionFilter): Promise<number> {
    const [row] = await this.#runner.runQuery(
      this.#filtered(filter)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .compile(),
    );
    return Number(row?.n ?? 0);
  }

  /** Removes rows older than `before` (ISO time), at most `limit`; how many went. */
  async prune(before: string, limit = 10_000): Promise<number> {
    const db = this.#db;
    return this.#runner.runTransaction(function* () {
      const removed = yield* rowsOf(
        db
          .deleteFrom('transactions')
          .where(
            'id',
            'in',
            db
              .selectFrom('transactions')
              .select('id')
              .where('occurred_at', '<', before)
              .orderBy('occurred_at')
              .limit(limit),
          )
          .returning('id')
          .compile(),
      );
      return removed.length;
    });
  }

  /** The calling AE titles that associated since `since` (ISO time), most recent first. */
  async seenCallingAes(since: string): Promise<SeenCallingAe[]> {
    const groups = await this.#runner.runQuery(
      this.#db
        .selectFrom('transactions')
        .select((eb) => [
          'calling_ae',
          'remote_address',
          eb.fn.max('occurred_at').as('last_seen'),
          eb.fn.countAll<number>().as('associations'),
          eb.fn.max('id').as('last_id'),
        ])
        .where('type', '=', 'ASSOCIATE')
        .where('occurred_at', '>=', since)
        .groupBy(['calling_ae', 'remote_address'])
        .orderBy('last_seen', 'desc')
        .limit(500)
        .compile(),
    );
    if (groups.length === 0) return [];
    const latest = await this.#runner.runQuery(
      this.#db
        .selectFrom('transactions')
        .select(['id', 'message', 'status'])
        .where(
          'id',
          'in',
          groups.map((group) => Number(group.last_id)),
        )
        .compile(),
    );
    const byId = new Map(latest.map((row) => [row.id, row]));
    return groups.map((group) => {
      const last = byId.get(Number(group.last_id));
      return {
        callingAe: group.calling_ae,
        remoteAddress: group.remote_address,
        lastSeen: String(group.last_seen),
        associations: Number(group.associations),
        lastMessage: last?.message ?? null,
        lastStatus: (last?.status ?? 'success') as TransactionStatus,
      };
    });
  }

  #filtered(filter: TransactionFilter): SelectQueryBuilder<Database, 'transactions', object> {
    let query = this.#db.selectFrom('transactions');
    if (filter.type !== undefined) query = query.where('type', '=', filter.type);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.aeTitle !== undefined) {
      const ae = filter.aeTitle;
      query = query.where((eb) => eb.or([eb('calling_ae', '=', ae), eb('called_ae', '=', ae)]));
    }
    if (filter.since !== undefined) query = query.where('occurred_at', '>=', filter.since);
    if (filter.until !== undefined) query = query.where('occurred_at', '<', filter.until);
    return query;
  }
}
