/**
 * Reads a list from the API a page at a time, newest first (the API's `limit`, `before` and
 * `nextBefore`): the page, Newer and Older, a reload of the page shown (for live views), and
 * changes to its rows in place (a live event, an action's answer). A new path (other filters)
 * starts again at the first page; a newer read wins over an older one still on its way.
 */

import { useCallback, useEffect, useRef, useState } from 'react';
import { messageOf } from './api/client.js';
import { useSession } from './session.js';

/** A page as the list routes answer it. */
export interface ListPage<T> {
  readonly items: T[];
  readonly nextBefore: number | null;
  readonly total: number;
}

export interface PagedList<T, P extends ListPage<T>> {
  readonly page: P | undefined;
  readonly error: string | undefined;
  readonly isLoading: boolean;
  /** The position of the page's first row in the whole list (0 on the first page). */
  readonly firstIndex: number;
  readonly isFirstPage: boolean;
  readonly hasOlder: boolean;
  readonly newer: () => void;
  readonly older: () => void;
  /** Reads the page shown again (the first page: its newest rows). */
  readonly reload: () => void;
  /** Changes the rows shown in place (`update` answers the row, changed or not). */
  readonly updateItems: (update: (item: T) => T) => void;
}

/** The list at `path` (its query, without limit and before), `limit` rows a page. */
export function usePagedList<T, P extends ListPage<T> = ListPage<T>>(
  path: string,
  limit: number,
): PagedList<T, P> {
  const { api } = useSession();
  // Cursors of the pages before the current one (the first page has none).
  const [cursors, setCursors] = useState<readonly (number | undefined)[]>([]);
  const [before, setBefore] = useState<number | undefined>(undefined);
  const [page, setPage] = useState<P | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [isLoading, setIsLoading] = useState(true);
  const [generation, setGeneration] = useState(0);
  const [readPath, setReadPath] = useState(path);
  const latest = useRef(0);

  // Other filters: back to the first page (before this render's read starts).
  if (readPath !== path) {
    setReadPath(path);
    setCursors([]);
    setBefore(undefined);
  }

  // biome-ignore lint/correctness/useExhaustiveDependencies: generation asks for a reload
  useEffect(() => {
    const ticket = ++latest.current;
    setIsLoading(true);
    const paging = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined) paging.set('before', String(before));
    const separator = readPath.includes('?') ? '&' : '?';
    api.get<P>(`${readPath}${separator}${paging.toString()}`).then(
      (result) => {
        if (ticket !== latest.current) return;
        setPage(result);
        setError(undefined);
        setIsLoading(false);
      },
      (failure: unknown) => {
        if (ticket !== latest.current) return;
        setError(messageOf(failure));
        setIsLoading(false);
      },
    );
  }, [api, readPath, limit, before, generation]);

  const newer = useCallback(() => {
    setBefore(cursors[cursors.length - 1]);
    setCursors(cursors.slice(0, -1));
  }, [cursors]);

  const older = useCallback(() => {
    if (page === undefined || page.nextBefore === null) return;
    setCursors([...cursors, before]);
    setBefore(page.nextBefore);
  }, [cursors, before, page]);

  const reload = useCallback(() => setGeneration((n) => n + 1), []);

  const updateItems = useCallback((update: (item: T) => T) => {
    setPage((current) =>
      current === undefined ? current : { ...current, items: current.items.map(update) },
    );
  }, []);

  return {
    page,
    error,
    isLoading,
    firstIndex: cursors.length * limit,
    isFirstPage: cursors.length === 0,
    hasOlder: page !== undefined && page.nextBefore !== null,
    newer,
    older,
    reload,
    updateItems,
  };
}

/**
 * A function that runs `action` once, `delayMs` after its first call since the last run: a
 * burst of live events becomes one read.
 */
export function useCoalesced(action: () => void, delayMs: number): () => void {
  const latest = useRef(action);
  latest.current = action;
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current !== undefined) return;
    timer.current = window.setTimeout(() => {
      timer.current = undefined;
      latest.current();
    }, delayMs);
  }, [delayMs]);
}
