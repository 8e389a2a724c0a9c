/**
 * Forwarding. The routing tables on SQLite and PostgreSQL: rules added, replaced and removed
 * (names unique); jobs written due at once, claimed per destination once (concurrent claims
 * never share a job) with where their instance is stored now; outcomes done, failed (due
 * later) and dead, each moving the destination's last success or error; untried claims put
 * back without counting, claims of a gone process released, failed and dead jobs retried;
 * lists filtered and paged; the per-destination summary; done jobs pruned.
 *
 * End to end: a server storing what DCMTK's storescu sends from the shared test files, with
 * forwarding on its instance store's `onIndexed` hook: a rule sends the CT instance to a
 * DCMTK storescp, where it arrives with its data set byte for byte as stored, and nothing
 * else does; a destination down at first gets its instance once it is up, exactly once.
 *
 * Layer: integration test. 127.0.0.1, free ports; every wait has a deadline.
 */

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type OpenDatabase, openDatabase } from '../../src/db/dialect.js';
import {
  IndexRepository,
  type InstanceRecord,
} from '../../src/db/repositories/index-repository.js';
import {
  type ForwardEntry,
  type ForwardJob,
  RoutingRepository,
} from '../../src/db/repositories/routing-repository.js';
import {
  type RoutingRuleInput,
  RoutingRulesRepository,
} from '../../src/db/repositories/routing-rules-repository.js';
import { TransactionLogRepository } from '../../src/db/repositories/transaction-log-repository.js';
import { readFileMeta } from '../../src/dicom/part10.js';
import { type RoutingEvent, ServerEvents } from '../../src/server/events.js';
import { FileInstanceStore } from '../../src/server/instance-store.js';
import { type DestinationAe, Routing } from '../../src/server/routing/index.js';
import { TransactionLog } from '../../src/server/transaction-log.js';
import { describeOnEachBackend } from '../helpers/backends.js';
import { type BackgroundTool, runTool, SCU_TIMEOUTS, startTool } from '../helpers/dcmtk.js';
import { freePort, waitForListener } from '../helpers/net.js';
import {
  type LogLine,
  startTestServer,
  TEST_TIMEOUTS,
  type TestServer,
} from '../helpers/server.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';
import { within } from '../helpers/wait.js';

const ROOT = '1.2.826.0.1.3680043.9.7777.71';
const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

const at = (second: number) => new Date(Date.UTC(2026, 0, 2, 20, 0, second)).toISOString();

function record(n: number, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    patientId: 'PID-71',
    issuerOfPatientId: '',
    patientName: 'Doe^Jane',
    patientBirthDate: null,
    patientSex: null,
    studyInstanceUid: `${ROOT}.1`,
    studyDate: '20260102',
    studyTime: null,
    accessionNumber: null,
    studyId: null,
    studyDescription: 'Thorax',
    referringPhysicianName: null,
    patientAge: null,
    seriesInstanceUid: `${ROOT}.1.1`,
    modality: 'CT',
    seriesNumber: 1,
    seriesDescription: null,
    bodyPartExamined: 'CHEST',
    seriesDate: null,
    seriesTime: null,
    protocolName: null,
    sopInstanceUid: `${ROOT}.1.1.${n}`,
    sopClassUid: CT_IMAGE,
    instanceNumber: n,
    transferSyntaxUid: EXPLICIT_LE,
    filePath: `p/s/${n}.dcm`,
    fileSize: 1_000 + n,
    callingAe: 'CT_SCANNER',
    receivedAt: at(n),
    ...overrides,
  };
}

function entry(
  n: number,
  destination: string,
  overrides: Partial<ForwardEntry> = {},
): ForwardEntry {
  const instance = record(n);
  return {
    ruleId: 1,
    ruleName: 'CT to AI',
    destination,
    sopInstanceUid: instance.sopInstanceUid,
    sopClassUid: instance.sopClassUid,
    transferSyntaxUid: instance.transferSyntaxUid,
    filePath: instance.filePath,
    fileSize: instance.fileSize,
    patientId: instance.patientId,
    studyInstanceUid: instance.studyInstanceUid,
    seriesInstanceUid: instance.seriesInstanceUid,
    ...overrides,
  };
}

const CT_TO_AI: RoutingRuleInput = {
  name: 'CT to AI',
  description: 'chest CTs',
  isEnabled: true,
  conditions: { modality: 'CT', bodyPartExamined: 'CHEST' },
  destinations: ['AI_NODE', 'ARCHIVE'],
};

