/**
 * The storage lifecycle, on SQLite: cleanup removes whole studies, oldest first by their newest
 * instance, down to the mark asked for, never a study with an instance received within the
 * retention period nor one whose hand-off is not done (receiving, or a job of its latest
 * completion pending, under way, being processed or failed), index rows and files together
 * (empty folders too, the patient without studies too); an instance at the limit makes room the
 * same way; the periodic job brings usage down to the low-water mark and audits each study as
 * `system`; the intake rate comes from the index (cached) with the projected days until full;
 * a rescan indexes orphan files, removes the rows of missing ones, and reports duplicates,
 * unreadable and too recent files, moving the store's usage accordingly.
 *
 * Layer: integration test (server, storage, db).
 */

import { copyFile, mkdir, mkdtemp, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type OpenDatabase, openDatabase } from '../../src/db/dialect.js';
import {
  IndexRepository,
  type InstanceRecord,
} from '../../src/db/repositories/index-repository.js';
import {
  type PlannedJob,
  SeriesStateRepository,
} from '../../src/db/repositories/series-state-repository.js';
import { SettingsRepository } from '../../src/db/repositories/settings-repository.js';
import { Status } from '../../src/network/dimse/status.js';
import { FileInstanceStore, type StorageOptions } from '../../src/server/instance-store.js';
import { LiveConfig } from '../../src/server/live-config.js';
import {
  ServiceController,
  type ServiceControllerOptions,
} from '../../src/server/service-controller.js';
import type { CleanupReason } from '../../src/server/storage-cleanup.js';
import { daysUntilFull, intakeRate } from '../../src/server/storage-lifecycle.js';
import { RescanRunningError } from '../../src/server/storage-rescan.js';
import { sendFiles } from '../../src/services/scu/store.js';
import type { Settings } from '../../src/settings/schema.js';
import type { RemovedStudy } from '../../src/storage/cleanup.js';
import { freePort } from '../helpers/net.js';
import { dropSchema, POSTGRES_URL, uniqueSchema } from '../helpers/postgres.js';
import { writeSeries } from '../helpers/series-files.js';
import { type LogLine, startTestServer } from '../helpers/server.js';
import { eventually } from '../helpers/web.js';

const ROOT = '1.2.826.0.1.3680043.9.7777.41';
const DAY_MS = 86_400_000;
const GB = 1024 ** 3;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A study's UID from a short name (its characters' codes: UIDs are digits). */
function studyUid(name: string): string {
  return `${ROOT}.${[...name].map((c) => c.charCodeAt(0)).join('')}`;
}

/** ISO time `days` ago. */
function daysAgo(days: number): string {
  return new Date(Date.now() - days * DAY_MS).toISOString();
}

/** A study seeded into storage and index: its instances' paths and sizes. */
interface SeededStudy {
  readonly studyInstanceUid: string;
  readonly seriesInstanceUids: string[];
  readonly paths: string[];
  readonly sizeBytes: number;
}

/**
 * Writes a study's files under `root` (`<study>/<series>/<n>.dcm`) and indexes them as received
 * `ages` days ago (one instance per age; series by `seriesOf`).
 */
async function seedStudy(
  root: string,
  index: IndexRepository,
  spec: {
    readonly study: string;
    readonly ages: readonly number[];
    readonly patientId?: string;
    /** Which series each instance goes to (default all in one). */
    readonly seriesOf?: (n: number) => number;
  },
): Promise<SeededStudy> {
  const studyInstanceUid = studyUid(spec.study);
  const records: InstanceRecord[] = [];
  const paths: string[] = [];
  const seriesUids = new Set<string>();
  let sizeBytes = 0;
  for (const [n, age] of spec.ages.entries()) {
    const seriesInstanceUid = `${studyInstanceUid}.${(spec.seriesOf ?? (() => 1))(n)}`;
    seriesUids.add(seriesInstanceUid);
    const folder = join(root, studyInstanceUid, seriesInstanceUid);
    const [path] = await writeSeries(folder, {
      studyInstanceUid,
      seriesInstanceUid,
      count: 1,
      first: n + 1,
      ...(spec.patientId !== undefined && { patientId: spec.patientId }),
    });
    const fileSize = (await stat(path!)).size;
    // Written when received, as a stored file is.
    const receivedAt = new Date(daysAgo(age));
    await utimes(path!, receivedAt, receivedAt);
    sizeBytes += fileSize;
    paths.push(path!);
    records.push(
      record(studyInstanceUid, seriesInstanceUid, n + 1, {
        filePath: relative(root, path!),
        fileSize,
        receivedAt: receivedAt.toISOString(),
        patientId: spec.patientId ?? 'PID-7',
      }),
    );
  }
  await index.addInstances(records);
  return { studyInstanceUid, seriesInstanceUids: [...seriesUids], paths, sizeBytes };
}

