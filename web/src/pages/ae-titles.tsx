/**
 * The allowed AE titles: the list with their permissions, add, edit, activate or deactivate,
 * delete (after a confirmation), a C-ECHO test of those with a host and port; and the calling
 * AE titles seen lately, with an Add button for those not listed (observe mode's way to build
 * the list before enforcing it).
 */

import { useState } from 'react';
import { messageOf } from '../api/client.js';
import type { AllowedAe, EchoResult, SeenCallingAe } from '../api/types.js';
import { ActionsHeading } from '../components/actions-heading.js';
import { ConfirmDialog } from '../components/dialog.js';
import { DetailRow } from '../components/expandable-row.js';
import { Notice, OutcomeNotice } from '../components/notice.js';
import { SwitchLabel } from '../components/status-dot.js';
import { StatusBadge } from '../components/transaction-status.js';
import { describeReason, describeStatus, formatStatus } from '../dicom-meanings.js';
import { formatAgo, formatCount, formatTime } from '../format.js';
import { Link, pathOf } from '../router.js';
import { useSession } from '../session.js';
import { useApi } from '../use-api.js';
import { useItemActions } from '../use-item-actions.js';
import { AeForm } from './ae-form.js';

const SEEN_HOURS = 168;

type Editing =
  | { readonly kind: 'add'; readonly initial?: Partial<AllowedAe> }
  | { readonly kind: 'edit'; readonly ae: AllowedAe };

type EchoState = { readonly kind: 'busy' } | { readonly kind: 'done'; readonly result: EchoResult };

