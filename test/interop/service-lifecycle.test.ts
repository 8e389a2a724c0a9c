/**
 * Interop: the DICOM service's lifecycle in `dicom-server serve`, as the stored service status
 * shows it: SIGTERM with a store in flight (finished within the grace period, or aborted after
 * it), a port already in use, a stale "running" status left by a process that died, and the
 * service switched off in the stored settings.
 *
 * Layer: test (interop).
 */

import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import { hostname } from 'node:os';
import { join, relative, sep } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Association } from '../../src/network/association/association.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { DimseChannel } from '../../src/network/dimse/channel.js';
import { CommandField, Priority } from '../../src/network/dimse/command.js';
import { Status } from '../../src/network/dimse/status.js';
import { INCOMING_FOLDER } from '../../src/server/instance-store.js';
import { inspectFile } from '../../src/services/scu/store.js';
import { TEMP_SUFFIX } from '../../src/storage/atomic-writer.js';
import { accepts, freePort } from '../helpers/net.js';
import {
  createDataDir,
  type DataDir,
  pollUntil,
  type ServeProcess,
  startListening,
  startServe,
} from '../helpers/serve-process.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

const HOST = '127.0.0.1';
const CALLED_AE = 'DRAW_SCP';
const CT_FILE = join(TESTDATA_DICOM, 'CT_small.dcm');
const SCU_TIMEOUTS = { artimMs: 10_000, acseMs: 10_000, networkMs: 30_000 };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dataDir(): Promise<DataDir> {
  const dir = await createDataDir('service-lifecycle-');
  cleanups.push(() => dir.remove());
  return dir;
}

/** Kills the process at the end of the test if it is still running. */
function killLater(serve: ServeProcess): ServeProcess {
  cleanups.push(async () => {
    if (serve.child.exitCode === null && serve.child.signalCode === null) {
      serve.child.kill('SIGKILL');
      await serve.exited;
    }
  });
  return serve;
}

function serveArgs(dir: DataDir, port: number, extra: readonly string[] = []): string[] {
  return [
    '--data-dir',
    dir.path,
    '--dicom-host',
    HOST,
    '--dicom-port',
    String(port),
    '--log-level',
    'info',
    ...extra,
  ];
}

function portOf(serve: ServeProcess): number {
  return Number(serve.lines.find((line) => line.msg === 'DICOM service listening')?.port);
}

/** A store whose data set stops halfway until `finish` is called. */
interface SlowStore {
  readonly association: Association;
  readonly sopInstanceUid: string;
  /** Resolves once the first half of the data set went out. */
  readonly halfSent: Promise<void>;
  /** The final status, or the error that ended the store. */
  readonly outcome: Promise<number | Error>;
  finish(): void;
}

async function startSlowStore(port: number, callingAeTitle: string): Promise<SlowStore> {
  const file = await inspectFile(CT_FILE);
  const dataset = (await readFile(CT_FILE)).subarray(file.datasetOffset);
  const association = await requestAssociation({
    host: HOST,
    port,
    callingAeTitle,
    calledAeTitle: CALLED_AE,
    contexts: [{ abstractSyntax: file.sopClassUid, transferSyntaxes: [file.transferSyntaxUid] }],
    timeouts: SCU_TIMEOUTS,
  });
  const channel = new DimseChannel(association, { dimseTimeoutMs: 30_000 });
  const accepted = channel.findContext(file.sopClassUid, file.transferSyntaxUid);
  if (accepted === undefined) throw new Error('no context accepted for CT_small.dcm');
  let markHalfSent: () => void = () => undefined;
  const halfSent = new Promise<void>((resolve) => {
    markHalfSent = resolve;
  });
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  // An even split: peers refuse odd fragment lengths.
  const half = Math.floor(dataset.length / 4) * 2;
  async function* slowly(): AsyncGenerator<Buffer> {
    yield dataset.subarray(0, half);
    markHalfSent();
    await finished;
    yield dataset.subarray(half);
  }
  const outcome = (async () => {
    let status: number | undefined;
    for await (const response of channel.request(
      accepted.id,
      {
        commandField: CommandField.CStoreRq,
        affectedSopClassUid: file.sopClassUid,
        affectedSopInstanceUid: file.sopInstanceUid,
        priority: Priority.Medium,
        hasDataset: true,
      },
      slowly(),
    )) {
      status = response.command.status;
    }
    return status ?? -1;
  })().catch((error: unknown) => error as Error);
  cleanups.push(async () => {
    finish();
    if (association.isEstablished) association.abort();
    await association.closed;
  });
  return { association, sopInstanceUid: file.sopInstanceUid, halfSent, outcome, finish };
}

