/**
 * What every hand-off action gets: the event of one completed series, with the series'
 * attributes and its stored files (absolute paths). Made by series completion, carried in the
 * outbox, handed to the folder copy, the webhook and the processing command. The shapes are
 * the outbox's own (db/repositories/handoff-repository.ts), under the names the actions use.
 *
 * Layer: server; types only.
 */

import type {
  HandoffEventRecord,
  HandoffFileRecord,
  HandoffSeriesRecord,
} from '../../db/repositories/handoff-repository.js';

/** One stored instance of the series; `path` is absolute. */
export type HandoffFile = HandoffFileRecord;

/** The completed series: patient, study and series attributes and its files. */
export type HandoffSeries = HandoffSeriesRecord;

/**
 * One completion of a series, as handed to each action: its type, an idempotency key stable
 * across retries (`${seriesInstanceUid}:${completion number}`), the ISO time of the completion,
 * the series, and the handler-folder copy when copy_to_handler_folder is on (copy runs first).
 */
export type HandoffEvent = HandoffEventRecord;
