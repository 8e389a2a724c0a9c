/**
 * The configuration page: every setting in the specification's groups, validated as typed with
 * the shared schema (the same rules and messages as the API), saved with PATCH settings/ (only
 * the changed ones; the server's message per field is shown too), with the notice of changes
 * that wait for a restart. Settings fixed by a flag or environment variable of the running
 * process are shown read-only with their value in effect. A secret (the webhook secret) is never
 * read back: the form holds the server's mask, which is not sent unless replaced or removed.
 */

import { useCallback, useEffect, useMemo, useState } from 'react';
import {
  applySettingsChange,
  RESTART_SETTINGS,
  SETTING_KEYS,
  type SettingKey,
  type Settings,
} from '../../../src/settings/schema.js';
import { ApiError, messageOf } from '../api/client.js';
import type { SettingsChange, SettingsDocument } from '../api/types.js';
import { Tag } from '../components/form-field.js';
import { Notice } from '../components/notice.js';
import { RestartNotice } from '../components/restart-notice.js';
import {
  SETTING_FIELDS,
  SETTING_GROUPS,
  SETTING_LABELS,
  settingsOf,
} from '../config/setting-fields.js';
import { type InputValue, inputOf, SettingInput, settingValueOf } from '../config/setting-input.js';
import { useSession } from '../session.js';
import { useApi } from '../use-api.js';

type Draft = Readonly<Record<SettingKey, InputValue>>;

