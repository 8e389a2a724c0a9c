/**
 * `dicom-server ae add|list|remove|enable|disable`: the peers allowed to associate, with their
 * permissions, managed without the server or the console. A change reaches a running server
 * through the settings' version.
 *
 * Layer: cli.
 */

import type { Command } from 'commander';
import { SettingsRepository } from '../db/repositories/settings-repository.js';
import { TransactionLogRepository } from '../db/repositories/transaction-log-repository.js';
import type { AllowedAe } from '../settings/schema.js';
import {
  AdminExitCode,
  addDatabaseOptions,
  type DatabaseCliOptions,
  exitInvalidInputOnUsageErrors,
  withDatabase,
  writeFieldErrors,
} from './database-options.js';

interface AeAddCliOptions extends DatabaseCliOptions {
  description?: string;
  ip?: string;
  host?: string;
  port?: string;
  store: boolean;
  query: boolean;
  retrieve: boolean;
  moveDestination: boolean;
  inactive?: boolean;
  tls?: boolean;
}

interface AeListCliOptions extends DatabaseCliOptions {
  json?: boolean;
}

/** A port from text: a number when it is digits, else the text, for the schema to reject by name. */
function portFromText(text: string): number | string {
  return /^\d+$/.test(text.trim()) ? Number(text.trim()) : text;
}

/** The new peer the flags describe; unset text fields take the schema's defaults. */
function allowedAeInput(title: string, options: AeAddCliOptions): Record<string, unknown> {
  return {
    ae_title: title,
    ...(options.description !== undefined && { description: options.description }),
    ...(options.ip !== undefined && { expected_ip: options.ip }),
    ...(options.host !== undefined && { host: options.host }),
    ...(options.port !== undefined && { port: portFromText(options.port) }),
    is_active: options.inactive !== true,
    may_store: options.store,
    may_query: options.query,
    may_retrieve: options.retrieve,
    is_move_destination: options.moveDestination,
    use_tls: options.tls === true,
  };
}

/** The permissions of a peer in a word list, `-` for none. */
function permissionsText(ae: AllowedAe): string {
  const words = [
    ae.may_store && 'store',
    ae.may_query && 'query',
    ae.may_retrieve && 'retrieve',
    ae.is_move_destination && 'move-destination',
  ].filter((word): word is string => word !== false);
  return words.length === 0 ? '-' : words.join(',');
}

