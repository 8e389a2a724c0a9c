/**
 * DICOM in plain words for the console: what a status code, an association rejection or an
 * abort means and what an administrator can do about it, and readable names of SOP classes and
 * transfer syntaxes. The meanings themselves are the server's (src/network/dimse/status.ts, the
 * texts the transaction log is written with); the advice is the console's.
 */

import { type STORAGE_GROUPS, storageSopClassName } from '../../src/dicom/sop-classes.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { formatStatus, Status, statusMeaning } from '../../src/network/dimse/status.js';

export { formatStatus };

/** What to do about a status, where the console can tell. */
const STATUS_ADVICE: ReadonlyMap<number, string> = new Map([
  [
    Status.OutOfResources,
    'Out of resources: the storage is full or its limit is reached. Raise the maximum storage ' +
      'size or switch cleanup on (Configuration → Storage), or free disk space.',
  ],
  [
    Status.OutOfResourcesMatches,
    'Out of resources: the query could not be answered. Narrow the query, or see the server log.',
  ],
  [
    Status.OutOfResourcesSuboperations,
    'Out of resources: the retrieve could not start its sub-operations. See the server log.',
  ],
  [
    Status.NotAuthorized,
    'Refused, not authorized: the calling AE title may not use this service. Give it the ' +
      'permission under AE titles (store, query, retrieve).',
  ],
  [
    Status.MoveDestinationUnknown,
    'Move destination unknown: the destination AE title of the C-MOVE is not known. Add it ' +
      'under AE titles with its host and port, marked as a move destination.',
  ],
  [
    Status.CannotUnderstand,
    'Cannot understand: the data set or query could not be read. The sender sent something ' +
      'malformed or in a transfer syntax it did not announce.',
  ],
  [
    Status.DataSetDoesNotMatchSopClass,
    'Data set does not match SOP class: the instance is not what its SOP class says it is. ' +
      'Check the sending device.',
  ],
  [
    Status.SopClassNotSupported,
    'SOP class not supported: switch its group on under Configuration → SOP classes & ' +
      'transfer syntaxes, or the matching DIMSE service.',
  ],
  [
    Status.DuplicateSopInstance,
    'Duplicate SOP instance: this instance is already stored and the duplicate policy is ' +
      '"reject" (Configuration → Storage).',
  ],
  [
    Status.ProcessingFailure,
    'Processing failure: the server could not complete the operation (a disk or database ' +
      'error). The message and the server log say more.',
  ],
  [Status.Cancel, 'Cancelled: the peer sent a C-CANCEL.'],
  [
    Status.WarningDataSetDoesNotMatch,
    'Warning: the data set does not match its SOP class; it was stored anyway.',
  ],
  [Status.WarningElementsDiscarded, 'Warning: some data elements were discarded.'],
  [
    Status.Warning,
    'Warning: data elements were coerced or, for a retrieve, some sub-operations failed.',
  ],
]);

/** A status code in plain words: its meaning and, where known, what to do. */
export function describeStatus(code: number): { meaning: string; advice?: string } {
  const advice = STATUS_ADVICE.get(code);
  return { meaning: statusMeaning(code), ...(advice !== undefined && { advice }) };
}

/**
 * Reasons of A-ASSOCIATE-RJ and A-ABORT (PS3.8 Tables 9-21, 9-26) as the transaction log names
 * them (src/network/association/reasons.ts), and the access-control refusals of our own.
 */
const REASON_ADVICE: readonly (readonly [RegExp, string])[] = [
  [
    /is not in the allowed list/,
    'The calling AE title is not in the list of allowed AE titles. Add it under AE titles ' +
      '(the "recently seen" panel has an Add button), or switch calling AE validation off.',
  ],
  [/is inactive/, 'The calling AE title is listed but inactive. Activate it under AE titles.'],
  [
    /is expected from/,
    'The calling AE title came from another address than its expected IP. Correct the ' +
      'expected IP under AE titles, or leave it empty.',
  ],
  [
    /is not in the allowed IP addresses/,
    "The peer's address is not in the allowed IP addresses. Add it under Configuration → " +
      'Security, or empty the list to allow every address.',
  ],
  [
    /calling-AE-title-not-recognized/,
    'Calling AE title not recognized: the peer is not allowed to connect. Add or activate it ' +
      'under AE titles.',
  ],
  [
    /called-AE-title-not-recognized/,
    'Called AE title not recognized: the peer addressed another AE title than ours. Set the ' +
      "destination's AE title on the sending device to this server's AE title.",
  ],
  [
    /application-context-name-not-supported/,
    'Application context not supported: the peer does not speak the DICOM application context.',
  ],
  [
    /protocol-version-not-supported/,
    'Protocol version not supported: the peer asked for an upper-layer protocol version we do ' +
      'not support.',
  ],
  [
    /local-limit-exceeded/,
    'Local limit exceeded: too many associations at once. Raise the maximum number of ' +
      'associations (Configuration → Network), or have the sender open fewer.',
  ],
  [/temporary-congestion/, 'Temporary congestion: the server was busy. The sender may retry.'],
  [
    /observe mode, would be rejected/,
    'Observe mode: this association was let through but would be rejected once calling AE ' +
      'validation is enforced. Add the AE title under AE titles before switching observe off.',
  ],
  [
    /unrecognized-PDU-parameter|unexpected-PDU-parameter|invalid-PDU-parameter-value/,
    'A protocol data unit carried a parameter that is unknown or wrong here: a protocol error ' +
      'of one side. The server log has the detail.',
  ],
  [
    /unrecognized-PDU|unexpected-PDU/,
    'A protocol data unit arrived that is unknown or not allowed at that point: a protocol ' +
      'error of one side. The server log has the detail.',
  ],
  [
    /aborted by peer: service-user|aborted by peer$/,
    'The peer aborted the association (its user or application stopped it), e.g. a ' +
      'cancelled send or a timeout on its side.',
  ],
  [
    /connection lost/,
    'The connection closed without a release: the peer went away, or the network dropped it.',
  ],
  [
    /reason-not-specified/,
    'Aborted without a reason: often a timeout (ARTIM, DIMSE or network) on one side.',
  ],
  [
    /no-reason-given/,
    'Rejected without a reason given: e.g. an address not in the allowed IP addresses, or ' +
      'the service is not accepting associations.',
  ],
];

