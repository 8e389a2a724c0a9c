/**
 * The administration repositories on both databases they run on: SQLite in a temporary
 * directory and PostgreSQL (127.0.0.1:5432, database `test`) in a fresh schema per test. The
 * same suite runs on each:
 * - settings: the defaults (version 0) before anything is stored; valid changes stored and
 *   invalid ones refused per field with nothing stored; the version moving with every change
 *   to the settings or the allowed peers and with nothing else; a second connection to the
 *   same database (another process, such as `config set` beside a running server) seeing it;
 *   concurrent changes all kept;
 * - allowed peers: add, find, list, update, remove, with duplicates, unknown titles and
 *   invalid changes refused; booleans and ports kept as given;
 * - transaction log: a batch larger than one INSERT statement, read back a page at a time,
 *   newest first, with no row twice and none missing; each filter; count; pruning by age;
 *   the calling AE titles seen, grouped by title and address;
 * - service status: absent before the first save, then saved whole and read back, totals
 *   beyond 2^32 included.
 *
 * Layer: integration test (db).
 */

import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../src/db/dialect.js';
import {
  ServiceStatusRepository,
  type StoredServiceStatus,
} from '../../src/db/repositories/service-status-repository.js';
import { SettingsRepository } from '../../src/db/repositories/settings-repository.js';
import {
  type TransactionFilter,
  TransactionLogRepository,
  type TransactionRecord,
  type TransactionRow,
} from '../../src/db/repositories/transaction-log-repository.js';
import { type AllowedAe, DEFAULT_SETTINGS, type Validated } from '../../src/settings/schema.js';
import { type Backend, postgresBackend, sqliteBackend } from '../helpers/postgres.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const ROOT = '1.2.826.0.1.3680043.9.7777.30';

/** The value of an outcome that must be valid. */
function validValue<T>(result: Validated<T> | undefined): T {
  if (result === undefined) throw new Error('expected a value, got undefined');
  if (!result.isValid) throw new Error(`expected a value, got ${JSON.stringify(result.errors)}`);
  return result.value;
}

/** The time `seconds` after a fixed start, as the log stores it. */
function at(seconds: number): string {
  return new Date(Date.UTC(2026, 0, 2, 8, 0, 0) + seconds * 1000).toISOString();
}

/** A C-STORE row numbered `n` (its message says which), at `at(n)`. */
function storeRecord(n: number, overrides: Partial<TransactionRecord> = {}): TransactionRecord {
  return {
    occurredAt: at(n),
    type: 'C-STORE',
    status: 'success',
    associationId: `assoc-${Math.floor(n / 10)}`,
    callingAe: 'STORESCU',
    calledAe: 'DRAW_SCP',
    remoteAddress: '10.0.0.1',
    remotePort: 40000 + (n % 1000),
    message: `row ${n}`,
    ...overrides,
  };
}

/** Which rows (by their number) a list of rows holds, in its order. */
function numbers(rows: readonly TransactionRow[]): number[] {
  return rows.map((row) => Number(row.message?.replace('row ', '')));
}

