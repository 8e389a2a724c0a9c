/**
 * Sequence matching (PS3.4 §C.2.2.2.6) as SQL on the sequence_items table, one row per item key
 * value: all the item conditions of a sequence key must hold in one stored item, which is a
 * self-join on the item's number; each condition is the plain key's (query-matching.ts), on the
 * row's value.
 *
 * Layer: db (repositories hold all SQL).
 */

import { type RawBuilder, type SqlBool, sql } from 'kysely';
import {
  type ItemCondition,
  SEQUENCE_KEYS,
  type SequenceCondition,
  type SequenceKey,
  type ValueMatch,
} from '../../dicom/query/model.js';
import { type IndexTable, type MatchOptions, textCondition } from './query-matching.js';
import { ALWAYS, isUniversalPattern, NEVER } from './query-wildcards.js';

/** The table whose row owns the items of a sequence key of an entity. */
export const SEQUENCE_OWNER_TABLE: Readonly<Record<SequenceKey['entity'], IndexTable>> = {
  patient: 'patients',
  study: 'studies',
  series: 'series',
};

/** The columns that name one stored item. */
const ITEM_COLUMNS = ['entity', 'owner_fk', 'sequence_tag', 'item_number'] as const;

/** True for a match every value meets, a stored one or none (`*`, `**`, ...). */
function isUniversalMatch(match: ValueMatch): boolean {
  return match.kind === 'wildcard' && isUniversalPattern(match.pattern);
}

/**
 * The item conditions of a sequence condition over one stored item: `from` the rows of item
 * keys, aliased i0, i1, ... and joined on the same item (i0 names the item: its owner and
 * number), `where` each row holds its key and its value matches. Undefined when every item
 * condition is universal: then any entity, and any item, matches.
 */
function itemMatchSql(
  condition: SequenceCondition,
  options: MatchOptions,
): { from: RawBuilder<unknown>; where: RawBuilder<SqlBool> } | undefined {
  const sequence = SEQUENCE_KEYS.get(condition.keyword);
  if (sequence === undefined) return undefined;
  const itemKeys = new Map([...sequence.itemKeys.values()].map((key) => [key.keyword, key]));
  const conditions = condition.itemConditions.filter((c) => !isUniversalMatch(c.match));
  if (conditions.length === 0) return undefined;
  const from: RawBuilder<unknown>[] = [sql`sequence_items as i0`];
  const where: RawBuilder<SqlBool>[] = [
    sql<SqlBool>`i0.entity = ${sequence.entity}`,
    sql<SqlBool>`i0.sequence_tag = ${sequence.tag}`,
  ];
  conditions.forEach((item: ItemCondition, index) => {
    const key = itemKeys.get(item.keyword);
    const alias = `i${index}`;
    if (index > 0) {
      const same = (column: string) =>
        sql`${sql.ref(`${alias}.${column}`)} = ${sql.ref(`i0.${column}`)}`;
      from.push(
        sql`inner join sequence_items as ${sql.id(alias)} on ${sql.join(
          ITEM_COLUMNS.map(same),
          sql` and `,
        )}`,
      );
    }
    if (key === undefined) {
      where.push(NEVER);
      return;
    }
    const value = sql.ref(`${alias}.value`);
    const isFolded = key.vr === 'PN' && options.isPersonNameCaseInsensitive;
    where.push(sql<SqlBool>`${sql.ref(`${alias}.element_tag`)} = ${key.tag}`);
    where.push(textCondition(value, key, item.match, { kind: options.kind, isFolded }));
  });
  return { from: sql.join(from, sql` `), where: sql<SqlBool>`${sql.join(where, sql` and `)}` };
}

/**
 * The SQL condition that an entity (its table joined) has a stored item of a sequence key
 * matching every item condition (PS3.4 §C.2.2.2.6). Written as `id in (...)`, so that either
 * database may start from the items' value index or from the entity.
 */
export function sequenceConditionSql(
  condition: SequenceCondition,
  options: MatchOptions,
): RawBuilder<SqlBool> {
  const sequence = SEQUENCE_KEYS.get(condition.keyword);
  if (sequence === undefined) return NEVER;
  const items = itemMatchSql(condition, options);
  if (items === undefined) return ALWAYS;
  const owner = sql.ref(`${SEQUENCE_OWNER_TABLE[sequence.entity]}.id`);
  return sql<SqlBool>`${owner} in (select i0.owner_fk from ${items.from} where ${items.where})`;
}

/**
 * The SQL condition that a stored item, the one of the sequence_items row aliased `alias`,
 * matches a sequence condition: the items a matching sequence key returns.
 */
export function matchingItemSql(
  alias: string,
  condition: SequenceCondition,
  options: MatchOptions,
): RawBuilder<SqlBool> {
  const items = itemMatchSql(condition, options);
  if (items === undefined) return ALWAYS;
  const same = (column: string) =>
    sql`${sql.ref(`i0.${column}`)} = ${sql.ref(`${alias}.${column}`)}`;
  return sql<SqlBool>`exists (select 1 from ${items.from} where ${items.where} and ${sql.join(
    ITEM_COLUMNS.map(same),
    sql` and `,
  )})`;
}
