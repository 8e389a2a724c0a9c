/**
 * Forwarding (routing) of received instances to other AEs (see server/routing/):
 * - routing_rules: the rules an operator edits, each with its conditions on the instance's
 *   attributes (JSON, attribute to pattern) and its destination AE titles (JSON list);
 * - forward_jobs: the durable queue, one row per instance and destination, with its state
 *   (pending, in_progress, done, failed (retried at next_attempt_at), dead), attempts and last
 *   error. The rule is named, not referenced: a job outlives a rule deleted after it matched;
 * - forward_destinations: per destination AE title, its last success and last error (kept when
 *   the jobs that set them are pruned).
 * Its indexes serve the forwarder (due jobs by state and time, per destination), the console's
 * lists (by state, by destination) and the summaries.
 *
 * Layer: db.
 */

import { type Kysely, PostgresAdapter } from 'kysely';
import { tableWithId } from './tables.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const isPostgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const create = async (trx: Kysely<unknown>) => {
    await tableWithId(trx, 'routing_rules')
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('is_enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('conditions_json', 'text', (c) => c.notNull())
      .addColumn('destinations_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await tableWithId(trx, 'forward_jobs')
      .addColumn('rule_fk', 'integer')
      .addColumn('rule_name', 'text', (c) => c.notNull())
      .addColumn('destination', 'text', (c) => c.notNull())
      .addColumn('sop_instance_uid', 'text', (c) => c.notNull())
      .addColumn('sop_class_uid', 'text', (c) => c.notNull())
      .addColumn('transfer_syntax_uid', 'text', (c) => c.notNull())
      .addColumn('file_path', 'text', (c) => c.notNull())
      .addColumn('file_size', 'bigint', (c) => c.notNull())
      .addColumn('patient_id', 'text', (c) => c.notNull())
      .addColumn('study_instance_uid', 'text', (c) => c.notNull())
      .addColumn('series_instance_uid', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'text')
      .addColumn('last_error', 'text')
      .addColumn('claimed_by', 'text')
      .addColumn('claimed_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    for (const [name, columns] of [
      ['forward_jobs_due', ['state', 'next_attempt_at']],
      ['forward_jobs_destination', ['destination', 'state', 'next_attempt_at']],
      ['forward_jobs_destination_id', ['destination', 'id']],
      ['forward_jobs_state_id', ['state', 'id']],
    ] as const) {
      await trx.schema
        .createIndex(name)
        .on('forward_jobs')
        .columns([...columns])
        .execute();
    }

    await trx.schema
      .createTable('forward_destinations')
      .addColumn('ae_title', 'text', (c) => c.primaryKey())
      .addColumn('last_success_at', 'text')
      .addColumn('last_error', 'text')
      .addColumn('last_error_at', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
  };
  // As in 0005: PostgreSQL runs migrations in a transaction already; SQLite's gets one here.
  if (isPostgres) await create(db);
  else await db.transaction().execute(create);
}
