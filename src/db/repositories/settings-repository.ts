/**
 * The stored settings (one row) and the allowed peers, with the version number that moves with
 * every change to either: a running server compares it to what it loaded, so that a change made
 * by `dicom-server config set` or the API in another process reaches it without a restart.
 *
 * Layer: db (repositories hold all SQL).
 */

import type { Kysely, Selectable } from 'kysely';
import {
  type AllowedAe,
  applyAllowedAeChange,
  applySettingsChange,
  DEFAULT_SETTINGS,
  SETTING_KEYS,
  type SettingKey,
  type Settings,
  settingsFromStored,
  type Validated,
  validateAllowedAe,
} from '../../settings/schema.js';
import type { AllowedAeTitlesTable, Database } from '../schema.js';
import {
  firstRowOf,
  rowsOf,
  type TransactionBody,
  type TransactionRunner,
} from '../transactions.js';

const SETTINGS_ROW = 1;

/** Settings with the version they were read at. */
export interface VersionedSettings {
  readonly settings: Settings;
  readonly version: number;
}

/** What a change to an allowed peer can come to. */
export type AllowedAeChange =
  | Validated<AllowedAe>
  | { readonly isValid: false; readonly errors: { readonly ae_title: string } };

function toAllowedAe(row: Selectable<AllowedAeTitlesTable>): AllowedAe {
  return {
    ae_title: row.ae_title,
    description: row.description,
    expected_ip: row.expected_ip,
    is_active: Boolean(row.is_active),
    host: row.host,
    port: row.port,
    may_store: Boolean(row.may_store),
    may_query: Boolean(row.may_query),
    may_retrieve: Boolean(row.may_retrieve),
    is_move_destination: Boolean(row.is_move_destination),
    use_tls: Boolean(row.use_tls),
  };
}

function toRow(ae: AllowedAe, now: string) {
  return {
    ae_title: ae.ae_title,
    description: ae.description,
    expected_ip: ae.expected_ip,
    is_active: ae.is_active ? 1 : 0,
    host: ae.host,
    port: ae.port,
    may_store: ae.may_store ? 1 : 0,
    may_query: ae.may_query ? 1 : 0,
    may_retrieve: ae.may_retrieve ? 1 : 0,
    is_move_destination: ae.is_move_destination ? 1 : 0,
    use_tls: ae.use_tls ? 1 : 0,
    updated_at: now,
  };
}

