/**
 * Newer and Older buttons for a list read a page at a time, newest first (the API's
 * `nextBefore`); for a list read with usePagedList, wired to it.
 */

import type { ListPage, PagedList } from '../use-paged-list.js';

export function Pager(props: {
  readonly hasNewer: boolean;
  readonly hasOlder: boolean;
  readonly isLoading: boolean;
  readonly onNewer: () => void;
  readonly onOlder: () => void;
}) {
  const { hasNewer, hasOlder, isLoading, onNewer, onOlder } = props;
  return (
    <div className="button-row button-row-tight">
      <button
        type="button"
        className="button button-small"
        disabled={!hasNewer || isLoading}
        onClick={onNewer}
      >
        ← Newer
      </button>
      <button
        type="button"
        className="button button-small"
        disabled={!hasOlder || isLoading}
        onClick={onOlder}
      >
        Older →
      </button>
    </div>
  );
}

/** Newer and Older for a list read with usePagedList. */
export function ListPager<T, P extends ListPage<T>>({ list }: { readonly list: PagedList<T, P> }) {
  return (
    <Pager
      hasNewer={!list.isFirstPage}
      hasOlder={list.hasOlder}
      isLoading={list.isLoading}
      onNewer={list.newer}
      onOlder={list.older}
    />
  );
}
