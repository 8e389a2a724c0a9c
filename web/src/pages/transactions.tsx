/**
 * The transaction log: filters (type, status, AE title, time range) kept in the address so a
 * view can be bookmarked, pages of rows newest first (the API's nextBefore), rows that open to
 * show every field with status codes and reject or abort reasons in plain words, the CSV
 * export of what the filters select, and a count of rows written since the page was read.
 */

import { useEffect, useMemo, useState } from 'react';
import { API_BASE, messageOf, queryString } from '../api/client.js';
import {
  TRANSACTION_STATUSES,
  TRANSACTION_TYPES,
  type TransactionPage,
  type TransactionRow,
} from '../api/types.js';
import { DetailRow, RowToggle, useOpenRows } from '../components/expandable-row.js';
import { FilterSelect } from '../components/filter-select.js';
import { Notice } from '../components/notice.js';
import { Pager } from '../components/pager.js';
import { TransactionDetails } from '../components/transaction-details.js';
import { StatusBadge, StatusCode } from '../components/transaction-status.js';
import { sopClassName } from '../dicom-meanings.js';
import { formatBytes, formatCount, formatDurationMs, formatTime } from '../format.js';
import { useLiveRows } from '../live/live-events.js';
import { navigate, pathOf, useLocation } from '../router.js';
import { useSession } from '../session.js';

const RANGES = {
  '1h': { label: 'Last hour', ms: 3_600_000 },
  '24h': { label: 'Last 24 hours', ms: 86_400_000 },
  '7d': { label: 'Last 7 days', ms: 7 * 86_400_000 },
  '30d': { label: 'Last 30 days', ms: 30 * 86_400_000 },
  all: { label: 'All time', ms: undefined },
  custom: { label: 'Custom range…', ms: undefined },
} as const;
type RangeId = keyof typeof RANGES;

const PAGE_SIZES = [50, 100, 200] as const;

interface Filters {
  readonly type: string;
  readonly status: string;
  readonly ae: string;
  readonly range: RangeId;
  /** Custom range, as datetime-local values (local time). */
  readonly from: string;
  readonly to: string;
  readonly limit: number;
}

function filtersOf(search: string): Filters {
  const params = new URLSearchParams(search);
  const range = params.get('range') ?? '24h';
  const limit = Number(params.get('limit'));
  return {
    type: params.get('type') ?? '',
    status: params.get('status') ?? '',
    ae: params.get('ae') ?? '',
    range: range in RANGES ? (range as RangeId) : '24h',
    from: params.get('from') ?? '',
    to: params.get('to') ?? '',
    limit: (PAGE_SIZES as readonly number[]).includes(limit) ? limit : 50,
  };
}

function searchOf(filters: Filters): string {
  return queryString({
    type: filters.type,
    status: filters.status,
    ae: filters.ae,
    range: filters.range === '24h' ? undefined : filters.range,
    from: filters.range === 'custom' ? filters.from : undefined,
    to: filters.range === 'custom' ? filters.to : undefined,
    limit: filters.limit === 50 ? undefined : filters.limit,
  });
}

/** The API's filter (since/until as ISO times, the preset ranges ending now). */
function apiFilterOf(filters: Filters, now: number): Record<string, string | undefined> {
  const localIso = (value: string) => {
    const time = new Date(value);
    return value === '' || Number.isNaN(time.getTime()) ? undefined : time.toISOString();
  };
  const span = RANGES[filters.range].ms;
  return {
    type: filters.type || undefined,
    status: filters.status || undefined,
    ae: filters.ae.trim() || undefined,
    since:
      filters.range === 'custom'
        ? localIso(filters.from)
        : span === undefined
          ? undefined
          : new Date(now - span).toISOString(),
    until: filters.range === 'custom' ? localIso(filters.to) : undefined,
  };
}

/** Whether a live row falls under the filter (as the repository's query reads it). */
function isMatch(row: TransactionRow, filter: Record<string, string | undefined>): boolean {
  return (
    (filter.type === undefined || row.type === filter.type) &&
    (filter.status === undefined || row.status === filter.status) &&
    (filter.ae === undefined || row.calling_ae === filter.ae || row.called_ae === filter.ae) &&
    (filter.since === undefined || row.occurred_at >= filter.since) &&
    (filter.until === undefined || row.occurred_at < filter.until)
  );
}

const rowKey = (row: TransactionRow) => String(row.id ?? `${row.occurred_at}|${row.type}`);

