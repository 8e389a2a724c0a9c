/**
 * The database schema as Kysely types: the index of received instances (patients, studies,
 * series, instances, and the items of the sequence keys C-FIND matches), the counters the
 * storage layout persists, administration (settings, peers, transaction and audit logs, users)
 * and the hand-off of completed series (series states, events, jobs).
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

/**
 * One value of an item of an indexed sequence key (dicom/query/model.ts SEQUENCE_KEYS) of a
 * patient, study or series: one row per item key with a value, items numbered from 1. The
 * owner is the entity's row (`owner_fk` is the id in its table, not a foreign key).
 */
export interface SequenceItemsTable {
  id: Generated<number>;
  entity: 'patient' | 'study' | 'series';
  owner_fk: number;
  sequence_tag: number;
  item_number: number;
  element_tag: number;
  value: string;
}

/** Named counters (the sequential file naming's next number). */
export interface CountersTable {
  name: string;
  value: number;
}

/** The stored settings: one row (id 1), the values as JSON (see settings/schema.ts). */
export interface SettingsTable {
  id: number;
  values_json: string;
  /** Moves with every change to the settings or the allowed peers. */
  version: number;
  updated_at: string;
}

/** A peer allowed to associate, with its permissions (booleans as 0/1). */
export interface AllowedAeTitlesTable {
  id: Generated<number>;
  ae_title: string;
  description: string;
  expected_ip: string;
  is_active: number;
  host: string;
  port: number | null;
  may_store: number;
  may_query: number;
  may_retrieve: number;
  is_move_destination: number;
  /** 1: we reach it over TLS (0008-tls). */
  use_tls: number;
  created_at: string;
  updated_at: string;
}

/** One row per association event and per DIMSE operation (the audit trail). */
export interface TransactionsTable {
  id: Generated<number>;
  occurred_at: string;
  type: string;
  status: string;
  status_code: number | null;
  association_id: string;
  calling_ae: string;
  called_ae: string;
  remote_address: string;
  remote_port: number;
  sop_class_uid: string | null;
  sop_instance_uid: string | null;
  patient_id: string | null;
  study_instance_uid: string | null;
  series_instance_uid: string | null;
  file_path: string | null;
  bytes: number | null;
  duration_ms: number | null;
  transfer_rate_mbps: number | null;
  message: string | null;
}

/** The DICOM service's state and totals: one row (id 1). */
export interface ServiceStatusTable {
  id: number;
  state: string;
  pid: number | null;
  hostname: string;
  started_at: string | null;
  stopped_at: string | null;
  active_associations: number;
  files_received: number;
  bytes_received: number;
  errors: number;
  last_error: string | null;
  last_error_at: string | null;
  updated_at: string;
}

/** A console user. */
export interface UsersTable {
  id: Generated<number>;
  username: string;
  /** argon2id, PHC string. */
  password_hash: string;
  role: string;
  created_at: string;
  last_login_at: string | null;
}

/** A console session, found by the SHA-256 of its cookie. */
export interface SessionsTable {
  token_hash: string;
  user_fk: number;
  csrf_token: string;
  created_at: string;
  expires_at: string;
}

/** An API token for scripts, found by the SHA-256 of its secret. */
export interface ApiTokensTable {
  id: Generated<number>;
  user_fk: number;
  name: string;
  token_hash: string;
  created_at: string;
  last_used_at: string | null;
}

/** Management actions: who did what from where, and how it ended. */
export interface AuditLogTable {
  id: Generated<number>;
  occurred_at: string;
  username: string;
  action: string;
  outcome: string;
  remote_address: string;
  detail: string | null;
}

/**
 * Where a series is in its hand-off to processing: receiving (instances arriving, or a late one
 * after a completion), complete (its jobs written, deliveries under way), handed_off (every
 * delivery done; its queue item waiting or claimed), acknowledged (its queue item done),
 * failed (a delivery dead or its queue item failed).
 */
