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

import { accessSync, constants, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserRepository } from '../../src/db/repositories/user-repository.js';
import { hashPassword } from '../../src/web/auth.js';
import { runTool, type ToolRun } from '../helpers/dcmtk.js';
import { freePort } from '../helpers/net.js';
import { writeSeries } from '../helpers/series-files.js';
import {
  createDataDir,
  type DataDir,
  type ServeProcess,
  startListening,
} from '../helpers/serve-process.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SCREENSHOTS = join(ROOT, 'test-artifacts', 'screenshots');
const BUILT_CONSOLE = join(ROOT, 'dist', 'web', 'index.html');
const HOST = '127.0.0.1';
const CALLED_AE = 'DRAW_SCP';
const ADMIN_PASSWORD = 'e2e-admin-password-1';
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
/** How long one thing may take to show in the page. */
const UI_TIMEOUT_MS = 10_000;

let browser: Browser | undefined;
let serve: ServeProcess | undefined;
let dir: DataDir | undefined;
/** Where completed series are copied (copy_to_handler_folder). */
let handlerDir: string | undefined;
/** Console errors, page errors and failed API answers, as they came. */
const browserProblems: string[] = [];

/** Chromium's path: DICOM_SERVER_TEST_CHROMIUM, else `chromium` on the PATH; or why not. */
function findChromium(): { path: string } | { problem: string } {
  const isExecutable = (path: string) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  const given = process.env.DICOM_SERVER_TEST_CHROMIUM?.trim();
  if (given !== undefined && given !== '') {
    return isExecutable(given)
      ? { path: given }
      : { problem: `DICOM_SERVER_TEST_CHROMIUM=${given} is not an executable file` };
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(dir, 'chromium');
    if (dir !== '' && isExecutable(path)) return { path };
  }
  return { problem: 'no `chromium` on the PATH and DICOM_SERVER_TEST_CHROMIUM is not set' };
}

/** Runs `action`; a failure names the step (and the browser's complaints so far). */
async function step(name: string, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    const problems = browserProblems.length === 0 ? '' : `\nbrowser: ${browserProblems.join('\n')}`;
    const log = serve === undefined ? '' : `\n--- serve output (tail) ---\n${tail(serve.output())}`;
    throw new Error(`step "${name}" failed: ${(error as Error).message}${problems}${log}`, {
      cause: error,
    });
  }
}

function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** Waits until the locator's text matches `expected`; the failure shows the last text. */
async function waitForText(
  locator: Locator,
  expected: RegExp,
  what: string,
  timeoutMs = UI_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string | null = null;
  for (;;) {
    last = (await locator.count()) > 0 ? await locator.first().textContent() : null;
    if (last !== null && expected.test(last.trim())) return;
    if (Date.now() > deadline) {
      throw new Error(`${what}: expected ${expected}, last text ${JSON.stringify(last)}`);
    }
    await new Promise((done) => setTimeout(done, 50));
  }
}

/** The whole page; the viewport only for a modal dialog (its backdrop covers only that). */
async function screenshot(page: Page, name: string, isFullPage = true): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: isFullPage });
}

function echoscu(port: number, callingAe: string): Promise<ToolRun> {
  return runTool('echoscu', ['-aet', callingAe, '-aec', CALLED_AE, HOST, String(port)], 15_000);
}

/** Writes a series of `count` MR images and sends it with storescu over one association. */
async function storeSeries(
  port: number,
  folder: string,
  series: { studyInstanceUid: string; seriesInstanceUid: string; count: number },
): Promise<void> {
  const files = await writeSeries(folder, series);
  const store = await runTool('storescu', [
    '-aet',
    'E2E_MODALITY',
    '-aec',
    CALLED_AE,
    HOST,
    String(port),
    ...files,
  ]);
  expect(store.exitCode, store.output).toBe(0);
}

