/**
 * Administration: the stored settings (one row), the allowed peers with their permissions, the
 * transaction log, and the service's status (one row). Written once for SQLite and PostgreSQL.
 *
 * Layer: db.
 */

import type { Kysely } from 'kysely';
import { tableWithId } from './tables.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const id = (table: string) => tableWithId(db, table);

  // The settings as one JSON document: a new setting needs no migration, and a row read back
  // is checked and completed by the settings schema. `version` moves with every change to the
  // settings or the allowed peers, which is how a running server sees what `config set` did.
  await db.schema
    .createTable('settings')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('values_json', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await id('allowed_ae_titles')
    .addColumn('ae_title', 'text', (c) => c.notNull().unique())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('expected_ip', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('is_active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('host', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('port', 'integer')
    .addColumn('may_store', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('may_query', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('may_retrieve', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('is_move_destination', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await id('transactions')
    .addColumn('occurred_at', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('association_id', 'text', (c) => c.notNull())
    .addColumn('calling_ae', 'text', (c) => c.notNull())
    .addColumn('called_ae', 'text', (c) => c.notNull())
    .addColumn('remote_address', 'text', (c) => c.notNull())
    .addColumn('remote_port', 'integer', (c) => c.notNull())
    .addColumn('sop_class_uid', 'text')
    .addColumn('sop_instance_uid', 'text')
    .addColumn('patient_id', 'text')
    .addColumn('study_instance_uid', 'text')
    .addColumn('series_instance_uid', 'text')
    .addColumn('file_path', 'text')
    .addColumn('bytes', 'bigint')
    .addColumn('duration_ms', 'double precision')
    .addColumn('transfer_rate_mbps', 'double precision')
    .addColumn('message', 'text')
    .execute();
  for (const [name, columns] of [
    ['transactions_occurred_at', ['occurred_at']],
    ['transactions_type', ['type', 'occurred_at']],
    ['transactions_status', ['status', 'occurred_at']],
    ['transactions_calling_ae', ['calling_ae', 'occurred_at']],
  ] as const) {
    await db.schema
      .createIndex(name)
      .on('transactions')
      .columns([...columns])
      .execute();
  }

  await db.schema
    .createTable('service_status')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('pid', 'integer')
    .addColumn('hostname', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('started_at', 'text')
    .addColumn('stopped_at', 'text')
    .addColumn('active_associations', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('files_received', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('bytes_received', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('errors', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('last_error_at', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
}