/** An index record as writeSeries writes the instance (sop UID `<series>.<n>`). */
function record(
  studyInstanceUid: string,
  seriesInstanceUid: string,
  n: number,
  values: Pick<InstanceRecord, 'filePath' | 'fileSize' | 'receivedAt' | 'patientId'>,
): InstanceRecord {
  return {
    issuerOfPatientId: '',
    patientName: 'Doe^Jane',
    patientBirthDate: null,
    patientSex: null,
    studyInstanceUid,
    studyDate: '20260102',
    studyTime: null,
    accessionNumber: null,
    studyId: null,
    studyDescription: null,
    referringPhysicianName: null,
    patientAge: null,
    seriesInstanceUid,
    modality: 'MR',
    seriesNumber: 5,
    seriesDescription: null,
    bodyPartExamined: null,
    seriesDate: null,
    seriesTime: null,
    protocolName: null,
    sopInstanceUid: `${seriesInstanceUid}.${n}`,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.4',
    instanceNumber: n,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    callingAe: 'SEED',
    ...values,
  };
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

async function studiesIn(database: OpenDatabase): Promise<string[]> {
  const rows = await database.db.selectFrom('studies').select('study_instance_uid').execute();
  return rows.map((row) => row.study_instance_uid).sort();
}

/** Where the index is: SQLite in the data directory, or a fresh PostgreSQL schema. */
const BACKENDS = [
  { name: 'SQLite', url: undefined },
  { name: 'PostgreSQL', url: POSTGRES_URL },
] as const;
type BackendUrl = (typeof BACKENDS)[number]['url'];

/** Opens the database of `url` (a fresh schema, dropped after the test) or SQLite in `dataDir`. */
async function openTestDatabase(dataDir: string, url: BackendUrl): Promise<OpenDatabase> {
  if (url === undefined) {
    const database = await openDatabase({ dataDir });
    cleanups.push(() => database.close());
    return database;
  }
  const schema = uniqueSchema('storage');
  cleanups.push(() => dropSchema(schema, url));
  const database = await openDatabase({ dataDir, url, schema });
  cleanups.push(() => database.close());
  return database;
}

/** A database and index over a new data directory. */
async function openIndex(url: BackendUrl): Promise<{
  dataDir: string;
  root: string;
  database: OpenDatabase;
  index: IndexRepository;
}> {
  const dataDir = await tempDir('storage-lifecycle-');
  const database = await openTestDatabase(dataDir, url);
  const root = join(dataDir, 'storage');
  await mkdir(root, { recursive: true });
  return { dataDir, root, database, index: new IndexRepository(database) };
}

/** A store over `root` with cleanup (retention 30 days), recording what it removes. */
async function openStore(
  root: string,
  index: IndexRepository,
  options: Partial<StorageOptions> = {},
) {
  const removed: { study: RemovedStudy; reason: CleanupReason }[] = [];
  let limitReached = 0;
  const store = await FileInstanceStore.open(
    {
      root,
      structure: 'series',
      naming: 'sop_uid',
      maxStorageBytes: 0,
      durability: 'os',
      duplicatePolicy: 'keep_first',
      cleanup: {
        retentionDays: 30,
        onStudyRemoved: async (study, reason) => {
          removed.push({ study, reason });
        },
        onLimitReached: () => {
          limitReached += 1;
        },
      },
      ...options,
    },
    index,
    pino({ level: 'silent' }),
  );
  cleanups.push(() => store.close());
  return { store, removed, limitReached: () => limitReached };
}

describe.each(BACKENDS)('storage cleanup by whole studies ($name)', ({ url }) => {
  it('removes the oldest studies past the retention period down to the mark, index and files together', async () => {
    const { root, database, index } = await openIndex(url);
    // By newest instance: C (60 days), A (40), then B, whose oldest instance is the oldest of
    // all but whose newest came 2 days ago, and D (5 days): neither may go.
    const a = await seedStudy(root, index, { study: 'A', ages: [41, 40], seriesOf: (n) => n + 1 });
    const b = await seedStudy(root, index, { study: 'B', ages: [90, 2] });
    const c = await seedStudy(root, index, { study: 'C', ages: [60], patientId: 'PID-C' });
    const d = await seedStudy(root, index, { study: 'D', ages: [5] });
    const { store, removed } = await openStore(root, index);
    const total = a.sizeBytes + b.sizeBytes + c.sizeBytes + d.sizeBytes;
    expect(store.usedBytes).toBe(total);

    // Down to just under what C alone frees: A goes too, whole (both of its series).
    const report = await store.cleanUp(total - c.sizeBytes - 1);
    expect(report).toMatchObject({
      isEnough: true,
      studies: 2,
      instances: 3,
      freedBytes: c.sizeBytes + a.sizeBytes,
    });
    expect(removed.map(({ study }) => study.studyInstanceUid)).toEqual([
      c.studyInstanceUid,
      a.studyInstanceUid,
    ]);
    expect(removed.every(({ reason }) => reason === 'low-water')).toBe(true);
    expect(await studiesIn(database)).toEqual([b.studyInstanceUid, d.studyInstanceUid].sort());
    for (const path of [...a.paths, ...c.paths]) expect(await exists(path)).toBe(false);
    for (const path of [...b.paths, ...d.paths]) expect(await exists(path)).toBe(true);
    // The folders left empty went; the patient without studies too.
    expect(await exists(join(root, a.studyInstanceUid))).toBe(false);
    expect(await exists(root)).toBe(true);
    const patients = await database.db.selectFrom('patients').select('patient_id').execute();
    expect(patients.map((row) => row.patient_id)).toEqual(['PID-7']);
    expect(store.usedBytes).toBe(b.sizeBytes + d.sizeBytes);
    expect(await index.counts()).toEqual({ patients: 1, studies: 2, series: 2, instances: 3 });

    // Nothing else is old enough: the mark cannot be reached, nothing younger goes.
    const again = await store.cleanUp(0);
    expect(again).toMatchObject({ isEnough: false, studies: 0 });
    expect(await studiesIn(database)).toEqual([b.studyInstanceUid, d.studyInstanceUid].sort());
  });

  it('never removes a study with a series receiving or a hand-off not done', async () => {
    const { root, database, index } = await openIndex(url);
    const states = new SeriesStateRepository(database);
    const webhook: PlannedJob = { kind: 'webhook', target: 'http://127.0.0.1:9/hook' };
    const queue: PlannedJob = { kind: 'queue', target: '' };
    /** A completed series whose jobs are then set to `state`. */
    const complete = async (series: string, study: string, jobState: string, kind = webhook) => {
      await states.startReceiving({
        seriesInstanceUid: series,
        studyInstanceUid: study,
        patientId: 'PID-7',
        receivedAt: daysAgo(50),
      });
      await states.completeSeries(series, { storageRoot: root, jobs: [kind], now: daysAgo(50) });
      await database.db
        .updateTable('handoff_jobs')
        .set({ state: jobState })
        .where('series_instance_uid', '=', series)
        .execute();
    };
    const seeded: Record<string, SeededStudy> = {};
    for (const [i, name] of ['R', 'P', 'I', 'Q', 'F', 'H', 'X', 'N', 'U'].entries()) {
      // Two series each; only the second's hand-off is set below.
      seeded[name] = await seedStudy(root, index, {
        study: name,
        ages: [60 - i, 60 - i],
        seriesOf: (n) => n + 1,
      });
    }
    const second = (name: string) => seeded[name]!.seriesInstanceUids[1]!;
    const study = (name: string) => seeded[name]!.studyInstanceUid;
    // R: receiving again (a late instance).
    await states.startReceiving({
      seriesInstanceUid: second('R'),
      studyInstanceUid: study('R'),
      patientId: 'PID-7',
      receivedAt: daysAgo(1),
    });
    await complete(second('P'), study('P'), 'pending');
    await complete(second('I'), study('I'), 'in_progress');
    await complete(second('Q'), study('Q'), 'processing', queue);
    await complete(second('F'), study('F'), 'failed');
    // H: handed off (delivery done, queue item pending would hold it: a webhook only here).
    await complete(second('H'), study('H'), 'done');
    // X: a delivery given up (dead): not held.
    await complete(second('X'), study('X'), 'dead');
    // N: a series that is not indexed yet (its first instance being stored) but receiving in
    // this study holds it too.
    await states.startReceiving({
      seriesInstanceUid: `${study('N')}.99`,
      studyInstanceUid: study('N'),
      patientId: 'PID-7',
      receivedAt: daysAgo(0),
    });
    // U: an older completion still pending, the latest one done: not held.
    await complete(second('U'), study('U'), 'pending');
    await states.startReceiving({
      seriesInstanceUid: second('U'),
      studyInstanceUid: study('U'),
      patientId: 'PID-7',
      receivedAt: daysAgo(49),
    });
    await states.completeSeries(second('U'), {
      storageRoot: root,
      jobs: [webhook],
      now: daysAgo(49),
    });
    await database.db
      .updateTable('handoff_jobs')
      .set({ state: 'done' })
      .where('series_instance_uid', '=', second('U'))
      .where('completion', '=', 2)
      .execute();

    const { store, removed } = await openStore(root, index);
    const report = await store.cleanUp(0);
    expect(report.isEnough).toBe(false);
    expect(removed.map(({ study }) => study.studyInstanceUid).sort()).toEqual(
      [study('H'), study('X'), study('U')].sort(),
    );
    expect(await studiesIn(database)).toEqual(['R', 'P', 'I', 'Q', 'F', 'N'].map(study).sort());
    for (const name of ['H', 'X', 'U']) {
      for (const path of seeded[name]!.paths) expect(await exists(path)).toBe(false);
    }
  });

  it('makes room for an instance at the limit by removing whole old studies', async () => {
    const { dataDir, root, database, index } = await openIndex(url);
    const old = await seedStudy(root, index, { study: 'OLD', ages: [45, 44] });
    const recent = await seedStudy(root, index, { study: 'NEW', ages: [1] });
    const { store, removed, limitReached } = await openStore(root, index, {
      maxStorageBytes: old.sizeBytes + recent.sizeBytes + 10,
    });
    const server = await startTestServer({ instanceStore: store, aeTitle: 'DRAW_SCP' });
    cleanups.push(() => server.stop());
    const incoming = await writeSeries(join(dataDir, 'send'), {
      studyInstanceUid: studyUid('SENT'),
      seriesInstanceUid: `${studyUid('SENT')}.1`,
      count: 1,
    });
    const summary = await sendFiles(incoming, {
      host: '127.0.0.1',
      port: server.port,
      callingAeTitle: 'STORE_SCU',
      calledAeTitle: 'DRAW_SCP',
    });
    expect(summary.failed).toEqual([]);
    expect(await studiesIn(database)).toEqual([recent.studyInstanceUid, studyUid('SENT')].sort());
    for (const path of old.paths) expect(await exists(path)).toBe(false);
    expect(removed).toHaveLength(1);
    expect(removed[0]).toMatchObject({
      reason: 'limit',
      study: { studyInstanceUid: old.studyInstanceUid, sizeBytes: old.sizeBytes },
    });
    expect(limitReached()).toBe(1);
    const sentSize = (await stat(incoming[0]!)).size;
    // The stored file has the SCU's file meta (source AE title): about the size sent.
    expect(Math.abs(store.usedBytes - (recent.sizeBytes + sentSize))).toBeLessThan(64);
  });

  it('refuses an instance at the limit when the only old study is held by its hand-off', async () => {
    const { dataDir, root, database, index } = await openIndex(url);
    const old = await seedStudy(root, index, { study: 'HELD', ages: [45] });
    await new SeriesStateRepository(database).startReceiving({
      seriesInstanceUid: old.seriesInstanceUids[0]!,
      studyInstanceUid: old.studyInstanceUid,
      patientId: 'PID-7',
      receivedAt: daysAgo(45),
    });
    const { store, removed } = await openStore(root, index, {
      maxStorageBytes: old.sizeBytes + 10,
    });
    const server = await startTestServer({ instanceStore: store, aeTitle: 'DRAW_SCP' });
    cleanups.push(() => server.stop());
    const incoming = await writeSeries(join(dataDir, 'send'), {
      studyInstanceUid: studyUid('SENT2'),
      seriesInstanceUid: `${studyUid('SENT2')}.1`,
      count: 1,
    });
    const summary = await sendFiles(incoming, {
      host: '127.0.0.1',
      port: server.port,
      callingAeTitle: 'STORE_SCU',
      calledAeTitle: 'DRAW_SCP',
    });
    expect(summary.failed.map((failure) => failure.status)).toEqual([Status.OutOfResources]);
    expect(removed).toEqual([]);
    expect(await studiesIn(database)).toEqual([old.studyInstanceUid]);
    expect(await exists(old.paths[0]!)).toBe(true);
  });
});

/**
 * A service controller (stopped) over a data directory whose storage `seed` filled first, with
 * the settings `stored` gives then.
 */
async function controllerWith(
  seed: (root: string, index: IndexRepository) => Promise<void>,
  stored: () => Partial<Settings> = () => ({}),
  storage: ServiceControllerOptions['storage'] = {},
  url: BackendUrl = undefined,
) {
  const dataDir = await tempDir('storage-lifecycle-service-');
  const database = await openTestDatabase(dataDir, url);
  const root = join(dataDir, 'storage');
  await mkdir(root, { recursive: true });
  await seed(root, new IndexRepository(database));
  const settings = new SettingsRepository(database);
  const result = await settings.update({
    host: '127.0.0.1',
    port: await freePort(),
    durability: 'os',
    ...stored(),
  });
  expect(result.isValid, JSON.stringify(result)).toBe(true);
  const logs: LogLine[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.trim() !== '') logs.push(JSON.parse(line) as LogLine);
        }
        callback();
      },
    }),
  );
  const controller = new ServiceController({
    database,
    config: await LiveConfig.load(settings),
    dataDir,
    logger,
    shutdownGraceMs: 500,
    isLogLevelFixed: true,
    storage,
  });
  cleanups.push(() => controller.close());
  return { dataDir, root, database, controller, logs };
}

