/**
 * The administration commands of the built CLI (`dist/src/cli/main.js`, so `npm run build`
 * first): `config get|set`, `ae add|list|remove|enable|disable` and `migrate`, each in a child
 * process on a temporary data directory; their exit codes and messages, then what they left in
 * the index, read in-process. One test runs them against PostgreSQL with `--db`, on AE titles
 * of its own that it removes again. Tests run concurrently, the longest chains of commands
 * first: each command is a Node process, the bulk of this file's time.
 *
 * Layer: test (interop).
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openDatabase } from '../../src/db/dialect.js';
import { SettingsRepository } from '../../src/db/repositories/settings-repository.js';
import { TransactionLogRepository } from '../../src/db/repositories/transaction-log-repository.js';
import { UserRepository } from '../../src/db/repositories/user-repository.js';
import {
  type AllowedAe,
  DEFAULT_SETTINGS,
  RESTART_SETTINGS,
  SETTING_KEYS,
  settingAsText,
} from '../../src/settings/schema.js';
import { AuthService } from '../../src/web/auth.js';
import { checkBuildIsCurrent, runBuiltCli } from '../helpers/cli.js';
import type { CommandRun } from '../helpers/command.js';
import { POSTGRES_URL } from '../helpers/postgres.js';

/** The sources the administration commands run, whose build must be current. */
const SOURCE_DIRS = ['src/cli', 'src/db', 'src/settings', 'src/web'];

/** Runs the built CLI to completion (killed after 15 s, which leaves exitCode null). */
function runCli(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  stdin?: string,
): Promise<CommandRun> {
  return runBuiltCli(args, { env, timeoutMs: 15_000, ...(stdin !== undefined && { stdin }) });
}

/**
 * Each test runs several CLI processes (and argon2 hashes), concurrently with the file's other
 * tests: on a loaded 2-core machine that took more than the default 30 s.
 */
const CLI_TEST_TIMEOUT_MS = 90_000;

const dataDirs: string[] = [];

/** A new, empty data directory, removed after the file's tests. */
async function newDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dicom-admin-cli-'));
  dataDirs.push(dir);
  return dir;
}

/** Runs `work` on the settings of `dataDir`, opened in this process (and migrated). */
async function withSettings<T>(
  dataDir: string,
  work: (repository: SettingsRepository) => Promise<T>,
): Promise<T> {
  const database = await openDatabase({ dataDir });
  try {
    return await work(new SettingsRepository(database));
  } finally {
    await database.close();
  }
}

/** A data directory whose index is migrated and holds these allowed peers. */
async function dataDirWith(aes: readonly Partial<AllowedAe>[]): Promise<string> {
  const dir = await newDataDir();
  await withSettings(dir, async (repository) => {
    for (const ae of aes) {
      const result = await repository.addAllowedAe(ae);
      if (!result.isValid) throw new Error(`seed ${JSON.stringify(result.errors)}`);
    }
  });
  return dir;
}

beforeAll(() => {
  checkBuildIsCurrent(SOURCE_DIRS);
});

