/**
 * The associations open now: peer, AE titles, accepted contexts (by SOP class name, the transfer
 * syntax on hover and in the opened row), operations, instances and bytes so far, and a duration
 * that ticks. Read every 2 seconds while the page is visible and on each `status` event; an
 * administrator can abort one (A-ABORT) after a confirmation.
 */

import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, messageOf } from '../api/client.js';
import type { AcceptedContext, LiveAssociation } from '../api/types.js';
import { ActionsHeading } from '../components/actions-heading.js';
import { ConfirmDialog } from '../components/dialog.js';
import { DetailRow, RowToggle, useOpenRows } from '../components/expandable-row.js';
import { Notice, type Outcome, OutcomeNotice } from '../components/notice.js';
import { sopClassName, TRANSFER_SYNTAX_NAMES } from '../dicom-meanings.js';
import { formatBytes, formatCount, formatShortTime, formatTime, formatUptime } from '../format.js';
import { useLive, useNow } from '../live/live-events.js';
import { Link, pathOf } from '../router.js';
import { useSession } from '../session.js';

/** How often the list is read while the page is visible. */
const POLL_MS = 2000;
/** SOP classes named in a row before "+N more". */
const CONTEXTS_SHOWN = 3;

interface Snapshot {
  readonly rows: readonly LiveAssociation[];
  /** When the answer came (the durations are as of then). */
  readonly at: number;
}

/** The list, read every POLL_MS while the page is visible and on each status event. */
function useAssociations() {
  const { api } = useSession();
  const { status } = useLive();
  const [snapshot, setSnapshot] = useState<Snapshot | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const latest = useRef(0);

  const read = useCallback(() => {
    const ticket = ++latest.current;
    api.get<LiveAssociation[]>('associations/').then(
      (rows) => {
        if (ticket !== latest.current) return;
        setSnapshot({ rows, at: Date.now() });
        setError(undefined);
      },
      (failure: unknown) => {
        if (ticket !== latest.current) return;
        setError(messageOf(failure));
      },
    );
  }, [api]);

  useEffect(() => {
    let timer: number | undefined;
    const schedule = () => {
      window.clearInterval(timer);
      timer = undefined;
      if (document.visibilityState !== 'visible') return;
      read();
      timer = window.setInterval(read, POLL_MS);
    };
    schedule();
    document.addEventListener('visibilitychange', schedule);
    return () => {
      window.clearInterval(timer);
      document.removeEventListener('visibilitychange', schedule);
    };
  }, [read]);

  // A status event (or a status read after association rows) reads the list again.
  const seenStatus = useRef(status);
  useEffect(() => {
    if (status === seenStatus.current) return;
    seenStatus.current = status;
    if (document.visibilityState === 'visible') read();
  }, [status, read]);

  /** Drops a row at once (after its abort), before the next read confirms it. */
  const drop = useCallback((id: string) => {
    setSnapshot((current) =>
      current === undefined
        ? current
        : { ...current, rows: current.rows.filter((a) => a.id !== id) },
    );
  }, []);

  return { snapshot, error, read, drop };
}

/** The accepted contexts by SOP class (one class may be accepted with several syntaxes). */
function contextsBySopClass(
  contexts: readonly AcceptedContext[],
): { readonly uid: string; readonly transferSyntaxes: readonly string[] }[] {
  const groups = new Map<string, string[]>();
  for (const context of contexts) {
    const syntaxes = groups.get(context.abstractSyntax) ?? [];
    if (!syntaxes.includes(context.transferSyntax)) syntaxes.push(context.transferSyntax);
    groups.set(context.abstractSyntax, syntaxes);
  }
  return [...groups].map(([uid, transferSyntaxes]) => ({ uid, transferSyntaxes }));
}

