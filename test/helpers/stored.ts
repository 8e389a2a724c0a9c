/**
 * What a test server stored: the files under its storage root and its index rows, joined up to
 * the patient.
 */

import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { INCOMING_FOLDER } from '../../src/server/instance-store.js';
import type { StoreTestServer } from './server.js';

/** One indexed instance with its series, study and patient. */
export interface IndexedInstance {
  sop_instance_uid: string;
  sop_class_uid: string;
  transfer_syntax_uid: string;
  file_path: string;
  file_size: number;
  calling_ae: string;
  received_at: string;
  patient_id: string;
  patient_name: string | null;
  study_instance_uid: string;
  series_instance_uid: string;
  modality: string | null;
}

/** The index rows in the order they were added. */
export async function indexedInstances(server: StoreTestServer): Promise<IndexedInstance[]> {
  const rows = await server.database.db
    .selectFrom('instances')
    .innerJoin('series', 'series.id', 'instances.series_fk')
    .innerJoin('studies', 'studies.id', 'series.study_fk')
    .innerJoin('patients', 'patients.id', 'studies.patient_fk')
    .select([
      'instances.sop_instance_uid',
      'instances.sop_class_uid',
      'instances.transfer_syntax_uid',
      'instances.file_path',
      'instances.file_size',
      'instances.calling_ae',
      'instances.received_at',
      'patients.patient_id',
      'patients.patient_name',
      'studies.study_instance_uid',
      'series.series_instance_uid',
      'series.modality',
    ])
    .orderBy('instances.id')
    .execute();
  // PostgreSQL returns bigint as text.
  return rows.map((row) => ({ ...row, file_size: Number(row.file_size) }));
}

/** Every file under the storage root outside the incoming folder, relative, sorted. */
export async function storedFiles(server: StoreTestServer): Promise<string[]> {
  const entries = await readdir(server.storageRoot, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(server.storageRoot, join(entry.parentPath, entry.name)))
    .filter((path) => path.split(sep)[0] !== INCOMING_FOLDER)
    .sort();
}
