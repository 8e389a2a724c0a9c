/**
 * Tags as 32-bit numbers (group << 16 | element), named by the standard's keywords (PS3.6).
 *
 * Layer: dicom. Pure data. Only the tags the code refers to by name live here; names and VRs of
 * all others come from the data dictionary package.
 */

/** Builds a tag number from its group and element. */
export function tag(group: number, element: number): number {
  return ((group << 16) | element) >>> 0;
}

/** The group number of a tag. */
export function tagGroup(value: number): number {
  return value >>> 16;
}

/** The element number of a tag. */
export function tagElement(value: number): number {
  return value & 0xffff;
}

/** A tag in the usual (gggg,eeee) notation. */
export function formatTag(value: number): string {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  return `(${hex(tagGroup(value))},${hex(tagElement(value))})`;
}

/** Command set elements, group 0000 (PS3.7 Table E.1-1). */
export const CommandTag = {
  CommandGroupLength: 0x0000_0000,
  AffectedSOPClassUID: 0x0000_0002,
  RequestedSOPClassUID: 0x0000_0003,
  CommandField: 0x0000_0100,
  MessageID: 0x0000_0110,
  MessageIDBeingRespondedTo: 0x0000_0120,
  MoveDestination: 0x0000_0600,
  Priority: 0x0000_0700,
  CommandDataSetType: 0x0000_0800,
  Status: 0x0000_0900,
  OffendingElement: 0x0000_0901,
  ErrorComment: 0x0000_0902,
  ErrorID: 0x0000_0903,
  AffectedSOPInstanceUID: 0x0000_1000,
  RequestedSOPInstanceUID: 0x0000_1001,
  EventTypeID: 0x0000_1002,
  AttributeIdentifierList: 0x0000_1005,
  ActionTypeID: 0x0000_1008,
  NumberOfRemainingSuboperations: 0x0000_1020,
  NumberOfCompletedSuboperations: 0x0000_1021,
  NumberOfFailedSuboperations: 0x0000_1022,
  NumberOfWarningSuboperations: 0x0000_1023,
  MoveOriginatorApplicationEntityTitle: 0x0000_1030,
  MoveOriginatorMessageID: 0x0000_1031,
} as const;
