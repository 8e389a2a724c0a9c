/**
 * `dicom-server config get [KEY]` and `dicom-server config set KEY VALUE`: the stored settings,
 * read and changed without the server or the console. A change reaches a running server through
 * the settings' version, except the settings that need the DICOM service restarted.
 *
 * Layer: cli.
 */

import type { Command } from 'commander';
import { SettingsRepository } from '../db/repositories/settings-repository.js';
import {
  RESTART_SETTINGS,
  SETTING_KEYS,
  type SettingKey,
  settingAsText,
  settingFromText,
} from '../settings/schema.js';
import {
  AdminExitCode,
  addDatabaseOptions,
  type DatabaseCliOptions,
  exitInvalidInputOnUsageErrors,
  withDatabase,
  writeFieldErrors,
} from './database-options.js';

function isSettingKey(key: string): key is SettingKey {
  return (SETTING_KEYS as readonly string[]).includes(key);
}

/** Says on stderr that `key` is no setting, naming the ones there are. */
function reportUnknownKey(key: string): AdminExitCode {
  process.stderr.write(`unknown setting "${key}"; the settings are: ${SETTING_KEYS.join(', ')}\n`);
  return AdminExitCode.InvalidInput;
}

/** Adds the `config` command and its `get` and `set` subcommands. */
export function registerConfig(program: Command): void {
  const config = exitInvalidInputOnUsageErrors(
    program.command('config').description('show or change the stored settings'),
  );

  addDatabaseOptions(
    config
      .command('get')
      .description('print every setting as key=value, or the value of one')
      .argument('[key]', 'a setting, e.g. port'),
  ).action(async (key: string | undefined, options: DatabaseCliOptions) => {
    if (key !== undefined && !isSettingKey(key)) {
      process.exitCode = reportUnknownKey(key);
      return;
    }
    await withDatabase(options, async (database) => {
      const { settings } = await new SettingsRepository(database).get();
      const lines =
        key === undefined
          ? SETTING_KEYS.map((name) => `${name}=${settingAsText(settings[name])}`)
          : [settingAsText(settings[key])];
      process.stdout.write(`${lines.join('\n')}\n`);
      return AdminExitCode.Success;
    });
  });

  addDatabaseOptions(
    config
      .command('set')
      .description('change one setting (booleans: true/false, yes/no, on/off, 1/0; lists: a,b,c)')
      .argument('<key>', 'a setting, e.g. port')
      .argument('<value>', 'its new value'),
  ).action(async (key: string, value: string, options: DatabaseCliOptions) => {
    if (!isSettingKey(key)) {
      process.exitCode = reportUnknownKey(key);
      return;
    }
    await withDatabase(options, async (database) => {
      const result = await new SettingsRepository(database).update({
        [key]: settingFromText(key, value),
      });
      if (!result.isValid) {
        writeFieldErrors(result.errors);
        return AdminExitCode.InvalidInput;
      }
      process.stdout.write(`${key}=${settingAsText(result.value[key])}\n`);
      if (RESTART_SETTINGS.has(key)) {
        process.stdout.write(
          `note: ${key} takes effect when the DICOM service restarts; other settings reach a running server without a restart\n`,
        );
      }
      return AdminExitCode.Success;
    });
  });
}