afterAll(async () => {
  await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe.concurrent('dicom-server migrate and the database options', {
  timeout: CLI_TEST_TIMEOUT_MS,
}, () => {
  it('with --db postgres://, manages allowed AE titles in PostgreSQL', async ({ expect }) => {
    // Titles of this run only: the database is shared with other test files and runs.
    const suffix = `${Date.now().toString(36)}${process.pid.toString(36)}`.toUpperCase().slice(-9);
    const title = `CLI_${suffix}`;
    const db = ['--db', POSTGRES_URL];
    let isRemoved = false;
    try {
      const migrate = await runCli(['migrate', ...db]);
      expect(migrate.exitCode, migrate.output).toBe(0);
      expect(migrate.stdout, migrate.output).toMatch(/^database: postgres:\/\//);
      expect(migrate.stdout, migrate.output).not.toContain('@');
      const add = await runCli(['ae', 'add', title, '--ip', '192.0.2.7', '--no-retrieve', ...db]);
      expect(add.exitCode, add.output).toBe(0);
      const list = await runCli(['ae', 'list', '--json', ...db]);
      expect(list.exitCode, list.output).toBe(0);
      expect((JSON.parse(list.stdout) as AllowedAe[]).find((ae) => ae.ae_title === title)).toEqual(
        expect.objectContaining({ expected_ip: '192.0.2.7', may_retrieve: false, may_store: true }),
      );
      const remove = await runCli(['ae', 'remove', title, ...db]);
      expect(remove.exitCode, remove.output).toBe(0);
      expect(remove.stdout, remove.output).toBe(`removed AE title ${title}\n`);
      isRemoved = true;
    } finally {
      if (!isRemoved) await runCli(['ae', 'remove', title, ...db]);
    }
  });

  it('migrate applies every migration on a new data directory, then finds nothing to do', async ({
    expect,
  }) => {
    const dir = await newDataDir();
    const first = await runCli(['migrate', '--data-dir', dir]);
    expect(first.exitCode, first.output).toBe(0);
    expect(first.stdout, first.output).toContain(join(dir, 'dicom-server.sqlite'));
    expect(first.stdout, first.output).toMatch(/applied \d+ migration\(s\): 0001-initial, /);
    // The second time through DICOM_SERVER_DATA_DIR instead of the flag.
    const again = await runCli(['migrate'], { DICOM_SERVER_DATA_DIR: dir });
    expect(again.exitCode, again.output).toBe(0);
    expect(again.stdout, again.output).toContain(join(dir, 'dicom-server.sqlite'));
    expect(again.stdout, again.output).toMatch(/up to date/);
    // DICOM_SERVER_DB set to nothing (a compose file's `DICOM_SERVER_DB=`) is the default file,
    // not a temporary database that would be gone at the stop.
    const empty = await runCli(['migrate'], { DICOM_SERVER_DATA_DIR: dir, DICOM_SERVER_DB: '' });
    expect(empty.exitCode, empty.output).toBe(0);
    expect(empty.stdout, empty.output).toContain(join(dir, 'dicom-server.sqlite'));
    expect(empty.stdout, empty.output).toMatch(/up to date/);
  });

  it('exits 1 with a one-line message, not a stack, when the database cannot be opened', async ({
    expect,
  }) => {
    const dir = await newDataDir();
    const file = join(dir, 'not-a-directory');
    await writeFile(file, '');
    const run = await runCli(['ae', 'list', '--data-dir', join(file, 'data')]);
    expect(run.exitCode, run.output).toBe(1);
    expect(run.stdout, run.output).toBe('');
    expect(run.stderr, run.output).toMatch(/^cannot open the database \(.*\): .*ENOTDIR.*\n$/);
  });
});

describe.concurrent('dicom-server config', { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it('set stores a valid value and says it needs a restart; get shows every setting or one', async ({
    expect,
  }) => {
    expect(RESTART_SETTINGS.has('port')).toBe(true);
    const dir = await newDataDir();
    const set = await runCli(['config', 'set', 'port', ' 4242 ', '--data-dir', dir]);
    expect(set.exitCode, set.output).toBe(0);
    expect(set.stdout, set.output).toMatch(/^port=4242\n.*restart/);

    const [all, one, unknownGet, unknownSet] = await Promise.all([
      runCli(['config', 'get', '--data-dir', dir]),
      runCli(['config', 'get', 'port', '--data-dir', dir]),
      runCli(['config', 'get', 'no_such_setting', '--data-dir', dir]),
      runCli(['config', 'set', 'no_such_setting', '1', '--data-dir', dir]),
    ]);
    expect(all.exitCode, all.output).toBe(0);
    expect(all.stdout.trimEnd().split('\n')).toEqual(
      SETTING_KEYS.map((key) =>
        key === 'port' ? 'port=4242' : `${key}=${settingAsText(DEFAULT_SETTINGS[key])}`,
      ),
    );
    expect(one.exitCode, one.output).toBe(0);
    expect(one.stdout, one.output).toBe('4242\n');
    for (const run of [unknownGet, unknownSet]) {
      expect(run.exitCode, run.output).toBe(2);
      expect(run.stdout, run.output).toBe('');
      expect(run.stderr, run.output).toMatch(/no_such_setting/);
      expect(run.stderr, run.output).toMatch(/\bae_title\b.*\bport\b.*\bdurability\b/);
    }
  });

  it('set reads a boolean written as YES or off, with no restart note for a setting that needs none', async ({
    expect,
  }) => {
    const hotKey = SETTING_KEYS.find(
      (key) => typeof DEFAULT_SETTINGS[key] === 'boolean' && !RESTART_SETTINGS.has(key),
    );
    expect(hotKey).toBeDefined();
    const key = hotKey!;
    const flipped = !DEFAULT_SETTINGS[key];
    const dir = await newDataDir();
    const run = await runCli(['config', 'set', key, flipped ? 'YES' : 'off', '--data-dir', dir]);
    expect(run.exitCode, run.output).toBe(0);
    expect(run.stdout, run.output).toBe(`${key}=${flipped}\n`);
    expect(await withSettings(dir, async (r) => (await r.get()).settings[key])).toBe(flipped);
  });

  it('set rejects invalid values with `key: message` on stderr, exits 2 and changes nothing', async ({
    expect,
  }) => {
    const dir = await dataDirWith([]);
    const runs = await Promise.all([
      runCli(['config', 'set', 'port', '80', '--data-dir', dir]),
      runCli(['config', 'set', 'ae_title', 'lower_case', '--data-dir', dir]),
      runCli(['config', 'set', 'enable_c_find', 'maybe', '--data-dir', dir]),
    ]);
    const keys = ['port', 'ae_title', 'enable_c_find'];
    runs.forEach((run, i) => {
      expect(run.exitCode, run.output).toBe(2);
      expect(run.stdout, run.output).toBe('');
      expect(run.stderr, run.output).toMatch(new RegExp(`^${keys[i]}: \\S.*\\n$`));
    });
    expect(runs[0]!.stderr).toMatch(/1024/);
    expect(runs[1]!.stderr).toMatch(/uppercase/);
    const stored = await withSettings(dir, (r) => r.get());
    expect(stored).toEqual({ settings: DEFAULT_SETTINGS, version: 0 });
  });
});

describe.concurrent('dicom-server user', { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it('add with --password-stdin or a generated password; the password logs in; list, password, remove', async ({
    expect,
  }) => {
    const dir = await newDataDir();
    const added = await runCli(
      ['user', 'add', 'physicist', '--role', 'viewer', '--password-stdin', '--data-dir', dir],
      {},
      'correct horse battery\n',
    );
    expect(added.exitCode, added.output).toBe(0);
    expect(added.stdout).toContain('added viewer physicist');
    expect(added.stdout).not.toContain('password:');
    const generated = await runCli(['user', 'add', 'it-admin', '--data-dir', dir]);
    expect(generated.exitCode, generated.output).toBe(0);
    const password = /password: (\S+)/.exec(generated.stdout)?.[1];
    expect(password, generated.output).toBeDefined();
    const again = await runCli(['user', 'add', 'physicist', '--data-dir', dir]);
    expect(again.exitCode, again.output).toBe(2);
    expect(again.stderr).toContain('username: physicist is taken');
    const short = await runCli(
      ['user', 'add', 'other', '--password-stdin', '--data-dir', dir],
      {},
      'short\n',
    );
    expect(short.exitCode, short.output).toBe(2);
    expect(short.stderr).toContain('password: must be at least 10 characters');

    const database = await openDatabase({ dataDir: dir });
    try {
      const auth = new AuthService(new UserRepository(database));
      expect((await auth.login('physicist', 'correct horse battery', '127.0.0.1')).kind).toBe('ok');
      expect((await auth.login('it-admin', password!, '127.0.0.1')).kind).toBe('ok');
    } finally {
      await database.close();
    }
    const list = await runCli(['user', 'list', '--data-dir', dir]);
    expect(list.stdout).toMatch(/physicist\tviewer\tlast login 20/);
    expect(list.stdout).toMatch(/it-admin\tadmin/);
    const changed = await runCli(
      ['user', 'password', 'physicist', '--password-stdin', '--data-dir', dir],
      {},
      'another long password\n',
    );
    expect(changed.exitCode, changed.output).toBe(0);
    const removed = await runCli(['user', 'remove', 'it-admin', '--data-dir', dir]);
    expect(removed.exitCode, removed.output).toBe(0);
    const missing = await runCli(['user', 'remove', 'it-admin', '--data-dir', dir]);
    expect(missing.exitCode, missing.output).toBe(1);
    const reopened = await openDatabase({ dataDir: dir });
    try {
      const auth = new AuthService(new UserRepository(reopened));
      expect((await auth.login('physicist', 'correct horse battery', '127.0.0.2')).kind).toBe(
        'invalid',
      );
      expect((await auth.login('physicist', 'another long password', '127.0.0.2')).kind).toBe('ok');
      expect((await new UserRepository(reopened).list()).map((u) => u.username)).toEqual([
        'physicist',
      ]);
    } finally {
      await reopened.close();
    }
  });
});

describe.concurrent('dicom-server ae', { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it('add, then list as a table and as JSON; a duplicate exits 2', async ({ expect }) => {
    const dir = await dataDirWith([]);
    const [first, second] = await Promise.all([
      runCli([
        'ae',
        'add',
        'MODALITY1',
        '--description',
        'CT scanner',
        '--ip',
        '10.0.0.0/24',
        '--data-dir',
        dir,
      ]),
      runCli([
        'ae',
        'add',
        'PACS',
        '--host',
        'pacs.example',
        '--port',
        '104',
        '--no-store',
        '--no-query',
        '--tls',
        '--inactive',
        '--data-dir',
        dir,
      ]),
    ]);
    expect(first.exitCode, first.output).toBe(0);
    expect(first.stdout, first.output).toMatch(/^added AE title MODALITY1\n/);
    expect(second.exitCode, second.output).toBe(0);

    const [duplicate, table, json] = await Promise.all([
      runCli(['ae', 'add', 'MODALITY1', '--data-dir', dir]),
      runCli(['ae', 'list', '--data-dir', dir]),
      runCli(['ae', 'list', '--json', '--data-dir', dir]),
    ]);
    expect(duplicate.exitCode, duplicate.output).toBe(2);
    expect(duplicate.stderr, duplicate.output).toMatch(/^ae_title: \S.*\n$/);
    expect(table.exitCode, table.output).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines, table.output).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^AE TITLE\s+ACTIVE\s+EXPECTED IP\s+HOST:PORT\s+PERMISSIONS\s+DESCRIPTION$/,
    );
    expect(lines[1]).toMatch(
      /^MODALITY1\s+yes\s+10\.0\.0\.0\/24\s+-\s+store,query,retrieve,move-destination\s+CT scanner$/,
    );
    expect(lines[2]).toMatch(
      /^PACS\s+no\s+-\s+pacs\.example:104 \(TLS\)\s+retrieve,move-destination$/,
    );

    expect(json.exitCode, json.output).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      {
        ae_title: 'MODALITY1',
        description: 'CT scanner',
        expected_ip: '10.0.0.0/24',
        is_active: true,
        host: '',
        port: null,
        may_store: true,
        may_query: true,
        may_retrieve: true,
        is_move_destination: true,
        use_tls: false,
      },
      {
        ae_title: 'PACS',
        description: '',
        expected_ip: '',
        is_active: false,
        host: 'pacs.example',
        port: 104,
        may_store: false,
        may_query: false,
        may_retrieve: true,
        is_move_destination: true,
        use_tls: true,
      },
    ]);
  });

  it('disable, enable and remove change the listed AE title; an unknown one exits 1', async ({
    expect,
  }) => {
    const dir = await dataDirWith([
      { ae_title: 'ON_AE' },
      { ae_title: 'OFF_AE', is_active: false },
      { ae_title: 'GONE_AE' },
    ]);
    const [disable, enable, remove, ...unknown] = await Promise.all([
      runCli(['ae', 'disable', 'ON_AE', '--data-dir', dir]),
      runCli(['ae', 'enable', 'OFF_AE', '--data-dir', dir]),
      runCli(['ae', 'remove', 'GONE_AE', '--data-dir', dir]),
      runCli(['ae', 'enable', 'NOT_LISTED', '--data-dir', dir]),
      runCli(['ae', 'disable', 'NOT_LISTED', '--data-dir', dir]),
      runCli(['ae', 'remove', 'NOT_LISTED', '--data-dir', dir]),
    ]);
    expect(disable.exitCode, disable.output).toBe(0);
    expect(disable.stdout, disable.output).toBe('disabled AE title ON_AE\n');
    expect(enable.exitCode, enable.output).toBe(0);
    expect(enable.stdout, enable.output).toBe('enabled AE title OFF_AE\n');
    expect(remove.exitCode, remove.output).toBe(0);
    expect(remove.stdout, remove.output).toBe('removed AE title GONE_AE\n');
    for (const run of unknown) {
      expect(run.exitCode, run.output).toBe(1);
      expect(run.stderr, run.output).toMatch(/"NOT_LISTED" is not in the list/);
    }
    const listed = await withSettings(dir, (r) => r.listAllowedAes());
    expect(listed.map((ae) => [ae.ae_title, ae.is_active])).toEqual([
      ['OFF_AE', true],
      ['ON_AE', false],
    ]);
  });

  it('seen lists the calling AE titles of the transaction log, listed or not, with the add command', async ({
    expect,
  }) => {
    const dir = await dataDirWith([{ ae_title: 'KNOWN_CT' }]);
    const database = await openDatabase({ dataDir: dir });
    try {
      const row = (callingAe: string, remoteAddress: string, message?: string) => ({
        occurredAt: new Date().toISOString(),
        type: 'ASSOCIATE' as const,
        status: message === undefined ? ('success' as const) : ('rejected' as const),
        associationId: 'a',
        callingAe,
        calledAe: 'DRAW_SCP',
        remoteAddress,
        remotePort: 4000,
        ...(message !== undefined && { message }),
      });
      await new TransactionLogRepository(database).insert([
        row('KNOWN_CT', '10.0.0.5'),
        row('NEW_MR', '10.0.0.9', 'calling AE title NEW_MR is not in the allowed list'),
        row('NEW_MR', '10.0.0.9', 'calling AE title NEW_MR is not in the allowed list'),
      ]);
    } finally {
      await database.close();
    }
    const all = await runCli(['ae', 'seen', '--data-dir', dir]);
    expect(all.exitCode, all.output).toBe(0);
    expect(all.stdout).toMatch(/NEW_MR\s+10\.0\.0\.9\s+\S+\s+2\s+no\s+calling AE title NEW_MR/);
    expect(all.stdout).toMatch(/KNOWN_CT\s+10\.0\.0\.5\s+\S+\s+1\s+yes/);
    expect(all.stdout).toContain('add one with: dicom-server ae add NEW_MR --ip 10.0.0.9');
    const unlisted = await runCli(['ae', 'seen', '--unlisted', '--data-dir', dir]);
    expect(unlisted.stdout).not.toContain('KNOWN_CT');
    const bad = await runCli(['ae', 'seen', '--hours', 'x', '--data-dir', dir]);
    expect(bad.exitCode, bad.output).toBe(2);
  });

  it('add rejects invalid fields with `field: message` on stderr and exits 2', async ({
    expect,
  }) => {
    const dir = await dataDirWith([]);
    const [zeroPort, twoFields, noTitle] = await Promise.all([
      runCli(['ae', 'add', 'PEER', '--host', 'peer.example', '--port', '0', '--data-dir', dir]),
      runCli(['ae', 'add', 'PEER', '--ip', '999.1.2.3', '--port', 'x', '--data-dir', dir]),
      runCli(['ae', 'add', '--data-dir', dir]),
    ]);
    expect(zeroPort.exitCode, zeroPort.output).toBe(2);
    expect(zeroPort.stderr, zeroPort.output).toMatch(/^port: \S.*\n$/);
    expect(twoFields.exitCode, twoFields.output).toBe(2);
    expect(twoFields.stderr.split('\n').sort(), twoFields.output).toEqual([
      '',
      expect.stringMatching(/^expected_ip: \S/),
      expect.stringMatching(/^port: \S/),
    ]);
    // A usage error (commander's message) is invalid input too.
    expect(noTitle.exitCode, noTitle.output).toBe(2);
    expect(noTitle.stderr, noTitle.output).toMatch(/missing required argument 'title'/);
    expect(await withSettings(dir, (r) => r.listAllowedAes())).toEqual([]);
  });
});