/** The contexts without repeats of the same SOP class and transfer syntax. */
function uniqueContexts(contexts: readonly AcceptedContext[]): AcceptedContext[] {
  const seen = new Set<string>();
  return contexts.filter((context) => {
    const key = `${context.abstractSyntax}|${context.transferSyntax}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const transferSyntaxName = (uid: string) => TRANSFER_SYNTAX_NAMES[uid] ?? uid;

const peerOf = (association: LiveAssociation) =>
  `${association.remoteAddress}:${association.remotePort}`;

export function AssociationsPage() {
  const { api, isAdmin } = useSession();
  const { status } = useLive();
  const { snapshot, error, read, drop } = useAssociations();
  const openRows = useOpenRows<string>();
  const [aborting, setAborting] = useState<LiveAssociation | undefined>(undefined);
  const [isBusy, setIsBusy] = useState(false);
  const [notice, setNotice] = useState<Outcome | undefined>(undefined);
  const now = useNow();

  const abort = async (association: LiveAssociation) => {
    const who = `${association.callingAeTitle} (${peerOf(association)})`;
    setIsBusy(true);
    try {
      await api.delete(`associations/${encodeURIComponent(association.id)}`);
      drop(association.id);
      setNotice({ kind: 'success', text: `The association of ${who} was aborted.` });
    } catch (failure) {
      setNotice(
        failure instanceof ApiError && failure.status === 404
          ? { kind: 'info', text: `The association of ${who} had already closed.` }
          : { kind: 'error', text: `Could not abort the association: ${messageOf(failure)}` },
      );
    } finally {
      setIsBusy(false);
      setAborting(undefined);
      read();
    }
  };

  const rows = snapshot?.rows;
  const isRunning = status === undefined || status.state === 'running';
  const columns = isAdmin ? 10 : 9;
  return (
    <>
      <div className="page-head">
        <h1>Active associations</h1>
      </div>
      <p className="lede">
        The associations established with this server now, read every 2 seconds while this page is
        shown. What each one did is in the <Link to={pathOf('transactions')}>transaction log</Link>.
      </p>
      <OutcomeNotice outcome={notice} onClose={() => setNotice(undefined)} />
      {error !== undefined && (
        <Notice kind="error">
          Could not read the associations: {error}
          {rows !== undefined && ' The list below may be out of date.'}
        </Notice>
      )}
      <section className="card" aria-labelledby="associations-title">
        <div className="card-head">
          <h2 id="associations-title">
            {rows === undefined ? 'Open associations' : `Open associations (${rows.length})`}
          </h2>
          {snapshot !== undefined && (
            <span className="muted small">
              {status !== undefined && `limit ${formatCount(status.maxAssociations)} · `}
              read at {formatShortTime(new Date(snapshot.at).toISOString())}
            </span>
          )}
        </div>
        {rows === undefined && error === undefined && <p className="muted">Loading…</p>}
        {rows !== undefined && rows.length === 0 && (
          <p className="empty">
            No association is open.
            {!isRunning && (
              <>
                <br />
                <span className="small">The DICOM service is {status?.state}.</span>
              </>
            )}
          </p>
        )}
        {rows !== undefined && rows.length > 0 && snapshot !== undefined && (
          <div className="table-wrap">
            <table className="table table-stack table-associations">
              <thead>
                <tr>
                  <th scope="col">Peer</th>
                  <th scope="col">Calling AE</th>
                  <th scope="col">Called AE</th>
                  <th scope="col">Accepted contexts</th>
                  <th scope="col" className="num">
                    <abbr title="DIMSE operations">Ops</abbr>
                  </th>
                  <th scope="col" className="num">
                    <abbr title="Instances stored">Stored</abbr>
                  </th>
                  <th scope="col" className="num">
                    <abbr title="Bytes received">In</abbr>
                  </th>
                  <th scope="col" className="num">
                    <abbr title="Bytes sent">Out</abbr>
                  </th>
                  <th scope="col" className="num">
                    Duration
                  </th>
                  {isAdmin && <ActionsHeading />}
                </tr>
              </thead>
              <tbody>
                {rows.map((association) => (
                  <AssociationRow
                    key={association.id}
                    association={association}
                    durationMs={association.durationMs + Math.max(0, now - snapshot.at)}
                    isOpen={openRows.isOpen(association.id)}
                    columns={columns}
                    isAdmin={isAdmin}
                    onToggle={() => openRows.toggle(association.id)}
                    onAbort={() => setAborting(association)}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {aborting !== undefined && (
        <ConfirmDialog
          title={`Abort the association of ${aborting.callingAeTitle}?`}
          confirmLabel={isBusy ? 'Aborting…' : 'Abort association'}
          isDanger
          isBusy={isBusy}
          onConfirm={() => void abort(aborting)}
          onCancel={() => setAborting(undefined)}
        >
          <p>
            <strong className="mono">{aborting.callingAeTitle}</strong> from{' '}
            <span className="mono">{peerOf(aborting)}</span> to{' '}
            <span className="mono">{aborting.calledAeTitle}</span>, open since{' '}
            {formatTime(aborting.startedAt)}: {formatCount(aborting.operations)} operations,{' '}
            {formatCount(aborting.instancesStored)} instances stored.
          </p>
          <p>
            The server sends an A-ABORT and closes the connection. An operation in progress fails on
            the peer's side; the instances already stored stay.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

function AssociationRow(props: {
  readonly association: LiveAssociation;
  readonly durationMs: number;
  readonly isOpen: boolean;
  readonly columns: number;
  readonly isAdmin: boolean;
  readonly onToggle: () => void;
  readonly onAbort: () => void;
}) {
  const { association, durationMs, isOpen, columns, isAdmin, onToggle, onAbort } = props;
  const detailId = `association-${association.id}`.replace(/[^A-Za-z0-9_-]/g, '-');
  const groups = contextsBySopClass(association.acceptedContexts);
  const hidden = groups.length - CONTEXTS_SHOWN;
  return (
    <>
      <tr className={isOpen ? 'row-open' : undefined}>
        <td className="nowrap" data-label="Peer">
          <RowToggle
            isOpen={isOpen}
            controls={detailId}
            onToggle={onToggle}
            title={isOpen ? 'Hide the accepted contexts' : 'Show the accepted contexts'}
          >
            <span className="mono">{peerOf(association)}</span>
          </RowToggle>
          {association.tls !== null && (
            <>
              {' '}
              <span
                className="tag tag-changed"
                title={[
                  association.tls.protocol,
                  association.tls.cipher,
                  association.tls.peerCertificateSubject,
                ]
                  .filter(Boolean)
                  .join(', ')}
              >
                TLS
              </span>
            </>
          )}
        </td>
        <td className="mono strong" data-label="Calling AE">
          {association.callingAeTitle}
        </td>
        <td className="mono" data-label="Called AE">
          {association.calledAeTitle}
        </td>
        <td data-label="Contexts">
          {groups.length === 0 ? (
            <span className="muted">none</span>
          ) : (
            <div className="chips">
              {groups.slice(0, CONTEXTS_SHOWN).map((group) => (
                <span
                  key={group.uid}
                  className="chip chip-context"
                  title={`${group.uid}\nTransfer syntax: ${group.transferSyntaxes
                    .map((uid) => `${transferSyntaxName(uid)} (${uid})`)
                    .join(', ')}`}
                >
                  {sopClassName(group.uid) ?? <span className="mono">{group.uid}</span>}
                </span>
              ))}
              {hidden > 0 && (
                <button
                  type="button"
                  className="chip chip-more"
                  aria-expanded={isOpen}
                  aria-controls={detailId}
                  onClick={onToggle}
                >
                  {isOpen ? 'less' : `+${hidden} more`}
                </button>
              )}
            </div>
          )}
        </td>
        <td className="num" data-label="Operations">
          {formatCount(association.operations)}
        </td>
        <td className="num" data-label="Stored">
          {formatCount(association.instancesStored)}
        </td>
        <td
          className="num nowrap"
          data-label="Bytes in"
          title={`${formatCount(association.bytesIn)} bytes`}
        >
          {formatBytes(association.bytesIn)}
        </td>
        <td
          className="num nowrap"
          data-label="Bytes out"
          title={`${formatCount(association.bytesOut)} bytes`}
        >
          {formatBytes(association.bytesOut)}
        </td>
        <td
          className="num nowrap mono"
          data-label="Duration"
          title={`since ${formatTime(association.startedAt)}`}
        >
          {formatUptime(durationMs / 1000)}
        </td>
        {isAdmin && (
          <td className="actions-col">
            <button
              type="button"
              className="button button-small button-danger-ghost"
              onClick={onAbort}
            >
              Abort
            </button>
          </td>
        )}
      </tr>
      {isOpen && (
        <DetailRow id={detailId} columns={columns}>
          <AssociationDetails association={association} />
        </DetailRow>
      )}
    </>
  );
}

function AssociationDetails({ association }: { readonly association: LiveAssociation }) {
  return (
    <div className="details">
      <dl className="detail-grid">
        <div className="detail-item">
          <dt>Association</dt>
          <dd className="mono">{association.id}</dd>
        </div>
        <div className="detail-item">
          <dt>Started</dt>
          <dd>{formatTime(association.startedAt)}</dd>
        </div>
      </dl>
      <table className="table table-compact context-table">
        <caption className="visually-hidden">Accepted presentation contexts</caption>
        <thead>
          <tr>
            <th scope="col">SOP class</th>
            <th scope="col">SOP class UID</th>
            <th scope="col">Transfer syntax</th>
          </tr>
        </thead>
        <tbody>
          {uniqueContexts(association.acceptedContexts).map((context) => (
            <tr key={`${context.abstractSyntax}|${context.transferSyntax}`}>
              <td data-label="SOP class">
                {sopClassName(context.abstractSyntax) ?? <span className="muted">unknown</span>}
              </td>
              <td className="mono break" data-label="UID">
                {context.abstractSyntax}
              </td>
              <td data-label="Transfer syntax" title={context.transferSyntax}>
                {transferSyntaxName(context.transferSyntax)}
                {TRANSFER_SYNTAX_NAMES[context.transferSyntax] !== undefined && (
                  <span className="muted mono small"> {context.transferSyntax}</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
