/**
 * DIMSE command sets (PS3.7 §9.3, §10.3, Annex E): group 0000 elements, always encoded in
 * Implicit VR Little Endian, as a plain object with one field per command element.
 *
 * Layer: network/dimse. Pure: no I/O.
 */

import { CommandTag, formatTag } from '../../dicom/tag.js';
import { DicomServerError } from '../../errors.js';

/** Command Field values (PS3.7 Annex E). */
export const CommandField = {
  CStoreRq: 0x0001,
  CStoreRsp: 0x8001,
  CGetRq: 0x0010,
  CGetRsp: 0x8010,
  CFindRq: 0x0020,
  CFindRsp: 0x8020,
  CMoveRq: 0x0021,
  CMoveRsp: 0x8021,
  CEchoRq: 0x0030,
  CEchoRsp: 0x8030,
  NEventReportRq: 0x0100,
  NEventReportRsp: 0x8100,
  NGetRq: 0x0110,
  NGetRsp: 0x8110,
  NSetRq: 0x0120,
  NSetRsp: 0x8120,
  NActionRq: 0x0130,
  NActionRsp: 0x8130,
  NCreateRq: 0x0140,
  NCreateRsp: 0x8140,
  NDeleteRq: 0x0150,
  NDeleteRsp: 0x8150,
  CCancelRq: 0x0fff,
} as const;

/** Command Data Set Type value meaning "no data set" (PS3.7 Table E.1-1). */
export const NO_DATA_SET = 0x0101;

/** Priority (0000,0700) values (PS3.7 Table E.1-1). */
export const Priority = { Medium: 0x0000, High: 0x0001, Low: 0x0002 } as const;

/** A decoded command set. Only `commandField` is always present. */
export interface CommandSet {
  readonly commandField: number;
  readonly messageId?: number;
  readonly messageIdBeingRespondedTo?: number;
  readonly affectedSopClassUid?: string;
  readonly requestedSopClassUid?: string;
  readonly affectedSopInstanceUid?: string;
  readonly requestedSopInstanceUid?: string;
  readonly priority?: number;
  /** True when a data set follows (Command Data Set Type other than 0x0101). */
  readonly hasDataset: boolean;
  readonly status?: number;
  readonly offendingElement?: readonly number[];
  readonly errorComment?: string;
  readonly errorId?: number;
  readonly moveDestination?: string;
  readonly eventTypeId?: number;
  readonly actionTypeId?: number;
  readonly attributeIdentifierList?: readonly number[];
  readonly numberOfRemainingSuboperations?: number;
  readonly numberOfCompletedSuboperations?: number;
  readonly numberOfFailedSuboperations?: number;
  readonly numberOfWarningSuboperations?: number;
  readonly moveOriginatorAeTitle?: string;
  readonly moveOriginatorMessageId?: number;
}

type FieldKey = Exclude<keyof CommandSet, 'commandField' | 'hasDataset'>;
type Vr = 'UI' | 'US' | 'AE' | 'LO' | 'AT';

/** Command elements other than group length, command field and data set type, in tag order. */
const FIELDS: readonly { readonly tag: number; readonly key: FieldKey; readonly vr: Vr }[] = [
  { tag: CommandTag.AffectedSOPClassUID, key: 'affectedSopClassUid', vr: 'UI' },
  { tag: CommandTag.RequestedSOPClassUID, key: 'requestedSopClassUid', vr: 'UI' },
  { tag: CommandTag.MessageID, key: 'messageId', vr: 'US' },
  { tag: CommandTag.MessageIDBeingRespondedTo, key: 'messageIdBeingRespondedTo', vr: 'US' },
  { tag: CommandTag.MoveDestination, key: 'moveDestination', vr: 'AE' },
  { tag: CommandTag.Priority, key: 'priority', vr: 'US' },
  { tag: CommandTag.Status, key: 'status', vr: 'US' },
  { tag: CommandTag.OffendingElement, key: 'offendingElement', vr: 'AT' },
  { tag: CommandTag.ErrorComment, key: 'errorComment', vr: 'LO' },
  { tag: CommandTag.ErrorID, key: 'errorId', vr: 'US' },
  { tag: CommandTag.AffectedSOPInstanceUID, key: 'affectedSopInstanceUid', vr: 'UI' },
  { tag: CommandTag.RequestedSOPInstanceUID, key: 'requestedSopInstanceUid', vr: 'UI' },
  { tag: CommandTag.EventTypeID, key: 'eventTypeId', vr: 'US' },
  { tag: CommandTag.AttributeIdentifierList, key: 'attributeIdentifierList', vr: 'AT' },
  { tag: CommandTag.ActionTypeID, key: 'actionTypeId', vr: 'US' },
  {
    tag: CommandTag.NumberOfRemainingSuboperations,
    key: 'numberOfRemainingSuboperations',
    vr: 'US',
  },
  {
    tag: CommandTag.NumberOfCompletedSuboperations,
    key: 'numberOfCompletedSuboperations',
    vr: 'US',
  },
  { tag: CommandTag.NumberOfFailedSuboperations, key: 'numberOfFailedSuboperations', vr: 'US' },
  { tag: CommandTag.NumberOfWarningSuboperations, key: 'numberOfWarningSuboperations', vr: 'US' },
  { tag: CommandTag.MoveOriginatorApplicationEntityTitle, key: 'moveOriginatorAeTitle', vr: 'AE' },
  { tag: CommandTag.MoveOriginatorMessageID, key: 'moveOriginatorMessageId', vr: 'US' },
];
const FIELDS_BY_TAG = new Map(FIELDS.map((field) => [field.tag, field]));

