/**
 * The conditions of the forwarding rule form: one row each, an attribute (each at most once)
 * and its pattern, with the API's message for it beside the pattern, known UIDs (SOP classes,
 * transfer syntaxes) offered as suggestions; rows added and removed.
 */

import { useId } from 'react';
import {
  attributeLabel,
  examplePattern,
  knownValuesOf,
  RULE_ATTRIBUTE_LABELS,
} from '../components/rule-conditions.js';

/** A condition as the form edits it. */
export interface ConditionDraft {
  readonly key: number;
  readonly attribute: string;
  readonly pattern: string;
}

/** The server's messages, by field; a condition's by its attribute. */
export interface Problems {
  readonly fields: Readonly<Record<string, string>>;
  readonly conditions: Readonly<Record<string, string>>;
}

/** The conditions, with the messages of the API: a row's beside its pattern. */
export function ConditionsFieldset(props: {
  readonly conditions: readonly ConditionDraft[];
  readonly attributes: readonly string[];
  readonly problems: Problems;
  readonly onChange: (conditions: ConditionDraft[], clears: readonly string[]) => void;
  readonly newKey: () => number;
}) {
  const { conditions, attributes, problems, onChange, newKey } = props;
  const hintId = useId();
  const used = new Set(conditions.map((c) => c.attribute));
  const unused = attributes.filter((attribute) => !used.has(attribute));
  const replace = (key: number, update: Partial<ConditionDraft>, clears: readonly string[]) =>
    onChange(
      conditions.map((c) => (c.key === key ? { ...c, ...update } : c)),
      ['conditions', ...clears],
    );
  return (
    <fieldset className="fieldset" aria-describedby={hintId}>
      <legend>Conditions</legend>
      <p className="field-hint" id={hintId}>
        Every condition must hold; without any, the rule matches every instance. In a pattern{' '}
        <code>*</code> stands for any characters and <code>?</code> for one, <code>\</code>{' '}
        separates alternatives (<code>CT\MR</code>); case and padding are ignored, and an attribute
        the instance lacks matches only <code>*</code>.
      </p>
      {conditions.map((condition, index) => (
        <ConditionRow
          key={condition.key}
          number={index + 1}
          condition={condition}
          choices={[condition.attribute, ...unused]}
          error={problems.conditions[condition.attribute]}
          onAttribute={(attribute) =>
            replace(condition.key, { attribute }, [`conditions.${condition.attribute}`])
          }
          onPattern={(pattern) =>
            replace(condition.key, { pattern }, [`conditions.${condition.attribute}`])
          }
          onRemove={() =>
            onChange(
              conditions.filter((c) => c.key !== condition.key),
              ['conditions', `conditions.${condition.attribute}`],
            )
          }
        />
      ))}
      {problems.fields.conditions !== undefined && (
        <p className="field-error">{problems.fields.conditions}</p>
      )}
      <button
        type="button"
        className="button button-small"
        disabled={unused.length === 0}
        onClick={() => {
          const attribute = unused[0];
          if (attribute === undefined) return;
          onChange([...conditions, { key: newKey(), attribute, pattern: '' }], ['conditions']);
        }}
      >
        Add condition
      </button>
    </fieldset>
  );
}

function ConditionRow(props: {
  readonly number: number;
  readonly condition: ConditionDraft;
  /** The attributes it may switch to (its own first). */
  readonly choices: readonly string[];
  readonly error: string | undefined;
  readonly onAttribute: (attribute: string) => void;
  readonly onPattern: (pattern: string) => void;
  readonly onRemove: () => void;
}) {
  const { number, condition, choices, error, onAttribute, onPattern, onRemove } = props;
  const id = useId();
  const known = knownValuesOf(condition.attribute);
  const label = attributeLabel(condition.attribute);
  return (
    <div className={error === undefined ? 'condition-row' : 'condition-row field-invalid'}>
      <select
        aria-label={`Condition ${number} attribute`}
        value={condition.attribute}
        onChange={(event) => onAttribute(event.target.value)}
      >
        {[...choices]
          .sort((a, b) => attributeLabel(a).localeCompare(attributeLabel(b)))
          .map((attribute) => (
            <option key={attribute} value={attribute}>
              {RULE_ATTRIBUTE_LABELS[attribute] ?? attribute}
            </option>
          ))}
      </select>
      <div className="condition-pattern">
        <input
          className="mono"
          aria-label={`${label} pattern`}
          value={condition.pattern}
          placeholder={examplePattern(condition.attribute)}
          spellCheck={false}
          list={known.length > 0 ? `${id}-known` : undefined}
          aria-invalid={error !== undefined}
          aria-describedby={error === undefined ? undefined : `${id}-error`}
          onChange={(event) => onPattern(event.target.value)}
        />
        {known.length > 0 && (
          <datalist id={`${id}-known`}>
            {known.map(([uid, name]) => (
              <option key={uid} value={uid}>
                {name}
              </option>
            ))}
          </datalist>
        )}
        {error !== undefined && (
          <p className="field-error" id={`${id}-error`}>
            {label} {error}
          </p>
        )}
      </div>
      <button
        type="button"
        className="button button-small button-danger-ghost"
        aria-label={`Remove the ${label} condition`}
        onClick={onRemove}
      >
        Remove
      </button>
    </div>
  );
}
