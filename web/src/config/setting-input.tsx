/**
 * The control of one setting, as its SETTING_FIELDS entry says: text, number (edited as text,
 * so a half-typed value can be shown with its message), checkbox, list, a write-only secret,
 * or the checkbox groups of SOP classes and transfer syntaxes. Values are in the form's shape
 * (see `inputOf`).
 */

import { type ReactNode, useState } from 'react';
import { STORAGE_GROUPS, STORAGE_SOP_CLASSES } from '../../../src/dicom/sop-classes.js';
import { KNOWN_TRANSFER_SYNTAXES } from '../../../src/dicom/transfer-syntax.js';
import type { SettingKey, Settings } from '../../../src/settings/schema.js';
import { CheckboxField, Field } from '../components/form-field.js';
import { STORAGE_GROUP_LABELS, TRANSFER_SYNTAX_NAMES } from '../dicom-meanings.js';
import { SETTING_FIELDS } from './setting-fields.js';

/** A setting as the form holds it: numbers as the text typed. */
export type InputValue = string | boolean | readonly string[];

/** The form's value of a setting. */
export function inputOf(key: SettingKey, value: Settings[SettingKey]): InputValue {
  if (SETTING_FIELDS[key].control.type === 'number') return String(value);
  return value as InputValue;
}

/** The setting's value from the form's (what the schema validates; '' stays '' for "must be a number"). */
export function settingValueOf(key: SettingKey, input: InputValue): unknown {
  if (SETTING_FIELDS[key].control.type === 'number' && typeof input === 'string') {
    const text = input.trim();
    return text === '' ? text : Number(text);
  }
  return input;
}

interface SettingInputProps {
  readonly settingKey: SettingKey;
  readonly value: InputValue;
  /** The value as read from the server (a secret that is set: its mask). */
  readonly stored: InputValue;
  readonly onChange: (value: InputValue) => void;
  readonly isReadOnly: boolean;
  readonly error: string | undefined;
  readonly hint: ReactNode;
  readonly tags: ReactNode;
}

export function SettingInput(props: SettingInputProps) {
  const { settingKey, value, stored, onChange, isReadOnly, error, hint, tags } = props;
  const field = SETTING_FIELDS[settingKey];
  const control = field.control;
  switch (control.type) {
    case 'boolean':
      return (
        <CheckboxField
          label={field.label}
          checked={value === true}
          onChange={onChange}
          disabled={isReadOnly}
          hint={hint}
          error={error}
          tags={tags}
        />
      );
    case 'text':
    case 'number':
      return (
        <Field label={field.label} hint={hint} error={error} tags={tags}>
          {({ id, describedBy }) => (
            <div className="input-with-unit">
              <input
                id={id}
                className={control.type === 'number' || control.isMono === true ? 'mono' : ''}
                type="text"
                inputMode={control.type === 'number' ? 'decimal' : undefined}
                value={String(value)}
                placeholder={control.type === 'text' ? control.placeholder : undefined}
                readOnly={isReadOnly}
                aria-invalid={error !== undefined}
                aria-describedby={describedBy}
                spellCheck={false}
                onChange={(event) => onChange(event.target.value)}
              />
              {control.type === 'number' && control.unit !== undefined && (
                <span className="unit">{control.unit}</span>
              )}
            </div>
          )}
        </Field>
      );
    case 'secret':
      return (
        <Field label={field.label} hint={hint} error={error} tags={tags}>
          {({ id, describedBy }) => (
            <SecretInput
              id={id}
              describedBy={describedBy}
              value={String(value)}
              stored={String(stored)}
              isReadOnly={isReadOnly}
              isInvalid={error !== undefined}
              onChange={onChange}
            />
          )}
        </Field>
      );
    case 'select':
      return (
        <Field label={field.label} hint={hint} error={error} tags={tags}>
          {({ id, describedBy }) => (
            <select
              id={id}
              value={String(value)}
              disabled={isReadOnly}
              aria-invalid={error !== undefined}
              aria-describedby={describedBy}
              onChange={(event) => onChange(event.target.value)}
            >
              {Object.entries(control.options).map(([option, label]) => (
                <option key={option} value={option}>
                  {label}
                </option>
              ))}
            </select>
          )}
        </Field>
      );
    case 'address-list':
      return (
        <Field label={field.label} hint={hint} error={error} tags={tags}>
          {({ id, describedBy }) => (
            <textarea
              id={id}
              className="mono"
              rows={2}
              value={String(value)}
              readOnly={isReadOnly}
              aria-invalid={error !== undefined}
              aria-describedby={describedBy}
              spellCheck={false}
              placeholder="every address"
              onChange={(event) => onChange(event.target.value)}
            />
          )}
        </Field>
      );
    case 'sop-class-groups':
      return (
        <CheckboxSet
          legend={field.label}
          hint={hint}
          error={error}
          tags={tags}
          isReadOnly={isReadOnly}
          selected={value as readonly string[]}
          onChange={onChange}
          options={STORAGE_GROUPS.map((group) => {
            const classes = Object.values(STORAGE_SOP_CLASSES[group]);
            return {
              value: group,
              label: STORAGE_GROUP_LABELS[group],
              detail: `${classes.length} SOP ${classes.length === 1 ? 'class' : 'classes'}`,
              title: classes.join('\n'),
            };
          })}
        />
      );
    case 'transfer-syntaxes':
      return (
        <CheckboxSet
          legend={field.label}
          hint={hint}
          error={error}
          tags={tags}
          isReadOnly={isReadOnly}
          selected={value as readonly string[]}
          onChange={onChange}
          options={KNOWN_TRANSFER_SYNTAXES.map((uid) => ({
            value: uid,
            label: TRANSFER_SYNTAX_NAMES[uid] ?? uid,
            detail: uid,
            title: `${TRANSFER_SYNTAX_NAMES[uid] ?? uid}: ${uid}`,
          }))}
        />
      );
    default: {
      const unreachable: never = control;
      throw new Error(`unknown control ${JSON.stringify(unreachable)}`);
    }
  }
}