/** Largest command set we decode: real ones are a few hundred bytes. */
export const MAX_COMMAND_SET_LENGTH = 64 * 1024;

/** Every element we encode, in tag order, with how to read its value off a command set. */
const ENCODED: readonly {
  readonly tag: number;
  readonly vr: Vr;
  readonly read: (command: CommandSet) => string | number | readonly number[] | undefined;
}[] = [
  ...FIELDS.map((field) => ({
    tag: field.tag,
    vr: field.vr,
    read: (command: CommandSet) => command[field.key],
  })),
  { tag: CommandTag.CommandField, vr: 'US' as const, read: (c: CommandSet) => c.commandField },
  {
    tag: CommandTag.CommandDataSetType,
    vr: 'US' as const,
    read: (c: CommandSet) => (c.hasDataset ? 0x0000 : NO_DATA_SET),
  },
].sort((a, b) => a.tag - b.tag);

/** The encoded length of a value: UIDs and texts padded to even length (PS3.5 §7.1). */
function valueLength(vr: Vr, value: string | number | readonly number[]): number {
  switch (vr) {
    case 'US':
      return 2;
    case 'AT':
      return (value as readonly number[]).length * 4;
    case 'UI':
    case 'AE':
    case 'LO': {
      const length = (value as string).length;
      return length + (length % 2);
    }
    default: {
      const unreachable: never = vr;
      throw new Error(`unknown VR ${String(unreachable)}`);
    }
  }
}

/** Writes an implicit VR little endian element header (PS3.7 §6.3.1); the offset after it. */
function writeHeader(out: Buffer, at: number, tag: number, length: number): number {
  out.writeUInt16LE(tag >>> 16, at);
  out.writeUInt16LE(tag & 0xffff, at + 2);
  out.writeUInt32LE(length, at + 4);
  return at + 8;
}

/** Writes a value of `length` bytes (see valueLength) at `at`. */
function writeValue(
  out: Buffer,
  at: number,
  vr: Vr,
  value: string | number | readonly number[],
  length: number,
): void {
  if (vr === 'US') {
    out.writeUInt16LE(value as number, at);
  } else if (vr === 'AT') {
    (value as readonly number[]).forEach((tag, i) => {
      out.writeUInt16LE(tag >>> 16, at + i * 4);
      out.writeUInt16LE(tag & 0xffff, at + i * 4 + 2);
    });
  } else {
    const text = value as string;
    out.write(text, at, 'latin1');
    // UIDs are padded with a NUL (PS3.5 §9.1), texts with a space.
    if (text.length < length) out[at + text.length] = vr === 'UI' ? 0x00 : 0x20;
  }
}

/**
 * Encodes a command set, group length first (PS3.7 §6.3.1), into one buffer: one is made for
 * every request and response.
 */
export function encodeCommand(command: CommandSet): Buffer {
  let groupLength = 0;
  for (const { vr, read } of ENCODED) {
    const value = read(command);
    if (value !== undefined) groupLength += 8 + valueLength(vr, value);
  }
  const out = Buffer.allocUnsafe(12 + groupLength);
  let at = writeHeader(out, 0, CommandTag.CommandGroupLength, 4);
  out.writeUInt32LE(groupLength, at);
  at += 4;
  for (const { tag, vr, read } of ENCODED) {
    const value = read(command);
    if (value === undefined) continue;
    const length = valueLength(vr, value);
    at = writeHeader(out, at, tag, length);
    writeValue(out, at, vr, value, length);
    at += length;
  }
  return out;
}

