/**
 * End to end: the web console in headless Chromium (playwright-core, Debian's `chromium`)
 * against a real `dicom-server serve` run from source, with DCMTK's tools as the modality.
 * One walk through the console, each step named in a failure: log in; the dashboard shows the
 * service running; a study sent with `storescu` moves the files received and adds C-STORE rows
 * without a reload; an AE title added on the AE titles page and calling AE validation turned on
 * on the configuration page make the server refuse an unknown calling AE, which the transaction
 * log shows live; a new DICOM port saved on the configuration page takes effect with the
 * notice's Restart now (`echoscu` answers there); the dashboard's Stop stops the service.
 * The hand-off on the Processing page: a series sent with `storescu` completes (after 1 s) and
 * is copied to the handler folder, reaching "Handed off" live; a webhook to a closed port, set
 * on the configuration page with a secret (masked once saved), fails with its error and a Retry
 * button, which asks before retrying; a viewer sees the same page without buttons.
 * Every browser console error, page error and failed API answer fails the test. A screenshot
 * of every page goes to test-artifacts/screenshots/.
 *
 * Needs the built console (`npm run build`) and Chromium: DICOM_SERVER_TEST_CHROMIUM or
 * `chromium` on the PATH (scripts/test.sh installs Debian's package and sets the variable).
 * Without Chromium the test fails, saying so: it is never skipped.
 *
 * Layer: test (end to end).
 */

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserRepository } from '../../src/db/repositories/user-repository.js';
import { hashPassword } from '../../src/web/auth.js';
import {
  apiGet,
  BrowserWalk,
  CALLED_AE,
  HOST,
  launchChromium,
  logIn,
  MODALITY_AE,
  navLink,
  openPage,
  SCREENSHOTS,
  screenshot,
  sendWithStorescu,
  startConsoleServe,
  stopServeCleanly,
  stopServeIfRunning,
  UI_TIMEOUT_MS,
  waitForText,
} from '../helpers/browser.js';
import { runTool, type ToolRun } from '../helpers/dcmtk.js';
import { freePort } from '../helpers/net.js';
import { writeSeries } from '../helpers/series-files.js';
import { createDataDir, type DataDir, type ServeProcess } from '../helpers/serve-process.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

const ADMIN = { username: 'admin', password: 'e2e-admin-password-1' } as const;
const KNOWN_AE = 'E2E_SCU';
const UNKNOWN_AE = 'STRANGER';
const CT_FILE = join(TESTDATA_DICOM, 'CT_small.dcm');
const VIEWER = { username: 'e2e-viewer', password: 'e2e-viewer-password-1' } as const;
/** The series the hand-off steps send (the helper's MR images). */
const HANDOFF_ROOT = '1.2.826.0.1.3680043.9.7777.90';
const COPIED_STUDY = `${HANDOFF_ROOT}.1`;
const COPIED_SERIES = `${HANDOFF_ROOT}.1.1`;
const WEBHOOK_STUDY = `${HANDOFF_ROOT}.2`;
const WEBHOOK_SERIES = `${HANDOFF_ROOT}.2.1`;

let browser: Browser | undefined;
let serve: ServeProcess | undefined;
let dir: DataDir | undefined;
/** Where completed series are copied (copy_to_handler_folder). */
let handlerDir: string | undefined;
const walk = new BrowserWalk(() => serve);
const step = walk.step.bind(walk);

function echoscu(port: number, callingAe: string): Promise<ToolRun> {
  return runTool('echoscu', ['-aet', callingAe, '-aec', CALLED_AE, HOST, String(port)], 15_000);
}

/** Writes a series of `count` MR images and sends it with storescu over one association. */
async function storeSeries(
  port: number,
  folder: string,
  series: { studyInstanceUid: string; seriesInstanceUid: string; count: number },
): Promise<void> {
  await sendWithStorescu(port, await writeSeries(folder, series));
}

