/**
 * Starts a DicomServer in-process on a free port for a test, with its log lines captured so
 * that a test can assert what was logged (and print them when it fails).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { type OpenDatabase, openDatabase } from '../../src/db/dialect.js';
import { IndexRepository } from '../../src/db/repositories/index-repository.js';
import { QueryRepository } from '../../src/db/repositories/query-repository.js';
import { DicomServer, type DicomServerOptions } from '../../src/server/dicom-server.js';
import { FileInstanceStore, type StorageOptions } from '../../src/server/instance-store.js';
import { indexQuerySource } from '../../src/server/query-source.js';
import { dropSchema, uniqueSchema } from './postgres.js';

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

/** Options of a test server that stores what it receives. */
export interface StoreServerOptions {
  readonly structure?: StorageOptions['structure'];
  readonly naming?: StorageOptions['naming'];
  readonly maxStorageBytes?: number;
  readonly durability?: StorageOptions['durability'];
  readonly duplicatePolicy?: StorageOptions['duplicatePolicy'];
  readonly cleanup?: StorageOptions['cleanup'];
  /** A postgres:// URL; SQLite in the temporary directory otherwise. */
  readonly databaseUrl?: string;
  /** Serve C-FIND, C-MOVE and C-GET from the index (move destinations in `server`). */
  readonly isQueryRetrieve?: boolean;
  readonly server?: Parameters<typeof startTestServer>[0];
}

/** A running test server with storage and index, in a fresh temporary directory. */
export interface StoreTestServer extends TestServer {
  readonly dataDir: string;
  readonly storageRoot: string;
  readonly database: OpenDatabase;
  readonly index: IndexRepository;
  readonly store: FileInstanceStore;
}

/** Starts a server with a FileInstanceStore over a temporary data directory. */
export async function startStoreServer(options: StoreServerOptions = {}): Promise<StoreTestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dicom-server-test-'));
  const storageRoot = join(dataDir, 'storage');
  const schema = options.databaseUrl === undefined ? undefined : uniqueSchema('store');
  const database = await openDatabase({
    dataDir,
    ...(options.databaseUrl !== undefined && { url: options.databaseUrl }),
    ...(schema !== undefined && { schema }),
  });
  const index = new IndexRepository(database);
  // As serve wires it: files written directly while one association is active.
  let activeAssociations = () => 0;
  const store = await FileInstanceStore.open(
    {
      root: storageRoot,
      structure: options.structure ?? 'series',
      naming: options.naming ?? 'sop_uid',
      maxStorageBytes: options.maxStorageBytes ?? 0,
      durability: options.durability ?? 'fsync',
      duplicatePolicy: options.duplicatePolicy ?? 'keep_first',
      ...(options.cleanup !== undefined && { cleanup: options.cleanup }),
      isAlone: () => activeAssociations() <= 1,
    },
    index,
    pino({ level: 'silent' }),
  );
  const running = await startTestServer({
    ...options.server,
    instanceStore: store,
    ...(options.isQueryRetrieve === true && {
      querySource: indexQuerySource(new QueryRepository(database), storageRoot),
    }),
  });
  activeAssociations = () => running.server.activeAssociations;
  return {
    ...running,
    dataDir,
    storageRoot,
    database,
    index,
    store,
    stop: async () => {
      await running.stop();
      await store.close();
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
      if (schema !== undefined && options.databaseUrl !== undefined) {
        await dropSchema(schema, options.databaseUrl);
      }
    },
  };
}

/**
 * After a test: prints the server's log when the test failed or something was logged at error
 * level (a bug of ours), empties it for the next test, and returns those error lines.
 */
export function takeErrorLogs(server: TestServer, hasFailed: boolean): LogLine[] {
  const errors = server.logs.filter((line) => line.level >= 50);
  if (errors.length > 0 || hasFailed)
    console.error(server.logs.map((line) => JSON.stringify(line)).join('\n'));
  server.logs.length = 0;
  return errors;
}
