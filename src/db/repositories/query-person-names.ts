/**
 * Person name matching (PS3.4 §C.2.2.2.1, §C.2.2.2.4) by component group. A PN value holds up
 * to three groups separated by `=`: alphabetic, ideographic, phonetic (PS3.5 §6.2.1.2), as
 * Japanese and Korean sites store them (`Yamada^Tarou=山田^太郎=やまだ^たろう`).
 *
 * - A query value without `=` is matched against the whole stored value, and against its
 *   alphabetic group too (the stored value up to its first `=`): `Yamada^Tarou` and `*^Tarou`
 *   find the name above, as they find a name stored without groups.
 * - A query value with `=` is matched group by group: each group it gives, if not empty, must
 *   match the same group of the stored value; an empty group asks nothing of it. So
 *   `Yamada^Tarou=山田^太郎` and `=山田*` find the name above, and `Yamada^Tarou=` matches on
 *   the alphabetic group alone (the form PS3.5 §6.2.1.2 gives for an alphabetic-only name).
 *
 * Each group is matched as its single value or wildcard would be, with the case option of the
 * comparison (upper() on both sides). Conditions keep the literal start of the value as an
 * index range (SQLite) or a LIKE prefix (PostgreSQL), so that an index on the name serves them.
 *
 * Layer: db (repositories hold all SQL).
 */

import { type RawBuilder, type SqlBool, sql } from 'kysely';
import {
  ALWAYS,
  foldedPattern,
  hasWildcard,
  isUniversalPattern,
  likeLiteral,
  literalPrefix,
  patternCondition,
  prefixRange,
  type TextCompare,
} from './query-wildcards.js';

/** The component group separator of PN values (PS3.5 §6.2.1.2). */
const GROUP_SEPARATOR = '=';

/** A single value or wildcard of a PN key. */
export type PersonNameMatch =
  | { readonly kind: 'single'; readonly value: string }
  | { readonly kind: 'wildcard'; readonly pattern: string };

/**
 * The condition that a person name (`value`: the column, or upper(column) when folded) matches
 * a single value or wildcard, by component group (see the module comment).
 */
export function personNameCondition(
  value: RawBuilder<unknown>,
  match: PersonNameMatch,
  compare: TextCompare,
): RawBuilder<SqlBool> {
  const text = match.kind === 'single' ? match.value : match.pattern;
  if (text.includes(GROUP_SEPARATOR)) return groupsCondition(value, text, compare);
  if (match.kind === 'single') return singleNameCondition(value, text, compare);
  if (isUniversalPattern(text)) return ALWAYS;
  const either = sql<SqlBool>`(${patternCondition(value, text, compare)} or ${patternCondition(
    componentGroup(value, 1, compare),
    text,
    compare,
  )})`;
  const hint = prefixHint(value, literalPrefix(text), compare);
  return hint === undefined ? either : sql<SqlBool>`(${hint} and ${either})`;
}

/** A value to compare with the (possibly folded) column. */
function bound(text: string, compare: TextCompare): RawBuilder<unknown> {
  return compare.isFolded ? sql`upper(${text})` : sql`${text}`;
}

/**
 * The whole stored value is `name`, or its alphabetic group is: it starts with `name=`. On
 * SQLite, one index range: from `name` up to `name>` (the character after `=`), holding `name`
 * itself and the values starting with `name=`, and others (`name.`) that the last test drops.
 */
function singleNameCondition(
  value: RawBuilder<unknown>,
  name: string,
  compare: TextCompare,
): RawBuilder<SqlBool> {
  const whole = sql<SqlBool>`${value} = ${bound(name, compare)}`;
  if (compare.kind === 'postgres') {
    const grouped = bound(`${likeLiteral(name)}${GROUP_SEPARATOR}%`, compare);
    return sql<SqlBool>`(${whole} or ${value} like ${grouped} escape '\\')`;
  }
  const from = bound(name, compare);
  const to = bound(`${name}>`, compare);
  const grouped = sql<SqlBool>`${value} >= ${bound(`${name}${GROUP_SEPARATOR}`, compare)}`;
  return sql<SqlBool>`(${value} >= ${from} and ${value} < ${to} and (${whole} or ${grouped}))`;
}

/** Each group the query gives, if not empty, matches the same group of the stored value. */
function groupsCondition(
  value: RawBuilder<unknown>,
  text: string,
  compare: TextCompare,
): RawBuilder<SqlBool> {
  const groups = text.split(GROUP_SEPARATOR);
  const conditions: RawBuilder<SqlBool>[] = [];
  groups.forEach((group, index) => {
    if (group === '' || (hasWildcard(group) && isUniversalPattern(group))) return;
    const stored = componentGroup(value, index + 1, compare);
    conditions.push(
      hasWildcard(group)
        ? patternCondition(stored, group, compare)
        : sql<SqlBool>`${stored} = ${bound(group, compare)}`,
    );
  });
  // The stored value starts with the alphabetic group, and so with that group's literal start.
  const hint = prefixHint(value, literalPrefix(groups[0] ?? ''), compare);
  if (hint !== undefined) conditions.unshift(hint);
  return conditions.length === 0 ? ALWAYS : sql<SqlBool>`(${sql.join(conditions, sql` and `)})`;
}

/**
 * The stored values starting with `prefix`, as an index can find them; undefined for none.
 * A condition every match meets: it only narrows the rows the rest is tested on.
 */
function prefixHint(
  value: RawBuilder<unknown>,
  prefix: string,
  compare: TextCompare,
): RawBuilder<SqlBool> | undefined {
  if (prefix === '') return undefined;
  if (compare.kind === 'sqlite') return prefixRange(value, foldedPattern(prefix, compare));
  return sql<SqlBool>`${value} like ${bound(`${likeLiteral(prefix)}%`, compare)} escape '\\'`;
}

/**
 * Component group `n` (from 1) of a stored name: the text between the (n-1)th and the nth `=`,
 * empty when the name has fewer groups. PostgreSQL has split_part; SQLite peels the groups off
 * with instr and substr (`value || '='` finds a separator in a name with none).
 */
export function componentGroup(
  value: RawBuilder<unknown>,
  n: number,
  compare: TextCompare,
): RawBuilder<unknown> {
  if (compare.kind === 'postgres') return sql`split_part(${value}, '=', ${sql.lit(n)})`;
  const separator = sql`instr(${value} || '=', '=')`;
  if (n <= 1) return sql`substr(${value}, 1, ${separator} - 1)`;
  return componentGroup(sql`substr(${value}, ${separator} + 1)`, n - 1, compare);
}