async function indexedInstanceUids(dir: DataDir): Promise<string[]> {
  const rows = await dir.database.db.selectFrom('instances').select('sop_instance_uid').execute();
  return rows.map((row) => row.sop_instance_uid);
}

/** Stored files, and files being written (temporary ones in the incoming folder). */
async function filesUnder(dir: DataDir): Promise<string[]> {
  const root = join(dir.path, 'storage');
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .filter((path) => path.split(sep)[0] !== INCOMING_FOLDER || path.endsWith(TEMP_SUFFIX));
}

/** A pid that was a process a moment ago and no longer is. */
function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', '']);
    child.once('error', reject);
    child.once('exit', () => resolve(child.pid!));
  });
}

describe('stopping with an association in flight', () => {
  it('on SIGTERM, lets a store in flight finish within the grace period, then stops', async () => {
    const dir = await dataDir();
    const serve = killLater(await startListening(serveArgs(dir, 0, ['--shutdown-grace', '20'])));
    const store = await startSlowStore(portOf(serve), 'SLOW_STORE');
    await store.halfSent;

    serve.child.kill('SIGTERM');
    await serve.waitForLine(
      (line) => line.msg === 'waiting for open associations' && line.open === 1,
      "'waiting for open associations'",
    );
    // Stopped listening: no new association comes in while the open one finishes.
    expect(await accepts(portOf(serve))).toBe(false);
    store.finish();
    expect(await store.outcome, serve.output()).toBe(Status.Success);
    await store.association.release();

    const exit = await serve.waitForExit();
    expect(exit, serve.output()).toEqual({ code: 0, signal: null });
    expect(await indexedInstanceUids(dir)).toEqual([store.sopInstanceUid]);
    const status = await dir.serviceStatus.get();
    expect(status, serve.output()).toMatchObject({
      state: 'stopped',
      pid: serve.child.pid,
      filesReceived: 1,
      activeAssociations: 0,
    });
    expect(status?.stoppedAt).not.toBeNull();
    const rows = await dir.rows({ aeTitle: 'SLOW_STORE' });
    expect(rows.map((row) => [row.type, row.status])).toEqual([
      ['ASSOCIATE', 'success'],
      ['C-STORE', 'success'],
      ['RELEASE', 'success'],
    ]);
  });

  it('on SIGTERM, aborts a store still in flight after the grace period and keeps nothing of it', async () => {
    const dir = await dataDir();
    const serve = killLater(await startListening(serveArgs(dir, 0, ['--shutdown-grace', '1'])));
    const store = await startSlowStore(portOf(serve), 'STALLED_STORE');
    await store.halfSent;

    serve.child.kill('SIGTERM');
    const closed = await store.association.closed;
    expect(closed.outcome, serve.output()).toBe('aborted-by-peer');
    // Our request waits on its stalled data set source even after the abort: let the source
    // end, and the request fails.
    store.finish();
    expect(await store.outcome, serve.output()).toBeInstanceOf(Error);

    const exit = await serve.waitForExit();
    expect(exit, serve.output()).toEqual({ code: 0, signal: null });
    expect(await indexedInstanceUids(dir)).toEqual([]);
    expect(await filesUnder(dir)).toEqual([]);
    // The store cut off is a failure, counted in the status; the association ends in an abort.
    const status = await dir.serviceStatus.get();
    expect(status, serve.output()).toMatchObject({
      state: 'stopped',
      filesReceived: 0,
      errors: 1,
      activeAssociations: 0,
    });
    const rows = await dir.rows({ aeTitle: 'STALLED_STORE' });
    expect(rows.at(0)).toMatchObject({ type: 'ASSOCIATE', status: 'success' });
    expect(rows.filter((row) => row.type === 'C-STORE').map((row) => row.status)).toEqual([
      'failure',
    ]);
    expect(rows.filter((row) => row.type === 'ABORT')).toMatchObject([
      { status: 'failure', message: 'aborted: service-user' },
    ]);
    expect(serve.lines.filter((line) => Number(line.level) >= 50)).toEqual([]);
  });
});