describe('the cleanup job', () => {
  it('runs after start-up, brings usage under the low-water mark and audits each study as system', async () => {
    const studies: SeededStudy[] = [];
    const size = () => studies[0]!.sizeBytes;
    const { database, controller } = await controllerWith(
      async (root, index) => {
        for (const [i, age] of [70, 60, 50, 40, 3].entries()) {
          studies.push(await seedStudy(root, index, { study: `J${i}`, ages: [age] }));
        }
      },
      // The limit is set in GB: here, room for four instances (all of one size); the mark half.
      () => ({
        enable_storage_cleanup: true,
        storage_retention_days: 30,
        storage_cleanup_low_water_percent: 50,
        max_storage_size_gb: (4 * size()) / GB,
      }),
      { cleanup: { firstRunMs: 0 } },
    );
    await controller.start();
    const status = controller.status();
    const lowWater = 2 * size();
    expect(status.storageCleanup).toMatchObject({ retentionDays: 30, lowWaterBytes: lowWater });
    const lastRun = await eventually(
      async () => controller.status().storageCleanup?.lastRun ?? undefined,
      'the first cleanup run',
    );
    // Five of one size against a mark of two: the three oldest go.
    expect(lastRun).toMatchObject({ studies: 3, instances: 3, isEnough: true });
    expect(await studiesIn(database)).toEqual(
      [studies[3]!.studyInstanceUid, studies[4]!.studyInstanceUid].sort(),
    );
    expect(controller.status().storageUsedBytes).toBe(2 * size());
    const audit = await database.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'storage cleanup')
      .orderBy('id')
      .execute();
    expect(audit.map((row) => row.username)).toEqual(['system', 'system', 'system']);
    expect(audit.map((row) => row.outcome)).toEqual(['success', 'success', 'success']);
    for (const [i, row] of audit.entries()) {
      expect(row.detail).toContain(studies[i]!.studyInstanceUid);
      expect(row.detail).toContain('above the low-water mark');
    }
    // Under the mark, a run removes nothing.
    expect(await controller.storage.runCleanup()).toMatchObject({ studies: 0, isEnough: true });
  });

  it('is not there with cleanup off or without a limit', async () => {
    const off = await controllerWith(
      async () => undefined,
      () => ({ enable_storage_cleanup: false }),
    );
    await off.controller.start();
    expect(off.controller.status().storageCleanup).toBeNull();
    expect(await off.controller.storage.runCleanup()).toBeUndefined();
    const unlimited = await controllerWith(
      async () => undefined,
      () => ({ enable_storage_cleanup: true, max_storage_size_gb: 0 }),
    );
    await unlimited.controller.start();
    expect(unlimited.controller.status().storageCleanup).toBeNull();
  });
});

