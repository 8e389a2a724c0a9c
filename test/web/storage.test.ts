/**
 * The storage over the REST API: the status document's intake rate, projection and cleanup
 * job; the rescan, started by an administrator (audited; 403 for a viewer or without CSRF, 409
 * while one runs) and followed by anyone, its report naming the orphan files it indexed, the
 * missing ones whose rows it removed, and the files it left alone (at most 100 listed a kind).
 *
 * Layer: web test. 127.0.0.1, free ports; every wait has a deadline.
 */

import { readdir, unlink, utimes, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendSeries, writeSeries } from '../helpers/series-files.js';
import {
  type As,
  eventually,
  startWebTest,
  type WebSession,
  type WebTest,
} from '../helpers/web.js';

const ROOT = '1.2.826.0.1.3680043.9.7777.42';
const UNREADABLE_FILES = 150;

/** Every file under `dir`, relative to it (folders starting with a dot skipped). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .filter((path) => !path.startsWith('.'));
}

describe('the storage API', () => {
  let web: WebTest;
  let admin: WebSession;
  let viewer: WebSession;
  let storageRoot: string;
  let missingPath: string;
  let orphanPath: string;
  const asAdmin = (): As => ({ session: admin });
  const asViewer = (): As => ({ session: viewer });

  beforeAll(async () => {
    web = await startWebTest({
      settings: { enable_storage_cleanup: true, max_storage_size_gb: 1 },
    });
    admin = await web.loginAdmin();
    viewer = await web.viewer();
    await web.context.controller.start();
    storageRoot = web.context.controller.storageRoot();
    const sent = await writeSeries(join(web.dataDir, 'outgoing'), {
      studyInstanceUid: `${ROOT}.1`,
      seriesInstanceUid: `${ROOT}.1.1`,
      count: 3,
    });
    await sendSeries(web.dicomPort, sent);
    const stored = await filesUnder(storageRoot);
    expect(stored).toHaveLength(3);
    // A stored file removed behind the index's back; a file the index does not know.
    missingPath = stored[0]!;
    await unlink(join(storageRoot, missingPath));
    const [orphan] = await writeSeries(join(storageRoot, 'restored'), {
      studyInstanceUid: `${ROOT}.2`,
      seriesInstanceUid: `${ROOT}.2.1`,
      count: 1,
    });
    orphanPath = relative(storageRoot, orphan!);
    // Not DICOM: enough of them for the rescan to take a moment, and past the listing's end.
    await writeFile(join(storageRoot, 'placeholder'), '');
    for (let n = 0; n < UNREADABLE_FILES; n++) {
      await writeFile(join(storageRoot, `junk-${String(n).padStart(3, '0')}.txt`), 'not DICOM');
    }
    const past = new Date(Date.now() - 3_600_000);
    for (const path of await filesUnder(storageRoot)) {
      await utimes(join(storageRoot, path), past, past);
    }
  });

  afterAll(async () => {
    const errors = (web?.logs ?? []).filter((line) => line.level >= 50);
    await web?.close();
    expect(errors).toEqual([]);
  });

  it('shows the intake rate, the projection and the cleanup job in the status', async () => {
    await web.context.controller.storage.refreshIntake();
    const response = await web.request({ path: 'status/', as: asViewer() });
    expect(response.statusCode).toBe(200);
    const status = response.json();
    expect(status.storageIntakeBytesPerDay).toBeGreaterThan(0);
    expect(status.storageDaysUntilFull).toBeGreaterThan(1000);
    expect(status.storageCleanup).toEqual({
      retentionDays: 30,
      lowWaterBytes: Math.floor(1024 ** 3 * 0.8),
      lastRun: null,
    });
  });

  it('answers an idle rescan state to anyone, and lets only an administrator start one', async () => {
    const idle = await web.request({ path: 'storage/rescan', as: asViewer() });
    expect(idle.statusCode).toBe(200);
    expect(idle.json()).toMatchObject({ state: 'idle', report: null });
    expect((await web.request({ path: 'storage/rescan' })).statusCode).toBe(401);
    const byViewer = await web.request({
      method: 'POST',
      path: 'storage/rescan',
      as: asViewer(),
    });
    expect(byViewer.statusCode).toBe(403);
    const withoutCsrf = await web.request({
      method: 'POST',
      path: 'storage/rescan',
      as: { session: admin, csrf: false },
    });
    expect(withoutCsrf.statusCode).toBe(403);
    expect((await web.request({ path: 'storage/rescan', as: asViewer() })).json().state).toBe(
      'idle',
    );
  });

  it('runs one rescan at a time and reports orphan and missing files', async () => {
    const [first, second] = await Promise.all([
      web.request({ method: 'POST', path: 'storage/rescan', as: asAdmin() }),
      web.request({ method: 'POST', path: 'storage/rescan', as: asAdmin() }),
    ]);
    expect([first!.statusCode, second!.statusCode].sort()).toEqual([202, 409]);
    const started = first!.statusCode === 202 ? first! : second!;
    const refused = first!.statusCode === 409 ? first! : second!;
    expect(started.json()).toMatchObject({ state: 'running', startedBy: 'admin' });
    expect(refused.json().error).toBe('a storage rescan is already running');

    const done = await eventually(async () => {
      const body = (await web.request({ path: 'storage/rescan', as: asViewer() })).json();
      return body.state === 'running' ? undefined : body;
    }, 'the rescan to finish');
    expect(done).toMatchObject({ state: 'done', error: null, startedBy: 'admin' });
    expect(done.report).toMatchObject({
      orphanFiles: 1,
      missingFiles: 1,
      duplicateFiles: 0,
      unreadableFiles: UNREADABLE_FILES + 1,
      recentFiles: 0,
      filesChecked: 2 + 1 + UNREADABLE_FILES + 1,
    });
    expect(done.report.listed.orphan).toEqual([orphanPath]);
    expect(done.report.listed.missing).toEqual([missingPath]);
    expect(done.report.listed.unreadable).toHaveLength(100);

    const audit = await web.request({ path: 'audit/', as: asAdmin(), query: { limit: '50' } });
    expect(audit.statusCode).toBe(200);
    const entries = audit.json() as { action: string; outcome: string; username: string }[];
    const rescans = entries.filter((entry) => entry.action.startsWith('storage rescan'));
    expect(rescans.map(({ action, outcome, username }) => [action, outcome, username])).toEqual(
      expect.arrayContaining([
        ['storage rescan', 'success', 'admin'],
        ['storage rescan', 'failure', 'admin'],
        ['storage rescan finished', 'success', 'admin'],
      ]),
    );

    // The index and usage now match the disk: the status counts the orphan and not the missing.
    const status = (await web.request({ path: 'status/', as: asViewer() })).json();
    const recent = (await web.request({ path: 'studies/recent', as: asViewer() })).json() as {
      studyInstanceUid: string;
      numberOfInstances: number;
    }[];
    expect(recent.map((study) => [study.studyInstanceUid, study.numberOfInstances]).sort()).toEqual(
      [
        [`${ROOT}.1`, 2],
        [`${ROOT}.2`, 1],
      ],
    );
    expect(status.storageUsedBytes).toBeGreaterThan(0);
  });
});
