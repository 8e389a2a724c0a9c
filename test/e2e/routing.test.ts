/**
 * End to end: the console's Routing page in headless Chromium (playwright-core, Debian's
 * `chromium`) against a real `dicom-server serve` run from source, with DCMTK's `storescu` as
 * the modality and `storescp` as a destination that works; another destination's port has
 * nothing listening. One walk, each step named in a failure: a rule added through the form
 * (stored as the form shows it: conditions and destinations), edited, a bad pattern answered
 * with the API's message beside that pattern; an instance sent with `storescu` is forwarded
 * (storescp holds it) and the page shows, without a reload, the working destination reachable
 * and the other failing with its error, its failed job in the queue; Retry asks, retries (the
 * audit log has it) and the job fails again; a viewer sees it all without buttons; a disabled
 * rule queues nothing for an instance it matches, enabled again it does; the rule deleted, its
 * jobs stay. Every browser console error, page error and failed API answer but the one bad
 * pattern fails the test. Screenshots go to test-artifacts/screenshots/routing-*.png.
 *
 * Needs the built console (`npm run build`) and Chromium: DICOM_SERVER_TEST_CHROMIUM or
 * `chromium` on the PATH. Without Chromium the test fails, saying so: it is never skipped.
 *
 * Layer: test (end to end).
 */

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserRepository } from '../../src/db/repositories/user-repository.js';
import { readFileMeta } from '../../src/dicom/part10.js';
import { hashPassword } from '../../src/web/auth.js';
import {
  apiGet,
  BrowserWalk,
  HOST,
  launchChromium,
  logIn,
  navLink,
  openPage,
  screenshot,
  sendWithStorescu,
  startConsoleServe,
  stopServeCleanly,
  stopServeIfRunning,
  waitForText,
} from '../helpers/browser.js';
import { type BackgroundTool, startTool } from '../helpers/dcmtk.js';
import { freePort, waitForListener } from '../helpers/net.js';
import { writeSeries } from '../helpers/series-files.js';
import { createDataDir, type DataDir, type ServeProcess } from '../helpers/serve-process.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

const ADMIN = { username: 'admin', password: 'routing-admin-password-1' } as const;
const VIEWER = { username: 'routing-viewer', password: 'routing-viewer-password-1' } as const;
const CT_FILE = join(TESTDATA_DICOM, 'CT_small.dcm');
/** The destination that works (storescp) and the one whose port nothing listens on. */
const ARCHIVE = 'ARCHIVE';
const DEAD_END = 'DEAD_END';
const RULE = 'CT to archive';
const SERIES_ROOT = '1.2.826.0.1.3680043.9.7777.95';

let browser: Browser | undefined;
let serve: ServeProcess | undefined;
let dir: DataDir | undefined;
let storescp: BackgroundTool | undefined;
let received: string | undefined;
const walk = new BrowserWalk(() => serve);
const step = walk.step.bind(walk);

/** Sends files with storescu as the modality to the port the settings name. */
async function storescu(files: readonly string[]): Promise<void> {
  const port = (await dir?.settings.get())?.settings.port;
  if (port === undefined) throw new Error('storescu before the data directory was made');
  await sendWithStorescu(port, files);
}

interface QueueAnswer {
  readonly total: number;
  readonly items: { id: number; destination: string; state: string; sopInstanceUid: string }[];
}

