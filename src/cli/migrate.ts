/**
 * `dicom-server migrate`: brings the index database's schema up to date, e.g. before starting a
 * new version of the server, and says which migrations that applied.
 *
 * Layer: cli.
 */

import type { Command } from 'commander';
import { Migrator } from 'kysely';
import type { OpenDatabase } from '../db/dialect.js';
import { migrationProvider } from '../db/migrations/index.js';
import {
  AdminExitCode,
  addDatabaseOptions,
  type DatabaseCliOptions,
  exitInvalidInputOnUsageErrors,
  withDatabase,
} from './database-options.js';

/**
 * The migrations this process applied: opening the database migrates without saying what, so
 * they are the ones recorded as executed since `startedAt` (Kysely stamps them with this
 * process's clock). After the migration, the migration table is in the current schema.
 */
async function migrationsAppliedSince(database: OpenDatabase, startedAt: Date): Promise<string[]> {
  const migrations = await new Migrator({
    db: database.db,
    provider: migrationProvider,
  }).getMigrations();
  return migrations
    .filter((m) => m.executedAt !== undefined && m.executedAt >= startedAt)
    .map((m) => m.name);
}

/** Adds the `migrate` command. */
export function registerMigrate(program: Command): void {
  addDatabaseOptions(
    exitInvalidInputOnUsageErrors(
      program.command('migrate').description('apply the index database migrations not applied yet'),
    ),
  ).action(async (options: DatabaseCliOptions) => {
    const startedAt = new Date();
    await withDatabase(options, async (database) => {
      const applied = await migrationsAppliedSince(database, startedAt);
      process.stdout.write(`database: ${database.location}\n`);
      process.stdout.write(
        applied.length === 0
          ? 'the schema is up to date: no migrations to apply\n'
          : `applied ${applied.length} migration(s): ${applied.join(', ')}\n`,
      );
      return AdminExitCode.Success;
    });
  });
}
