/**
 * Hand-off of completed series to processing (see server/series-completion.ts and
 * server/handoff-worker.ts):
 * - series_states: one row per series received, with where it is in its hand-off (receiving,
 *   complete, handed_off, acknowledged, failed) and how many times it was completed;
 * - handoff_events: one row per completion, the event every action gets (its idempotency key,
 *   type and the series with its file list as JSON), written once however many actions it has;
 * - handoff_jobs: the outbox, one row per action of a completion (queue item, folder copy,
 *   webhook per URL, command), with its state, attempts and next attempt time. A completion,
 *   its event and its jobs are written in one transaction.
 * Its indexes serve the worker (due jobs by state and time), the jobs of one completion, and
 * the console's lists.
 *
 * Layer: db.
 */

import { type Kysely, PostgresAdapter } from 'kysely';
import { tableWithId } from './tables.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const isPostgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const create = async (trx: Kysely<unknown>) => {
    await tableWithId(trx, 'series_states')
      .addColumn('series_instance_uid', 'text', (c) => c.notNull().unique())
      .addColumn('study_instance_uid', 'text', (c) => c.notNull())
      .addColumn('patient_id', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('completion', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('first_received_at', 'text', (c) => c.notNull())
      .addColumn('last_received_at', 'text', (c) => c.notNull())
      .addColumn('completed_at', 'text')
      .addColumn('last_error', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await trx.schema
      .createIndex('series_states_state')
      .on('series_states')
      .columns(['state', 'updated_at'])
      .execute();

    await tableWithId(trx, 'handoff_events')
      .addColumn('series_instance_uid', 'text', (c) => c.notNull())
      .addColumn('completion', 'integer', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('idempotency_key', 'text', (c) => c.notNull().unique())
      .addColumn('occurred_at', 'text', (c) => c.notNull())
      .addColumn('payload_json', 'text', (c) => c.notNull())
      .execute();

    await tableWithId(trx, 'handoff_jobs')
      .addColumn('event_fk', 'integer', (c) =>
        c.notNull().references('handoff_events.id').onDelete('cascade'),
      )
      .addColumn('series_instance_uid', 'text', (c) => c.notNull())
      .addColumn('completion', 'integer', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'text')
      .addColumn('last_error', 'text')
      .addColumn('claimed_by', 'text')
      .addColumn('claimed_at', 'text')
      .addColumn('result', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    for (const [name, columns] of [
      ['handoff_jobs_due', ['state', 'next_attempt_at']],
      ['handoff_jobs_series', ['series_instance_uid', 'completion']],
      ['handoff_jobs_event', ['event_fk']],
      ['handoff_jobs_kind', ['kind', 'state', 'id']],
    ] as const) {
      await trx.schema
        .createIndex(name)
        .on('handoff_jobs')
        .columns([...columns])
        .execute();
    }
  };
  // As in 0005: PostgreSQL runs migrations in a transaction already; SQLite's gets one here.
  if (isPostgres) await create(db);
  else await db.transaction().execute(create);
}
