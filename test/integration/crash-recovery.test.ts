/**
 * Crash recovery: the server runs as a child process (`dicom-server serve`, SQLite, fsync
 * durability) and receives 200 small instances over four associations from our own SCU, which
 * records each success status it gets. Part-way, with one more data set half received, the
 * server is killed with SIGKILL, then started again on the same data directory. Every instance
 * that got a success is there as a complete file and indexed; no temporary file is left in the
 * incoming folder after start-up; no index row names a missing file; the restarted server
 * takes the rest. And a write that fails (file size limit, as a full disk) answers 0xA700 and
 * leaves nothing.
 *
 * Layer: integration test (process level). Every wait has a deadline.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/dialect.js';
import { readFileMeta } from '../../src/dicom/part10.js';
import type { DatasetToken } from '../../src/dicom/reader/dataset-reader.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import type { Vr } from '../../src/dicom/vr.js';
import { encodeTokens } from '../../src/dicom/writer/dataset-writer.js';
import type { Association } from '../../src/network/association/association.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { DimseChannel } from '../../src/network/dimse/channel.js';
import { CommandField, encodeCommand } from '../../src/network/dimse/command.js';
import { Status } from '../../src/network/dimse/status.js';
import { INCOMING_FOLDER } from '../../src/server/instance-store.js';
import { TEMP_SUFFIX } from '../../src/storage/atomic-writer.js';
import { within } from '../helpers/wait.js';

const MR_STORAGE = '1.2.840.10008.5.1.4.1.1.4';
const ROOT = '1.2.826.0.1.3680043.9.7777.40';
const AE_TITLE = 'CRASH_SCP';
const INSTANCES = 200;
const ASSOCIATIONS = 4;
/** Successes before the kill: part-way through the send. */
const KILL_AFTER = 100;
/** Pixel data of the instance left half received at the kill: larger than any other. */
const PARTIAL_PIXEL_BYTES = 2 * 1024 * 1024;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Polls an async check until it holds; rejects after `timeoutMs`. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// ---- synthetic instances ----------------------------------------------------------------------

function field(tag: number, vr: Vr, value: string | Buffer): DatasetToken {
  let bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1');
  if (bytes.length % 2 === 1) bytes = Buffer.concat([bytes, Buffer.from(vr === 'UI' ? '\0' : ' ')]);
  return { type: 'element', tag, vr, length: bytes.length, offset: 0, value: bytes };
}

/** A small MR instance: series `n % 5` of one study, its own pixel pattern. */
function instance(n: number, pixelBytes: number): { uid: string; dataset: Buffer } {
  const uid = `${ROOT}.1.${n % 5}.${n}`;
  const dataset = encodeTokens(
    [
      field(0x00080016, 'UI', MR_STORAGE),
      field(0x00080018, 'UI', uid),
      field(0x00080060, 'CS', 'MR'),
      field(0x00100010, 'PN', 'Crash^Test'),
      field(0x00100020, 'LO', 'CRASH-1'),
      field(0x0020000d, 'UI', `${ROOT}.1`),
      field(0x0020000e, 'UI', `${ROOT}.1.${n % 5}`),
      field(0x00200013, 'IS', String(n)),
      field(0x7fe00010, 'OW', Buffer.alloc(pixelBytes, n % 251)),
    ],
    { isExplicitVr: true, isLittleEndian: true },
  );
  return { uid, dataset };
}

// ---- the server process -----------------------------------------------------------------------

interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly logs: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
}

/**
 * Starts `dicom-server serve` on a free port; resolves once it listens. With a file size limit
 * (RLIMIT_FSIZE, SIGXFSZ ignored) every write past it fails with EFBIG, as on a full disk.
 */
