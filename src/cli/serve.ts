/**
 * `dicom-server serve`: runs the DICOM service in the foreground until SIGINT or SIGTERM.
 *
 * Layer: cli.
 */

import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type { LevelWithSilent } from 'pino';
import { type OpenDatabase, openDatabase } from '../db/dialect.js';
import { IndexRepository } from '../db/repositories/index-repository.js';
import { DEFAULT_TIMEOUTS } from '../network/association/association.js';
import { DicomServer } from '../server/dicom-server.js';
import { FileInstanceStore } from '../server/instance-store.js';
import { createLogger } from '../server/logger.js';
import type { DuplicatePolicy } from '../services/ports.js';
import type { Durability } from '../storage/atomic-writer.js';
import {
  FILE_NAMINGS,
  type FileNaming,
  STORAGE_STRUCTURES,
  type StorageStructure,
} from '../storage/layout.js';
import { aeTitle, integerIn, numberIn, secondsToMs } from './options.js';

/** Our default Maximum Length Received: 256 KiB, fewer PDUs per instance than DCMTK's 16 KiB. */
const DEFAULT_MAX_PDU = 256 * 1024;

interface ServeOptions {
  dataDir: string;
  db: string | undefined;
  storageStructure: StorageStructure;
  fileNaming: FileNaming;
  maxStorageGb: number;
  duplicatePolicy: DuplicatePolicy;
  enableStorageCleanup: boolean;
  storageRetentionDays: number;
  durability: Durability;
  aeTitle: string;
  dicomHost: string;
  dicomPort: number;
  maxAssociations: number;
  maxPdu: number;
  acseTimeout: number;
  dimseTimeout: number;
  networkTimeout: number;
  logLevel: LevelWithSilent;
  shutdownGrace: number;
}

