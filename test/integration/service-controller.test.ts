/**
 * The service controller in-process, on SQLite: start, stop and restart onto a new port (the
 * old one closed, the new one answering C-ECHO); start failures stored with a clear message
 * (port taken, storage path missing); a stale "running" status corrected at start-up with the
 * totals kept; auto-start only when enabled; a settings change from another connection reaching
 * the running service at its next association; the logging level following the settings.
 *
 * Layer: integration test (server).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type OpenDatabase, openDatabase } from '../../src/db/dialect.js';
import { ServiceStatusRepository } from '../../src/db/repositories/service-status-repository.js';
import { SettingsRepository } from '../../src/db/repositories/settings-repository.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { DimseChannel } from '../../src/network/dimse/channel.js';
import { CommandField } from '../../src/network/dimse/command.js';
import { LiveConfig } from '../../src/server/live-config.js';
import { ServiceController } from '../../src/server/service-controller.js';
import { echo } from '../../src/services/scu/echo.js';
import type { Settings } from '../../src/settings/schema.js';
import { accepts, freePort } from '../helpers/net.js';
import { type LogLine, waitFor } from '../helpers/server.js';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  readonly dataDir: string;
  readonly database: OpenDatabase;
  readonly settings: SettingsRepository;
  readonly controller: ServiceController;
  readonly logs: LogLine[];
  readonly logger: pino.Logger;
}

async function setup(stored: Partial<Settings> = {}, overrides: Partial<Settings> = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'service-controller-test-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const database = await openDatabase({ dataDir });
  cleanups.push(() => database.close());
  const settings = new SettingsRepository(database);
  const port = await freePort();
  const result = await settings.update({ host: '127.0.0.1', port, durability: 'os', ...stored });
  expect(result.isValid, JSON.stringify(result)).toBe(true);
  const logs: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.trim() !== '') logs.push(JSON.parse(line) as LogLine);
        }
        callback();
      },
    }),
  );
  const config = await LiveConfig.load(settings, overrides);
  const controller = new ServiceController({
    database,
    config,
    dataDir,
    logger,
    shutdownGraceMs: 1_000,
  });
  cleanups.push(() => controller.close());
  return { dataDir, database, settings, controller, logs, logger } satisfies Setup;
}

function echoOn(port: number, callingAeTitle = 'TESTSCU') {
  return echo({ host: '127.0.0.1', port, callingAeTitle, calledAeTitle: 'DRAW_SCP' });
}

describe('the service controller', () => {
  it('starts, answers, stops, and restarts onto a new port from the stored settings', async () => {
    const { controller, settings, database } = await setup();
    await controller.start();
    const first = controller.port!;
    expect(controller.state).toBe('running');
    expect((await echoOn(first)).status).toBe(0);
    const next = await freePort();
    expect((await settings.update({ port: next })).isValid).toBe(true);
    // Network settings wait for a restart: the running service is still on the first port.
    expect(controller.port).toBe(first);
    await controller.restart();
    expect(controller.port).toBe(next);
    expect(await accepts(first)).toBe(false);
    expect((await echoOn(next)).status).toBe(0);
    const stored = await new ServiceStatusRepository(database).get();
    expect(stored?.state).toBe('running');
    expect(stored?.pid).toBe(process.pid);
    await controller.stop();
    expect(controller.state).toBe('stopped');
    expect(await accepts(next)).toBe(false);
    expect((await new ServiceStatusRepository(database).get())?.state).toBe('stopped');
  });

  it('stores a clear error when the port is taken, and starts once it is free', async () => {
    const occupier = net.createServer();
    await new Promise<void>((resolve) => occupier.listen(0, '127.0.0.1', resolve));
    const port = (occupier.address() as net.AddressInfo).port;
    const { controller, database } = await setup({ port });
    await expect(controller.start()).rejects.toThrow(`port ${port} is already in use`);
    expect(controller.state).toBe('error');
    const stored = await new ServiceStatusRepository(database).get();
    expect(stored?.state).toBe('error');
    expect(stored?.lastError).toBe(`port ${port} is already in use on 127.0.0.1`);
    await new Promise((resolve) => occupier.close(resolve));
    await controller.start();
    expect(controller.state).toBe('running');
    expect((await echoOn(port)).status).toBe(0);
  });

  it('refuses to start when the configured storage path does not exist', async () => {
    const missing = join(tmpdir(), `no-such-storage-${process.pid}-${Date.now()}`);
    const { controller } = await setup({ storage_path: missing });
    await expect(controller.start()).rejects.toThrow(`storage path ${missing} does not exist`);
    expect(controller.status()).toMatchObject({
      state: 'error',
      lastError: `storage path ${missing} does not exist`,
    });
  });

  it('corrects a stale running status at start-up, keeps the totals, and auto-starts', async () => {
    const first = await setup();
    await new ServiceStatusRepository(first.database).save({
      state: 'running',
      pid: 999_999,
      hostname: 'elsewhere',
      startedAt: '2026-01-01T00:00:00.000Z',
      stoppedAt: null,
      activeAssociations: 3,
      filesReceived: 42,
      bytesReceived: 5 * 1024 ** 3,
      errors: 1,
      lastError: 'an old error',
      lastErrorAt: '2026-01-01T00:00:01.000Z',
      updatedAt: '2026-01-01T00:00:02.000Z',
    });
    await first.controller.initialize();
    expect(first.logs.some((line) => line.msg.startsWith('stale service status'))).toBe(true);
    expect(first.controller.state).toBe('running');
    const status = first.controller.status();
    expect(status).toMatchObject({ filesReceived: 42, bytesReceived: 5 * 1024 ** 3, errors: 1 });
    expect(status.pid).toBe(process.pid);
    expect(status.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });

  it('does not start at start-up when the service is disabled or auto-start is off', async () => {
    for (const stored of [{ service_enabled: false }, { auto_start: false }]) {
      const { controller } = await setup(stored);
      await controller.initialize();
      expect(controller.state).toBe('stopped');
      expect(controller.port).toBeNull();
    }
  });

  it('applies a settings change made on another connection at the next association', async () => {
    const { controller, dataDir } = await setup();
    await controller.start();
    const port = controller.port!;
    expect((await echoOn(port, 'UNKNOWN')).status).toBe(0);
    const other = await openDatabase({ dataDir });
    cleanups.push(() => other.close());
    const otherSettings = new SettingsRepository(other);
    expect((await otherSettings.update({ require_calling_ae_validation: true })).isValid).toBe(
      true,
    );
    await expect(echoOn(port, 'UNKNOWN')).rejects.toThrow();
    expect((await otherSettings.addAllowedAe({ ae_title: 'UNKNOWN' })).isValid).toBe(true);
    expect((await echoOn(port, 'UNKNOWN')).status).toBe(0);
  });

  it('lists the established associations with their counts, and aborts one by id', async () => {
    const { controller } = await setup();
    await controller.start();
    const association = await requestAssociation({
      host: '127.0.0.1',
      port: controller.port!,
      callingAeTitle: 'HOLDER',
      calledAeTitle: 'DRAW_SCP',
      contexts: [
        {
          abstractSyntax: SopClass.Verification,
          transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian],
        },
      ],
    });
    const channel = new DimseChannel(association, { dimseTimeoutMs: 5_000 });
    const context = channel.findContext(SopClass.Verification)!;
    const statuses: (number | undefined)[] = [];
    for await (const response of channel.request(context.id, {
      commandField: CommandField.CEchoRq,
      affectedSopClassUid: SopClass.Verification,
      hasDataset: false,
    })) {
      statuses.push(response.command.status);
    }
    expect(statuses).toEqual([0]);
    const [live] = controller.liveAssociations();
    expect(live).toMatchObject({
      id: expect.any(String),
      remoteAddress: '127.0.0.1',
      callingAeTitle: 'HOLDER',
      calledAeTitle: 'DRAW_SCP',
      acceptedContexts: [
        {
          abstractSyntax: SopClass.Verification,
          transferSyntax: TransferSyntax.ImplicitVRLittleEndian,
        },
      ],
      operations: 1,
      instancesStored: 0,
    });
    expect(live!.bytesIn).toBeGreaterThan(0);
    expect(controller.abortAssociation('no-such-id')).toBe(false);
    expect(controller.abortAssociation(live!.id)).toBe(true);
    const summary = await association.closed;
    expect(summary.outcome).toBe('aborted-by-peer');
    await waitFor(() => controller.liveAssociations().length === 0, 5_000, 'the association to go');
  });

  it('sets the logging level from the settings, unless the command line fixed it', async () => {
    const { controller, settings, logger } = await setup({ logging_level: 'WARNING' });
    expect(logger.level).toBe('warn');
    await controller.start();
    expect((await settings.update({ logging_level: 'DEBUG' })).isValid).toBe(true);
    // The change is seen at the next association.
    expect((await echoOn(controller.port!)).status).toBe(0);
    expect(logger.level).toBe('debug');
  });
});
