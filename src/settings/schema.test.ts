/**
 * The settings schema and the allowed-peer schema: the defaults a new installation starts with;
 * the rules of each field with the message it gives (AE titles, ports, address lists, transfer
 * syntaxes, enumerations, the hand-off's completion time, webhook URLs, secret and command);
 * unknown names refused by name; changes applied over current values;
 * stored settings read back leniently (unknown names dropped, invalid values defaulted); values
 * read from text (booleans, numbers, lists, logging level aliases) and written back as text;
 * the host/port pairing of a move destination, and an allowed peer's AE title kept on change.
 *
 * Layer: unit test (settings).
 */

import { describe, expect, it } from 'vitest';
import { STORAGE_GROUPS } from '../dicom/sop-classes.js';
import { KNOWN_TRANSFER_SYNTAXES } from '../dicom/transfer-syntax.js';
import {
  type AllowedAe,
  addressListEntries,
  applyAllowedAeChange,
  applySettingsChange,
  DEFAULT_SETTINGS,
  type FieldErrors,
  isWebhookUrl,
  parseAddressRange,
  RESTART_SETTINGS,
  SETTING_KEYS,
  type SettingKey,
  type Settings,
  SettingsSchema,
  settingAsText,
  settingFromText,
  settingsFromStored,
  type Validated,
  validateAllowedAe,
  validateSettings,
  webhookUrlEntries,
} from './schema.js';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';

/** The errors of an outcome that must be invalid. */
function errorsOf<T>(result: Validated<T>): FieldErrors {
  if (result.isValid) throw new Error(`expected errors, got ${JSON.stringify(result.value)}`);
  return result.errors;
}

/** The value of an outcome that must be valid. */
function validValue<T>(result: Validated<T>): T {
  if (!result.isValid) throw new Error(`expected a value, got ${JSON.stringify(result.errors)}`);
  return result.value;
}

/** The message for one field of settings, or undefined when they validate. */
function settingError(change: Record<string, unknown>, field: string): string | undefined {
  const result = validateSettings(change);
  return result.isValid ? undefined : result.errors[field];
}

describe('settings defaults', () => {
  it('starts a new installation with the specification defaults', () => {
    expect(DEFAULT_SETTINGS).toMatchObject({
      ae_title: 'DRAW_SCP',
      host: '0.0.0.0',
      port: 11112,
      max_associations: 10,
      max_pdu_length: 256 * 1024,
      acse_timeout: 30,
      dimse_timeout: 60,
      network_timeout: 60,
      storage_path: '',
      storage_structure: 'series',
      file_naming: 'sop_uid',
      max_storage_size_gb: 100,
      enable_storage_cleanup: false,
      storage_retention_days: 30,
      storage_cleanup_low_water_percent: 80,
      duplicate_policy: 'keep_first',
      durability: 'fsync',
      require_calling_ae_validation: false,
      ae_validation_observe_only: false,
      allowed_ip_addresses: '',
      enable_c_echo: true,
      enable_c_store: true,
      enable_c_find: true,
      enable_c_move: true,
      enable_c_get: true,
      max_query_results: 10_000,
      case_insensitive_name_matching: true,
      logging_level: 'INFO',
      log_connection_attempts: true,
      log_received_files: true,
      enable_performance_metrics: true,
      enable_transaction_log: true,
      transaction_log_retention_days: 90,
      service_enabled: true,
      auto_start: true,
      auto_import_to_handler: false,
      copy_to_handler_folder: false,
      handler_folder_path: '',
      trigger_processing_chain: false,
      series_completion_seconds: 30,
      complete_series_on_release: false,
      webhook_urls: '',
      webhook_secret: '',
      processing_command: '',
    });
  });

  it('accepts every storage group and every known transfer syntax by default', () => {
    expect(DEFAULT_SETTINGS.accepted_sop_class_groups).toEqual([...STORAGE_GROUPS]);
    expect(DEFAULT_SETTINGS.accepted_transfer_syntaxes).toEqual([...KNOWN_TRANSFER_SYNTAXES]);
  });

  it('fills every setting from its default when given nothing, and lists them all by name', () => {
    expect(validValue(validateSettings({}))).toEqual(DEFAULT_SETTINGS);
    expect(Object.keys(DEFAULT_SETTINGS).sort()).toEqual([...SETTING_KEYS].sort());
  });

  it('hands out default lists that changing one parse does not change for the next', () => {
    const first = SettingsSchema.parse({});
    first.accepted_sop_class_groups.pop();
    expect(SettingsSchema.parse({}).accepted_sop_class_groups).toEqual([...STORAGE_GROUPS]);
    expect(DEFAULT_SETTINGS.accepted_sop_class_groups).toEqual([...STORAGE_GROUPS]);
  });
});

