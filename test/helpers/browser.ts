/**
 * The web console in headless Chromium for end-to-end tests (playwright-core driving Debian's
 * `chromium`) against a real `dicom-server serve`: Chromium found and launched, `serve` started
 * with its console, a walk of named steps that collects what the browser complained about, and
 * the moves every walk makes (log in, follow the navigation, wait for a text, take a
 * screenshot, read the API with the page's session, send files with DCMTK's `storescu`).
 *
 * Needs the built console (`npm run build`) and Chromium: DICOM_SERVER_TEST_CHROMIUM or
 * `chromium` on the PATH (scripts/test.sh installs Debian's package and sets the variable).
 * Without Chromium a test fails, saying so: it is never skipped.
 *
 * Layer: test helper.
 */

import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Locator,
  type Page,
} from 'playwright-core';
import { runTool } from './dcmtk.js';
import {
  type DataDir,
  type ServeProcess,
  startListening,
  waitForConsoleUrl,
} from './serve-process.js';

// The walks stop their `serve` with these; they live with `serve` itself.
export { stopServeCleanly, stopServeIfRunning } from './serve-process.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
/** Where screenshots go: one PNG per page a walk shows. */
export const SCREENSHOTS = join(ROOT, 'test-artifacts', 'screenshots');
const BUILT_CONSOLE = join(ROOT, 'dist', 'web', 'index.html');
/** The address the DICOM service and the console listen on. */
export const HOST = '127.0.0.1';
/** The called AE title the tools send to. */
export const CALLED_AE = 'DRAW_SCP';
/** The calling AE title `storescu` sends as. */
export const MODALITY_AE = 'E2E_MODALITY';
/** How long one thing may take to show in the page. */
export const UI_TIMEOUT_MS = 10_000;
const VIEWPORT = { width: 1366, height: 900 } as const;

/** A console user's name and password. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

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
  for (const folder of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(folder, 'chromium');
    if (folder !== '' && isExecutable(path)) return { path };
  }
  return { problem: 'no `chromium` on the PATH and DICOM_SERVER_TEST_CHROMIUM is not set' };
}

/**
 * Launches headless Chromium for a console walk.
 *
 * First checks, throwing at once (before anything is started), that Chromium and the built
 * console are there, and makes the screenshot folder. The launch is returned unawaited so that
 * the caller can start `serve` meanwhile: both take a moment.
 */
export function launchChromium(): Promise<Browser> {
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
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: found.path,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
}

/** `dicom-server serve` with its console, and the console's address. */
export interface ConsoleServe {
  readonly serve: ServeProcess;
  readonly consoleUrl: string;
}

/**
 * Starts `serve` on `dataDir` (1 s shutdown grace), the first administrator's password given,
 * and waits until both the DICOM service and the web console listen.
 *
 * A `serve` that never announces its console is killed before the error is thrown.
 */
export async function startConsoleServe(
  dataDir: DataDir,
  adminPassword: string,
): Promise<ConsoleServe> {
  const serve = await startListening(['--data-dir', dataDir.path, '--shutdown-grace', '1'], {
    env: { DICOM_SERVER_ADMIN_PASSWORD: adminPassword },
  });
  return { serve, consoleUrl: await waitForConsoleUrl(serve) };
}

/**
 * One walk through the console: steps named in a failure, and what the browser reported on
 * the way (console errors, page errors, failed answers), which the walk's end expects empty.
 */
export class BrowserWalk {
  /** The browser's complaints, as they came. */
  readonly problems: string[] = [];
  readonly #serveOf: () => ServeProcess | undefined;

  /** `serveOf` gives the `serve` whose last log lines a failed step shows, once started. */
  constructor(serveOf: () => ServeProcess | undefined) {
    this.#serveOf = serveOf;
  }

  /** Runs `action`; a failure names the step, the browser's complaints and serve's last lines. */
  async step(name: string, action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      const problems = this.problems.length === 0 ? '' : `\nbrowser: ${this.problems.join('\n')}`;
      const serve = this.#serveOf();
      const log =
        serve === undefined
          ? ''
          : `\n--- serve output (tail) ---\n${serve.output().split('\n').slice(-40).join('\n')}`;
      throw new Error(`step "${name}" failed: ${(error as Error).message}${problems}${log}`, {
        cause: error,
      });
    }
  }

  /** Records the page's uncaught errors, each line starting with `label`. */
  watchPageErrors(page: Page, label = 'page error'): void {
    page.on('pageerror', (error) => this.problems.push(`${label}: ${error.message}`));
  }

  /** Records the page's console errors but those for which `isExpected` holds. */
  watchConsoleErrors(page: Page, isExpected: (text: string) => boolean = () => false): void {
    page.on('console', (message) => {
      if (message.type() !== 'error' || isExpected(message.text())) return;
      this.problems.push(`console error: ${message.text()} (${message.location().url})`);
    });
  }
}

/** A new browser context (the test's viewport) and a page in it, waiting `UI_TIMEOUT_MS`. */
export async function openPage(
  browser: Browser,
): Promise<{ readonly context: BrowserContext; readonly page: Page }> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  return { context, page };
}

/**
 * Fills the login form shown on `page` and submits it.
 *
 * With `screenshotName`, the filled form is photographed before it is submitted.
 */
export async function logIn(
  page: Page,
  credentials: Credentials,
  screenshotName?: string,
): Promise<void> {
  await page.getByLabel('Username').fill(credentials.username);
  await page.getByLabel('Password').fill(credentials.password);
  if (screenshotName !== undefined) await screenshot(page, screenshotName);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** The console navigation's link to the page titled `name`. */
export function navLink(page: Page, name: string): Locator {
  return page.getByRole('navigation', { name: 'Console pages' }).getByRole('link', { name });
}

/** Waits until the locator's text matches `expected` and returns it; a failure shows the last. */
export async function waitForText(
  locator: Locator,
  expected: RegExp,
  what: string,
): Promise<string> {
  const deadline = Date.now() + UI_TIMEOUT_MS;
  for (;;) {
    const last = (await locator.count()) > 0 ? await locator.first().textContent() : null;
    if (last !== null && expected.test(last.trim())) return last;
    if (Date.now() > deadline) {
      throw new Error(`${what}: expected ${expected}, last text ${JSON.stringify(last)}`);
    }
    await new Promise((done) => setTimeout(done, 50));
  }
}

/**
 * Saves `SCREENSHOTS/<name>.png`: the whole page, or only the viewport for a modal dialog
 * (its backdrop covers only that).
 */
export async function screenshot(page: Page, name: string, isFullPage = true): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: isFullPage });
}

/** An API answer read in the page, with its session; `path` is below `/dicom-server/api/`. */
export function apiGet<T>(page: Page, path: string): Promise<T> {
  return page.evaluate(async (url) => {
    const response = await fetch(url);
    return response.json();
  }, `/dicom-server/api/${path}`) as Promise<T>;
}

/** Sends `files` over one association with `storescu` as the modality; throws on a non-zero exit. */
export async function sendWithStorescu(port: number, files: readonly string[]): Promise<void> {
  const run = await runTool('storescu', [
    '-aet',
    MODALITY_AE,
    '-aec',
    CALLED_AE,
    HOST,
    String(port),
    ...files,
  ]);
  if (run.exitCode !== 0) throw new Error(`storescu exited with ${run.exitCode}\n${run.output}`);
}
