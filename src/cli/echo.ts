/**
 * `dicom-server echo HOST PORT`: verifies a peer with C-ECHO, over TLS with `--tls`
 * (tls-options.ts); exit 0 on success, non-zero with a message saying what failed otherwise.
 *
 * Layer: cli.
 */

import { type Command, Option } from 'commander';
import { DicomServerError } from '../errors.js';
import { describeAbort, describeRejection } from '../network/association/reasons.js';
import { formatStatus, statusMeaning } from '../network/dimse/status.js';
import { echo } from '../services/scu/echo.js';
import { integerIn, peerAeOptions, secondsToMs } from './options.js';
import { addTlsOptions, clientTlsOf, type TlsCliOptions } from './tls-options.js';

/** Exit codes of the SCU commands. */
export const ExitCode = {
  Success: 0,
  Failed: 1,
  ConnectFailed: 3,
  Rejected: 4,
  Timeout: 5,
  Aborted: 6,
} as const;

interface EchoCliOptions extends TlsCliOptions {
  aec: string;
  aet: string;
  timeout: number;
}

/** A one-line explanation of an SCU failure and its exit code. */
export function explainFailure(
  error: unknown,
  target: string,
): { message: string; exitCode: number } {
  if (!(error instanceof DicomServerError)) {
    return {
      message: `${target}: ${error instanceof Error ? error.message : String(error)}`,
      exitCode: ExitCode.Failed,
    };
  }
  const d = error.details;
  switch (error.code) {
    case 'ERR_TLS_HANDSHAKE':
    case 'ERR_CONNECT_FAILED':
      return {
        message: `cannot connect to ${target}: ${error.message}`,
        exitCode: ExitCode.ConnectFailed,
      };
    case 'ERR_ASSOCIATION_REJECTED':
      return {
        message: `association rejected by ${target}: ${describeRejection(Number(d.result), Number(d.source), Number(d.reason))}`,
        exitCode: ExitCode.Rejected,
      };
    case 'ERR_TIMEOUT':
      return {
        message: `timed out talking to ${target}: ${error.message}`,
        exitCode: ExitCode.Timeout,
      };
    case 'ERR_ASSOCIATION_ABORTED':
      return {
        message: `association aborted by ${target}: ${describeAbort(Number(d.source), Number(d.reason))}`,
        exitCode: ExitCode.Aborted,
      };
    default:
      return { message: `${target}: ${error.message}`, exitCode: ExitCode.Failed };
  }
}

/** Adds the `echo` command. */
export function registerEcho(program: Command): void {
  const [calledAe, callingAe] = peerAeOptions();
  const command = program
    .command('echo')
    .description('verify a DICOM peer with C-ECHO')
    .argument('<host>', 'peer host name or address')
    .argument('<port>', 'peer DICOM port', integerIn(1, 65535))
    .addOption(calledAe)
    .addOption(callingAe)
    .addOption(
      new Option('--timeout <seconds>', 'connect, ACSE and DIMSE timeout')
        .default(30_000, '30')
        .argParser(secondsToMs),
    );
  addTlsOptions(command).action(async (host: string, port: number, options: EchoCliOptions) => {
    const target = `${options.aec}@${host}:${port}`;
    try {
      const tls = await clientTlsOf(options);
      const result = await echo({
        host,
        port,
        ...(tls !== undefined && { tls }),
        callingAeTitle: options.aet,
        calledAeTitle: options.aec,
        timeouts: {
          artimMs: options.timeout,
          acseMs: options.timeout,
          networkMs: options.timeout,
          dimseMs: options.timeout,
        },
      });
      if (result.status !== 0) {
        process.stderr.write(
          `C-ECHO to ${target}: ${statusMeaning(result.status)} (${formatStatus(result.status)})\n`,
        );
        process.exit(ExitCode.Failed);
      }
      process.stdout.write(`C-ECHO to ${target}: success in ${result.durationMs.toFixed(1)} ms\n`);
      process.exit(ExitCode.Success);
    } catch (error) {
      const { message, exitCode } = explainFailure(error, target);
      process.stderr.write(`${message}\n`);
      process.exit(exitCode);
    }
  });
}
