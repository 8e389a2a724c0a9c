/**
 * What every hand-off action gets: the event of one completed series, with the series'
 * attributes and its stored files. Made by series completion, carried in the outbox, handed to
 * the folder copy, the webhook and the processing command.
 *
 * Layer: server; plain types, imports nothing.
 */

/** One stored instance of the series. */
export interface HandoffFile {
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  readonly transferSyntaxUid: string;
  /** Absolute path of the stored file. */
  readonly path: string;
  readonly sizeBytes: number;
}

/** The completed series: patient, study and series attributes and its files. */
export interface HandoffSeries {
  readonly patientId: string;
  readonly patientName: string | null;
  readonly studyInstanceUid: string;
  readonly studyDate: string | null;
  readonly studyDescription: string | null;
  readonly accessionNumber: string | null;
  readonly seriesInstanceUid: string;
  readonly seriesNumber: number | null;
  readonly seriesDescription: string | null;
  readonly modality: string | null;
  readonly files: readonly HandoffFile[];
}

/** One completion of a series, as handed to each action. */
export interface HandoffEvent {
  readonly type: 'series.completed' | 'series.updated';
  /** Stable across retries of the same delivery: `${seriesInstanceUid}:${completion number}`. */
  readonly idempotencyKey: string;
  /** ISO time of the completion. */
  readonly occurredAt: string;
  readonly series: HandoffSeries;
  /** The handler-folder copy, when copy_to_handler_folder is on (copy runs first). */
  readonly folder?: string;
}
