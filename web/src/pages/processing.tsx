/**
 * The hand-off to processing: which hand-off actions are on; the series and their hand-off
 * states (receiving, complete, handed off, acknowledged, failed) with a count per state; and
 * the jobs (processing-queue items and deliveries, see processing-jobs.tsx). Everything moves
 * live with the `series` and `handoff` events; the filters are kept in the address so a view
 * can be bookmarked; a series' link shows its jobs.
 */

import { useMemo } from 'react';
import { queryString } from '../api/client.js';
import {
  SERIES_STATES,
  type SeriesPage,
  type SeriesState,
  type SeriesStatus,
  type SettingsDocument,
} from '../api/types.js';
import { SERIES_STATE_MEANINGS, SeriesStateBadge } from '../components/handoff-state.js';
import { Notice } from '../components/notice.js';
import { ListPager } from '../components/pager.js';
import { StateTabs, useStateCounts } from '../components/state-tabs.js';
import { formatCount, formatRange, formatShortTime, formatTime } from '../format.js';
import { useLiveHandoff } from '../live/live-events.js';
import { Link, navigate, pathOf, useLocation } from '../router.js';
import { useApi } from '../use-api.js';
import { useCoalesced, usePagedList } from '../use-paged-list.js';
import { JobsPanel } from './processing-jobs.js';
import {
  filtersOf,
  LIVE_READ_DELAY_MS,
  type ProcessingFilters,
  processingPath,
  useReloadOnReconnect,
} from './processing-view.js';

const SERIES_PAGE_SIZE = 20;

export function ProcessingPage() {
  const { search } = useLocation();
  const filters = useMemo(() => filtersOf(search), [search]);
  const settings = useApi<SettingsDocument>('settings/');
  const update = (change: Partial<ProcessingFilters>) =>
    navigate(processingPath({ ...filters, ...change }), { isReplace: true });
  return (
    <>
      <div className="page-head">
        <h1>Processing</h1>
      </div>
      <p className="lede">
        A series is complete once none of its instances has arrived for a while; it is then handed
        to the processing pipeline by the actions that are on (
        <Link to={`${pathOf('config')}#group-handoff`}>Configuration → Hand-off to processing</Link>
        ). Failed deliveries are tried again with growing pauses, and given up (dead) after their
        last attempt.
      </p>
      {settings.data !== undefined && <HandoffActions settings={settings.data.effective} />}
      <SeriesPanel filters={filters} update={update} />
      <JobsPanel filters={filters} update={update} />
    </>
  );
}

/** The hand-off actions in effect, and when a series is complete. */
function HandoffActions({ settings }: { readonly settings: SettingsDocument['effective'] }) {
  const webhooks = settings.webhook_urls.split(',').filter((url) => url.trim() !== '').length;
  const isTriggering = settings.trigger_processing_chain;
  const actions = [
    { label: 'Processing queue', isOn: settings.auto_import_to_handler },
    {
      label: 'Folder copy',
      isOn: settings.copy_to_handler_folder && settings.handler_folder_path !== '',
      title: settings.handler_folder_path,
    },
    {
      label: webhooks > 1 ? `${webhooks} webhooks` : 'Webhook',
      isOn: isTriggering && webhooks > 0,
    },
    { label: 'Command', isOn: isTriggering && settings.processing_command !== '' },
  ];
  const isNothingOn = actions.every((action) => !action.isOn);
  return (
    <section className="handoff-actions" aria-label="Hand-off actions">
      <span className="muted small">Hand-off:</span>
      <div className="chips">
        {actions.map((action) => (
          <span
            key={action.label}
            className={action.isOn ? 'chip chip-on' : 'chip chip-off'}
            title={action.title}
          >
            <span aria-hidden="true">{action.isOn ? '✓' : '✕'}</span> {action.label}
            <span className="visually-hidden">{action.isOn ? ': on' : ': off'}</span>
          </span>
        ))}
      </div>
      <span className="muted small">
        complete after {formatCount(settings.series_completion_seconds)} s without an instance
        {settings.complete_series_on_release && ', or when the association is released'}
      </span>
      {isNothingOn && (
        <span className="small text-warn">
          No action is on: completed series are not handed to anything.
        </span>
      )}
    </section>
  );
}

/** The series list's path for a state ('' for all). */
const seriesPath = (state: SeriesState | '') => `series/${queryString({ state })}`;

