/**
 * A forwarding rule's conditions in words: each attribute by name ("Modality", "Calling AE
 * title"), each pattern as "is CT or MR" or "matches CT_*" (`*` any characters, `?` one, `\`
 * between alternatives: server/routing/rules.ts), a SOP class or transfer syntax UID by its
 * PS3.6 name; and what the form offers for each attribute (an example, known UIDs).
 */

import { STORAGE_GROUPS, STORAGE_SOP_CLASSES } from '../../../src/dicom/sop-classes.js';
import { sopClassName, TRANSFER_SYNTAX_NAMES } from '../dicom-meanings.js';

/** The attributes a condition may name (the server's RULE_ATTRIBUTES), by name. */
export const RULE_ATTRIBUTE_LABELS: Readonly<Record<string, string>> = {
  callingAe: 'Calling AE title',
  modality: 'Modality',
  sopClassUid: 'SOP class',
  transferSyntaxUid: 'Transfer syntax',
  patientId: 'Patient ID',
  issuerOfPatientId: 'Issuer of patient ID',
  patientName: 'Patient name',
  patientBirthDate: 'Patient birth date',
  patientSex: 'Patient sex',
  patientAge: 'Patient age',
  studyInstanceUid: 'Study instance UID',
  studyDate: 'Study date',
  studyTime: 'Study time',
  accessionNumber: 'Accession number',
  studyId: 'Study ID',
  studyDescription: 'Study description',
  referringPhysicianName: 'Referring physician',
  seriesInstanceUid: 'Series instance UID',
  seriesNumber: 'Series number',
  seriesDescription: 'Series description',
  bodyPartExamined: 'Body part examined',
  seriesDate: 'Series date',
  seriesTime: 'Series time',
  protocolName: 'Protocol name',
  sopInstanceUid: 'SOP instance UID',
  instanceNumber: 'Instance number',
};

/** An attribute's name in words (its key when the console does not know it). */
export function attributeLabel(attribute: string): string {
  return RULE_ATTRIBUTE_LABELS[attribute] ?? attribute;
}

/** A pattern to show as an example in the form. */
const EXAMPLES: Readonly<Record<string, string>> = {
  callingAe: 'CT_*',
  modality: 'CT\\MR',
  sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
  transferSyntaxUid: '1.2.840.10008.1.2.1',
  patientId: 'PID-*',
  patientName: 'DOE^*',
  patientSex: 'F',
  studyDate: '2026*',
  seriesDate: '2026*',
  bodyPartExamined: 'CHEST\\THORAX',
  studyDescription: '*THORAX*',
  seriesDescription: '*AX*',
};

/** An example pattern for the attribute. */
export function examplePattern(attribute: string): string {
  return EXAMPLES[attribute] ?? '*';
}

/** Known UIDs of an attribute (SOP classes, transfer syntaxes) with their names, to pick from. */
export function knownValuesOf(attribute: string): readonly (readonly [string, string])[] {
  if (attribute === 'sopClassUid') {
    return STORAGE_GROUPS.flatMap((group) => Object.entries(STORAGE_SOP_CLASSES[group]));
  }
  if (attribute === 'transferSyntaxUid') return Object.entries(TRANSFER_SYNTAX_NAMES);
  return [];
}

/** A UID's name where the attribute holds UIDs the console can name. */
function nameOf(attribute: string, value: string): string | undefined {
  if (attribute === 'sopClassUid') return sopClassName(value);
  if (attribute === 'transferSyntaxUid') return TRANSFER_SYNTAX_NAMES[value];
  return undefined;
}

const hasWildcard = (value: string) => /[*?]/.test(value);

/** The alternatives of a pattern (`\` between them), trimmed as the server matches them. */
export function alternativesOf(pattern: string): string[] {
  return pattern.split('\\').map((alternative) => alternative.trim());
}

/** One condition: "Modality is CT or MR", "Calling AE title matches CT_*". */
export function ConditionText(props: { readonly attribute: string; readonly pattern: string }) {
  const { attribute, pattern } = props;
  // A repeated alternative changes nothing: each is shown once.
  const alternatives = [...new Set(alternativesOf(pattern))];
  const isAny = alternatives.some((alternative) => /^\*+$/.test(alternative));
  return (
    <span className="condition">
      <span className="condition-attribute">{attributeLabel(attribute)}</span>{' '}
      {isAny ? (
        <span className="muted">any value, or none</span>
      ) : (
        <>
          {alternatives.some(hasWildcard) ? 'matches' : 'is'}{' '}
          {alternatives.map((alternative, index) => {
            const name = nameOf(attribute, alternative);
            return (
              <span key={alternative}>
                {index > 0 && ' or '}
                <span
                  className="condition-value"
                  title={name === undefined ? undefined : alternative}
                >
                  {name ?? alternative}
                </span>
              </span>
            );
          })}
        </>
      )}
    </span>
  );
}

/** A rule's conditions, one a line; "Every instance" when it has none. */
export function RuleConditions(props: { readonly conditions: Readonly<Record<string, string>> }) {
  const entries = Object.entries(props.conditions);
  if (entries.length === 0) return <span className="muted">Every instance</span>;
  return (
    <ul className="conditions">
      {entries.map(([attribute, pattern]) => (
        <li key={attribute}>
          <ConditionText attribute={attribute} pattern={pattern} />
        </li>
      ))}
    </ul>
  );
}