/** Reads and changes the settings and the allowed peers. */
export class SettingsRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;

  constructor(database: { readonly db: Kysely<Database>; readonly runner: TransactionRunner }) {
    this.#db = database.db;
    this.#runner = database.runner;
  }

  /** The settings (the defaults until something was stored) and their version. */
  async get(): Promise<VersionedSettings> {
    const [row] = await this.#runner.runQuery(
      this.#db
        .selectFrom('settings')
        .select(['values_json', 'version'])
        .where('id', '=', SETTINGS_ROW)
        .compile(),
    );
    if (row === undefined) return { settings: DEFAULT_SETTINGS, version: 0 };
    return {
      settings: settingsFromStored(JSON.parse(row.values_json)),
      version: Number(row.version),
    };
  }

  /** The version of the settings and allowed peers: it moves with every change to either. */
  async version(): Promise<number> {
    const [row] = await this.#runner.runQuery(
      this.#db.selectFrom('settings').select('version').where('id', '=', SETTINGS_ROW).compile(),
    );
    return row === undefined ? 0 : Number(row.version);
  }

  /** Validates and stores a change (some settings by name); the new settings or the errors. */
  async update(change: unknown): Promise<Validated<Settings> & { changed?: SettingKey[] }> {
    const db = this.#db;
    const self = this;
    return this.#runner.runTransaction(function* () {
      const row = yield* lockVersionRow(db);
      const before = settingsFromStored(JSON.parse(row.values_json));
      const result = applySettingsChange(before, change);
      if (!result.isValid) return result;
      yield* self.#store(result.value);
      // Compared under the row lock: what this change did, whatever ran beside it.
      const changed = SETTING_KEYS.filter(
        (key) => JSON.stringify(before[key]) !== JSON.stringify(result.value[key]),
      );
      return { ...result, changed };
    });
  }

  /** The allowed peers, by AE title. */
  async listAllowedAes(): Promise<AllowedAe[]> {
    const rows = await this.#runner.runQuery(
      this.#db.selectFrom('allowed_ae_titles').selectAll().orderBy('ae_title').compile(),
    );
    return rows.map(toAllowedAe);
  }

  /** One allowed peer. */
  async findAllowedAe(aeTitle: string): Promise<AllowedAe | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#db
        .selectFrom('allowed_ae_titles')
        .selectAll()
        .where('ae_title', '=', aeTitle.trim())
        .compile(),
    );
    return row === undefined ? undefined : toAllowedAe(row);
  }

  /** Adds an allowed peer; an AE title already listed is an error on that field. */
  async addAllowedAe(input: unknown): Promise<AllowedAeChange> {
    const result = validateAllowedAe(input);
    if (!result.isValid) return result;
    const db = this.#db;
    const ae = result.value;
    return this.#runner.runTransaction(function* (): TransactionBody<AllowedAeChange> {
      yield* lockVersionRow(db);
      const [existing] = yield* rowsOf(
        db
          .selectFrom('allowed_ae_titles')
          .select('id')
          .where('ae_title', '=', ae.ae_title)
          .compile(),
      );
      if (existing !== undefined) {
        return { isValid: false, errors: { ae_title: 'is already in the list' } };
      }
      const now = new Date().toISOString();
      yield* rowsOf(
        db
          .insertInto('allowed_ae_titles')
          .values({ ...toRow(ae, now), created_at: now })
          .compile(),
      );
      yield* bumpVersion(db);
      return result;
    });
  }

  /** Changes an allowed peer; undefined when it is not listed. */
  async updateAllowedAe(
    aeTitle: string,
    change: unknown,
  ): Promise<Validated<AllowedAe> | undefined> {
    const db = this.#db;
    return this.#runner.runTransaction(function* () {
      yield* lockVersionRow(db);
      const [row] = yield* rowsOf(
        db
          .selectFrom('allowed_ae_titles')
          .selectAll()
          .where('ae_title', '=', aeTitle.trim())
          .compile(),
      );
      if (row === undefined) return undefined;
      const result = applyAllowedAeChange(toAllowedAe(row), change);
      if (!result.isValid) return result;
      yield* rowsOf(
        db
          .updateTable('allowed_ae_titles')
          .set(toRow(result.value, new Date().toISOString()))
          .where('id', '=', row.id)
          .compile(),
      );
      yield* bumpVersion(db);
      return result;
    });
  }

  /** Removes an allowed peer; false when it was not listed. */
  async removeAllowedAe(aeTitle: string): Promise<boolean> {
    const db = this.#db;
    return this.#runner.runTransaction(function* () {
      yield* lockVersionRow(db);
      const removed = yield* rowsOf(
        db
          .deleteFrom('allowed_ae_titles')
          .where('ae_title', '=', aeTitle.trim())
          .returning('id')
          .compile(),
      );
      if (removed.length === 0) return false;
      yield* bumpVersion(db);
      return true;
    });
  }

  /** Stores the settings and moves the version; the row is there (`lockVersionRow`). */
  *#store(settings: Settings): TransactionBody<void> {
    yield* rowsOf(
      this.#db
        .updateTable('settings')
        .set((eb) => ({
          values_json: JSON.stringify(settings),
          version: eb('version', '+', 1),
          updated_at: new Date().toISOString(),
        }))
        .where('id', '=', SETTINGS_ROW)
        .compile(),
    );
  }
}

/**
 * The first step of every change: locks the settings row, making it when there is none (no
 * values, which read as the defaults, at version 0), and reads it. On PostgreSQL this puts
 * changes made at once (the API beside `config set`) one after the other, each reading what the
 * one before wrote: without it, two settings changes each stored their own reading and one was
 * lost, and two adds of the same AE title both found none and one failed on the unique index.
 * Taking this lock before any other also keeps changes from locking rows in opposite orders.
 * On SQLite, BEGIN IMMEDIATE already serialises writers; the statement costs nothing there.
 */
function* lockVersionRow(db: Kysely<Database>): TransactionBody<{ values_json: string }> {
  return yield* firstRowOf(
    db
      .insertInto('settings')
      .values({
        id: SETTINGS_ROW,
        values_json: '{}',
        version: 0,
        updated_at: new Date().toISOString(),
      })
      // An update that changes nothing, for its row lock and its RETURNING of the latest row.
      .onConflict((oc) =>
        oc.column('id').doUpdateSet((eb) => ({ version: eb.ref('settings.version') })),
      )
      .returning('values_json')
      .compile(),
  );
}

/** Moves the version; the row is there (`lockVersionRow`). */
function* bumpVersion(db: Kysely<Database>): TransactionBody<void> {
  yield* rowsOf(
    db
      .updateTable('settings')
      .set((eb) => ({ version: eb('version', '+', 1), updated_at: new Date().toISOString() }))
      .where('id', '=', SETTINGS_ROW)
      .compile(),
  );
}
