/**
 * Start-up after an unclean stop: files that reached their final name but not the index are
 * indexed from their own header; a stale copy of an instance indexed elsewhere is removed; after
 * a clean stop nothing is checked.
 */

import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/dialect.js';
import {
  IndexRepository,
  type InstanceRecord,
} from '../../src/db/repositories/index-repository.js';
import { readFileMeta } from '../../src/dicom/part10.js';
import {
  FileInstanceStore,
  INCOMING_FOLDER,
  type StorageOptions,
} from '../../src/server/instance-store.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

const directories: string[] = [];
afterEach(async () => {
  for (const dir of directories.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function setUp(): Promise<{ dataDir: string; options: StorageOptions }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'reconcile-'));
  directories.push(dataDir);
  return {
    dataDir,
    options: {
      root: join(dataDir, 'storage'),
      structure: 'flat',
      naming: 'sop_uid',
      maxStorageBytes: 0,
      durability: 'os',
      duplicatePolicy: 'keep_first',
    },
  };
}

/** Opens the store over the data directory, as a server start does, and closes it uncleanly or not. */
async function startAndStop(dataDir: string, options: StorageOptions, isClean: boolean) {
  const database = await openDatabase({ dataDir });
  const index = new IndexRepository(database);
  const store = await FileInstanceStore.open(options, index, pino({ level: 'silent' }));
  if (isClean) await store.close();
  return { database, index, store };
}

/** The index record of a test file stored under `filePath`. */
function recordOf(file: Buffer, filePath: string): InstanceRecord {
  const meta = readFileMeta(file);
  return {
    patientId: 'P',
    issuerOfPatientId: '',
    patientName: null,
    patientBirthDate: null,
    patientSex: null,
    studyInstanceUid: '1.2.3',
    studyDate: null,
    studyTime: null,
    accessionNumber: null,
    studyId: null,
    studyDescription: null,
    referringPhysicianName: null,
    patientAge: null,
    seriesInstanceUid: '1.2.3.4',
    modality: 'CT',
    seriesNumber: null,
    seriesDescription: null,
    bodyPartExamined: null,
    seriesDate: null,
    seriesTime: null,
    protocolName: null,
    sopInstanceUid: meta.mediaStorageSopInstanceUid!,
    sopClassUid: meta.mediaStorageSopClassUid!,
    instanceNumber: null,
    transferSyntaxUid: meta.transferSyntaxUid!,
    filePath,
    fileSize: file.length,
    callingAe: 'X',
    receivedAt: new Date().toISOString(),
  };
}

describe('start-up after an unclean stop', () => {
  it('indexes a file that reached storage but not the index, from its own header', async () => {
    const { dataDir, options } = await setUp();
    const first = await startAndStop(dataDir, options, false);
    await first.database.close();
    // As if the process died between the rename and the index commit.
    const original = await readFile(join(TESTDATA_DICOM, 'CT_small.dcm'));
    const uid = readFileMeta(original).mediaStorageSopInstanceUid!;
    await copyFile(join(TESTDATA_DICOM, 'CT_small.dcm'), join(options.root, `${uid}.dcm`));

    const second = await startAndStop(dataDir, options, true);
    const found = await second.index.findInstance(uid);
    expect(found).toMatchObject({ filePath: `${uid}.dcm`, fileSize: original.length });
    expect(await second.index.counts()).toEqual({
      patients: 1,
      studies: 1,
      series: 1,
      instances: 1,
    });
    expect(second.store.usedBytes).toBe(original.length);
    await second.database.close();
  });

  it('removes a stale copy of an instance the index holds under another path', async () => {
    const { dataDir, options } = await setUp();
    const first = await startAndStop(dataDir, options, false);
    const original = await readFile(join(TESTDATA_DICOM, 'CT_small.dcm'));
    const uid = readFileMeta(original).mediaStorageSopInstanceUid!;
    await writeFile(join(options.root, `${uid}.dcm`), original);
    await first.index.addInstances([recordOf(original, `${uid}.dcm`)]);
    await first.database.close();
    // An overwrite cut short: the old file under another name is still there.
    await mkdir(join(options.root, 'old'), { recursive: true });
    await writeFile(join(options.root, 'old', `${uid}.dcm`), original);

    const second = await startAndStop(dataDir, options, true);
    await expect(readFile(join(options.root, 'old', `${uid}.dcm`))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect((await second.index.findInstance(uid))?.filePath).toBe(`${uid}.dcm`);
    await second.database.close();
  });

  it('removes the row of an instance received since the previous start whose file never reached the disk', async () => {
    const { dataDir, options } = await setUp();
    const first = await startAndStop(dataDir, options, false);
    const original = await readFile(join(TESTDATA_DICOM, 'CT_small.dcm'));
    const uid = readFileMeta(original).mediaStorageSopInstanceUid!;
    // As if power failed after the index was flushed but before the file's folder was: the row
    // is there, the file is not. Its sender got no success and sends it again.
    await first.index.addInstances([recordOf(original, `${uid}.dcm`)]);
    // An older row whose file is gone is not the start-up's business (a rescan's).
    const older = await readFile(join(TESTDATA_DICOM, 'MR_small.dcm'));
    const olderUid = readFileMeta(older).mediaStorageSopInstanceUid!;
    await first.index.addInstances([
      { ...recordOf(older, `${olderUid}.dcm`), receivedAt: '2020-01-01T00:00:00.000Z' },
    ]);
    await first.database.close();

    const second = await startAndStop(dataDir, options, true);
    expect(await second.index.findInstance(uid)).toBeUndefined();
    expect(await second.index.findInstance(olderUid)).toBeDefined();
    await second.database.close();
  });

  it('checks nothing after a clean stop', async () => {
    const { dataDir, options } = await setUp();
    const first = await startAndStop(dataDir, options, true);
    await first.database.close();
    const original = await readFile(join(TESTDATA_DICOM, 'CT_small.dcm'));
    const uid = readFileMeta(original).mediaStorageSopInstanceUid!;
    await writeFile(join(options.root, `${uid}.dcm`), original);

    const second = await startAndStop(dataDir, options, true);
    expect(await second.index.findInstance(uid)).toBeUndefined();
    expect(
      JSON.parse(await readFile(join(options.root, INCOMING_FOLDER, 'state.json'), 'utf8')),
    ).toMatchObject({
      isCleanShutdown: true,
    });
    await second.database.close();
  });
});
