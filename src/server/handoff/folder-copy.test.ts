import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TESTDATA_DICOM } from '../../../test/helpers/testdata.js';
import { DicomServerError } from '../../errors.js';
import {
  cleanHandlerIncoming,
  copyToHandlerFolder,
  type HandlerManifest,
  MANIFEST_NAME,
} from './folder-copy.js';
import type { HandoffEvent, HandoffFile } from './types.js';

const STUDY_UID = '1.2.826.0.1.3680043.2.1125.7.1';
const SERIES_UID = '1.2.826.0.1.3680043.2.1125.7.1.1';
const SOURCES = ['CT_small.dcm', 'MR_small.dcm', 'rtdose.dcm'];
/** A tmpfs, usually another file system than the temporary folder: for the copy fallback. */
const SECOND_VOLUME = '/dev/shm';
const hasSecondVolume =
  existsSync(SECOND_VOLUME) && statSync(SECOND_VOLUME).dev !== statSync(tmpdir()).dev;

let work: string;
let storage: string;
let handlerRoot: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'handoff-copy-'));
  storage = join(work, 'storage');
  handlerRoot = join(work, 'handler');
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Copies test files into a storage folder of `root` and describes them as stored instances. */
function storeFiles(root: string, names: readonly string[]): HandoffFile[] {
  const folder = join(root, 'PAT1', STUDY_UID, SERIES_UID);
  mkdirSync(folder, { recursive: true });
  return names.map((name, i) => {
    const path = join(folder, `IM${i}.dcm`);
    copyFileSync(join(TESTDATA_DICOM, name), path);
    return {
      sopInstanceUid: `${SERIES_UID}.${i + 1}`,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      path,
      sizeBytes: statSync(path).size,
    };
  });
}

function eventFor(
  files: readonly HandoffFile[],
  type: HandoffEvent['type'] = 'series.completed',
  completion = 1,
): HandoffEvent {
  return {
    type,
    idempotencyKey: `${SERIES_UID}:${completion}`,
    occurredAt: '2025-03-01T10:00:00.000Z',
    series: {
      patientId: 'PAT1',
      patientName: 'Doe^Jane',
      studyInstanceUid: STUDY_UID,
      studyDate: '20250301',
      studyDescription: 'Head',
      accessionNumber: 'ACC7',
      seriesInstanceUid: SERIES_UID,
      seriesNumber: 3,
      seriesDescription: 'Axial',
      modality: 'CT',
      files,
    },
  };
}

