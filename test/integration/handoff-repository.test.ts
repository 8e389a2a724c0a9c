/**
 * The hand-off tables on SQLite and PostgreSQL: a series starts and reopens receiving; a
 * completion writes its event (series and files from the index, absolute paths, the type and
 * idempotency key of its number) and its jobs in one go, and only once; deliveries are claimed
 * when due, a completion's webhooks and command (and queue items) only after its copy, with
 * the copy's folder; attempts are counted, failures wait for their next attempt time, dead
 * jobs fail the series and a retry brings them back; queue items are claimed once,
 * acknowledged or failed by their claimer only; concurrent claims never share a job; claims
 * of a gone process are released; lists filter and page. And the series' state as it follows
 * from its jobs.
 *
 * Layer: integration test (db).
 */

import { beforeEach, describe, expect, it } from 'vitest';
import {
  type HandoffJobWithEvent,
  HandoffRepository,
  seriesStateOf,
} from '../../src/db/repositories/handoff-repository.js';
import {
  IndexRepository,
  type InstanceRecord,
} from '../../src/db/repositories/index-repository.js';
import { ProcessingQueueRepository } from '../../src/db/repositories/processing-queue-repository.js';
import {
  type PlannedJob,
  SeriesStateRepository,
} from '../../src/db/repositories/series-state-repository.js';
import { describeOnEachBackend } from '../helpers/backends.js';

const ROOT = '1.2.826.0.1.3680043.9.7777.61';
const MR = '1.2.840.10008.5.1.4.1.1.4';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const SERIES = `${ROOT}.1.1`;
const STORAGE = '/data/storage';

function record(n: number, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    patientId: 'PID-61',
    issuerOfPatientId: '',
    patientName: 'Doe^Jane',
    patientBirthDate: null,
    patientSex: null,
    studyInstanceUid: `${ROOT}.1`,
    studyDate: '20260102',
    studyTime: null,
    accessionNumber: 'ACC61',
    studyId: null,
    studyDescription: 'Brain',
    referringPhysicianName: null,
    patientAge: null,
    seriesInstanceUid: SERIES,
    modality: 'MR',
    seriesNumber: 3,
    seriesDescription: 'T1 axial',
    bodyPartExamined: null,
    seriesDate: null,
    seriesTime: null,
    protocolName: null,
    sopInstanceUid: `${SERIES}.${n}`,
    sopClassUid: MR,
    instanceNumber: n,
    transferSyntaxUid: EXPLICIT_LE,
    filePath: `p/s/${n}.dcm`,
    fileSize: 1_000 + n,
    callingAe: 'STORESCU',
    receivedAt: new Date(Date.UTC(2026, 0, 2, 19, 30, n)).toISOString(),
    ...overrides,
  };
}

const at = (second: number) => new Date(Date.UTC(2026, 0, 2, 20, 0, second)).toISOString();

const ALL_JOBS: PlannedJob[] = [
  { kind: 'queue', target: '' },
  { kind: 'copy', target: '/handler' },
  { kind: 'webhook', target: 'http://a.example/hook' },
  { kind: 'webhook', target: 'http://b.example/hook' },
  { kind: 'command', target: '/opt/run' },
];

describe('a series state follows from its jobs', () => {
  const job = (kind: string, state: string) => ({ kind, state });

  it('is complete without jobs, or while a delivery is not done', () => {
    expect(seriesStateOf([])).toBe('complete');
    expect(seriesStateOf([job('copy', 'done'), job('webhook', 'failed')])).toBe('complete');
    expect(seriesStateOf([job('queue', 'pending'), job('command', 'in_progress')])).toBe(
      'complete',
    );
  });

  it('is handed off when every delivery is done, acknowledged when its queue item is', () => {
    expect(seriesStateOf([job('webhook', 'done')])).toBe('handed_off');
    expect(seriesStateOf([job('queue', 'processing'), job('copy', 'done')])).toBe('handed_off');
    expect(seriesStateOf([job('queue', 'done'), job('copy', 'done')])).toBe('acknowledged');
  });

  it('is failed when a delivery is dead or the queue item failed', () => {
    expect(seriesStateOf([job('webhook', 'dead'), job('copy', 'done')])).toBe('failed');
    expect(seriesStateOf([job('queue', 'failed')])).toBe('failed');
  });
});

