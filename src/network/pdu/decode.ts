/**
 * Decodes one whole upper-layer PDU (header included) into its plain object (PS3.8 §9.3).
 *
 * Layer: network/pdu. Pure: never logs, never does I/O. A malformed PDU throws a
 * DicomServerError whose details name the field, the byte offset and the A-ABORT reason that
 * the state machine sends for it. The framer has already checked that the buffer holds exactly
 * the PDU that its header announces.
 */

import { DicomServerError, type ErrorCode } from '../../errors.js';
import {
  type AAbort,
  type AAssociateAc,
  type AAssociateRj,
  type AAssociateRq,
  AbortReason,
  type ContextResult,
  ItemType,
  type PDataTf,
  PDU_HEADER_LENGTH,
  type Pdu,
  PduType,
  type Pdv,
  type PresentationContextResult,
  type ProposedContext,
  type RejectResult,
  type RejectSource,
  type RoleSelection,
  type SopClassCommonExtendedNegotiation,
  type SopClassExtendedNegotiation,
  type UnknownItem,
  type UserInformation,
} from './types.js';

/** Raises the typed error for a malformed PDU. */
function malformed(
  field: string,
  offset: number,
  message: string,
  code: ErrorCode = 'ERR_PDU_MALFORMED',
  abortReason: number = AbortReason.InvalidPduParameterValue,
): never {
  throw new DicomServerError(code, `${message} (${field} at byte ${offset})`, {
    field,
    offset,
    abortReason,
  });
}

/** A view on the PDU with bounds-checked reads; offsets are absolute within the PDU. */
class Cursor {
  constructor(
    readonly buf: Buffer,
    public offset: number,
    readonly end: number,
  ) {}

  need(length: number, field: string): void {
    if (this.offset + length > this.end) {
      malformed(
        field,
        this.offset,
        `${field} needs ${length} bytes, ${this.end - this.offset} remain`,
      );
    }
  }
  u8(field: string): number {
    this.need(1, field);
    const value = this.buf[this.offset]!;
    this.offset += 1;
    return value;
  }
  u16(field: string): number {
    this.need(2, field);
    const value = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }
  u32(field: string): number {
    this.need(4, field);
    const value = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  bytes(length: number, field: string): Buffer {
    this.need(length, field);
    const value = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }
  /** A sub-cursor over the next `length` bytes, which this cursor skips. */
  sub(length: number, field: string): Cursor {
    this.need(length, field);
    const inner = new Cursor(this.buf, this.offset, this.offset + length);
    this.offset += length;
    return inner;
  }
  get remaining(): number {
    return this.end - this.offset;
  }
}

/** UIDs in PDU items may be padded with NUL (PS3.8 §9.3.2.2.1); some peers pad with spaces. */
function uidText(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/[\0 ]+$/, '');
}

/** AE titles are 16 bytes, space padded; leading and trailing spaces are not significant. */
function aeText(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/\0+$/, '').trim();
}

/** Decodes one complete PDU, header included. */
export function decodePdu(buf: Buffer): Pdu {
  if (buf.length < PDU_HEADER_LENGTH) malformed('PDU-length', 2, 'PDU shorter than its header');
  const type = buf[0]!;
  const length = buf.readUInt32BE(2);
  if (length !== buf.length - PDU_HEADER_LENGTH) {
    malformed(
      'PDU-length',
      2,
      `PDU length ${length} does not match ${buf.length - PDU_HEADER_LENGTH}`,
    );
  }
  const body = new Cursor(buf, PDU_HEADER_LENGTH, buf.length);
  switch (type) {
    case PduType.AAssociateRq:
      return decodeAssociate(body, 'AAssociateRq');
    case PduType.AAssociateAc:
      return decodeAssociate(body, 'AAssociateAc');
    case PduType.AAssociateRj:
      return decodeReject(body);
    case PduType.PDataTf:
      return decodePData(body);
    case PduType.AReleaseRq:
      fixedLength(body, 'A-RELEASE-RQ');
      return { type: 'AReleaseRq' };
    case PduType.AReleaseRp:
      fixedLength(body, 'A-RELEASE-RP');
      return { type: 'AReleaseRp' };
    case PduType.AAbort:
      return decodeAbort(body);
    default:
      return malformed(
        'PDU-type',
        0,
        `unknown PDU type 0x${type.toString(16).padStart(2, '0')}`,
        'ERR_PDU_UNKNOWN_TYPE',
        AbortReason.UnrecognizedPdu,
      );
  }
}