export function AeTitlesPage() {
  const { api, isAdmin } = useSession();
  const list = useApi<AllowedAe[]>('ae-titles/');
  const seen = useApi<SeenCallingAe[]>(`ae-titles/seen?hours=${SEEN_HOURS}`);
  const [editing, setEditing] = useState<Editing | undefined>(undefined);
  const [echoes, setEchoes] = useState<Readonly<Record<string, EchoState>>>({});
  // Activate, deactivate and delete (a deletion confirmed first), by AE title.
  const actions = useItemActions<AllowedAe, string>();
  const deleting = actions.asking;

  const reload = () => {
    list.reload();
    seen.reload();
  };

  const setActive = (ae: AllowedAe, isActive: boolean) =>
    actions.run(ae.ae_title, async () => {
      await api.patch(`ae-titles/${encodeURIComponent(ae.ae_title)}`, { is_active: isActive });
      list.reload();
      return `${ae.ae_title} is now ${isActive ? 'active' : 'inactive'}.`;
    });

  const remove = (ae: AllowedAe) =>
    actions.run(ae.ae_title, async () => {
      await api.delete(`ae-titles/${encodeURIComponent(ae.ae_title)}`);
      reload();
      return `${ae.ae_title} was removed from the list.`;
    });

  const echo = async (ae: AllowedAe) => {
    setEchoes((current) => ({ ...current, [ae.ae_title]: { kind: 'busy' } }));
    let result: EchoResult;
    try {
      result = await api.post<EchoResult>(`ae-titles/${encodeURIComponent(ae.ae_title)}/echo`);
    } catch (failure) {
      result = { isSuccess: false, error: messageOf(failure), durationMs: 0 };
    }
    setEchoes((current) => ({ ...current, [ae.ae_title]: { kind: 'done', result } }));
  };

  return (
    <>
      <div className="page-head">
        <h1>AE titles</h1>
        {isAdmin && (
          <button
            type="button"
            className="button button-primary"
            onClick={() => setEditing({ kind: 'add' })}
          >
            Add AE title
          </button>
        )}
      </div>
      <p className="lede">
        The peers allowed to associate when calling AE validation is on (
        <Link to={`${pathOf('config')}#group-security`}>Configuration → Security</Link>), with what
        each may do. Host and port make a peer testable and a C-MOVE destination.
      </p>
      <OutcomeNotice outcome={actions.outcome} onClose={() => actions.setOutcome(undefined)} />
      <section className="card" aria-labelledby="allowed-title">
        <div className="card-head">
          <h2 id="allowed-title">Allowed AE titles</h2>
          {list.data !== undefined && (
            <span className="muted small">
              {list.data.length} listed, {list.data.filter((ae) => ae.is_active).length} active
            </span>
          )}
        </div>
        {list.error !== undefined && <Notice kind="error">{list.error}</Notice>}
        {list.data === undefined && list.error === undefined && <p className="muted">Loading…</p>}
        {list.data !== undefined && list.data.length === 0 && (
          <p className="empty">
            No AE titles listed yet.
            {isAdmin && ' Add the modalities, PACS and workstations that send to this server.'}
          </p>
        )}
        {list.data !== undefined && list.data.length > 0 && (
          <div className="table-wrap">
            <table className="table table-stack">
              <thead>
                <tr>
                  <th scope="col">AE title</th>
                  <th scope="col">Status</th>
                  <th scope="col">Expected IP</th>
                  <th scope="col">Host : port</th>
                  <th scope="col">Permissions</th>
                  {isAdmin && <ActionsHeading />}
                </tr>
              </thead>
              <tbody>
                {list.data.map((ae) => (
                  <AeRow
                    key={ae.ae_title}
                    ae={ae}
                    isAdmin={isAdmin}
                    isBusy={actions.busyKey === ae.ae_title}
                    echo={echoes[ae.ae_title]}
                    onEcho={() => void echo(ae)}
                    onEdit={() => setEditing({ kind: 'edit', ae })}
                    onToggle={() => void setActive(ae, !ae.is_active)}
                    onDelete={() => actions.ask(ae)}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <SeenPanel
        seen={seen.data}
        error={seen.error}
        isAdmin={isAdmin}
        onAdd={(entry) => setEditing({ kind: 'add', initial: { ae_title: entry.callingAe } })}
      />
      {editing !== undefined && (
        <AeForm
          editing={editing.kind === 'edit' ? editing.ae : undefined}
          listed={list.data?.map((ae) => ae.ae_title) ?? []}
          {...(editing.kind === 'add' &&
            editing.initial !== undefined && {
              initial: editing.initial,
            })}
          onCancel={() => setEditing(undefined)}
          onDone={(saved) => {
            actions.setOutcome({
              kind: 'success',
              text:
                editing.kind === 'add'
                  ? `${saved.ae_title} was added.`
                  : `${saved.ae_title} was saved.`,
            });
            setEditing(undefined);
            reload();
          }}
        />
      )}
      {deleting !== undefined && (
        <ConfirmDialog
          title={`Delete ${deleting.ae_title}?`}
          confirmLabel="Delete"
          isDanger
          isBusy={actions.busyKey === deleting.ae_title}
          onConfirm={() => void remove(deleting)}
          onCancel={actions.cancel}
        >
          <p>
            <strong className="mono">{deleting.ae_title}</strong>
            {deleting.description !== '' && ` (${deleting.description})`} is removed from the list.
            With calling AE validation on, its next association is rejected
            {deleting.is_move_destination && ', and it can no longer be a C-MOVE destination'}.
          </p>
          <p className="muted small">To keep it for later, deactivate it instead.</p>
        </ConfirmDialog>
      )}
    </>
  );
}

function Permission({ isOn, label }: { readonly isOn: boolean; readonly label: string }) {
  return (
    <span className={isOn ? 'chip chip-on' : 'chip chip-off'}>
      <span aria-hidden="true">{isOn ? '✓' : '✕'}</span> {label}
      <span className="visually-hidden">{isOn ? ': allowed' : ': not allowed'}</span>
    </span>
  );
}

function AeRow(props: {
  readonly ae: AllowedAe;
  readonly isAdmin: boolean;
  readonly isBusy: boolean;
  readonly echo: EchoState | undefined;
  readonly onEcho: () => void;
  readonly onEdit: () => void;
  readonly onToggle: () => void;
  readonly onDelete: () => void;
}) {
  const { ae, isAdmin, isBusy, echo, onEcho, onEdit, onToggle, onDelete } = props;
  const isReachable = ae.host !== '' && ae.port !== null;
  return (
    <>
      <tr className={ae.is_active ? undefined : 'row-inactive'}>
        <td data-label="AE title">
          <div>
            <span className="mono strong">{ae.ae_title}</span>
            {ae.description !== '' && <div className="muted small">{ae.description}</div>}
          </div>
        </td>
        <td className="nowrap" data-label="Status">
          <SwitchLabel isOn={ae.is_active} on="Active" off="Inactive" />
        </td>
        <td className="mono" data-label="Expected IP">
          {ae.expected_ip === '' ? <span className="muted">any</span> : ae.expected_ip}
        </td>
        <td className="mono nowrap" data-label="Host : port">
          {isReachable ? `${ae.host}:${ae.port}` : <span className="muted">—</span>}
          {ae.use_tls && (
            <>
              {' '}
              <span className="tag tag-changed" title="Reached over TLS">
                TLS
              </span>
            </>
          )}
        </td>
        <td data-label="Permissions">
          <div className="chips">
            <Permission isOn={ae.may_store} label="Store" />
            <Permission isOn={ae.may_query} label="Query" />
            <Permission isOn={ae.may_retrieve} label="Retrieve" />
            <Permission isOn={ae.is_move_destination} label="Move dest." />
          </div>
        </td>
        {isAdmin && (
          <td className="actions-col">
            <div className="button-row button-row-tight">
              <button
                type="button"
                className="button button-small"
                onClick={onEcho}
                disabled={!isReachable || echo?.kind === 'busy'}
                title={isReachable ? 'Send a C-ECHO to its host and port' : 'Needs a host and port'}
              >
                {echo?.kind === 'busy' ? 'Testing…' : 'Test'}
              </button>
              <button type="button" className="button button-small" onClick={onEdit}>
                Edit
              </button>
              <button
                type="button"
                className="button button-small"
                onClick={onToggle}
                disabled={isBusy}
              >
                {ae.is_active ? 'Deactivate' : 'Activate'}
              </button>
              <button
                type="button"
                className="button button-small button-danger-ghost"
                onClick={onDelete}
                disabled={isBusy}
              >
                Delete
              </button>
            </div>
          </td>
        )}
      </tr>
      {echo?.kind === 'done' && (
        <DetailRow columns={isAdmin ? 6 : 5}>
          <EchoOutcome ae={ae} result={echo.result} />
        </DetailRow>
      )}
    </>
  );
}

/** Socket errors of a C-ECHO test in plain words. */
const CONNECTION_ERRORS: readonly (readonly [RegExp, string])[] = [
  [/ECONNREFUSED/, 'nothing accepts connections at that host and port'],
  [/ETIMEDOUT|timed? ?out/i, 'no answer in time (a firewall, or the host is down)'],
  [/ENOTFOUND|EAI_AGAIN/, 'the host name is not known (DNS)'],
  [/EHOSTUNREACH|ENETUNREACH/, 'the host cannot be reached from this server'],
  [/ECONNRESET/, 'the peer closed the connection'],
];

function explainEchoError(error: string): string | undefined {
  return CONNECTION_ERRORS.find(([pattern]) => pattern.test(error))?.[1] ?? describeReason(error);
}

function EchoOutcome({ ae, result }: { readonly ae: AllowedAe; readonly result: EchoResult }) {
  if (result.isSuccess) {
    return (
      <span className="echo echo-ok" role="status">
        <span className="dot dot-ok" aria-hidden="true" /> C-ECHO to {ae.ae_title} at {ae.host}:
        {ae.port} succeeded in {result.durationMs} ms.
      </span>
    );
  }
  const status =
    result.status === undefined
      ? undefined
      : `${formatStatus(result.status)} ${describeStatus(result.status).meaning}`;
  return (
    <span className="echo echo-bad" role="alert">
      <span className="dot dot-bad" aria-hidden="true" /> C-ECHO to {ae.ae_title} at {ae.host}:
      {ae.port} failed{result.durationMs > 0 && ` after ${result.durationMs} ms`}:{' '}
      {status ?? result.error ?? 'no answer'}
      {result.error !== undefined && explainEchoError(result.error) !== undefined && (
        <span> ({explainEchoError(result.error)})</span>
      )}
    </span>
  );
}

function SeenPanel(props: {
  readonly seen: SeenCallingAe[] | undefined;
  readonly error: string | undefined;
  readonly isAdmin: boolean;
  readonly onAdd: (entry: SeenCallingAe) => void;
}) {
  const { seen, error, isAdmin, onAdd } = props;
  const unlisted = seen?.filter((entry) => !entry.isListed).length ?? 0;
  return (
    <section className="card" aria-labelledby="seen-title">
      <div className="card-head">
        <h2 id="seen-title">Recently seen calling AE titles</h2>
        <span className="muted small">
          last 7 days{seen !== undefined && unlisted > 0 && ` · ${unlisted} not listed`}
        </span>
      </div>
      {error !== undefined && <Notice kind="error">{error}</Notice>}
      {seen === undefined && error === undefined && <p className="muted">Loading…</p>}
      {seen !== undefined && seen.length === 0 && (
        <p className="empty">No association was requested in the last 7 days.</p>
      )}
      {seen !== undefined && seen.length > 0 && (
        <div className="table-wrap">
          <table className="table table-stack">
            <thead>
              <tr>
                <th scope="col">Calling AE title</th>
                <th scope="col">From</th>
                <th scope="col">Last seen</th>
                <th scope="col" className="num">
                  Associations
                </th>
                <th scope="col">Last outcome</th>
                <th scope="col">Listed</th>
              </tr>
            </thead>
            <tbody>
              {seen.map((entry) => (
                <tr key={`${entry.callingAe}|${entry.remoteAddress}`}>
                  <td className="mono strong" data-label="Calling AE">
                    {entry.callingAe}
                  </td>
                  <td className="mono" data-label="From">
                    {entry.remoteAddress}
                  </td>
                  <td className="nowrap" title={formatTime(entry.lastSeen)} data-label="Last seen">
                    {formatAgo(entry.lastSeen)}
                  </td>
                  <td className="num" data-label="Associations">
                    {formatCount(entry.associations)}
                  </td>
                  <td data-label="Last outcome">
                    <div>
                      <StatusBadge status={entry.lastStatus} />
                      {entry.lastMessage !== null && (
                        <div className="small muted" title={describeReason(entry.lastMessage)}>
                          {entry.lastMessage}
                        </div>
                      )}
                    </div>
                  </td>
                  <td className="nowrap" data-label="Listed">
                    {entry.isListed ? (
                      <span className="chip chip-on">listed</span>
                    ) : isAdmin ? (
                      <button
                        type="button"
                        className="button button-small button-primary"
                        onClick={() => onAdd(entry)}
                      >
                        Add
                      </button>
                    ) : (
                      <span className="chip chip-off">not listed</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