/**
 * A secret the server never shows: when one is stored, the form holds its mask (`stored`), which
 * saved unchanged keeps it. The box shows only what is typed; erasing it keeps the stored
 * secret, Remove clears it (Keep undoes that).
 */
function SecretInput(props: {
  readonly id: string;
  readonly describedBy: string | undefined;
  readonly value: string;
  readonly stored: string;
  readonly isReadOnly: boolean;
  readonly isInvalid: boolean;
  readonly onChange: (value: string) => void;
}) {
  const { id, describedBy, value, stored, isReadOnly, isInvalid, onChange } = props;
  const [isShown, setIsShown] = useState(false);
  const isSet = stored !== '';
  const isKept = isSet && value === stored;
  const isRemoved = isSet && value === '';
  const placeholder = isKept
    ? 'set (hidden): type to replace it'
    : isRemoved
      ? 'removed when saved'
      : 'none: events are unsigned';
  return (
    <div className="input-with-unit">
      <input
        id={id}
        className="mono"
        type={isShown ? 'text' : 'password'}
        autoComplete="new-password"
        value={isKept ? '' : value}
        placeholder={placeholder}
        readOnly={isReadOnly}
        aria-invalid={isInvalid}
        aria-describedby={describedBy}
        spellCheck={false}
        onChange={(event) => {
          const text = event.target.value;
          onChange(text === '' && isSet ? stored : text);
        }}
      />
      {!isReadOnly && !isKept && value !== '' && (
        <button
          type="button"
          className="button button-small button-ghost"
          aria-pressed={isShown}
          onClick={() => setIsShown(!isShown)}
        >
          {isShown ? 'Hide' : 'Show'}
        </button>
      )}
      {!isReadOnly && isSet && (
        <button
          type="button"
          className="button button-small"
          onClick={() => onChange(isRemoved ? stored : '')}
        >
          {isRemoved ? 'Keep' : 'Remove'}
        </button>
      )}
    </div>
  );
}

interface CheckboxOption {
  readonly value: string;
  readonly label: string;
  readonly detail: string;
  readonly title: string;
}

/** A fieldset of checkboxes for a list setting, with All and None. */
function CheckboxSet(props: {
  readonly legend: string;
  readonly hint: ReactNode;
  readonly error: string | undefined;
  readonly tags: ReactNode;
  readonly isReadOnly: boolean;
  readonly selected: readonly string[];
  readonly onChange: (value: readonly string[]) => void;
  readonly options: readonly CheckboxOption[];
}) {
  const { legend, hint, error, tags, isReadOnly, selected, onChange, options } = props;
  const chosen = new Set(selected);
  // Kept in the options' order, whatever order the clicks came in.
  const toggle = (value: string, isOn: boolean) =>
    onChange(
      options.map((option) => option.value).filter((v) => (v === value ? isOn : chosen.has(v))),
    );
  return (
    <fieldset
      className={error === undefined ? 'field checkbox-set' : 'field checkbox-set field-invalid'}
    >
      <legend>
        {legend} {tags}{' '}
        <span className="muted small">
          ({chosen.size} of {options.length})
        </span>
      </legend>
      {!isReadOnly && (
        <div className="button-row button-row-tight">
          <button
            type="button"
            className="button button-small button-ghost"
            onClick={() => onChange(options.map((option) => option.value))}
          >
            All
          </button>
          <button
            type="button"
            className="button button-small button-ghost"
            onClick={() => onChange([])}
          >
            None
          </button>
        </div>
      )}
      <div className="checkbox-grid">
        {options.map((option) => (
          <label key={option.value} className="checkbox-option" title={option.title}>
            <input
              type="checkbox"
              checked={chosen.has(option.value)}
              disabled={isReadOnly}
              onChange={(event) => toggle(option.value, event.target.checked)}
            />
            <span className="checkbox-text">
              {option.label}
              <span className="muted small">{option.detail}</span>
            </span>
          </label>
        ))}
      </div>
      {error !== undefined && <p className="field-error">{error}</p>}
      {hint !== undefined && <p className="field-hint">{hint}</p>}
    </fieldset>
  );
}
