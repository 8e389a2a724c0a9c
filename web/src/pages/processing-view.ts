/**
 * What the processing page's parts share: its filters as kept in the address (so a view can be
 * bookmarked), and how its lists follow the live events (a burst read once, everything read
 * again after the stream was lost).
 */

import { useEffect, useRef } from 'react';
import { queryString } from '../api/client.js';
import { SERIES_STATES, type SeriesState } from '../api/types.js';
import { useLive } from '../live/live-events.js';
import { pathOf } from '../router.js';

/** Live events within this time lead to one read of a list. */
export const LIVE_READ_DELAY_MS = 500;

/** The page's filters. */
export interface ProcessingFilters {
  /** The series list's state ('' for all). */
  readonly seriesState: SeriesState | '';
  /** The jobs' state, kind and series ('' for all). */
  readonly state: string;
  readonly kind: string;
  readonly series: string;
}

/** The filters in an address's query string. */
export function filtersOf(search: string): ProcessingFilters {
  const params = new URLSearchParams(search);
  const seriesState = params.get('series-state') ?? '';
  return {
    seriesState: (SERIES_STATES as readonly string[]).includes(seriesState)
      ? (seriesState as SeriesState)
      : '',
    state: params.get('state') ?? '',
    kind: params.get('kind') ?? '',
    series: params.get('series') ?? '',
  };
}

/** The page's address with these filters. */
export function processingPath(filters: ProcessingFilters): string {
  return `${pathOf('processing')}${queryString({
    'series-state': filters.seriesState,
    state: filters.state,
    kind: filters.kind,
    series: filters.series,
  })}`;
}

/** Calls `reload` when the live stream opens again after a loss (events may have been missed). */
export function useReloadOnReconnect(reload: () => void): void {
  const { connection } = useLive();
  const wasOpen = useRef(connection === 'open');
  const latest = useRef(reload);
  latest.current = reload;
  useEffect(() => {
    if (connection === 'open' && !wasOpen.current) latest.current();
    wasOpen.current = connection === 'open';
  }, [connection]);
}
