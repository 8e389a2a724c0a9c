/**
 * The `dicom-server` command run from source (`node --import tsx src/cli/main.ts`): `echo`'s
 * exit codes and messages for success and each kind of failure, and `serve` as a child process
 * (its JSON log on stdout, DCMTK's echoscu against it, SIGTERM, a port already in use).
 *
 * Layer: test (interop).
 */

import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import type { Association } from '../../src/network/association/association.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { runSourceCli } from '../helpers/cli.js';
import type { CommandRun } from '../helpers/command.js';
import { runTool } from '../helpers/dcmtk.js';
import { freePort } from '../helpers/net.js';
import { type ServeProcess, startServe } from '../helpers/serve-process.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

const HOST = '127.0.0.1';

/** Runs the CLI to completion (killed after 20 s, which leaves exitCode null). */
function runCli(args: readonly string[]): Promise<CommandRun> {
  return runSourceCli(args, { timeoutMs: 20_000 });
}

/** A TCP listener on a free port that accepts connections and never says anything. */
async function startMuteListener(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('dicom-server echo', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('exits 0 and prints success against our server', async () => {
    const run = await runCli([
      'echo',
      HOST,
      String(server.port),
      '--aec',
      server.aeTitle,
      '--aet',
      'CLI_SCU',
    ]);
    expect(run.exitCode, run.output).toBe(0);
    expect(run.stdout, run.output).toMatch(
      new RegExp(`C-ECHO to ${server.aeTitle}@${HOST}:${server.port}: success`),
    );
    await waitFor(
      () =>
        server.logs.some(
          (line) => line.msg === 'association released' && line.callingAe === 'CLI_SCU',
        ),
      5_000,
      'the server to log the CLI association',
    );
  });

  it('exits 3 naming the connection failure when nothing listens on the port', async () => {
    const port = await freePort();
    const run = await runCli(['echo', HOST, String(port), '--aec', 'ANY_SCP']);
    expect(run.exitCode, run.output).toBe(3);
    expect(run.stderr, run.output).toMatch(/cannot connect to ANY_SCP@127\.0\.0\.1:\d+/);
    expect(run.stderr, run.output).toMatch(/ECONNREFUSED/);
  });

  it('exits 4 with the rejection reason when the called AE title is wrong', async () => {
    const run = await runCli(['echo', HOST, String(server.port), '--aec', 'NOT_OUR_AE']);
    expect(run.exitCode, run.output).toBe(4);
    expect(run.stderr, run.output).toMatch(/association rejected/);
    expect(run.stderr, run.output).toMatch(/called-AE-title-not-recognized/);
  });

  it('exits 5 when the peer accepts the connection and never answers', async () => {
    const mute = await startMuteListener();
    try {
      const run = await runCli(['echo', HOST, String(mute.port), '--timeout', '1']);
      expect(run.exitCode, run.output).toBe(5);
      expect(run.stderr, run.output).toMatch(/timed out talking to/);
    } finally {
      await mute.close();
    }
  });
});

/** Waits for the 'DICOM service listening' log line and returns it; fails if the process exits first. */
function waitForListening(serve: ServeProcess): Promise<Record<string, unknown>> {
  return serve.waitForLine((line) => line.msg === 'DICOM service listening', 'listening');
}

describe('dicom-server serve', () => {
  let serve: ServeProcess | undefined;

  afterEach(() => {
    if (serve !== undefined && serve.child.exitCode === null && serve.child.signalCode === null) {
      serve.child.kill('SIGKILL');
    }
    serve = undefined;
  });

  it('listens, answers echoscu as DRAW_SCP and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const current = startServe([
      '--dicom-host',
      HOST,
      '--dicom-port',
      String(port),
      '--log-level',
      'info',
    ]);
    serve = current;
    const listening = await waitForListening(current);
    expect(listening, current.output()).toMatchObject({ aeTitle: 'DRAW_SCP', port });

    const run = await runTool('echoscu', [
      '-aet',
      'ECHOSCU',
      '-aec',
      'DRAW_SCP',
      '-to',
      '10',
      '-ta',
      '10',
      '-td',
      '10',
      HOST,
      String(port),
    ]);
    expect(run.exitCode, `${run.output}\n${current.output()}`).toBe(0);
    await waitFor(
      () => current.lines.some((l) => l.msg === 'association released'),
      5_000,
      'the release log line',
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${current.output()}`);
    });

    current.child.kill('SIGTERM');
    const exit = await current.waitForExit(10_000);
    expect(exit, current.output()).toEqual({ code: 0, signal: null });
    expect(
      current.lines.some((l) => l.msg === 'DICOM service stopped'),
      current.output(),
    ).toBe(true);
  });

  it('on SIGTERM, aborts an association still open after --shutdown-grace and exits 0', async () => {
    const port = await freePort();
    // A network timeout far beyond the test, so that only the shutdown can end the association.
    const current = startServe([
      '--dicom-host',
      HOST,
      '--dicom-port',
      String(port),
      '--shutdown-grace',
      '1',
      '--network-timeout',
      '3600',
    ]);
    serve = current;
    await waitForListening(current);
    let held: Association | undefined;
    try {
      held = await requestAssociation({
        host: HOST,
        port,
        callingAeTitle: 'HOLDER',
        calledAeTitle: 'DRAW_SCP',
        contexts: [
          {
            abstractSyntax: SopClass.Verification,
            transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian],
          },
        ],
        timeouts: { acseMs: 10_000, artimMs: 10_000, networkMs: 3_600_000 },
      });

      current.child.kill('SIGTERM');
      const exit = await current.waitForExit(10_000);
      expect(exit, current.output()).toEqual({ code: 0, signal: null });
      const summary = await held.closed;
      expect(summary.outcome, current.output()).toBe('aborted-by-peer');
      expect(
        current.lines.some((l) => l.msg === 'waiting for open associations'),
        current.output(),
      ).toBe(true);
    } finally {
      held?.abort();
    }
  });

  it('exits non-zero saying it could not start when the port is in use', async () => {
    const occupier = net.createServer();
    await new Promise<void>((resolve, reject) => {
      occupier.once('error', reject);
      occupier.listen(0, HOST, () => resolve());
    });
    try {
      const port = (occupier.address() as net.AddressInfo).port;
      const current = startServe(['--dicom-host', HOST, '--dicom-port', String(port)]);
      serve = current;
      const exit = await current.waitForExit(20_000);
      expect(exit.code, current.output()).not.toBe(0);
      expect(exit.code, current.output()).not.toBeNull();
      const line = current.lines.find((l) => l.msg === 'DICOM service could not start');
      expect(line, current.output()).toBeDefined();
      expect(line?.code, current.output()).toBe('EADDRINUSE');
    } finally {
      await new Promise((resolve) => occupier.close(resolve));
    }
  });
});
