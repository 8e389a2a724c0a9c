/**
 * Starts a DicomServer in-process on a free port for a test, with its log lines captured so
 * that a test can assert what was logged (and print them when it fails).
 */

import { Writable } from 'node:stream';
import { pino } from 'pino';
import { DicomServer, type DicomServerOptions } from '../../src/server/dicom-server.js';

/** One captured log line (pino's JSON object). */
export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** A running test server and what it logged. */
export interface TestServer {
  readonly server: DicomServer;
  readonly port: number;
  readonly aeTitle: string;
  readonly logs: LogLine[];
  stop(): Promise<void>;
}

/** Test defaults: short timers so that timeout tests stay quick; override per test. */
export const TEST_TIMEOUTS = { artimMs: 2_000, acseMs: 2_000, dimseMs: 5_000, networkMs: 5_000 };

/** Starts a server on 127.0.0.1 and a free port. */
export async function startTestServer(
  overrides: Partial<Omit<DicomServerOptions, 'logger' | 'timeouts'>> & {
    timeouts?: Partial<DicomServerOptions['timeouts']>;
  } = {},
): Promise<TestServer> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') logs.push(JSON.parse(line) as LogLine);
      }
      callback();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const aeTitle = overrides.aeTitle ?? 'TEST_SCP';
  const server = new DicomServer({
    aeTitle,
    host: '127.0.0.1',
    port: 0,
    maxAssociations: 10,
    maxPduLength: 256 * 1024,
    ...overrides,
    timeouts: { ...TEST_TIMEOUTS, ...overrides.timeouts },
    logger,
  });
  const address = await server.start();
  return { server, port: address.port, aeTitle, logs, stop: () => server.stop(1_000) };
}

/** Resolves when `predicate` holds, polling each tick of the event loop; rejects after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
