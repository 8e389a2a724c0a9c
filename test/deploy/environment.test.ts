/**
 * Configuration by environment, as containers and systemd give it: `serve` takes every setting
 * from its DICOM_SERVER_* variable (all of them set at once to values other than the defaults,
 * read back through the settings API as in effect and overridden, none of them stored), and
 * the deployment files cannot drift from what `serve` reads: every DICOM_SERVER_* name in
 * docker-compose.yml, the Dockerfile, the systemd unit and its example env file is one `serve`
 * (or `health`) declares, the env file lists all of them with the settings' defaults, and every
 * setting value written in the compose and env files validates.
 *
 * Layer: test (deploy).
 */

import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { registerHealth } from '../../src/cli/health.js';
import { environmentVariableOf, registerServe } from '../../src/cli/serve.js';
import {
  DEFAULT_SETTINGS,
  SETTING_KEYS,
  type SettingKey,
  SettingsSchema,
  settingAsText,
  settingFromText,
} from '../../src/settings/schema.js';
import { maskedSettings } from '../../src/web/routes/settings.js';
import { loginAdmin } from '../helpers/api-session.js';
import { runSourceCli } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { startServe } from '../helpers/serve-process.js';

const REPO = join(import.meta.dirname, '..', '..');
const ADMIN_PASSWORD = 'environment-password-1';

/** The deployment files that name DICOM_SERVER_* variables. */
const DEPLOY_FILES = [
  'docker-compose.yml',
  'Dockerfile',
  'deploy/dicom-server.service',
  'deploy/dicom-server.env',
];
const ENV_FILE = 'deploy/dicom-server.env';
const COMPOSE_FILE = 'docker-compose.yml';

/** The setting of each DICOM_SERVER_* variable. */
const SETTING_OF_VARIABLE = new Map<string, SettingKey>(
  SETTING_KEYS.map((key) => [environmentVariableOf(key), key]),
);

/**
 * Every DICOM_SERVER_* variable the CLI reads: those of `serve`'s and `health`'s options, and
 * those it reads from process.env directly (DICOM_SERVER_ADMIN_PASSWORD).
 */
function declaredVariables(): Set<string> {
  const program = new Command();
  registerServe(program);
  registerHealth(program);
  const names = new Set<string>();
  for (const command of program.commands) {
    for (const option of command.options) if (option.envVar !== undefined) names.add(option.envVar);
  }
  const cliDir = join(REPO, 'src', 'cli');
  for (const file of readdirSync(cliDir).filter((name) => !name.endsWith('.test.ts'))) {
    const text = readFileSync(join(cliDir, file), 'utf8');
    for (const match of text.matchAll(/process\.env\.(DICOM_SERVER_[A-Z0-9_]+)/g)) {
      names.add(match[1]!);
    }
  }
  return names;
}

/** A variable given a value in a file, on an active or a commented-out line. */
interface Assignment {
  readonly name: string;
  readonly value: string;
  readonly isCommented: boolean;
  readonly line: number;
}

function readRepoFile(path: string): string {
  return readFileSync(join(REPO, path), 'utf8');
}

/** Each DICOM_SERVER_* name anywhere in the text, comments included. */
function namesIn(text: string): string[] {
  return [...text.matchAll(/DICOM_SERVER_[A-Z0-9_]+/g)].map((match) => match[0]);
}

/** `NAME=value` lines (env file) or `NAME: value` lines (compose), `#` before them or not. */
function assignmentsIn(text: string, separator: '=' | ':'): Assignment[] {
  const pattern = new RegExp(`^\\s*(#\\s*)?(DICOM_SERVER_[A-Z0-9_]+)${separator}\\s*(.*)$`);
  return text.split('\n').flatMap((line, index) => {
    const match = pattern.exec(line);
    if (match === null) return [];
    const value = match[3]!.trim().replace(/^"(.*)"$/, '$1');
    return [{ name: match[2]!, value, isCommented: match[1] !== undefined, line: index + 1 }];
  });
}

/** Whether `text` is a valid value of the setting `key`, as `serve` parses it. */
function isValidSettingText(key: SettingKey, text: string): boolean {
  return SettingsSchema.shape[key].safeParse(settingFromText(key, text)).success;
}

