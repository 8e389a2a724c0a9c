/**
 * Transactions written once, run two ways. A transaction is a generator that yields the
 * queries it needs (compiled by Kysely, so the SQL still has one source) and gets their rows
 * back; a runner drives it:
 * - SQLite: synchronously, on better-sqlite3's connection, between one BEGIN and COMMIT. No other
 *   query of the process can interleave, and none of Kysely's per-query promises, connection
 *   mutex and transaction objects are paid: measured here, they were four times what SQLite
 *   itself took for a received instance (some 0.6 ms against 0.14 ms).
 * - PostgreSQL: on one pooled connection in a Kysely transaction, each query awaited.
 *
 * On SQLite every transaction that writes must go through `runTransaction`: a Kysely
 * transaction left open across an `await` would take in whatever this runner does meanwhile.
 *
 * Layer: db.
 */

import type BetterSqlite3 from 'better-sqlite3';
import type { CompiledQuery, Kysely } from 'kysely';
import type { Database } from './schema.js';

/** A transaction's body: yields compiled queries, receives their rows, returns its result. */
export type TransactionBody<T> = Generator<CompiledQuery<unknown>, T, unknown[]>;

/** Runs a query inside a transaction body and returns its rows: `yield* rowsOf(query)`. */
export function* rowsOf<Row>(
  query: CompiledQuery<Row>,
): Generator<CompiledQuery<unknown>, Row[], unknown[]> {
  return (yield query as CompiledQuery<unknown>) as Row[];
}

/** Runs transaction bodies and single queries on one database. */
export interface TransactionRunner {
  /** Runs `body` in one transaction: committed if it returns, rolled back if it throws. */
  runTransaction<T>(body: () => TransactionBody<T>): Promise<T>;
  /** Runs one query on its own (autocommit). */
  runQuery<Row>(query: CompiledQuery<Row>): Promise<Row[]>;
  /**
   * Resolves once every transaction committed before the call is on disk: at once where a
   * commit is durable when it returns (PostgreSQL) or need not be (durability `os`); with
   * SQLite in `fsync` durability, after the write-ahead log's next fsync (see wal-sync.ts).
   */
  durable(): Promise<void>;
}

/** A cache of prepared statements by SQL text, bounded. */
export type PrepareStatement = (sql: string) => BetterSqlite3.Statement;

function runStatement(prepare: PrepareStatement, query: CompiledQuery<unknown>): unknown[] {
  const statement = prepare(query.sql);
  const parameters = query.parameters as unknown[];
  if (statement.reader) return statement.all(parameters);
  statement.run(parameters);
  return [];
}

/** The SQLite runner: each transaction runs to its end before anything else can. */
export function sqliteRunner(
  database: BetterSqlite3.Database,
  prepare: PrepareStatement,
  durable: () => Promise<void>,
): TransactionRunner {
  const begin = database.prepare('BEGIN IMMEDIATE');
  const commit = database.prepare('COMMIT');
  const rollback = database.prepare('ROLLBACK');
  return {
    async runTransaction<T>(body: () => TransactionBody<T>): Promise<T> {
      if (database.inTransaction) {
        // A Kysely transaction open across an await: joining it could lose our writes with its
        // rollback. A bug of ours, reported as one.
        throw new Error('SQLite transaction already open: use runTransaction for every write');
      }
      begin.run();
      try {
        const steps = body();
        let step = steps.next();
        while (step.done !== true) step = steps.next(runStatement(prepare, step.value));
        commit.run();
        return step.value;
      } catch (error) {
        if (database.inTransaction) rollback.run();
        throw error;
      }
    },
    async runQuery<Row>(query: CompiledQuery<Row>): Promise<Row[]> {
      return runStatement(prepare, query) as Row[];
    },
    durable,
  };
}

/** The PostgreSQL (or any Kysely) runner. */
export function kyselyRunner(db: Kysely<Database>): TransactionRunner {
  return {
    runTransaction<T>(body: () => TransactionBody<T>): Promise<T> {
      return db.transaction().execute(async (trx) => {
        const steps = body();
        let step = steps.next();
        while (step.done !== true) {
          step = steps.next((await trx.executeQuery(step.value)).rows);
        }
        return step.value;
      });
    },
    async runQuery<Row>(query: CompiledQuery<Row>): Promise<Row[]> {
      return (await db.executeQuery(query)).rows;
    },
    // A PostgreSQL commit returns once it is durable.
    durable: () => Promise.resolve(),
  };
}

/** The first row of a query inside a transaction body; throws when there is none. */
export function* firstRowOf<Row>(
  query: CompiledQuery<Row>,
): Generator<CompiledQuery<unknown>, Row, unknown[]> {
  const [row] = yield* rowsOf(query);
  if (row === undefined) throw new Error('query returned no row');
  return row;
}
