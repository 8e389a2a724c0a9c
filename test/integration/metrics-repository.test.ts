/**
 * The index as the metrics read it, on SQLite and PostgreSQL: the hand-off jobs waiting by kind
 * with the oldest one's creation time (queue items until claimed, deliveries until done or
 * dead), and the size of the index (SQLite: the file and its write-ahead log; PostgreSQL: the
 * tables of our schema only, not another schema's).
 *
 * Layer: test (integration).
 */

import { stat } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../src/db/dialect.js';
import type { JobKind, JobState } from '../../src/db/repositories/handoff-repository.js';
import { MetricsRepository } from '../../src/db/repositories/metrics-repository.js';
import { describeOnEachBackend } from '../helpers/backends.js';
import {
  type Backend,
  dropSchema,
  POSTGRES_URL,
  postgresBackend,
  uniqueSchema,
} from '../helpers/postgres.js';

const at = (minute: number) => new Date(Date.UTC(2026, 0, 2, 20, minute)).toISOString();

describeOnEachBackend('the metrics', 'metrics', (on) => {
  let repository: MetricsRepository;

  beforeEach(async () => {
    repository = new MetricsRepository(on.database);
  });

  /** One completion's event and its jobs, each of a kind and state, written at `minute`. */
  async function jobs(series: string, list: readonly [JobKind, JobState, number][]) {
    const event = await on.database.db
      .insertInto('handoff_events')
      .values({
        series_instance_uid: series,
        completion: 1,
        type: 'series.completed',
        idempotency_key: `${series}-1`,
        occurred_at: at(0),
        payload_json: '{}',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    for (const [kind, state, minute] of list) {
      await on.database.db
        .insertInto('handoff_jobs')
        .values({
          event_fk: event.id,
          series_instance_uid: series,
          completion: 1,
          kind,
          target: kind === 'webhook' ? 'http://127.0.0.1:9/hook' : '',
          state,
          attempts: 0,
          created_at: at(minute),
          updated_at: at(minute),
        })
        .execute();
    }
  }

  it('has no hand-off job waiting in a new index', async () => {
    expect(await repository.waitingHandoffJobs()).toEqual([]);
  });

  it('counts queue items until claimed and deliveries until done or dead, with the oldest', async () => {
    await jobs('1.2.1', [
      ['queue', 'pending', 5],
      ['copy', 'done', 5],
      ['webhook', 'failed', 6],
      ['command', 'dead', 7],
    ]);
    await jobs('1.2.2', [
      ['queue', 'pending', 9],
      ['queue', 'processing', 3],
      ['queue', 'failed', 1],
      ['copy', 'in_progress', 2],
      ['webhook', 'pending', 8],
      ['command', 'pending', 10],
    ]);
    const waiting = await repository.waitingHandoffJobs();
    expect(waiting.sort((a, b) => a.kind.localeCompare(b.kind))).toEqual([
      { kind: 'command', count: 1, oldestCreatedAt: at(10) },
      { kind: 'queue', count: 2, oldestCreatedAt: at(5) },
      { kind: 'webhook', count: 2, oldestCreatedAt: at(6) },
    ]);
  });

  it('gives the size of the index, which grows with what it holds', async () => {
    const before = await repository.sizeBytes();
    expect(before).toBeGreaterThan(0);
    if (on.database.kind === 'sqlite') {
      const sizeOf = (path: string) =>
        stat(path).then(
          (info) => info.size,
          () => 0,
        );
      const files =
        (await sizeOf(on.database.location)) + (await sizeOf(`${on.database.location}-wal`));
      expect(before).toBe(files);
    }
    await jobs(
      '1.2.3',
      Array.from({ length: 400 }, () => ['queue', 'pending', 1] as [JobKind, JobState, number]),
    );
    expect(await repository.sizeBytes()).toBeGreaterThan(before);
  });
});

describe('the index size on PostgreSQL', () => {
  let backend: Backend;
  let database: OpenDatabase;
  let otherSchema: string;

  beforeEach(async () => {
    backend = postgresBackend('metrics_own');
    database = await backend.open();
    otherSchema = uniqueSchema('metrics_other');
  });

  afterEach(async () => {
    await database.close();
    await backend.dispose();
    await dropSchema(otherSchema);
  });

  it('counts only the tables of our schema, not another application beside it', async () => {
    const repository = new MetricsRepository(database);
    const before = await repository.sizeBytes();
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`create schema ${otherSchema}`);
      await client.query(
        `create table ${otherSchema}.big as select g, repeat('x', 200) as t from generate_series(1, 5000) g`,
      );
    } finally {
      await client.end();
    }
    expect(await repository.sizeBytes()).toBe(before);
  });
});
