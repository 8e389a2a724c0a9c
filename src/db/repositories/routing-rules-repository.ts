/**
 * The forwarding rules an operator edits: each with a unique name, whether it is enabled, its
 * conditions on a received instance's attributes (attribute to pattern, see
 * server/routing/rules.ts) and its destination AE titles, stored as JSON. The forward queue
 * the rules fill is in routing-repository.ts.
 *
 * Layer: db (repositories hold all SQL).
 */

import type { Kysely, Selectable } from 'kysely';
import type { Database, RoutingRulesTable } from '../schema.js';
import { rowsOf, type TransactionBody, type TransactionRunner } from '../transactions.js';

/** A forwarding rule. */
export interface RoutingRule {
  readonly id: number;
  readonly name: string;
  readonly description: string;
  readonly isEnabled: boolean;
  /** Attribute name to pattern (see server/routing/rules.ts). */
  readonly conditions: Readonly<Record<string, string>>;
  readonly destinations: readonly string[];
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A rule as written (created or replaced). */
export interface RoutingRuleInput {
  readonly name: string;
  readonly description: string;
  readonly isEnabled: boolean;
  readonly conditions: Readonly<Record<string, string>>;
  readonly destinations: readonly string[];
}

/** The answer to a rule change: done, or why not. */
export type RuleChangeResult =
  | { readonly isChanged: true; readonly rule: RoutingRule }
  | {
      readonly isChanged: false;
      readonly reason: 'not-found' | 'conflict';
      readonly message: string;
    };

type Step<T> = TransactionBody<T>;
type RuleRow = Selectable<RoutingRulesTable>;

function toRule(row: RuleRow): RoutingRule {
  return {
    id: Number(row.id),
    name: row.name,
    description: row.description,
    isEnabled: Number(row.is_enabled) === 1,
    conditions: JSON.parse(row.conditions_json) as Record<string, string>,
    destinations: JSON.parse(row.destinations_json) as string[],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function ruleValues(input: RoutingRuleInput) {
  return {
    name: input.name,
    description: input.description,
    is_enabled: input.isEnabled ? 1 : 0,
    conditions_json: JSON.stringify(input.conditions),
    destinations_json: JSON.stringify(input.destinations),
  };
}

/** Reads and writes the forwarding rules. */
export class RoutingRulesRepository {
  readonly #db: Kysely<Database>;
  readonly #runner: TransactionRunner;

  constructor(database: { readonly db: Kysely<Database>; readonly runner: TransactionRunner }) {
    this.#db = database.db;
    this.#runner = database.runner;
  }

  /** Every rule, in id order (the order they are matched in). */
  async listRules(): Promise<RoutingRule[]> {
    const rows = await this.#runner.runQuery(
      this.#db.selectFrom('routing_rules').selectAll().orderBy('id').compile(),
    );
    return rows.map(toRule);
  }

  /**
   * A summary that moves with every change to the rules (an addition, an edit, a removal): how
   * many there are, their ids' sum and the latest change. One read of a small table, for a
   * server to see changes another one made on a shared index.
   */
  async fingerprint(): Promise<string> {
    const [row] = await this.#runner.runQuery(
      this.#db
        .selectFrom('routing_rules')
        .select((eb) => [
          eb.fn.countAll<number>().as('count'),
          eb.fn.sum<number>('id').as('ids'),
          eb.fn.max('updated_at').as('latest'),
        ])
        .compile(),
    );
    return `${Number(row?.count ?? 0)}:${Number(row?.ids ?? 0)}:${row?.latest ?? ''}`;
  }

  /** One rule. */
  async getRule(id: number): Promise<RoutingRule | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#db.selectFrom('routing_rules').selectAll().where('id', '=', id).compile(),
    );
    return row === undefined ? undefined : toRule(row);
  }

  /** Adds a rule; a conflict when its name is taken. */
  async createRule(input: RoutingRuleInput, now: string): Promise<RuleChangeResult> {
    const db = this.#db;
    return this.#runner.runTransaction(function* (): Step<RuleChangeResult> {
      if (yield* isNameTaken(db, input.name, undefined)) return nameTaken(input.name);
      const [row] = yield* rowsOf(
        db
          .insertInto('routing_rules')
          .values({ ...ruleValues(input), created_at: now, updated_at: now })
          .returningAll()
          .compile(),
      );
      if (row === undefined) throw new Error('routing rule not written');
      return { isChanged: true, rule: toRule(row) };
    });
  }

  /** Replaces a rule; not found, or a conflict when its new name is another rule's. */
  async updateRule(id: number, input: RoutingRuleInput, now: string): Promise<RuleChangeResult> {
    const db = this.#db;
    return this.#runner.runTransaction(function* (): Step<RuleChangeResult> {
      const [current] = yield* rowsOf(
        db.selectFrom('routing_rules').select('id').where('id', '=', id).compile(),
      );
      if (current === undefined) {
        return { isChanged: false, reason: 'not-found', message: `no routing rule ${id}` };
      }
      if (yield* isNameTaken(db, input.name, id)) return nameTaken(input.name);
      const [row] = yield* rowsOf(
        db
          .updateTable('routing_rules')
          .set({ ...ruleValues(input), updated_at: now })
          .where('id', '=', id)
          .returningAll()
          .compile(),
      );
      if (row === undefined) throw new Error(`routing rule ${id} not written`);
      return { isChanged: true, rule: toRule(row) };
    });
  }

  /** Removes a rule (its queued jobs stay); the rule removed, if there was one. */
  async deleteRule(id: number): Promise<RoutingRule | undefined> {
    const [row] = await this.#runner.runQuery(
      this.#db.deleteFrom('routing_rules').where('id', '=', id).returningAll().compile(),
    );
    return row === undefined ? undefined : toRule(row);
  }
}

function* isNameTaken(
  db: Kysely<Database>,
  name: string,
  exceptId: number | undefined,
): Step<boolean> {
  let query = db.selectFrom('routing_rules').select('id').where('name', '=', name);
  if (exceptId !== undefined) query = query.where('id', '!=', exceptId);
  const rows = yield* rowsOf(query.compile());
  return rows.length > 0;
}

function nameTaken(name: string): RuleChangeResult {
  return {
    isChanged: false,
    reason: 'conflict',
    message: `a routing rule named ${JSON.stringify(name)} exists already`,
  };
}
