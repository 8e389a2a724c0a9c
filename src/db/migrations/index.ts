/**
 * The list of migrations, in order. Static imports rather than a folder scan, so that the built
 * package needs no file-system lookups and the order is explicit.
 *
 * Layer: db.
 */

import type { Migration, MigrationProvider } from 'kysely';
import * as initial from './0001-initial.js';
import * as administration from './0002-administration.js';
import * as users from './0003-users.js';
import * as query from './0004-query.js';
import * as sequenceItems from './0005-sequence-items.js';
import * as handoff from './0006-handoff.js';
import * as routing from './0007-routing.js';
import * as tls from './0008-tls.js';

const MIGRATIONS: Record<string, Migration> = {
  '0001-initial': initial,
  '0002-administration': administration,
  '0003-users': users,
  '0004-query': query,
  '0005-sequence-items': sequenceItems,
  '0006-handoff': handoff,
  '0007-routing': routing,
  '0008-tls': tls,
};

/** Hands Kysely's Migrator the migrations above. */
export const migrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