describe('our AE title', () => {
  it('accepts 1 to 16 characters of the default repertoire', () => {
    expect(settingError({ ae_title: 'A' }, 'ae_title')).toBeUndefined();
    expect(settingError({ ae_title: 'ABCDEFGHIJKLMNOP' }, 'ae_title')).toBeUndefined();
    expect(settingError({ ae_title: 'MY-SCP_1 @HOSP.2' }, 'ae_title')).toBeUndefined();
  });

  it('drops leading and trailing spaces, which are not significant', () => {
    expect(validValue(validateSettings({ ae_title: '  PACS  ' })).ae_title).toBe('PACS');
    // 16 characters once trimmed, 20 before.
    expect(validValue(validateSettings({ ae_title: '  ABCDEFGHIJKLMNOP  ' })).ae_title).toBe(
      'ABCDEFGHIJKLMNOP',
    );
  });

  it('refuses an empty or blank title', () => {
    expect(settingError({ ae_title: '' }, 'ae_title')).toBe('must not be empty');
    expect(settingError({ ae_title: '    ' }, 'ae_title')).toBe('must not be empty');
  });

  it('refuses more than 16 characters', () => {
    expect(settingError({ ae_title: 'ABCDEFGHIJKLMNOPQ' }, 'ae_title')).toBe(
      'must be at most 16 characters',
    );
  });

  it('refuses lower case letters in our own title', () => {
    expect(settingError({ ae_title: 'draw_scp' }, 'ae_title')).toBe('must be uppercase');
    expect(settingError({ ae_title: 'Draw' }, 'ae_title')).toBe('must be uppercase');
  });

  it('refuses a backslash (the value separator), control characters and non-ASCII', () => {
    const message = 'may hold only printable ASCII characters, without backslash';
    expect(settingError({ ae_title: 'A\\B' }, 'ae_title')).toBe(message);
    expect(settingError({ ae_title: 'A\tB' }, 'ae_title')).toBe(message);
    expect(settingError({ ae_title: 'A\nB' }, 'ae_title')).toBe(message);
    expect(settingError({ ae_title: 'A\u0000B' }, 'ae_title')).toBe(message);
    expect(settingError({ ae_title: 'A\u007fB' }, 'ae_title')).toBe(message);
    expect(settingError({ ae_title: 'ÄRZTE' }, 'ae_title')).toBe(message);
  });

  it('refuses a title that is not text', () => {
    expect(settingError({ ae_title: 42 }, 'ae_title')).toBe('must be text');
    expect(settingError({ ae_title: null }, 'ae_title')).toBe('must be text');
  });
});

describe('numeric settings', () => {
  it('takes a port from 1024 to 65535', () => {
    expect(settingError({ port: 1024 }, 'port')).toBeUndefined();
    expect(settingError({ port: 65535 }, 'port')).toBeUndefined();
    expect(settingError({ port: 1023 }, 'port')).toBe('must be at least 1024');
    expect(settingError({ port: 65536 }, 'port')).toBe('must be at most 65535');
    expect(settingError({ port: 0 }, 'port')).toBe('must be at least 1024');
  });

  it('refuses a port that is not a whole number', () => {
    expect(settingError({ port: 11112.5 }, 'port')).toBe('must be a whole number');
    expect(settingError({ port: '11112' }, 'port')).toBe('must be a number');
    expect(settingError({ port: Number.NaN }, 'port')).toBe('must be a number');
    expect(settingError({ port: Number.POSITIVE_INFINITY }, 'port')).toBeDefined();
  });

  it('names the unit in a range message', () => {
    expect(settingError({ max_pdu_length: 1000 }, 'max_pdu_length')).toBe(
      'must be at least 4096 bytes',
    );
    expect(settingError({ storage_retention_days: -1 }, 'storage_retention_days')).toBe(
      'must be at least 0 days',
    );
    expect(
      settingError({ transaction_log_retention_days: 0 }, 'transaction_log_retention_days'),
    ).toBe('must be at least 1 days');
  });

  it('takes the cleanup low-water mark as a whole percentage from 1 to 100', () => {
    expect(
      validValue(validateSettings({ storage_cleanup_low_water_percent: 60 }))
        .storage_cleanup_low_water_percent,
    ).toBe(60);
    expect(
      settingError({ storage_cleanup_low_water_percent: 0 }, 'storage_cleanup_low_water_percent'),
    ).toBe('must be at least 1 percent');
    expect(
      settingError({ storage_cleanup_low_water_percent: 101 }, 'storage_cleanup_low_water_percent'),
    ).toBe('must be at most 100 percent');
    expect(
      settingError(
        { storage_cleanup_low_water_percent: 80.5 },
        'storage_cleanup_low_water_percent',
      ),
    ).toBe('must be a whole number');
    expect(RESTART_SETTINGS.has('storage_cleanup_low_water_percent')).toBe(true);
  });

  it('takes timeouts in seconds above zero, fractions allowed', () => {
    expect(validValue(validateSettings({ acse_timeout: 0.5 })).acse_timeout).toBe(0.5);
    expect(settingError({ acse_timeout: 0 }, 'acse_timeout')).toBe('must be above 0 seconds');
    expect(settingError({ acse_timeout: 3601 }, 'acse_timeout')).toBe(
      'must be at most 3600 seconds',
    );
    expect(settingError({ dimse_timeout: 'soon' }, 'dimse_timeout')).toBe(
      'must be a number of seconds',
    );
  });

  it('takes a storage limit of 0 (no limit) or more, fractions of a gigabyte allowed', () => {
    expect(validValue(validateSettings({ max_storage_size_gb: 0 })).max_storage_size_gb).toBe(0);
    expect(validValue(validateSettings({ max_storage_size_gb: 0.5 })).max_storage_size_gb).toBe(
      0.5,
    );
    expect(settingError({ max_storage_size_gb: -1 }, 'max_storage_size_gb')).toBe(
      'must be 0 (no limit) or more',
    );
  });

  it('takes from 1 to 1000 simultaneous associations', () => {
    expect(settingError({ max_associations: 0 }, 'max_associations')).toBe('must be at least 1');
    expect(settingError({ max_associations: 1001 }, 'max_associations')).toBe(
      'must be at most 1000',
    );
  });
});

