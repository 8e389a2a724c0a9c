/**
 * PostgreSQL introspection limited to our own schema (the first of the search path). Kysely's
 * own looks at every schema of the database, checking each with functions that fail when
 * another client drops a schema meanwhile (invalid_schema_name): a migration run beside other
 * servers' or tests' schemas could fail for that. Only Kysely's migrator introspects here, and
 * it needs only the names of our schema and its tables.
 *
 * Layer: db.
 */

import {
  type DatabaseIntrospector,
  type DatabaseMetadata,
  type DatabaseMetadataOptions,
  type Kysely,
  PostgresDialect,
  type SchemaMetadata,
  sql,
  type TableMetadata,
} from 'kysely';

/** Schema and table names of the current schema only. */
class ScopedIntrospector implements DatabaseIntrospector {
  readonly #db: Kysely<unknown>;

  constructor(db: Kysely<unknown>) {
    this.#db = db;
  }

  async getSchemas(): Promise<SchemaMetadata[]> {
    const { rows } = await sql<{ name: string }>`
      select nspname as name from pg_catalog.pg_namespace
      where nspname = current_schema()`.execute(this.#db);
    return rows;
  }

  async getTables(
    options: DatabaseMetadataOptions = { withInternalKyselyTables: false },
  ): Promise<TableMetadata[]> {
    const { rows } = await sql<{ name: string; schema: string; type: string }>`
      select table_name as name, table_schema as schema, table_type as type
      from information_schema.tables
      where table_schema = current_schema()
      order by table_name`.execute(this.#db);
    return rows
      .filter((row) => options.withInternalKyselyTables || !row.name.startsWith('kysely_'))
      .map((row) => ({
        name: row.name,
        schema: row.schema,
        isView: row.type === 'VIEW',
        columns: [],
      }));
  }

  async getMetadata(options?: DatabaseMetadataOptions): Promise<DatabaseMetadata> {
    return { tables: await this.getTables(options) };
  }
}

/** Kysely's PostgreSQL dialect with introspection scoped to the current schema. */
export class ScopedPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new ScopedIntrospector(db);
  }
}
