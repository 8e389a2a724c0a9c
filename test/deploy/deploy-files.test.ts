/**
 * The facts of the deployment files that matter, read from the files (no Docker engine runs
 * here): the image runs as a user other than root, checks its health with `dicom-server health`,
 * exposes the DICOM and web ports, and keeps the data directory in a volume at the path compose
 * mounts; every way of starting `serve` passes the same Node.js flags (SERVE_NODE_FLAGS);
 * compose publishes both ports and has PostgreSQL only under a profile; the systemd
 * unit waits longer for a stop than the shutdown grace, and `systemd-analyze verify` (where
 * installed) finds nothing wrong in it.
 *
 * Layer: test (deploy).
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { SERVE_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { registerServe } from '../../src/cli/serve.js';
import { runCommand } from '../helpers/command.js';

const REPO = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(REPO, path), 'utf8');

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(dockerfile: string): { keyword: string; args: string }[] {
  return dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

/** The instructions of the Dockerfile's last stage (the image that runs). */
function runtimeStage(): { keyword: string; args: string }[] {
  const all = instructions(read('Dockerfile'));
  const lastFrom = all.map((i) => i.keyword).lastIndexOf('FROM');
  return all.slice(lastFrom);
}

/** The default of serve's --shutdown-grace, in seconds. */
function shutdownGraceSeconds(): number {
  const program = new Command();
  registerServe(program);
  const option = program.commands[0]!.options.find((o) => o.long === '--shutdown-grace');
  return Number(option!.defaultValue) / 1000;
}

describe('Dockerfile', () => {
  it('runs as a user other than root', () => {
    const users = runtimeStage().filter((i) => i.keyword === 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)!.args).not.toMatch(/^(root|0)(:|$)/);
  });

  it('checks its health with `dicom-server health` and starts with `serve`', () => {
    const stage = runtimeStage();
    const healthcheck = stage.find((i) => i.keyword === 'HEALTHCHECK');
    expect(healthcheck?.args).toContain('CMD ["node", "dist/src/cli/main.js", "health"]');
    expect(stage.find((i) => i.keyword === 'CMD')?.args).toBe(
      JSON.stringify(['node', ...SERVE_NODE_FLAGS, 'dist/src/cli/main.js', 'serve']).replaceAll(
        ',',
        ', ',
      ),
    );
  });

  it('exposes the DICOM and the web port', () => {
    const exposed = runtimeStage()
      .filter((i) => i.keyword === 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/));
    expect(exposed).toEqual(expect.arrayContaining(['11112', '8000']));
  });

  it('keeps the data directory in a volume, where compose mounts its named volume', () => {
    const stage = runtimeStage();
    const env = stage
      .filter((i) => i.keyword === 'ENV')
      .map((i) => i.args)
      .join(' ');
    const dataDir = /DICOM_SERVER_DATA_DIR=(\S+)/.exec(env)?.[1];
    expect(dataDir).toBeDefined();
    expect(stage.find((i) => i.keyword === 'VOLUME')?.args).toBe(`["${dataDir}"]`);
    const compose = read('docker-compose.yml');
    expect(compose).toMatch(new RegExp(`^\\s+- dicomdata:${dataDir}$`, 'm'));
    expect(compose).toMatch(new RegExp(`^\\s+DICOM_SERVER_DATA_DIR: ${dataDir}$`, 'm'));
  });
});

describe('the other ways serve is started', () => {
  it('pass the same Node.js flags: npm start and the command itself', () => {
    const flags = SERVE_NODE_FLAGS.join(' ');
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> })
      .scripts;
    expect(scripts.start).toMatch(new RegExp(`&& node ${flags} dist/src/cli/main\\.js serve$`));
    expect(read('src/cli/main.ts').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
  });
});

describe('docker-compose.yml', () => {
  const compose = read('docker-compose.yml');

  it('publishes the DICOM and the web port', () => {
    expect(compose).toMatch(/^\s+- "11112:11112"$/m);
    expect(compose).toMatch(/^\s+- "8000:8000"$/m);
  });

  it('runs PostgreSQL only under the postgres profile, and shows the URL the server takes', () => {
    const postgres = compose.slice(compose.indexOf('\n  postgres:'));
    expect(postgres).toMatch(/^\s+profiles: \[postgres\]$/m);
    expect(compose).toMatch(/# DICOM_SERVER_DB: postgres:\/\/dicom:\S+@postgres:5432\/dicom$/m);
  });
});

describe('deploy/dicom-server.service', () => {
  const unit = read('deploy/dicom-server.service');

  it('waits longer for a stop than serve lets open associations finish, and restarts on failure', () => {
    const stopSeconds = Number(/^TimeoutStopSec=(\d+)s?$/m.exec(unit)?.[1]);
    expect(stopSeconds).toBeGreaterThan(shutdownGraceSeconds());
    expect(unit).toMatch(/^Restart=on-failure$/m);
    const start = /^ExecStart=\/usr\/bin\/node (.*) \S+\/dist\/src\/cli\/main\.js serve$/m.exec(
      unit,
    );
    expect(start?.[1]).toBe(SERVE_NODE_FLAGS.join(' '));
  });

  const systemdAnalyze = (() => {
    try {
      execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!systemdAnalyze)('passes systemd-analyze verify without a warning', async () => {
    const run = await runCommand('systemd-analyze', [
      'verify',
      join(REPO, 'deploy', 'dicom-server.service'),
    ]);
    expect(run.exitCode, run.output).toBe(0);
    expect(run.stderr, run.output).toBe('');
  });
});
