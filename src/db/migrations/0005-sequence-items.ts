/**
 * The items of the sequence keys C-FIND matches (PS3.4 §C.2.2.2.6; the keys are
 * dicom/query/model.ts SEQUENCE_KEYS): one generic table for patients, studies and series, a
 * row per item key with a value. Its indexes serve the two ways it is read (see
 * repositories/query-matching.ts):
 * - by owner (entity, owner_fk, sequence_tag, item_number, element_tag), unique: an entity's
 *   items, when they are replaced, returned, or an item's other keys are matched;
 * - by value (element_tag, value): the entities whose items hold a value, single or a wildcard's
 *   literal prefix. PostgreSQL needs text_pattern_ops for LIKE to use it (as in 0004-query).
 * Tags are integers: every tag of the keys fits in PostgreSQL's 32-bit integer.
 *
 * Layer: db.
 */

import { type Kysely, PostgresAdapter, sql } from 'kysely';
import { tableWithId } from './tables.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const isPostgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const create = async (trx: Kysely<unknown>) => {
    await tableWithId(trx, 'sequence_items')
      .addColumn('entity', 'text', (c) => c.notNull())
      .addColumn('owner_fk', 'integer', (c) => c.notNull())
      .addColumn('sequence_tag', 'integer', (c) => c.notNull())
      .addColumn('item_number', 'integer', (c) => c.notNull())
      .addColumn('element_tag', 'integer', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute();
    await trx.schema
      .createIndex('sequence_items_owner')
      .on('sequence_items')
      .columns(['entity', 'owner_fk', 'sequence_tag', 'item_number', 'element_tag'])
      .unique()
      .execute();
    await trx.schema
      .createIndex('sequence_items_value')
      .on('sequence_items')
      .expression(isPostgres ? sql`element_tag, value text_pattern_ops` : sql`element_tag, value`)
      .execute();
  };
  // PostgreSQL runs the migrations in a transaction already; Kysely runs SQLite's statement by
  // statement: one transaction makes this migration whole or nothing there too (and writes the
  // schema pages to the WAL once, not once per statement).
  if (isPostgres) await create(db);
  else await db.transaction().execute(create);
}
