/**
 * What the DIMSE service handlers need from the rest of the server, as small interfaces that
 * storage, the index and the server implement (and tests fake).
 *
 * Layer: services. Declares shapes only; imports no storage or database code.
 */

import type {
  IndexMatch,
  IndexQuery,
  RetrievableInstance,
  SequenceValues,
} from '../dicom/query/model.js';
import type { TlsClientOptions } from '../network/tls.js';
import type { Settings } from '../settings/schema.js';

/** A C-STORE being received: what the command and the presentation context say. */
export interface IncomingInstance {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  readonly callingAeTitle: string;
}

/** The attributes of a received instance that the index and the file layout use, decoded. */
export interface InstanceAttributes {
  readonly patientId: string | null;
  readonly issuerOfPatientId: string | null;
  readonly patientName: string | null;
  readonly patientBirthDate: string | null;
  readonly patientSex: string | null;
  readonly patientAge: string | null;
  readonly studyInstanceUid: string;
  readonly studyDate: string | null;
  readonly studyTime: string | null;
  readonly accessionNumber: string | null;
  readonly studyId: string | null;
  readonly studyDescription: string | null;
  readonly referringPhysicianName: string | null;
  readonly seriesInstanceUid: string;
  readonly modality: string | null;
  readonly seriesNumber: number | null;
  readonly seriesDescription: string | null;
  readonly bodyPartExamined: string | null;
  readonly seriesDate: string | null;
  readonly seriesTime: string | null;
  readonly protocolName: string | null;
  readonly instanceNumber: number | null;
  /**
   * The indexed sequence keys (dicom/query/model.ts SEQUENCE_KEYS) the instance carries with
   * at least one item holding an item key's value; absent when it carries none.
   */
  readonly sequences?: readonly SequenceValues[];
}

/** What to do when an instance arrives whose SOP Instance UID is already stored. */
export type DuplicatePolicy = Settings['duplicate_policy'];

/** Where received instances go; the server implements it with storage and the index. */
export interface InstanceStore {
  readonly duplicatePolicy: DuplicatePolicy;
  /** True when an instance with this UID is stored and indexed. */
  isStored(sopInstanceUid: string): Promise<boolean>;
  /** False when the storage is full and nothing can be freed: refuse before receiving. */
  hasRoom(): Promise<boolean>;
  /** Starts a file for the instance (its file meta already written). */
  open(instance: IncomingInstance): Promise<InstanceFile>;
  /**
   * As `open`, at once, when a file is ready for it (one opened ahead); else undefined. The
   * handler can then take a data set's first fragments where they lie, before its checks have
   * answered, instead of having them copied and held while it waits.
   */
  openNow?(instance: IncomingInstance): InstanceFile | undefined;
}

/** A received instance being written. */
export interface InstanceFile {
  /**
   * Appends data set bytes, copied: `chunk` may be reused once this returns. False when the
   * caller should await `drained()` before writing more.
   */
  write(chunk: Buffer): boolean;
  drained(): Promise<void>;
  /**
   * Makes the file durable under its final name and indexes it; resolves only when both are
   * done. Rejects with ERR_STORAGE_FULL, ERR_INVALID_UID, or an I/O error.
   */
  commit(attributes: InstanceAttributes): Promise<{
    readonly filePath: string;
    readonly fileSize: number;
    /** Another association stored this UID meanwhile and the policy keeps the first: not stored. */
    readonly isDuplicateKept?: boolean;
  }>;
  /** Leaves nothing behind. */
  abort(): Promise<void>;
}

/** The index as the query and retrieve services see it. */
export interface QuerySource {
  /**
   * The matches of a query, in a stable order (by level, then by the order rows were indexed),
   * streamed: the caller may stop early (C-CANCEL, the match limit), and the signal aborts it.
   */
  find(query: IndexQuery, signal: AbortSignal): AsyncIterable<IndexMatch>;
  /**
   * The number of matches of a query, counted no further than `limit` (a query with more gives
   * `limit`); the query's own limit is ignored. C-FIND checks its match limit with it before
   * sending any match.
   */
  count(query: IndexQuery, limit: number, signal: AbortSignal): Promise<number>;
  /**
   * Every instance under the matches of a query (a C-MOVE or C-GET), ordered by study, series
   * and instance number, with absolute file paths; an instance whose index row gives no usable
   * path comes with `unavailable` saying why (its sub-operation fails, the others go on).
   */
  retrievable(query: IndexQuery, signal: AbortSignal): Promise<RetrievableInstance[]>;
}

/** Where a C-MOVE may send: the AE titles set up as move destinations. */
export interface MoveDestinations {
  /**
   * Host and port of a known, active move destination, and the TLS options when it is reached
   * over TLS; undefined when there is none.
   */
  lookup(
    aeTitle: string,
  ): { readonly host: string; readonly port: number; readonly tls?: TlsClientOptions } | undefined;
}
