/**
 * The form of a forwarding rule (add or edit), in a dialog: its name and description, whether
 * it is on, its conditions (an attribute and a pattern each, every one must hold) and its
 * destination AE titles (picked from the AE titles, which hold their host and port). The API
 * checks everything; its message per field is shown beside the field: a condition's beside
 * its pattern (routing-rule-conditions.tsx), a taken name beside the name.
 */

import { type FormEvent, useId, useRef, useState } from 'react';
import { ApiError, messageOf } from '../api/client.js';
import type { AllowedAe, RoutingRule, RoutingRuleInput } from '../api/types.js';
import { Dialog, FormDialogActions } from '../components/dialog.js';
import { CheckboxField, Field } from '../components/form-field.js';
import { Notice } from '../components/notice.js';
import { useSession } from '../session.js';
import {
  type ConditionDraft,
  ConditionsFieldset,
  type Problems,
} from './routing-rule-conditions.js';

interface DestinationDraft {
  readonly key: number;
  readonly aeTitle: string;
}

interface Draft {
  readonly name: string;
  readonly description: string;
  readonly isEnabled: boolean;
  readonly conditions: readonly ConditionDraft[];
  readonly destinations: readonly DestinationDraft[];
}

const NO_PROBLEMS: Problems = { fields: {}, conditions: {} };

/** The rule as the API takes it: empty destination rows left out. */
function bodyOf(draft: Draft): RoutingRuleInput {
  return {
    name: draft.name,
    description: draft.description,
    isEnabled: draft.isEnabled,
    conditions: Object.fromEntries(draft.conditions.map((c) => [c.attribute, c.pattern])),
    destinations: draft.destinations.map((d) => d.aeTitle.trim()).filter((title) => title !== ''),
  };
}

/**
 * The API's answer spread over the fields: `conditions` names its attribute first
 * ("modality must not be empty"), and a 409 is a name another rule has.
 */
function problemsOf(failure: ApiError, draft: Draft): Problems {
  if (failure.status === 409) return { fields: { name: failure.message }, conditions: {} };
  const { conditions: conditionMessage, ...fields } = failure.fields;
  if (conditionMessage === undefined) return { fields, conditions: {} };
  const row = draft.conditions.find((c) => conditionMessage.startsWith(`${c.attribute} `));
  return row === undefined
    ? { fields: { ...fields, conditions: conditionMessage }, conditions: {} }
    : {
        fields,
        conditions: { [row.attribute]: conditionMessage.slice(row.attribute.length + 1) },
      };
}

export function RuleForm(props: {
  /** The rule to edit; undefined to add one. */
  readonly editing: RoutingRule | undefined;
  /** The attributes a condition may name (the API's list, in its order). */
  readonly attributes: readonly string[];
  /** The AE titles, to pick destinations from. */
  readonly aeTitles: readonly AllowedAe[];
  readonly onDone: (saved: RoutingRule) => void;
  readonly onCancel: () => void;
}) {
  const { editing, attributes, aeTitles, onDone, onCancel } = props;
  const { api } = useSession();
  const nextKey = useRef(0);
  const keyed = () => nextKey.current++;
  const [draft, setDraft] = useState<Draft>(() => ({
    name: editing?.name ?? '',
    description: editing?.description ?? '',
    isEnabled: editing?.isEnabled ?? true,
    conditions: Object.entries(editing?.conditions ?? {}).map(([attribute, pattern]) => ({
      key: keyed(),
      attribute,
      pattern,
    })),
    destinations: (editing?.destinations ?? ['']).map((aeTitle) => ({ key: keyed(), aeTitle })),
  }));
  const [problems, setProblems] = useState<Problems>(NO_PROBLEMS);
  const [error, setError] = useState<string | undefined>(undefined);
  const [isSaving, setIsSaving] = useState(false);

  const change = (update: Partial<Draft>, clears: readonly string[]) => {
    setDraft((current) => ({ ...current, ...update }));
    setProblems((current) => ({
      fields: Object.fromEntries(
        Object.entries(current.fields).filter(([key]) => !clears.includes(key)),
      ),
      conditions: Object.fromEntries(
        Object.entries(current.conditions).filter(([key]) => !clears.includes(`conditions.${key}`)),
      ),
    }));
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setIsSaving(true);
    setError(undefined);
    setProblems(NO_PROBLEMS);
    try {
      const body = bodyOf(draft);
      onDone(
        editing === undefined
          ? await api.post<RoutingRule>('routing/rules', body)
          : await api.put<RoutingRule>(`routing/rules/${editing.id}`, body),
      );
    } catch (failure) {
      const isPerField =
        failure instanceof ApiError &&
        (failure.status === 409 || Object.keys(failure.fields).length > 0);
      if (isPerField) setProblems(problemsOf(failure, draft));
      else setError(messageOf(failure));
    } finally {
      setIsSaving(false);
    }
  };

  const general = problems.fields._ ?? problems.fields.isEnabled;
  return (
    <Dialog
      title={editing === undefined ? 'Add a forwarding rule' : `Edit rule ${editing.name}`}
      onClose={onCancel}
      isWide
    >
      <form onSubmit={submit} noValidate>
        <div className="dialog-body">
          {error !== undefined && <Notice kind="error">{error}</Notice>}
          {general !== undefined && <Notice kind="error">{general}</Notice>}
          <div className="form-grid">
            <Field
              label="Name"
              hint="Unique; shown on each job it queues."
              error={problems.fields.name}
            >
              {({ id, describedBy }) => (
                <input
                  id={id}
                  value={draft.name}
                  maxLength={100}
                  placeholder="CT to the AI node"
                  aria-invalid={problems.fields.name !== undefined}
                  aria-describedby={describedBy}
                  onChange={(event) => change({ name: event.target.value }, ['name'])}
                />
              )}
            </Field>
            <Field label="Description" hint="Optional." error={problems.fields.description}>
              {({ id, describedBy }) => (
                <input
                  id={id}
                  value={draft.description}
                  maxLength={500}
                  aria-invalid={problems.fields.description !== undefined}
                  aria-describedby={describedBy}
                  onChange={(event) => change({ description: event.target.value }, ['description'])}
                />
              )}
            </Field>
            <CheckboxField
              label="Enabled"
              checked={draft.isEnabled}
              onChange={(isEnabled) => change({ isEnabled }, ['isEnabled'])}
              hint="A disabled rule is kept but matches nothing."
            />
          </div>
          <ConditionsFieldset
            conditions={draft.conditions}
            attributes={attributes}
            problems={problems}
            onChange={(conditions, clears) => change({ conditions }, clears)}
            newKey={keyed}
          />
          <DestinationsFieldset
            destinations={draft.destinations}
            aeTitles={aeTitles}
            error={problems.fields.destinations}
            onChange={(destinations) => change({ destinations }, ['destinations'])}
            newKey={keyed}
          />
        </div>
        <FormDialogActions
          submitLabel={editing === undefined ? 'Add rule' : 'Save changes'}
          isSaving={isSaving}
          onCancel={onCancel}
        />
      </form>
    </Dialog>
  );
}

