/**
 * The database schema as Kysely types: the index of received instances (patients, studies,
 * series, instances) and the counters the storage layout persists.
 *
 * Layer: db. Times are ISO 8601 UTC text, sortable on both SQLite and PostgreSQL; DICOM dates
 * and times keep their DICOM form (YYYYMMDD, HHMMSS.FFFFFF) for range matching.
 */

import type { Generated } from 'kysely';

/** One row per patient (Patient ID and Issuer of Patient ID). */
export interface PatientsTable {
  id: Generated<number>;
  patient_id: string;
  issuer_of_patient_id: string;
  patient_name: string | null;
  patient_birth_date: string | null;
  patient_sex: string | null;
  created_at: string;
  updated_at: string;
}

/** One row per study. */
export interface StudiesTable {
  id: Generated<number>;
  study_instance_uid: string;
  patient_fk: number;
  study_date: string | null;
  study_time: string | null;
  accession_number: string | null;
  study_id: string | null;
  study_description: string | null;
  referring_physician_name: string | null;
  patient_age: string | null;
  /** Distinct modalities of its series, backslash-separated (C-FIND's Modalities in Study). */
  modalities_in_study: string;
  /** Distinct SOP classes of its instances, backslash-separated. */
  sop_classes_in_study: string;
  num_series: number;
  num_instances: number;
  created_at: string;
  updated_at: string;
}

/** One row per series. */
export interface SeriesTable {
  id: Generated<number>;
  series_instance_uid: string;
  study_fk: number;
  modality: string | null;
  series_number: number | null;
  series_description: string | null;
  body_part_examined: string | null;
  series_date: string | null;
  series_time: string | null;
  protocol_name: string | null;
  num_instances: number;
  created_at: string;
  updated_at: string;
}

/** One row per stored instance, with where its file is. */
export interface InstancesTable {
  id: Generated<number>;
  sop_instance_uid: string;
  series_fk: number;
  sop_class_uid: string;
  instance_number: number | null;
  transfer_syntax_uid: string;
  /** Relative to the storage root. */
  file_path: string;
  file_size: number;
  calling_ae: string;
  received_at: string;
}

/** Named counters (the sequential file naming's next number). */
export interface CountersTable {
  name: string;
  value: number;
}

/** The whole database. */
export interface Database {
  patients: PatientsTable;
  studies: StudiesTable;
  series: SeriesTable;
  instances: InstancesTable;
  counters: CountersTable;
}
