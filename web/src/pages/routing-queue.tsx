/**
 * The routing page's forward queue: one job per instance and destination, newest first, with a
 * count per state, filtered by state and destination (kept in the address); each with its
 * instance, destination, rule, state, attempts, next attempt and last error, opening to show
 * every field (routing-job-row.tsx). An administrator retries a failed or dead job after a confirmation; viewers see
 * no buttons. Jobs move live with the `routing` events.
 */

import { useEffect, useRef, useState } from 'react';
import { messageOf, queryString } from '../api/client.js';
import {
  FORWARD_STATES,
  type ForwardJob,
  type ForwardJobPage,
  type ForwardState,
} from '../api/types.js';
import { ConfirmDialog } from '../components/dialog.js';
import { FORWARD_STATE_MEANINGS } from '../components/forward-state.js';
import { Notice } from '../components/notice.js';
import { Pager } from '../components/pager.js';
import { formatCount } from '../format.js';
import { useLiveRouting } from '../live/live-events.js';
import { useSession } from '../session.js';
import { useCoalesced, usePagedList } from '../use-paged-list.js';
import { LIVE_READ_DELAY_MS, useReloadOnReconnect } from './processing-view.js';
import { ForwardJobRow } from './routing-job-row.js';
import type { QueueFilters } from './routing-view.js';

const QUEUE_PAGE_SIZE = 50;

type Counts = Readonly<Record<ForwardState | 'all', number>>;

