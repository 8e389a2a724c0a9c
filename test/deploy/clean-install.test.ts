/**
 * The production start on a clean install, as the container image's runtime stage makes it
 * (Dockerfile): the built project packed with `npm pack` (only the files package.json ships),
 * unpacked into an empty directory with the lockfile, `npm ci --omit=dev` (production
 * dependencies only), then the image's CMD (`node`, its flags, `dist/src/cli/main.js serve`)
 * configured by DICOM_SERVER_* variables alone on a data directory that does not exist yet. DCMTK's echoscu and storescu
 * against it, the stored file and its index row, the HEALTHCHECK command, SIGTERM and exit 0.
 *
 * Packs `dist/`: runs after `npm run build` (scripts/test.sh builds before the tests) and
 * fails when the build is missing or older than the sources.
 *
 * better-sqlite3's install fetches its prebuilt binary from the project's releases, which
 * these machines cannot reach, and then compiles it (three minutes of both cores, slowing the
 * whole suite). The test serves the binary this checkout already has, as a release would, on a
 * local address given to its installer (`npm_config_better_sqlite3_binary_host`): the same
 * install path as on a machine that reaches the releases. Should that fail, it compiles.
 *
 * Layer: test (deploy).
 */

import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVE_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { SQLITE_FILE_NAME } from '../../src/db/dialect.js';
import { checkBuildIsCurrent, REPO } from '../helpers/cli.js';
import { runCommand } from '../helpers/command.js';
import { topLevelValues } from '../helpers/dcmdump.js';
import { freePort } from '../helpers/net.js';
import { startServe } from '../helpers/serve-process.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

/** The image's CMD and HEALTHCHECK, relative to the installed package's directory. */
const SERVE = [process.execPath, ...SERVE_NODE_FLAGS, 'dist/src/cli/main.js', 'serve'] as const;
const HEALTH = ['dist/src/cli/main.js', 'health'];
const CALLED_AE = 'CLEAN_SCP';
const ADMIN_PASSWORD = 'clean-install-password-1';
/** npm ci with a compile of better-sqlite3, on a loaded 2-core machine. */
const INSTALL_TIMEOUT_MS = 15 * 60_000;

/**
 * Serves better-sqlite3's binary from this checkout as its prebuilt release archive (the one
 * path prebuild-install asks for); the paths asked for are kept.
 */
