/**
 * Wildcard matching (PS3.4 §C.2.2.2.4) as SQL, and the conditions every other matching module
 * builds on: which database the SQL is for, conditions that always or never hold, and any-of.
 * Patterns are always bound parameters; only fixed operators are SQL text.
 *
 * SQLite's LIKE ignores ASCII case, PostgreSQL's does not. SQLite uses GLOB (case-sensitive)
 * with the pattern's literal prefix added as a range, which lets an index on the column (or on
 * upper(column)) serve it; PostgreSQL uses LIKE with an ESCAPE clause, which its planner turns
 * into an index range itself (text_pattern_ops indexes, 0004-query).
 *
 * Layer: db (repositories hold all SQL).
 */

import { type RawBuilder, type SqlBool, sql } from 'kysely';

/** Which database the SQL is for. */
export type SqlKind = 'sqlite' | 'postgres';

/** A text column compared as written, or (case-insensitive PN) with both sides in upper case. */
export interface TextCompare {
  readonly kind: SqlKind;
  readonly isFolded: boolean;
}

/** A condition that holds for every row, and one that holds for none. */
export const ALWAYS = sql<SqlBool>`1 = 1`;
export const NEVER = sql<SqlBool>`1 = 0`;

/**
 * True when any condition holds; none holds for an empty list. Written as a balanced tree of
 * ORs: a chain of n ORs is n deep, and SQLite refuses an expression deeper than 1000
 * (SQLITE_MAX_EXPR_DEPTH).
 */
export function anyOf(conditions: readonly RawBuilder<SqlBool>[]): RawBuilder<SqlBool> {
  if (conditions.length === 0) return NEVER;
  if (conditions.length === 1) return conditions[0]!;
  const half = Math.ceil(conditions.length / 2);
  return sql<SqlBool>`(${anyOf(conditions.slice(0, half))} or ${anyOf(conditions.slice(half))})`;
}

/** A pattern of only `*` matches everything, NULL included (PS3.4 §C.2.2.2.4). */
export function isUniversalPattern(pattern: string): boolean {
  return /^\**$/.test(pattern);
}

/** True when a value holds a wildcard. */
export function hasWildcard(text: string): boolean {
  return /[*?]/.test(text);
}

/**
 * `*` and `?` as GLOB wildcards (the same characters); GLOB's character class opener in the
 * data as a literal. GLOB has no escape character, and a backslash is literal in it.
 */
export function globPattern(pattern: string): string {
  return pattern.replace(/\[/g, '[[]');
}

/** Text as a LIKE pattern that matches just it: `%`, `_` and the escape character escaped. */
export function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** `*` and `?` as LIKE wildcards; `%`, `_` and the escape character in the data escaped. */
export function likePattern(pattern: string): string {
  return likeLiteral(pattern).replace(/\*/g, '%').replace(/\?/g, '_');
}

/** The characters a pattern starts with before its first wildcard. */
export function literalPrefix(pattern: string): string {
  const wildcard = pattern.search(/[*?]/);
  return wildcard < 0 ? pattern : pattern.slice(0, wildcard);
}

/**
 * The least string greater than every string that starts with `prefix`, in code point order
 * (SQLite's BINARY collation of UTF-8); undefined when there is none.
 */
export function prefixSuccessor(prefix: string): string | undefined {
  const codePoints = [...prefix].map((c) => c.codePointAt(0) ?? 0);
  while (codePoints.length > 0) {
    const last = codePoints.pop() ?? 0;
    if (last < 0x10ffff) {
      // Surrogates are not characters: the one after U+D7FF is U+E000.
      codePoints.push(last === 0xd7ff ? 0xe000 : last + 1);
      return String.fromCodePoint(...codePoints);
    }
  }
  return undefined;
}

/** Upper case as SQLite's upper() has it: ASCII letters only. */
function asciiUpper(text: string): string {
  return text.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
}

/** A pattern as the folded side of a comparison holds it (SQLite folds ASCII only). */
export function foldedPattern(pattern: string, compare: TextCompare): string {
  return compare.isFolded && compare.kind === 'sqlite' ? asciiUpper(pattern) : pattern;
}

/**
 * SQLite only: `value` within the range of the strings starting with `prefix` (already folded
 * when the comparison is), which lets an index on the value serve a GLOB; undefined for an
 * empty prefix.
 */
export function prefixRange(
  value: RawBuilder<unknown>,
  prefix: string,
): RawBuilder<SqlBool> | undefined {
  if (prefix === '') return undefined;
  const next = prefixSuccessor(prefix);
  const upper = next === undefined ? ALWAYS : sql<SqlBool>`${value} < ${next}`;
  return sql<SqlBool>`(${value} >= ${prefix} and ${upper})`;
}

/**
 * `value` (the column, or upper(column) when folded) matches a wildcard pattern; the pattern
 * folded here as the comparison needs.
 */
export function wildcardCondition(
  value: RawBuilder<unknown>,
  pattern: string,
  compare: TextCompare,
): RawBuilder<SqlBool> {
  if (isUniversalPattern(pattern)) return ALWAYS;
  const glob = patternCondition(value, pattern, compare);
  if (compare.kind === 'postgres') return glob;
  // SQLite cannot take an index range from GLOB on upper(column), nor from a parameter it
  // plans without: the literal prefix, written out as a range, lets it use either index.
  const range = prefixRange(value, literalPrefix(foldedPattern(pattern, compare)));
  return range === undefined ? glob : sql<SqlBool>`(${range} and ${glob})`;
}

/** `value` GLOB (SQLite) or LIKE (PostgreSQL) the pattern, without an index range. */
export function patternCondition(
  value: RawBuilder<unknown>,
  pattern: string,
  compare: TextCompare,
): RawBuilder<SqlBool> {
  if (compare.kind === 'postgres') {
    const like = likePattern(pattern);
    const right = compare.isFolded ? sql`upper(${like})` : sql`${like}`;
    return sql<SqlBool>`${value} like ${right} escape '\\'`;
  }
  return sql<SqlBool>`${value} glob ${globPattern(foldedPattern(pattern, compare))}`;
}
