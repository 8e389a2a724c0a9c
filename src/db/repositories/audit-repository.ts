/**
 * The audit log of management actions (settings and AE title changes, service start, stop and
 * restart, logins and failed logins, users and tokens): who, what, from where, how it ended.
 *
 * Layer: db (repositories hold all SQL).
 */

import type { Kysely, Selectable } from 'kysely';
import type { AuditLogTable, Database } from '../schema.js';
import type { TransactionRunner } from '../transactions.js';

/** One management action. */
export interface AuditEntry {
  readonly username: string;
  readonly action: string;
  readonly outcome: 'success' | 'failure' | 'denied';
  readonly remoteAddress: string;
  readonly detail?: string;
}

export type AuditRow = Selectable<AuditLogTable>;

/** Writes and reads the audit log. */
export class AuditRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;

  constructor(database: { readonly db: Kysely<Database>; readonly runner: TransactionRunner }) {
    this.#db = database.db;
    this.#runner = database.runner;
  }

  async record(entry: AuditEntry): Promise<void> {
    await this.#runner.runQuery(
      this.#db
        .insertInto('audit_log')
        .values({
          occurred_at: new Date().toISOString(),
          username: entry.username,
          action: entry.action,
          outcome: entry.outcome,
          remote_address: entry.remoteAddress,
          detail: entry.detail ?? null,
        })
        .compile(),
    );
  }

  /** The newest entries first, older than `beforeId` when given. */
  async page(limit: number, beforeId?: number): Promise<AuditRow[]> {
    let query = this.#db.selectFrom('audit_log').selectAll();
    if (beforeId !== undefined) query = query.where('id', '<', beforeId);
    return this.#runner.runQuery(query.orderBy('id', 'desc').limit(limit).compile());
  }
}
