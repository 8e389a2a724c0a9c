/**
 * What the migrations share: a table with an integer id the database generates, written so that
 * SQLite (autoincrement) and PostgreSQL (identity) each get their own kind.
 *
 * Layer: db.
 */

import { type CreateTableBuilder, type Kysely, PostgresAdapter } from 'kysely';

/** `create table <name> (id integer primary key generated ...)`, to add columns to. */
export function tableWithId(db: Kysely<unknown>, name: string): CreateTableBuilder<string, 'id'> {
  const isPostgres = db.getExecutor().adapter instanceof PostgresAdapter;
  return db.schema
    .createTable(name)
    .addColumn('id', 'integer', (c) =>
      isPostgres ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
    );
}
