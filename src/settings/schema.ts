/**
 * The settings of the server (the specification's DicomServerConfig) and of an allowed peer
 * (AllowedAETitle): one schema, with a message per field, used wherever a value comes in: the
 * command line and environment (`serve` flags, `config set`), the REST API and the console.
 * Field names are the specification's, in snake_case.
 *
 * Layer: settings. Pure (zod and the DICOM tables only): the console bundles it too.
 */

import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { STORAGE_GROUPS } from '../dicom/sop-classes.js';
import { KNOWN_TRANSFER_SYNTAXES } from '../dicom/transfer-syntax.js';

/** Folder structures of stored files. */
export const STORAGE_STRUCTURES = ['flat', 'patient', 'study', 'series', 'date'] as const;
/** File naming conventions of stored files. */
export const FILE_NAMINGS = ['sop_uid', 'instance_number', 'timestamp', 'sequential'] as const;
/** What happens to an instance whose SOP Instance UID is already stored. */
export const DUPLICATE_POLICIES = ['keep_first', 'overwrite', 'reject'] as const;
/** `fsync`: on disk before success; `os`: handed to the operating system. */
export const DURABILITIES = ['fsync', 'os'] as const;
/** The specification's logging levels. */
export const LOGGING_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR'] as const;
/** The DIMSE services that can be switched on and off. */
export const DIMSE_SERVICES = ['c_echo', 'c_store', 'c_find', 'c_move', 'c_get'] as const;
export type DimseService = (typeof DIMSE_SERVICES)[number];

/**
 * The characters an AE title may hold (PS3.5 §6.2, VR AE): the default repertoire without
 * backslash and control characters, 16 at most; leading and trailing spaces are not
 * significant and are dropped.
 */
function aeTitleField(options: { readonly isUppercase: boolean }) {
  let field = z
    .string({ error: 'must be text' })
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(16, { error: 'must be at most 16 characters' })
    .regex(/^[\x20-\x5b\x5d-\x7e]+$/, {
      error: 'may hold only printable ASCII characters, without backslash',
    });
  if (options.isUppercase) {
    field = field.regex(/^[^a-z]+$/, { error: 'must be uppercase' });
  }
  return field;
}

/** Parses an address or CIDR range (IPv4 or IPv6); undefined when it is neither. */
export function parseAddressRange(entry: string): [ipaddr.IPv4 | ipaddr.IPv6, number] | undefined {
  const text = entry.trim();
  // ipaddr.js also reads IPv4's legacy forms: "10" as 0.0.0.10, "192.168.1" as 192.168.0.1,
  // "010.0.0.1" (octal) as 8.0.0.1. In an allow-list each would admit another host than the one
  // written, so IPv4 is taken only as four decimal parts.
  const addressPart = text.split('/')[0] ?? '';
  if (ipaddr.IPv4.isValid(addressPart) && !ipaddr.IPv4.isValidFourPartDecimal(addressPart)) {
    return undefined;
  }
  try {
    if (text.includes('/')) return ipaddr.parseCIDR(text);
    const address = ipaddr.parse(text);
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  } catch {
    return undefined;
  }
}

/** The entries of a comma-separated address list, without blanks. */
export function addressListEntries(list: string): string[] {
  return list
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

function integer(min: number, max: number, unit = '') {
  const suffix = unit === '' ? '' : ` ${unit}`;
  return z
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(min, { error: `must be at least ${min}${suffix}` })
    .max(max, { error: `must be at most ${max}${suffix}` });
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `must be one of: ${values.join(', ')}` });
}

const seconds = (max: number) =>
  z
    .number({ error: 'must be a number of seconds' })
    .positive({ error: 'must be above 0 seconds' })
    .max(max, { error: `must be at most ${max} seconds` });

const addressList = z
  .string({ error: 'must be text' })
  .trim()
  .refine((list) => addressListEntries(list).every((e) => parseAddressRange(e) !== undefined), {
    error: (issue) => {
      const bad = addressListEntries(String(issue.input)).find(
        (e) => parseAddressRange(e) === undefined,
      );
      return `"${bad}" is not an IPv4 or IPv6 address or CIDR range`;
    },
  });