describe.each([
  ['SQLite', () => sqliteBackend('admin-repository-test')],
  ['PostgreSQL', () => postgresBackend('admin')],
])('the administration tables on %s', (_name, makeBackend) => {
  let backend: Backend;
  let database: OpenDatabase;
  let settings: SettingsRepository;
  let log: TransactionLogRepository;
  let status: ServiceStatusRepository;
  const opened: OpenDatabase[] = [];

  async function open(): Promise<OpenDatabase> {
    const db = await backend.open();
    opened.push(db);
    return db;
  }

  async function closeAll(): Promise<void> {
    for (const db of opened.splice(0)) await db.close();
  }

  beforeEach(async () => {
    backend = makeBackend();
    database = await open();
    settings = new SettingsRepository(database);
    log = new TransactionLogRepository(database);
    status = new ServiceStatusRepository(database);
  });

  afterEach(async () => {
    await closeAll();
    await backend.dispose();
  });

  afterAll(async () => {
    await closeAll();
  });

  describe('settings', () => {
    it('reads the defaults at version 0 before anything is stored', async () => {
      expect(await settings.get()).toEqual({ settings: DEFAULT_SETTINGS, version: 0 });
      expect(await settings.version()).toBe(0);
      expect(await settings.listAllowedAes()).toEqual([]);
    });

    it('stores a valid change, keeps the other settings, and moves the version', async () => {
      const result = await settings.update({ ae_title: ' NEW_SCP ', port: 4242 });
      expect(validValue(result)).toEqual({ ...DEFAULT_SETTINGS, ae_title: 'NEW_SCP', port: 4242 });
      expect(await settings.get()).toEqual({
        settings: { ...DEFAULT_SETTINGS, ae_title: 'NEW_SCP', port: 4242 },
        version: 1,
      });

      validValue(await settings.update({ max_associations: 3, enable_c_get: false }));
      expect(await settings.get()).toEqual({
        settings: {
          ...DEFAULT_SETTINGS,
          ae_title: 'NEW_SCP',
          port: 4242,
          max_associations: 3,
          enable_c_get: false,
        },
        version: 2,
      });
      expect(await settings.version()).toBe(2);
    });

    it('says which settings a change changed, compared under the lock', async () => {
      const first = await settings.update({ port: 4343, ae_title: 'DRAW_SCP' });
      expect(first.isValid && first.changed).toEqual(['port']);
      const again = await settings.update({ port: 4343 });
      expect(again.isValid && again.changed).toEqual([]);
      const [a, b] = await Promise.all([
        settings.update({ port: 5000 }),
        settings.update({ port: 5001, max_associations: 4 }),
      ]);
      // Each change is compared with what was stored when it ran, whichever ran first.
      const changes = [a, b].map((r) => (r.isValid ? r.changed : undefined));
      expect(changes).toContainEqual(['port', 'max_associations']);
      expect(changes).toContainEqual(['port']);
    });

    it('keeps lists, booleans and fractions as given', async () => {
      const change = {
        accepted_sop_class_groups: ['ct'],
        accepted_transfer_syntaxes: ['1.2.840.10008.1.2'],
        enable_storage_cleanup: true,
        auto_start: false,
        acse_timeout: 2.5,
        allowed_ip_addresses: '10.0.0.0/8, ::1',
      };
      validValue(await settings.update(change));
      expect((await settings.get()).settings).toEqual({ ...DEFAULT_SETTINGS, ...change });
    });

    it('refuses an invalid change per field and stores nothing of it', async () => {
      const result = await settings.update({ ae_title: 'lower', port: 80, max_associations: 5 });
      expect(result).toEqual({
        isValid: false,
        errors: { ae_title: 'must be uppercase', port: 'must be at least 1024' },
      });
      expect(await settings.get()).toEqual({ settings: DEFAULT_SETTINGS, version: 0 });

      validValue(await settings.update({ port: 4242 }));
      const refused = await settings.update({ port: 4243, allowed_ip_addresses: '10.0.0.0/8, x' });
      expect(refused).toEqual({
        isValid: false,
        errors: { allowed_ip_addresses: '"x" is not an IPv4 or IPv6 address or CIDR range' },
      });
      expect(await settings.get()).toEqual({
        settings: { ...DEFAULT_SETTINGS, port: 4242 },
        version: 1,
      });
    });

    it('refuses an unknown setting name and a change that is not an object', async () => {
      expect(await settings.update({ colour: 'blue' })).toEqual({
        isValid: false,
        errors: { colour: 'is not a known setting' },
      });
      expect(await settings.update(null)).toEqual({
        isValid: false,
        errors: { _: 'must be an object of settings' },
      });
      expect(await settings.version()).toBe(0);
    });

    it('shows a change to a second connection on the same database, as a running server sees it', async () => {
      const server = new SettingsRepository(await open());
      expect(await server.version()).toBe(0);

      validValue(await settings.update({ logging_level: 'DEBUG' }));
      expect(await server.version()).toBe(1);
      expect((await server.get()).settings.logging_level).toBe('DEBUG');

      validValue(await server.addAllowedAe({ ae_title: 'FROM_SERVER' }));
      expect(await settings.version()).toBe(2);
      expect((await settings.findAllowedAe('FROM_SERVER'))?.ae_title).toBe('FROM_SERVER');
    });

    it('keeps every one of concurrent changes to different settings', async () => {
      const other = new SettingsRepository(await open());
      const changes = [
        { port: 4242 },
        { max_associations: 7 },
        { logging_level: 'ERROR' },
        { auto_start: false },
        { storage_retention_days: 9 },
        { duplicate_policy: 'overwrite' },
      ];
      const results = await Promise.all(
        changes.map((change, i) => (i % 2 === 0 ? settings : other).update(change)),
      );
      for (const result of results) expect(result.isValid).toBe(true);
      expect(await settings.get()).toEqual({
        settings: Object.assign({ ...DEFAULT_SETTINGS }, ...changes),
        version: changes.length,
      });
    });
  });

  describe('allowed peers', () => {
    const modality = {
      ae_title: 'CT_ROOM_1',
      description: 'CT in room 1',
      expected_ip: '10.1.2.3',
      host: 'ct1.local',
      port: 104,
    };

    it('adds a peer with defaults for the fields not given, and finds and lists it', async () => {
      const added = validValue(await settings.addAllowedAe(modality));
      const expected: AllowedAe = {
        ...modality,
        is_active: true,
        may_store: true,
        may_query: true,
        may_retrieve: true,
        is_move_destination: true,
        use_tls: false,
      };
      expect(added).toEqual(expected);
      expect(await settings.findAllowedAe('CT_ROOM_1')).toEqual(expected);
      expect(await settings.findAllowedAe('  CT_ROOM_1 ')).toEqual(expected);
      expect(await settings.listAllowedAes()).toEqual([expected]);
      expect(await settings.findAllowedAe('CT_ROOM_2')).toBeUndefined();
    });

    it('keeps each boolean and an absent port as given', async () => {
      const peer: AllowedAe = {
        ae_title: 'query_only',
        description: '',
        expected_ip: '',
        is_active: false,
        host: '',
        port: null,
        may_store: false,
        may_query: true,
        may_retrieve: false,
        is_move_destination: false,
        use_tls: true,
      };
      validValue(await settings.addAllowedAe(peer));
      expect(await settings.findAllowedAe('query_only')).toEqual(peer);

      const flipped = validValue(
        await settings.updateAllowedAe('query_only', {
          is_active: true,
          may_store: true,
          may_query: false,
          may_retrieve: true,
          is_move_destination: true,
          use_tls: false,
        }),
      );
      expect(await settings.findAllowedAe('query_only')).toEqual(flipped);
      expect(flipped).toEqual({
        ...peer,
        is_active: true,
        may_store: true,
        may_query: false,
        may_retrieve: true,
        is_move_destination: true,
        use_tls: false,
      });
    });

    it('lists peers by AE title', async () => {
      for (const ae_title of ['MR', 'CT', 'US', 'DX']) {
        validValue(await settings.addAllowedAe({ ae_title }));
      }
      const titles = (await settings.listAllowedAes()).map((ae) => ae.ae_title);
      expect(titles).toEqual(['CT', 'DX', 'MR', 'US']);
    });

    it('refuses a peer already listed, on its AE title, also when written with spaces', async () => {
      validValue(await settings.addAllowedAe(modality));
      const again = { isValid: false, errors: { ae_title: 'is already in the list' } };
      expect(await settings.addAllowedAe({ ae_title: 'CT_ROOM_1' })).toEqual(again);
      expect(await settings.addAllowedAe({ ae_title: ' CT_ROOM_1  ' })).toEqual(again);
      expect(await settings.listAllowedAes()).toHaveLength(1);
      expect((await settings.findAllowedAe('CT_ROOM_1'))?.description).toBe('CT in room 1');
    });

    it('adds a peer once when the same one is added concurrently', async () => {
      const other = new SettingsRepository(await open());
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 === 0 ? settings : other).addAllowedAe({ ae_title: 'TWICE' }),
        ),
      );
      expect(results.filter((result) => result.isValid)).toHaveLength(1);
      for (const result of results.filter((r) => !r.isValid)) {
        expect(result).toEqual({ isValid: false, errors: { ae_title: 'is already in the list' } });
      }
      expect(await settings.listAllowedAes()).toHaveLength(1);
      expect(await settings.version()).toBe(1);
    });

    it('runs concurrent changes of every kind without losing one or deadlocking', async () => {
      for (const ae_title of ['A', 'B', 'C']) validValue(await settings.addAllowedAe({ ae_title }));
      const other = new SettingsRepository(await open());
      const outcomes = await Promise.all([
        settings.update({ port: 4242 }),
        other.update({ max_associations: 7 }),
        other.addAllowedAe({ ae_title: 'D' }),
        settings.addAllowedAe({ ae_title: 'E' }),
        other.updateAllowedAe('A', { description: 'changed' }),
        settings.updateAllowedAe('B', { may_store: false }),
        other.removeAllowedAe('C'),
        settings.addAllowedAe({ ae_title: 'A' }),
        settings.removeAllowedAe('NOT_LISTED'),
      ]);
      const isDone = (outcome: unknown) =>
        outcome === true || (typeof outcome === 'object' && outcome !== null && 'value' in outcome);
      expect(outcomes.map(isDone)).toEqual([
        true,
        true,
        true,
        true,
        true,
        true,
        true,
        false,
        false,
      ]);

      expect(await settings.version()).toBe(3 + 7);
      expect((await settings.get()).settings).toMatchObject({ port: 4242, max_associations: 7 });
      const peers = await settings.listAllowedAes();
      expect(peers.map((ae) => ae.ae_title)).toEqual(['A', 'B', 'D', 'E']);
      expect(peers[0]?.description).toBe('changed');
      expect(peers[1]?.may_store).toBe(false);
    });

    it('refuses an invalid peer per field and stores nothing', async () => {
      expect(await settings.addAllowedAe({ ae_title: 'A\\B', host: 'pacs' })).toEqual({
        isValid: false,
        errors: { ae_title: 'may hold only printable ASCII characters, without backslash' },
      });
      expect(await settings.addAllowedAe({ ae_title: 'PACS', host: 'pacs' })).toEqual({
        isValid: false,
        errors: { port: 'host and port go together (a move destination)' },
      });
      expect(await settings.listAllowedAes()).toEqual([]);
      expect(await settings.version()).toBe(0);
    });

    it('changes a peer, keeping its AE title and the fields not changed', async () => {
      validValue(await settings.addAllowedAe(modality));
      const changed = validValue(
        await settings.updateAllowedAe(' CT_ROOM_1 ', {
          ae_title: 'RENAMED',
          description: 'CT, moved to room 2',
          may_query: false,
        }),
      );
      expect(changed).toMatchObject({
        ae_title: 'CT_ROOM_1',
        description: 'CT, moved to room 2',
        may_query: false,
        host: 'ct1.local',
        port: 104,
        expected_ip: '10.1.2.3',
      });
      expect(await settings.findAllowedAe('CT_ROOM_1')).toEqual(changed);
      expect(await settings.findAllowedAe('RENAMED')).toBeUndefined();
    });

    it('refuses an invalid change to a peer and keeps it as it was', async () => {
      const added = validValue(await settings.addAllowedAe(modality));
      expect(await settings.updateAllowedAe('CT_ROOM_1', { port: 70000 })).toEqual({
        isValid: false,
        errors: { port: 'must be at most 65535' },
      });
      expect(await settings.updateAllowedAe('CT_ROOM_1', { host: '' })).toEqual({
        isValid: false,
        errors: { host: 'host and port go together (a move destination)' },
      });
      expect(await settings.updateAllowedAe('CT_ROOM_1', { may_delete: true })).toEqual({
        isValid: false,
        errors: { may_delete: 'is not a known field' },
      });
      expect(await settings.findAllowedAe('CT_ROOM_1')).toEqual(added);
      expect(await settings.version()).toBe(1);
    });

    it('gives undefined for a change to a peer not listed', async () => {
      expect(await settings.updateAllowedAe('NOBODY', { description: 'x' })).toBeUndefined();
      expect(await settings.listAllowedAes()).toEqual([]);
      expect(await settings.version()).toBe(0);
    });

    it('removes a listed peer, and says false for one not listed', async () => {
      validValue(await settings.addAllowedAe(modality));
      validValue(await settings.addAllowedAe({ ae_title: 'KEPT' }));
      expect(await settings.removeAllowedAe(' CT_ROOM_1 ')).toBe(true);
      expect(await settings.findAllowedAe('CT_ROOM_1')).toBeUndefined();
      expect(await settings.removeAllowedAe('CT_ROOM_1')).toBe(false);
      expect(await settings.removeAllowedAe('NEVER')).toBe(false);
      expect((await settings.listAllowedAes()).map((ae) => ae.ae_title)).toEqual(['KEPT']);
    });

    it('moves the version with each add, change and removal, and with nothing refused', async () => {
      expect(await settings.version()).toBe(0);
      validValue(await settings.addAllowedAe({ ae_title: 'ONE' }));
      expect(await settings.version()).toBe(1);
      // The version row made for the peer holds the defaults: the settings read as before.
      expect(await settings.get()).toEqual({ settings: DEFAULT_SETTINGS, version: 1 });
      validValue(await settings.addAllowedAe({ ae_title: 'TWO' }));
      expect(await settings.version()).toBe(2);
      validValue(await settings.updateAllowedAe('ONE', { description: 'first' }));
      expect(await settings.version()).toBe(3);
      expect(await settings.removeAllowedAe('TWO')).toBe(true);
      expect(await settings.version()).toBe(4);
      validValue(await settings.update({ port: 4242 }));
      expect(await settings.version()).toBe(5);

      // Refused or no-op operations leave it.
      await settings.addAllowedAe({ ae_title: 'ONE' });
      await settings.addAllowedAe({ ae_title: '' });
      await settings.updateAllowedAe('ONE', { port: 0 });
      await settings.updateAllowedAe('TWO', { description: 'gone' });
      await settings.removeAllowedAe('TWO');
      await settings.update({ port: 1 });
      expect(await settings.version()).toBe(5);
      expect((await settings.get()).settings.port).toBe(4242);
    });
  });

  describe('transaction log', () => {
    it('writes a batch larger than one statement and pages through it newest first', async () => {
      const count = 450;
      await log.insert(Array.from({ length: count }, (_, n) => storeRecord(n)));
      expect(await log.count({})).toBe(count);

      for (const limit of [100, 150, 449, 450, 1000]) {
        const seen: number[] = [];
        const ids: number[] = [];
        let beforeId: number | undefined;
        let pages = 0;
        do {
          const page = await log.page({}, limit, beforeId);
          pages++;
          expect(page.rows.length).toBeLessThanOrEqual(limit);
          seen.push(...numbers(page.rows));
          ids.push(...page.rows.map((row) => row.id));
          beforeId = page.nextBeforeId;
          if (beforeId !== undefined) expect(beforeId).toBe(page.rows.at(-1)?.id);
        } while (beforeId !== undefined);
        expect(seen, `limit ${limit}`).toEqual(
          Array.from({ length: count }, (_, i) => count - 1 - i),
        );
        for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeLessThan(ids[i - 1] as number);
        expect(pages, `limit ${limit}`).toBe(Math.ceil(count / limit));
      }
    });

    it('writes nothing for an empty batch', async () => {
      await log.insert([]);
      expect(await log.count({})).toBe(0);
      expect(await log.page({}, 10)).toEqual({ rows: [], nextBeforeId: undefined });
    });

    it('reads back every field of a row, and nulls for those not given', async () => {
      const full: TransactionRecord = {
        occurredAt: at(1),
        type: 'C-STORE',
        status: 'warning',
        statusCode: 0xb000,
        associationId: 'a1b2c3',
        callingAe: 'MODALITY',
        calledAe: 'DRAW_SCP',
        remoteAddress: '::ffff:10.0.0.7',
        remotePort: 51234,
        sopClassUid: CT,
        sopInstanceUid: `${ROOT}.1.1.1`,
        patientId: 'PID-7',
        studyInstanceUid: `${ROOT}.1`,
        seriesInstanceUid: `${ROOT}.1.1`,
        filePath: 'PID-7/1/1/1.dcm',
        bytes: 5 * 2 ** 32 + 7,
        durationMs: 1534.25,
        transferRateMbps: 87.5,
        message: 'coerced',
      };
      const bare: TransactionRecord = {
        occurredAt: at(2),
        type: 'ASSOCIATE',
        status: 'success',
        associationId: 'a1b2c3',
        callingAe: 'MODALITY',
        calledAe: 'DRAW_SCP',
        remoteAddress: '10.0.0.7',
        remotePort: 51234,
      };
      await log.insert([full, bare]);
      const { rows } = await log.page({}, 10);
      expect(rows).toHaveLength(2);
      const [second, first] = rows as [TransactionRow, TransactionRow];
      expect(first).toEqual({
        id: expect.any(Number),
        occurred_at: full.occurredAt,
        type: 'C-STORE',
        status: 'warning',
        status_code: 0xb000,
        association_id: 'a1b2c3',
        calling_ae: 'MODALITY',
        called_ae: 'DRAW_SCP',
        remote_address: '::ffff:10.0.0.7',
        remote_port: 51234,
        sop_class_uid: CT,
        sop_instance_uid: `${ROOT}.1.1.1`,
        patient_id: 'PID-7',
        study_instance_uid: `${ROOT}.1`,
        series_instance_uid: `${ROOT}.1.1`,
        file_path: 'PID-7/1/1/1.dcm',
        bytes: 5 * 2 ** 32 + 7,
        duration_ms: 1534.25,
        transfer_rate_mbps: 87.5,
        message: 'coerced',
      });
      expect(second).toMatchObject({
        type: 'ASSOCIATE',
        status_code: null,
        sop_class_uid: null,
        sop_instance_uid: null,
        patient_id: null,
        study_instance_uid: null,
        series_instance_uid: null,
        file_path: null,
        bytes: null,
        duration_ms: null,
        transfer_rate_mbps: null,
        message: null,
      });
    });

    describe('filters', () => {
      // Six rows a second apart; their numbers are their messages.
      const rows: TransactionRecord[] = [
        storeRecord(0, { type: 'ASSOCIATE', callingAe: 'CT_A' }),
        storeRecord(1, { callingAe: 'CT_A' }),
        storeRecord(2, { callingAe: 'CT_A', status: 'failure', statusCode: 0xa700 }),
        storeRecord(3, { type: 'ASSOCIATE', status: 'rejected', callingAe: 'ROGUE' }),
        storeRecord(4, { type: 'C-FIND', callingAe: 'DRAW_SCP', calledAe: 'REMOTE_PACS' }),
        storeRecord(5, { type: 'RELEASE', callingAe: 'CT_A' }),
      ];

      beforeEach(async () => {
        await log.insert(rows);
      });

      async function matching(filter: TransactionFilter): Promise<number[]> {
        const page = await log.page(filter, 100);
        expect(page.nextBeforeId).toBeUndefined();
        expect(await log.count(filter)).toBe(page.rows.length);
        return numbers(page.rows);
      }

      it('reads every row without a filter', async () => {
        expect(await matching({})).toEqual([5, 4, 3, 2, 1, 0]);
      });

      it('filters by type', async () => {
        expect(await matching({ type: 'C-STORE' })).toEqual([2, 1]);
        expect(await matching({ type: 'ASSOCIATE' })).toEqual([3, 0]);
        expect(await matching({ type: 'C-MOVE' })).toEqual([]);
      });

      it('filters by status', async () => {
        expect(await matching({ status: 'failure' })).toEqual([2]);
        expect(await matching({ status: 'rejected' })).toEqual([3]);
        expect(await matching({ status: 'success' })).toEqual([5, 4, 1, 0]);
      });

      it('filters by AE title, calling or called', async () => {
        expect(await matching({ aeTitle: 'CT_A' })).toEqual([5, 2, 1, 0]);
        expect(await matching({ aeTitle: 'ROGUE' })).toEqual([3]);
        expect(await matching({ aeTitle: 'REMOTE_PACS' })).toEqual([4]);
        // Called in rows 0-3 and 5, calling in row 4.
        expect(await matching({ aeTitle: 'DRAW_SCP' })).toEqual([5, 4, 3, 2, 1, 0]);
        expect(await matching({ aeTitle: 'ct_a' })).toEqual([]);
      });

      it('filters by time, the start inclusive and the end exclusive', async () => {
        expect(await matching({ since: at(2) })).toEqual([5, 4, 3, 2]);
        expect(await matching({ until: at(2) })).toEqual([1, 0]);
        expect(await matching({ since: at(1), until: at(4) })).toEqual([3, 2, 1]);
        expect(await matching({ since: at(6) })).toEqual([]);
      });

      it('combines filters', async () => {
        expect(await matching({ type: 'C-STORE', status: 'success' })).toEqual([1]);
        expect(await matching({ aeTitle: 'CT_A', type: 'ASSOCIATE', until: at(5) })).toEqual([0]);
        expect(await matching({ aeTitle: 'CT_A', since: at(1), status: 'success' })).toEqual([
          5, 1,
        ]);
      });

      it('pages through filtered rows', async () => {
        const first = await log.page({ aeTitle: 'CT_A' }, 3);
        expect(numbers(first.rows)).toEqual([5, 2, 1]);
        expect(first.nextBeforeId).toBeDefined();
        const second = await log.page({ aeTitle: 'CT_A' }, 3, first.nextBeforeId);
        expect(numbers(second.rows)).toEqual([0]);
        expect(second.nextBeforeId).toBeUndefined();
      });
    });

    it('prunes only the rows older than the given time, and says how many', async () => {
      await log.insert(Array.from({ length: 10 }, (_, n) => storeRecord(n)));
      expect(await log.prune(at(0))).toBe(0);
      expect(await log.prune(at(4))).toBe(4);
      expect(numbers((await log.page({}, 100)).rows)).toEqual([9, 8, 7, 6, 5, 4]);
      expect(await log.prune(at(4))).toBe(0);
      expect(await log.count({})).toBe(6);
    });

    it('prunes at most the given number of rows, the oldest first', async () => {
      await log.insert(Array.from({ length: 10 }, (_, n) => storeRecord(n)));
      expect(await log.prune(at(100), 3)).toBe(3);
      expect(numbers((await log.page({}, 100)).rows)).toEqual([9, 8, 7, 6, 5, 4, 3]);
      expect(await log.prune(at(100))).toBe(7);
      expect(await log.count({})).toBe(0);
    });

    it('lists the calling AE titles seen, by title and address, most recent first', async () => {
      // An association row, with a message only when given (an accepted one has none).
      const associate = (
        n: number,
        callingAe: string,
        remoteAddress: string,
        overrides: Partial<TransactionRecord> = {},
      ): TransactionRecord => {
        const { message: _message, ...row } = storeRecord(n);
        return { ...row, type: 'ASSOCIATE', callingAe, remoteAddress, ...overrides };
      };
      await log.insert([
        associate(0, 'OLD', '10.0.0.9'),
        associate(1, 'CT_A', '10.0.0.1'),
        storeRecord(2, { callingAe: 'CT_A', remoteAddress: '10.0.0.1' }),
        associate(3, 'CT_A', '10.0.0.2'),
        associate(4, 'ROGUE', '192.0.2.7', {
          status: 'rejected',
          message: 'address not allowed',
        }),
      ]);
      await log.insert([
        associate(5, 'CT_A', '10.0.0.1', {
          status: 'rejected',
          message: 'calling AE title not listed',
        }),
        storeRecord(6, { callingAe: 'NEVER_ASSOCIATED', remoteAddress: '10.0.0.5' }),
      ]);

      expect(await log.seenCallingAes(at(1))).toEqual([
        {
          callingAe: 'CT_A',
          remoteAddress: '10.0.0.1',
          lastSeen: at(5),
          associations: 2,
          lastMessage: 'calling AE title not listed',
          lastStatus: 'rejected',
        },
        {
          callingAe: 'ROGUE',
          remoteAddress: '192.0.2.7',
          lastSeen: at(4),
          associations: 1,
          lastMessage: 'address not allowed',
          lastStatus: 'rejected',
        },
        {
          callingAe: 'CT_A',
          remoteAddress: '10.0.0.2',
          lastSeen: at(3),
          associations: 1,
          lastMessage: null,
          lastStatus: 'success',
        },
      ]);
      expect((await log.seenCallingAes(at(0))).map((seen) => seen.callingAe)).toContain('OLD');
      expect(await log.seenCallingAes(at(6))).toEqual([]);
    });
  });

  describe('service status', () => {
    const running: StoredServiceStatus = {
      state: 'running',
      pid: 4321,
      hostname: 'dicom-host',
      startedAt: at(0),
      stoppedAt: null,
      activeAssociations: 3,
      filesReceived: 2 ** 32 + 5,
      bytesReceived: 3 * 2 ** 40 + 123_456_789,
      errors: 2,
      lastError: 'disk full',
      lastErrorAt: at(30),
      updatedAt: at(60),
    };

    it('has no status before the service was ever started', async () => {
      expect(await status.get()).toBeUndefined();
    });

    it('reads back what was saved, totals beyond 2^32 included', async () => {
      await status.save(running);
      expect(await status.get()).toEqual(running);
    });

    it('replaces the status whole with each save', async () => {
      await status.save(running);
      const stopped: StoredServiceStatus = {
        ...running,
        state: 'stopped',
        pid: null,
        stoppedAt: at(90),
        activeAssociations: 0,
        bytesReceived: running.bytesReceived + 2 ** 33,
        lastError: null,
        lastErrorAt: null,
        updatedAt: at(90),
      };
      await status.save(stopped);
      expect(await status.get()).toEqual(stopped);
      const rows = await database.db
        .selectFrom('service_status')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(rows.n)).toBe(1);
    });

    it('shows the status to a second connection on the same database', async () => {
      await status.save(running);
      const reader = new ServiceStatusRepository(await open());
      expect(await reader.get()).toEqual(running);
    });
  });
});