describe('the allowed address list', () => {
  it('accepts comma-separated IPv4 and IPv6 addresses and CIDR ranges', () => {
    const list = '192.168.1.100, 10.0.0.0/8, ::1, fe80::/10';
    expect(validValue(validateSettings({ allowed_ip_addresses: list })).allowed_ip_addresses).toBe(
      list,
    );
  });

  it('accepts an empty list (no restriction) and ignores blank entries', () => {
    expect(settingError({ allowed_ip_addresses: '' }, 'allowed_ip_addresses')).toBeUndefined();
    expect(
      settingError({ allowed_ip_addresses: ' 10.0.0.1, , 10.0.0.2, ' }, 'allowed_ip_addresses'),
    ).toBeUndefined();
  });

  it('names the first bad entry in its message', () => {
    expect(
      settingError(
        { allowed_ip_addresses: '192.168.1.100, pacs.local, ::1' },
        'allowed_ip_addresses',
      ),
    ).toBe('"pacs.local" is not an IPv4 or IPv6 address or CIDR range');
    expect(
      settingError({ allowed_ip_addresses: '10.0.0.0/33, nope' }, 'allowed_ip_addresses'),
    ).toBe('"10.0.0.0/33" is not an IPv4 or IPv6 address or CIDR range');
    expect(settingError({ allowed_ip_addresses: '256.1.1.1' }, 'allowed_ip_addresses')).toBe(
      '"256.1.1.1" is not an IPv4 or IPv6 address or CIDR range',
    );
    expect(settingError({ allowed_ip_addresses: '::1/129' }, 'allowed_ip_addresses')).toBe(
      '"::1/129" is not an IPv4 or IPv6 address or CIDR range',
    );
  });

  it('refuses the legacy IPv4 forms that would admit another host than written', () => {
    // "10" reads as 0.0.0.10, "192.168.1" as 192.168.0.1, "010.0.0.1" (octal) as 8.0.0.1.
    for (const entry of [
      '10',
      '192.168.1',
      '010.0.0.1',
      '0x0a.0.0.1',
      '3232235777',
      '010.0.0.0/8',
    ]) {
      expect(settingError({ allowed_ip_addresses: entry }, 'allowed_ip_addresses'), entry).toBe(
        `"${entry}" is not an IPv4 or IPv6 address or CIDR range`,
      );
    }
  });

  it('refuses a list that is not text', () => {
    expect(settingError({ allowed_ip_addresses: ['10.0.0.1'] }, 'allowed_ip_addresses')).toBe(
      'must be text',
    );
  });

  it('parses an address as a range of its full length, and a CIDR range as written', () => {
    const v4 = parseAddressRange(' 192.168.1.100 ');
    expect(v4?.[0].toString()).toBe('192.168.1.100');
    expect(v4?.[1]).toBe(32);
    const v6 = parseAddressRange('::1');
    expect(v6?.[0].kind()).toBe('ipv6');
    expect(v6?.[1]).toBe(128);
    const cidr = parseAddressRange('fe80::/10');
    expect(cidr?.[0].kind()).toBe('ipv6');
    expect(cidr?.[1]).toBe(10);
    expect(parseAddressRange('10.0.0.0/8')?.[1]).toBe(8);
    expect(parseAddressRange('not an address')).toBeUndefined();
    expect(parseAddressRange('')).toBeUndefined();
  });

  it('splits a list on commas, trimming entries and dropping blank ones', () => {
    expect(addressListEntries(' 10.0.0.1 ,, ::1 , ')).toEqual(['10.0.0.1', '::1']);
    expect(addressListEntries('')).toEqual([]);
  });
});