/** What a reject or abort message means, if the console recognizes it. */
export function describeReason(message: string | null): string | undefined {
  if (message === null || message === '') return undefined;
  return REASON_ADVICE.find(([pattern]) => pattern.test(message))?.[1];
}

/** SOP classes that are not Storage SOP Classes, by UID (PS3.4 Annex C, PS3.6 Annex A). */
const OTHER_SOP_CLASSES: ReadonlyMap<string, string> = new Map([
  [SopClass.Verification, 'Verification'],
  ['1.2.840.10008.5.1.4.1.2.1.1', 'Patient Root Query/Retrieve – FIND'],
  ['1.2.840.10008.5.1.4.1.2.1.2', 'Patient Root Query/Retrieve – MOVE'],
  ['1.2.840.10008.5.1.4.1.2.1.3', 'Patient Root Query/Retrieve – GET'],
  ['1.2.840.10008.5.1.4.1.2.2.1', 'Study Root Query/Retrieve – FIND'],
  ['1.2.840.10008.5.1.4.1.2.2.2', 'Study Root Query/Retrieve – MOVE'],
  ['1.2.840.10008.5.1.4.1.2.2.3', 'Study Root Query/Retrieve – GET'],
]);

/** The PS3.6 name of a SOP class UID, if known. */
export function sopClassName(uid: string | null): string | undefined {
  if (uid === null) return undefined;
  return storageSopClassName(uid) ?? OTHER_SOP_CLASSES.get(uid);
}

/** Labels of the Storage SOP Class groups of the settings. */
export const STORAGE_GROUP_LABELS: Readonly<Record<(typeof STORAGE_GROUPS)[number], string>> = {
  ct: 'CT',
  mr: 'MR',
  rt_structure: 'RT Structure Set',
  rt_plan: 'RT Plan',
  rt_dose: 'RT Dose',
  secondary_capture: 'Secondary Capture',
  rt_image: 'RT Image',
  rt_record: 'RT Treatment Records',
  radiography: 'Radiography (CR, DX)',
  mammography: 'Mammography',
  ultrasound: 'Ultrasound',
  nuclear_medicine: 'Nuclear Medicine',
  pet: 'PET',
  angiography: 'Angiography (XA, XRF)',
  segmentation: 'Segmentation',
  registration: 'Spatial Registration',
  structured_report: 'Structured Reports',
  document: 'Encapsulated Documents',
  raw_data: 'Raw Data',
  presentation_state: 'Presentation States',
};

/** Names of the transfer syntaxes we know (PS3.6 Annex A), by UID. */
export const TRANSFER_SYNTAX_NAMES: Readonly<Record<string, string>> = {
  [TransferSyntax.ImplicitVRLittleEndian]: 'Implicit VR Little Endian',
  [TransferSyntax.ExplicitVRLittleEndian]: 'Explicit VR Little Endian',
  [TransferSyntax.DeflatedExplicitVRLittleEndian]: 'Deflated Explicit VR Little Endian',
  [TransferSyntax.ExplicitVRBigEndian]: 'Explicit VR Big Endian (retired)',
  [TransferSyntax.JPEGBaseline8Bit]: 'JPEG Baseline (8-bit, lossy)',
  [TransferSyntax.JPEGExtended12Bit]: 'JPEG Extended (12-bit, lossy)',
  [TransferSyntax.JPEGLossless]: 'JPEG Lossless',
  [TransferSyntax.JPEGLosslessSV1]: 'JPEG Lossless, first-order prediction',
  [TransferSyntax.JPEGLSLossless]: 'JPEG-LS Lossless',
  [TransferSyntax.JPEGLSNearLossless]: 'JPEG-LS Near-Lossless',
  [TransferSyntax.JPEG2000Lossless]: 'JPEG 2000 Lossless',
  [TransferSyntax.JPEG2000]: 'JPEG 2000',
  [TransferSyntax.HTJ2KLossless]: 'HTJ2K Lossless',
  [TransferSyntax.HTJ2KLosslessRPCL]: 'HTJ2K Lossless RPCL',
  [TransferSyntax.HTJ2K]: 'HTJ2K',
  [TransferSyntax.RLELossless]: 'RLE Lossless',
};
