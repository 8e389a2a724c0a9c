/**
 * `dicom-server health`, the container's HEALTHCHECK, run from source with the web port in
 * DICOM_SERVER_HTTP_PORT as the container gives it: healthy (exit 0) while a real `serve`
 * answers with its DICOM service running; unhealthy (exit 1, a line saying why) when nothing
 * listens, when something else answers on the port, and when the web console answers but the
 * DICOM service has failed (restarted onto a port something else holds). Also where it asks
 * for each listen address.
 *
 * Layer: test (deploy).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEALTH_PATH, healthUrl } from '../../src/cli/health.js';
import { loginAdmin } from '../helpers/api-session.js';
import { runSourceCli } from '../helpers/cli.js';
import type { CommandRun } from '../helpers/command.js';
import { freePort } from '../helpers/net.js';
import { startListening } from '../helpers/serve-process.js';

const ADMIN_PASSWORD = 'health-password-1';

/** `dicom-server health` with `env` only (as the HEALTHCHECK runs it) and `args`. */
function runHealth(env: Record<string, string>, args: readonly string[] = []): Promise<CommandRun> {
  return runSourceCli(['health', ...args], { env });
}

/** Listens on 127.0.0.1 (a free port) and answers every request with `status` and `body`. */
async function answering(status: number, body: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_, response) => response.writeHead(status).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port };
}

describe('dicom-server health', () => {
  it('asks the loopback address when the server listens on every address, else that address', () => {
    expect(healthUrl('0.0.0.0', 8000)).toBe(`http://127.0.0.1:8000${HEALTH_PATH}`);
    expect(healthUrl('::', 8000)).toBe(`http://[::1]:8000${HEALTH_PATH}`);
    expect(healthUrl('10.1.2.3', 8080)).toBe(`http://10.1.2.3:8080${HEALTH_PATH}`);
    expect(healthUrl('fd00::5', 8000)).toBe(`http://[fd00::5]:8000${HEALTH_PATH}`);
  });

  it('exits 1 naming the URL and the refused connection when nothing listens on the port', async () => {
    const port = await freePort();
    const run = await runHealth({ DICOM_SERVER_HTTP_PORT: String(port) });
    expect(run.exitCode, run.output).toBe(1);
    expect(run.stderr).toContain(`unhealthy: http://127.0.0.1:${port}${HEALTH_PATH}`);
    expect(run.stderr).toContain('ECONNREFUSED');
    expect(run.stdout).toBe('');
  });

  it('exits 1 when something else answers on the port', async () => {
    const { server, port } = await answering(404, 'not here');
    try {
      const run = await runHealth({ DICOM_SERVER_HTTP_PORT: String(port) });
      expect(run.exitCode, run.output).toBe(1);
      expect(run.stderr).toContain('answered HTTP 404');
    } finally {
      server.close();
    }
  });

  it('exits 1 on a usage error, never 2 (which Docker reserves)', async () => {
    const run = await runHealth({}, ['--http-port', 'eighty']);
    expect(run.exitCode, run.output).toBe(1);
    expect(run.stderr).toContain('--http-port');
  });

  it('exits 0 while serve runs its DICOM service, 1 once the service has failed', async () => {
    const [dicomPort, httpPort] = [await freePort(), await freePort()];
    const env = { DICOM_SERVER_HTTP_PORT: String(httpPort) };
    const dataDir = await mkdtemp(join(tmpdir(), 'dicom-server-health-'));
    const serve = await startListening(
      ['--data-dir', dataDir, '--dicom-host', '127.0.0.1', '--dicom-port', String(dicomPort)],
      {
        env: { ...env, DICOM_SERVER_ADMIN_PASSWORD: ADMIN_PASSWORD },
      },
    );
    let blocker: net.Server | undefined;
    try {
      const healthy = await runHealth(env);
      expect(healthy.exitCode, `${healthy.output}\n${serve.output()}`).toBe(0);
      expect(healthy.stdout).toMatch(/^healthy: web console up, DICOM service running/);

      // Stopped, its port taken by another listener, started again: the start fails.
      const api = await loginAdmin(httpPort, ADMIN_PASSWORD);
      expect((await api.post('service/stop')).status).toBe(200);
      blocker = net.createServer();
      await new Promise<void>((resolve) => blocker!.listen(dicomPort, '127.0.0.1', resolve));
      const start = await api.post('service/start');
      expect(start.status, await start.clone().text()).toBe(409);

      const failed = await runHealth(env);
      expect(failed.exitCode, failed.output).toBe(1);
      expect(failed.stderr).toContain('the DICOM service failed (state error)');
    } finally {
      blocker?.close();
      await serve.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
    expect(await serve.exited, serve.output()).toEqual({ code: 0, signal: null });
  }, 60_000);
});
