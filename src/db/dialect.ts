/**
 * Opens the database: SQLite (better-sqlite3, WAL) in the data directory by default, or
 * PostgreSQL for a `postgres://` URL, behind one Kysely instance; runs the migrations.
 *
 * Layer: db.
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresAdapter, SqliteDialect, sql } from 'kysely';
import { DicomServerError } from '../errors.js';
import { migrationProvider } from './migrations/index.js';
import type { Database } from './schema.js';
import { ScopedPostgresDialect } from './scoped-introspector.js';
import {
  kyselyRunner,
  type PrepareStatement,
  sqliteRunner,
  type TransactionRunner,
} from './transactions.js';
import { WalSync } from './wal-sync.js';

/** An open database. */
export interface OpenDatabase {
  readonly db: Kysely<Database>;
  readonly kind: 'sqlite' | 'postgres';
  /** Runs transactions written as generators (see transactions.ts). */
  readonly runner: TransactionRunner;
  /** Where it is, for logs (never a password). */
  readonly location: string;
  /**
   * Matches SQLite's commit syncing to the files' durability (see openSqlite and
   * runner.durable); PostgreSQL: no-op.
   */
  setDurability(durability: 'fsync' | 'os'): void;
  close(): Promise<void>;
}

/** Options of `openDatabase`. */
export interface OpenDatabaseOptions {
  /**
   * A `postgres://` URL, a SQLite file path, or undefined (or empty: an environment variable
   * set to nothing) for `<dataDir>/dicom-server.sqlite`.
   */
  readonly url?: string;
  readonly dataDir: string;
  /** PostgreSQL schema to use (created if missing); tests use one per file. */
  readonly schema?: string;
  /** `os` relaxes SQLite's commit syncing to match files left to the operating system. */
  readonly durability?: 'fsync' | 'os';
}

/** The SQLite file used when no URL is given. */
export const SQLITE_FILE_NAME = 'dicom-server.sqlite';

function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(ql)?:\/\//.test(url);
}

/** Opens (and migrates) the database. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<OpenDatabase> {
  // An empty path would give better-sqlite3 a temporary database, gone at the stop, while the
  // files it indexed stay: empty means the default file.
  if (options.url?.trim() === '') {
    const { url: _empty, ...rest } = options;
    return openDatabase(rest);
  }
  const opened = isPostgresUrl(options.url)
    ? await openPostgres(options.url, options.schema)
    : openSqlite(options);
  try {
    const applied = await migrate(opened.db);
    // Migrations can leave a write-ahead log of several hundred KB behind: folded into the
    // database file at once, not carried into the first writes (nor counted against a file
    // size limit with them).
    if (applied.length > 0 && opened.kind === 'sqlite') {
      await sql`pragma wal_checkpoint(TRUNCATE)`.execute(opened.db);
    }
  } catch (error) {
    await opened.close();
    throw error;
  }
  return opened;
}

const MAX_CACHED_STATEMENTS = 500;

/**
 * Statements prepared once per SQL text: Kysely asks for a new statement on every query, and
 * preparing cost more than running on the receive path.
 */
function statementCache(database: SqliteDatabase.Database): PrepareStatement {
  const statements = new Map<string, SqliteDatabase.Statement>();
  return (sql: string) => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      // Queries with lists of varying length make new texts: keep the cache bounded.
      if (statements.size >= MAX_CACHED_STATEMENTS) statements.clear();
      statement = database.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
}

/** better-sqlite3 as Kysely sees it: the same connection, with the statement cache. */
function withStatementCache(
  database: SqliteDatabase.Database,
  prepare: PrepareStatement,
): SqliteDatabase.Database {
  return new Proxy(database, {
    get(target, property) {
      if (property === 'prepare') return prepare;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function openSqlite(options: OpenDatabaseOptions): OpenDatabase {
  const file =
    options.url?.replace(/^sqlite:(\/\/)?/, '') ?? join(options.dataDir, SQLITE_FILE_NAME);
  if (options.url === undefined) mkdirSync(options.dataDir, { recursive: true });
  const database = new SqliteDatabase(file);
  database.pragma('journal_mode = WAL');
  // NORMAL: a commit writes its WAL frames without an fsync. With durability `fsync` the log
  // is fsynced on the thread pool instead (runner.durable(), and once a second), which makes
  // the commits before it as durable as FULL would, without holding the event loop for the
  // fsync (see wal-sync.ts); so an acknowledged instance's index row survives power loss, as
  // its file does. With `os` the files are left to the operating system, and so are the
  // commits (the WAL is synced at checkpoints).
  database.pragma('synchronous = NORMAL');
  const walSync = new WalSync(file);
  let isDurable = false;
  const setDurability = (durability: 'fsync' | 'os') => {
    isDurable = durability === 'fsync';
    walSync.setBackground(isDurable);
  };
  setDurability(options.durability ?? 'fsync');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  const prepare = statementCache(database);
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: withStatementCache(database, prepare) }),
  });
  return {
    db,
    kind: 'sqlite',
    runner: sqliteRunner(database, prepare, () => (isDurable ? walSync.sync() : Promise.resolve())),
    location: file,
    setDurability,
    close: async () => {
      await walSync.close();
      await db.destroy();
    },
  };
}

async function openPostgres(url: string, schema: string | undefined): Promise<OpenDatabase> {
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) {
    throw new DicomServerError(
      'ERR_INVALID_ARGUMENT',
      'PostgreSQL schema name must be lower-case letters, digits, _',
      {
        schema,
      },
    );
  }
  // Loaded only for PostgreSQL: the driver costs some 15 MB of memory a SQLite server never needs.
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    ...(schema !== undefined && { options: `-c search_path=${schema}` }),
  });
  if (schema !== undefined) await pool.query(`create schema if not exists ${schema}`);
  const db = new Kysely<Database>({ dialect: new ScopedPostgresDialect({ pool }) });
  const parsed = new URL(url);
  const location = `postgres://${parsed.host}${parsed.pathname}${schema === undefined ? '' : ` (schema ${schema})`}`;
  return {
    db,
    kind: 'postgres',
    runner: kyselyRunner(db),
    location,
    setDurability: () => undefined,
    close: () => db.destroy(),
  };
}

/** Runs every migration not yet applied; throws with the failing migration's error. */
export async function migrate(db: Kysely<Database>): Promise<string[]> {
  // Unless told the schema, Kysely's migrator takes migration tables in any schema for ours: on
  // a PostgreSQL database where another schema holds them, it would never create them here.
  const migrationTableSchema =
    db.getExecutor().adapter instanceof PostgresAdapter ? await currentSchema(db) : undefined;
  const migrator = new Migrator({
    db,
    provider: migrationProvider,
    ...(migrationTableSchema !== undefined && { migrationTableSchema }),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** The schema unqualified names are created in (the first of the search path). */
async function currentSchema(db: Kysely<Database>): Promise<string> {
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(
    db,
  );
  return rows[0]?.schema ?? 'public';
}
