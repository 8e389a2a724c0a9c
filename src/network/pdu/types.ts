/**
 * The seven upper-layer PDUs of PS3.8 §9.3 and their items, as decoded plain objects.
 *
 * Layer: network. Pure data: no I/O, no imports beyond the standard library. Every PDU is
 * discriminated by `type`, named as in the standard.
 */

/** PDU type codes (PS3.8 Table 9-11 and following). */
export const PduType = {
  AAssociateRq: 0x01,
  AAssociateAc: 0x02,
  AAssociateRj: 0x03,
  PDataTf: 0x04,
  AReleaseRq: 0x05,
  AReleaseRp: 0x06,
  AAbort: 0x07,
} as const;

/** Item type codes inside A-ASSOCIATE PDUs (PS3.8 §9.3.2, Annex D). */
export const ItemType = {
  ApplicationContext: 0x10,
  PresentationContextRq: 0x20,
  PresentationContextAc: 0x21,
  AbstractSyntax: 0x30,
  TransferSyntax: 0x40,
  UserInformation: 0x50,
  MaximumLength: 0x51,
  ImplementationClassUid: 0x52,
  AsynchronousOperationsWindow: 0x53,
  RoleSelection: 0x54,
  ImplementationVersionName: 0x55,
  SopClassExtendedNegotiation: 0x56,
  SopClassCommonExtendedNegotiation: 0x57,
  UserIdentityRq: 0x58,
  UserIdentityAc: 0x59,
} as const;

/** Length of the fixed PDU header: type, reserved, 32-bit length (PS3.8 §9.3.1). */
export const PDU_HEADER_LENGTH = 6;

/** The only protocol version defined by PS3.8 (bit 0 of the Protocol-version field). */
export const PROTOCOL_VERSION = 1;

/** Result of one presentation context in an A-ASSOCIATE-AC (PS3.8 Table 9-18). */
export const PresentationContextResult = {
  Acceptance: 0,
  UserRejection: 1,
  /** no-reason (provider rejection) */
  ProviderRejection: 2,
  AbstractSyntaxNotSupported: 3,
  TransferSyntaxesNotSupported: 4,
} as const;
export type PresentationContextResult =
  (typeof PresentationContextResult)[keyof typeof PresentationContextResult];

/** A-ASSOCIATE-RJ Result field (PS3.8 Table 9-21). */
export const RejectResult = { RejectedPermanent: 1, RejectedTransient: 2 } as const;
export type RejectResult = (typeof RejectResult)[keyof typeof RejectResult];

/** A-ASSOCIATE-RJ Source field (PS3.8 Table 9-21). */
export const RejectSource = {
  ServiceUser: 1,
  ServiceProviderAcse: 2,
  ServiceProviderPresentation: 3,
} as const;
export type RejectSource = (typeof RejectSource)[keyof typeof RejectSource];

/** A-ASSOCIATE-RJ Reason/Diag. values; their meaning depends on the source (PS3.8 Table 9-21). */
export const RejectReason = {
  /** source 1 */
  NoReasonGiven: 1,
  /** source 1 */
  ApplicationContextNameNotSupported: 2,
  /** source 1 */
  CallingAeTitleNotRecognized: 3,
  /** source 1 */
  CalledAeTitleNotRecognized: 7,
  /** source 2: 1 is no-reason-given */
  ProtocolVersionNotSupported: 2,
  /** source 3 */
  TemporaryCongestion: 1,
  /** source 3 */
  LocalLimitExceeded: 2,
} as const;

/** A-ABORT Source field (PS3.8 Table 9-26). */
export const AbortSource = { ServiceUser: 0, ServiceProvider: 2 } as const;
export type AbortSource = (typeof AbortSource)[keyof typeof AbortSource];

/** A-ABORT Reason/Diag. for a service-provider abort (PS3.8 Table 9-26). */
export const AbortReason = {
  NotSpecified: 0,
  UnrecognizedPdu: 1,
  UnexpectedPdu: 2,
  UnrecognizedPduParameter: 4,
  UnexpectedPduParameter: 5,
  InvalidPduParameterValue: 6,
} as const;
export type AbortReason = (typeof AbortReason)[keyof typeof AbortReason];

/** A presentation context as proposed in an A-ASSOCIATE-RQ (item 0x20). */
export interface ProposedContext {
  readonly id: number;
  readonly abstractSyntax: string;
  readonly transferSyntaxes: readonly string[];
}

/** A presentation context as answered in an A-ASSOCIATE-AC (item 0x21). */
export interface ContextResult {
  readonly id: number;
  readonly result: PresentationContextResult;
  /** Meaningful only on acceptance; PS3.8 says it is not tested otherwise. */
  readonly transferSyntax: string;
}

/** SCP/SCU Role Selection sub-item (PS3.7 §D.3.3.4). */
export interface RoleSelection {
  readonly sopClassUid: string;
  readonly scuRole: boolean;
  readonly scpRole: boolean;
}