function DestinationsFieldset(props: {
  readonly destinations: readonly DestinationDraft[];
  readonly aeTitles: readonly AllowedAe[];
  readonly error: string | undefined;
  readonly onChange: (destinations: DestinationDraft[]) => void;
  readonly newKey: () => number;
}) {
  const { destinations, aeTitles, error, onChange, newKey } = props;
  const listId = useId();
  const byTitle = new Map(aeTitles.map((ae) => [ae.ae_title, ae]));
  return (
    <fieldset className={error === undefined ? 'fieldset' : 'fieldset field-invalid'}>
      <legend>Destinations</legend>
      <p className="field-hint">
        The AE titles each matching instance is sent to over C-STORE. Their host and port come from
        the AE titles page, looked up when each instance is sent.
      </p>
      <datalist id={listId}>
        {aeTitles.map((ae) => (
          <option key={ae.ae_title} value={ae.ae_title}>
            {ae.description}
          </option>
        ))}
      </datalist>
      {destinations.map((destination, index) => (
        <div className="destination-row" key={destination.key}>
          <input
            className="mono"
            aria-label={`Destination ${index + 1} AE title`}
            value={destination.aeTitle}
            maxLength={16}
            placeholder="PACS_ARCHIVE"
            spellCheck={false}
            list={listId}
            aria-invalid={error !== undefined}
            onChange={(event) =>
              onChange(
                destinations.map((d) =>
                  d.key === destination.key ? { ...d, aeTitle: event.target.value } : d,
                ),
              )
            }
          />
          <span className="small destination-where">
            <DestinationWhere
              ae={byTitle.get(destination.aeTitle.trim())}
              title={destination.aeTitle}
            />
          </span>
          <button
            type="button"
            className="button button-small button-danger-ghost"
            aria-label={`Remove destination ${index + 1}`}
            disabled={destinations.length === 1}
            onClick={() => onChange(destinations.filter((d) => d.key !== destination.key))}
          >
            Remove
          </button>
        </div>
      ))}
      {error !== undefined && <p className="field-error">{error}</p>}
      <button
        type="button"
        className="button button-small"
        onClick={() => onChange([...destinations, { key: newKey(), aeTitle: '' }])}
      >
        Add destination
      </button>
    </fieldset>
  );
}

/** Where a destination AE title is sent to, or why it cannot be yet. */
function DestinationWhere(props: { readonly ae: AllowedAe | undefined; readonly title: string }) {
  const { ae, title } = props;
  if (title.trim() === '') return null;
  if (ae === undefined) return <span className="text-warn">not among the AE titles yet</span>;
  if (ae.host === '' || ae.port === null)
    return <span className="text-warn">no host and port</span>;
  return (
    <span className={ae.is_active ? 'muted mono' : 'text-warn'}>
      {ae.host}:{ae.port}
      {!ae.is_active && ' (inactive)'}
    </span>
  );
}