function draftOf(settings: Settings): Draft {
  return Object.fromEntries(SETTING_KEYS.map((key) => [key, inputOf(key, settings[key])])) as Draft;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function ConfigurationPage() {
  const loaded = useApi<SettingsDocument>('settings/');
  return (
    <>
      <div className="page-head">
        <h1>Configuration</h1>
      </div>
      <RestartNotice />
      {loaded.error !== undefined && <Notice kind="error">{loaded.error}</Notice>}
      {loaded.data === undefined && loaded.error === undefined && <p className="muted">Loading…</p>}
      {loaded.data !== undefined && (
        <SettingsForm
          loaded={loaded.data}
          onSaved={(settings) => {
            // The answer's settings at once; the values in effect with the next read.
            if (loaded.data !== undefined) loaded.setData({ ...loaded.data, settings });
            loaded.reload();
          }}
        />
      )}
    </>
  );
}

function SettingsForm(props: {
  readonly loaded: SettingsDocument;
  readonly onSaved: (settings: Settings) => void;
}) {
  const { loaded, onSaved } = props;
  const { api, isAdmin, pendingRestart, setPendingRestart } = useSession();
  const [draft, setDraft] = useState<Draft>(() => draftOf(loaded.settings));
  const [serverErrors, setServerErrors] = useState<Record<string, string>>({});
  const [saveError, setSaveError] = useState<string | undefined>(undefined);
  const [saved, setSaved] = useState<readonly SettingKey[] | undefined>(undefined);
  const [isSaving, setIsSaving] = useState(false);
  const [isFocusingError, setIsFocusingError] = useState(false);

  // Once marked, the first field the server refused takes the focus.
  useEffect(() => {
    if (!isFocusingError) return;
    setIsFocusingError(false);
    window.document.querySelector<HTMLElement>('.config-form [aria-invalid="true"]')?.focus();
  }, [isFocusingError]);

  // A link to a section (#group-security) lands there once the form is drawn.
  useEffect(() => {
    const id = window.location.hash.slice(1);
    if (id !== '') window.document.getElementById(id)?.scrollIntoView();
  }, []);

  // A fresh read (after a save) replaces the draft.
  useEffect(() => setDraft(draftOf(loaded.settings)), [loaded]);

  const overridden = useMemo(() => new Set(loaded.overridden), [loaded]);
  const changed = useMemo(
    () =>
      SETTING_KEYS.filter(
        (key) =>
          !overridden.has(key) && !same(settingValueOf(key, draft[key]), loaded.settings[key]),
      ),
    [draft, loaded, overridden],
  );
  const change = useMemo(
    () => Object.fromEntries(changed.map((key) => [key, settingValueOf(key, draft[key])])),
    [changed, draft],
  );
  // The server's own check, run here: the same function, so the same messages.
  const checked = useMemo(() => applySettingsChange(loaded.settings, change), [loaded, change]);
  const clientErrors: Readonly<Record<string, string>> = checked.isValid ? {} : checked.errors;

  useEffect(() => {
    if (changed.length === 0) return;
    const warn = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [changed.length]);

  const edit = useCallback((key: SettingKey, value: InputValue) => {
    setDraft((current) => ({ ...current, [key]: value }));
    setServerErrors(({ [key]: _, ...rest }) => rest);
    setSaved(undefined);
  }, []);

  const save = async () => {
    setIsSaving(true);
    setSaveError(undefined);
    setServerErrors({});
    try {
      const result = await api.patch<SettingsChange>('settings/', change);
      setSaved(result.changed);
      if (result.restartRequired.length > 0) {
        const keys = new Set([...(pendingRestart?.keys ?? []), ...result.restartRequired]);
        setPendingRestart({ keys: [...keys], savedAt: Date.now() });
      }
      onSaved(result.settings);
      // The notices (saved, restart needed) are at the top of the page.
      window.scrollTo({ top: 0, behavior: 'smooth' });
    } catch (failure) {
      if (failure instanceof ApiError && Object.keys(failure.fields).length > 0) {
        setServerErrors({ ...failure.fields });
        setSaveError('The server did not accept some settings: see the fields marked below.');
        setIsFocusingError(true);
      } else {
        setSaveError(messageOf(failure));
      }
    } finally {
      setIsSaving(false);
    }
  };

  const errorCount = Object.keys({ ...clientErrors, ...serverErrors }).length;
  return (
    <div className="config-layout">
      <nav className="config-toc" aria-label="Configuration sections">
        <ul>
          {SETTING_GROUPS.map((group) => (
            <li key={group.id}>
              <a href={`#group-${group.id}`}>{group.title}</a>
            </li>
          ))}
        </ul>
      </nav>
      <form
        className="config-form"
        onSubmit={(event) => {
          event.preventDefault();
          if (changed.length > 0 && errorCount === 0) void save();
        }}
      >
        {!isAdmin && (
          <Notice kind="info">You are logged in as a viewer: the settings are read-only.</Notice>
        )}
        {overridden.size > 0 && (
          <Notice kind="info">
            {overridden.size === 1 ? 'One setting is' : `${overridden.size} settings are`} set by a
            command-line flag or environment variable of the running server, and shown read-only:
            the value in effect is the flag's. Change it where the server is started.
          </Notice>
        )}
        {saved !== undefined && (
          <Notice kind="success" onClose={() => setSaved(undefined)}>
            {saved.length === 0
              ? 'Nothing changed.'
              : `Saved: ${saved.map((key) => SETTING_LABELS[key]).join(', ')}.`}
          </Notice>
        )}
        {saveError !== undefined && (
          <Notice kind="error" onClose={() => setSaveError(undefined)}>
            {saveError}
            {serverErrors._ !== undefined && ` ${serverErrors._}`}
          </Notice>
        )}
        {SETTING_GROUPS.map((group) => (
          <section
            key={group.id}
            id={`group-${group.id}`}
            className="card settings-group"
            aria-labelledby={`group-${group.id}-title`}
          >
            <h2 id={`group-${group.id}-title`}>{group.title}</h2>
            <div className="settings-grid">
              {settingsOf(group.id).map((key) => {
                const isOverridden = overridden.has(key);
                const isChanged = changed.includes(key);
                return (
                  <SettingInput
                    key={key}
                    settingKey={key}
                    value={isOverridden ? inputOf(key, loaded.effective[key]) : draft[key]}
                    stored={inputOf(
                      key,
                      isOverridden ? loaded.effective[key] : loaded.settings[key],
                    )}
                    onChange={(value) => edit(key, value)}
                    isReadOnly={!isAdmin || isOverridden}
                    error={serverErrors[key] ?? (isChanged ? clientErrors[key] : undefined)}
                    hint={hintOf(key, loaded, isOverridden)}
                    tags={
                      <>
                        {isChanged && <Tag kind="changed">changed</Tag>}
                        {RESTART_SETTINGS.has(key) && (
                          <Tag kind="restart" title="Takes effect when the service restarts">
                            restart
                          </Tag>
                        )}
                        {isOverridden && (
                          <Tag kind="override" title="Set by a flag or environment variable">
                            set by flag
                          </Tag>
                        )}
                      </>
                    }
                  />
                );
              })}
            </div>
          </section>
        ))}
        {isAdmin && (
          <div className={changed.length > 0 ? 'save-bar save-bar-active' : 'save-bar'}>
            <span className="save-bar-text" aria-live="polite">
              {changed.length === 0
                ? 'No unsaved changes.'
                : `${changed.length} unsaved ${changed.length === 1 ? 'change' : 'changes'}` +
                  (changed.some((key) => RESTART_SETTINGS.has(key))
                    ? ', some take effect after a restart.'
                    : '.')}
              {errorCount > 0 && (
                <span className="text-bad">
                  {' '}
                  {errorCount === 1 ? 'One field needs' : `${errorCount} fields need`} correcting.
                </span>
              )}
            </span>
            <button
              type="button"
              className="button"
              disabled={changed.length === 0 || isSaving}
              onClick={() => {
                setDraft(draftOf(loaded.settings));
                setServerErrors({});
                setSaveError(undefined);
              }}
            >
              Discard changes
            </button>
            <button
              type="submit"
              className="button button-primary"
              disabled={changed.length === 0 || errorCount > 0 || isSaving}
            >
              {isSaving ? 'Saving…' : 'Save changes'}
            </button>
          </div>
        )}
      </form>
    </div>
  );
}

/** The field's hint; for an overridden setting, what is stored beside what is in effect. */
function hintOf(key: SettingKey, loaded: SettingsDocument, isOverridden: boolean) {
  const hint = SETTING_FIELDS[key].hint;
  if (!isOverridden) return hint;
  const stored = loaded.settings[key];
  const shown = Array.isArray(stored) ? stored.join(', ') : String(stored);
  return (
    <>
      Set by a flag or environment variable for this process. Stored value:{' '}
      <span className="mono">{shown === '' ? '(empty)' : shown}</span>, used when the server starts
      without the flag.
      {hint !== undefined && (
        <>
          <br />
          {hint}
        </>
      )}
    </>
  );
}