/** Adds the `serve` command. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the DICOM service (and, later, the web console) in the foreground')
    .addOption(
      new Option('--data-dir <dir>', 'data directory (storage and SQLite index)')
        .env('DICOM_SERVER_DATA_DIR')
        .default('./data'),
    )
    .addOption(
      new Option(
        '--db <url>',
        'index database: postgres://... (default: SQLite in the data directory)',
      ).env('DICOM_SERVER_DB'),
    )
    .addOption(
      new Option('--storage-structure <structure>', 'folder structure of stored files')
        .env('DICOM_SERVER_STORAGE_STRUCTURE')
        .choices(STORAGE_STRUCTURES)
        .default('series'),
    )
    .addOption(
      new Option('--file-naming <naming>', 'file naming of stored files')
        .env('DICOM_SERVER_FILE_NAMING')
        .choices(FILE_NAMINGS)
        .default('sop_uid'),
    )
    .addOption(
      new Option('--max-storage-gb <gb>', 'storage limit in GB (0: none)')
        .env('DICOM_SERVER_MAX_STORAGE_GB')
        .default(100)
        .argParser(numberIn(0, 1_000_000)),
    )
    .addOption(
      new Option(
        '--enable-storage-cleanup',
        'when full, remove the oldest instances older than the retention period to make room',
      )
        .env('DICOM_SERVER_ENABLE_STORAGE_CLEANUP')
        .default(false),
    )
    .addOption(
      new Option(
        '--storage-retention-days <days>',
        'minimum age before cleanup may remove an instance',
      )
        .env('DICOM_SERVER_STORAGE_RETENTION_DAYS')
        .default(30)
        .argParser(numberIn(0, 36_500)),
    )
    .addOption(
      new Option(
        '--duplicate-policy <policy>',
        'an instance whose SOP Instance UID is already stored',
      )
        .env('DICOM_SERVER_DUPLICATE_POLICY')
        .choices(['keep_first', 'overwrite', 'reject'])
        .default('keep_first'),
    )
    .addOption(
      new Option('--durability <mode>', 'fsync: on disk before success; os: handed to the OS')
        .env('DICOM_SERVER_DURABILITY')
        .choices(['fsync', 'os'])
        .default('fsync'),
    )
    .addOption(
      new Option('--ae-title <title>', 'our AE title')
        .env('DICOM_SERVER_AE_TITLE')
        .default('DRAW_SCP')
        .argParser(aeTitle),
    )
    .addOption(
      new Option('--dicom-host <host>', 'address to listen on for DICOM')
        .env('DICOM_SERVER_DICOM_HOST')
        .default('0.0.0.0'),
    )
    .addOption(
      new Option('--dicom-port <port>', 'DICOM port (0 picks a free one)')
        .env('DICOM_SERVER_DICOM_PORT')
        .default(11112)
        .argParser(integerIn(0, 65535)),
    )
    .addOption(
      new Option('--max-associations <n>', 'concurrent associations before rejecting (transient)')
        .env('DICOM_SERVER_MAX_ASSOCIATIONS')
        .default(10)
        .argParser(integerIn(1, 1000)),
    )
    .addOption(
      new Option('--max-pdu <bytes>', 'maximum PDU length we announce')
        .env('DICOM_SERVER_MAX_PDU')
        .default(DEFAULT_MAX_PDU)
        .argParser(integerIn(4096, 16 * 1024 * 1024)),
    )
    .addOption(
      new Option('--acse-timeout <seconds>', 'ARTIM and ACSE timeout')
        .env('DICOM_SERVER_ACSE_TIMEOUT')
        .default(DEFAULT_TIMEOUTS.acseMs, '30')
        .argParser(secondsToMs),
    )
    .addOption(
      new Option('--dimse-timeout <seconds>', 'DIMSE timeout')
        .env('DICOM_SERVER_DIMSE_TIMEOUT')
        .default(60_000, '60')
        .argParser(secondsToMs),
    )
    .addOption(
      new Option('--network-timeout <seconds>', 'network idle timeout of an association')
        .env('DICOM_SERVER_NETWORK_TIMEOUT')
        .default(DEFAULT_TIMEOUTS.networkMs, '60')
        .argParser(secondsToMs),
    )
    .addOption(
      new Option('--shutdown-grace <seconds>', 'how long open associations may finish on shutdown')
        .env('DICOM_SERVER_SHUTDOWN_GRACE')
        .default(10_000, '10')
        .argParser(secondsToMs),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .env('DICOM_SERVER_LOG_LEVEL')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'silent'])
        .default('info'),
    )
    .action(async (options: ServeOptions) => {
      await runServe(options);
    });
}

async function runServe(options: ServeOptions): Promise<void> {
  const logger = createLogger(options.logLevel);
  const dataDir = resolve(options.dataDir);
  let database: OpenDatabase;
  let store: FileInstanceStore;
  try {
    database = await openDatabase({
      dataDir,
      durability: options.durability,
      ...(options.db !== undefined && { url: options.db }),
    });
    store = await FileInstanceStore.open(
      {
        root: join(dataDir, 'storage'),
        structure: options.storageStructure,
        naming: options.fileNaming,
        maxStorageBytes: Math.round(options.maxStorageGb * 1024 ** 3),
        durability: options.durability,
        duplicatePolicy: options.duplicatePolicy,
        ...(options.enableStorageCleanup && {
          cleanup: { retentionDays: options.storageRetentionDays },
        }),
      },
      new IndexRepository(database),
      logger,
    );
  } catch (error) {
    logger.fatal({ err: error }, 'storage or index could not be opened');
    process.exitCode = 1;
    return;
  }
  logger.info(
    { database: database.location, storage: join(dataDir, 'storage'), usedBytes: store.usedBytes },
    'storage and index ready',
  );
  const server = new DicomServer({
    instanceStore: store,
    aeTitle: options.aeTitle,
    host: options.dicomHost,
    port: options.dicomPort,
    maxAssociations: options.maxAssociations,
    maxPduLength: options.maxPdu,
    timeouts: {
      artimMs: options.acseTimeout,
      acseMs: options.acseTimeout,
      dimseMs: options.dimseTimeout,
      networkMs: options.networkTimeout,
    },
    logger,
  });
  try {
    await server.start();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    logger.fatal({ err: error, code }, 'DICOM service could not start');
    await store.close();
    await database.close();
    process.exitCode = 1;
    return;
  }
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server
      .stop(options.shutdownGrace)
      .then(() => store.close())
      .then(() => database.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