export function TransactionsPage() {
  const { api } = useSession();
  const { search } = useLocation();
  const filters = useMemo(() => filtersOf(search), [search]);
  const [aeText, setAeText] = useState(filters.ae);
  // Cursors of the pages before the current one (the first page has none).
  const [cursors, setCursors] = useState<readonly (number | undefined)[]>([]);
  const [before, setBefore] = useState<number | undefined>(undefined);
  const [page, setPage] = useState<TransactionPage | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [isLoading, setIsLoading] = useState(true);
  const openRows = useOpenRows<string>();
  const [readAt, setReadAt] = useState(() => Date.now());
  const [newRows, setNewRows] = useState(0);

  const apiFilter = useMemo(() => apiFilterOf(filters, readAt), [filters, readAt]);

  useEffect(() => {
    let isCurrent = true;
    setIsLoading(true);
    api
      .get<TransactionPage>(
        `transactions/${queryString({ ...apiFilter, limit: filters.limit, before })}`,
      )
      .then(
        (result) => {
          if (!isCurrent) return;
          setPage(result);
          setError(undefined);
          setIsLoading(false);
        },
        (failure: unknown) => {
          if (!isCurrent) return;
          setError(messageOf(failure));
          setIsLoading(false);
        },
      );
    return () => {
      isCurrent = false;
    };
  }, [api, apiFilter, filters.limit, before]);

  // Typing in the AE title box filters after a pause.
  useEffect(() => {
    if (aeText === filters.ae) return;
    const timer = window.setTimeout(() => update({ ae: aeText.trim() }), 400);
    return () => window.clearTimeout(timer);
  });

  useLiveRows((rows) => {
    const matching = rows.filter((row) => isMatch(row, apiFilter)).length;
    if (matching > 0) setNewRows((n) => n + matching);
  });

  function update(change: Partial<Filters>) {
    setCursors([]);
    setBefore(undefined);
    openRows.closeAll();
    setNewRows(0);
    setReadAt(Date.now());
    navigate(`${pathOf('transactions')}${searchOf({ ...filters, ...change })}`, {
      isReplace: true,
    });
  }

  const refresh = () => {
    setCursors([]);
    setBefore(undefined);
    setNewRows(0);
    setReadAt(Date.now());
  };

  const firstIndex = cursors.length * filters.limit;
  const exportHref = `${API_BASE}/transactions/export.csv${queryString(apiFilter)}`;
  return (
    <>
      <div className="page-head">
        <h1>Transaction log</h1>
        <a className="button" href={exportHref} download="transactions.csv">
          Export CSV
        </a>
      </div>
      <form
        className="card filters"
        aria-label="Filters"
        onSubmit={(event) => {
          event.preventDefault();
          update({ ae: aeText.trim() });
        }}
      >
        <FilterSelect
          id="filter-type"
          label="Type"
          value={filters.type}
          allLabel="All types"
          options={TRANSACTION_TYPES}
          onChange={(type) => update({ type })}
        />
        <FilterSelect
          id="filter-status"
          label="Status"
          value={filters.status}
          allLabel="All statuses"
          options={TRANSACTION_STATUSES}
          onChange={(status) => update({ status })}
        />
        <div className="filter">
          <label htmlFor="filter-ae">AE title</label>
          <input
            id="filter-ae"
            className="mono"
            value={aeText}
            maxLength={16}
            placeholder="calling or called"
            spellCheck={false}
            onChange={(event) => setAeText(event.target.value)}
          />
        </div>
        <div className="filter">
          <label htmlFor="filter-range">Time</label>
          <select
            id="filter-range"
            value={filters.range}
            onChange={(event) => update({ range: event.target.value as RangeId })}
          >
            {Object.entries(RANGES).map(([id, range]) => (
              <option key={id} value={id}>
                {range.label}
              </option>
            ))}
          </select>
        </div>
        {filters.range === 'custom' && (
          <>
            <div className="filter">
              <label htmlFor="filter-from">From</label>
              <input
                id="filter-from"
                type="datetime-local"
                value={filters.from}
                onChange={(event) => update({ from: event.target.value })}
              />
            </div>
            <div className="filter">
              <label htmlFor="filter-to">To</label>
              <input
                id="filter-to"
                type="datetime-local"
                value={filters.to}
                onChange={(event) => update({ to: event.target.value })}
              />
            </div>
          </>
        )}
        <div className="filter">
          <label htmlFor="filter-limit">Rows per page</label>
          <select
            id="filter-limit"
            value={filters.limit}
            onChange={(event) => update({ limit: Number(event.target.value) })}
          >
            {PAGE_SIZES.map((size) => (
              <option key={size} value={size}>
                {size}
              </option>
            ))}
          </select>
        </div>
        <div className="filter filter-actions">
          <button
            type="button"
            className="button button-ghost"
            onClick={() => {
              setAeText('');
              update({ type: '', status: '', ae: '', range: '24h', from: '', to: '' });
            }}
          >
            Clear filters
          </button>
        </div>
      </form>

      {newRows > 0 && cursors.length === 0 && (
        <Notice kind="info">
          {formatCount(newRows)} new {newRows === 1 ? 'transaction matches' : 'transactions match'}{' '}
          the filters since this page was read.{' '}
          <button type="button" className="button button-small" onClick={refresh}>
            Show
          </button>
        </Notice>
      )}
      {error !== undefined && <Notice kind="error">{error}</Notice>}

      <section className="card" aria-labelledby="log-title" aria-busy={isLoading}>
        <div className="card-head">
          <h2 id="log-title">
            {page === undefined
              ? 'Transactions'
              : page.total === 0
                ? 'No transactions'
                : `Transactions ${formatCount(firstIndex + 1)}–${formatCount(firstIndex + page.rows.length)} of ${formatCount(page.total)}`}
          </h2>
          <Pager
            hasNewer={cursors.length > 0}
            hasOlder={page?.nextBefore !== null && page !== undefined}
            isLoading={isLoading}
            onNewer={() => {
              setBefore(cursors[cursors.length - 1]);
              setCursors(cursors.slice(0, -1));
            }}
            onOlder={() => {
              if (page?.nextBefore === null || page === undefined) return;
              setCursors([...cursors, before]);
              setBefore(page.nextBefore);
            }}
          />
        </div>
        {page === undefined && isLoading && <p className="muted">Loading…</p>}
        {page !== undefined && page.rows.length === 0 && (
          <p className="empty">No transaction matches these filters.</p>
        )}
        {page !== undefined && page.rows.length > 0 && (
          <div className="table-wrap">
            <table className="table table-log">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Type</th>
                  <th scope="col">Status</th>
                  <th scope="col">Code</th>
                  <th scope="col">Calling AE</th>
                  <th scope="col">Called AE</th>
                  <th scope="col">Peer</th>
                  <th scope="col">Detail</th>
                  <th scope="col" className="num">
                    Size
                  </th>
                  <th scope="col" className="num">
                    Duration
                  </th>
                </tr>
              </thead>
              <tbody>
                {page.rows.map((row) => {
                  const key = rowKey(row);
                  const isOpen = openRows.isOpen(key);
                  return (
                    <LogRow
                      key={key}
                      row={row}
                      isOpen={isOpen}
                      onToggle={() => openRows.toggle(key)}
                      onFilterAe={(ae) => {
                        setAeText(ae);
                        update({ ae });
                      }}
                    />
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {page !== undefined && page.rows.length > 0 && (
          <div className="card-foot">
            <Pager
              hasNewer={cursors.length > 0}
              hasOlder={page.nextBefore !== null}
              isLoading={isLoading}
              onNewer={() => {
                setBefore(cursors[cursors.length - 1]);
                setCursors(cursors.slice(0, -1));
                window.scrollTo(0, 0);
              }}
              onOlder={() => {
                if (page.nextBefore === null) return;
                setCursors([...cursors, before]);
                setBefore(page.nextBefore);
                window.scrollTo(0, 0);
              }}
            />
          </div>
        )}
      </section>
    </>
  );
}

function LogRow(props: {
  readonly row: TransactionRow;
  readonly isOpen: boolean;
  readonly onToggle: () => void;
  readonly onFilterAe: (ae: string) => void;
}) {
  const { row, isOpen, onToggle, onFilterAe } = props;
  const detailId = `tx-${rowKey(row)}`.replace(/[^A-Za-z0-9_-]/g, '-');
  const detail = row.message ?? sopClassName(row.sop_class_uid) ?? row.sop_class_uid ?? '';
  return (
    <>
      <tr className={isOpen ? `row-open row-${row.status}` : `row-${row.status}`}>
        <td className="nowrap">
          <RowToggle isOpen={isOpen} controls={detailId} onToggle={onToggle}>
            <span className="mono">{formatTime(row.occurred_at)}</span>
          </RowToggle>
        </td>
        <td className="nowrap">{row.type}</td>
        <td>
          <StatusBadge status={row.status} />
        </td>
        <td>
          <StatusCode code={row.status_code} />
        </td>
        <td className="mono">{row.calling_ae}</td>
        <td className="mono">{row.called_ae}</td>
        <td className="mono nowrap">
          {/* A hand-off's copy or command has no peer; its webhook has the receiver's host. */}
          {row.remote_address === '' ? (
            <span className="muted">—</span>
          ) : (
            `${row.remote_address}:${row.remote_port}`
          )}
        </td>
        <td className="ellipsis" title={detail}>
          {detail}
        </td>
        <td className="num nowrap">{row.bytes === null ? '' : formatBytes(row.bytes)}</td>
        <td className="num nowrap">
          {row.duration_ms === null ? '' : formatDurationMs(row.duration_ms)}
        </td>
      </tr>
      {isOpen && (
        <DetailRow id={detailId} columns={10}>
          <TransactionDetails row={row} onFilterAe={onFilterAe} />
        </DetailRow>
      )}
    </>
  );
}