/** The entries of a comma-separated list of webhook URLs, without blanks. */
export function webhookUrlEntries(list: string): string[] {
  return addressListEntries(list);
}

/** Whether `text` is an absolute http or https URL. */
export function isWebhookUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
}

const webhookUrlList = z
  .string({ error: 'must be text' })
  .trim()
  .refine((list) => webhookUrlEntries(list).every(isWebhookUrl), {
    error: (issue) => {
      const bad = webhookUrlEntries(String(issue.input)).find((e) => !isWebhookUrl(e));
      return `"${bad}" is not an http or https URL`;
    },
  });

/** A file's path, or empty for none. */
function filePath() {
  return z
    .string({ error: 'must be text' })
    .trim()
    .max(4_096, { error: 'must be at most 4096 characters' })
    .default('');
}

/** Every setting, with its default. */
export const SettingsSchema = z.object({
  // Network
  ae_title: aeTitleField({ isUppercase: true }).default('DRAW_SCP'),
  host: z
    .string({ error: 'must be text' })
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(255, { error: 'must be at most 255 characters' })
    .default('0.0.0.0'),
  port: integer(1024, 65535).default(11112),
  max_associations: integer(1, 1000).default(10),
  max_pdu_length: integer(4096, 16 * 1024 * 1024, 'bytes').default(256 * 1024),
  acse_timeout: seconds(3600).default(30),
  dimse_timeout: seconds(86_400).default(60),
  network_timeout: seconds(86_400).default(60),
  // Storage
  storage_path: z.string({ error: 'must be text' }).trim().default(''),
  storage_structure: oneOf(STORAGE_STRUCTURES).default('series'),
  file_naming: oneOf(FILE_NAMINGS).default('sop_uid'),
  max_storage_size_gb: z
    .number({ error: 'must be a number' })
    .min(0, { error: 'must be 0 (no limit) or more' })
    .max(1_000_000, { error: 'must be at most 1000000' })
    .default(100),
  enable_storage_cleanup: z.boolean({ error: 'must be true or false' }).default(false),
  storage_retention_days: integer(0, 36_500, 'days').default(30),
  /**
   * With cleanup on and a limit, the periodic cleanup deletes old studies until usage is at or
   * under this share of max_storage_size_gb.
   */
  storage_cleanup_low_water_percent: integer(1, 100, 'percent').default(80),
  duplicate_policy: oneOf(DUPLICATE_POLICIES).default('keep_first'),
  durability: oneOf(DURABILITIES).default('fsync'),
  // Security
  require_calling_ae_validation: z.boolean({ error: 'must be true or false' }).default(false),
  ae_validation_observe_only: z.boolean({ error: 'must be true or false' }).default(false),
  allowed_ip_addresses: addressList.default(''),
  // DICOM over TLS (PS3.15 Annex B, BCP 195 profile). Paths are taken as given: a relative one
  // is relative to the server's working directory.
  /** A TLS listener beside the plain one (on tls_port; TLS only when tls_port equals port). */
  tls_enabled: z.boolean({ error: 'must be true or false' }).default(false),
  /** The TLS listener's port: 2762, DICOM's registered port for DICOM over TLS. */
  tls_port: integer(1024, 65535).default(2762),
  /** Our certificate (PEM, the chain after it): the TLS listener's, and our client certificate. */
  tls_certificate: filePath(),
  /** The certificate's private key (PEM, unencrypted). */
  tls_private_key: filePath(),
  /** CA certificates (PEM bundle) that peers' certificates must chain to, both ways. */
  tls_ca_certificates: filePath(),
  /** A TLS client without a certificate signed by one of those CAs is refused. */
  tls_require_client_certificate: z.boolean({ error: 'must be true or false' }).default(false),
  // What is accepted
  accepted_sop_class_groups: z
    .array(oneOf(STORAGE_GROUPS), { error: 'must be a list of SOP class groups' })
    .default([...STORAGE_GROUPS]),
  accepted_transfer_syntaxes: z
    .array(
      z.string().refine((uid) => KNOWN_TRANSFER_SYNTAXES.includes(uid), {
        error: (issue) => `${String(issue.input)} is not a transfer syntax we know`,
      }),
      { error: 'must be a list of transfer syntax UIDs' },
    )
    .min(1, { error: 'must hold at least one transfer syntax' })
    .default([...KNOWN_TRANSFER_SYNTAXES]),
  enable_c_echo: z.boolean({ error: 'must be true or false' }).default(true),
  enable_c_store: z.boolean({ error: 'must be true or false' }).default(true),
  enable_c_find: z.boolean({ error: 'must be true or false' }).default(true),
  enable_c_move: z.boolean({ error: 'must be true or false' }).default(true),
  enable_c_get: z.boolean({ error: 'must be true or false' }).default(true),
  // Query
  /** Most matches a C-FIND may have; a query with more is refused (0xA700). 0: no limit. */
  max_query_results: integer(0, 10_000_000, 'matches').default(10_000),
  /** Person names (PN keys) matched without regard to case, as most users expect. */
  case_insensitive_name_matching: z.boolean({ error: 'must be true or false' }).default(true),
  // Logging
  logging_level: oneOf(LOGGING_LEVELS).default('INFO'),
  log_connection_attempts: z.boolean({ error: 'must be true or false' }).default(true),
  log_received_files: z.boolean({ error: 'must be true or false' }).default(true),
  enable_performance_metrics: z.boolean({ error: 'must be true or false' }).default(true),
  /** The bearer token that may read GET /metrics (Prometheus); empty: only a console login may. */
  metrics_token: z
    .string({ error: 'must be text' })
    .trim()
    .refine((token) => token === '' || (token.length >= 16 && token.length <= 1_000), {
      error: 'must be empty or 16 to 1000 characters',
    })
    .refine((token) => !/\s/.test(token), { error: 'must not contain spaces' })
    .default(''),
  enable_transaction_log: z.boolean({ error: 'must be true or false' }).default(true),
  transaction_log_retention_days: integer(1, 3650, 'days').default(90),
  // Service
  service_enabled: z.boolean({ error: 'must be true or false' }).default(true),
  auto_start: z.boolean({ error: 'must be true or false' }).default(true),
  // Hand-off to processing
  auto_import_to_handler: z.boolean({ error: 'must be true or false' }).default(false),
  copy_to_handler_folder: z.boolean({ error: 'must be true or false' }).default(false),
  handler_folder_path: z.string({ error: 'must be text' }).trim().default(''),
  trigger_processing_chain: z.boolean({ error: 'must be true or false' }).default(false),
  /** A series is complete when none of its instances arrived for this long. */
  series_completion_seconds: integer(1, 86_400, 'seconds').default(30),
  /** A series is also complete when the association that sent it is released. */
  complete_series_on_release: z.boolean({ error: 'must be true or false' }).default(false),
  /** Where completed series are POSTed (trigger_processing_chain), comma-separated. */
  webhook_urls: webhookUrlList.default(''),
  /** The key of the webhooks' HMAC-SHA256 signature; empty: unsigned. */
  webhook_secret: z
    .string({ error: 'must be text' })
    .max(1_000, { error: 'must be at most 1000 characters' })
    .default(''),
  /** A command run with the series folder as last argument (trigger_processing_chain). */
  processing_command: z
    .string({ error: 'must be text' })
    .trim()
    .max(4_000, { error: 'must be at most 4000 characters' })
    .default(''),
});

