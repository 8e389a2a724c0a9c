/**
 * The dashboard: the service's status card with its controls (storage with intake, projection
 * and cleanup), the throughput chart, the transactions of the last 24 hours and the studies
 * received lately, all kept live by the event stream; and the storage rescan.
 */

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { messageOf, queryString } from '../api/client.js';
import { storageOf } from '../api/storage-types.js';
import type {
  RecentStudy,
  ServiceStatus,
  SettingsDocument,
  TlsStatus,
  TransactionPage,
  TransactionRow,
} from '../api/types.js';
import { ConfirmDialog } from '../components/dialog.js';
import { Notice } from '../components/notice.js';
import { RestartNotice } from '../components/restart-notice.js';
import { ServiceStateLabel } from '../components/status-dot.js';
import { StorageBar } from '../components/storage-bar.js';
import { StorageRescanCard } from '../components/storage-rescan.js';
import { ThroughputChart } from '../components/throughput-chart.js';
import { StatusBadge } from '../components/transaction-status.js';
import { sopClassName } from '../dicom-meanings.js';
import {
  formatBytes,
  formatCount,
  formatDicomDate,
  formatPersonName,
  formatShortTime,
  formatTime,
  formatUptime,
} from '../format.js';
import { useLive, useLiveRows, useNow } from '../live/live-events.js';
import { type ServiceAction, useServiceControl } from '../live/service-control.js';
import { Throughput, WINDOW_SECONDS } from '../live/throughput.js';
import { Link, pathOf } from '../router.js';
import { useSession } from '../session.js';
import { useApi } from '../use-api.js';

const RECENT_ROWS = 12;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Identifies a row whether it came from the database or the live stream. */
function rowKey(row: TransactionRow): string {
  return `${row.occurred_at}|${row.association_id}|${row.type}|${row.sop_instance_uid ?? ''}`;
}

export function DashboardPage() {
  return (
    <>
      <div className="page-head">
        <h1>Dashboard</h1>
      </div>
      <RestartNotice />
      <div className="grid grid-dashboard">
        <StatusCard />
        <ThroughputCard />
      </div>
      <div className="grid grid-halves">
        <RecentTransactions />
        <RecentStudies />
      </div>
      <StorageRescanCard />
    </>
  );
}

const CONFIRMATIONS: Readonly<Record<'stop' | 'restart', { title: string; text: string }>> = {
  stop: {
    title: 'Stop the DICOM service?',
    text: 'No new associations are accepted; open ones get the grace period to finish, then are aborted. Modalities sending now will fail until the service is started again.',
  },
  restart: {
    title: 'Restart the DICOM service?',
    text: 'The service stops (open associations get the grace period) and starts again with the saved settings.',
  },
};