describe('lists and choices', () => {
  it('takes known transfer syntaxes and names an unknown one', () => {
    expect(
      validValue(validateSettings({ accepted_transfer_syntaxes: [IMPLICIT_LE] }))
        .accepted_transfer_syntaxes,
    ).toEqual([IMPLICIT_LE]);
    expect(
      settingError(
        { accepted_transfer_syntaxes: [EXPLICIT_LE, '1.2.3.4'] },
        'accepted_transfer_syntaxes',
      ),
    ).toBe('1.2.3.4 is not a transfer syntax we know');
  });

  it('needs at least one transfer syntax', () => {
    expect(settingError({ accepted_transfer_syntaxes: [] }, 'accepted_transfer_syntaxes')).toBe(
      'must hold at least one transfer syntax',
    );
  });

  it('takes SOP class groups by name, an empty list included, and refuses unknown ones', () => {
    expect(
      validValue(validateSettings({ accepted_sop_class_groups: ['ct', 'mr'] }))
        .accepted_sop_class_groups,
    ).toEqual(['ct', 'mr']);
    expect(settingError({ accepted_sop_class_groups: [] }, 'accepted_sop_class_groups')).toBe(
      undefined,
    );
    expect(
      settingError({ accepted_sop_class_groups: ['xray'] }, 'accepted_sop_class_groups'),
    ).toMatch(/^must be one of: ct, mr, /);
    expect(settingError({ accepted_sop_class_groups: 'ct' }, 'accepted_sop_class_groups')).toBe(
      'must be a list of SOP class groups',
    );
  });

  it('lists the choices when a value is not one of them', () => {
    expect(settingError({ logging_level: 'warn' }, 'logging_level')).toBe(
      'must be one of: DEBUG, INFO, WARNING, ERROR',
    );
    expect(settingError({ duplicate_policy: 'replace' }, 'duplicate_policy')).toBe(
      'must be one of: keep_first, overwrite, reject',
    );
    expect(settingError({ storage_structure: 'tree' }, 'storage_structure')).toBe(
      'must be one of: flat, patient, study, series, date',
    );
  });

  it('takes booleans only as booleans', () => {
    expect(settingError({ auto_start: 'yes' }, 'auto_start')).toBe('must be true or false');
    expect(settingError({ enable_c_find: 1 }, 'enable_c_find')).toBe('must be true or false');
    expect(validValue(validateSettings({ auto_start: false })).auto_start).toBe(false);
  });
});

describe('hand-off settings', () => {
  it('takes a completion time of 1 second to 1 day, in whole seconds', () => {
    expect(settingError({ series_completion_seconds: 1 }, 'series_completion_seconds')).toBe(
      undefined,
    );
    expect(settingError({ series_completion_seconds: 86_400 }, 'series_completion_seconds')).toBe(
      undefined,
    );
    expect(settingError({ series_completion_seconds: 0 }, 'series_completion_seconds')).toBe(
      'must be at least 1 seconds',
    );
    expect(settingError({ series_completion_seconds: 86_401 }, 'series_completion_seconds')).toBe(
      'must be at most 86400 seconds',
    );
    expect(settingError({ series_completion_seconds: 1.5 }, 'series_completion_seconds')).toBe(
      'must be a whole number',
    );
  });

  it('takes comma-separated http and https webhook URLs, blanks ignored, trimmed', () => {
    const value = validValue(
      validateSettings({
        webhook_urls: ' https://a.example/hook , http://10.0.0.1:8080/x?token=1,, ',
      }),
    );
    expect(value.webhook_urls).toBe('https://a.example/hook , http://10.0.0.1:8080/x?token=1,,');
    expect(webhookUrlEntries(value.webhook_urls)).toEqual([
      'https://a.example/hook',
      'http://10.0.0.1:8080/x?token=1',
    ]);
    expect(settingError({ webhook_urls: '' }, 'webhook_urls')).toBeUndefined();
  });

  it('names the first webhook URL that is not http or https', () => {
    expect(
      settingError({ webhook_urls: 'https://ok.example,ftp://x.example' }, 'webhook_urls'),
    ).toBe('"ftp://x.example" is not an http or https URL');
    expect(settingError({ webhook_urls: 'pipeline.local/hook' }, 'webhook_urls')).toBe(
      '"pipeline.local/hook" is not an http or https URL',
    );
    expect(settingError({ webhook_urls: 42 }, 'webhook_urls')).toBe('must be text');
  });

  it('tells whether a text is a webhook URL', () => {
    expect(isWebhookUrl('https://a.example')).toBe(true);
    expect(isWebhookUrl('http://127.0.0.1:9/x')).toBe(true);
    expect(isWebhookUrl('file:///etc/passwd')).toBe(false);
    expect(isWebhookUrl('http://')).toBe(false);
    expect(isWebhookUrl('')).toBe(false);
  });

  it('keeps the secret as given and bounds the secret and the command', () => {
    expect(validValue(validateSettings({ webhook_secret: ' s3cret ' })).webhook_secret).toBe(
      ' s3cret ',
    );
    expect(settingError({ webhook_secret: 'x'.repeat(1_001) }, 'webhook_secret')).toBe(
      'must be at most 1000 characters',
    );
    expect(
      validValue(validateSettings({ processing_command: ' /opt/run "a b" ' })).processing_command,
    ).toBe('/opt/run "a b"');
    expect(settingError({ processing_command: 'x'.repeat(4_001) }, 'processing_command')).toBe(
      'must be at most 4000 characters',
    );
  });

  it('applies the hand-off settings to a running service without a restart', () => {
    for (const key of [
      'series_completion_seconds',
      'complete_series_on_release',
      'webhook_urls',
      'webhook_secret',
      'processing_command',
    ] as const) {
      expect(RESTART_SETTINGS.has(key), key).toBe(false);
    }
  });
});