describe('the web console in Chromium', () => {
  let consoleUrl = '';
  let firstPort = 0;

  beforeAll(async () => {
    // Launched while serve starts: both take a moment.
    const launching = launchChromium();
    dir = await createDataDir('console-e2e-');
    handlerDir = await mkdtemp(join(tmpdir(), 'console-e2e-handler-'));
    firstPort = await freePort();
    const stored = await dir.settings.update({
      host: HOST,
      port: firstPort,
      durability: 'os',
      series_completion_seconds: 1,
      copy_to_handler_folder: true,
      handler_folder_path: handlerDir,
    });
    if (!stored.isValid) throw new Error(`settings rejected: ${JSON.stringify(stored.errors)}`);
    ({ serve, consoleUrl } = await startConsoleServe(dir, ADMIN.password));
    browser = await launching;
  });

  afterAll(async () => {
    await browser?.close();
    await stopServeIfRunning(serve);
    await dir?.remove();
    if (handlerDir !== undefined) await rm(handlerDir, { recursive: true, force: true });
  });

  it('logs in, watches a store live, follows the hand-off, enforces calling AEs, moves the port, stops', async () => {
    if (browser === undefined || serve === undefined || dir === undefined)
      throw new Error('not started');
    const dataDir = dir;
    const launched = browser;
    const running = serve;
    const { context, page } = await openPage(launched);
    walk.watchConsoleErrors(page);
    walk.watchPageErrors(page);
    page.on('response', (response) => {
      if (response.status() >= 400) {
        walk.problems.push(
          `HTTP ${response.status()} ${response.request().method()} ${response.url()}`,
        );
      }
    });

    const nav = (name: string) => navLink(page, name);
    const statusCard = page.getByRole('region', { name: 'DICOM service' });
    const serviceState = statusCard.locator('.state-banner .state-label');
    const fact = (term: string) => statusCard.locator(`dt:text-is("${term}") + dd`);

    await step('log in', async () => {
      await page.goto(consoleUrl);
      await logIn(page, ADMIN, '1-login');
      await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
    });

    await step('the dashboard shows the service running', async () => {
      await waitForText(serviceState, /^Running$/, 'service state');
      await waitForText(fact('Address'), new RegExp(`^${HOST}:${firstPort}$`), 'address');
      await waitForText(fact('Files received'), /^0$/, 'files received before the store');
    });

    await step('a study sent with storescu shows up without a reload', async () => {
      await sendWithStorescu(firstPort, [CT_FILE]);
      await waitForText(fact('Files received'), /^1$/, 'files received after the store');
      const recent = page.getByRole('region', { name: 'Recent transactions' });
      const storeRow = recent.locator('tbody tr').filter({ hasText: 'C-STORE' });
      await waitForText(storeRow, /success/, 'the C-STORE row in recent transactions');
      expect(await storeRow.first().textContent()).toContain(MODALITY_AE);
      // The recent studies list reads the new study after a short pause.
      const studies = page.getByRole('region', { name: 'Recent studies' });
      await waitForText(studies.locator('tbody tr'), /1 \/ 1/, 'the study in recent studies');
      await screenshot(page, '2-dashboard');
    });

    await step(
      'a series sent with storescu is handed off live on the Processing page',
      async () => {
        await nav('Processing').click();
        await page.getByRole('heading', { name: 'Processing', level: 1 }).waitFor();
        await page
          .getByRole('region', { name: 'Hand-off actions' })
          .getByText('Folder copy')
          .waitFor();
        // Sent while the page is open: the series appears and moves on without a reload.
        await storeSeries(firstPort, join(dataDir.path, 'outgoing', 'copied'), {
          studyInstanceUid: COPIED_STUDY,
          seriesInstanceUid: COPIED_SERIES,
          count: 3,
        });
        const seriesRow = page
          .getByRole('region', { name: 'Series' })
          .locator('tbody tr')
          .filter({ hasText: COPIED_SERIES });
        await waitForText(seriesRow, /Handed off/, 'the series handed off');
        const copyRow = page
          .locator('#jobs tbody tr')
          .filter({ hasText: COPIED_SERIES })
          .filter({ hasText: 'Folder copy' });
        await waitForText(copyRow, /Done/, 'the folder copy done');
        const manifest = join(handlerDir ?? '', COPIED_STUDY, COPIED_SERIES, 'manifest.json');
        expect(existsSync(manifest), `${manifest} exists`).toBe(true);
        await screenshot(page, 'processing-1-handed-off');
      },
    );

    const closedPort = await freePort();
    const webhookUrl = `http://${HOST}:${closedPort}/hooks/dicom`;
    await step('a webhook and its secret are set on the configuration page', async () => {
      await nav('Configuration').click();
      await page.getByRole('heading', { name: 'Configuration', level: 1 }).waitFor();
      await page.getByLabel('Start the processing chain', { exact: true }).check();
      await page.getByLabel('Webhook URLs', { exact: true }).fill(webhookUrl);
      const secret = page.getByLabel('Webhook secret', { exact: true });
      await secret.fill('e2e-webhook-secret');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByText(/^Saved: .*Webhook secret\.$/).waitFor();
      // Never shown again: the box is empty, saying a secret is set; the API sends a mask.
      expect(await secret.inputValue()).toBe('');
      expect(await secret.getAttribute('placeholder')).toMatch(/^set/);
      await page
        .locator('#group-handoff')
        .screenshot({ path: join(SCREENSHOTS, 'configuration-handoff.png') });
      const read = await apiGet<{ settings: Record<string, unknown>; webhook_secret_set: boolean }>(
        page,
        'settings/',
      );
      expect(read.settings.webhook_secret).not.toBe('e2e-webhook-secret');
      expect(read.webhook_secret_set).toBe(true);
      // The mask the form holds is not a change.
      expect(await page.getByRole('button', { name: 'Save changes' }).isDisabled()).toBe(true);
    });

    let webhookJob = '';
    await step('a webhook to a closed port fails with its error and a Retry button', async () => {
      await nav('Processing').click();
      await page.getByRole('heading', { name: 'Processing', level: 1 }).waitFor();
      await page.getByLabel('Kind', { exact: true }).selectOption('webhook');
      await storeSeries(firstPort, join(dataDir.path, 'outgoing', 'webhook'), {
        studyInstanceUid: WEBHOOK_STUDY,
        seriesInstanceUid: WEBHOOK_SERIES,
        count: 2,
      });
      const webhookRow = page.locator('#jobs tbody tr').filter({ hasText: WEBHOOK_SERIES });
      await waitForText(webhookRow, /Failed/, 'the failed webhook');
      const text = (await webhookRow.first().textContent()) ?? '';
      expect(text).toContain(webhookUrl);
      expect(text).toMatch(/webhook request failed.*ECONNREFUSED/);
      webhookJob = (await webhookRow.first().locator('td .mono').first().textContent()) ?? '';
      expect(webhookJob).toMatch(/^\d+$/);
      // The series waits for its webhook: complete, not handed off.
      const seriesRow = page
        .getByRole('region', { name: 'Series' })
        .locator('tbody tr')
        .filter({ hasText: WEBHOOK_SERIES });
      await waitForText(seriesRow, /Complete/, 'the series waiting for its webhook');
      await webhookRow
        .first()
        .getByRole('button', { name: `Job ${webhookJob} details` })
        .click();
      await waitForText(page.locator('tr.row-detail'), /ECONNREFUSED/, 'the error in the details');
      await screenshot(page, 'processing-2-webhook-failed');
      await webhookRow.first().getByRole('button', { name: 'Retry' }).click();
      const confirm = page.getByRole('dialog', { name: `Retry webhook ${webhookJob}?` });
      await confirm.getByText(/Retry tries it now/).waitFor();
      await screenshot(page, 'processing-3-retry', false);
      await confirm.getByRole('button', { name: 'Retry', exact: true }).click();
      await confirm.waitFor({ state: 'hidden' });
      await page.getByText(`Webhook ${webhookJob} is pending again and is tried now.`).waitFor();
      // Tried again at once: failed again, its attempts counted from zero.
      await waitForText(webhookRow, /Failed/, 'the retried webhook failed again');
    });

    await step('a viewer sees the Processing page without buttons', async () => {
      await new UserRepository(dataDir.database).add(
        VIEWER.username,
        await hashPassword(VIEWER.password),
        'viewer',
      );
      const { context: viewerContext, page: viewerPage } = await openPage(launched);
      walk.watchPageErrors(viewerPage, 'viewer page error');
      // The page's own address, loaded directly.
      await viewerPage.goto(new URL('/dicom-server/processing/?kind=webhook', consoleUrl).href);
      await logIn(viewerPage, VIEWER);
      await viewerPage.getByRole('heading', { name: 'Processing', level: 1 }).waitFor();
      const webhookRow = viewerPage.locator('#jobs tbody tr').filter({ hasText: WEBHOOK_SERIES });
      await waitForText(webhookRow, /Failed/, 'the failed webhook, for a viewer');
      expect(await viewerPage.getByRole('button', { name: 'Retry' }).count()).toBe(0);
      expect(await viewerPage.locator('#jobs th', { hasText: 'Actions' }).count()).toBe(0);
      await screenshot(viewerPage, 'processing-4-viewer');
      await viewerContext.close();
    });

    await step('an AE title is added on the AE titles page', async () => {
      await nav('AE titles').click();
      await page.getByRole('heading', { name: 'AE titles', level: 1 }).waitFor();
      await page.getByRole('button', { name: 'Add AE title' }).click();
      const dialog = page.getByRole('dialog', { name: 'Add an AE title' });
      await dialog.getByLabel('AE title', { exact: true }).fill(KNOWN_AE);
      await dialog.getByLabel('Description', { exact: true }).fill('End-to-end test peer');
      await dialog.getByRole('button', { name: 'Add AE title' }).click();
      await dialog.waitFor({ state: 'hidden' });
      await page.getByText(`${KNOWN_AE} was added.`).waitFor();
      const allowed = page.getByRole('region', { name: 'Allowed AE titles' });
      await waitForText(
        allowed.locator('tbody tr').filter({ hasText: KNOWN_AE }),
        /Active/,
        'the new AE title in the list',
      );
      await screenshot(page, '3-ae-titles');
    });

    await step('calling AE validation is turned on on the configuration page', async () => {
      await nav('Configuration').click();
      await page.getByRole('heading', { name: 'Configuration', level: 1 }).waitFor();
      await page.getByLabel('Require calling AE validation', { exact: true }).check();
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByText('Saved: Require calling AE validation.').waitFor();
    });

    await step('an unknown calling AE is refused and the transaction log shows it', async () => {
      await nav('Transaction log').click();
      await page.getByRole('heading', { name: 'Transaction log', level: 1 }).waitFor();
      await page.locator('section[aria-labelledby="log-title"][aria-busy="false"]').waitFor();
      const refused = await echoscu(firstPort, UNKNOWN_AE);
      expect(refused.exitCode, refused.output).not.toBe(0);
      expect(refused.output).toMatch(/Calling AE Title Not Recognized/);
      // Rows written after the page was read are announced live; Show reads them.
      const rejectedRow = page
        .locator('table.table-log tbody tr')
        .filter({ hasText: UNKNOWN_AE })
        .filter({ has: page.locator('.badge-rejected') });
      const show = page.getByRole('button', { name: 'Show', exact: true });
      const deadline = Date.now() + UI_TIMEOUT_MS;
      while ((await rejectedRow.count()) === 0) {
        if (Date.now() > deadline) throw new Error(`no rejected row for ${UNKNOWN_AE}`);
        if (await show.isVisible()) await show.click();
        await new Promise((done) => setTimeout(done, 100));
      }
      await rejectedRow.first().getByRole('button').click();
      await waitForText(
        page.locator('tr.row-detail'),
        /calling AE title/i,
        'the rejection reason in the row details',
      );
      await screenshot(page, '4-transactions');
    });

    const newPort = await freePort();
    await step('a new DICOM port is saved and applied with the notice’s Restart now', async () => {
      await nav('Configuration').click();
      await page.getByRole('heading', { name: 'Configuration', level: 1 }).waitFor();
      await page.getByLabel('DICOM port', { exact: true }).fill(String(newPort));
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByText('Saved: DICOM port.').waitFor();
      const restart = page.getByRole('button', { name: 'Restart now' });
      await restart.waitFor();
      await screenshot(page, '5-configuration');
      await restart.click();
      // Cleared once the service has started again after the save.
      await restart.waitFor({ state: 'hidden' });
      await page.getByText('Restart needed').waitFor({ state: 'hidden' });
      const echoed = await echoscu(newPort, KNOWN_AE);
      expect(echoed.exitCode, echoed.output).toBe(0);
      const old = await echoscu(firstPort, KNOWN_AE);
      expect(old.exitCode, `the old port still answers:\n${old.output}`).not.toBe(0);
    });

    await step('every page in the navigation renders', async () => {
      // Whatever the navigation lists, pages added later included.
      const links = page.getByRole('navigation', { name: 'Console pages' }).getByRole('link');
      const titles = (await links.allTextContents()).map((title) => title.trim());
      expect(titles.length, 'links in the navigation').toBeGreaterThanOrEqual(4);
      for (const title of titles) {
        await nav(title).click();
        const deadline = Date.now() + UI_TIMEOUT_MS;
        while (!(await page.title()).startsWith(`${title} ·`)) {
          if (Date.now() > deadline)
            throw new Error(`${title}: the page title stayed ${await page.title()}`);
          await new Promise((done) => setTimeout(done, 50));
        }
        await page.getByRole('heading', { level: 1 }).first().waitFor();
        await page.getByText('Loading…', { exact: true }).first().waitFor({ state: 'hidden' });
        const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
        await screenshot(page, `page-${slug}`);
      }
    });

    await step('the dashboard shows the new port and stops the service', async () => {
      await nav('Dashboard').click();
      await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
      await waitForText(serviceState, /^Running$/, 'service state after the restart');
      await waitForText(fact('Address'), new RegExp(`^${HOST}:${newPort}$`), 'address');
      await statusCard.getByRole('button', { name: 'Stop', exact: true }).click();
      const confirm = page.getByRole('dialog', { name: 'Stop the DICOM service?' });
      await confirm.getByRole('button', { name: 'Stop the service' }).click();
      await waitForText(serviceState, /^Stopped$/, 'service state after Stop');
      await waitForText(fact('Address'), /not listening/, 'address after Stop');
      expect(await statusCard.getByRole('button', { name: 'Start', exact: true }).isEnabled()).toBe(
        true,
      );
      const echoed = await echoscu(newPort, KNOWN_AE);
      expect(echoed.exitCode, `the stopped service still answers:\n${echoed.output}`).not.toBe(0);
      await screenshot(page, '6-dashboard-stopped');
    });

    await context.close();
    expect(walk.problems, 'browser console errors, page errors or failed requests').toEqual([]);
    await stopServeCleanly(running);
  }, 120_000);
});
