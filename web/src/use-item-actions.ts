/**
 * An administrator's actions on the rows of a list (retry a job, delete a rule, deactivate an
 * AE title), one at a time: the row whose action waits for a confirmation, the key of the row
 * acted on (its buttons disabled meanwhile) and the last action's outcome for a notice, its
 * success in words or the API's message.
 */

import { useState } from 'react';
import { messageOf } from './api/client.js';
import type { Outcome } from './components/notice.js';

export interface ItemActions<T, K> {
  /** The row whose action waits for a confirmation (a dialog shows it). */
  readonly asking: T | undefined;
  /** Asks for a confirmation of an action on `item`. */
  readonly ask: (item: T) => void;
  /** Closes the confirmation without acting. */
  readonly cancel: () => void;
  /** The key of the row being acted on. */
  readonly busyKey: K | undefined;
  /** The last action's outcome; set by other means too (a form's answer). */
  readonly outcome: Outcome | undefined;
  readonly setOutcome: (outcome: Outcome | undefined) => void;
  /**
   * Runs `action` on the row `key`; its answer, the success in words, is the outcome, a failure
   * the API's message. The confirmation closes when it ends.
   */
  readonly run: (key: K, action: () => Promise<string>) => Promise<void>;
}

/** Actions on rows of type `T`, told apart by keys of type `K`. */
export function useItemActions<T, K>(): ItemActions<T, K> {
  const [asking, setAsking] = useState<T | undefined>(undefined);
  const [busyKey, setBusyKey] = useState<K | undefined>(undefined);
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const run = async (key: K, action: () => Promise<string>) => {
    setBusyKey(key);
    try {
      setOutcome({ kind: 'success', text: await action() });
    } catch (failure) {
      setOutcome({ kind: 'error', text: messageOf(failure) });
    } finally {
      setBusyKey(undefined);
      setAsking(undefined);
    }
  };
  return {
    asking,
    ask: setAsking,
    cancel: () => setAsking(undefined),
    busyKey,
    outcome,
    setOutcome,
    run,
  };
}