describe.each(BACKENDS)('intake rate and projection ($name)', ({ url }) => {
  it('takes the week’s intake from the index, cached, and projects the days until full', async () => {
    const seeded: SeededStudy[] = [];
    const { root, database, controller } = await controllerWith(
      async (storageRoot, index) => {
        seeded.push(await seedStudy(storageRoot, index, { study: 'W1', ages: [10] }));
        seeded.push(await seedStudy(storageRoot, index, { study: 'W2', ages: [3, 1] }));
      },
      () => ({ max_storage_size_gb: 1 }),
      undefined,
      url,
    );
    expect(controller.status().storageDaysUntilFull).toBeNull();
    await controller.start();
    await controller.storage.refreshIntake();
    const week = seeded[1]!.sizeBytes;
    const status = controller.status();
    // The index goes back ten days: the rate is over the whole week.
    expect(status.storageIntakeBytesPerDay).toBe(Math.round(week / 7));
    const used = seeded[0]!.sizeBytes + week;
    expect(status.storageUsedBytes).toBe(used);
    expect(status.storageDaysUntilFull).toBe(daysUntilFull(used, GB, Math.round(week / 7)));
    expect(status.storageDaysUntilFull).toBeGreaterThan(1000);

    // A new row does not move the cached rate until it is measured again.
    await seedStudy(root, new IndexRepository(database), { study: 'W3', ages: [0.5] });
    expect(controller.status().storageIntakeBytesPerDay).toBe(Math.round(week / 7));
    await controller.storage.refreshIntake();
    expect(controller.status().storageIntakeBytesPerDay).toBeGreaterThan(Math.round(week / 7));
  });

  it('measures a young index over its own age, one day at least; projects nothing without a limit or intake', () => {
    const now = Date.parse('2026-03-10T12:00:00Z');
    expect(intakeRate(3_000, '2026-03-07T12:00:00Z', now)).toMatchObject({
      bytesPerDay: 1_000,
      overDays: 3,
    });
    expect(intakeRate(3_000, '2026-03-10T11:00:00Z', now)).toMatchObject({
      bytesPerDay: 3_000,
      overDays: 1,
    });
    expect(intakeRate(7_000, '2025-01-01T00:00:00Z', now).bytesPerDay).toBe(1_000);
    expect(intakeRate(0, null, now).bytesPerDay).toBe(0);
    expect(daysUntilFull(500, 1_000, 100)).toBe(5);
    expect(daysUntilFull(500, 1_000, 0)).toBeNull();
    expect(daysUntilFull(500, null, 100)).toBeNull();
    expect(daysUntilFull(1_000, 1_000, null)).toBe(0);
  });
});