/** SOP Class Extended Negotiation sub-item (PS3.7 §D.3.3.5); the information is service-specific. */
export interface SopClassExtendedNegotiation {
  readonly sopClassUid: string;
  readonly serviceClassApplicationInformation: Uint8Array;
}

/** SOP Class Common Extended Negotiation sub-item (PS3.7 §D.3.3.6). */
export interface SopClassCommonExtendedNegotiation {
  readonly sopClassUid: string;
  readonly serviceClassUid: string;
  readonly relatedGeneralSopClassUids: readonly string[];
}

/** User Identity Negotiation sub-item, request (PS3.7 §D.3.3.7.1). */
export interface UserIdentityRq {
  /** 1 username, 2 username and passcode, 3 Kerberos, 4 SAML, 5 JWT */
  readonly identityType: number;
  readonly isPositiveResponseRequested: boolean;
  readonly primaryField: Uint8Array;
  readonly secondaryField: Uint8Array;
}

/** User Identity Negotiation sub-item, acceptance (PS3.7 §D.3.3.7.2). */
export interface UserIdentityAc {
  readonly serverResponse: Uint8Array;
}

/** Asynchronous Operations Window sub-item (PS3.7 §D.3.3.3); 0 means unlimited. */
export interface AsyncOperationsWindow {
  readonly maxOperationsInvoked: number;
  readonly maxOperationsPerformed: number;
}

/** A user-information sub-item we do not know; kept so that it can be logged, never fatal. */
export interface UnknownItem {
  readonly itemType: number;
  readonly data: Uint8Array;
}

/** User Information item (0x50) and its sub-items (PS3.8 §9.3.2.3, PS3.7 Annex D). */
export interface UserInformation {
  /** Maximum Length Received; 0 means no limit (PS3.8 §D.1). */
  readonly maxPduLength?: number;
  readonly implementationClassUid?: string;
  readonly implementationVersionName?: string;
  readonly asyncOperationsWindow?: AsyncOperationsWindow;
  readonly roleSelections: readonly RoleSelection[];
  readonly sopClassExtendedNegotiations: readonly SopClassExtendedNegotiation[];
  readonly sopClassCommonExtendedNegotiations: readonly SopClassCommonExtendedNegotiation[];
  readonly userIdentityRq?: UserIdentityRq;
  readonly userIdentityAc?: UserIdentityAc;
  readonly unknownItems: readonly UnknownItem[];
}

/** A-ASSOCIATE-RQ PDU (PS3.8 §9.3.2). */
export interface AAssociateRq {
  readonly type: 'AAssociateRq';
  readonly protocolVersion: number;
  readonly calledAeTitle: string;
  readonly callingAeTitle: string;
  readonly applicationContextName: string;
  readonly presentationContexts: readonly ProposedContext[];
  readonly userInformation: UserInformation;
}

/** A-ASSOCIATE-AC PDU (PS3.8 §9.3.3). AE titles echo the request and are not tested on receipt. */
export interface AAssociateAc {
  readonly type: 'AAssociateAc';
  readonly protocolVersion: number;
  readonly calledAeTitle: string;
  readonly callingAeTitle: string;
  readonly applicationContextName: string;
  readonly presentationContexts: readonly ContextResult[];
  readonly userInformation: UserInformation;
}

/** A-ASSOCIATE-RJ PDU (PS3.8 §9.3.4). */
export interface AAssociateRj {
  readonly type: 'AAssociateRj';
  readonly result: RejectResult;
  readonly source: RejectSource;
  readonly reason: number;
}

/** One Presentation Data Value item of a P-DATA-TF PDU (PS3.8 §9.3.5.1, Annex E.2). */
export interface Pdv {
  readonly contextId: number;
  readonly isCommand: boolean;
  readonly isLast: boolean;
  /** A view into the received bytes: no copy was made. */
  readonly data: Buffer;
}

/** P-DATA-TF PDU (PS3.8 §9.3.5). */
export interface PDataTf {
  readonly type: 'PDataTf';
  readonly pdvs: readonly Pdv[];
}

/** A-RELEASE-RQ PDU (PS3.8 §9.3.6). */
export interface AReleaseRq {
  readonly type: 'AReleaseRq';
}

/** A-RELEASE-RP PDU (PS3.8 §9.3.7). */
export interface AReleaseRp {
  readonly type: 'AReleaseRp';
}

/** A-ABORT PDU (PS3.8 §9.3.8). */
export interface AAbort {
  readonly type: 'AAbort';
  readonly source: AbortSource;
  readonly reason: number;
}

/** Any upper-layer PDU. */
export type Pdu =
  | AAssociateRq
  | AAssociateAc
  | AAssociateRj
  | PDataTf
  | AReleaseRq
  | AReleaseRp
  | AAbort;

/** An empty user-information item, for building PDUs. */
export const EMPTY_USER_INFORMATION: UserInformation = {
  roleSelections: [],
  sopClassExtendedNegotiations: [],
  sopClassCommonExtendedNegotiations: [],
  unknownItems: [],
};
