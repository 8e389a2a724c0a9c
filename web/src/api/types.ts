/**
 * The shapes of the API's answers, as JSON. The settings and allowed peers come from the shared
 * schema (src/settings/schema.ts); the others mirror the server's types, which live in layers
 * the browser cannot import (they pull in Node.js).
 */

import type { AllowedAe, SettingKey, Settings } from '../../../src/settings/schema.js';

export type Role = 'admin' | 'viewer';

/** `auth/login` and `auth/me`. */
export interface Session {
  readonly user: { readonly username: string; readonly role: Role };
  readonly csrfToken?: string;
}

/** The service's states (the server's SERVICE_STATES). */
export type ServiceState = 'stopped' | 'starting' | 'running' | 'stopping' | 'error';

/** `status/` and the `status` event. */
export interface ServiceStatus {
  readonly state: ServiceState;
  readonly pid: number | null;
  readonly hostname: string;
  readonly startedAt: string | null;
  readonly stoppedAt: string | null;
  readonly activeAssociations: number;
  readonly filesReceived: number;
  readonly bytesReceived: number;
  readonly errors: number;
  readonly lastError: string | null;
  readonly lastErrorAt: string | null;
  readonly updatedAt: string;
  readonly uptimeSeconds: number | null;
  readonly storageUsedBytes: number;
  readonly aeTitle: string;
  readonly host: string;
  readonly port: number | null;
  readonly storageLimitBytes: number | null;
  readonly maxAssociations: number;
}

/** What a transaction row records (the server's TRANSACTION_TYPES). */
export const TRANSACTION_TYPES = [
  'ASSOCIATE',
  'RELEASE',
  'ABORT',
  'C-ECHO',
  'C-STORE',
  'C-FIND',
  'C-MOVE',
  'C-GET',
] as const;
export type TransactionType = (typeof TRANSACTION_TYPES)[number];

/** How it ended (the server's TRANSACTION_STATUSES). */
export const TRANSACTION_STATUSES = ['success', 'warning', 'failure', 'rejected'] as const;
export type TransactionStatus = (typeof TRANSACTION_STATUSES)[number];

/** A row of `transactions/` (the stored row, snake_case). */
export interface TransactionRow {
  /** Null for a row from the live stream (not read back from the database). */
  readonly id: number | null;
  readonly occurred_at: string;
  readonly type: TransactionType;
  readonly status: TransactionStatus;
  readonly status_code: number | null;
  readonly association_id: string;
  readonly calling_ae: string;
  readonly called_ae: string;
  readonly remote_address: string;
  readonly remote_port: number;
  readonly sop_class_uid: string | null;
  readonly sop_instance_uid: string | null;
  readonly patient_id: string | null;
  readonly study_instance_uid: string | null;
  readonly series_instance_uid: string | null;
  readonly file_path: string | null;
  readonly bytes: number | null;
  readonly duration_ms: number | null;
  readonly transfer_rate_mbps: number | null;
  readonly message: string | null;
}

/** `transactions/`: a page, newest first. */
export interface TransactionPage {
  readonly rows: TransactionRow[];
  readonly nextBefore: number | null;
  readonly total: number;
}

/** A row of the `transactions` event: the record as written (camelCase, no id). */
export interface TransactionRecord {
  readonly occurredAt: string;
  readonly type: TransactionType;
  readonly status: TransactionStatus;
  readonly statusCode?: number;
  readonly associationId: string;
  readonly callingAe: string;
  readonly calledAe: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly sopClassUid?: string;
  readonly sopInstanceUid?: string;
  readonly patientId?: string;
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;
  readonly filePath?: string;
  readonly bytes?: number;
  readonly durationMs?: number;
  readonly transferRateMbps?: number;
  readonly message?: string;
}

/** A live record in the shape of a stored row. */
export function rowOfRecord(record: TransactionRecord): TransactionRow {
  return {
    id: null,
    occurred_at: record.occurredAt,
    type: record.type,
    status: record.status,
    status_code: record.statusCode ?? null,
    association_id: record.associationId,
    calling_ae: record.callingAe,
    called_ae: record.calledAe,
    remote_address: record.remoteAddress,
    remote_port: record.remotePort,
    sop_class_uid: record.sopClassUid ?? null,
    sop_instance_uid: record.sopInstanceUid ?? null,
    patient_id: record.patientId ?? null,
    study_instance_uid: record.studyInstanceUid ?? null,
    series_instance_uid: record.seriesInstanceUid ?? null,
    file_path: record.filePath ?? null,
    bytes: record.bytes ?? null,
    duration_ms: record.durationMs ?? null,
    transfer_rate_mbps: record.transferRateMbps ?? null,
    message: record.message ?? null,
  };
}

/** `studies/recent`. */
export interface RecentStudy {
  readonly studyInstanceUid: string;
  readonly patientId: string;
  readonly patientName: string | null;
  readonly studyDate: string | null;
  readonly studyDescription: string | null;
  readonly accessionNumber: string | null;
  readonly modalitiesInStudy: string;
  readonly numberOfSeries: number;
  readonly numberOfInstances: number;
  readonly updatedAt: string;
}

/** `settings/` (GET). */
export interface SettingsDocument {
  /** As stored (what the form edits). */
  readonly settings: Settings;
  readonly version: number;
  /** Set by a flag or environment variable of the running process. */
  readonly overridden: SettingKey[];
  /** In effect: stored values with the overrides on top. */
  readonly effective: Settings;
  readonly restartSettings: SettingKey[];
}

/** `settings/` (PATCH). */
export interface SettingsChange {
  readonly settings: Settings;
  readonly changed: SettingKey[];
  readonly restartRequired: SettingKey[];
}

export type { AllowedAe };

/** `ae-titles/seen`. */
export interface SeenCallingAe {
  readonly callingAe: string;
  readonly remoteAddress: string;
  readonly lastSeen: string;
  readonly associations: number;
  readonly lastMessage: string | null;
  readonly lastStatus: TransactionStatus;
  readonly isListed: boolean;
}

/** `ae-titles/:title/echo`. */
export interface EchoResult {
  readonly isSuccess: boolean;
  readonly status?: number;
  readonly error?: string;
  readonly durationMs: number;
}

/** A presentation context an association accepted: the SOP class and its transfer syntax. */
export interface AcceptedContext {
  readonly abstractSyntax: string;
  readonly transferSyntax: string;
}

/** A row of `associations/`: an established association (the server's LiveAssociation). */
export interface LiveAssociation {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly acceptedContexts: readonly AcceptedContext[];
  readonly operations: number;
  readonly instancesStored: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly startedAt: string;
  /** How long it had been open when the answer was made. */
  readonly durationMs: number;
}
