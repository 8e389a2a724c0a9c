/**
 * The form of an allowed AE title (add or edit), in a dialog: validated as typed with the
 * shared schema (validateAllowedAe, applyAllowedAeChange: the API's own checks), the server's
 * message per field shown too. Host and port make it reachable for C-ECHO tests and as a
 * C-MOVE destination; "Use TLS" has it reached over TLS (the TLS settings' certificates).
 */

import { type FormEvent, useMemo, useState } from 'react';
import {
  type AllowedAe,
  AllowedAeSchema,
  applyAllowedAeChange,
  validateAllowedAe,
} from '../../../src/settings/schema.js';
import { ApiError, messageOf } from '../api/client.js';
import { Dialog, FormDialogActions } from '../components/dialog.js';
import { CheckboxField, Field } from '../components/form-field.js';
import { Notice } from '../components/notice.js';
import { useSession } from '../session.js';

interface Draft {
  ae_title: string;
  description: string;
  expected_ip: string;
  host: string;
  port: string;
  is_active: boolean;
  may_store: boolean;
  may_query: boolean;
  may_retrieve: boolean;
  is_move_destination: boolean;
  use_tls: boolean;
}

type TextKey = 'ae_title' | 'description' | 'expected_ip' | 'host' | 'port';
type FlagKey =
  | 'is_active'
  | 'may_store'
  | 'may_query'
  | 'may_retrieve'
  | 'is_move_destination'
  | 'use_tls';

/** A new AE title: the schema's defaults (active, every permission), no title yet. */
const NEW_AE: AllowedAe = { ...AllowedAeSchema.parse({ ae_title: 'NEW' }), ae_title: '' };

function draftOf(ae: AllowedAe): Draft {
  return { ...ae, port: ae.port === null ? '' : String(ae.port) };
}

/** The draft as the API takes it: the port as a number, or null when empty. */
function apiBodyOf(draft: Draft): Record<string, unknown> {
  const port = draft.port.trim();
  return { ...draft, port: port === '' ? null : Number(port) };
}

const PERMISSIONS: readonly { key: FlagKey; label: string; hint: string }[] = [
  { key: 'may_store', label: 'May store (C-STORE)', hint: 'Send instances to this server.' },
  { key: 'may_query', label: 'May query (C-FIND)', hint: 'Search the studies held here.' },
  {
    key: 'may_retrieve',
    label: 'May retrieve (C-MOVE, C-GET)',
    hint: 'Have studies sent to itself or a destination.',
  },
  {
    key: 'is_move_destination',
    label: 'Is a move destination',
    hint: 'Studies may be moved to it (needs host and port).',
  },
];

