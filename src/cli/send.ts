/**
 * `dicom-server send HOST PORT PATH...`: sends files and folders with C-STORE, over TLS with
 * `--tls` (tls-options.ts); a progress bar on a terminal, a summary at the end, and a non-zero
 * exit code when anything failed.
 *
 * Layer: cli.
 */

import { type Command, Option } from 'commander';
import { formatStatus, statusMeaning } from '../network/dimse/status.js';
import { type FileOutcome, sendFiles } from '../services/scu/store.js';
import { ExitCode } from './echo.js';
import { integerIn, peerAeOptions, secondsToMs } from './options.js';
import { addTlsOptions, clientTlsOf, type TlsCliOptions } from './tls-options.js';

interface SendCliOptions extends TlsCliOptions {
  aec: string;
  aet: string;
  associations: number;
  timeout: number;
}

function describeOutcome(outcome: FileOutcome): string {
  if (outcome.error !== undefined) return outcome.error;
  const status = outcome.status ?? 0;
  return `${statusMeaning(status)} (${formatStatus(status)})`;
}

/** Adds the `send` command. */
export function registerSend(program: Command): void {
  const [calledAe, callingAe] = peerAeOptions();
  const command = program
    .command('send')
    .description('send DICOM files and folders (recursively) with C-STORE')
    .argument('<host>', 'peer host name or address')
    .argument('<port>', 'peer DICOM port', integerIn(1, 65535))
    .argument('<paths...>', 'files and folders to send')
    .addOption(calledAe)
    .addOption(callingAe)
    .addOption(
      new Option('--associations <n>', 'associations in parallel')
        .default(1)
        .argParser(integerIn(1, 32)),
    )
    .addOption(
      new Option('--timeout <seconds>', 'connect, ACSE and DIMSE timeout')
        .default(60_000, '60')
        .argParser(secondsToMs),
    );
  addTlsOptions(command).action(
    async (host: string, port: number, paths: string[], options: SendCliOptions) => {
      // Certificate problems are said before any file is read or connection opened.
      const tls = await clientTlsOf(options).catch((error: unknown) => {
        process.stderr.write(`send: ${(error as Error).message}\n`);
        process.exit(ExitCode.Failed);
      });
      // The progress bar's package is loaded only when there is a terminal to draw it on.
      const { SingleBar } = process.stderr.isTTY
        ? await import('cli-progress')
        : { SingleBar: undefined };
      const bar = SingleBar
        ? new SingleBar({
            format: 'sending [{bar}] {value}/{total} files  {rate} MB/s',
            hideCursor: true,
          })
        : undefined;
      let done = 0;
      let bytes = 0;
      const started = performance.now();
      const failures: FileOutcome[] = [];
      bar?.start(0, 0, { rate: '0.0' });
      const summary = await sendFiles(paths, {
        host,
        port,
        callingAeTitle: options.aet,
        calledAeTitle: options.aec,
        associations: options.associations,
        ...(tls !== undefined && { tls }),
        timeouts: { acseMs: options.timeout, artimMs: options.timeout, dimseMs: options.timeout },
        onFile: (outcome) => {
          done += 1;
          bytes += outcome.bytes;
          if (outcome.error !== undefined || (outcome.status ?? 0) !== 0) failures.push(outcome);
          const seconds = (performance.now() - started) / 1000;
          bar?.setTotal(Math.max(done, bar.getTotal()));
          bar?.update(done, { rate: (bytes / 1024 / 1024 / Math.max(seconds, 0.001)).toFixed(1) });
        },
      }).catch((error: unknown) => {
        bar?.stop();
        process.stderr.write(
          `send to ${options.aec}@${host}:${port} failed: ${(error as Error).message}\n`,
        );
        process.exit(ExitCode.Failed);
      });
      bar?.stop();
      for (const failure of summary.failed)
        process.stderr.write(`failed: ${failure.path}: ${describeOutcome(failure)}\n`);
      const seconds = summary.durationMs / 1000;
      const megabytes = summary.bytes / 1024 / 1024;
      process.stdout.write(
        `sent ${summary.sent.length}, failed ${summary.failed.length}, ${megabytes.toFixed(1)} MB in ${seconds.toFixed(2)} s (${(megabytes / Math.max(seconds, 0.001)).toFixed(1)} MB/s)\n`,
      );
      process.exit(summary.failed.length === 0 ? ExitCode.Success : ExitCode.Failed);
    },
  );
}