function sha256Of(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function readManifest(folder: string): HandlerManifest {
  return JSON.parse(readFileSync(join(folder, MANIFEST_NAME), 'utf8')) as HandlerManifest;
}

function rootEntries(): string[] {
  return readdirSync(handlerRoot).sort();
}

describe('copyToHandlerFolder', () => {
  it('hard-links every file into <root>/<study>/<series> on the same file system', async () => {
    const files = storeFiles(storage, SOURCES);
    const folder = await copyToHandlerFolder(eventFor(files), handlerRoot);
    expect(folder).toBe(join(handlerRoot, STUDY_UID, SERIES_UID));
    expect(readdirSync(folder).sort()).toEqual(
      [...files.map((file) => `${file.sopInstanceUid}.dcm`), MANIFEST_NAME].sort(),
    );
    for (const file of files) {
      const source = statSync(file.path);
      const linked = statSync(join(folder, `${file.sopInstanceUid}.dcm`));
      expect(linked.ino).toBe(source.ino);
      expect(linked.dev).toBe(source.dev);
      expect(source.nlink).toBe(2);
    }
    expect(rootEntries()).toEqual([STUDY_UID]);
  });

  it('writes a manifest with the attributes, names, sizes and SHA-256 of every file', async () => {
    const files = storeFiles(storage, SOURCES);
    const folder = await copyToHandlerFolder(eventFor(files), handlerRoot);
    const expectedFiles = files.map((file) => ({
      name: `${file.sopInstanceUid}.dcm`,
      sopInstanceUid: file.sopInstanceUid,
      sopClassUid: file.sopClassUid,
      transferSyntaxUid: file.transferSyntaxUid,
      sizeBytes: statSync(file.path).size,
      sha256: sha256Of(file.path),
    }));
    expect(readManifest(folder)).toEqual({
      manifestVersion: 1,
      type: 'series.completed',
      idempotencyKey: `${SERIES_UID}:1`,
      occurredAt: '2025-03-01T10:00:00.000Z',
      patient: { id: 'PAT1', name: 'Doe^Jane' },
      study: {
        instanceUid: STUDY_UID,
        date: '20250301',
        description: 'Head',
        accessionNumber: 'ACC7',
      },
      series: {
        instanceUid: SERIES_UID,
        number: 3,
        description: 'Axial',
        modality: 'CT',
        instanceCount: 3,
        totalSizeBytes: expectedFiles.reduce((total, file) => total + file.sizeBytes, 0),
      },
      files: expectedFiles,
    });
    for (const file of expectedFiles) expect(sha256Of(join(folder, file.name))).toBe(file.sha256);
  });

  it.skipIf(!hasSecondVolume)('copies instead of linking across file systems', async () => {
    const otherVolume = mkdtempSync(join(SECOND_VOLUME, 'handoff-copy-'));
    try {
      const files = storeFiles(otherVolume, SOURCES.slice(0, 2));
      const folder = await copyToHandlerFolder(eventFor(files), handlerRoot);
      for (const file of files) {
        const copy = statSync(join(folder, `${file.sopInstanceUid}.dcm`));
        expect(copy.ino).not.toBe(statSync(file.path).ino);
        expect(copy.nlink).toBe(1);
        expect(sha256Of(join(folder, `${file.sopInstanceUid}.dcm`))).toBe(sha256Of(file.path));
      }
      expect(readManifest(folder).files.map((file) => file.sha256)).toEqual(
        files.map((file) => sha256Of(file.path)),
      );
    } finally {
      rmSync(otherVolume, { recursive: true, force: true });
    }
  });

  it('leaves no final folder and no incoming folder when a source file is missing', async () => {
    const files = storeFiles(storage, SOURCES);
    rmSync(files[2]!.path);
    const failure = await copyToHandlerFolder(eventFor(files), handlerRoot).catch(
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(DicomServerError);
    expect((failure as DicomServerError).code).toBe('ERR_HANDOFF_FAILED');
    expect((failure as DicomServerError).details).toMatchObject({
      action: 'copy',
      errorCode: 'ENOENT',
    });
    expect(rootEntries()).toEqual([]);
    // The links made before the failure went with the incoming folder.
    expect(statSync(files[0]!.path).nlink).toBe(1);
  });

  it('keeps the earlier copy intact when its replacement fails part-way', async () => {
    const files = storeFiles(storage, SOURCES);
    const folder = await copyToHandlerFolder(eventFor(files.slice(0, 2)), handlerRoot);
    rmSync(files[2]!.path);
    const update = eventFor(files, 'series.updated', 2);
    await expect(copyToHandlerFolder(update, handlerRoot)).rejects.toMatchObject({
      code: 'ERR_HANDOFF_FAILED',
    });
    expect(readManifest(folder).idempotencyKey).toBe(`${SERIES_UID}:1`);
    expect(readdirSync(folder)).toHaveLength(3);
    expect(rootEntries()).toEqual([STUDY_UID]);
  });

  it('replaces the copy of an earlier completion on series.updated', async () => {
    const files = storeFiles(storage, SOURCES);
    const first = await copyToHandlerFolder(eventFor(files.slice(0, 2)), handlerRoot);
    const update = eventFor([files[1]!, files[2]!], 'series.updated', 2);
    const second = await copyToHandlerFolder(update, handlerRoot);
    expect(second).toBe(first);
    const manifest = readManifest(second);
    expect(manifest.type).toBe('series.updated');
    expect(manifest.idempotencyKey).toBe(`${SERIES_UID}:2`);
    expect(manifest.files.map((file) => file.name)).toEqual([
      `${files[1]!.sopInstanceUid}.dcm`,
      `${files[2]!.sopInstanceUid}.dcm`,
    ]);
    expect(readdirSync(second).sort()).toEqual(
      [...manifest.files.map((f) => f.name), MANIFEST_NAME].sort(),
    );
    // The old copy's link to the first file is gone with it; nothing is left aside.
    expect(statSync(files[0]!.path).nlink).toBe(1);
    expect(rootEntries()).toEqual([STUDY_UID]);
  });

  it('returns the existing folder untouched for an idempotency key it already copied', async () => {
    const files = storeFiles(storage, SOURCES);
    const event = eventFor(files);
    const folder = await copyToHandlerFolder(event, handlerRoot);
    const manifestBefore = statSync(join(folder, MANIFEST_NAME));
    const again = await copyToHandlerFolder(event, handlerRoot);
    expect(again).toBe(folder);
    const manifestAfter = statSync(join(folder, MANIFEST_NAME));
    expect(manifestAfter.ino).toBe(manifestBefore.ino);
    expect(manifestAfter.mtimeMs).toBe(manifestBefore.mtimeMs);
    expect(rootEntries()).toEqual([STUDY_UID]);
  });

  it('refuses a series UID that is not fit to be a folder name', async () => {
    const files = storeFiles(storage, SOURCES.slice(0, 1));
    const event = eventFor(files);
    const bad = { ...event, series: { ...event.series, seriesInstanceUid: '../escape' } };
    await expect(copyToHandlerFolder(bad, handlerRoot)).rejects.toMatchObject({
      code: 'ERR_HANDOFF_FAILED',
      cause: { code: 'ERR_INVALID_UID' },
    });
    expect(readdirSync(work)).toEqual(['storage']);
  });
});

describe('cleanHandlerIncoming', () => {
  it('removes folders left by copies cut short and keeps finished series', async () => {
    const files = storeFiles(storage, SOURCES.slice(0, 1));
    await copyToHandlerFolder(eventFor(files), handlerRoot);
    mkdirSync(join(handlerRoot, '.incoming-abc123'));
    copyFileSync(files[0]!.path, join(handlerRoot, '.incoming-abc123', 'partial.dcm'));
    mkdirSync(join(handlerRoot, '.replaced-0011aa'));
    expect(await cleanHandlerIncoming(handlerRoot)).toBe(2);
    expect(rootEntries()).toEqual([STUDY_UID]);
  });

  it('finds nothing to clean in a handler folder not yet made', async () => {
    expect(await cleanHandlerIncoming(join(work, 'absent'))).toBe(0);
  });
});
