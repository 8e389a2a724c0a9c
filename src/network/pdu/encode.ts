/**
 * Encodes upper-layer PDUs into bytes (PS3.8 §9.3). Each encoder writes the body, then its
 * length prefix.
 *
 * Layer: network/pdu. Pure: no I/O, no logging.
 */

import { DicomServerError } from '../../errors.js';
import {
  type AAssociateAc,
  type AAssociateRq,
  type ContextResult,
  ItemType,
  PDU_HEADER_LENGTH,
  type Pdu,
  PduType,
  type Pdv,
  type ProposedContext,
  type SopClassCommonExtendedNegotiation,
  type UserInformation,
} from './types.js';

/** Bytes of a PDV item header inside a P-DATA-TF: item length (4), context ID, control header. */
export const PDV_HEADER_LENGTH = 6;

function pduHeader(type: number, bodyLength: number): Buffer {
  const header = Buffer.allocUnsafe(PDU_HEADER_LENGTH);
  header[0] = type;
  header[1] = 0;
  header.writeUInt32BE(bodyLength, 2);
  return header;
}

function withPduHeader(type: number, body: Buffer): Buffer {
  return Buffer.concat([pduHeader(type, body.length), body]);
}

/** An item: type, reserved byte, 16-bit length, value (PS3.8 §9.3.2.x). */
function item(type: number, value: Uint8Array): Buffer {
  if (value.length > 0xffff) {
    throw new DicomServerError(
      'ERR_INVALID_ARGUMENT',
      `item 0x${type.toString(16)} exceeds 65535 bytes`,
      {
        itemType: type,
      },
    );
  }
  const header = Buffer.allocUnsafe(4);
  header[0] = type;
  header[1] = 0;
  header.writeUInt16BE(value.length, 2);
  return Buffer.concat([header, value]);
}