describe('TLS settings', () => {
  const files = {
    tls_certificate: 'tls/server.crt',
    tls_private_key: 'tls/server.key',
    tls_ca_certificates: 'tls/ca.crt',
  };

  it('starts with TLS off on port 2762 and no files', () => {
    expect(DEFAULT_SETTINGS).toMatchObject({
      tls_enabled: false,
      tls_port: 2762,
      tls_certificate: '',
      tls_private_key: '',
      tls_ca_certificates: '',
      tls_require_client_certificate: false,
    });
  });

  it('takes paths as given, trimmed (relative ones are resolved when the service starts)', () => {
    const value = validValue(validateSettings({ ...files, tls_certificate: ' tls/server.crt ' }));
    expect(value.tls_certificate).toBe('tls/server.crt');
  });

  it('takes the TLS port in the range of the DICOM port, the same port included', () => {
    expect(validValue(validateSettings({ tls_port: 11112 })).tls_port).toBe(11112);
    expect(settingError({ tls_port: 443 }, 'tls_port')).toBe('must be at least 1024');
  });

  it('needs a certificate and its key for the listener', () => {
    expect(errorsOf(validateSettings({ tls_enabled: true }))).toEqual({
      tls_certificate: 'must be set when tls_enabled is on',
      tls_private_key: 'must be set when tls_enabled is on',
    });
    expect(validValue(validateSettings({ ...files, tls_enabled: true })).tls_enabled).toBe(true);
  });

  it('needs the CA bundle to require client certificates', () => {
    const { tls_ca_certificates: _, ...withoutCa } = files;
    expect(
      errorsOf(
        validateSettings({ ...withoutCa, tls_enabled: true, tls_require_client_certificate: true }),
      ),
    ).toEqual({ tls_ca_certificates: 'must be set when tls_require_client_certificate is on' });
  });

  it('takes a certificate only with its key, also for client use with TLS off', () => {
    expect(errorsOf(validateSettings({ tls_certificate: 'a.crt' }))).toEqual({
      tls_private_key: 'must be set with tls_certificate',
    });
    expect(errorsOf(validateSettings({ tls_private_key: 'a.key' }))).toEqual({
      tls_certificate: 'must be set with tls_private_key',
    });
    expect(validValue(validateSettings({ tls_ca_certificates: 'ca.crt' })).tls_enabled).toBe(false);
  });

  it('refuses a change that breaks the rules between TLS settings, naming the field', () => {
    const current = validValue(validateSettings(files));
    expect(errorsOf(applySettingsChange(current, { tls_private_key: '' }))).toEqual({
      tls_private_key: 'must be set with tls_certificate',
    });
  });

  it('applies the TLS settings when the service restarts (the listener is made at start)', () => {
    for (const key of SETTING_KEYS.filter((k) => k.startsWith('tls_'))) {
      expect(RESTART_SETTINGS.has(key), key).toBe(true);
    }
  });

  it('reaches an allowed peer over plain TCP unless it is marked use_tls', () => {
    expect(validValue(validateAllowedAe({ ae_title: 'PACS' })).use_tls).toBe(false);
    expect(validValue(validateAllowedAe({ ae_title: 'PACS', use_tls: true })).use_tls).toBe(true);
    expect(errorsOf(validateAllowedAe({ ae_title: 'PACS', use_tls: 'yes' }))).toEqual({
      use_tls: 'must be true or false',
    });
  });
});

