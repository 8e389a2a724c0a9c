/**
 * Start, stop and restart of the DICOM service (POST service/start|stop|restart): the answer
 * is the new status, taken at once; a refusal (409: port in use, storage missing) is kept as
 * the error to show.
 */

import { useCallback, useState } from 'react';
import { messageOf } from '../api/client.js';
import type { ServiceStatus } from '../api/types.js';
import { useSession } from '../session.js';
import { useLive } from './live-events.js';

export type ServiceAction = 'start' | 'stop' | 'restart';

export interface ServiceControl {
  /** The action on its way, if any. */
  readonly busy: ServiceAction | undefined;
  readonly error: string | undefined;
  readonly clearError: () => void;
  readonly run: (action: ServiceAction) => Promise<void>;
}

export function useServiceControl(): ServiceControl {
  const { api } = useSession();
  const { setStatus, refreshStatus } = useLive();
  const [busy, setBusy] = useState<ServiceAction | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);

  const run = useCallback(
    async (action: ServiceAction) => {
      setBusy(action);
      setError(undefined);
      try {
        setStatus(await api.post<ServiceStatus>(`service/${action}`));
      } catch (failure) {
        setError(messageOf(failure));
        refreshStatus();
      } finally {
        setBusy(undefined);
      }
    },
    [api, setStatus, refreshStatus],
  );
  const clearError = useCallback(() => setError(undefined), []);
  return { busy, error, clearError, run };
}
