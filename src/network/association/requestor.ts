/**
 * Requesting an association: builds the A-ASSOCIATE-RQ from AE titles and abstract syntaxes,
 * then opens it through the state machine, over TCP or TLS.
 *
 * Layer: network/association.
 */

import {
  DICOM_APPLICATION_CONTEXT,
  IMPLEMENTATION_CLASS_UID,
  IMPLEMENTATION_VERSION_NAME,
} from '../../dicom/uid.js';
import { DicomServerError } from '../../errors.js';
import {
  type AAssociateRq,
  EMPTY_USER_INFORMATION,
  PROTOCOL_VERSION,
  type ProposedContext,
  type RoleSelection,
  type SopClassExtendedNegotiation,
} from '../pdu/types.js';
import type { TlsClientOptions } from '../tls.js';
import { Association, type AssociationTimeouts } from './association.js';

/** An abstract syntax to propose with the transfer syntaxes we can use for it. */
export interface ContextProposal {
  readonly abstractSyntax: string;
  readonly transferSyntaxes: readonly string[];
}

/** What an SCU needs to open an association. */
export interface AssociationRequestOptions {
  readonly host: string;
  readonly port: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly contexts: readonly ContextProposal[];
  readonly roleSelections?: readonly RoleSelection[];
  /** SOP Class Extended Negotiation proposals (PS3.7 §D.3.3.5): relational queries, say. */
  readonly extendedNegotiations?: readonly SopClassExtendedNegotiation[];
  readonly maxPduLength?: number;
  readonly timeouts?: Partial<AssociationTimeouts>;
  /** Over TLS (PS3.15 Annex B) with these options; plain TCP without. */
  readonly tls?: TlsClientOptions;
}

/** Our default Maximum Length Received: large PDUs cost fewer writes and headers. */
export const DEFAULT_MAX_PDU_LENGTH = 256 * 1024;

/** Builds an A-ASSOCIATE-RQ; presentation context IDs are the odd numbers 1, 3, 5, ... (PS3.8 §9.3.2.2). */
export function buildAssociateRequest(options: AssociationRequestOptions): AAssociateRq {
  if (options.contexts.length === 0 || options.contexts.length > 128) {
    throw new DicomServerError('ERR_INVALID_ARGUMENT', 'between 1 and 128 presentation contexts', {
      count: options.contexts.length,
    });
  }
  const presentationContexts: ProposedContext[] = options.contexts.map((context, index) => ({
    id: index * 2 + 1,
    abstractSyntax: context.abstractSyntax,
    transferSyntaxes: context.transferSyntaxes,
  }));
  return {
    type: 'AAssociateRq',
    protocolVersion: PROTOCOL_VERSION,
    calledAeTitle: options.calledAeTitle,
    callingAeTitle: options.callingAeTitle,
    applicationContextName: DICOM_APPLICATION_CONTEXT,
    presentationContexts,
    userInformation: {
      ...EMPTY_USER_INFORMATION,
      maxPduLength: options.maxPduLength ?? DEFAULT_MAX_PDU_LENGTH,
      implementationClassUid: IMPLEMENTATION_CLASS_UID,
      implementationVersionName: IMPLEMENTATION_VERSION_NAME,
      roleSelections: options.roleSelections ?? [],
      sopClassExtendedNegotiations: options.extendedNegotiations ?? [],
    },
  };
}

/** Opens an association; resolves once the peer accepted it. */
export function requestAssociation(options: AssociationRequestOptions): Promise<Association> {
  const { established } = Association.request({
    host: options.host,
    port: options.port,
    request: buildAssociateRequest(options),
    maxPduLength: options.maxPduLength ?? DEFAULT_MAX_PDU_LENGTH,
    ...(options.timeouts !== undefined && { timeouts: options.timeouts }),
    ...(options.tls !== undefined && { tls: options.tls }),
  });
  return established;
}