/** The number of jobs in each state for a destination ('' for all; one read each), and a reload. */
function useQueueCounts(destination: string): { counts: Counts | undefined; reload: () => void } {
  const { api } = useSession();
  const [counts, setCounts] = useState<Counts | undefined>(undefined);
  const [generation, setGeneration] = useState(0);
  const latest = useRef(0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: generation asks for a reload
  useEffect(() => {
    const ticket = ++latest.current;
    const states = ['all', ...FORWARD_STATES] as const;
    Promise.all(
      states.map((state) =>
        api
          .get<ForwardJobPage>(
            `routing/queue${queryString({ state: state === 'all' ? '' : state, destination, limit: 1 })}`,
          )
          .then((page) => [state, page.total] as const),
      ),
    ).then(
      (totals) => {
        if (ticket === latest.current) setCounts(Object.fromEntries(totals) as Counts);
      },
      // The counts are a help: the list says what went wrong.
      () => undefined,
    );
  }, [api, destination, generation]);
  return { counts, reload: () => setGeneration((n) => n + 1) };
}

export function QueuePanel(props: {
  readonly filters: QueueFilters;
  readonly update: (change: Partial<QueueFilters>) => void;
  /** The destinations to filter by. */
  readonly destinations: readonly string[];
}) {
  const { filters, update, destinations } = props;
  const { api, isAdmin } = useSession();
  const [expanded, setExpanded] = useState<ReadonlySet<number>>(new Set());
  const [retrying, setRetrying] = useState<ForwardJob | undefined>(undefined);
  const [isBusy, setIsBusy] = useState(false);
  const [notice, setNotice] = useState<{ kind: 'success' | 'error'; text: string }>();

  const list = usePagedList<ForwardJob, ForwardJobPage>(
    `routing/queue${queryString({ state: filters.state, destination: filters.destination })}`,
    QUEUE_PAGE_SIZE,
  );
  const { counts, reload: reloadCounts } = useQueueCounts(filters.destination);
  const reloadAll = () => {
    list.reload();
    reloadCounts();
  };
  const reloadSoon = useCoalesced(reloadAll, LIVE_READ_DELAY_MS);
  useReloadOnReconnect(reloadAll);
  const merge = (job: ForwardJob) => list.updateItems((item) => (item.id === job.id ? job : item));
  useLiveRouting((change) => {
    if (change.type !== 'job') return;
    merge(change.job);
    reloadSoon();
  });

  const retry = async (job: ForwardJob) => {
    setIsBusy(true);
    try {
      merge(await api.post<ForwardJob>(`routing/queue/${job.id}/retry`));
      setNotice({
        kind: 'success',
        text: `Forward job ${job.id} to ${job.destination} is pending again and is sent now.`,
      });
      reloadSoon();
    } catch (failure) {
      setNotice({ kind: 'error', text: messageOf(failure) });
    } finally {
      setIsBusy(false);
      setRetrying(undefined);
    }
  };

  const toggle = (id: number) =>
    setExpanded((current) => {
      const next = new Set(current);
      if (!next.delete(id)) next.add(id);
      return next;
    });

  const { page } = list;
  const columns = isAdmin ? 10 : 9;
  const isFiltered = filters.state !== '' || filters.destination !== '';
  const destinationChoices =
    filters.destination === '' || destinations.includes(filters.destination)
      ? destinations
      : [filters.destination, ...destinations];
  return (
    <section className="card" id="queue" aria-labelledby="queue-title" aria-busy={list.isLoading}>
      <div className="card-head">
        <h2 id="queue-title">
          {page === undefined || page.total === 0
            ? 'Forward queue'
            : `Forward queue ${formatCount(list.firstIndex + 1)}–${formatCount(list.firstIndex + page.items.length)} of ${formatCount(page.total)}`}
        </h2>
        <Pager
          hasNewer={!list.isFirstPage}
          hasOlder={list.hasOlder}
          isLoading={list.isLoading}
          onNewer={list.newer}
          onOlder={list.older}
        />
      </div>
      <div className="filters filters-inline queue-filters">
        <div className="filter">
          <span className="filter-label" aria-hidden="true">
            State
          </span>
          <StateTabs
            current={filters.state}
            counts={counts}
            onPick={(state) => update({ state })}
          />
        </div>
        <div className="filter">
          <label htmlFor="queue-destination">Destination</label>
          <select
            id="queue-destination"
            className="mono"
            value={filters.destination}
            onChange={(event) => update({ destination: event.target.value })}
          >
            <option value="">All destinations</option>
            {destinationChoices.map((title) => (
              <option key={title} value={title}>
                {title}
              </option>
            ))}
          </select>
        </div>
        {isFiltered && (
          <div className="filter filter-actions">
            <button
              type="button"
              className="button button-ghost"
              onClick={() => update({ state: '', destination: '' })}
            >
              Clear filters
            </button>
          </div>
        )}
      </div>
      {notice !== undefined && (
        <Notice kind={notice.kind} onClose={() => setNotice(undefined)}>
          {notice.text}
        </Notice>
      )}
      {list.error !== undefined && <Notice kind="error">{list.error}</Notice>}
      {page === undefined && list.error === undefined && <p className="muted">Loading…</p>}
      {page !== undefined && page.items.length === 0 && (
        <p className="empty">
          {isFiltered ? 'No forward job matches these filters.' : 'Nothing has been forwarded yet.'}
        </p>
      )}
      {page !== undefined && page.items.length > 0 && (
        <div className="table-wrap">
          <table className="table table-fixed table-jobs table-forward">
            <colgroup>
              <col className="col-job" />
              <col />
              <col className="col-destination" />
              <col className="col-rule" />
              <col className="col-job-state" />
              <col className="col-attempts" />
              <col className="col-next" />
              <col className="col-error" />
              <col className="col-updated" />
              {isAdmin && <col className="col-actions" />}
            </colgroup>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Instance</th>
                <th scope="col">Destination</th>
                <th scope="col">Rule</th>
                <th scope="col">State</th>
                <th scope="col" className="num">
                  Attempts
                </th>
                <th scope="col">Next attempt</th>
                <th scope="col">Last error</th>
                <th scope="col">Updated</th>
                {isAdmin && (
                  <th scope="col" className="actions-col">
                    Actions
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {page.items.map((job) => (
                <ForwardJobRow
                  key={job.id}
                  job={job}
                  columns={columns}
                  isOpen={expanded.has(job.id)}
                  isAdmin={isAdmin}
                  onToggle={() => toggle(job.id)}
                  onRetry={() => setRetrying(job)}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {retrying !== undefined && (
        <ConfirmDialog
          title={`Retry forward job ${retrying.id}?`}
          confirmLabel="Retry"
          isBusy={isBusy}
          onConfirm={() => void retry(retrying)}
          onCancel={() => setRetrying(undefined)}
        >
          <p>
            Sending instance <span className="mono break">{retrying.sopInstanceUid}</span> to{' '}
            <strong className="mono">{retrying.destination}</strong>{' '}
            {retrying.state === 'dead'
              ? `gave up after ${retrying.attempts} ${retrying.attempts === 1 ? 'attempt' : 'attempts'}`
              : `failed ${retrying.attempts === 1 ? 'once' : `${retrying.attempts} times`}`}
            . Retry sends it now, its attempts counted from zero.
          </p>
          {retrying.lastError !== null && (
            <p className="muted small">Last error: {retrying.lastError}</p>
          )}
        </ConfirmDialog>
      )}
    </section>
  );
}

function StateTabs(props: {
  readonly current: ForwardState | '';
  readonly counts: Counts | undefined;
  readonly onPick: (state: ForwardState | '') => void;
}) {
  const { current, counts, onPick } = props;
  const tabs = ['all', ...FORWARD_STATES] as const;
  return (
    <fieldset className="segmented" aria-label="Forward jobs by state">
      {tabs.map((key) => {
        const value = key === 'all' ? '' : key;
        const isCurrent = current === value;
        const count = counts?.[key];
        const isBad = (key === 'failed' || key === 'dead') && count !== undefined && count > 0;
        return (
          <button
            key={key}
            type="button"
            className={isCurrent ? 'segment segment-current' : 'segment'}
            aria-pressed={isCurrent}
            onClick={() => onPick(value)}
            title={key === 'all' ? undefined : FORWARD_STATE_MEANINGS[key].meaning}
          >
            {key === 'all' ? 'All' : FORWARD_STATE_MEANINGS[key].label}
            {count !== undefined && (
              <span className={isBad ? 'segment-count segment-bad' : 'segment-count'}>
                {formatCount(count)}
              </span>
            )}
          </button>
        );
      })}
    </fieldset>
  );
}
