/**
 * Rule matching: conditions on any indexed attribute, `*` and `?` wildcards over the whole
 * value, alternatives, case and padding ignored, a missing value matched only by `*`; every
 * condition must hold; disabled rules and rules without destinations never match; each
 * destination once, with the first rule naming it; the validation of a condition.
 */

import { describe, expect, it } from 'vitest';
import type { InstanceRecord } from '../../db/repositories/index-repository.js';
import {
  compileRules,
  conditionProblem,
  type MatchableRule,
  matchRules,
  patternTest,
  RULE_ATTRIBUTE_NAMES,
} from './rules.js';

const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';

function record(overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    patientId: 'PID-1',
    issuerOfPatientId: '',
    patientName: 'Doe^Jane',
    patientBirthDate: '19700101',
    patientSex: 'F',
    studyInstanceUid: '1.2.3',
    studyDate: '20260102',
    studyTime: '101500',
    accessionNumber: 'ACC1',
    studyId: null,
    studyDescription: 'CT Thorax',
    referringPhysicianName: null,
    patientAge: '056Y',
    seriesInstanceUid: '1.2.3.4',
    modality: 'CT',
    seriesNumber: 3,
    seriesDescription: 'Lung 1mm',
    bodyPartExamined: 'CHEST',
    seriesDate: null,
    seriesTime: null,
    protocolName: null,
    sopInstanceUid: '1.2.3.4.5',
    sopClassUid: CT_IMAGE,
    instanceNumber: 12,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    filePath: 'a/b.dcm',
    fileSize: 1_000,
    callingAe: 'CT_SCANNER_1',
    receivedAt: '2026-01-02T10:15:00.000Z',
    ...overrides,
  };
}

function rule(
  id: number,
  conditions: Record<string, string>,
  destinations: string[] = [`DEST${id}`],
  isEnabled = true,
): MatchableRule {
  return { id, name: `rule ${id}`, isEnabled, conditions, destinations };
}

const destinationsOf = (rules: MatchableRule[], instance = record()) =>
  matchRules(compileRules(rules), instance).map((match) => match.destination);

describe('a pattern', () => {
  it('matches the whole value with * and ?, ignoring case and padding spaces', () => {
    const test = patternTest('CT_SCAN*');
    expect(test('CT_SCANNER_1')).toBe(true);
    expect(test('ct_scanner_2 ')).toBe(true);
    expect(test('MR_CT_SCANNER')).toBe(false);
    expect(patternTest('C?')('CT')).toBe(true);
    expect(patternTest('C?')('CTA')).toBe(false);
    expect(patternTest('*Thorax*')('CT Thorax with contrast')).toBe(true);
  });

  it('takes the characters of regular expressions literally', () => {
    expect(patternTest('1.2.840.10008.5.1.4.1.1.2')('1.2.840.10008.5.1.4.1.1.2')).toBe(true);
    expect(patternTest('1.2.840.10008.5.1.4.1.1.2')('1x2x840x10008x5x1x4x1x1x2')).toBe(false);
    expect(patternTest('a+b(c)[d]{e}|f^$')('A+B(C)[D]{E}|F^$')).toBe(true);
    expect(patternTest('x-y/z')('X-Y/Z')).toBe(true);
  });

  it('holds alternatives separated by backslashes', () => {
    const test = patternTest('CT\\MR\\PT');
    expect(['CT', 'MR', 'PT', 'US'].map(test)).toEqual([true, true, true, false]);
  });

  it('lets only * match a missing or empty value', () => {
    expect(patternTest('*')(null)).toBe(true);
    expect(patternTest('**')('')).toBe(true);
    expect(patternTest('?*')(null)).toBe(false);
    expect(patternTest('CHEST\\*')(null)).toBe(true);
    expect(patternTest('CHEST')(null)).toBe(false);
  });

  it('matches numbers as their decimal text', () => {
    expect(patternTest('1?')(12)).toBe(true);
    expect(patternTest('3')(3)).toBe(true);
    expect(patternTest('3')(30)).toBe(false);
  });
});

describe('matching rules', () => {
  it('forwards an instance when every condition holds, on any indexed attribute', () => {
    expect(destinationsOf([rule(1, { modality: 'CT', callingAe: 'CT_*' })])).toEqual(['DEST1']);
    expect(destinationsOf([rule(1, { modality: 'CT', callingAe: 'MR_*' })])).toEqual([]);
    expect(destinationsOf([rule(1, { sopClassUid: CT_IMAGE })])).toEqual(['DEST1']);
    expect(destinationsOf([rule(1, { patientName: 'doe^*' })])).toEqual(['DEST1']);
    expect(destinationsOf([rule(1, { studyDescription: '*thorax*' })])).toEqual(['DEST1']);
    expect(destinationsOf([rule(1, { bodyPartExamined: 'CHEST' })])).toEqual(['DEST1']);
    expect(destinationsOf([rule(1, { patientId: 'PID-?' })])).toEqual(['DEST1']);
    expect(destinationsOf([rule(1, { studyDate: '2026*' })])).toEqual(['DEST1']);
    expect(destinationsOf([rule(1, { seriesNumber: '3', instanceNumber: '1*' })])).toEqual([
      'DEST1',
    ]);
  });

  it('matches every instance with a rule without conditions', () => {
    expect(destinationsOf([rule(1, {})], record({ modality: null }))).toEqual(['DEST1']);
  });

  it('does not match a missing attribute unless the pattern is *', () => {
    const noBodyPart = record({ bodyPartExamined: null });
    expect(destinationsOf([rule(1, { bodyPartExamined: 'CHEST' })], noBodyPart)).toEqual([]);
    expect(destinationsOf([rule(1, { bodyPartExamined: '*' })], noBodyPart)).toEqual(['DEST1']);
  });

  it('skips disabled rules and rules without destinations', () => {
    expect(destinationsOf([rule(1, {}, ['A'], false), rule(2, {}, [])])).toEqual([]);
  });

  it('names each destination once, with the first rule that names it, in rule order', () => {
    const matches = matchRules(
      compileRules([
        rule(1, { modality: 'MR' }, ['PACS']),
        rule(2, { modality: 'CT' }, ['AI', 'PACS']),
        rule(3, { callingAe: 'CT*' }, ['PACS', 'ARCHIVE']),
      ]),
      record(),
    );
    expect(matches).toEqual([
      { destination: 'AI', ruleId: 2, ruleName: 'rule 2' },
      { destination: 'PACS', ruleId: 2, ruleName: 'rule 2' },
      { destination: 'ARCHIVE', ruleId: 3, ruleName: 'rule 3' },
    ]);
  });

  it('never matches a condition on an attribute it does not know', () => {
    expect(destinationsOf([rule(1, { institutionName: '*' })])).toEqual([]);
  });
});

describe('a condition', () => {
  it('is usable on every attribute with a pattern', () => {
    for (const attribute of RULE_ATTRIBUTE_NAMES) {
      expect(conditionProblem(attribute, 'X*')).toBeUndefined();
    }
  });

  it('is refused on an unknown attribute, empty, too long, or with an empty alternative', () => {
    expect(conditionProblem('institutionName', 'X')).toMatch(/not an attribute/);
    expect(conditionProblem('modality', ' ')).toMatch(/empty/);
    expect(conditionProblem('modality', 'X'.repeat(2_000))).toMatch(/at most/);
    expect(conditionProblem('modality', 'CT\\\\MR')).toMatch(/empty alternative/);
  });
});