function SeriesPanel(props: {
  readonly filters: ProcessingFilters;
  readonly update: (change: Partial<ProcessingFilters>) => void;
}) {
  const { filters, update } = props;
  const list = usePagedList<SeriesStatus, SeriesPage>(
    seriesPath(filters.seriesState),
    SERIES_PAGE_SIZE,
  );
  const { counts, reload: reloadCounts } = useStateCounts(SERIES_STATES, seriesPath);
  const reloadAll = () => {
    list.reload();
    reloadCounts();
  };
  const reloadSoon = useCoalesced(reloadAll, LIVE_READ_DELAY_MS);
  useReloadOnReconnect(reloadAll);
  useLiveHandoff((change) => {
    if (change.type !== 'series') return;
    const { seriesInstanceUid, state, completion, lastError, isSending } = change.series;
    list.updateItems((item) =>
      item.seriesInstanceUid === seriesInstanceUid
        ? { ...item, state, completion, lastError, isSending }
        : item,
    );
    reloadSoon();
  });

  const { page } = list;
  return (
    <section className="card" aria-labelledby="series-title" aria-busy={list.isLoading}>
      <div className="card-head">
        <h2 id="series-title">Series</h2>
        <StateTabs
          label="Series by state"
          states={SERIES_STATES}
          meanings={SERIES_STATE_MEANINGS}
          badStates={['failed']}
          current={filters.seriesState}
          counts={counts}
          onPick={(seriesState) => update({ seriesState })}
        />
      </div>
      {list.error !== undefined && <Notice kind="error">{list.error}</Notice>}
      {page === undefined && list.error === undefined && <p className="muted">Loading…</p>}
      {page !== undefined && page.items.length === 0 && (
        <p className="empty">
          {filters.seriesState === ''
            ? 'No series received yet.'
            : `No series is ${SERIES_STATE_MEANINGS[filters.seriesState].label.toLowerCase()}.`}
        </p>
      )}
      {page !== undefined && page.items.length > 0 && (
        <>
          <div className="table-wrap">
            <table className="table table-stack table-series">
              <thead>
                <tr>
                  <th scope="col">Series</th>
                  <th scope="col">Patient ID</th>
                  <th scope="col">State</th>
                  <th scope="col" className="num">
                    Completions
                  </th>
                  <th scope="col">Last instance</th>
                  <th scope="col">Completed</th>
                  <th scope="col">Problem</th>
                </tr>
              </thead>
              <tbody>
                {page.items.map((series) => (
                  <SeriesRow
                    key={series.seriesInstanceUid}
                    series={series}
                    filters={filters}
                    isSelected={filters.series === series.seriesInstanceUid}
                  />
                ))}
              </tbody>
            </table>
          </div>
          <div className="card-foot card-foot-spread">
            <span className="muted small">
              {formatRange(list.firstIndex, page.items.length, page.total)}
            </span>
            <ListPager list={list} />
          </div>
        </>
      )}
    </section>
  );
}

function SeriesRow(props: {
  readonly series: SeriesStatus;
  readonly filters: ProcessingFilters;
  readonly isSelected: boolean;
}) {
  const { series, filters, isSelected } = props;
  const uid = series.seriesInstanceUid;
  return (
    <tr className={isSelected ? 'row-open' : series.state === 'failed' ? 'row-failure' : undefined}>
      <td className="series-cell" data-label="Series">
        <Link
          to={`${processingPath({ ...filters, series: isSelected ? '' : uid })}#jobs`}
          className="mono"
          title={isSelected ? 'Show the jobs of every series' : `Show the jobs of series ${uid}`}
        >
          {uid}
        </Link>
        <div className="muted small mono" title={`Study ${series.studyInstanceUid}`}>
          study {series.studyInstanceUid}
        </div>
      </td>
      <td className="mono" data-label="Patient ID">
        {series.patientId === '' ? <span className="muted">—</span> : series.patientId}
      </td>
      <td className="nowrap" data-label="State">
        <SeriesStateBadge series={series} />
      </td>
      <td className="num" data-label="Completions">
        {series.completion === 0 ? <span className="muted">—</span> : series.completion}
      </td>
      <td className="nowrap" data-label="Last instance" title={formatTime(series.lastReceivedAt)}>
        {formatShortTime(series.lastReceivedAt)}
      </td>
      <td className="nowrap" data-label="Completed" title={formatTime(series.completedAt)}>
        {series.completedAt === null ? (
          <span className="muted">—</span>
        ) : (
          formatShortTime(series.completedAt)
        )}
      </td>
      <td className="ellipsis text-bad" data-label="Problem" title={series.lastError ?? undefined}>
        {series.lastError ?? ''}
      </td>
    </tr>
  );
}