describe('validating and changing settings', () => {
  it('refuses an unknown setting by its name', () => {
    const errors = errorsOf(validateSettings({ ae_titel: 'PACS', colour: 'blue' }));
    expect(Object.keys(errors).sort()).toEqual(['ae_titel', 'colour']);
    expect(errors.ae_titel).toBe('is not a known setting');
  });

  it('gives one message per failing field, all fields at once', () => {
    const errors = errorsOf(
      validateSettings({ ae_title: 'lower', port: 80, allowed_ip_addresses: 'x', durability: 1 }),
    );
    expect(errors).toEqual({
      ae_title: 'must be uppercase',
      port: 'must be at least 1024',
      allowed_ip_addresses: '"x" is not an IPv4 or IPv6 address or CIDR range',
      durability: 'must be one of: fsync, os',
    });
  });

  it('applies a change over the current settings, keeping the others', () => {
    const current: Settings = { ...DEFAULT_SETTINGS, port: 4242, ae_title: 'OURS' };
    const changed = validValue(applySettingsChange(current, { max_associations: 20 }));
    expect(changed).toEqual({ ...current, max_associations: 20 });
  });

  it('normalises a changed value as the schema does', () => {
    const changed = validValue(applySettingsChange(DEFAULT_SETTINGS, { ae_title: '  NEW_SCP ' }));
    expect(changed.ae_title).toBe('NEW_SCP');
  });

  it('refuses a change with an invalid or unknown field, naming each', () => {
    expect(errorsOf(applySettingsChange(DEFAULT_SETTINGS, { port: 100 }))).toEqual({
      port: 'must be at least 1024',
    });
    expect(errorsOf(applySettingsChange(DEFAULT_SETTINGS, { portt: 11113 }))).toEqual({
      portt: 'is not a known setting',
    });
  });

  it('refuses a change that is not an object of settings', () => {
    for (const change of [null, undefined, 'port=1', 42, [{ port: 2000 }]]) {
      expect(errorsOf(applySettingsChange(DEFAULT_SETTINGS, change))).toEqual({
        _: 'must be an object of settings',
      });
    }
  });

  it('reports an invalid current value along with the change (nothing slips through)', () => {
    const current = { ...DEFAULT_SETTINGS, port: 80 } as Settings;
    expect(errorsOf(applySettingsChange(current, { max_associations: 5 }))).toEqual({
      port: 'must be at least 1024',
    });
  });
});

describe('settings read from storage', () => {
  it('gives the defaults for nothing stored', () => {
    expect(settingsFromStored(undefined)).toEqual(DEFAULT_SETTINGS);
    expect(settingsFromStored(null)).toEqual(DEFAULT_SETTINGS);
    expect(settingsFromStored({})).toEqual(DEFAULT_SETTINGS);
  });

  it('keeps stored values and completes missing ones with their defaults', () => {
    const settings = settingsFromStored({ ae_title: 'STORED', port: 4242 });
    expect(settings).toEqual({ ...DEFAULT_SETTINGS, ae_title: 'STORED', port: 4242 });
  });

  it('drops names no longer known', () => {
    const settings = settingsFromStored({ port: 4242, retired_setting: true });
    expect(settings).toEqual({ ...DEFAULT_SETTINGS, port: 4242 });
    expect(settings).not.toHaveProperty('retired_setting');
  });

  it('falls back to the default for each stored value that no longer validates', () => {
    const settings = settingsFromStored({
      ae_title: 'lower case',
      port: 80,
      max_associations: 'many',
      accepted_transfer_syntaxes: [EXPLICIT_LE, '1.2.3'],
      logging_level: 'WARNING',
      auto_start: false,
    });
    expect(settings).toEqual({ ...DEFAULT_SETTINGS, logging_level: 'WARNING', auto_start: false });
  });

  it('reads a stored value that is not an object as nothing stored', () => {
    expect(settingsFromStored('port=4242')).toEqual(DEFAULT_SETTINGS);
    expect(settingsFromStored([4242])).toEqual(DEFAULT_SETTINGS);
  });

  it('reads back what validation produced unchanged', () => {
    const settings = validValue(
      validateSettings({ ae_title: 'ROUND', allowed_ip_addresses: '10.0.0.0/8', port: 2000 }),
    );
    expect(settingsFromStored(JSON.parse(JSON.stringify(settings)))).toEqual(settings);
  });
});