/** A-RELEASE-RQ/RP carry four reserved bytes (PS3.8 Tables 9-24, 9-25). */
function fixedLength(body: Cursor, name: string): void {
  if (body.remaining !== 4) malformed('PDU-length', 2, `${name} must have length 4`);
}

function decodeReject(body: Cursor): AAssociateRj {
  if (body.remaining !== 4) malformed('PDU-length', 2, 'A-ASSOCIATE-RJ must have length 4');
  body.u8('reserved');
  const result = body.u8('Result');
  const source = body.u8('Source');
  const reason = body.u8('Reason/Diag.');
  return {
    type: 'AAssociateRj',
    result: result as RejectResult,
    source: source as RejectSource,
    reason,
  };
}

function decodeAbort(body: Cursor): AAbort {
  if (body.remaining !== 4) malformed('PDU-length', 2, 'A-ABORT must have length 4');
  body.u16('reserved');
  const source = body.u8('Source');
  const reason = body.u8('Reason/Diag.');
  return { type: 'AAbort', source: source === 0 ? 0 : 2, reason };
}

/** P-DATA-TF: one or more PDV items, each a view into `buf` (PS3.8 §9.3.5, Annex E.2). */
function decodePData(body: Cursor): PDataTf {
  const pdvs: Pdv[] = [];
  if (body.remaining === 0) malformed('PDV', body.offset, 'P-DATA-TF holds no PDV item');
  while (body.remaining > 0) {
    const start = body.offset;
    const itemLength = body.u32('PDV item-length');
    if (itemLength < 2) malformed('PDV item-length', start, 'PDV item shorter than its header');
    const item = body.sub(itemLength, 'PDV item');
    const contextId = item.u8('Presentation-context-ID');
    const control = item.u8('Message Control Header');
    pdvs.push({
      contextId,
      isCommand: (control & 0x01) !== 0,
      isLast: (control & 0x02) !== 0,
      data: item.bytes(item.remaining, 'PDV data'),
    });
  }
  return { type: 'PDataTf', pdvs };
}

/** A-ASSOCIATE-RQ and -AC share their layout (PS3.8 Tables 9-11, 9-17). */
function decodeAssociate(body: Cursor, type: 'AAssociateRq'): AAssociateRq;
function decodeAssociate(body: Cursor, type: 'AAssociateAc'): AAssociateAc;
function decodeAssociate(
  body: Cursor,
  type: 'AAssociateRq' | 'AAssociateAc',
): AAssociateRq | AAssociateAc {
  const protocolVersion = body.u16('Protocol-version');
  body.u16('reserved');
  const calledAeTitle = aeText(body.bytes(16, 'Called-AE-title'));
  const callingAeTitle = aeText(body.bytes(16, 'Calling-AE-title'));
  body.bytes(32, 'reserved');

  let applicationContextName: string | undefined;
  let userInformation: UserInformation | undefined;
  const proposed: ProposedContext[] = [];
  const results: ContextResult[] = [];
  const contextItem =
    type === 'AAssociateRq' ? ItemType.PresentationContextRq : ItemType.PresentationContextAc;

  while (body.remaining > 0) {
    const start = body.offset;
    const itemType = body.u8('Item-type');
    body.u8('reserved');
    const item = body.sub(body.u16('Item-length'), 'Item');
    if (itemType === ItemType.ApplicationContext) {
      applicationContextName = uidText(item.bytes(item.remaining, 'Application-context-name'));
    } else if (itemType === contextItem && type === 'AAssociateRq') {
      proposed.push(decodeProposedContext(item));
    } else if (itemType === contextItem) {
      results.push(decodeContextResult(item));
    } else if (itemType === ItemType.UserInformation) {
      userInformation = decodeUserInformation(item);
    } else {
      malformed(
        'Item-type',
        start,
        `item type 0x${itemType.toString(16)} is not valid in this PDU`,
        'ERR_PDU_UNKNOWN_ITEM',
        AbortReason.UnrecognizedPduParameter,
      );
    }
  }
  if (applicationContextName === undefined) {
    malformed('Application Context Item', body.offset, 'no application context item');
  }
  if (userInformation === undefined) {
    malformed('User Information Item', body.offset, 'no user information item');
  }
  const common = {
    protocolVersion,
    calledAeTitle,
    callingAeTitle,
    applicationContextName,
    userInformation,
  };
  return type === 'AAssociateRq'
    ? { type, ...common, presentationContexts: proposed }
    : { type, ...common, presentationContexts: results };
}

