/** The routing page's queue filters, as kept in the address (so a view can be bookmarked). */

import { queryString } from '../api/client.js';
import { FORWARD_STATES, type ForwardState } from '../api/types.js';
import { pathOf } from '../router.js';

/** The queue's filters ('' for all). */
export interface QueueFilters {
  readonly state: ForwardState | '';
  readonly destination: string;
}

/** The filters in an address's query string. */
export function queueFiltersOf(search: string): QueueFilters {
  const params = new URLSearchParams(search);
  const state = params.get('state') ?? '';
  return {
    state: (FORWARD_STATES as readonly string[]).includes(state) ? (state as ForwardState) : '',
    destination: params.get('destination') ?? '',
  };
}

/** The page's address with these filters. */
export function routingPath(filters: QueueFilters): string {
  return `${pathOf('routing')}${queryString({
    state: filters.state,
    destination: filters.destination,
  })}`;
}
