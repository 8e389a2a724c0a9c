/**
 * DICOM over TLS per peer (PS3.15 Annex B): `use_tls` on an allowed AE title says that we reach
 * it over TLS (C-MOVE sub-operations, forwarding, C-ECHO tests). Existing peers keep plain TCP.
 *
 * Layer: db.
 */

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('allowed_ae_titles')
    .addColumn('use_tls', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