/** Presentation Context Item, request form (PS3.8 Table 9-13). */
function decodeProposedContext(item: Cursor): ProposedContext {
  const id = item.u8('Presentation-context-ID');
  item.bytes(3, 'reserved');
  let abstractSyntax: string | undefined;
  const transferSyntaxes: string[] = [];
  while (item.remaining > 0) {
    const start = item.offset;
    const subType = item.u8('Item-type');
    item.u8('reserved');
    const value = item.bytes(item.u16('Item-length'), 'Sub-item');
    if (subType === ItemType.AbstractSyntax) abstractSyntax = uidText(value);
    else if (subType === ItemType.TransferSyntax) transferSyntaxes.push(uidText(value));
    else {
      malformed(
        'Item-type',
        start,
        `sub-item 0x${subType.toString(16)} not valid in a presentation context`,
        'ERR_PDU_UNKNOWN_ITEM',
        AbortReason.UnrecognizedPduParameter,
      );
    }
  }
  if (abstractSyntax === undefined)
    malformed('Abstract Syntax Sub-Item', item.offset, 'no abstract syntax');
  if (transferSyntaxes.length === 0)
    malformed('Transfer Syntax Sub-Item', item.offset, 'no transfer syntax');
  return { id, abstractSyntax, transferSyntaxes };
}

/** Presentation Context Item, acceptance form (PS3.8 Table 9-18). */
function decodeContextResult(item: Cursor): ContextResult {
  const id = item.u8('Presentation-context-ID');
  item.u8('reserved');
  const result = item.u8('Result/Reason') as PresentationContextResult;
  item.u8('reserved');
  let transferSyntax = '';
  while (item.remaining > 0) {
    const start = item.offset;
    const subType = item.u8('Item-type');
    item.u8('reserved');
    const value = item.bytes(item.u16('Item-length'), 'Sub-item');
    if (subType === ItemType.TransferSyntax) transferSyntax = uidText(value);
    else {
      malformed(
        'Item-type',
        start,
        `sub-item 0x${subType.toString(16)} not valid in a presentation context result`,
        'ERR_PDU_UNKNOWN_ITEM',
        AbortReason.UnrecognizedPduParameter,
      );
    }
  }
  return { id, result, transferSyntax };
}

/** A UID preceded by its 16-bit length, as inside several user-information sub-items. */
function lengthPrefixedUid(item: Cursor, field: string): string {
  return uidText(item.bytes(item.u16(`${field}-length`), field));
}

