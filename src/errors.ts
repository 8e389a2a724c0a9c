/**
 * The registry of error codes: every error the server raises carries one of these codes, and
 * `docs/errors.md` documents each (a test keeps the two in step). Tests assert `code`, never
 * message text.
 *
 * Layer: shared by all layers; imports nothing.
 */

/** Every error code, with a one-line meaning (the long form is in docs/errors.md). */
export const ERROR_CODES = {
  ERR_PDU_UNKNOWN_TYPE: 'a PDU whose type byte is not one of the seven PS3.8 PDU types',
  ERR_PDU_TOO_LARGE:
    'a PDU longer than the limit for its type (our maximum PDU length, 1 MiB for A-ASSOCIATE)',
  ERR_PDU_MALFORMED: 'a PDU whose lengths or item structure are inconsistent',
  ERR_PDU_UNKNOWN_ITEM: 'an A-ASSOCIATE PDU holding an item type that PS3.8 does not define there',
  ERR_PDU_TRUNCATED: 'the connection closed part-way through a PDU',
  ERR_UNEXPECTED_PDU: 'a PDU that is not valid in the current association state',
  ERR_ASSOCIATION_REJECTED: 'the peer rejected our association request (A-ASSOCIATE-RJ)',
  ERR_ASSOCIATION_ABORTED: 'the association was aborted (A-ABORT received or sent)',
  ERR_CONNECTION_CLOSED: 'the transport connection closed while an operation was outstanding',
  ERR_CONNECT_FAILED: 'the TCP connection to the peer could not be opened',
  ERR_TIMEOUT: 'an ARTIM, ACSE, DIMSE or network timer expired',
  ERR_NO_ACCEPTED_CONTEXT: 'no accepted presentation context fits the message to be sent',
  ERR_DIMSE_MALFORMED: 'a DIMSE command set that cannot be decoded or lacks a required field',
  ERR_DIMSE_UNEXPECTED: 'a DIMSE message that does not fit the current exchange',
  ERR_DATASET_MALFORMED:
    'a data set whose encoding cannot be read (bad VR, overrunning length, misplaced delimiter)',
  ERR_DATASET_TOO_DEEP: 'a data set whose sequences nest deeper than we accept',
  ERR_DATASET_TRUNCATED: 'a data set that ends inside an element, item or sequence',
  ERR_INVALID_UID:
    'a UID that is not digits and dots, or longer than 64 characters, where a file path is made from it',
  ERR_STORAGE_FULL:
    'storing an instance would pass the storage limit and cleanup could not make room',
  ERR_DUPLICATE_INSTANCE:
    'an instance whose SOP Instance UID is already stored, under the reject policy',
  ERR_INVALID_ARGUMENT: 'a caller passed a value outside its allowed range',
  ERR_HANDOFF_FAILED:
    'handing a completed series to processing failed (folder copy, webhook or command)',
  ERR_TLS_CONFIG:
    'a TLS certificate, private key or CA bundle cannot be used (missing, unreadable, not matching, expired)',
  ERR_TLS_HANDSHAKE:
    'a TLS handshake with a peer failed (no or untrusted certificate, no common protocol or cipher)',
} as const;

/** One of the registered error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Structured fields carried by an error: PDU type, state, byte offset, AE titles, ... */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | undefined>>;

/** The error class of the whole server: a stable code, structured details and a cause. */
export class DicomServerError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'DicomServerError';
    this.code = code;
    this.details = details;
  }
}

/** True when `error` is a DicomServerError with the given code. */
export function hasCode(error: unknown, code: ErrorCode): boolean {
  return error instanceof DicomServerError && error.code === code;
}