describe('starting', () => {
  it('exits non-zero when the port is in use, with the status in error naming the port', async () => {
    const occupier = net.createServer();
    await new Promise<void>((resolve, reject) => {
      occupier.once('error', reject);
      occupier.listen(0, HOST, () => resolve());
    });
    cleanups.push(() => new Promise((resolve) => occupier.close(() => resolve())));
    const port = (occupier.address() as net.AddressInfo).port;
    const dir = await dataDir();

    const serve = killLater(startServe(serveArgs(dir, port)));
    const exit = await serve.waitForExit();
    expect(exit.code, serve.output()).not.toBe(0);
    expect(exit.code, serve.output()).not.toBeNull();
    const status = await dir.serviceStatus.get();
    expect(status, serve.output()).toMatchObject({
      state: 'error',
      pid: serve.child.pid,
      lastError: `port ${port} is already in use on ${HOST}`,
    });
    expect(status?.lastErrorAt).not.toBeNull();
  });

  it('corrects a stale "running" status left by a dead process, keeps its totals and runs', async () => {
    const dir = await dataDir();
    const pid = await deadPid();
    await dir.serviceStatus.save({
      state: 'running',
      pid,
      hostname: hostname(),
      startedAt: '2020-01-01T00:00:00.000Z',
      stoppedAt: null,
      activeAssociations: 3,
      filesReceived: 7,
      bytesReceived: 7_000,
      errors: 1,
      lastError: 'an earlier failure',
      lastErrorAt: '2020-01-01T00:01:00.000Z',
      updatedAt: '2020-01-01T00:02:00.000Z',
    });

    const serve = killLater(await startListening(serveArgs(dir, 0)));
    const stale = await serve.waitForLine(
      (line) => String(line.msg).includes('stale service status'),
      "'stale service status'",
    );
    expect(stale, serve.output()).toMatchObject({ level: 40, state: 'running', pid });
    // The status is stored just after the listening line.
    const status = await pollUntil(
      () => dir.serviceStatus.get(),
      (stored) => stored?.state !== 'starting',
      'the status after starting',
    );
    expect(status, serve.output()).toMatchObject({
      state: 'running',
      pid: serve.child.pid,
      activeAssociations: 0,
      filesReceived: 7,
      bytesReceived: 7_000,
      errors: 1,
    });
    expect(status?.startedAt).not.toBe('2020-01-01T00:00:00.000Z');

    expect(await serve.stop(), serve.output()).toEqual({ code: 0, signal: null });
    expect((await dir.serviceStatus.get())?.state).toBe('stopped');
  });

  it('with service_enabled off in the stored settings, does not listen for DICOM, says so, and keeps the web console up', async () => {
    const dir = await dataDir();
    const stored = await dir.settings.update({ service_enabled: false });
    expect(stored.isValid).toBe(true);
    const port = await freePort();

    const serve = killLater(startServe(serveArgs(dir, port)));
    const line = await serve.waitForLine(
      (candidate) =>
        candidate.msg === 'DICOM service not started: service_enabled or auto_start is off',
      "'DICOM service not started'",
    );
    expect(line.level, serve.output()).toBe(40);
    expect(await accepts(port)).toBe(false);
    expect(serve.lines.some((candidate) => candidate.msg === 'DICOM service listening')).toBe(
      false,
    );
    expect((await dir.serviceStatus.get())?.state, serve.output()).toBe('stopped');
    // The process stays up for the web console, from which the service can be started.
    const web = await serve.waitForLine(
      (candidate) => candidate.msg === 'web console and REST API listening',
      "'web console and REST API listening'",
    );
    const health = await fetch(
      `${String(web.url).replace('/dicom-server/', '')}/dicom-server/api/health/`,
    );
    expect(await health.json()).toEqual({ status: 'ok', service: 'stopped' });
    expect(await serve.stop(), serve.output()).toEqual({ code: 0, signal: null });
  });
});