describe('the web console in Chromium', () => {
  let consoleUrl = '';
  let firstPort = 0;

  beforeAll(async () => {
    const found = findChromium();
    if ('problem' in found) {
      throw new Error(
        `Chromium is needed for the console's end-to-end test: ${found.problem}. ` +
          'Install it (apt-get install chromium; scripts/test.sh does) or set ' +
          'DICOM_SERVER_TEST_CHROMIUM to its path.',
      );
    }
    if (!existsSync(BUILT_CONSOLE)) {
      throw new Error(`the console is not built (${BUILT_CONSOLE} is missing): run npm run build`);
    }
    await mkdir(SCREENSHOTS, { recursive: true });
    // Launched while serve starts: both take a moment.
    const launching = chromium.launch({
      executablePath: found.path,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
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
    serve = await startListening(['--data-dir', dir.path, '--shutdown-grace', '1'], {
      env: { DICOM_SERVER_ADMIN_PASSWORD: ADMIN_PASSWORD },
    });
    const web = await serve.waitForLine(
      (line) => line.msg === 'web console and REST API listening',
      'the web console address',
    );
    consoleUrl = String(web.url);
    browser = await launching;
  });

  afterAll(async () => {
    await browser?.close();
    if (serve !== undefined && serve.child.exitCode === null && serve.child.signalCode === null) {
      await serve.stop();
    }
    await dir?.remove();
    if (handlerDir !== undefined) await rm(handlerDir, { recursive: true, force: true });
  });

  it('logs in, watches a store live, follows the hand-off, enforces calling AEs, moves the port, stops', async () => {
    if (browser === undefined || serve === undefined || dir === undefined)
      throw new Error('not started');
    const dataDir = dir;
    const launched = browser;
    const running = serve;
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      browserProblems.push(`console error: ${message.text()} (${message.location().url})`);
    });
    page.on('pageerror', (error) => browserProblems.push(`page error: ${error.message}`));
    page.on('response', (response) => {
      if (response.status() >= 400) {
        browserProblems.push(
          `HTTP ${response.status()} ${response.request().method()} ${response.url()}`,
        );
      }
    });

    const nav = (name: string) =>
      page.getByRole('navigation', { name: 'Console pages' }).getByRole('link', { name });
    const statusCard = page.getByRole('region', { name: 'DICOM service' });
    const serviceState = statusCard.locator('.state-banner .state-label');
    const fact = (term: string) => statusCard.locator(`dt:text-is("${term}") + dd`);

    await step('log in', async () => {
      await page.goto(consoleUrl);
      await page.getByLabel('Username').fill('admin');
      await page.getByLabel('Password').fill(ADMIN_PASSWORD);
      await screenshot(page, '1-login');
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
    });

    await step('the dashboard shows the service running', async () => {
      await waitForText(serviceState, /^Running$/, 'service state');
      await waitForText(fact('Address'), new RegExp(`^${HOST}:${firstPort}$`), 'address');
      await waitForText(fact('Files received'), /^0$/, 'files received before the store');
    });

    await step('a study sent with storescu shows up without a reload', async () => {
      const store = await runTool('storescu', [
        '-aet',
        'E2E_MODALITY',
        '-aec',
        CALLED_AE,
        HOST,
        String(firstPort),
        CT_FILE,
      ]);
      expect(store.exitCode, store.output).toBe(0);
      await waitForText(fact('Files received'), /^1$/, 'files received after the store');
      const recent = page.getByRole('region', { name: 'Recent transactions' });
      const storeRow = recent.locator('tbody tr').filter({ hasText: 'C-STORE' });
      await waitForText(storeRow, /success/, 'the C-STORE row in recent transactions');
      expect(await storeRow.first().textContent()).toContain('E2E_MODALITY');
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
      const read = (await page.evaluate(async () => {
        const response = await fetch('/dicom-server/api/settings/');
        return response.json();
      })) as { settings: Record<string, unknown>; webhook_secret_set: boolean };
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
      const viewerContext = await launched.newContext({ viewport: { width: 1366, height: 900 } });
      const viewerPage = await viewerContext.newPage();
      viewerPage.setDefaultTimeout(UI_TIMEOUT_MS);
      viewerPage.on('pageerror', (error) =>
        browserProblems.push(`viewer page error: ${error.message}`),
      );
      // The page's own address, loaded directly.
      await viewerPage.goto(new URL('/dicom-server/processing/?kind=webhook', consoleUrl).href);
      await viewerPage.getByLabel('Username').fill(VIEWER.username);
      await viewerPage.getByLabel('Password').fill(VIEWER.password);
      await viewerPage.getByRole('button', { name: 'Log in' }).click();
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
    expect(browserProblems, 'browser console errors, page errors or failed requests').toEqual([]);
    const exit = await running.stop();
    expect(exit, running.output()).toEqual({ code: 0, signal: null });
    const errors = running.lines.filter((line) => Number(line.level) >= 50);
    expect(errors, running.output()).toEqual([]);
  }, 120_000);
});