describeOnEachBackend('the routing tables', 'routing', (on) => {
  let routing: RoutingRepository;
  let rules: RoutingRulesRepository;
  let index: IndexRepository;

  beforeEach(async () => {
    routing = new RoutingRepository(on.database);
    rules = new RoutingRulesRepository(on.database);
    index = new IndexRepository(on.database);
  });

  const ids = (jobs: readonly { id: number }[]) => jobs.map((job) => job.id);

  it('adds, lists, replaces and removes rules, names unique', async () => {
    const created = await rules.createRule(CT_TO_AI, at(0));
    if (!created.isChanged) throw new Error(created.message);
    expect(created.rule).toEqual({
      id: expect.any(Number),
      ...CT_TO_AI,
      createdAt: at(0),
      updatedAt: at(0),
    });
    const other = await rules.createRule({ ...CT_TO_AI, name: 'MR', isEnabled: false }, at(1));
    expect(other).toMatchObject({ isChanged: true, rule: { name: 'MR', isEnabled: false } });
    expect(await rules.createRule(CT_TO_AI, at(2))).toMatchObject({
      isChanged: false,
      reason: 'conflict',
    });
    expect((await rules.listRules()).map((rule) => rule.name)).toEqual(['CT to AI', 'MR']);

    const id = created.rule.id;
    const replaced = await rules.updateRule(
      id,
      { ...CT_TO_AI, conditions: { callingAe: 'CT_*' }, destinations: ['PACS'] },
      at(3),
    );
    expect(replaced).toMatchObject({
      isChanged: true,
      rule: { id, conditions: { callingAe: 'CT_*' }, destinations: ['PACS'], updatedAt: at(3) },
    });
    expect(await rules.updateRule(id, { ...CT_TO_AI, name: 'MR' }, at(4))).toMatchObject({
      isChanged: false,
      reason: 'conflict',
    });
    expect(await rules.updateRule(9_999, CT_TO_AI, at(4))).toMatchObject({
      isChanged: false,
      reason: 'not-found',
    });
    expect((await rules.getRule(id))?.destinations).toEqual(['PACS']);

    expect((await rules.deleteRule(id))?.name).toBe('CT to AI');
    expect(await rules.deleteRule(id)).toBeUndefined();
    expect(await rules.getRule(id)).toBeUndefined();
  });

  it('writes jobs due at once and claims them per destination, once, with their stored file', async () => {
    await index.addInstances([record(1, { filePath: 'moved/1.dcm' }), record(2)]);
    const written = await routing.enqueue(
      [entry(1, 'AI_NODE'), entry(2, 'AI_NODE'), entry(3, 'AI_NODE'), entry(1, 'ARCHIVE')],
      at(10),
    );
    expect(written.map((job) => [job.destination, job.state, job.attempts])).toEqual([
      ['AI_NODE', 'pending', 0],
      ['AI_NODE', 'pending', 0],
      ['AI_NODE', 'pending', 0],
      ['ARCHIVE', 'pending', 0],
    ]);
    expect(await routing.dueDestinations(at(9))).toEqual([]);
    expect(await routing.dueDestinations(at(10))).toEqual(['AI_NODE', 'ARCHIVE']);
    expect(await routing.dueDestinations(at(10), ['AI_NODE'])).toEqual(['ARCHIVE']);
    expect(await routing.nextDueAt()).toBe(at(10));

    const claimed = await routing.claimDue('AI_NODE', 'me:1', at(11), 2);
    expect(ids(claimed)).toEqual(ids(written.slice(0, 2)));
    expect(claimed.map((job) => [job.state, job.attempts, job.claimedBy])).toEqual([
      ['in_progress', 1, 'me:1'],
      ['in_progress', 1, 'me:1'],
    ]);
    // The file as indexed now, not as it was when the job was written.
    expect(claimed.map((job) => job.storedFilePath)).toEqual(['moved/1.dcm', 'p/s/2.dcm']);
    const rest = await routing.claimDue('AI_NODE', 'me:1', at(11), 10);
    expect(ids(rest)).toEqual([written[2]!.id]);
    expect(rest[0]?.storedFilePath).toBeNull();
    expect(await routing.claimDue('AI_NODE', 'me:1', at(11), 10)).toEqual([]);
    expect(await routing.dueDestinations(at(11))).toEqual(['ARCHIVE']);
  });

  it('never gives one job to two concurrent claims', async () => {
    await routing.enqueue(
      Array.from({ length: 20 }, (_, n) => entry(n, 'AI_NODE')),
      at(0),
    );
    const claims = await Promise.all(
      Array.from({ length: 4 }, (_, n) => routing.claimDue('AI_NODE', `w:${n}`, at(1), 8)),
    );
    // On PostgreSQL a claim that lost a race for rows takes fewer; none takes a job twice.
    const rest = await routing.claimDue('AI_NODE', 'w:last', at(1), 20);
    const all = [...claims.flatMap(ids), ...ids(rest)];
    expect(all).toHaveLength(20);
    expect(new Set(all).size).toBe(20);
  });

  it('records done, failed and dead attempts, and the destination summary follows', async () => {
    await rules.createRule(CT_TO_AI, at(0));
    await routing.enqueue(
      [1, 2, 3, 4].map((n) => entry(n, 'AI_NODE')),
      at(0),
    );
    const [a, b, c, d] = await routing.claimDue('AI_NODE', 'me:1', at(1), 10);
    if (a === undefined || b === undefined || c === undefined || d === undefined) {
      throw new Error('not claimed');
    }
    expect(await routing.finish(a.id, { isDone: true }, at(2))).toMatchObject({
      state: 'done',
      claimedBy: null,
      lastError: null,
    });
    const failed = { isDone: false, error: 'destination unreachable', nextAttemptAt: at(30) };
    expect(await routing.finish(b.id, failed, at(3))).toMatchObject({
      state: 'failed',
      nextAttemptAt: at(30),
      lastError: 'destination unreachable',
    });
    const dead = { isDone: false, error: 'instance no longer stored', nextAttemptAt: undefined };
    expect(await routing.finish(c.id, dead, at(4))).toMatchObject({
      state: 'dead',
      nextAttemptAt: null,
    });
    await expect(routing.finish(a.id, { isDone: true }, at(5))).rejects.toThrow(/not in progress/);

    expect(await routing.destinationSummaries()).toEqual([
      {
        aeTitle: 'AI_NODE',
        queued: 1,
        failed: 1,
        dead: 1,
        nextAttemptAt: at(30),
        lastSuccessAt: at(2),
        lastError: 'instance no longer stored',
        lastErrorAt: at(4),
        isInRules: true,
      },
      {
        aeTitle: 'ARCHIVE',
        queued: 0,
        failed: 0,
        dead: 0,
        nextAttemptAt: null,
        lastSuccessAt: null,
        lastError: null,
        lastErrorAt: null,
        isInRules: true,
      },
    ]);
    expect(await routing.nextDueAt()).toBe(at(30));
    expect(await routing.dueDestinations(at(29))).toEqual([]);
    expect(ids(await routing.claimDue('AI_NODE', 'me:1', at(30), 10))).toEqual([b.id]);

    // d: claimed but a stop came first; back to pending, its attempt not counted.
    expect(await routing.unclaim([d.id], at(31))).toBe(1);
    expect(await routing.getJob(d.id)).toMatchObject({
      state: 'pending',
      attempts: 0,
      nextAttemptAt: at(31),
    });
  });

  it('retries failed and dead jobs only, attempts reset', async () => {
    await routing.enqueue([entry(1, 'AI_NODE'), entry(2, 'AI_NODE')], at(0));
    const [a, b] = await routing.claimDue('AI_NODE', 'me:1', at(1), 10);
    if (a === undefined || b === undefined) throw new Error('not claimed');
    await routing.finish(a.id, { isDone: false, error: 'x', nextAttemptAt: undefined }, at(2));
    await routing.finish(b.id, { isDone: true }, at(2));
    const retried = await routing.retry(a.id, at(3));
    expect(retried).toMatchObject({
      isChanged: true,
      job: { state: 'pending', attempts: 0, nextAttemptAt: at(3), lastError: null },
    });
    expect(await routing.retry(a.id, at(4))).toMatchObject({
      isChanged: false,
      reason: 'conflict',
    });
    expect(await routing.retry(b.id, at(4))).toMatchObject({
      isChanged: false,
      reason: 'conflict',
    });
    expect(await routing.retry(9_999, at(4))).toMatchObject({
      isChanged: false,
      reason: 'not-found',
    });
  });

  it('releases the claims of a gone process, keeping the attempt', async () => {
    await routing.enqueue([entry(1, 'AI_NODE'), entry(2, 'ARCHIVE')], at(0));
    await routing.claimDue('AI_NODE', 'host:1', at(1), 10);
    await routing.claimDue('ARCHIVE', 'host:2', at(2), 10);
    expect(
      (await routing.claimers()).sort((x, y) => x.claimedBy.localeCompare(y.claimedBy)),
    ).toEqual([
      { claimedBy: 'host:1', oldestClaimAt: at(1) },
      { claimedBy: 'host:2', oldestClaimAt: at(2) },
    ]);
    expect(await routing.releaseClaims(['host:1'], at(5))).toBe(1);
    expect(await routing.page({ destination: 'AI_NODE' }, 10)).toMatchObject({
      rows: [{ state: 'pending', attempts: 1, claimedBy: null, nextAttemptAt: at(5) }],
    });
  });

  it('lists jobs newest first, filtered and paged, and prunes done ones', async () => {
    await routing.enqueue(
      [1, 2, 3, 4, 5].map((n) => entry(n, n % 2 === 0 ? 'ARCHIVE' : 'AI_NODE')),
      at(0),
    );
    const first = await routing.page({}, 2);
    expect(first.rows.map((job) => job.sopInstanceUid)).toEqual([`${ROOT}.1.1.5`, `${ROOT}.1.1.4`]);
    const second = await routing.page({}, 2, first.nextBeforeId);
    expect(second.rows.map((job) => job.sopInstanceUid)).toEqual([
      `${ROOT}.1.1.3`,
      `${ROOT}.1.1.2`,
    ]);
    expect((await routing.page({}, 2, second.nextBeforeId)).nextBeforeId).toBeUndefined();
    expect(await routing.count({ destination: 'AI_NODE' })).toBe(3);
    const done = await routing.claimDue('ARCHIVE', 'me:1', at(1), 10);
    for (const job of done) await routing.finish(job.id, { isDone: true }, at(2));
    expect(await routing.count({ state: 'done' })).toBe(2);
    expect(await routing.count({ state: 'pending', destination: 'AI_NODE' })).toBe(3);
    expect(await routing.pruneDone(at(2))).toBe(0);
    expect(await routing.pruneDone(at(3))).toBe(2);
    expect(await routing.count({})).toBe(3);
    // The last success outlives the jobs that set it.
    expect(
      (await routing.destinationSummaries()).find((d) => d.aeTitle === 'ARCHIVE'),
    ).toMatchObject({ queued: 0, lastSuccessAt: at(2), isInRules: false });
  });

  it("moves the rules' fingerprint with each change, and a second server sharing the index follows them", async () => {
    const before = await rules.fingerprint();
    const created = await rules.createRule(CT_TO_AI, at(0));
    if (!created.isChanged) throw new Error(created.message);
    const afterAdd = await rules.fingerprint();
    await rules.updateRule(created.rule.id, { ...CT_TO_AI, isEnabled: false }, at(1));
    const afterEdit = await rules.fingerprint();
    await rules.deleteRule(created.rule.id);
    const afterDelete = await rules.fingerprint();
    expect(afterAdd).not.toBe(before);
    expect(afterEdit).not.toBe(afterAdd);
    expect(afterDelete).not.toBe(afterEdit);

    // A server told of nothing (no event, no call): it sees the rule at its next check.
    const other = new Routing({
      database: on.database,
      storageRoot: tmpdir(),
      aeTitle: () => 'OTHER',
      lookupDestination: () => undefined,
      timeouts: TEST_TIMEOUTS,
      logger: pino({ level: 'silent' }),
      rulesCheckMs: 50,
    });
    await other.start();
    try {
      expect(other.onIndexed(record(1))).toBeUndefined();
      await rules.createRule(CT_TO_AI, at(2));
      await within(
        (async () => {
          while (other.onIndexed(record(2)) === undefined) {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        })(),
        5_000,
        'the rule made elsewhere matched',
      );
    } finally {
      await other.stop(1_000);
    }
  });
});

/** The shared files sent, with the storescu option that proposes their transfer syntax. */
const FILES: Readonly<Record<string, string>> = {
  'CT_small.dcm': '-xe',
  'SC_rgb_small_odd.dcm': '-xe',
  'rtdose.dcm': '-xi',
  'rtplan.dcm': '-xi',
  'JPEG-lossy.dcm': '-xx',
  'JPEG2000.dcm': '-xw',
};
const MR_FILE = 'MR_small.dcm';

describe('forwarding received instances to DCMTK storescp', () => {
  let work: string;
  let database: OpenDatabase;
  let store: FileInstanceStore;
  let server: TestServer;
  let routing: Routing;
  let transactionLog: TransactionLog;
  const events = new ServerEvents();
  const destinations = new Map<string, DestinationAe>();
  const logs: LogLine[] = [];
  const tools: BackgroundTool[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dicom-server-routing-'));
    database = await openDatabase({ dataDir: work });
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          for (const line of chunk.toString('utf8').split('\n')) {
            if (line.trim() !== '') logs.push(JSON.parse(line) as LogLine);
          }
          callback();
        },
      }),
    );
    transactionLog = new TransactionLog(
      new TransactionLogRepository(database),
      logger,
      () => 30,
      events,
    );
    const storageRoot = join(work, 'storage');
    routing = new Routing({
      database,
      storageRoot,
      aeTitle: () => 'ROUTER',
      lookupDestination: (aeTitle) => destinations.get(aeTitle),
      timeouts: TEST_TIMEOUTS,
      logger,
      events,
      transactionLog,
      retry: { baseMs: 300, maxMs: 1_000 },
    });
    store = await FileInstanceStore.open(
      {
        root: storageRoot,
        structure: 'series',
        naming: 'sop_uid',
        maxStorageBytes: 0,
        durability: 'os',
        duplicatePolicy: 'keep_first',
        onIndexed: (instance) => routing.onIndexed(instance),
      },
      new IndexRepository(database),
      logger,
    );
    server = await startTestServer({ instanceStore: store, aeTitle: 'ROUTER' });
    await routing.start();
  });

  afterAll(async () => {
    await server?.stop();
    await routing?.stop(1_000);
    for (const tool of tools) await tool.stop();
    await store?.close();
    await transactionLog?.flush();
    await database?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
    const errors = logs.filter((line) => line.level >= 50);
    if (errors.length > 0) console.error(errors.map((line) => JSON.stringify(line)).join('\n'));
    expect(errors).toEqual([]);
  });

  /** Starts a bit-preserving storescp taking every syntax, on `port`, as `aeTitle`. */
  async function startStorescp(aeTitle: string, port: number, dir: string): Promise<void> {
    const tool = await startTool('storescp', [
      '-aet',
      aeTitle,
      '+B',
      '+xa',
      '-od',
      dir,
      String(port),
    ]);
    tools.push(tool);
    await waitForListener(port);
  }

  async function storescu(files: Readonly<Record<string, string>>): Promise<void> {
    for (const option of new Set(Object.values(files))) {
      const names = Object.keys(files).filter((file) => files[file] === option);
      const run = await runTool('storescu', [
        '-aet',
        'MODALITY',
        '-aec',
        'ROUTER',
        option,
        ...SCU_TIMEOUTS,
        '127.0.0.1',
        String(server.port),
        ...names.map((name) => join(TESTDATA_DICOM, name)),
      ]);
      expect(run.exitCode, run.output).toBe(0);
    }
  }

  /** The next job event that satisfies `predicate` (listen before acting). */
  function nextJob(predicate: (job: ForwardJob) => boolean): Promise<ForwardJob> {
    return new Promise((resolve) => {
      const listener = (event: RoutingEvent) => {
        if (event.type === 'job' && predicate(event.job)) {
          events.off('routing', listener);
          resolve(event.job);
        }
      };
      events.on('routing', listener);
    });
  }

  async function datasetOf(path: string): Promise<Buffer> {
    const bytes = await readFile(path);
    return bytes.subarray(readFileMeta(bytes).datasetOffset);
  }

  /** The files in `dir` once there are `count` (storescp writes before it answers). */
  async function receivedIn(dir: string, count: number): Promise<string[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const names = await readdir(dir);
      if (names.length >= count) return names.map((name) => join(dir, name));
      if (Date.now() > deadline) throw new Error(`no ${count} file(s) in ${dir} within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('sends the CT instance a rule matches, byte for byte in its data set, and nothing else', async () => {
    const dir = await mkdtemp(join(work, 'ct-dest-'));
    const port = await freePort();
    await startStorescp('CT_DEST', port, dir);
    destinations.set('CT_DEST', { host: '127.0.0.1', port, isActive: true });
    const queue = new RoutingRepository(database);
    const rules = new RoutingRulesRepository(database);
    await rules.createRule(
      {
        name: 'CT to CT_DEST',
        description: '',
        isEnabled: true,
        conditions: { modality: 'CT', callingAe: 'MODAL*' },
        destinations: ['CT_DEST'],
      },
      new Date().toISOString(),
    );
    await routing.rulesChanged();

    const forwarded = nextJob((job) => job.destination === 'CT_DEST' && job.state !== 'pending');
    await storescu(FILES);
    const job = await within(forwarded, 20_000, 'CT instance forwarded');
    expect(job).toMatchObject({ state: 'done', attempts: 1, sopClassUid: CT_IMAGE });

    const [received] = await receivedIn(dir, 1);
    const stored = join(work, 'storage', job.filePath);
    expect((await datasetOf(received!)).equals(await datasetOf(stored))).toBe(true);
    // The other instances matched no rule: no job, no file.
    expect(await queue.count({})).toBe(1);
    expect(await readdir(dir)).toHaveLength(1);
    await transactionLog.flush();
    const rows = await new TransactionLogRepository(database).page({ type: 'FORWARD' }, 10);
    expect(rows.rows).toEqual([
      expect.objectContaining({
        status: 'success',
        status_code: 0,
        calling_ae: 'ROUTER',
        called_ae: 'CT_DEST',
        remote_port: port,
        sop_instance_uid: job.sopInstanceUid,
      }),
    ]);
  }, 60_000);

  it('delivers to a destination that was down once it is up, exactly once', async () => {
    const dir = await mkdtemp(join(work, 'late-dest-'));
    const port = await freePort();
    destinations.set('LATE_DEST', { host: '127.0.0.1', port, isActive: true });
    const queue = new RoutingRepository(database);
    const rules = new RoutingRulesRepository(database);
    await rules.createRule(
      {
        name: 'MR to LATE_DEST',
        description: '',
        isEnabled: true,
        conditions: { modality: 'MR' },
        destinations: ['LATE_DEST'],
      },
      new Date().toISOString(),
    );
    await routing.rulesChanged();

    const failed = nextJob((job) => job.destination === 'LATE_DEST' && job.state === 'failed');
    await storescu({ [MR_FILE]: '-xe' });
    expect(await within(failed, 20_000, 'first attempt failed')).toMatchObject({
      attempts: 1,
      lastError: expect.stringMatching(/unreachable|refused/i),
    });

    const done = nextJob((job) => job.destination === 'LATE_DEST' && job.state === 'done');
    await startStorescp('LATE_DEST', port, dir);
    const delivered = await within(done, 20_000, 'delivery after the destination came up');
    expect(delivered.attempts).toBeGreaterThanOrEqual(2);
    await receivedIn(dir, 1);
    expect(await readdir(dir)).toHaveLength(1);
    const summary = (await queue.destinationSummaries()).find((d) => d.aeTitle === 'LATE_DEST');
    expect(summary).toMatchObject({
      queued: 0,
      failed: 0,
      dead: 0,
      lastSuccessAt: expect.any(String),
    });
    expect(summary?.lastError).toMatch(/unreachable|refused/i);
  }, 60_000);

  it('fails a job whose destination is not a known AE title, and retries it when asked', async () => {
    const queue = new RoutingRepository(database);
    const rules = new RoutingRulesRepository(database);
    const id = (await rules.listRules()).find((rule) => rule.name === 'MR to LATE_DEST')?.id;
    if (id === undefined) throw new Error('rule missing');
    await rules.updateRule(
      id,
      {
        name: 'MR to LATE_DEST',
        description: '',
        isEnabled: true,
        conditions: { modality: 'MR' },
        destinations: ['NOWHERE'],
      },
      new Date().toISOString(),
    );
    await routing.rulesChanged();
    const failed = nextJob((job) => job.destination === 'NOWHERE' && job.state === 'failed');
    const [job] = await queue.enqueue(
      [
        {
          ...entry(1, 'NOWHERE'),
          ruleId: id,
          ruleName: 'MR to LATE_DEST',
          filePath: 'gone.dcm',
        },
      ],
      new Date().toISOString(),
    );
    routing.notify();
    // Its instance is not stored either; the destination is looked up first.
    expect(await within(failed, 10_000, 'unknown destination failure')).toMatchObject({
      id: job?.id,
      lastError: 'NOWHERE is not a known AE title',
    });
    destinations.set('NOWHERE', { host: '127.0.0.1', port: 1, isActive: true });
    const dead = nextJob((next) => next.id === job?.id && next.state === 'dead');
    await queue.retry(job!.id, new Date().toISOString());
    events.emit('routing', { type: 'job', job: (await queue.getJob(job!.id))! });
    expect(await within(dead, 10_000, 'dead for an instance not stored')).toMatchObject({
      lastError: 'instance no longer stored',
      attempts: 1,
    });
  }, 60_000);
});
