/**
 * `dicom-server serve`: runs the DICOM service in the foreground until SIGINT or SIGTERM.
 *
 * Layer: cli.
 */

import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { LevelWithSilent, Logger } from 'pino';
import { type OpenDatabase, openDatabase } from '../db/dialect.js';
import { SettingsRepository } from '../db/repositories/settings-repository.js';
import { ServerEvents } from '../server/events.js';
import { LiveConfig } from '../server/live-config.js';
import { createLogger } from '../server/logger.js';
import { PINO_LEVELS, ServiceController } from '../server/service-controller.js';
import {
  SETTING_KEYS,
  type SettingKey,
  type Settings,
  SettingsSchema,
  settingFromText,
} from '../settings/schema.js';
import { buildWebApp } from '../web/app.js';
import type { AuthService } from '../web/auth.js';
import { createWebContext } from '../web/context.js';
import { integerIn, secondsToMs } from './options.js';

/** Flags whose names differ from their setting's (the command-line contract of DESIGN.md). */
const FLAG_NAMES: Partial<Record<SettingKey, string>> = {
  host: 'dicom-host',
  port: 'dicom-port',
  max_storage_size_gb: 'max-storage-gb',
  max_pdu_length: 'max-pdu',
  logging_level: 'log-level',
};

/** The flag of a setting: `--ae-title`, `--dicom-port`, ... */
export function flagOf(key: SettingKey): string {
  return FLAG_NAMES[key] ?? key.replaceAll('_', '-');
}

/** The environment variable of a setting: DICOM_SERVER_AE_TITLE, ... */
export function environmentVariableOf(key: SettingKey): string {
  return `DICOM_SERVER_${flagOf(key).replaceAll('-', '_').toUpperCase()}`;
}

/** Commander's name for the parsed value of a setting's flag. */
function attributeOf(key: SettingKey): string {
  return flagOf(key).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Parses a setting's flag value with the settings schema, so flags and API say the same. */
function settingParser(key: SettingKey): (text: string) => unknown {
  return (text) => {
    // Port 0 asks the system for a free port: for tests and benchmarks, never stored.
    if (key === 'port' && text.trim() === '0') return 0;
    const result = SettingsSchema.shape[key].safeParse(settingFromText(key, text));
    if (!result.success)
      throw new InvalidArgumentError(result.error.issues[0]?.message ?? 'invalid');
    return result.data;
  };
}

interface ServeOptions {
  readonly dataDir: string;
  readonly db: string | undefined;
  readonly shutdownGrace: number;
  readonly httpHost: string;
  readonly httpPort: number;
  readonly [setting: string]: unknown;
}

/** Adds the `serve` command. */
export function registerServe(program: Command): void {
  const command = program
    .command('serve')
    .description(
      'run the DICOM service in the foreground; each setting flag overrides the stored setting',
    )
    .addOption(
      new Option('--data-dir <dir>', 'data directory (storage and SQLite index)')
        .env('DICOM_SERVER_DATA_DIR')
        .default('./data'),
    )
    .addOption(
      new Option(
        '--db <url>',
        'index database: postgres://... (default: SQLite in the data directory)',
      ).env('DICOM_SERVER_DB'),
    )
    .addOption(
      new Option('--shutdown-grace <seconds>', 'how long open associations may finish on shutdown')
        .env('DICOM_SERVER_SHUTDOWN_GRACE')
        .default(10_000, '10')
        .argParser(secondsToMs),
    )
    .addOption(
      new Option('--http-host <host>', 'address of the web console and REST API')
        .env('DICOM_SERVER_HTTP_HOST')
        .default('0.0.0.0'),
    )
    .addOption(
      new Option('--http-port <port>', 'port of the web console and REST API (0 picks a free one)')
        .env('DICOM_SERVER_HTTP_PORT')
        .default(8000)
        .argParser(integerIn(0, 65535)),
    );
  for (const key of SETTING_KEYS) {
    const example = SettingsSchema.shape[key].parse(undefined);
    const value =
      typeof example === 'boolean' ? '[true|false]' : Array.isArray(example) ? '<list>' : '<value>';
    command.addOption(
      new Option(`--${flagOf(key)} ${value}`, `setting ${key} (stored: dicom-server config)`)
        .env(environmentVariableOf(key))
        .argParser(settingParser(key)),
    );
  }
  command.action(async (options: ServeOptions) => {
    await runServe(options);
  });
}

/** The settings given as flags or environment variables. */
function overridesOf(options: ServeOptions): Partial<Settings> {
  const overrides: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    const value = options[attributeOf(key)];
    // A boolean flag given without a value is true.
    if (value !== undefined) overrides[key] = value === true || value === '' ? true : value;
  }
  return overrides as Partial<Settings>;
}

