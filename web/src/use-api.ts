/**
 * Reads an API path while a component is mounted: the data, the error, whether it is loading,
 * and a reload. A newer read wins over an older one still on its way.
 */

import { useCallback, useEffect, useRef, useState } from 'react';
import { messageOf } from './api/client.js';
import { useSession } from './session.js';

export interface ApiData<T> {
  readonly data: T | undefined;
  readonly error: string | undefined;
  readonly isLoading: boolean;
  readonly reload: () => void;
  /** Replaces the data (after a change whose answer is the new value). */
  readonly setData: (data: T) => void;
}

export function useApi<T>(path: string | undefined): ApiData<T> {
  const { api } = useSession();
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [isLoading, setIsLoading] = useState(path !== undefined);
  const [generation, setGeneration] = useState(0);
  const latest = useRef(0);

  // biome-ignore lint/correctness/useExhaustiveDependencies: generation asks for a reload
  useEffect(() => {
    if (path === undefined) return;
    const ticket = ++latest.current;
    setIsLoading(true);
    api.get<T>(path).then(
      (value) => {
        if (ticket !== latest.current) return;
        setData(value);
        setError(undefined);
        setIsLoading(false);
      },
      (failure: unknown) => {
        if (ticket !== latest.current) return;
        setError(messageOf(failure));
        setIsLoading(false);
      },
    );
  }, [api, path, generation]);

  const reload = useCallback(() => setGeneration((n) => n + 1), []);
  return { data, error, isLoading, reload, setData };
}
