/**
 * Forwarding rules matched against a received instance: which destination AEs it goes to.
 * A rule's conditions name attributes of the instance as indexed (calling AE, modality, SOP
 * class, patient, study and series attributes) and give each a pattern; every condition must
 * hold. A pattern is one or more alternatives separated by a backslash (as in DICOM list
 * matching, `CT\MR`), each matched against the whole value with `*` (any characters) and `?`
 * (one character), ignoring case and the value's padding spaces. An attribute the instance
 * lacks (no value) is matched only by `*`. A rule without conditions matches every instance.
 *
 * Rules are compiled once (when loaded) so that matching on the receive path is a few regular
 * expression tests, no I/O.
 *
 * Layer: server. Pure: no I/O, no logging.
 */

import type { InstanceRecord } from '../../db/repositories/index-repository.js';

/** How a rule condition's attribute is read from an instance record. */
type AttributeReader = (record: InstanceRecord) => string | number | null;

/**
 * The attributes a condition may name, and how each is read. Numbers (Series Number, Instance
 * Number) are matched as their decimal text.
 */
export const RULE_ATTRIBUTES = {
  callingAe: (record) => record.callingAe,
  modality: (record) => record.modality,
  sopClassUid: (record) => record.sopClassUid,
  transferSyntaxUid: (record) => record.transferSyntaxUid,
  patientId: (record) => record.patientId,
  issuerOfPatientId: (record) => record.issuerOfPatientId,
  patientName: (record) => record.patientName,
  patientBirthDate: (record) => record.patientBirthDate,
  patientSex: (record) => record.patientSex,
  patientAge: (record) => record.patientAge,
  studyInstanceUid: (record) => record.studyInstanceUid,
  studyDate: (record) => record.studyDate,
  studyTime: (record) => record.studyTime,
  accessionNumber: (record) => record.accessionNumber,
  studyId: (record) => record.studyId,
  studyDescription: (record) => record.studyDescription,
  referringPhysicianName: (record) => record.referringPhysicianName,
  seriesInstanceUid: (record) => record.seriesInstanceUid,
  seriesNumber: (record) => record.seriesNumber,
  seriesDescription: (record) => record.seriesDescription,
  bodyPartExamined: (record) => record.bodyPartExamined,
  seriesDate: (record) => record.seriesDate,
  seriesTime: (record) => record.seriesTime,
  protocolName: (record) => record.protocolName,
  sopInstanceUid: (record) => record.sopInstanceUid,
  instanceNumber: (record) => record.instanceNumber,
} as const satisfies Record<string, AttributeReader>;

/** An attribute a condition may name. */
export type RuleAttribute = keyof typeof RULE_ATTRIBUTES;

/** The attribute names, in the order above (for validation messages and the console). */
export const RULE_ATTRIBUTE_NAMES = Object.keys(RULE_ATTRIBUTES) as RuleAttribute[];

/** Longest pattern a condition may hold. */
export const MAX_PATTERN_LENGTH = 1_024;

/** A rule as matching needs it (the shape of db/repositories/routing-repository.ts RoutingRule). */
export interface MatchableRule {
  readonly id: number;
  readonly name: string;
  readonly isEnabled: boolean;
  readonly conditions: Readonly<Record<string, string>>;
  readonly destinations: readonly string[];
}

/** Where an instance goes, and the rule that sends it there (the first that names it). */
export interface RouteMatch {
  readonly destination: string;
  readonly ruleId: number;
  readonly ruleName: string;
}

/** A rule ready to match. */
interface CompiledRule {
  readonly id: number;
  readonly name: string;
  readonly tests: readonly { readonly read: AttributeReader; readonly test: ValueTest }[];
  readonly destinations: readonly string[];
}

/** The enabled rules, compiled: what the receive path keeps in memory. */
export interface CompiledRules {
  readonly rules: readonly CompiledRule[];
}

type ValueTest = (value: string | number | null) => boolean;

/** True for a name `RULE_ATTRIBUTES` holds. */
export function isRuleAttribute(name: string): name is RuleAttribute {
  return Object.hasOwn(RULE_ATTRIBUTES, name);
}

/** Why a condition cannot be used, or undefined when it can (a short phrase for a 400). */
export function conditionProblem(attribute: string, pattern: string): string | undefined {
  if (!isRuleAttribute(attribute)) {
    return `is not an attribute a rule can match (one of: ${RULE_ATTRIBUTE_NAMES.join(', ')})`;
  }
  if (pattern.trim() === '') return 'must not be empty (use * for any value)';
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return `must be at most ${MAX_PATTERN_LENGTH} characters`;
  }
  if (alternativesOf(pattern).some((alternative) => alternative === '')) {
    return 'has an empty alternative between backslashes';
  }
  return undefined;
}

function alternativesOf(pattern: string): string[] {
  return pattern.split('\\').map((alternative) => alternative.trim());
}

/** One alternative as an anchored, case-insensitive regular expression. */
function regexOf(alternative: string): RegExp {
  const body = [...alternative]
    .map((c) => {
      if (c === '*') return '.*';
      if (c === '?') return '.';
      return c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${body}$`, 'isu');
}

/**
 * A pattern as a test of a value: any alternative matches the whole trimmed value; a missing
 * or empty value only `*`.
 */
export function patternTest(pattern: string): ValueTest {
  const alternatives = alternativesOf(pattern);
  const matchesMissing = alternatives.some((alternative) => /^\*+$/.test(alternative));
  const regexes = alternatives.map(regexOf);
  return (value) => {
    const text = value === null ? '' : String(value).trim();
    if (text === '') return matchesMissing;
    return regexes.some((regex) => regex.test(text));
  };
}

/** The enabled rules compiled, in the order given; conditions on unknown attributes never hold. */
export function compileRules(rules: readonly MatchableRule[]): CompiledRules {
  return {
    rules: rules
      .filter((rule) => rule.isEnabled && rule.destinations.length > 0)
      .map((rule) => ({
        id: rule.id,
        name: rule.name,
        destinations: rule.destinations,
        tests: Object.entries(rule.conditions).map(([attribute, pattern]) => ({
          read: isRuleAttribute(attribute) ? RULE_ATTRIBUTES[attribute] : () => null,
          test: isRuleAttribute(attribute) ? patternTest(pattern) : () => false,
        })),
      })),
  };
}

/**
 * The destinations `record` goes to under `compiled`: each destination once, with the first
 * rule (in order) that names it; empty when no rule matches.
 */
export function matchRules(compiled: CompiledRules, record: InstanceRecord): RouteMatch[] {
  const matches: RouteMatch[] = [];
  const seen = new Set<string>();
  for (const rule of compiled.rules) {
    if (!rule.tests.every(({ read, test }) => test(read(record)))) continue;
    for (const destination of rule.destinations) {
      if (seen.has(destination)) continue;
      seen.add(destination);
      matches.push({ destination, ruleId: rule.id, ruleName: rule.name });
    }
  }
  return matches;
}