describeOnEachBackend('the hand-off tables', 'handoff', (on) => {
  let index: IndexRepository;
  let states: SeriesStateRepository;
  let jobs: HandoffRepository;
  let queue: ProcessingQueueRepository;

  beforeEach(async () => {
    index = new IndexRepository(on.database);
    states = new SeriesStateRepository(on.database);
    jobs = new HandoffRepository(on.database);
    queue = new ProcessingQueueRepository(on.database);
  });

  /** A series received (three instances) and completed with `planned` at second 10. */
  async function completed(planned: PlannedJob[] = ALL_JOBS) {
    await states.startReceiving({
      seriesInstanceUid: SERIES,
      studyInstanceUid: `${ROOT}.1`,
      patientId: 'PID-61',
      receivedAt: at(0),
    });
    await index.addInstances([record(2), record(1), record(3)]);
    const completion = await states.completeSeries(SERIES, {
      storageRoot: STORAGE,
      jobs: planned,
      now: at(10),
    });
    if (completion === undefined) throw new Error('not completed');
    return completion;
  }

  const ids = (list: readonly { id: number }[]) => list.map((job) => job.id);
  const kinds = (list: readonly HandoffJobWithEvent[]) => list.map((job) => job.kind).sort();

  it('starts a series receiving once, and lists it with its newest instance time', async () => {
    const first = {
      seriesInstanceUid: SERIES,
      studyInstanceUid: `${ROOT}.1`,
      patientId: 'PID-61',
      receivedAt: at(0),
    };
    expect(await states.startReceiving(first)).toBe(0);
    expect(await states.startReceiving({ ...first, receivedAt: at(5) })).toBe(0);
    expect(await states.get(SERIES)).toMatchObject({
      state: 'receiving',
      completion: 0,
      firstReceivedAt: at(0),
      lastReceivedAt: at(5),
      completedAt: null,
    });
    expect(await states.receivingSeries()).toEqual([
      { seriesInstanceUid: SERIES, lastReceivedAt: at(5), completion: 0 },
    ]);
    await index.addInstances([record(1, { receivedAt: at(7) })]);
    expect(await states.receivingSeries()).toEqual([
      { seriesInstanceUid: SERIES, lastReceivedAt: at(7), completion: 0 },
    ]);
  });

  it('completes with the event of the series as indexed and every planned job, once', async () => {
    const completion = await completed();
    expect(completion.event).toEqual({
      type: 'series.completed',
      idempotencyKey: `${SERIES}:1`,
      occurredAt: at(10),
      series: {
        patientId: 'PID-61',
        patientName: 'Doe^Jane',
        studyInstanceUid: `${ROOT}.1`,
        studyDate: '20260102',
        studyDescription: 'Brain',
        accessionNumber: 'ACC61',
        seriesInstanceUid: SERIES,
        seriesNumber: 3,
        seriesDescription: 'T1 axial',
        modality: 'MR',
        files: [1, 2, 3].map((n) => ({
          sopInstanceUid: `${SERIES}.${n}`,
          sopClassUid: MR,
          transferSyntaxUid: EXPLICIT_LE,
          path: `${STORAGE}/p/s/${n}.dcm`,
          sizeBytes: 1_000 + n,
        })),
      },
    });
    expect(completion.jobs).toBe(5);
    expect(completion.series).toMatchObject({ state: 'complete', completion: 1 });
    expect(await states.get(SERIES)).toMatchObject({
      state: 'complete',
      completion: 1,
      completedAt: at(10),
      lastReceivedAt: new Date(Date.UTC(2026, 0, 2, 19, 30, 3)).toISOString(),
    });
    const listed = await jobs.page({ seriesInstanceUid: SERIES }, 10);
    expect(listed.rows.map((job) => [job.kind, job.state, job.target]).reverse()).toEqual(
      ALL_JOBS.map((job) => [job.kind, 'pending', job.target]),
    );
    expect(listed.rows.every((job) => job.idempotencyKey === `${SERIES}:1`)).toBe(true);
    // Completed already: a second completion finds nothing receiving.
    expect(
      await states.completeSeries(SERIES, { storageRoot: STORAGE, jobs: ALL_JOBS, now: at(11) }),
    ).toBeUndefined();
    expect(await jobs.count({})).toBe(5);
  });

  it('stays complete without jobs, and drops a series with nothing indexed', async () => {
    const completion = await completed([]);
    expect(completion.jobs).toBe(0);
    expect((await states.get(SERIES))?.state).toBe('complete');
    const empty = `${ROOT}.9.9`;
    await states.startReceiving({
      seriesInstanceUid: empty,
      studyInstanceUid: `${ROOT}.9`,
      patientId: '',
      receivedAt: at(0),
    });
    expect(
      await states.completeSeries(empty, { storageRoot: STORAGE, jobs: ALL_JOBS, now: at(1) }),
    ).toBeUndefined();
    expect(await states.get(empty)).toBeUndefined();
    expect(await jobs.count({})).toBe(0);
  });

  it('reopens a completed series; its next completion is an update with the next key', async () => {
    await completed([{ kind: 'queue', target: '' }]);
    const reopened = await states.startReceiving({
      seriesInstanceUid: SERIES,
      studyInstanceUid: `${ROOT}.1`,
      patientId: 'PID-61',
      receivedAt: at(20),
    });
    expect(reopened).toBe(1);
    expect(await states.get(SERIES)).toMatchObject({
      state: 'receiving',
      completion: 1,
      firstReceivedAt: at(20),
    });
    await index.addInstances([record(4)]);
    const again = await states.completeSeries(SERIES, {
      storageRoot: STORAGE,
      jobs: [{ kind: 'queue', target: '' }],
      now: at(30),
    });
    expect(again?.event).toMatchObject({
      type: 'series.updated',
      idempotencyKey: `${SERIES}:2`,
    });
    expect(again?.event.series.files).toHaveLength(4);
    expect((await states.get(SERIES))?.completion).toBe(2);
  });

  it('runs a completion copy first, then its webhooks and command with the folder', async () => {
    await completed();
    expect(await jobs.nextDueAt()).toBe(at(10));
    expect(await jobs.claimDueDeliveries('w', at(9), 10)).toEqual([]);
    const [copy, ...none] = await jobs.claimDueDeliveries('w', at(10), 10);
    expect(none).toEqual([]);
    expect(copy).toMatchObject({ kind: 'copy', state: 'in_progress', attempts: 1, claimedBy: 'w' });
    expect(copy?.event.folder).toBeUndefined();
    // The others wait for the copy: nothing is due meanwhile.
    expect(await jobs.nextDueAt()).toBeUndefined();
    expect(await queue.claimQueueItems('tool', 10, at(11))).toEqual([]);
    const update = await jobs.finishDelivery(
      copy!.id,
      { isDone: true, result: '/handler/s' },
      at(12),
    );
    expect(update.job).toMatchObject({ state: 'done', result: '/handler/s' });
    const rest = await jobs.claimDueDeliveries('w', at(12), 10);
    expect(kinds(rest)).toEqual(['command', 'webhook', 'webhook']);
    expect(rest.every((job) => job.event.folder === '/handler/s')).toBe(true);
    expect(rest.every((job) => job.event.idempotencyKey === `${SERIES}:1`)).toBe(true);
    for (const job of rest) await jobs.finishDelivery(job.id, { isDone: true }, at(13));
    expect((await states.get(SERIES))?.state).toBe('handed_off');
  });

  it('retries a failed delivery at its time, counts attempts, and fails the series when dead', async () => {
    await completed([{ kind: 'webhook', target: 'http://a.example/hook' }]);
    const [first] = await jobs.claimDueDeliveries('w', at(10), 1);
    const failed = await jobs.finishDelivery(
      first!.id,
      { isDone: false, error: 'HTTP 503', nextAttemptAt: at(15) },
      at(11),
    );
    expect(failed.job).toMatchObject({ state: 'failed', lastError: 'HTTP 503', attempts: 1 });
    expect(failed.series).toBeUndefined();
    expect(await jobs.claimDueDeliveries('w', at(14), 1)).toEqual([]);
    expect(await jobs.nextDueAt()).toBe(at(15));
    const [second] = await jobs.claimDueDeliveries('w', at(15), 1);
    expect(second).toMatchObject({ id: first!.id, attempts: 2 });
    const dead = await jobs.finishDelivery(
      second!.id,
      { isDone: false, error: 'HTTP 500', nextAttemptAt: undefined },
      at(16),
    );
    expect(dead.job.state).toBe('dead');
    expect(dead.series).toEqual({
      seriesInstanceUid: SERIES,
      completion: 1,
      state: 'failed',
      lastError: 'HTTP 500',
    });
    expect(await jobs.nextDueAt()).toBeUndefined();
    const retried = await queue.retry(first!.id, at(20));
    expect(retried).toMatchObject({
      isChanged: true,
      job: { state: 'pending', attempts: 0, nextAttemptAt: at(20), lastError: null },
      series: { state: 'complete', lastError: null },
    });
    expect(await jobs.nextDueAt()).toBe(at(20));
    expect(await queue.retry(first!.id, at(21))).toMatchObject({
      isChanged: false,
      reason: 'conflict',
    });
    expect(await queue.retry(999_999, at(21))).toMatchObject({
      isChanged: false,
      reason: 'not-found',
    });
  });

  it('hands a queue item to one claimer, which alone acknowledges or fails it', async () => {
    await completed([{ kind: 'queue', target: '' }]);
    expect((await states.get(SERIES))?.state).toBe('handed_off');
    const [item, ...none] = await queue.claimQueueItems('tool-a', 5, at(11));
    expect(none).toEqual([]);
    expect(item).toMatchObject({ kind: 'queue', state: 'processing', claimedBy: 'tool-a' });
    expect(item?.event.series.files).toHaveLength(3);
    expect(await queue.claimQueueItems('tool-b', 5, at(12))).toEqual([]);
    expect(await queue.acknowledge(item!.id, 'tool-b', at(13))).toMatchObject({
      isChanged: false,
      reason: 'conflict',
    });
    const failed = await queue.failQueueItem(item!.id, 'segmentation crashed', 'tool-a', at(14));
    expect(failed).toMatchObject({
      isChanged: true,
      job: { state: 'failed', lastError: 'segmentation crashed' },
      series: { state: 'failed', lastError: 'segmentation crashed' },
    });
    expect(await queue.acknowledge(item!.id, undefined, at(15))).toMatchObject({
      isChanged: false,
      reason: 'conflict',
    });
    expect((await queue.retry(item!.id, at(16))).isChanged).toBe(true);
    const [again] = await queue.claimQueueItems('tool-b', 5, at(17));
    expect(again).toMatchObject({ id: item!.id, attempts: 1 });
    expect(await queue.acknowledge(item!.id, undefined, at(18))).toMatchObject({
      isChanged: true,
      job: { state: 'done', lastError: null },
      series: { state: 'acknowledged' },
    });
  });

  it('refuses to acknowledge a delivery or an unclaimed item', async () => {
    await completed([
      { kind: 'queue', target: '' },
      { kind: 'command', target: '/opt/run' },
    ]);
    const listed = await jobs.page({}, 10);
    const item = listed.rows.find((job) => job.kind === 'queue')!;
    const command = listed.rows.find((job) => job.kind === 'command')!;
    expect(await queue.acknowledge(item.id, undefined, at(11))).toMatchObject({
      isChanged: false,
      reason: 'conflict',
    });
    expect(await queue.acknowledge(command.id, undefined, at(11))).toMatchObject({
      isChanged: false,
      reason: 'conflict',
    });
    expect(await queue.acknowledge(424_242, undefined, at(11))).toMatchObject({
      isChanged: false,
      reason: 'not-found',
    });
  });

  it('never gives one delivery to two concurrent claimers', async () => {
    const planned: PlannedJob[] = Array.from({ length: 12 }, (_, i) => ({
      kind: 'webhook',
      target: `http://h${i}.example/`,
    }));
    await completed(planned);
    const other = await on.openAnother();
    try {
      const claims = await Promise.all([
        jobs.claimDueDeliveries('a', at(10), 12),
        new HandoffRepository(other).claimDueDeliveries('b', at(10), 12),
        jobs.claimDueDeliveries('c', at(10), 5),
      ]);
      const all = claims.flatMap(ids);
      expect(all).toHaveLength(12);
      expect(new Set(all).size).toBe(12);
    } finally {
      await other.close();
    }
  });

  it('releases the deliveries of a gone claimer back to pending', async () => {
    await completed([
      { kind: 'webhook', target: 'http://a.example/' },
      { kind: 'command', target: '/opt/run' },
    ]);
    const claimed = await jobs.claimDueDeliveries('host:1', at(10), 2);
    expect(claimed).toHaveLength(2);
    expect(await jobs.deliveryClaimers()).toEqual([{ claimedBy: 'host:1', oldestClaimAt: at(10) }]);
    expect(await jobs.releaseDeliveries([], at(11))).toBe(0);
    expect(await jobs.releaseDeliveries(['host:1'], at(11))).toBe(2);
    expect(await jobs.deliveryClaimers()).toEqual([]);
    const again = await jobs.claimDueDeliveries('host:2', at(11), 2);
    expect(again.map((job) => job.attempts)).toEqual([2, 2]);
  });

  it('lists jobs and series filtered, newest first, a page at a time', async () => {
    await completed();
    expect(await jobs.count({ kind: 'webhook' })).toBe(2);
    expect(await jobs.count({ state: 'pending' })).toBe(5);
    expect(await jobs.count({ seriesInstanceUid: `${ROOT}.0` })).toBe(0);
    const first = await jobs.page({}, 2);
    expect(first.rows.map((job) => job.kind)).toEqual(['command', 'webhook']);
    expect(first.rows[0]).toMatchObject({ eventType: 'series.completed' });
    const second = await jobs.page({}, 2, first.nextBeforeId);
    expect(second.rows.map((job) => job.kind)).toEqual(['webhook', 'copy']);
    const last = await jobs.page({}, 2, second.nextBeforeId);
    expect(last.rows.map((job) => job.kind)).toEqual(['queue']);
    expect(last.nextBeforeId).toBeUndefined();
    const got = await jobs.get(first.rows[0]!.id);
    expect(got?.event.series.seriesInstanceUid).toBe(SERIES);
    expect(await jobs.get(424_242)).toBeUndefined();

    const other = `${ROOT}.2.1`;
    await states.startReceiving({
      seriesInstanceUid: other,
      studyInstanceUid: `${ROOT}.2`,
      patientId: 'PID-62',
      receivedAt: at(30),
    });
    expect(await states.count({})).toBe(2);
    expect(await states.count({ state: 'receiving' })).toBe(1);
    expect(await states.count({ studyInstanceUid: `${ROOT}.1` })).toBe(1);
    const page = await states.page({}, 1);
    expect(page.rows.map((row) => row.seriesInstanceUid)).toEqual([other]);
    const next = await states.page({}, 1, page.nextBeforeId);
    expect(next.rows.map((row) => row.seriesInstanceUid)).toEqual([SERIES]);
    expect(next.nextBeforeId).toBeUndefined();
  });
});