describe('settings from and as text', () => {
  it('reads booleans as true/false, yes/no, on/off or 1/0 in any case', () => {
    for (const text of ['true', 'TRUE', 'yes', 'Yes', 'on', 'ON', '1', ' on ']) {
      expect(settingFromText('auto_start', text), text).toBe(true);
    }
    for (const text of ['false', 'False', 'no', 'NO', 'off', 'Off', '0', ' no ']) {
      expect(settingFromText('auto_start', text), text).toBe(false);
    }
  });

  it('leaves other text for a boolean to the schema, which refuses it', () => {
    const value = settingFromText('service_enabled', 'maybe');
    expect(value).toBe('maybe');
    expect(settingError({ service_enabled: value }, 'service_enabled')).toBe(
      'must be true or false',
    );
  });

  it('reads numbers, and leaves what is not one for the schema to refuse', () => {
    expect(settingFromText('port', ' 4242 ')).toBe(4242);
    expect(settingFromText('acse_timeout', '2.5')).toBe(2.5);
    const notNumber = settingFromText('port', 'abc');
    expect(settingError({ port: notNumber }, 'port')).toBe('must be a number');
    const empty = settingFromText('port', '  ');
    expect(settingError({ port: empty }, 'port')).toBe('must be a number');
  });

  it('reads lists comma-separated, without blanks', () => {
    expect(settingFromText('accepted_sop_class_groups', ' ct, mr,, ')).toEqual(['ct', 'mr']);
    expect(settingFromText('accepted_sop_class_groups', '')).toEqual([]);
    expect(settingFromText('accepted_transfer_syntaxes', `${EXPLICIT_LE},${IMPLICIT_LE}`)).toEqual([
      EXPLICIT_LE,
      IMPLICIT_LE,
    ]);
  });

  it('keeps an address list as text (its entries are checked by the schema)', () => {
    expect(settingFromText('allowed_ip_addresses', ' 10.0.0.0/8, ::1 ')).toBe('10.0.0.0/8, ::1');
  });

  it('reads logging levels in any case and by their pino names', () => {
    const cases: [string, string][] = [
      ['debug', 'DEBUG'],
      ['Info', 'INFO'],
      ['warn', 'WARNING'],
      ['WARN', 'WARNING'],
      ['warning', 'WARNING'],
      ['error', 'ERROR'],
      ['trace', 'DEBUG'],
      ['fatal', 'ERROR'],
    ];
    for (const [text, level] of cases)
      expect(settingFromText('logging_level', text), text).toBe(level);
    expect(
      settingError({ logging_level: settingFromText('logging_level', 'verbose') }, 'logging_level'),
    ).toBe('must be one of: DEBUG, INFO, WARNING, ERROR');
  });

  it('trims other text', () => {
    expect(settingFromText('ae_title', '  PACS ')).toBe('PACS');
    expect(settingFromText('storage_path', ' /data/dicom ')).toBe('/data/dicom');
  });

  it('writes each setting as text that reads back to the same value', () => {
    const settings: Settings = {
      ...DEFAULT_SETTINGS,
      accepted_sop_class_groups: ['ct', 'mr'],
      acse_timeout: 2.5,
      enable_c_get: false,
      allowed_ip_addresses: '10.0.0.0/8,::1',
    };
    for (const key of SETTING_KEYS) {
      const text = settingAsText(settings[key]);
      expect(typeof text).toBe('string');
      expect(settingFromText(key as SettingKey, text), key).toEqual(settings[key]);
    }
    expect(settingAsText(['ct', 'mr'])).toBe('ct,mr');
    expect(settingAsText([])).toBe('');
    expect(settingAsText(false)).toBe('false');
    expect(settingAsText(11112)).toBe('11112');
  });
});

