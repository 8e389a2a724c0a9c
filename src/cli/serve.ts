/**
 * `dicom-server serve`: runs the DICOM service in the foreground until SIGINT or SIGTERM.
 *
 * Layer: cli.
 */

import { type Command, Option } from 'commander';
import type { LevelWithSilent } from 'pino';
import { DEFAULT_TIMEOUTS } from '../network/association/association.js';
import { DicomServer } from '../server/dicom-server.js';
import { createLogger } from '../server/logger.js';
import { aeTitle, integerIn, secondsToMs } from './options.js';

/** Our default Maximum Length Received: 256 KiB, fewer PDUs per instance than DCMTK's 16 KiB. */
const DEFAULT_MAX_PDU = 256 * 1024;

interface ServeOptions {
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
  const server = new DicomServer({
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
    server.stop(options.shutdownGrace).then(
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