export function AeForm(props: {
  /** The AE title to edit; undefined to add one. */
  readonly editing: AllowedAe | undefined;
  /** Values to start a new one with (from a seen calling AE). */
  readonly initial?: Partial<AllowedAe>;
  /** The AE titles already listed (a new one must be another). */
  readonly listed: readonly string[];
  readonly onDone: (saved: AllowedAe) => void;
  readonly onCancel: () => void;
}) {
  const { editing, initial, listed, onDone, onCancel } = props;
  const { api } = useSession();
  const [draft, setDraft] = useState<Draft>(() => draftOf(editing ?? { ...NEW_AE, ...initial }));
  const [touched, setTouched] = useState<ReadonlySet<string>>(new Set());
  const [isSubmitted, setIsSubmitted] = useState(false);
  const [serverErrors, setServerErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | undefined>(undefined);
  const [isSaving, setIsSaving] = useState(false);

  const checked = useMemo(
    () =>
      editing === undefined
        ? validateAllowedAe(apiBodyOf(draft))
        : applyAllowedAeChange(editing, apiBodyOf(draft)),
    [draft, editing],
  );
  const isDuplicate = editing === undefined && listed.includes(draft.ae_title.trim());
  const clientErrors: Readonly<Record<string, string>> = {
    // The server's message for a title already listed (it answers 409 with it).
    ...(isDuplicate && { ae_title: 'is already in the list' }),
    ...(checked.isValid ? {} : checked.errors),
  };
  const errorOf = (key: string) =>
    serverErrors[key] ?? (isSubmitted || touched.has(key) ? clientErrors[key] : undefined);

  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => {
    setDraft((current) => ({ ...current, [key]: value }));
    setTouched((current) => new Set(current).add(key));
    setServerErrors(({ [key]: _, ...rest }) => rest);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setIsSubmitted(true);
    if (!checked.isValid || isDuplicate) return;
    setIsSaving(true);
    setError(undefined);
    try {
      const body = apiBodyOf(draft);
      const saved =
        editing === undefined
          ? await api.post<AllowedAe>('ae-titles/', body)
          : await api.patch<AllowedAe>(
              `ae-titles/${encodeURIComponent(editing.ae_title)}`,
              Object.fromEntries(Object.entries(body).filter(([key]) => key !== 'ae_title')),
            );
      onDone(saved);
    } catch (failure) {
      if (failure instanceof ApiError && Object.keys(failure.fields).length > 0) {
        setServerErrors({ ...failure.fields });
      } else {
        setError(messageOf(failure));
      }
    } finally {
      setIsSaving(false);
    }
  };

  const textField = (key: TextKey, label: string, hint?: string, placeholder?: string) => (
    <Field label={label} hint={hint} error={errorOf(key)}>
      {({ id, describedBy }) => (
        <input
          id={id}
          className={key === 'description' ? '' : 'mono'}
          value={draft[key]}
          placeholder={placeholder}
          readOnly={key === 'ae_title' && editing !== undefined}
          inputMode={key === 'port' ? 'numeric' : undefined}
          spellCheck={false}
          aria-invalid={errorOf(key) !== undefined}
          aria-describedby={describedBy}
          onChange={(event) => set(key, event.target.value)}
          onBlur={() => setTouched((current) => new Set(current).add(key))}
        />
      )}
    </Field>
  );

  return (
    <Dialog
      title={editing === undefined ? 'Add an AE title' : `Edit ${editing.ae_title}`}
      onClose={onCancel}
      isWide
    >
      <form onSubmit={submit} noValidate>
        <div className="dialog-body">
          {error !== undefined && <Notice kind="error">{error}</Notice>}
          {serverErrors._ !== undefined && <Notice kind="error">{serverErrors._}</Notice>}
          <div className="form-grid">
            {textField(
              'ae_title',
              'AE title',
              editing === undefined
                ? 'The calling AE title of the device, as it sends it (16 characters at most).'
                : 'An AE title cannot be renamed: add the new one, then delete this one.',
              'CT_SCANNER_01',
            )}
            {textField('description', 'Description', 'E.g. "CT scanner, room 1".')}
            {textField(
              'expected_ip',
              'Expected IP address',
              'Optional: only accepted from this address or CIDR range.',
              'any address',
            )}
            <div className="form-pair">
              {textField('host', 'Host', 'For C-ECHO tests and as a move destination.')}
              {textField('port', 'Port', undefined, '104')}
            </div>
            <CheckboxField
              label="Use TLS"
              checked={draft.use_tls}
              onChange={(value) => set('use_tls', value)}
              hint="Reach it over DICOM TLS (C-MOVE, forwarding, the C-ECHO test) with our certificate, its own checked against the CA certificates of the TLS settings. Its port is then its TLS port (often 2762)."
              error={errorOf('use_tls')}
            />
          </div>
          <fieldset className="fieldset">
            <legend>Status and permissions</legend>
            <div className="form-grid">
              <CheckboxField
                label="Active"
                checked={draft.is_active}
                onChange={(value) => set('is_active', value)}
                hint="An inactive AE title is refused when calling AE validation is on."
                error={errorOf('is_active')}
              />
              {PERMISSIONS.map((permission) => (
                <CheckboxField
                  key={permission.key}
                  label={permission.label}
                  checked={draft[permission.key]}
                  onChange={(value) => set(permission.key, value)}
                  hint={permission.hint}
                  error={errorOf(permission.key)}
                />
              ))}
            </div>
          </fieldset>
        </div>
        <FormDialogActions
          submitLabel={editing === undefined ? 'Add AE title' : 'Save changes'}
          isSaving={isSaving}
          onCancel={onCancel}
        />
      </form>
    </Dialog>
  );
}