describe.each(BACKENDS)('the storage rescan ($name)', ({ url }) => {
  it('indexes orphan files, removes the rows of missing ones, reports the rest, and moves usage', async () => {
    const seeded: SeededStudy[] = [];
    const { root, database, controller } = await controllerWith(
      async (storageRoot, index) => {
        seeded.push(await seedStudy(storageRoot, index, { study: 'S1', ages: [2, 2] }));
        seeded.push(await seedStudy(storageRoot, index, { study: 'S2', ages: [2] }));
      },
      undefined,
      undefined,
      url,
    );
    await controller.start();
    const usedBefore = controller.status().storageUsedBytes;
    const [kept, gone] = seeded[0]!.paths;
    // Missing: an indexed file removed behind the index's back.
    await unlink(gone!);
    const goneSize = seeded[0]!.sizeBytes - (await stat(kept!)).size;
    // Orphan: a file the index does not know, written a while ago.
    const [orphan] = await writeSeries(join(root, 'copied-in'), {
      studyInstanceUid: studyUid('ORPHAN'),
      seriesInstanceUid: `${studyUid('ORPHAN')}.1`,
      count: 1,
    });
    const past = new Date(Date.now() - 3_600_000);
    await utimes(orphan!, past, past);
    // Duplicate: a second copy of an indexed instance; unreadable: not DICOM.
    await copyFile(seeded[1]!.paths[0]!, join(root, 'copy.dcm'));
    await utimes(join(root, 'copy.dcm'), past, past);
    await writeFile(join(root, 'notes.txt'), 'not DICOM');
    await utimes(join(root, 'notes.txt'), past, past);
    // Too recent: written just now (a store may be indexing it).
    await writeSeries(join(root, 'just-now'), {
      studyInstanceUid: studyUid('RECENT'),
      seriesInstanceUid: `${studyUid('RECENT')}.1`,
      count: 1,
    });

    expect(controller.storage.rescanStatus.state).toBe('idle');
    const started = controller.startStorageRescan('admin');
    expect(started).toMatchObject({ state: 'running', startedBy: 'admin' });
    expect(() => controller.startStorageRescan('admin')).toThrow(RescanRunningError);
    await controller.storage.rescanSettled();
    const status = controller.storage.rescanStatus;
    expect(status).toMatchObject({ state: 'done', phase: null, error: null });
    const orphanSize = (await stat(orphan!)).size;
    expect(status.report).toMatchObject({
      filesChecked: 6,
      orphanFiles: 1,
      orphanBytes: orphanSize,
      duplicateFiles: 1,
      unreadableFiles: 1,
      recentFiles: 1,
      // The rows after the files were checked: the orphan's among them.
      instancesChecked: 4,
      missingFiles: 1,
      missingBytes: goneSize,
    });
    expect(status.report?.listed).toEqual({
      orphan: [relative(root, orphan!)],
      missing: [relative(root, gone!)],
      duplicate: ['copy.dcm'],
      unreadable: ['notes.txt'],
    });
    const rows = await database.db
      .selectFrom('instances')
      .select(['sop_instance_uid', 'file_path'])
      .execute();
    expect(rows.map((row) => row.file_path).sort()).toEqual(
      [kept!, seeded[1]!.paths[0]!, orphan!].map((path) => relative(root, path)).sort(),
    );
    expect(controller.status().storageUsedBytes).toBe(usedBefore - goneSize + orphanSize);
    // Duplicates and unreadable files are left alone.
    expect(await exists(join(root, 'copy.dcm'))).toBe(true);
    expect(await exists(join(root, 'notes.txt'))).toBe(true);
    const audit = await database.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'storage rescan finished')
      .execute();
    expect(audit).toMatchObject([{ username: 'admin', outcome: 'success' }]);
    expect(audit[0]?.detail).toContain('"missingFiles":1');

    // The next rescan finds everything in place.
    controller.startStorageRescan('admin');
    await controller.storage.rescanSettled();
    expect(controller.storage.rescanStatus.report).toMatchObject({
      orphanFiles: 0,
      missingFiles: 0,
      duplicateFiles: 1,
    });
  });

  it('runs on the storage path while the service is stopped, and fails clearly without one', async () => {
    const { root, database, controller } = await controllerWith(async (storageRoot, index) => {
      await seedStudy(storageRoot, index, { study: 'T1', ages: [1] });
    });
    const [orphan] = await writeSeries(join(root, 'x'), {
      studyInstanceUid: studyUid('T2'),
      seriesInstanceUid: `${studyUid('T2')}.1`,
      count: 1,
    });
    const past = new Date(Date.now() - 3_600_000);
    await utimes(orphan!, past, past);
    controller.startStorageRescan('admin');
    await controller.storage.rescanSettled();
    expect(controller.storage.rescanStatus.report?.orphanFiles).toBe(1);
    expect(await studiesIn(database)).toEqual([studyUid('T1'), studyUid('T2')]);

    await rm(root, { recursive: true, force: true });
    controller.startStorageRescan('admin');
    await controller.storage.rescanSettled();
    expect(controller.storage.rescanStatus).toMatchObject({ state: 'failed' });
    expect(controller.storage.rescanStatus.error).toContain('does not exist');
  });
});