/** User Information Item and its sub-items (PS3.8 §D.1, PS3.7 Annex D.3.3). */
function decodeUserInformation(item: Cursor): UserInformation {
  let maxPduLength: number | undefined;
  let implementationClassUid: string | undefined;
  let implementationVersionName: string | undefined;
  let asyncOperationsWindow: UserInformation['asyncOperationsWindow'];
  let userIdentityRq: UserInformation['userIdentityRq'];
  let userIdentityAc: UserInformation['userIdentityAc'];
  const roleSelections: RoleSelection[] = [];
  const sopClassExtendedNegotiations: SopClassExtendedNegotiation[] = [];
  const sopClassCommonExtendedNegotiations: SopClassCommonExtendedNegotiation[] = [];
  const unknownItems: UnknownItem[] = [];

  while (item.remaining > 0) {
    const subType = item.u8('Item-type');
    item.u8('reserved');
    const sub = item.sub(item.u16('Item-length'), 'User-data sub-item');
    switch (subType) {
      case ItemType.MaximumLength:
        maxPduLength = sub.u32('Maximum-length-received');
        break;
      case ItemType.ImplementationClassUid:
        implementationClassUid = uidText(sub.bytes(sub.remaining, 'Implementation-class-uid'));
        break;
      case ItemType.ImplementationVersionName:
        implementationVersionName = aeText(sub.bytes(sub.remaining, 'Implementation-version-name'));
        break;
      case ItemType.AsynchronousOperationsWindow:
        asyncOperationsWindow = {
          maxOperationsInvoked: sub.u16('Maximum-number-operations-invoked'),
          maxOperationsPerformed: sub.u16('Maximum-number-operations-performed'),
        };
        break;
      case ItemType.RoleSelection: {
        const sopClassUid = lengthPrefixedUid(sub, 'SOP-class-uid');
        const scuRole = sub.u8('SCU-role') === 1;
        const scpRole = sub.u8('SCP-role') === 1;
        roleSelections.push({ sopClassUid, scuRole, scpRole });
        break;
      }
      case ItemType.SopClassExtendedNegotiation: {
        const sopClassUid = lengthPrefixedUid(sub, 'SOP-class-uid');
        const info = Uint8Array.from(
          sub.bytes(sub.remaining, 'Service-class-application-information'),
        );
        sopClassExtendedNegotiations.push({
          sopClassUid,
          serviceClassApplicationInformation: info,
        });
        break;
      }
      case ItemType.SopClassCommonExtendedNegotiation:
        sopClassCommonExtendedNegotiations.push(decodeCommonExtended(sub));
        break;
      case ItemType.UserIdentityRq: {
        const identityType = sub.u8('User-Identity-Type');
        const isPositiveResponseRequested = sub.u8('Positive-response-requested') === 1;
        const primaryField = Uint8Array.from(
          sub.bytes(sub.u16('Primary-field-length'), 'Primary-field'),
        );
        const secondaryField = Uint8Array.from(
          sub.bytes(sub.u16('Secondary-field-length'), 'Secondary-field'),
        );
        userIdentityRq = {
          identityType,
          isPositiveResponseRequested,
          primaryField,
          secondaryField,
        };
        break;
      }
      case ItemType.UserIdentityAc:
        userIdentityAc = {
          serverResponse: Uint8Array.from(
            sub.bytes(sub.u16('Server-response-length'), 'Server-response'),
          ),
        };
        break;
      default:
        // PS3.7 §D.3.3: sub-items we do not know are skipped, so that a newer peer can talk to us.
        unknownItems.push({
          itemType: subType,
          data: Uint8Array.from(sub.bytes(sub.remaining, 'data')),
        });
        break;
    }
    // Strict on lengths: a sub-item longer than its fields (e.g. a Maximum Length of 6 bytes,
    // PS3.8 Table D.1-1 fixes it at 4) is malformed, not silently cut.
    if (sub.remaining !== 0) {
      malformed(
        'User-data sub-item',
        sub.offset,
        `sub-item 0x${subType.toString(16)} holds ${sub.remaining} bytes beyond its fields`,
      );
    }
  }
  return {
    ...(maxPduLength !== undefined && { maxPduLength }),
    ...(implementationClassUid !== undefined && { implementationClassUid }),
    ...(implementationVersionName !== undefined && { implementationVersionName }),
    ...(asyncOperationsWindow !== undefined && { asyncOperationsWindow }),
    ...(userIdentityRq !== undefined && { userIdentityRq }),
    ...(userIdentityAc !== undefined && { userIdentityAc }),
    roleSelections,
    sopClassExtendedNegotiations,
    sopClassCommonExtendedNegotiations,
    unknownItems,
  };
}

/** SOP Class Common Extended Negotiation sub-item (PS3.7 Table D.3-12). */
function decodeCommonExtended(sub: Cursor): SopClassCommonExtendedNegotiation {
  const sopClassUid = lengthPrefixedUid(sub, 'SOP-class-uid');
  const serviceClassUid = lengthPrefixedUid(sub, 'Service-class-uid');
  const related = sub.sub(sub.u16('Related-general-sop-class-identification-length'), 'Related');
  const relatedGeneralSopClassUids: string[] = [];
  while (related.remaining > 0) {
    relatedGeneralSopClassUids.push(lengthPrefixedUid(related, 'Related-general-sop-class-uid'));
  }
  return { sopClassUid, serviceClassUid, relatedGeneralSopClassUids };
}