function ascii(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** A value preceded by its 16-bit length. */
function lengthPrefixed(value: Uint8Array): Buffer {
  const length = Buffer.allocUnsafe(2);
  length.writeUInt16BE(value.length, 0);
  return Buffer.concat([length, value]);
}

function u16(value: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(value, 0);
  return b;
}

/** AE titles occupy 16 bytes, padded with spaces (PS3.8 Table 9-11). */
function aeField(title: string): Buffer {
  return Buffer.from(title.padEnd(16, ' ').slice(0, 16), 'latin1');
}

function encodeProposedContext(context: ProposedContext): Buffer {
  return item(
    ItemType.PresentationContextRq,
    Buffer.concat([
      Buffer.from([context.id, 0, 0, 0]),
      item(ItemType.AbstractSyntax, ascii(context.abstractSyntax)),
      ...context.transferSyntaxes.map((uid) => item(ItemType.TransferSyntax, ascii(uid))),
    ]),
  );
}

function encodeContextResult(context: ContextResult): Buffer {
  return item(
    ItemType.PresentationContextAc,
    Buffer.concat([
      Buffer.from([context.id, 0, context.result, 0]),
      item(ItemType.TransferSyntax, ascii(context.transferSyntax)),
    ]),
  );
}

function encodeCommonExtended(negotiation: SopClassCommonExtendedNegotiation): Buffer {
  const related = Buffer.concat(
    negotiation.relatedGeneralSopClassUids.map((uid) => lengthPrefixed(ascii(uid))),
  );
  return item(
    ItemType.SopClassCommonExtendedNegotiation,
    Buffer.concat([
      lengthPrefixed(ascii(negotiation.sopClassUid)),
      lengthPrefixed(ascii(negotiation.serviceClassUid)),
      lengthPrefixed(related),
    ]),
  );
}

/** User Information Item with its sub-items, in the order of PS3.7 Annex D. */
export function encodeUserInformation(info: UserInformation): Buffer {
  const subItems: Buffer[] = [];
  if (info.maxPduLength !== undefined) {
    const value = Buffer.allocUnsafe(4);
    value.writeUInt32BE(info.maxPduLength, 0);
    subItems.push(item(ItemType.MaximumLength, value));
  }
  if (info.implementationClassUid !== undefined) {
    subItems.push(item(ItemType.ImplementationClassUid, ascii(info.implementationClassUid)));
  }
  if (info.asyncOperationsWindow !== undefined) {
    const { maxOperationsInvoked, maxOperationsPerformed } = info.asyncOperationsWindow;
    subItems.push(
      item(
        ItemType.AsynchronousOperationsWindow,
        Buffer.concat([u16(maxOperationsInvoked), u16(maxOperationsPerformed)]),
      ),
    );
  }
  for (const role of info.roleSelections) {
    subItems.push(
      item(
        ItemType.RoleSelection,
        Buffer.concat([
          lengthPrefixed(ascii(role.sopClassUid)),
          Buffer.from([role.scuRole ? 1 : 0, role.scpRole ? 1 : 0]),
        ]),
      ),
    );
  }
  if (info.implementationVersionName !== undefined) {
    subItems.push(item(ItemType.ImplementationVersionName, ascii(info.implementationVersionName)));
  }
  for (const negotiation of info.sopClassExtendedNegotiations) {
    subItems.push(
      item(
        ItemType.SopClassExtendedNegotiation,
        Buffer.concat([
          lengthPrefixed(ascii(negotiation.sopClassUid)),
          negotiation.serviceClassApplicationInformation,
        ]),
      ),
    );
  }
  for (const negotiation of info.sopClassCommonExtendedNegotiations) {
    subItems.push(encodeCommonExtended(negotiation));
  }
  if (info.userIdentityRq !== undefined) {
    const identity = info.userIdentityRq;
    subItems.push(
      item(
        ItemType.UserIdentityRq,
        Buffer.concat([
          Buffer.from([identity.identityType, identity.isPositiveResponseRequested ? 1 : 0]),
          lengthPrefixed(identity.primaryField),
          lengthPrefixed(identity.secondaryField),
        ]),
      ),
    );
  }
  if (info.userIdentityAc !== undefined) {
    subItems.push(
      item(ItemType.UserIdentityAc, lengthPrefixed(info.userIdentityAc.serverResponse)),
    );
  }
  for (const unknown of info.unknownItems) subItems.push(item(unknown.itemType, unknown.data));
  return item(ItemType.UserInformation, Buffer.concat(subItems));
}

function encodeAssociate(pdu: AAssociateRq | AAssociateAc): Buffer {
  const contexts =
    pdu.type === 'AAssociateRq'
      ? pdu.presentationContexts.map(encodeProposedContext)
      : pdu.presentationContexts.map(encodeContextResult);
  const body = Buffer.concat([
    u16(pdu.protocolVersion),
    u16(0),
    aeField(pdu.calledAeTitle),
    aeField(pdu.callingAeTitle),
    Buffer.alloc(32),
    item(ItemType.ApplicationContext, ascii(pdu.applicationContextName)),
    ...contexts,
    encodeUserInformation(pdu.userInformation),
  ]);
  return withPduHeader(
    pdu.type === 'AAssociateRq' ? PduType.AAssociateRq : PduType.AAssociateAc,
    body,
  );
}

/** The 12 bytes that precede a single-PDV P-DATA-TF's data: PDU header and PDV header. */
export function encodePDataHeader(
  contextId: number,
  isCommand: boolean,
  isLast: boolean,
  dataLength: number,
): Buffer {
  const header = Buffer.allocUnsafe(PDU_HEADER_LENGTH + PDV_HEADER_LENGTH);
  header[0] = PduType.PDataTf;
  header[1] = 0;
  header.writeUInt32BE(PDV_HEADER_LENGTH + dataLength, 2);
  header.writeUInt32BE(2 + dataLength, 6);
  header[10] = contextId;
  header[11] = (isCommand ? 0x01 : 0) | (isLast ? 0x02 : 0);
  return header;
}

function encodePdv(pdv: Pdv): Buffer {
  const header = Buffer.allocUnsafe(PDV_HEADER_LENGTH);
  header.writeUInt32BE(2 + pdv.data.length, 0);
  header[4] = pdv.contextId;
  header[5] = (pdv.isCommand ? 0x01 : 0) | (pdv.isLast ? 0x02 : 0);
  return Buffer.concat([header, pdv.data]);
}

/** Encodes any PDU into one buffer. */
export function encodePdu(pdu: Pdu): Buffer {
  switch (pdu.type) {
    case 'AAssociateRq':
    case 'AAssociateAc':
      return encodeAssociate(pdu);
    case 'AAssociateRj':
      return withPduHeader(
        PduType.AAssociateRj,
        Buffer.from([0, pdu.result, pdu.source, pdu.reason]),
      );
    case 'PDataTf':
      return withPduHeader(PduType.PDataTf, Buffer.concat(pdu.pdvs.map(encodePdv)));
    case 'AReleaseRq':
      return withPduHeader(PduType.AReleaseRq, Buffer.alloc(4));
    case 'AReleaseRp':
      return withPduHeader(PduType.AReleaseRp, Buffer.alloc(4));
    case 'AAbort':
      return withPduHeader(PduType.AAbort, Buffer.from([0, 0, pdu.source, pdu.reason]));
    default: {
      const unreachable: never = pdu;
      throw new Error(`unknown PDU ${String(unreachable)}`);
    }
  }
}