async function startServerProcess(
  dataDir: string,
  fileSizeLimitKiB?: number,
): Promise<ServerProcess> {
  const limit =
    fileSizeLimitKiB === undefined
      ? []
      : ['bash', '-c', `trap '' XFSZ; ulimit -f ${fileSizeLimitKiB}; exec "$0" "$@"`];
  const [command, ...args] = [
    ...limit,
    process.execPath,
    '--import',
    'tsx',
    'src/cli/main.ts',
    'serve',
    '--dicom-host',
    '127.0.0.1',
    '--dicom-port',
    '0',
    '--http-host',
    '127.0.0.1',
    '--http-port',
    '0',
    '--ae-title',
    AE_TITLE,
    '--data-dir',
    dataDir,
    '--log-level',
    'info',
  ];
  const child = spawn(command!, args, { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') logs.push(JSON.parse(line));
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const listening = async () => {
    while (true) {
      const line = logs.find((entry) => entry.msg === 'DICOM service listening');
      if (line !== undefined) return Number(line.port);
      if (child.exitCode !== null) throw new Error(`server exited early:\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const port = await within(listening(), 20_000, `server start (stderr: ${stderr})`);
  return { child, port, logs, exited };
}

// ---- our SCU ----------------------------------------------------------------------------------

async function openScu(port: number): Promise<{ association: Association; channel: DimseChannel }> {
  const association = await within(
    requestAssociation({
      host: '127.0.0.1',
      port,
      callingAeTitle: 'CRASH_SCU',
      calledAeTitle: AE_TITLE,
      contexts: [
        { abstractSyntax: MR_STORAGE, transferSyntaxes: [TransferSyntax.ExplicitVRLittleEndian] },
      ],
    }),
    10_000,
    'association',
  );
  cleanups.push(async () => {
    association.abort();
    await within(association.closed, 5_000, 'association close');
  });
  return { association, channel: new DimseChannel(association, { dimseTimeoutMs: 20_000 }) };
}

/** Sends one instance; the status, or undefined when the connection went first. */
async function storeOne(
  scu: { channel: DimseChannel },
  item: { uid: string; dataset: Buffer },
): Promise<number | undefined> {
  const context = scu.channel.findContext(MR_STORAGE)!;
  try {
    let status: number | undefined;
    for await (const response of scu.channel.request(
      context.id,
      {
        commandField: CommandField.CStoreRq,
        affectedSopClassUid: MR_STORAGE,
        affectedSopInstanceUid: item.uid,
        priority: 0,
        hasDataset: true,
      },
      item.dataset,
    )) {
      status = response.command.status;
    }
    return status;
  } catch {
    return undefined;
  }
}

// ---- what is on disk and in the index ---------------------------------------------------------

async function incomingFiles(dataDir: string): Promise<{ name: string; size: number }[]> {
  const folder = join(dataDir, 'storage', INCOMING_FOLDER);
  // The temporary files in the incoming folder and its slots (the store also keeps its small
  // state file there). A running server keeps empty files opened ahead for the next receptions:
  // only a stopped one has none.
  const entries = await readdir(folder, { recursive: true, withFileTypes: true }).catch(() => []);
  const files: { name: string; size: number }[] = [];
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith(TEMP_SUFFIX)) continue;
    const size = await stat(join(entry.parentPath, entry.name)).then(
      (s) => s.size,
      () => -1,
    );
    if (size >= 0) files.push({ name: entry.name, size });
  }
  return files;
}

describe('the server killed with SIGKILL during a 200-instance send', () => {
  it('keeps every acknowledged instance complete and indexed, and cleans up on restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'crash-recovery-test-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const items = Array.from({ length: INSTANCES }, (_, n) =>
      instance(n, n % 20 === 0 ? 96 * 1024 : 2 * 1024 + n),
    );
    const sent = new Map(items.map((item) => [item.uid, item.dataset]));

    // ---- first run: send until part-way, then kill -------------------------------------------
    const first = await startServerProcess(dataDir);
    const acknowledged = new Set<string>();
    let reachedHalfway!: () => void;
    const halfway = new Promise<void>((resolve) => {
      reachedHalfway = resolve;
    });
    let isKilled = false;
    const scus = await Promise.all(Array.from({ length: ASSOCIATIONS }, () => openScu(first.port)));
    const senders = scus.map(async (scu, k) => {
      for (const item of items.filter((_, n) => n % ASSOCIATIONS === k)) {
        if (isKilled) return;
        const status = await storeOne(scu, item);
        if (status === undefined) return;
        expect(status).toBe(Status.Success);
        acknowledged.add(item.uid);
        if (acknowledged.size >= KILL_AFTER) reachedHalfway();
      }
    });
    await within(halfway, 30_000, `${KILL_AFTER} acknowledged instances`);

    // One more data set, half sent: its temporary file is on disk when the server dies.
    const partial = instance(INSTANCES, PARTIAL_PIXEL_BYTES);
    const partialScu = await openScu(first.port);
    const contextId = partialScu.channel.findContext(MR_STORAGE)!.id;
    partialScu.association.sendPData(
      contextId,
      true,
      true,
      encodeCommand({
        commandField: CommandField.CStoreRq,
        messageId: 1,
        affectedSopClassUid: MR_STORAGE,
        affectedSopInstanceUid: partial.uid,
        priority: 0,
        hasDataset: true,
      }),
    );
    const half = partial.dataset.subarray(0, partial.dataset.length / 2);
    for (let offset = 0; offset < half.length; offset += 64 * 1024) {
      partialScu.association.sendPData(
        contextId,
        false,
        false,
        half.subarray(offset, offset + 64 * 1024),
      );
    }
    // The writer holds back at most one 256 KiB buffer until the data set is complete.
    await eventually(
      async () =>
        (await incomingFiles(dataDir)).some((file) => file.size >= half.length - 256 * 1024),
      10_000,
      'the half-received data set in the incoming folder',
    );

    isKilled = true;
    first.child.kill('SIGKILL');
    await within(first.exited, 10_000, 'the killed server to exit');
    await within(Promise.all(senders), 30_000, 'the senders to stop');
    expect(acknowledged.size).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(acknowledged.size).toBeLessThan(INSTANCES);
    // The precondition of the clean-up check: the crash left temporary files behind.
    expect((await incomingFiles(dataDir)).length).toBeGreaterThan(0);

    // ---- second run: start-up cleans, the rest is sent ----------------------------------------
    const second = await startServerProcess(dataDir);
    expect(await incomingFiles(dataDir)).toEqual([]);
    expect(
      second.logs.some((line) => line.msg === 'removed partial files of interrupted receptions'),
    ).toBe(true);
    const scu = await openScu(second.port);
    for (const item of items) {
      if (acknowledged.has(item.uid)) continue;
      expect(await storeOne(scu, item)).toBe(Status.Success);
    }
    await scu.association.release();
    second.child.kill('SIGTERM');
    expect(await within(second.exited, 15_000, 'the server to stop')).toBe(0);

    // ---- what survived ------------------------------------------------------------------------
    const database = await openDatabase({ dataDir });
    cleanups.push(() => database.close());
    const rows = await database.db
      .selectFrom('instances')
      .select(['sop_instance_uid', 'file_path', 'file_size'])
      .execute();
    const byUid = new Map(rows.map((row) => [row.sop_instance_uid, row]));
    const storageRoot = join(dataDir, 'storage');

    // No index row names a missing or short file.
    for (const row of rows) {
      const size = await stat(join(storageRoot, row.file_path)).then(
        (s) => s.size,
        () => -1,
      );
      expect(size, row.file_path).toBe(Number(row.file_size));
    }
    // Every acknowledged instance (and, after the second run, every instance) is complete.
    for (const uid of [...acknowledged, ...sent.keys()]) {
      const row = byUid.get(uid);
      expect(row, `${uid} indexed`).toBeDefined();
      const file = await readFile(join(storageRoot, row!.file_path));
      const meta = readFileMeta(file);
      expect(meta.mediaStorageSopInstanceUid).toBe(uid);
      expect(file.subarray(meta.datasetOffset).equals(sent.get(uid)!), uid).toBe(true);
    }
    expect(byUid.has(partial.uid)).toBe(false);
    expect(rows).toHaveLength(INSTANCES);
    // No file in storage that the index does not know: one renamed into place but not yet
    // indexed when the server was killed is indexed (or removed) at the next start.
    const indexedPaths = new Set(rows.map((row) => row.file_path));
    const onDisk = (await readdir(storageRoot, { recursive: true, withFileTypes: true }))
      .filter(
        (entry) =>
          entry.isFile() &&
          !relative(storageRoot, join(entry.parentPath, entry.name)).startsWith('.'),
      )
      .map((entry) => relative(storageRoot, join(entry.parentPath, entry.name)));
    expect(onDisk.filter((path) => !indexedPaths.has(path))).toEqual([]);
    expect(await incomingFiles(dataDir)).toEqual([]);
  });
});

describe('a write that fails while an instance is received', () => {
  it('answers 0xA700, leaves nothing on disk and goes on', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'crash-recovery-test-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    // The database made and migrated first: the limit is for what the server writes as it
    // receives, not for the schema (which grows with every migration).
    await (await openDatabase({ dataDir })).close();
    const server = await startServerProcess(dataDir, 512);
    const scu = await openScu(server.port);
    const big = instance(1, 1024 * 1024);
    const small = instance(2, 1024);
    expect(await storeOne(scu, big)).toBe(Status.OutOfResources);
    expect(await storeOne(scu, small)).toBe(Status.Success);
    await scu.association.release();
    server.child.kill('SIGTERM');
    expect(await within(server.exited, 15_000, 'the server to stop')).toBe(0);

    const database = await openDatabase({ dataDir });
    cleanups.push(() => database.close());
    const rows = await database.db.selectFrom('instances').select('sop_instance_uid').execute();
    expect(rows.map((row) => row.sop_instance_uid)).toEqual([small.uid]);
    const storage = join(dataDir, 'storage');
    // Instances only: the incoming folder keeps the store's state file, and nothing else.
    const files = (await readdir(storage, { recursive: true, withFileTypes: true })).filter(
      (entry) => entry.isFile() && !relative(storage, entry.parentPath).startsWith(INCOMING_FOLDER),
    );
    expect(files.map((entry) => entry.name)).toEqual([`${small.uid}.dcm`]);
    expect(await incomingFiles(dataDir)).toEqual([]);
  });
});