function malformed(message: string, details: Record<string, string | number>): never {
  throw new DicomServerError('ERR_DIMSE_MALFORMED', message, details);
}

function decodeValue(vr: Vr, value: Buffer, tag: number): string | number | number[] {
  switch (vr) {
    case 'US':
      if (value.length !== 2) malformed(`${formatTag(tag)} US of length ${value.length}`, { tag });
      return value.readUInt16LE(0);
    case 'AT': {
      if (value.length % 4 !== 0)
        malformed(`${formatTag(tag)} AT of length ${value.length}`, { tag });
      const tags: number[] = [];
      for (let i = 0; i < value.length; i += 4) {
        tags.push(((value.readUInt16LE(i) << 16) | value.readUInt16LE(i + 2)) >>> 0);
      }
      return tags;
    }
    case 'UI': {
      // Trailing NUL (or space) padding; a loop rather than a regular expression: this runs
      // for every command of the receive path.
      let end = value.length;
      while (end > 0 && (value[end - 1] === 0 || value[end - 1] === 0x20)) end -= 1;
      return value.toString('latin1', 0, end);
    }
    case 'AE':
    case 'LO':
      return value.toString('latin1').replace(/\0+$/, '').trim();
    default: {
      const unreachable: never = vr;
      throw new Error(`unknown VR ${String(unreachable)}`);
    }
  }
}

/**
 * Decodes a command set. Elements we do not know are skipped; a missing Command Field, an
 * element outside group 0000 or an element overrunning the buffer is ERR_DIMSE_MALFORMED.
 */
export function decodeCommand(bytes: Buffer): CommandSet {
  const out: Record<string, unknown> = { commandField: undefined, hasDataset: false };
  let commandField: number | undefined;
  let dataSetType: number | undefined;
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 8 > bytes.length) malformed('command element header truncated', { offset });
    const tag = ((bytes.readUInt16LE(offset) << 16) | bytes.readUInt16LE(offset + 2)) >>> 0;
    const length = bytes.readUInt32LE(offset + 4);
    const start = offset + 8;
    if (tag >>> 16 !== 0)
      malformed(`element ${formatTag(tag)} outside the command group`, { offset, tag });
    if (length > bytes.length - start)
      malformed(`${formatTag(tag)} overruns the command set`, { offset, tag });
    const value = bytes.subarray(start, start + length);
    offset = start + length;
    if (tag === CommandTag.CommandField) commandField = decodeValue('US', value, tag) as number;
    else if (tag === CommandTag.CommandDataSetType)
      dataSetType = decodeValue('US', value, tag) as number;
    else {
      const field = FIELDS_BY_TAG.get(tag);
      if (field !== undefined) out[field.key] = decodeValue(field.vr, value, tag);
    }
  }
  if (commandField === undefined) malformed('command set has no Command Field', { offset: 0 });
  out.commandField = commandField;
  out.hasDataset = dataSetType !== undefined && dataSetType !== NO_DATA_SET;
  return out as unknown as CommandSet;
}

/** True for a response command field (bit 15 set), false for a request. */
export function isResponse(commandField: number): boolean {
  return (commandField & 0x8000) !== 0;
}

/** The response command field that answers a request's. */
export function responseFieldFor(requestField: number): number {
  return requestField | 0x8000;
}

/** A readable name for a command field, e.g. "C-STORE-RQ". */
export function commandName(commandField: number): string {
  return COMMAND_NAMES.get(commandField) ?? `0x${commandField.toString(16).padStart(4, '0')}`;
}

/** "CStoreRq" -> "C-STORE-RQ", "NEventReportRsp" -> "N-EVENT-REPORT-RSP", made once. */
const COMMAND_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(CommandField).map(([name, value]) => [
    value,
    name.replace(
      /^([CN])([A-Z][a-z]+)([A-Z][a-z]+)?(Rq|Rsp)$/,
      (_, kind, op, op2, suffix) =>
        `${kind}-${op.toUpperCase()}${op2 === undefined ? '' : `-${op2.toUpperCase()}`}-${suffix.toUpperCase()}`,
    ),
  ]),
);
