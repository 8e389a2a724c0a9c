/**
 * How each setting appears on the configuration page: its group (the specification's
 * sections), label, hint and control. Keyed by every setting name, so a setting added to the
 * schema (src/settings/schema.ts) without a place here fails the type check. Validation is the
 * schema's, not repeated here.
 */

import {
  DUPLICATE_POLICIES,
  DURABILITIES,
  FILE_NAMINGS,
  LOGGING_LEVELS,
  SETTING_KEYS,
  type SettingKey,
  STORAGE_STRUCTURES,
} from '../../../src/settings/schema.js';

/** The sections of the page. */
export const SETTING_GROUPS = [
  { id: 'network', title: 'Network' },
  { id: 'storage', title: 'Storage' },
  { id: 'security', title: 'Security & access control' },
  { id: 'tls', title: 'DICOM over TLS' },
  { id: 'accepted', title: 'SOP classes & transfer syntaxes' },
  { id: 'dimse', title: 'DIMSE services' },
  { id: 'logging', title: 'Logging & monitoring' },
  { id: 'service', title: 'Service' },
  { id: 'handoff', title: 'Hand-off to processing' },
] as const;

export type SettingGroupId = (typeof SETTING_GROUPS)[number]['id'];

type Options<T extends string> = Readonly<Record<T, string>>;

/** The control of a setting. */
export type SettingControl =
  | { readonly type: 'text'; readonly placeholder?: string; readonly isMono?: boolean }
  | { readonly type: 'number'; readonly unit?: string; readonly step?: number }
  | { readonly type: 'boolean' }
  /** Write-only: the API shows a secret that is set only as a mask (see SecretInput). */
  | { readonly type: 'secret' }
  | { readonly type: 'select'; readonly options: Options<string> }
  | { readonly type: 'address-list' }
  | { readonly type: 'sop-class-groups' }
  | { readonly type: 'transfer-syntaxes' };

export interface SettingField {
  readonly group: SettingGroupId;
  readonly label: string;
  readonly hint?: string;
  readonly control: SettingControl;
}

const text = (placeholder?: string, isMono = true): SettingControl => ({
  type: 'text',
  isMono,
  ...(placeholder !== undefined && { placeholder }),
});
const number = (unit?: string, step = 1): SettingControl => ({
  type: 'number',
  step,
  ...(unit !== undefined && { unit }),
});
const boolean: SettingControl = { type: 'boolean' };
const select = <T extends string>(values: readonly T[], labels: Options<T>): SettingControl => ({
  type: 'select',
  options: Object.fromEntries(values.map((value) => [value, labels[value]])),
});