function StatusCard() {
  const { isAdmin } = useSession();
  const { status, statusAt } = useLive();
  const control = useServiceControl();
  const [confirming, setConfirming] = useState<'stop' | 'restart' | undefined>(undefined);
  const now = useNow();

  const act = (action: ServiceAction) => {
    setConfirming(undefined);
    void control.run(action);
  };

  if (status === undefined) {
    return (
      <section className="card" aria-labelledby="status-title">
        <h2 id="status-title">DICOM service</h2>
        <p className="muted">Waiting for the status…</p>
      </section>
    );
  }
  const isRunning = status.state === 'running';
  const isBetween = status.state === 'starting' || status.state === 'stopping';
  const uptime =
    status.uptimeSeconds === null ? null : status.uptimeSeconds + (now - statusAt) / 1000;
  return (
    <section className="card status-card" aria-labelledby="status-title">
      <div className="card-head">
        <h2 id="status-title">DICOM service</h2>
        {isAdmin && (
          <div className="button-row">
            <button
              type="button"
              className="button button-primary"
              disabled={isRunning || isBetween || control.busy !== undefined}
              onClick={() => act('start')}
            >
              {control.busy === 'start' ? 'Starting…' : 'Start'}
            </button>
            <button
              type="button"
              className="button button-danger"
              disabled={!isRunning || control.busy !== undefined}
              onClick={() => setConfirming('stop')}
            >
              {control.busy === 'stop' ? 'Stopping…' : 'Stop'}
            </button>
            <button
              type="button"
              className="button"
              disabled={!isRunning || control.busy !== undefined}
              onClick={() => setConfirming('restart')}
            >
              {control.busy === 'restart' ? 'Restarting…' : 'Restart'}
            </button>
          </div>
        )}
      </div>
      <div className={`state-banner state-${status.state}`}>
        <ServiceStateLabel state={status.state} />
        <span className="muted small">
          {isRunning && status.startedAt !== null && `since ${formatTime(status.startedAt)}`}
          {!isRunning && status.stoppedAt !== null && `since ${formatTime(status.stoppedAt)}`}
        </span>
      </div>
      {control.error !== undefined && (
        <Notice kind="error" onClose={control.clearError}>
          {control.error}
        </Notice>
      )}
      <dl className="facts">
        <div>
          <dt>AE title</dt>
          <dd className="mono">{status.aeTitle}</dd>
        </div>
        <div>
          <dt>Address</dt>
          <dd className="mono">
            {status.port === null ? (
              <>
                {status.host} <span className="muted small">not listening</span>
              </>
            ) : (
              `${status.host}:${status.port}`
            )}
          </dd>
        </div>
        {status.tls !== null && <TlsFact tls={status.tls} />}
        <div>
          <dt>Uptime</dt>
          <dd className="mono">{uptime === null ? '—' : formatUptime(uptime)}</dd>
        </div>
        <div>
          <dt>Active associations</dt>
          <dd>
            {status.activeAssociations}{' '}
            <span className="muted">of {formatCount(status.maxAssociations)}</span>
          </dd>
        </div>
        <div>
          <dt>Files received</dt>
          <dd>{formatCount(status.filesReceived)}</dd>
        </div>
        <div>
          <dt>Bytes received</dt>
          <dd>{formatBytes(status.bytesReceived)}</dd>
        </div>
        <div>
          <dt>Errors</dt>
          <dd className={status.errors > 0 ? 'text-bad' : undefined}>
            {formatCount(status.errors)}
          </dd>
        </div>
        <div className="facts-wide">
          <dt>Last error</dt>
          <dd>
            {status.lastError === null ? (
              <span className="muted">none</span>
            ) : (
              <>
                <span className="text-bad">{status.lastError}</span>{' '}
                <span className="muted small">{formatTime(status.lastErrorAt)}</span>
              </>
            )}
          </dd>
        </div>
        <div className="facts-wide">
          <dt>Storage</dt>
          <dd>
            <StorageBar
              usedBytes={status.storageUsedBytes}
              limitBytes={status.storageLimitBytes}
              isMeasured={isRunning}
              storage={storageOf(status)}
            />
          </dd>
        </div>
      </dl>
      {confirming !== undefined && (
        <ConfirmDialog
          title={CONFIRMATIONS[confirming].title}
          confirmLabel={confirming === 'stop' ? 'Stop the service' : 'Restart the service'}
          isDanger={confirming === 'stop'}
          onConfirm={() => act(confirming)}
          onCancel={() => setConfirming(undefined)}
        >
          <p>{CONFIRMATIONS[confirming].text}</p>
        </ConfirmDialog>
      )}
    </section>
  );
}

/** Successful stores count as received (as the status's files received do). */
const isReceived = (row: TransactionRow) =>
  row.type === 'C-STORE' && (row.status === 'success' || row.status === 'warning');

