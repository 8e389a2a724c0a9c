/**
 * Where the PostgreSQL tests connect: the machines' server (trust auth, database `test`), or
 * what scripts/test.sh set up and exported; and the fresh schemas tests keep their tables in.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type OpenDatabase, openDatabase } from '../../src/db/dialect.js';

export const POSTGRES_URL =
  process.env.DICOM_SERVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let schemaCounter = 0;

/** A schema name no other test (or test process) uses: `t_<prefix>_<pid>_<time>_<n>`. */
export function uniqueSchema(prefix: string): string {
  return `t_${prefix}_${process.pid}_${Date.now()}_${schemaCounter++}`;
}

/** Removes a test's schema, so that runs leave nothing behind in the database. */
export async function dropSchema(schema: string, url = POSTGRES_URL): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}

/** Where one suite keeps its database: opened (again, the same one), then removed. */
export interface Backend {
  readonly name: string;
  open(): Promise<OpenDatabase>;
  dispose(): Promise<void>;
}

/** SQLite in a temporary data directory. */
export function sqliteBackend(prefix: string): Backend {
  let dataDir: string | undefined;
  return {
    name: 'SQLite',
    async open() {
      dataDir ??= await mkdtemp(join(tmpdir(), `${prefix}-`));
      return openDatabase({ dataDir });
    },
    async dispose() {
      if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
      dataDir = undefined;
    },
  };
}

/** PostgreSQL in a fresh schema. */
export function postgresBackend(prefix: string): Backend {
  let schema: string | undefined;
  return {
    name: 'PostgreSQL',
    open() {
      schema ??= uniqueSchema(prefix);
      return openDatabase({ url: POSTGRES_URL, schema, dataDir: tmpdir() });
    },
    async dispose() {
      if (schema !== undefined) await dropSchema(schema);
      schema = undefined;
    },
  };
}
