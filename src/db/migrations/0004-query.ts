/**
 * Indexes for C-FIND's person name wildcards, the one common query that 0001's indexes do not
 * serve (Patient ID, Study Date ranges, Accession Number, Study and Series Instance UIDs and
 * Modality already have theirs). Written once for SQLite and PostgreSQL, which need different
 * ones (see repositories/query-matching.ts for the SQL they serve):
 * - SQLite: upper(patient_name), for case-insensitive matching (its prefix range and single
 *   values); case-sensitive wildcards already take a range of 0001's patients_patient_name.
 * - PostgreSQL: text_pattern_ops on patient_name and on upper(patient_name), since its planner
 *   turns `LIKE 'Smi%'` into an index range only on such an index (or under the C collation).
 *
 * Layer: db.
 */

import { type Kysely, PostgresAdapter, type RawBuilder, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  const isPostgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const indexes: [string, RawBuilder<unknown>][] = isPostgres
    ? [
        ['patients_patient_name_pattern', sql`patient_name text_pattern_ops`],
        ['patients_patient_name_upper', sql`upper(patient_name) text_pattern_ops`],
      ]
    : [['patients_patient_name_upper', sql`upper(patient_name)`]];
  for (const [name, expression] of indexes) {
    await db.schema.createIndex(name).on('patients').expression(expression).execute();
  }
}
