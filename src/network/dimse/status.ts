/**
 * DIMSE status codes by meaning (PS3.7 Annex C and the service classes of PS3.4), with the
 * category each falls in and a plain-words description for logs and the console.
 *
 * Layer: network/dimse. Pure data.
 */

/** Status values; the hex value and where it is defined are in each comment. */
export const Status = {
  /** 0x0000 (PS3.7 §C.1.1) */
  Success: 0x0000,
  /** 0xFF00 (PS3.4 C.4.1.1.4): matches are continuing */
  Pending: 0xff00,
  /** 0xFF01 (PS3.4 C.4.1.1.4): matches continuing, an optional key was not supported */
  PendingWarning: 0xff01,
  /** 0xFE00 (PS3.7 §C.3): terminated by a C-CANCEL */
  Cancel: 0xfe00,
  /** 0xB000 (PS3.4 B.2.3): coercion of data elements; for retrieve, sub-operations with failures */
  Warning: 0xb000,
  /** 0xB007 (PS3.4 B.2.3): data set does not match SOP class, stored anyway */
  WarningDataSetDoesNotMatch: 0xb007,
  /** 0xB006 (PS3.4 B.2.3): elements discarded */
  WarningElementsDiscarded: 0xb006,
  /** 0x0107 (PS3.7 §C.4.2): attribute list error */
  AttributeListError: 0x0107,
  /** 0x0110 (PS3.7 §C.5.3): processing failure */
  ProcessingFailure: 0x0110,
  /** 0x0111 (PS3.7 §C.5.4): duplicate SOP instance */
  DuplicateSopInstance: 0x0111,
  /** 0x0122 (PS3.7 §C.5.13): SOP class not supported */
  SopClassNotSupported: 0x0122,
  /** 0x0124 (PS3.7 §C.5.15): refused, not authorized */
  NotAuthorized: 0x0124,
  /** 0x0210 (PS3.7 §C.5.16): duplicate invocation (message ID in use) */
  DuplicateInvocation: 0x0210,
  /** 0x0211 (PS3.7 §C.5.17): unrecognized operation */
  UnrecognizedOperation: 0x0211,
  /** 0x0212 (PS3.7 §C.5.18): mistyped argument */
  MistypedArgument: 0x0212,
  /** 0xA700 (PS3.4 B.2.3): refused, out of resources */
  OutOfResources: 0xa700,
  /** 0xA701 (PS3.4 C.4.2.1.4): out of resources, unable to calculate number of matches */
  OutOfResourcesMatches: 0xa701,
  /** 0xA702 (PS3.4 C.4.2.1.4): out of resources, unable to perform sub-operations */
  OutOfResourcesSuboperations: 0xa702,
  /** 0xA801 (PS3.4 C.4.2.1.4): move destination unknown */
  MoveDestinationUnknown: 0xa801,
  /** 0xA900 (PS3.4 B.2.3, C.4.1.1.4): data set or identifier does not match SOP class */
  DataSetDoesNotMatchSopClass: 0xa900,
  /** 0xC000 (PS3.4 B.2.3): cannot understand; for C-FIND, unable to process */
  CannotUnderstand: 0xc000,
} as const;

/** The category of a status (PS3.7 Annex C). */
export type StatusCategory = 'success' | 'pending' | 'cancel' | 'warning' | 'failure';

/** Which category a status value falls in. */
export function statusCategory(status: number): StatusCategory {
  if (status === Status.Success) return 'success';
  if (status === Status.Pending || status === Status.PendingWarning) return 'pending';
  if (status === Status.Cancel) return 'cancel';
  if (
    status === 0x0001 ||
    status === Status.AttributeListError ||
    status === 0x0116 ||
    (status & 0xf000) === 0xb000
  ) {
    return 'warning';
  }
  return 'failure';
}

const MEANINGS: ReadonlyMap<number, string> = new Map([
  [Status.Success, 'success'],
  [Status.Pending, 'pending: matches are continuing'],
  [Status.PendingWarning, 'pending: an optional key was not supported'],
  [Status.Cancel, 'cancelled by C-CANCEL'],
  [Status.Warning, 'warning: coercion of data elements, or sub-operations completed with failures'],
  [Status.WarningDataSetDoesNotMatch, 'warning: data set does not match SOP class'],
  [Status.WarningElementsDiscarded, 'warning: elements discarded'],
  [Status.AttributeListError, 'warning: attribute list error'],
  [Status.ProcessingFailure, 'failure: processing failure'],
  [Status.DuplicateSopInstance, 'failure: duplicate SOP instance'],
  [Status.SopClassNotSupported, 'failure: SOP class not supported'],
  [Status.NotAuthorized, 'refused: not authorized'],
  [Status.DuplicateInvocation, 'failure: duplicate invocation'],
  [Status.UnrecognizedOperation, 'failure: unrecognized operation'],
  [Status.MistypedArgument, 'failure: mistyped argument'],
  [Status.OutOfResources, 'refused: out of resources'],
  [
    Status.OutOfResourcesMatches,
    'refused: out of resources, unable to calculate number of matches',
  ],
  [
    Status.OutOfResourcesSuboperations,
    'refused: out of resources, unable to perform sub-operations',
  ],
  [Status.MoveDestinationUnknown, 'refused: move destination unknown'],
  [Status.DataSetDoesNotMatchSopClass, 'error: data set does not match SOP class'],
  [Status.CannotUnderstand, 'error: cannot understand'],
]);

/** A plain-words meaning of a status, e.g. "refused: move destination unknown". */
export function statusMeaning(status: number): string {
  const known = MEANINGS.get(status);
  if (known !== undefined) return known;
  const hex = `0x${status.toString(16).toUpperCase().padStart(4, '0')}`;
  return `${statusCategory(status)} (${hex})`;
}

/** A status as 0xHHHH. */
export function formatStatus(status: number): string {
  return `0x${status.toString(16).toUpperCase().padStart(4, '0')}`;
}