function ThroughputCard() {
  const { api } = useSession();
  const { status } = useLive();
  const settings = useApi<SettingsDocument>('settings/');
  const isFromRows = settings.data?.effective.enable_transaction_log ?? true;
  const throughput = useRef(new Throughput());
  const seen = useRef(new Set<string>());
  const [version, setVersion] = useState(0);
  const now = useNow(5000);

  const addRows = useCallback((rows: readonly TransactionRow[]) => {
    let isAdded = false;
    for (const row of rows) {
      if (!isReceived(row) || seen.current.has(rowKey(row))) continue;
      seen.current.add(rowKey(row));
      throughput.current.addInstance(Date.parse(row.occurred_at), row.bytes ?? 0);
      isAdded = true;
    }
    if (isAdded) setVersion((n) => n + 1);
  }, []);

  // The last minutes from the log, so the chart does not start empty.
  useEffect(() => {
    if (!isFromRows) return;
    const since = new Date(Date.now() - WINDOW_SECONDS * 1000).toISOString();
    api
      .get<TransactionPage>(`transactions/${queryString({ type: 'C-STORE', since, limit: 500 })}`)
      .then(
        (page) => addRows(page.rows),
        () => undefined,
      );
  }, [api, isFromRows, addRows]);

  useLiveRows((rows) => {
    if (isFromRows) addRows(rows);
  });

  // Without the transaction log, the movement of the status totals.
  const previous = useRef<ServiceStatus | undefined>(undefined);
  useEffect(() => {
    if (status === undefined) return;
    const before = previous.current;
    previous.current = status;
    if (isFromRows || before === undefined) return;
    const files = status.filesReceived - before.filesReceived;
    const bytes = status.bytesReceived - before.bytesReceived;
    if (files > 0 || bytes > 0) {
      throughput.current.addTotals(Date.now(), files, bytes);
      setVersion((n) => n + 1);
    }
  }, [status, isFromRows]);

  // biome-ignore lint/correctness/useExhaustiveDependencies: version and now say the data moved
  const data = useMemo(() => throughput.current.series(Date.now()), [version, now]);
  const total = data[1].reduce((sum, perMinute) => sum + perMinute / 6, 0);
  return (
    <section className="card" aria-labelledby="throughput-title">
      <div className="card-head">
        <h2 id="throughput-title">Throughput</h2>
        <span className="muted small">
          last 15 min · {formatCount(Math.round(total))} instances
        </span>
      </div>
      <ThroughputChart data={data} />
      <p className="muted small">
        {isFromRows
          ? 'From the C-STORE rows of the transaction log, in 10-second steps.'
          : 'From the status totals (the transaction log is off), in 10-second steps.'}
      </p>
    </section>
  );
}