describe('the deployment files name only what serve reads', () => {
  const declared = declaredVariables();

  it('every setting has its own variable, which serve declares', () => {
    expect(SETTING_OF_VARIABLE.size).toBe(SETTING_KEYS.length);
    const missing = [...SETTING_OF_VARIABLE.keys()].filter((name) => !declared.has(name));
    expect(missing).toEqual([]);
  });

  it.each(DEPLOY_FILES)('%s names no DICOM_SERVER_* variable that serve does not read', (file) => {
    const unknown = namesIn(readRepoFile(file)).filter((name) => !declared.has(name));
    expect(unknown, `${file} names variables no command reads`).toEqual([]);
  });

  it('the example env file lists every variable, each setting commented out with its default', () => {
    const assignments = assignmentsIn(readRepoFile(ENV_FILE), '=');
    const listed = new Set(assignments.map((a) => a.name));
    const unlisted = [...declared].filter((name) => !listed.has(name));
    expect(unlisted, `add these to ${ENV_FILE}`).toEqual([]);
    const wrongDefaults = assignments
      .filter((a) => a.isCommented && SETTING_OF_VARIABLE.has(a.name))
      .filter((a) => {
        const key = SETTING_OF_VARIABLE.get(a.name)!;
        return a.value !== settingAsText(DEFAULT_SETTINGS[key]);
      })
      .map((a) => `${ENV_FILE}:${a.line} ${a.name}=${a.value}`);
    expect(wrongDefaults, 'commented-out settings show the default').toEqual([]);
  });

  it.each([
    [ENV_FILE, '='],
    [COMPOSE_FILE, ':'],
  ] as const)('every setting value written in %s validates', (file, separator) => {
    const invalid = assignmentsIn(readRepoFile(file), separator)
      .filter((a) => SETTING_OF_VARIABLE.has(a.name) && !a.value.includes('${'))
      .filter((a) => !isValidSettingText(SETTING_OF_VARIABLE.get(a.name)!, a.value))
      .map((a) => `${file}:${a.line} ${a.name}=${a.value}`);
    expect(invalid).toEqual([]);
  });
});

/** Values of the text settings: any other text is not necessarily valid. */
function textValues(dir: string): Partial<Record<SettingKey, string>> {
  return {
    ae_title: 'ENV_SCP',
    host: '127.0.0.1',
    storage_path: join(dir, 'elsewhere'),
    allowed_ip_addresses: '127.0.0.1,10.0.0.0/8',
    tls_certificate: join(dir, 'tls', 'server.pem'),
    tls_private_key: join(dir, 'tls', 'server.key'),
    tls_ca_certificates: join(dir, 'tls', 'ca.pem'),
    metrics_token: 'a-metrics-token-from-the-environment',
    handler_folder_path: join(dir, 'handler'),
    webhook_urls: 'http://127.0.0.1:9/hook',
    webhook_secret: 'a-webhook-secret-from-the-environment',
    processing_command: '/bin/true',
  };
}

/**
 * A value of `key` other than its default, as the text of its variable: booleans flipped,
 * numbers one up (or down), the next choice of a list of choices, the first item of a list,
 * text from `texts`.
 */
function nonDefaultText(key: SettingKey, texts: Partial<Record<SettingKey, string>>): string {
  const fallback = DEFAULT_SETTINGS[key];
  let candidates: string[];
  if (texts[key] !== undefined) candidates = [texts[key]];
  else if (typeof fallback === 'boolean') candidates = [String(!fallback)];
  else if (typeof fallback === 'number') candidates = [String(fallback + 1), String(fallback - 1)];
  else if (Array.isArray(fallback)) candidates = fallback.length > 1 ? [String(fallback[0])] : [];
  else {
    const inner = (SettingsSchema.shape[key] as unknown as z.ZodDefault<z.ZodType>).unwrap();
    candidates = inner instanceof z.ZodEnum ? inner.options.map(String) : [];
  }
  const chosen = candidates.find(
    (text) => text !== settingAsText(fallback) && isValidSettingText(key, text),
  );
  if (chosen === undefined) {
    throw new Error(`no non-default value for the new setting ${key}: add one to textValues()`);
  }
  return chosen;
}

describe('serve configured by environment variables alone', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dicom-server-environment-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes every setting from its DICOM_SERVER_* variable: in effect, shown as overridden, not stored', async () => {
    const texts = textValues(dir);
    const values = Object.fromEntries(SETTING_KEYS.map((key) => [key, nonDefaultText(key, texts)]));
    const expected = SettingsSchema.parse(
      Object.fromEntries(SETTING_KEYS.map((key) => [key, settingFromText(key, values[key]!)])),
    );
    const httpPort = await freePort();
    const serve = startServe([], {
      env: {
        ...Object.fromEntries(
          SETTING_KEYS.map((key) => [environmentVariableOf(key), values[key]!]),
        ),
        DICOM_SERVER_DATA_DIR: join(dir, 'data'),
        DICOM_SERVER_HTTP_PORT: String(httpPort),
        DICOM_SERVER_ADMIN_PASSWORD: ADMIN_PASSWORD,
      },
    });
    try {
      await serve.waitForLine(
        (line) => line.msg === 'web console and REST API listening',
        'the web console listening',
      );
      const api = await loginAdmin(httpPort, ADMIN_PASSWORD);
      const response = await api.get('settings/');
      expect(response.status).toBe(200);
      const body = (await response.json()) as {
        settings: unknown;
        effective: unknown;
        overridden: string[];
      };
      expect(body.effective).toEqual(maskedSettings(expected));
      expect([...body.overridden].sort()).toEqual([...SETTING_KEYS].sort());
      expect(body.settings, 'the environment is not stored').toEqual(
        maskedSettings(DEFAULT_SETTINGS),
      );

      // service_enabled and auto_start are off: the web console runs, the DICOM service not.
      const health = await runSourceCli(['health'], {
        env: { DICOM_SERVER_HTTP_PORT: String(httpPort) },
      });
      expect(health.exitCode, health.output).toBe(0);
      expect(health.stdout).toMatch(/^healthy: web console up, DICOM service stopped/);
    } finally {
      await serve.stop();
    }
    expect(await serve.exited, serve.output()).toEqual({ code: 0, signal: null });
  }, 60_000);
});