/** The settings, complete. */
export type Settings = z.infer<typeof SettingsSchema>;
/** A setting's name. */
export type SettingKey = keyof Settings;

/** Every setting's name, in the schema's order. */
export const SETTING_KEYS = Object.keys(SettingsSchema.shape) as SettingKey[];

/** The settings a new installation starts with. */
export const DEFAULT_SETTINGS: Settings = SettingsSchema.parse({});

/**
 * Settings that take effect when the DICOM service (re)starts: the listener's and the storage's.
 * The others (access control, what is accepted, services on or off, logging) reach a running
 * service with its next association.
 */
export const RESTART_SETTINGS: ReadonlySet<SettingKey> = new Set<SettingKey>([
  'ae_title',
  'host',
  'port',
  'max_associations',
  'max_pdu_length',
  'acse_timeout',
  'dimse_timeout',
  'network_timeout',
  'storage_path',
  'storage_structure',
  'file_naming',
  'max_storage_size_gb',
  'enable_storage_cleanup',
  'storage_retention_days',
  'storage_cleanup_low_water_percent',
  'duplicate_policy',
  'durability',
  'tls_enabled',
  'tls_port',
  'tls_certificate',
  'tls_private_key',
  'tls_ca_certificates',
  'tls_require_client_certificate',
]);