function RecentTransactions() {
  const { api } = useSession();
  const [rows, setRows] = useState<TransactionRow[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [since] = useState(() => new Date(Date.now() - DAY_MS).toISOString());

  useEffect(() => {
    api.get<TransactionPage>(`transactions/${queryString({ since, limit: RECENT_ROWS })}`).then(
      (page) =>
        setRows((live) => {
          // Rows that came live while the page was read stay on top.
          const keys = new Set(page.rows.map(rowKey));
          const fresh = (live ?? []).filter((row) => !keys.has(rowKey(row)));
          return [...fresh, ...page.rows].slice(0, RECENT_ROWS);
        }),
      (failure: unknown) => setError(messageOf(failure)),
    );
  }, [api, since]);

  useLiveRows((live) => {
    setRows((current) => [...[...live].reverse(), ...(current ?? [])].slice(0, RECENT_ROWS));
  });

  return (
    <section className="card" aria-labelledby="recent-tx-title">
      <div className="card-head">
        <h2 id="recent-tx-title">Recent transactions</h2>
        <Link to={pathOf('transactions')} className="small">
          Transaction log →
        </Link>
      </div>
      {error !== undefined && <Notice kind="error">{error}</Notice>}
      {rows === undefined && error === undefined && <p className="muted">Loading…</p>}
      {rows !== undefined && rows.length === 0 && (
        <p className="empty">No transactions in the last 24 hours.</p>
      )}
      {rows !== undefined && rows.length > 0 && (
        <div className="table-wrap">
          <table className="table table-compact table-fixed">
            <colgroup>
              <col className="col-time" />
              <col className="col-type" />
              <col className="col-status" />
              <col className="col-ae" />
              <col />
            </colgroup>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col">Calling AE</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.id ?? rowKey(row)}>
                  <td className="nowrap mono">{formatShortTime(row.occurred_at)}</td>
                  <td className="nowrap">{row.type}</td>
                  <td>
                    <StatusBadge status={row.status} />
                  </td>
                  <td className="nowrap mono" title={`called ${row.called_ae}`}>
                    {row.calling_ae}
                  </td>
                  <td className="ellipsis" title={row.message ?? row.sop_class_uid ?? undefined}>
                    {row.message ??
                      sopClassName(row.sop_class_uid) ??
                      `from ${row.remote_address}:${row.remote_port}`}
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

function RecentStudies() {
  const studies = useApi<RecentStudy[]>('studies/recent?limit=10');
  const reloadTimer = useRef<number | undefined>(undefined);
  const { reload } = studies;
  useLiveRows((rows) => {
    if (!rows.some(isReceived)) return;
    // A series arrives as many rows: read the list once it settles.
    window.clearTimeout(reloadTimer.current);
    reloadTimer.current = window.setTimeout(reload, 1500);
  });
  useEffect(() => () => window.clearTimeout(reloadTimer.current), []);

  return (
    <section className="card" aria-labelledby="recent-studies-title">
      <div className="card-head">
        <h2 id="recent-studies-title">Recent studies</h2>
      </div>
      {studies.error !== undefined && <Notice kind="error">{studies.error}</Notice>}
      {studies.data === undefined && studies.error === undefined && (
        <p className="muted">Loading…</p>
      )}
      {studies.data !== undefined && studies.data.length === 0 && (
        <p className="empty">No studies received yet.</p>
      )}
      {studies.data !== undefined && studies.data.length > 0 && (
        <div className="table-wrap">
          <table className="table table-compact">
            <thead>
              <tr>
                <th scope="col">Patient</th>
                <th scope="col">Study date</th>
                <th scope="col">Description</th>
                <th scope="col">
                  <abbr title="Modalities">Mod.</abbr>
                </th>
                <th scope="col" className="num">
                  <abbr title="Series / instances">Ser. / inst.</abbr>
                </th>
                <th scope="col">Received</th>
              </tr>
            </thead>
            <tbody>
              {studies.data.map((study) => (
                <tr key={study.studyInstanceUid}>
                  <td title={study.studyInstanceUid}>
                    {formatPersonName(study.patientName)}{' '}
                    <span className="muted mono small">{study.patientId}</span>
                  </td>
                  <td className="nowrap">{formatDicomDate(study.studyDate)}</td>
                  <td className="ellipsis">{study.studyDescription ?? '—'}</td>
                  <td>{study.modalitiesInStudy.replaceAll('\\', ', ') || '—'}</td>
                  <td className="num">
                    {study.numberOfSeries} / {study.numberOfInstances}
                  </td>
                  <td className="nowrap mono">{formatShortTime(study.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** A certificate this close to its end is shown as a warning. */
const CERTIFICATE_WARNING_DAYS = 30;

/**
 * DICOM over TLS: the TLS port (or "client certificate only" when the listener is off), our
 * certificate's subject and its expiry, in red once expired and amber within 30 days.
 */
function TlsFact(props: { readonly tls: TlsStatus }) {
  const { tls } = props;
  const certificate = tls.certificate;
  const expiryClass =
    certificate === null
      ? undefined
      : certificate.daysLeft < 0
        ? 'text-bad'
        : certificate.daysLeft < CERTIFICATE_WARNING_DAYS
          ? 'text-warn'
          : undefined;
  return (
    <div className="facts-wide">
      <dt>DICOM TLS</dt>
      <dd>
        <span className="mono">
          {tls.port === null ? 'client certificate only' : `port ${tls.port}`}
        </span>
        {tls.requireClientCertificate && (
          <span className="muted small"> · client certificates required</span>
        )}
        {certificate !== null && (
          <>
            <br />
            <span className="small" title={`Issuer: ${certificate.issuer}`}>
              {certificate.subject}
            </span>{' '}
            <span className={`small ${expiryClass ?? 'muted'}`} data-testid="tls-expiry">
              {certificate.daysLeft < 0 ? 'expired' : 'expires'} {formatTime(certificate.validTo)} (
              {certificate.daysLeft < 0
                ? `${-certificate.daysLeft} days ago`
                : `${certificate.daysLeft} days left`}
              )
            </span>
          </>
        )}
      </dd>
    </div>
  );
}
