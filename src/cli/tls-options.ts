/**
 * The TLS options of the SCU commands (`echo`, `send`): `--tls` connects over TLS (PS3.15
 * Annex B, the BCP 195 profile); `--tls-ca FILE` is the CA bundle the peer's certificate must
 * chain to (without it the system's CAs); `--tls-cert FILE` and `--tls-key FILE` our client
 * certificate and its key, for a peer that requires one. Each of the three implies `--tls`.
 * The files are read and checked (server/tls-credentials.ts) before anything connects.
 *
 * Layer: cli.
 */

import { type Command, Option } from 'commander';
import type { TlsClientOptions } from '../network/tls.js';
import { createClientTls } from '../network/tls.js';
import { loadTlsFiles, type TlsFileLabels } from '../server/tls-credentials.js';

/** The parsed TLS options. */
export interface TlsCliOptions {
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** How the files are named in errors: by their options. */
const OPTION_LABELS: TlsFileLabels = {
  certificate: '--tls-cert',
  privateKey: '--tls-key',
  caCertificates: '--tls-ca',
};

/** Adds `--tls`, `--tls-ca`, `--tls-cert` and `--tls-key` to a command. */
export function addTlsOptions(command: Command): Command {
  return command
    .addOption(new Option('--tls', 'connect over TLS (DICOM TLS, BCP 195 profile)'))
    .addOption(
      new Option(
        '--tls-ca <file>',
        "CA certificates (PEM) the peer's certificate must chain to (default: the system's); implies --tls",
      ),
    )
    .addOption(
      new Option(
        '--tls-cert <file>',
        'our client certificate (PEM), with --tls-key; implies --tls',
      ),
    )
    .addOption(
      new Option('--tls-key <file>', 'the private key (PEM) of --tls-cert; implies --tls'),
    );
}

/** True when any TLS option was given. */
export function isTlsRequested(options: TlsCliOptions): boolean {
  return (
    options.tls === true ||
    options.tlsCa !== undefined ||
    options.tlsCert !== undefined ||
    options.tlsKey !== undefined
  );
}

/**
 * The connection's TLS options, undefined for plain TCP; rejects with ERR_TLS_CONFIG naming the
 * option whose file is missing, unreadable, expired or not matching its partner.
 */
export async function clientTlsOf(options: TlsCliOptions): Promise<TlsClientOptions | undefined> {
  if (!isTlsRequested(options)) return undefined;
  const loaded = await loadTlsFiles(
    {
      certificate: options.tlsCert ?? '',
      privateKey: options.tlsKey ?? '',
      caCertificates: options.tlsCa ?? '',
    },
    OPTION_LABELS,
  );
  return createClientTls(loaded.material);
}