/** Every setting's place, label, hint and control. */
export const SETTING_FIELDS: Readonly<Record<SettingKey, SettingField>> = {
  ae_title: {
    group: 'network',
    label: 'AE title',
    hint: "This server's Application Entity title: senders set it as the called AE title. Uppercase, 16 characters at most.",
    control: text('DRAW_SCP'),
  },
  host: {
    group: 'network',
    label: 'Listen address',
    hint: '0.0.0.0 listens on every interface, 127.0.0.1 on this machine only.',
    control: text('0.0.0.0'),
  },
  port: {
    group: 'network',
    label: 'DICOM port',
    hint: '1024 to 65535; 11112 is the usual port.',
    control: number(),
  },
  max_associations: {
    group: 'network',
    label: 'Maximum associations',
    hint: 'Simultaneous associations; one more is rejected (local limit exceeded).',
    control: number(),
  },
  max_pdu_length: {
    group: 'network',
    label: 'Maximum PDU length',
    hint: 'The Maximum Length Received we announce: 4096 bytes to 16 MiB.',
    control: number('bytes'),
  },
  acse_timeout: {
    group: 'network',
    label: 'ACSE timeout',
    hint: 'Time for the association to be negotiated (and released).',
    control: number('s', 0.1),
  },
  dimse_timeout: {
    group: 'network',
    label: 'DIMSE timeout',
    hint: 'Time to wait for the rest of a DIMSE message.',
    control: number('s', 0.1),
  },
  network_timeout: {
    group: 'network',
    label: 'Network idle timeout',
    hint: 'An association silent for this long is aborted.',
    control: number('s', 0.1),
  },
  storage_path: {
    group: 'storage',
    label: 'Storage path',
    hint: 'Empty: the storage folder in the data directory. A path given here must exist and be writable.',
    control: text('(data directory)/storage'),
  },
  storage_structure: {
    group: 'storage',
    label: 'Folder structure',
    control: select(STORAGE_STRUCTURES, {
      flat: 'Flat: every file in one folder',
      patient: 'By patient: <PatientID>/',
      study: 'By study: <StudyInstanceUID>/',
      series: 'By series: <PatientID>/<Study>/<Series>/ (recommended)',
      date: 'By date received: YYYY/MM/DD/',
    }),
  },
  file_naming: {
    group: 'storage',
    label: 'File names',
    control: select(FILE_NAMINGS, {
      sop_uid: 'SOP Instance UID (recommended, unique)',
      instance_number: 'Instance number: 0001.dcm',
      timestamp: 'Time received: 20260102_193000_123456.dcm',
      sequential: 'Sequential numbers',
    }),
  },
  max_storage_size_gb: {
    group: 'storage',
    label: 'Maximum storage size',
    hint: '0: no limit. At the limit, instances are refused (out of resources) unless cleanup is on.',
    control: number('GB', 0.1),
  },
  enable_storage_cleanup: {
    group: 'storage',
    label: 'Clean up automatically',
    hint: 'At the limit, the oldest studies past the retention period are deleted.',
    control: boolean,
  },
  storage_retention_days: {
    group: 'storage',
    label: 'Retention',
    hint: 'Cleanup never deletes a study younger than this.',
    control: number('days'),
  },
  storage_cleanup_low_water_percent: {
    group: 'storage',
    label: 'Cleanup low-water mark',
    hint: 'With cleanup on, a job (every 10 minutes, and soon after the limit is hit) deletes the oldest studies past the retention period, whose hand-off is done, until usage is under this share of the maximum size.',
    control: number('%'),
  },
  duplicate_policy: {
    group: 'storage',
    label: 'Duplicate instances',
    hint: 'What happens to an instance whose SOP Instance UID is already stored.',
    control: select(DUPLICATE_POLICIES, {
      keep_first: 'Keep the stored copy (answer success)',
      overwrite: 'Overwrite with the new copy',
      reject: 'Refuse the new copy (0x0111 duplicate SOP instance)',
    }),
  },
  durability: {
    group: 'storage',
    label: 'Durability',
    control: select(DURABILITIES, {
      fsync: 'On disk (fsync) before success is answered: safest',
      os: 'Handed to the operating system: faster, a power cut may lose the last files',
    }),
  },
  require_calling_ae_validation: {
    group: 'security',
    label: 'Require calling AE validation',
    hint: 'Only the active AE titles listed under AE titles may associate.',
    control: boolean,
  },
  ae_validation_observe_only: {
    group: 'security',
    label: 'Observe only',
    hint: 'Let every peer through but log those validation would reject: build the list first, then enforce.',
    control: boolean,
  },
  allowed_ip_addresses: {
    group: 'security',
    label: 'Allowed IP addresses',
    hint: 'Comma-separated IPv4 or IPv6 addresses or CIDR ranges, e.g. 192.168.1.100, 10.0.0.0/24. Empty: every address.',
    control: { type: 'address-list' },
  },
  tls_enabled: {
    group: 'tls',
    label: 'TLS listener',
    hint: 'Accept DICOM over TLS (TLS 1.2 or later, BCP 195 cipher suites) on the TLS port, beside the plain port. Needs a certificate and its key.',
    control: boolean,
  },
  tls_port: {
    group: 'tls',
    label: 'TLS port',
    hint: "2762 is DICOM's port for TLS. The same as the DICOM port: TLS only, no plain listener.",
    control: number(),
  },
  tls_certificate: {
    group: 'tls',
    label: 'Certificate file',
    hint: "Path on the server of our certificate (PEM, the chain after it). Also our client certificate toward peers marked 'TLS'. A relative path is relative to the server's working directory.",
    control: text('/etc/dicom-server/tls/server.crt'),
  },
  tls_private_key: {
    group: 'tls',
    label: 'Private key file',
    hint: "Path of the certificate's private key (PEM, not encrypted). Checked at start: it must belong to the certificate, which must not have expired.",
    control: text('/etc/dicom-server/tls/server.key'),
  },
  tls_ca_certificates: {
    group: 'tls',
    label: 'CA certificates file',
    hint: "The CA bundle (PEM) that peers' certificates must chain to: clients of the TLS listener, and the peers we reach over TLS. Empty: no client certificate is asked for, peers are checked against the system's CAs.",
    control: text('/etc/dicom-server/tls/ca.crt'),
  },
  tls_require_client_certificate: {
    group: 'tls',
    label: 'Require a client certificate',
    hint: 'Refuse TLS clients without a certificate signed by one of the CAs (each refusal is logged with its reason).',
    control: boolean,
  },
  accepted_sop_class_groups: {
    group: 'accepted',
    label: 'Accepted SOP classes',
    hint: 'Storage SOP classes by group; other classes are rejected when the association is negotiated.',
    control: { type: 'sop-class-groups' },
  },
  accepted_transfer_syntaxes: {
    group: 'accepted',
    label: 'Accepted transfer syntaxes',
    hint: 'At least one. Implicit VR Little Endian is the one every DICOM peer supports.',
    control: { type: 'transfer-syntaxes' },
  },
  enable_c_echo: {
    group: 'dimse',
    label: 'C-ECHO: verification',
    control: boolean,
  },
  enable_c_store: { group: 'dimse', label: 'C-STORE: receive instances', control: boolean },
  enable_c_find: { group: 'dimse', label: 'C-FIND: query', control: boolean },
  enable_c_move: {
    group: 'dimse',
    label: 'C-MOVE: retrieve to a destination',
    control: boolean,
  },
  enable_c_get: { group: 'dimse', label: 'C-GET: retrieve to the requester', control: boolean },
  max_query_results: {
    group: 'dimse',
    label: 'Most C-FIND matches',
    hint: 'A query with more matches is refused (out of resources) so that its sender narrows it. 0: no limit.',
    control: number('matches'),
  },
  case_insensitive_name_matching: {
    group: 'dimse',
    label: 'Match person names without regard to case',
    hint: 'C-FIND on names: "smith*" finds SMITH^JOHN.',
    control: boolean,
  },
  logging_level: {
    group: 'logging',
    label: 'Logging level',
    control: select(LOGGING_LEVELS, {
      DEBUG: 'DEBUG: very detailed, for troubleshooting',
      INFO: 'INFO: normal operation (recommended)',
      WARNING: 'WARNING: warnings and errors only',
      ERROR: 'ERROR: errors only',
    }),
  },
  log_connection_attempts: {
    group: 'logging',
    label: 'Log connection attempts',
    control: boolean,
  },
  log_received_files: { group: 'logging', label: 'Log received files', control: boolean },
  enable_performance_metrics: {
    group: 'logging',
    label: 'Record performance metrics',
    hint: 'Duration and transfer rate of each operation in the transaction log; bytes received and the receive and C-FIND latency histograms at /metrics.',
    control: boolean,
  },
  metrics_token: {
    group: 'logging',
    label: 'Metrics token',
    hint: 'Lets Prometheus read /metrics with Authorization: Bearer <token> (16 characters or more). Empty: only a logged-in console user may. Once saved it is never shown again: type a new one to replace it.',
    control: { type: 'secret' },
  },
  enable_transaction_log: {
    group: 'logging',
    label: 'Keep the transaction log',
    control: boolean,
  },
  transaction_log_retention_days: {
    group: 'logging',
    label: 'Transaction log retention',
    control: number('days'),
  },
  service_enabled: {
    group: 'service',
    label: 'DICOM service enabled',
    hint: 'Off: the service does not start with the server.',
    control: boolean,
  },
  auto_start: {
    group: 'service',
    label: 'Start automatically',
    hint: 'Start the DICOM service when the server starts (when enabled).',
    control: boolean,
  },
  auto_import_to_handler: {
    group: 'handoff',
    label: 'Import into the processing pipeline',
    hint: 'Register each completed series with the downstream processing.',
    control: boolean,
  },
  copy_to_handler_folder: {
    group: 'handoff',
    label: "Copy to the processing pipeline's folder",
    control: boolean,
  },
  handler_folder_path: {
    group: 'handoff',
    label: "Processing pipeline's folder",
    control: text('/path/to/handler/folder'),
  },
  trigger_processing_chain: {
    group: 'handoff',
    label: 'Start the processing chain',
    hint: 'POST each completed series to the webhook URLs and run the processing command.',
    control: boolean,
  },
  series_completion_seconds: {
    group: 'handoff',
    label: 'Series complete after',
    hint: 'A series is complete once none of its instances has arrived for this long (1 s to 1 day). A later instance reopens it and hands it off again as an update.',
    control: number('s'),
  },
  complete_series_on_release: {
    group: 'handoff',
    label: 'Complete series on release',
    hint: 'Also complete a series as soon as the association that sent it is released.',
    control: boolean,
  },
  webhook_urls: {
    group: 'handoff',
    label: 'Webhook URLs',
    hint: 'Comma-separated http(s) URLs; each gets a JSON event per completed series, retried until it answers 2xx.',
    control: text('https://pipeline.example/hooks/dicom'),
  },
  webhook_secret: {
    group: 'handoff',
    label: 'Webhook secret',
    hint: 'Signs each event (X-DICOM-Server-Signature, HMAC-SHA256). Empty: unsigned. Once saved it is never shown again: type a new one to replace it.',
    control: { type: 'secret' },
  },
  processing_command: {
    group: 'handoff',
    label: 'Processing command',
    hint: 'Run with the series folder as last argument (no shell); the event JSON is in DICOM_SERVER_EVENT.',
    control: text('/opt/pipeline/run --series'),
  },
};

/** The settings of a group, in the schema's order. */
export function settingsOf(group: SettingGroupId): SettingKey[] {
  return SETTING_KEYS.filter((key) => SETTING_FIELDS[key].group === group);
}

/** Every setting's label, for notices naming settings. */
export const SETTING_LABELS: Readonly<Record<SettingKey, string>> = Object.fromEntries(
  SETTING_KEYS.map((key) => [key, SETTING_FIELDS[key].label]),
) as Record<SettingKey, string>;