async function runServe(options: ServeOptions): Promise<void> {
  const overrides = overridesOf(options);
  const logger = createLogger(
    (overrides.logging_level === undefined
      ? 'info'
      : PINO_LEVELS[overrides.logging_level]) as LevelWithSilent,
  );
  const dataDir = resolve(options.dataDir);
  const events = new ServerEvents();
  let database: OpenDatabase;
  let controller: ServiceController;
  let web: Awaited<ReturnType<typeof buildWebApp>>;
  try {
    database = await openDatabase({
      dataDir,
      ...(overrides.durability !== undefined && { durability: overrides.durability }),
      ...(options.db !== undefined && { url: options.db }),
    });
    const settings = new SettingsRepository(database);
    const config = await LiveConfig.load(settings, overrides);
    database.setDurability(config.settings.durability);
    logger.info(
      { database: database.location, overridden: Object.keys(overrides) },
      'settings and index ready',
    );
    controller = new ServiceController({
      database,
      config,
      dataDir,
      logger,
      shutdownGraceMs: options.shutdownGrace,
      isLogLevelFixed: overrides.logging_level !== undefined,
      events,
    });
    const context = createWebContext({ database, controller, config, settings, events, logger });
    await announceFirstAdmin(context.auth, logger);
    web = await buildWebApp(context);
  } catch (error) {
    logger.fatal({ err: error }, 'settings or index could not be opened');
    process.exitCode = 1;
    return;
  }

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    web
      .close()
      .then(() => controller.close())
      .then(() => database.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  try {
    const address = await web.listen({ host: options.httpHost, port: options.httpPort });
    logger.info({ url: `${address}/dicom-server/` }, 'web console and REST API listening');
  } catch (error) {
    logger.fatal({ err: error }, 'web console could not start');
    await database.close();
    process.exit(1);
  }
  await controller.initialize();
  if (controller.state === 'error') {
    // A service set to start that cannot start ends the process, so that a supervisor
    // (systemd, a container runtime) sees it; `dicom-server config set` fixes the setting.
    logger.fatal(
      { error: controller.status().lastError, code: controller.startErrorCode },
      'DICOM service could not start',
    );
    await web.close();
    await database.close();
    process.exit(1);
  }
  if (controller.state === 'stopped') {
    logger.warn(
      { hint: 'dicom-server config set service_enabled true (and auto_start true)' },
      'DICOM service not started: service_enabled or auto_start is off',
    );
  }
}

/** On a first start with no user, creates `admin`; a generated password is shown once. */
async function announceFirstAdmin(auth: AuthService, logger: Logger): Promise<void> {
  const firstAdmin = await auth.ensureFirstAdmin(process.env.DICOM_SERVER_ADMIN_PASSWORD);
  if (firstAdmin?.generatedPassword !== undefined) {
    // On the terminal or in the service's journal, once: it is stored nowhere.
    process.stderr.write(
      `\nFirst start: created the console user "admin" with the password\n\n    ${firstAdmin.generatedPassword}\n\nChange it after logging in (or set DICOM_SERVER_ADMIN_PASSWORD before the first start).\n\n`,
    );
  } else if (firstAdmin !== undefined) {
    logger.info('first start: created the console user "admin" (DICOM_SERVER_ADMIN_PASSWORD)');
  }
}