describe('the Routing page in Chromium', () => {
  let consoleUrl = '';
  let archivePort = 0;
  let deadPort = 0;

  beforeAll(async () => {
    const launching = launchChromium();
    received = await mkdtemp(join(tmpdir(), 'routing-e2e-received-'));
    archivePort = await freePort();
    storescp = await startTool('storescp', ['-od', received, String(archivePort)], 100);
    await waitForListener(archivePort);
    deadPort = await freePort();
    dir = await createDataDir('routing-e2e-');
    const stored = await dir.settings.update({
      host: HOST,
      port: await freePort(),
      durability: 'os',
    });
    if (!stored.isValid) throw new Error(`settings rejected: ${JSON.stringify(stored.errors)}`);
    for (const [ae_title, port] of [
      [ARCHIVE, archivePort],
      [DEAD_END, deadPort],
    ] as const) {
      const added = await dir.settings.addAllowedAe({ ae_title, host: HOST, port });
      if (!added.isValid) throw new Error(`AE title rejected: ${JSON.stringify(added.errors)}`);
    }
    ({ serve, consoleUrl } = await startConsoleServe(dir, ADMIN.password));
    // After the first start, which makes the administrator only while there is no user.
    await new UserRepository(dir.database).add(
      VIEWER.username,
      await hashPassword(VIEWER.password),
      'viewer',
    );
    browser = await launching;
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stopServeIfRunning(serve);
    await storescp?.stop();
    await dir?.remove();
    if (received !== undefined) await rm(received, { recursive: true, force: true });
  });

  it('edits rules, shows destinations failing and reachable live, retries a failed job', async () => {
    if (browser === undefined || serve === undefined || dir === undefined)
      throw new Error('not started');
    const launched = browser;
    const running = serve;
    const dataDir = dir;
    const { context, page } = await openPage(launched);
    // A failed answer is the browser's console error too: failedAnswers tells them apart.
    walk.watchConsoleErrors(page, (text) => text.startsWith('Failed to load resource'));
    walk.watchPageErrors(page);
    const failedAnswers: string[] = [];
    page.on('response', (response) => {
      if (response.status() >= 400) {
        failedAnswers.push(
          `HTTP ${response.status()} ${response.request().method()} ${new URL(response.url()).pathname}`,
        );
      }
    });

    const rules = page.getByRole('region', { name: 'Rules' });
    const ruleRow = rules.locator('tbody tr').filter({ hasText: RULE });
    const destinations = page.getByRole('region', { name: 'Destinations' });
    // Case matters: the rule's name holds "archive".
    const exactCase = (text: string) => new RegExp(text);
    const destinationRow = (title: string) =>
      destinations.locator('tbody tr').filter({ hasText: exactCase(title) });
    const queueRow = (title: string) =>
      page.locator('#queue tbody tr').filter({ hasText: exactCase(title) });

    await step('log in and open the Routing page: no rules yet', async () => {
      await page.goto(consoleUrl);
      await logIn(page, ADMIN);
      await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
      await navLink(page, 'Routing').click();
      await page.getByRole('heading', { name: 'Routing', level: 1 }).waitFor();
      await rules.getByText(/^No forwarding rules yet/).waitFor();
      await page.locator('#queue').getByText('Nothing has been forwarded yet.').waitFor();
    });

    let ruleId = 0;
    await step('a rule is added through the form and listed in words', async () => {
      await page.getByRole('button', { name: 'Add rule' }).click();
      const dialog = page.getByRole('dialog', { name: 'Add a forwarding rule' });
      await dialog.getByLabel('Name', { exact: true }).fill(RULE);
      await dialog.getByRole('button', { name: 'Add condition' }).click();
      await dialog.getByLabel('Condition 1 attribute').selectOption('modality');
      await dialog.getByLabel('Modality pattern').fill('CT');
      await dialog.getByRole('button', { name: 'Add condition' }).click();
      await dialog.getByLabel('Condition 2 attribute').selectOption('callingAe');
      await dialog.getByLabel('Calling AE title pattern').fill('E2E_*');
      await dialog.getByLabel('Destination 1 AE title').fill(ARCHIVE);
      // The AE title's address, from the AE titles, beside it.
      await dialog.getByText(`${HOST}:${archivePort}`).waitFor();
      await dialog.getByRole('button', { name: 'Add destination' }).click();
      await dialog.getByLabel('Destination 2 AE title').fill(DEAD_END);
      await dialog.getByRole('button', { name: 'Add rule' }).click();
      await dialog.waitFor({ state: 'hidden' });
      await page.getByText(`Rule ${RULE} was added.`).waitFor();
      // The rule comes from the rules read, the addresses from the destinations read: both.
      await waitForText(ruleRow, /Enabled/, 'the new rule in the list');
      const text = await waitForText(
        ruleRow,
        new RegExp(`${ARCHIVE} ${HOST.replaceAll('.', '\\.')}:${archivePort}`),
        'the destinations with their addresses',
      );
      expect(text).toContain('Modality is CT');
      expect(text).toContain('Calling AE title matches E2E_*');
      expect(text).toContain(`${ARCHIVE} ${HOST}:${archivePort}`);
      expect(text).toContain(`${DEAD_END} ${HOST}:${deadPort}`);
      const stored = await apiGet<{ items: Record<string, unknown>[] }>(page, 'routing/rules');
      expect(stored.items).toEqual([
        expect.objectContaining({
          name: RULE,
          description: '',
          isEnabled: true,
          conditions: { modality: 'CT', callingAe: 'E2E_*' },
          destinations: [ARCHIVE, DEAD_END],
        }),
      ]);
      ruleId = Number(stored.items[0]?.id);
      // Named by the rule, not tried yet.
      await waitForText(destinationRow(DEAD_END), /Not tried yet/, 'the new destination');
      await screenshot(page, 'routing-1-rule-added');
    });

    await step('an edit with a bad pattern shows the API’s message beside it', async () => {
      await ruleRow.getByRole('button', { name: 'Edit' }).click();
      const dialog = page.getByRole('dialog', { name: `Edit rule ${RULE}` });
      const pattern = dialog.getByLabel('Modality pattern');
      expect(await pattern.inputValue()).toBe('CT');
      await pattern.fill('CT\\');
      await dialog.getByRole('button', { name: 'Save changes' }).click();
      const message = dialog.getByText('Modality has an empty alternative between backslashes');
      await message.waitFor();
      expect(await pattern.getAttribute('aria-invalid')).toBe('true');
      expect(await pattern.getAttribute('aria-describedby')).toBe(await message.getAttribute('id'));
      await screenshot(page, 'routing-2-bad-pattern', false);
      expect(failedAnswers).toEqual([`HTTP 400 PUT /dicom-server/api/routing/rules/${ruleId}`]);
      failedAnswers.length = 0;

      await pattern.fill('CT\\MR');
      expect(await pattern.getAttribute('aria-invalid')).toBe('false');
      await dialog
        .getByLabel('Description', { exact: true })
        .fill('CT and MR of the test modality');
      await dialog.getByRole('button', { name: 'Save changes' }).click();
      await dialog.waitFor({ state: 'hidden' });
      await page.getByText(`Rule ${RULE} was saved.`).waitFor();
      const text = await waitForText(ruleRow, /Modality is CT or MR/, 'the edited rule');
      expect(text).toContain('CT and MR of the test modality');
      const stored = await apiGet<Record<string, unknown>>(page, `routing/rules/${ruleId}`);
      expect(stored).toMatchObject({
        conditions: { modality: 'CT\\MR', callingAe: 'E2E_*' },
        destinations: [ARCHIVE, DEAD_END],
      });
    });

    let failedJob = '';
    await step(
      'an instance sent with storescu is forwarded: one destination reachable, one failing',
      async () => {
        await storescu([CT_FILE]);
        await waitForText(destinationRow(ARCHIVE), /Reachable/, 'the working destination');
        const dead = await waitForText(
          destinationRow(DEAD_END),
          /Failing/,
          'the failing destination',
        );
        expect(dead).toMatch(/ECONNREFUSED/);
        await waitForText(queueRow(ARCHIVE), /Done/, 'the job to the working destination');
        const failedRow = queueRow(DEAD_END);
        const text = await waitForText(failedRow, /Failed/, 'the job to the failing destination');
        expect(text).toMatch(/ECONNREFUSED/);
        expect(text).toContain(RULE);
        failedJob = (await failedRow.first().locator('td .mono').first().textContent()) ?? '';
        expect(failedJob).toMatch(/^\d+$/);
        // storescp holds the instance.
        const files = await readdir(received ?? '');
        const sent = readFileMeta(await readFile(CT_FILE)).mediaStorageSopInstanceUid;
        const uids = await Promise.all(
          files.map(
            async (name) =>
              readFileMeta(await readFile(join(received ?? '', name))).mediaStorageSopInstanceUid,
          ),
        );
        expect(uids, storescp?.output()).toEqual([sent]);
        await failedRow
          .first()
          .getByRole('button', { name: `Forward job ${failedJob} details` })
          .click();
        await waitForText(page.locator('#queue tr.row-detail'), /ECONNREFUSED/, 'the job details');
        await screenshot(page, 'routing-3-forwarded');
      },
    );

    await step('Retry asks, puts the failed job back, and it fails again', async () => {
      await queueRow(DEAD_END).first().getByRole('button', { name: 'Retry' }).click();
      const confirm = page.getByRole('dialog', { name: `Retry forward job ${failedJob}?` });
      await confirm.getByText(/Retry sends it now/).waitFor();
      await screenshot(page, 'routing-4-retry', false);
      await confirm.getByRole('button', { name: 'Retry', exact: true }).click();
      await confirm.waitFor({ state: 'hidden' });
      await page
        .getByText(`Forward job ${failedJob} to ${DEAD_END} is pending again and is sent now.`)
        .waitFor();
      await waitForText(queueRow(DEAD_END), /Failed/, 'the retried job failed again');
      const audit = await apiGet<{ action: string; outcome: string; detail: string }[]>(
        page,
        'audit/?limit=50',
      );
      expect(
        audit.filter((entry) => entry.action === 'routing retry'),
        JSON.stringify(audit),
      ).toEqual([
        expect.objectContaining({
          outcome: 'success',
          detail: expect.stringMatching(`^${failedJob} `),
        }),
      ]);
    });

    await step('a viewer sees rules, destinations and the queue without buttons', async () => {
      const { context: viewerContext, page: viewerPage } = await openPage(launched);
      walk.watchPageErrors(viewerPage, 'viewer page error');
      await viewerPage.goto(consoleUrl);
      await logIn(viewerPage, VIEWER);
      await navLink(viewerPage, 'Routing').click();
      await viewerPage.getByRole('heading', { name: 'Routing', level: 1 }).waitFor();
      await waitForText(
        viewerPage.getByRole('region', { name: 'Rules' }).locator('tbody tr'),
        /Modality is CT or MR/,
        'the rule, for a viewer',
      );
      await waitForText(
        viewerPage.locator('#queue tbody tr').filter({ hasText: DEAD_END }),
        /Failed/,
        'the failed job, for a viewer',
      );
      for (const name of ['Add rule', 'Edit', 'Disable', 'Delete', 'Retry']) {
        expect(await viewerPage.getByRole('button', { name, exact: true }).count(), name).toBe(0);
      }
      expect(await viewerPage.getByRole('columnheader', { name: 'Actions' }).count()).toBe(0);
      await screenshot(viewerPage, 'routing-5-viewer');
      await viewerContext.close();
    });

    await step('a disabled rule queues nothing; enabled again, it does', async () => {
      const before = await apiGet<QueueAnswer>(page, 'routing/queue');
      await ruleRow.getByRole('button', { name: 'Disable' }).click();
      await page.getByText(`Rule ${RULE} is now disabled.`).waitFor();
      await waitForText(ruleRow, /Disabled/, 'the disabled rule');
      await storescu(
        await writeSeries(join(dataDir.path, 'outgoing', 'a'), {
          studyInstanceUid: `${SERIES_ROOT}.1`,
          seriesInstanceUid: `${SERIES_ROOT}.1.1`,
          count: 1,
        }),
      );
      // Jobs are written before the store is answered: none were.
      expect((await apiGet<QueueAnswer>(page, 'routing/queue')).total).toBe(before.total);

      await ruleRow.getByRole('button', { name: 'Enable' }).click();
      await page.getByText(`Rule ${RULE} is now enabled.`).waitFor();
      await waitForText(ruleRow, /Enabled/, 'the enabled rule');
      await storescu(
        await writeSeries(join(dataDir.path, 'outgoing', 'b'), {
          studyInstanceUid: `${SERIES_ROOT}.2`,
          seriesInstanceUid: `${SERIES_ROOT}.2.1`,
          count: 1,
        }),
      );
      const after = await apiGet<QueueAnswer>(page, 'routing/queue');
      expect(after.total).toBe(before.total + 2);
      expect(new Set(after.items.map((job) => job.sopInstanceUid))).toContain(
        `${SERIES_ROOT}.2.1.1`,
      );
      await waitForText(
        page
          .locator('#queue tbody tr')
          .filter({ hasText: `${SERIES_ROOT}.2.1.1` })
          .filter({
            hasText: exactCase(ARCHIVE),
          }),
        /Done/,
        'the new job to the working destination',
      );
    });

    await step('the rule is deleted after a confirmation; its jobs stay', async () => {
      await ruleRow.getByRole('button', { name: 'Delete' }).click();
      const confirm = page.getByRole('dialog', { name: `Delete rule ${RULE}?` });
      await confirm.getByText(/Jobs it has queued stay in the queue/).waitFor();
      await confirm.getByRole('button', { name: 'Delete', exact: true }).click();
      await confirm.waitFor({ state: 'hidden' });
      await page.getByText(`Rule ${RULE} was deleted.`).waitFor();
      await rules.getByText(/^No forwarding rules yet/).waitFor();
      expect((await apiGet<{ items: unknown[] }>(page, 'routing/rules')).items).toEqual([]);
      // The failing destination keeps its jobs, named by no rule now.
      await waitForText(
        destinationRow(DEAD_END),
        /no longer named by a rule/,
        'the destination of no rule',
      );
      expect(await queueRow(DEAD_END).count()).toBeGreaterThanOrEqual(2);
      await screenshot(page, 'routing-6-deleted');
    });

    await context.close();
    expect(failedAnswers, 'failed API answers').toEqual([]);
    expect(walk.problems, 'browser console errors or page errors').toEqual([]);
    await stopServeCleanly(running);
  }, 120_000);
});