/** The peers as a table with a header row, columns padded to their widest cell. */
export function allowedAeTable(aes: readonly AllowedAe[]): string {
  const rows = [
    ['AE TITLE', 'ACTIVE', 'EXPECTED IP', 'HOST:PORT', 'PERMISSIONS', 'DESCRIPTION'],
    ...aes.map((ae) => [
      ae.ae_title,
      ae.is_active ? 'yes' : 'no',
      ae.expected_ip === '' ? '-' : ae.expected_ip,
      ae.host === '' ? '-' : `${ae.host}:${ae.port ?? ''}${ae.use_tls ? ' (TLS)' : ''}`,
      permissionsText(ae),
      ae.description,
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Says on stderr that `title` is not listed. */
function reportNotListed(title: string): AdminExitCode {
  process.stderr.write(`AE title "${title.trim()}" is not in the list of allowed AE titles\n`);
  return AdminExitCode.Failed;
}

/** The `enable` and `disable` subcommands: one change to `is_active`. */
function registerActivation(ae: Command, name: 'enable' | 'disable'): void {
  const isActive = name === 'enable';
  addDatabaseOptions(
    ae
      .command(name)
      .description(`${name} an allowed AE title (${isActive ? 'it may' : 'it may not'} associate)`)
      .argument('<title>', 'the AE title'),
  ).action(async (title: string, options: DatabaseCliOptions) => {
    await withDatabase(options, async (database) => {
      const result = await new SettingsRepository(database).updateAllowedAe(title, {
        is_active: isActive,
      });
      if (result === undefined) return reportNotListed(title);
      if (!result.isValid) {
        // Only a stored entry that no longer validates gets here: the change itself is valid.
        writeFieldErrors(result.errors);
        return AdminExitCode.Failed;
      }
      process.stdout.write(`${name}d AE title ${result.value.ae_title}\n`);
      return AdminExitCode.Success;
    });
  });
}

/** Adds the `ae` command and its subcommands. */
export function registerAe(program: Command): void {
  const ae = exitInvalidInputOnUsageErrors(
    program.command('ae').description('manage the AE titles allowed to associate'),
  );

  addDatabaseOptions(
    ae
      .command('add')
      .description('allow an AE title (all permissions unless taken away)')
      .argument('<title>', 'the AE title')
      .option('--description <text>', 'what the peer is')
      .option('--ip <address>', 'address or CIDR range it must call from')
      .option('--host <host>', 'where C-MOVE sends to it (with --port)')
      .option('--port <port>', 'its DICOM port (with --host)')
      .option('--no-store', 'may not send instances (C-STORE)')
      .option('--no-query', 'may not query (C-FIND)')
      .option('--no-retrieve', 'may not retrieve (C-MOVE, C-GET)')
      .option('--no-move-destination', 'is no C-MOVE destination')
      .option(
        '--tls',
        'reach it over TLS (C-MOVE, forwarding, C-ECHO tests) with the tls_* settings',
      )
      .option('--inactive', 'add it switched off'),
  ).action(async (title: string, options: AeAddCliOptions) => {
    await withDatabase(options, async (database) => {
      const repository = new SettingsRepository(database);
      const result = await repository.addAllowedAe(allowedAeInput(title, options));
      if (!result.isValid) {
        writeFieldErrors(result.errors);
        return AdminExitCode.InvalidInput;
      }
      process.stdout.write(`added AE title ${result.value.ae_title}\n`);
      const { settings } = await repository.get();
      if (!settings.require_calling_ae_validation) {
        process.stdout.write(
          'note: calling AE titles are checked only when require_calling_ae_validation is true\n',
        );
      }
      return AdminExitCode.Success;
    });
  });

  addDatabaseOptions(
    ae
      .command('list')
      .description('list the allowed AE titles as a table')
      .option('--json', 'as a JSON array instead'),
  ).action(async (options: AeListCliOptions) => {
    await withDatabase(options, async (database) => {
      const aes = await new SettingsRepository(database).listAllowedAes();
      if (options.json === true) {
        process.stdout.write(`${JSON.stringify(aes, null, 2)}\n`);
      } else if (aes.length === 0) {
        process.stdout.write('no allowed AE titles\n');
      } else {
        process.stdout.write(`${allowedAeTable(aes)}\n`);
      }
      return AdminExitCode.Success;
    });
  });

  addDatabaseOptions(
    ae
      .command('remove')
      .description('remove an allowed AE title')
      .argument('<title>', 'the AE title'),
  ).action(async (title: string, options: DatabaseCliOptions) => {
    await withDatabase(options, async (database) => {
      if (!(await new SettingsRepository(database).removeAllowedAe(title))) {
        return reportNotListed(title);
      }
      process.stdout.write(`removed AE title ${title.trim()}\n`);
      return AdminExitCode.Success;
    });
  });

  registerActivation(ae, 'enable');
  registerActivation(ae, 'disable');

  addDatabaseOptions(
    ae
      .command('seen')
      .description(
        'calling AE titles seen lately (from the transaction log), and whether they are listed',
      )
      .option('--hours <n>', 'how far back', '168')
      .option('--unlisted', 'only those not in the list'),
  ).action(async (options: DatabaseCliOptions & { hours: string; unlisted?: boolean }) => {
    const hours = Number(options.hours);
    if (!Number.isFinite(hours) || hours <= 0) {
      process.stderr.write('--hours: must be a number of hours above 0\n');
      process.exitCode = AdminExitCode.InvalidInput;
      return;
    }
    await withDatabase(options, async (database) => {
      const since = new Date(Date.now() - hours * 3_600_000).toISOString();
      const seen = await new TransactionLogRepository(database).seenCallingAes(since);
      const listed = new Set(
        (await new SettingsRepository(database).listAllowedAes()).map((peer) => peer.ae_title),
      );
      const rows = seen
        .map((entry) => ({ ...entry, isListed: listed.has(entry.callingAe) }))
        .filter((entry) => options.unlisted !== true || !entry.isListed);
      if (rows.length === 0) {
        process.stdout.write('no calling AE titles seen\n');
        return AdminExitCode.Success;
      }
      const header = ['CALLING AE', 'ADDRESS', 'LAST SEEN', 'ASSOCIATIONS', 'LISTED', 'LAST'];
      const lines = rows.map((row) => [
        row.callingAe,
        row.remoteAddress,
        row.lastSeen,
        String(row.associations),
        row.isListed ? 'yes' : 'no',
        row.lastMessage ?? row.lastStatus,
      ]);
      const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
      for (const line of [header, ...lines]) {
        process.stdout.write(
          `${line
            .map((cell, i) => cell.padEnd(widths[i]!))
            .join('  ')
            .trimEnd()}\n`,
        );
      }
      const unlisted = rows.filter((row) => !row.isListed);
      if (unlisted.length > 0) {
        const first = unlisted[0]!;
        process.stdout.write(
          `add one with: dicom-server ae add ${first.callingAe} --ip ${first.remoteAddress}\n`,
        );
      }
      return AdminExitCode.Success;
    });
  });
}
