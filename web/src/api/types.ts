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
  /** DICOM over TLS while running (the server's TlsStatus); null without TLS or stopped. */
  readonly tls: TlsStatus | null;
}

/** Our TLS certificate as the status shows it. */
export interface TlsCertificate {
  readonly subject: string;
  readonly issuer: string;
  readonly validFrom: string;
  readonly validTo: string;
  readonly serialNumber: string;
  readonly fingerprint256: string;
  /** Whole days until validTo (negative once expired). */
  readonly daysLeft: number;
}

/** The `tls` part of the status. */
export interface TlsStatus {
  /** The TLS listener's port; null when tls_enabled is off (a client certificate only). */
  readonly port: number | null;
  readonly requireClientCertificate: boolean;
  readonly certificate: TlsCertificate | null;
  readonly caCertificateCount: number;
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
  'HANDOFF',
  'FORWARD',
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

/**
 * `settings/` (GET). A secret that is set (the webhook secret) reads as a fixed mask, never as
 * itself; sent back unchanged in a PATCH, the mask keeps the stored secret.
 */
export interface SettingsDocument {
  /** As stored (what the form edits), secrets masked. */
  readonly settings: Settings;
  readonly version: number;
  /** Set by a flag or environment variable of the running process. */
  readonly overridden: SettingKey[];
  /** In effect: stored values with the overrides on top. */
  readonly effective: Settings;
  readonly restartSettings: SettingKey[];
  /** Whether a webhook secret is stored. */
  readonly webhook_secret_set: boolean;
}

/** `settings/` (PATCH). */
export interface SettingsChange {
  /** As now stored, secrets masked. */
  readonly settings: Settings;
  readonly changed: SettingKey[];
  readonly restartRequired: SettingKey[];
  readonly webhook_secret_set: boolean;
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
  /** Over TLS: protocol, cipher and the client certificate's subject; null over plain TCP. */
  readonly tls: {
    readonly protocol: string;
    readonly cipher: string;
    readonly peerCertificateSubject?: string;
  } | null;
}

/** Where a series is in its hand-off (the server's SERIES_STATES). */
export const SERIES_STATES = [
  'receiving',
  'complete',
  'handed_off',
  'acknowledged',
  'failed',
] as const;
export type SeriesState = (typeof SERIES_STATES)[number];

/** What a hand-off job does (the server's JOB_KINDS): a queue item, a folder copy, a webhook, a command. */
export const JOB_KINDS = ['queue', 'copy', 'webhook', 'command'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/**
 * A hand-off job's state (the server's JOB_STATES). Deliveries (copy, webhook, command):
 * pending, in_progress, done, failed (retried at nextAttemptAt), dead (attempts exhausted).
 * Queue items: pending, processing (claimed by a tool), done, failed.
 */
export const JOB_STATES = [
  'pending',
  'in_progress',
  'processing',
  'done',
  'failed',
  'dead',
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** The event a completion hands off: a series' first completion, or a later one. */
export type HandoffEventType = 'series.completed' | 'series.updated';

/** A hand-off job: the `handoff` event (a webhook's URL without credentials or query). */
export interface HandoffJob {
  readonly id: number;
  readonly eventId: number;
  readonly seriesInstanceUid: string;
  /** Which completion of the series (1 the first, more after late instances). */
  readonly completion: number;
  readonly kind: JobKind;
  /** The folder, webhook URL or command line; '' for a queue item. */
  readonly target: string;
  readonly state: JobState;
  readonly attempts: number;
  readonly nextAttemptAt: string | null;
  readonly lastError: string | null;
  readonly claimedBy: string | null;
  readonly claimedAt: string | null;
  /** What a done job produced (a copy's folder). */
  readonly result: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A row of `processing/`: the job with its event's type and idempotency key. */
export interface ListedHandoffJob extends HandoffJob {
  readonly eventType: HandoffEventType;
  readonly idempotencyKey: string;
}

/** `processing/`: a page of jobs, newest first. */
export interface HandoffJobPage {
  readonly items: ListedHandoffJob[];
  readonly nextBefore: number | null;
  readonly total: number;
}

/** A file of a completed series. */
export interface HandoffFile {
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  readonly transferSyntaxUid: string;
  readonly path: string;
  readonly sizeBytes: number;
}

/** A completion's event: the series, its files and the folder copy. */
export interface HandoffEventRecord {
  readonly type: HandoffEventType;
  readonly idempotencyKey: string;
  readonly occurredAt: string;
  readonly series: {
    readonly patientId: string;
    readonly patientName: string | null;
    readonly studyInstanceUid: string;
    readonly studyDate: string | null;
    readonly studyDescription: string | null;
    readonly accessionNumber: string | null;
    readonly seriesInstanceUid: string;
    readonly seriesNumber: number | null;
    readonly seriesDescription: string | null;
    readonly modality: string | null;
    readonly files: readonly HandoffFile[];
  };
  readonly folder?: string;
}

/** `processing/:id`: a job with its event. */
export interface HandoffJobWithEvent extends HandoffJob {
  readonly event: HandoffEventRecord;
}

/** A row of `series/`: a series' hand-off state. */
export interface SeriesStatus {
  readonly id: number;
  readonly seriesInstanceUid: string;
  readonly studyInstanceUid: string;
  readonly patientId: string;
  readonly state: SeriesState;
  readonly completion: number;
  readonly firstReceivedAt: string;
  readonly lastReceivedAt: string;
  readonly completedAt: string | null;
  readonly lastError: string | null;
  readonly updatedAt: string;
  /** Receiving only: still being sent (an association open), or waiting for completion. */
  readonly isSending?: boolean;
}

/** `series/`: a page of series, most recent first. */
export interface SeriesPage {
  readonly items: SeriesStatus[];
  readonly nextBefore: number | null;
  readonly total: number;
  /** Series this server is receiving now (waiting for their completion). */
  readonly receiving: number;
}

/** `series/:uid`: the series with its jobs, newest first. */
export interface SeriesWithJobs extends SeriesStatus {
  readonly jobs: ListedHandoffJob[];
}

/** The `series` event: a series' hand-off state moved. */
export interface SeriesStateChange {
  readonly seriesInstanceUid: string;
  readonly completion: number;
  readonly state: SeriesState;
  readonly lastError: string | null;
  /** Receiving only: still being sent (an association open), or waiting for completion. */
  readonly isSending?: boolean;
}

/** A forwarding rule (`routing/rules`): conditions on an instance's attributes, destination AEs. */
export interface RoutingRule {
  readonly id: number;
  readonly name: string;
  readonly description: string;
  readonly isEnabled: boolean;
  /** Attribute name to pattern: `*` and `?` wildcards, `\` between alternatives. */
  readonly conditions: Readonly<Record<string, string>>;
  readonly destinations: readonly string[];
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A rule as POST and PUT `routing/rules` take it. */
export interface RoutingRuleInput {
  readonly name: string;
  readonly description: string;
  readonly isEnabled: boolean;
  readonly conditions: Readonly<Record<string, string>>;
  readonly destinations: readonly string[];
}

/** `routing/rules`: the rules in matching order, and the attributes a condition may name. */
export interface RoutingRuleList {
  readonly items: RoutingRule[];
  readonly attributes: string[];
}

/**
 * A forward job's state (the server's FORWARD_STATES): pending (due), in_progress (being sent),
 * done, failed (tried again at nextAttemptAt), dead (attempts exhausted, until retried).
 */
export const FORWARD_STATES = ['pending', 'in_progress', 'done', 'failed', 'dead'] as const;
export type ForwardState = (typeof FORWARD_STATES)[number];

/** A job of the forward queue (`routing/queue`, and the `routing` event's `job`). */
export interface ForwardJob {
  readonly id: number;
  /** The rule that matched; null when it was deleted since. */
  readonly ruleId: number | null;
  readonly ruleName: string;
  readonly destination: string;
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  readonly transferSyntaxUid: string;
  readonly filePath: string;
  readonly fileSize: number;
  readonly patientId: string;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly state: ForwardState;
  readonly attempts: number;
  readonly nextAttemptAt: string | null;
  readonly lastError: string | null;
  readonly claimedBy: string | null;
  readonly claimedAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** `routing/queue`: a page of forward jobs, newest first. */
export interface ForwardJobPage {
  readonly items: ForwardJob[];
  readonly nextBefore: number | null;
  readonly total: number;
}

/** A row of `routing/destinations`: where one destination stands. */
export interface ForwardDestination {
  readonly aeTitle: string;
  /** Jobs waiting for their first attempt or under way. */
  readonly queued: number;
  /** Jobs waiting for a retry. */
  readonly failed: number;
  readonly dead: number;
  /** The soonest time a failed job is tried again. */
  readonly nextAttemptAt: string | null;
  readonly lastSuccessAt: string | null;
  readonly lastError: string | null;
  readonly lastErrorAt: string | null;
  /** Named by a rule (enabled or not). */
  readonly isInRules: boolean;
  /** Its entry among the AE titles; null when it has none. */
  readonly ae: {
    readonly host: string;
    readonly port: number | null;
    readonly isActive: boolean;
  } | null;
}

/** `routing/destinations`. */
export interface ForwardDestinationList {
  readonly items: ForwardDestination[];
}

/** The `routing` event: a forward job changed, or the rules did. */
export type RoutingChange =
  | { readonly type: 'job'; readonly job: ForwardJob }
  | { readonly type: 'rules' };
