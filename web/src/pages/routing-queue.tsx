/**
 * The routing page's forward queue: one job per instance and destination, newest first, with a
 * count per state, filtered by state and destination (kept in the address); each with its
 * instance, destination, rule, state, attempts, next attempt and last error, opening to show
 * every field (routing-job-row.tsx). An administrator retries a failed or dead job after a
 * confirmation; viewers see no buttons. Jobs move live with the `routing` events.
 */

import { queryString } from '../api/client.js';
import {
  FORWARD_STATES,
  type ForwardJob,
  type ForwardJobPage,
  type ForwardState,
} from '../api/types.js';
import { ConfirmDialog } from '../components/dialog.js';
import { useOpenRows } from '../components/expandable-row.js';
import { FilterSelect } from '../components/filter-select.js';
import { FORWARD_STATE_MEANINGS } from '../components/forward-state.js';
import { FailedJobExplanation, type JobColumn, JobTableHead } from '../components/job-table.js';
import { Notice, OutcomeNotice } from '../components/notice.js';
import { ListPager } from '../components/pager.js';
import { StateTabs, useStateCounts } from '../components/state-tabs.js';
import { formatRange } from '../format.js';
import { useLiveRouting } from '../live/live-events.js';
import { useSession } from '../session.js';
import { useItemActions } from '../use-item-actions.js';
import { useCoalesced, usePagedList } from '../use-paged-list.js';
import { LIVE_READ_DELAY_MS, useReloadOnReconnect } from './processing-view.js';
import { ForwardJobRow } from './routing-job-row.js';
import type { QueueFilters } from './routing-view.js';

const QUEUE_PAGE_SIZE = 50;

/** The table's own columns, between Job and State. */
const QUEUE_COLUMNS: readonly JobColumn[] = [
  { heading: 'Instance' },
  { heading: 'Destination', widthClass: 'col-destination' },
  { heading: 'Rule', widthClass: 'col-rule' },
];

/** The queue's path for a state ('' for all) and a destination ('' for all). */
const queuePath = (state: ForwardState | '', destination: string) =>
  `routing/queue${queryString({ state, destination })}`;

export function QueuePanel(props: {
  readonly filters: QueueFilters;
  readonly update: (change: Partial<QueueFilters>) => void;
  /** The destinations to filter by. */
  readonly destinations: readonly string[];
}) {
  const { filters, update, destinations } = props;
  const { api, isAdmin } = useSession();
  const openRows = useOpenRows<number>();
  const actions = useItemActions<ForwardJob, number>();

  const list = usePagedList<ForwardJob, ForwardJobPage>(
    queuePath(filters.state, filters.destination),
    QUEUE_PAGE_SIZE,
  );
  const { counts, reload: reloadCounts } = useStateCounts(FORWARD_STATES, (state) =>
    queuePath(state, filters.destination),
  );
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

  const retry = (job: ForwardJob) =>
    actions.run(job.id, async () => {
      merge(await api.post<ForwardJob>(`routing/queue/${job.id}/retry`));
      reloadSoon();
      return `Forward job ${job.id} to ${job.destination} is pending again and is sent now.`;
    });

  const { page } = list;
  const retrying = actions.asking;
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
            : `Forward queue ${formatRange(list.firstIndex, page.items.length, page.total)}`}
        </h2>
        <ListPager list={list} />
      </div>
      <div className="filters filters-inline queue-filters">
        <div className="filter">
          <span className="filter-label" aria-hidden="true">
            State
          </span>
          <StateTabs
            label="Forward jobs by state"
            states={FORWARD_STATES}
            meanings={FORWARD_STATE_MEANINGS}
            badStates={['failed', 'dead']}
            current={filters.state}
            counts={counts}
            onPick={(state) => update({ state })}
          />
        </div>
        <FilterSelect
          id="queue-destination"
          label="Destination"
          className="mono"
          value={filters.destination}
          allLabel="All destinations"
          options={destinationChoices}
          onChange={(destination) => update({ destination })}
        />
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
      <OutcomeNotice outcome={actions.outcome} onClose={() => actions.setOutcome(undefined)} />
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
            <JobTableHead columns={QUEUE_COLUMNS} isAdmin={isAdmin} />
            <tbody>
              {page.items.map((job) => (
                <ForwardJobRow
                  key={job.id}
                  job={job}
                  columns={columns}
                  isOpen={openRows.isOpen(job.id)}
                  isAdmin={isAdmin}
                  onToggle={() => openRows.toggle(job.id)}
                  onRetry={() => actions.ask(job)}
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
          isBusy={actions.busyKey === retrying.id}
          onConfirm={() => void retry(retrying)}
          onCancel={actions.cancel}
        >
          <FailedJobExplanation
            subject={
              <>
                Sending instance <span className="mono break">{retrying.sopInstanceUid}</span> to{' '}
                <strong className="mono">{retrying.destination}</strong>
              </>
            }
            job={retrying}
            retryDoes="Retry sends it now, its attempts counted from zero."
          />
        </ConfirmDialog>
      )}
    </section>
  );
}