describe('an allowed peer', () => {
  it('needs only an AE title, and takes defaults for the rest', () => {
    expect(validValue(validateAllowedAe({ ae_title: 'STORESCU' }))).toEqual({
      ae_title: 'STORESCU',
      description: '',
      expected_ip: '',
      is_active: true,
      host: '',
      port: null,
      may_store: true,
      may_query: true,
      may_retrieve: true,
      is_move_destination: true,
      use_tls: false,
    });
    expect(errorsOf(validateAllowedAe({}))).toEqual({ ae_title: 'must be text' });
  });

  it('takes lower case in a peer title (some peers use it), trimmed', () => {
    expect(validValue(validateAllowedAe({ ae_title: ' storescu ' })).ae_title).toBe('storescu');
  });

  it('holds a peer title to the AE rules otherwise', () => {
    const message = 'may hold only printable ASCII characters, without backslash';
    expect(errorsOf(validateAllowedAe({ ae_title: '' }))).toEqual({
      ae_title: 'must not be empty',
    });
    expect(errorsOf(validateAllowedAe({ ae_title: 'A'.repeat(17) }))).toEqual({
      ae_title: 'must be at most 16 characters',
    });
    expect(errorsOf(validateAllowedAe({ ae_title: 'A\\B' }))).toEqual({ ae_title: message });
    expect(errorsOf(validateAllowedAe({ ae_title: 'A\rB' }))).toEqual({ ae_title: message });
  });

  it('takes an expected address or range, or none', () => {
    expect(
      validValue(validateAllowedAe({ ae_title: 'A', expected_ip: ' 10.1.2.3 ' })).expected_ip,
    ).toBe('10.1.2.3');
    expect(
      validValue(validateAllowedAe({ ae_title: 'A', expected_ip: 'fe80::/10' })).expected_ip,
    ).toBe('fe80::/10');
    expect(errorsOf(validateAllowedAe({ ae_title: 'A', expected_ip: 'host.example' }))).toEqual({
      expected_ip: 'must be an IPv4 or IPv6 address or CIDR range, or empty',
    });
    expect(errorsOf(validateAllowedAe({ ae_title: 'A', expected_ip: '10.0.1' }))).toEqual({
      expected_ip: 'must be an IPv4 or IPv6 address or CIDR range, or empty',
    });
  });

  it('needs host and port together (a move destination), and flags the one missing', () => {
    const message = 'host and port go together (a move destination)';
    expect(errorsOf(validateAllowedAe({ ae_title: 'A', host: 'pacs.local' }))).toEqual({
      port: message,
    });
    expect(errorsOf(validateAllowedAe({ ae_title: 'A', port: 104 }))).toEqual({ host: message });
    expect(errorsOf(validateAllowedAe({ ae_title: 'A', host: '   ', port: 104 }))).toEqual({
      host: message,
    });
    expect(
      validValue(validateAllowedAe({ ae_title: 'A', host: 'pacs.local', port: 104 })),
    ).toMatchObject({ host: 'pacs.local', port: 104 });
    expect(validValue(validateAllowedAe({ ae_title: 'A', host: '', port: null }))).toMatchObject({
      host: '',
      port: null,
    });
  });

  it('takes a peer port from 1 to 65535', () => {
    const at = (port: unknown) => validateAllowedAe({ ae_title: 'A', host: 'pacs', port });
    expect(validValue(at(1)).port).toBe(1);
    expect(validValue(at(65535)).port).toBe(65535);
    expect(errorsOf(at(0)).port).toBeDefined();
    expect(errorsOf(at(65536)).port).toBeDefined();
    expect(errorsOf(at(104.5)).port).toBeDefined();
    expect(errorsOf(at('104')).port).toBeDefined();
  });

  it('refuses an unknown field by its name', () => {
    expect(errorsOf(validateAllowedAe({ ae_title: 'A', may_delete: true }))).toEqual({
      may_delete: 'is not a known field',
    });
  });

  it('refuses permissions that are not booleans', () => {
    expect(errorsOf(validateAllowedAe({ ae_title: 'A', may_store: 'yes' }))).toEqual({
      may_store: 'must be true or false',
    });
  });
});

describe('changing an allowed peer', () => {
  const current: AllowedAe = validValue(
    validateAllowedAe({ ae_title: 'MODALITY', description: 'CT room 1', host: 'ct1', port: 104 }),
  );

  it('applies a change over the current fields', () => {
    expect(validValue(applyAllowedAeChange(current, { may_retrieve: false, port: 11112 }))).toEqual(
      {
        ...current,
        may_retrieve: false,
        port: 11112,
      },
    );
  });

  it('keeps the AE title, whatever the change says', () => {
    expect(validValue(applyAllowedAeChange(current, { ae_title: 'OTHER' })).ae_title).toBe(
      'MODALITY',
    );
  });

  it('checks the host and port pairing on the result', () => {
    expect(errorsOf(applyAllowedAeChange(current, { host: '' }))).toEqual({
      host: 'host and port go together (a move destination)',
    });
    expect(validValue(applyAllowedAeChange(current, { host: '', port: null }))).toMatchObject({
      host: '',
      port: null,
    });
  });

  it('refuses invalid, unknown or non-object changes', () => {
    expect(errorsOf(applyAllowedAeChange(current, { description: 'x'.repeat(201) }))).toEqual({
      description: 'must be at most 200 characters',
    });
    expect(errorsOf(applyAllowedAeChange(current, { colour: 'red' }))).toEqual({
      colour: 'is not a known field',
    });
    for (const change of [null, 'may_store=false', [false]]) {
      expect(errorsOf(applyAllowedAeChange(current, change))).toEqual({
        _: 'must be an object of fields',
      });
    }
  });
});