export interface SeriesStatesTable {
  id: Generated<number>;
  series_instance_uid: string;
  study_instance_uid: string;
  patient_id: string;
  state: string;
  /** Completions so far: the next one is `series.updated` when above 0. */
  completion: number;
  /** When the current reception started (the first instance, or the one that reopened it). */
  first_received_at: string;
  /** The newest instance known, written when reception starts and at completion only. */
  last_received_at: string;
  completed_at: string | null;
  last_error: string | null;
  updated_at: string;
}

/** One completion of a series: the event its actions get (server/handoff/types.ts). */
export interface HandoffEventsTable {
  id: Generated<number>;
  series_instance_uid: string;
  completion: number;
  /** `series.completed` or `series.updated`. */
  type: string;
  /** `<SeriesInstanceUID>:<completion>`, the same on every retry of every delivery. */
  idempotency_key: string;
  occurred_at: string;
  /** The series with its file list (HandoffSeries) as JSON. */
  payload_json: string;
}

/**
 * One action of a completion (the outbox): a queue item read by downstream tools (pending,
 * processing, done, failed) or a delivery the worker runs (copy, webhook, command: pending,
 * in_progress, done, failed (to be retried at next_attempt_at), dead).
 */
export interface HandoffJobsTable {
  id: Generated<number>;
  event_fk: number;
  series_instance_uid: string;
  completion: number;
  kind: string;
  /** The handler folder (copy), the URL (webhook), the command line (command); '' for the queue. */
  target: string;
  state: string;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  /** Who holds it: a downstream worker (queue) or this server's worker (deliveries). */
  claimed_by: string | null;
  claimed_at: string | null;
  /** What it produced: the series folder of a copy. */
  result: string | null;
  created_at: string;
  updated_at: string;
}

/** A forwarding rule: conditions on a received instance's attributes, and where it goes. */
export interface RoutingRulesTable {
  id: Generated<number>;
  name: string;
  description: string;
  /** 0/1. */
  is_enabled: number;
  /** Attribute name to pattern (`*`, `?` wildcards; backslash between alternatives), as JSON. */
  conditions_json: string;
  /** The destination AE titles, as a JSON list. */
  destinations_json: string;
  created_at: string;
  updated_at: string;
}

/**
 * One instance to forward to one destination (the forward queue): pending, in_progress,
 * done, failed (retried at next_attempt_at), dead (attempts exhausted).
 */
export interface ForwardJobsTable {
  id: Generated<number>;
  /** The rule that matched (no foreign key: the job outlives the rule). */
  rule_fk: number | null;
  rule_name: string;
  destination: string;
  sop_instance_uid: string;
  sop_class_uid: string;
  transfer_syntax_uid: string;
  /** Relative to the storage root, as indexed when the job was written. */
  file_path: string;
  file_size: number;
  patient_id: string;
  study_instance_uid: string;
  series_instance_uid: string;
  state: string;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  claimed_by: string | null;
  claimed_at: string | null;
  created_at: string;
  updated_at: string;
}

/** A forwarding destination's last success and last error. */
export interface ForwardDestinationsTable {
  ae_title: string;
  last_success_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
  updated_at: string;
}

/** The whole database. */
export interface Database {
  patients: PatientsTable;
  studies: StudiesTable;
  series: SeriesTable;
  instances: InstancesTable;
  sequence_items: SequenceItemsTable;
  counters: CountersTable;
  settings: SettingsTable;
  allowed_ae_titles: AllowedAeTitlesTable;
  transactions: TransactionsTable;
  service_status: ServiceStatusTable;
  users: UsersTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  audit_log: AuditLogTable;
  series_states: SeriesStatesTable;
  handoff_events: HandoffEventsTable;
  handoff_jobs: HandoffJobsTable;
  routing_rules: RoutingRulesTable;
  forward_jobs: ForwardJobsTable;
  forward_destinations: ForwardDestinationsTable;
}