/**
 * The rules between TLS settings: a listener needs a certificate and its key, a required
 * client certificate needs the CAs to check it against, and a certificate goes with its key.
 * A message per field to set; the files themselves are checked when the service starts.
 */
export function tlsSettingErrors(settings: Settings): FieldErrors {
  const errors: FieldErrors = {};
  const needs = (key: SettingKey, message: string) => {
    if (settings[key] === '') errors[key] ??= message;
  };
  if (settings.tls_enabled) {
    needs('tls_certificate', 'must be set when tls_enabled is on');
    needs('tls_private_key', 'must be set when tls_enabled is on');
  }
  if (settings.tls_enabled && settings.tls_require_client_certificate) {
    needs('tls_ca_certificates', 'must be set when tls_require_client_certificate is on');
  }
  if (settings.tls_private_key !== '') needs('tls_certificate', 'must be set with tls_private_key');
  if (settings.tls_certificate !== '') needs('tls_private_key', 'must be set with tls_certificate');
  return errors;
}

/** A message per field that failed. */
export type FieldErrors = Record<string, string>;

/** The outcome of a validation: the value, or a message per field. */
export type Validated<T> =
  | { readonly isValid: true; readonly value: T }
  | { readonly isValid: false; readonly errors: FieldErrors };

/** A message per field; an unknown name is reported as a field of its own, with `unknownMessage`. */
function fieldErrors(error: z.ZodError, unknownMessage = 'is not a known field'): FieldErrors {
  const errors: FieldErrors = {};
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys' && issue.path.length === 0) {
      for (const key of issue.keys) errors[key] ??= unknownMessage;
      continue;
    }
    const field = issue.path.length === 0 ? '_' : String(issue.path[0]);
    errors[field] ??= issue.message;
  }
  return errors;
}

function validated<T>(result: z.ZodSafeParseResult<T>, unknownMessage?: string): Validated<T> {
  return result.success
    ? { isValid: true, value: result.data }
    : { isValid: false, errors: fieldErrors(result.error, unknownMessage) };
}

/**
 * Validates complete settings (missing fields take their defaults; unknown ones are errors),
 * then the rules between fields.
 */
export function validateSettings(input: unknown): Validated<Settings> {
  const result = validated(SettingsSchema.strict().safeParse(input), 'is not a known setting');
  if (!result.isValid) return result;
  const errors = tlsSettingErrors(result.value);
  return Object.keys(errors).length === 0 ? result : { isValid: false, errors };
}

/** Applies a change to settings: unknown names and invalid values are errors, per field. */
export function applySettingsChange(current: Settings, change: unknown): Validated<Settings> {
  if (typeof change !== 'object' || change === null || Array.isArray(change)) {
    return { isValid: false, errors: { _: 'must be an object of settings' } };
  }
  return validateSettings({ ...current, ...change });
}

/** Reads stored settings: fields no longer known are dropped, missing ones get defaults. */
export function settingsFromStored(stored: unknown): Settings {
  const known = Object.fromEntries(
    Object.entries((stored ?? {}) as Record<string, unknown>).filter(([key]) =>
      (SETTING_KEYS as string[]).includes(key),
    ),
  );
  const result = SettingsSchema.safeParse(known);
  if (result.success) return result.data;
  // A stored value that no longer validates (a tightened rule) falls back to its default.
  const kept = { ...known };
  for (const field of Object.keys(fieldErrors(result.error))) delete kept[field];
  return SettingsSchema.parse(kept);
}