async function servePrebuild(workDir: string): Promise<{
  readonly host: string;
  readonly requests: string[];
  close(): Promise<void>;
}> {
  const archive = join(workDir, 'better-sqlite3-prebuild.tar.gz');
  const pack = await runCommand('tar', [
    '-czf',
    archive,
    '-C',
    join(REPO, 'node_modules', 'better-sqlite3'),
    'build/Release/better_sqlite3.node',
  ]);
  expect(pack.exitCode, pack.output).toBe(0);
  const body = await readFile(archive);
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(request.url ?? '');
    response.writeHead(200, { 'content-type': 'application/gzip' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Every `.dcm` file below `root`, but those being received (`.incoming`). */
async function storedFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.dcm'))
    .map((entry) => join(entry.parentPath, entry.name))
    .filter((path) => !relative(root, path).startsWith('.incoming'));
}

describe('the production start on a clean install (npm pack, npm ci --omit=dev)', () => {
  let workDir: string;
  let appDir: string;

  beforeAll(async () => {
    checkBuildIsCurrent();
    workDir = await mkdtemp(join(tmpdir(), 'dicom-server-clean-install-'));
    appDir = join(workDir, 'app');
    const pack = await runCommand('npm', ['pack', '--json', '--pack-destination', workDir], {
      cwd: REPO,
      timeoutMs: 120_000,
    });
    expect(pack.exitCode, pack.output).toBe(0);
    const [packed] = JSON.parse(pack.stdout) as { filename: string }[];
    await mkdir(appDir);
    const unpack = await runCommand('tar', [
      '-xzf',
      join(workDir, packed!.filename),
      '-C',
      appDir,
      '--strip-components=1',
    ]);
    expect(unpack.exitCode, unpack.output).toBe(0);
    await copyFile(join(REPO, 'package-lock.json'), join(appDir, 'package-lock.json'));
    const prebuild = await servePrebuild(workDir);
    try {
      const install = await runCommand('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], {
        cwd: appDir,
        env: { npm_config_better_sqlite3_binary_host: prebuild.host },
        timeoutMs: INSTALL_TIMEOUT_MS - 60_000,
      });
      expect(install.exitCode, install.output).toBe(0);
    } finally {
      await prebuild.close();
    }
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('installed the production dependencies only', async () => {
    const installed = new Set(await readdir(join(appDir, 'node_modules')));
    for (const dev of ['typescript', 'tsx', 'vite', 'vitest', 'react', '@biomejs']) {
      expect(installed.has(dev), `${dev} is a devDependency`).toBe(false);
    }
    expect(installed.has('better-sqlite3')).toBe(true);
    expect(existsSync(join(appDir, 'dist', 'web', 'index.html')), 'the console').toBe(true);
  });

  it('serves DICOM and the health check from DICOM_SERVER_* variables alone, and stops on SIGTERM with 0', async () => {
    const dataDir = join(workDir, 'data');
    const [dicomPort, httpPort] = [await freePort(), await freePort()];
    const web = { DICOM_SERVER_HTTP_HOST: '127.0.0.1', DICOM_SERVER_HTTP_PORT: String(httpPort) };
    const serve = startServe([], {
      command: SERVE,
      cwd: appDir,
      env: {
        ...web,
        DICOM_SERVER_DATA_DIR: dataDir,
        DICOM_SERVER_AE_TITLE: CALLED_AE,
        DICOM_SERVER_DICOM_HOST: '127.0.0.1',
        DICOM_SERVER_DICOM_PORT: String(dicomPort),
        DICOM_SERVER_ADMIN_PASSWORD: ADMIN_PASSWORD,
      },
    });
    let exit: Awaited<ReturnType<typeof serve.stop>>;
    try {
      const listening = await serve.waitForLine(
        (line) => line.msg === 'DICOM service listening',
        'listening',
        60_000,
      );
      expect(listening, serve.output()).toMatchObject({ aeTitle: CALLED_AE, port: dicomPort });

      const echo = await runCommand('echoscu', ['-aec', CALLED_AE, '127.0.0.1', String(dicomPort)]);
      expect(echo.exitCode, `${echo.output}\n${serve.output()}`).toBe(0);

      const file = join(TESTDATA_DICOM, 'CT_small.dcm');
      const store = await runCommand('storescu', [
        '-aec',
        CALLED_AE,
        '127.0.0.1',
        String(dicomPort),
        file,
      ]);
      expect(store.exitCode, `${store.output}\n${serve.output()}`).toBe(0);
      const { SOPInstanceUID: sopInstanceUid } = await topLevelValues(file);
      const stored = await storedFiles(join(dataDir, 'storage'));
      expect(stored.map((path) => path.split('/').pop())).toEqual([`${sopInstanceUid}.dcm`]);
      const index = new Database(join(dataDir, SQLITE_FILE_NAME), { readonly: true });
      try {
        const row = index
          .prepare('select count(*) as n from instances where sop_instance_uid = ?')
          .get(sopInstanceUid) as { n: number };
        expect(row.n).toBe(1);
      } finally {
        index.close();
      }

      // The HEALTHCHECK: the same environment's web port, no flag.
      const health = await runCommand(process.execPath, HEALTH, { cwd: appDir, env: web });
      expect(health.exitCode, health.output).toBe(0);
      expect(health.stdout).toMatch(/^healthy: web console up, DICOM service running/);
    } finally {
      exit = await serve.stop(20_000);
    }
    expect(exit, serve.output()).toEqual({ code: 0, signal: null });
  }, 120_000);
});