/**
 * A setting's value from text (command line, environment): booleans as true/false, yes/no,
 * on/off or 1/0; lists comma-separated; numbers as numbers. Validation is the schema's.
 */
export function settingFromText(key: SettingKey, text: string): unknown {
  const example = DEFAULT_SETTINGS[key];
  const trimmed = text.trim();
  if (typeof example === 'boolean') {
    const lower = trimmed.toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(lower)) return true;
    if (['false', 'no', 'off', '0'].includes(lower)) return false;
    return trimmed;
  }
  if (typeof example === 'number') return trimmed === '' ? trimmed : Number(trimmed);
  if (Array.isArray(example)) return addressListEntries(trimmed);
  if (key === 'logging_level') return loggingLevelFromText(trimmed);
  return trimmed;
}

/** DEBUG, INFO, WARNING, ERROR, also written in lower case or as pino's names. */
function loggingLevelFromText(text: string): string {
  const upper = text.toUpperCase();
  const aliases: Record<string, string> = { WARN: 'WARNING', TRACE: 'DEBUG', FATAL: 'ERROR' };
  return aliases[upper] ?? upper;
}

/** The settings shown as text, a line per setting (`config get`). */
export function settingAsText(value: Settings[SettingKey]): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

// ---- allowed peers ---------------------------------------------------------------------------

/** A peer allowed to associate (the specification's AllowedAETitle), with its permissions. */
export const AllowedAeSchema = z.object({
  ae_title: aeTitleField({ isUppercase: false }),
  description: z
    .string({ error: 'must be text' })
    .trim()
    .max(200, { error: 'must be at most 200 characters' })
    .default(''),
  expected_ip: z
    .string({ error: 'must be text' })
    .trim()
    .refine((text) => text === '' || parseAddressRange(text) !== undefined, {
      error: 'must be an IPv4 or IPv6 address or CIDR range, or empty',
    })
    .default(''),
  is_active: z.boolean({ error: 'must be true or false' }).default(true),
  host: z
    .string({ error: 'must be text' })
    .trim()
    .max(255, { error: 'must be at most 255 characters' })
    .default(''),
  port: z
    .union([integer(1, 65535), z.null()], { error: 'must be a port from 1 to 65535, or empty' })
    .default(null),
  may_store: z.boolean({ error: 'must be true or false' }).default(true),
  may_query: z.boolean({ error: 'must be true or false' }).default(true),
  may_retrieve: z.boolean({ error: 'must be true or false' }).default(true),
  is_move_destination: z.boolean({ error: 'must be true or false' }).default(true),
  /**
   * We reach it over TLS (C-MOVE sub-operations, forwarding, C-ECHO tests) with our certificate
   * as client certificate, its certificate checked against tls_ca_certificates.
   */
  use_tls: z.boolean({ error: 'must be true or false' }).default(false),
});

/** An allowed peer. */
export type AllowedAe = z.infer<typeof AllowedAeSchema>;

/** Validates a new allowed peer (missing fields take their defaults). */
export function validateAllowedAe(input: unknown): Validated<AllowedAe> {
  const result = validated(AllowedAeSchema.strict().safeParse(input));
  if (!result.isValid) return result;
  const { host, port } = result.value;
  if ((host === '') !== (port === null)) {
    return {
      isValid: false,
      errors: { [host === '' ? 'host' : 'port']: 'host and port go together (a move destination)' },
    };
  }
  return result;
}

/** Applies a change to an allowed peer; the AE title itself stays. */
export function applyAllowedAeChange(current: AllowedAe, change: unknown): Validated<AllowedAe> {
  if (typeof change !== 'object' || change === null || Array.isArray(change)) {
    return { isValid: false, errors: { _: 'must be an object of fields' } };
  }
  return validateAllowedAe({ ...current, ...change, ae_title: current.ae_title });
}
