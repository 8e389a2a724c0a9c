/**
 * Property-based round trips of the PDU codec: every PDU type, and every A-ASSOCIATE item and
 * user-information sub-item, generated at random, encodes to bytes that decode to the same object
 * (and encode again to the same bytes). Also checks the single-PDV P-DATA-TF header shortcut
 * against the general encoder.
 *
 * Layer: network/pdu (unit test). Generated AE titles and names carry no leading or trailing
 * spaces and UIDs no trailing NUL or space: the decoder drops that padding on purpose.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePdu } from './decode.js';
import { encodePDataHeader, encodePdu, PDV_HEADER_LENGTH } from './encode.js';
import {
  type AAbort,
  type AAssociateAc,
  type AAssociateRj,
  type AAssociateRq,
  AbortSource,
  type ContextResult,
  EMPTY_USER_INFORMATION,
  ItemType,
  type PDataTf,
  PDU_HEADER_LENGTH,
  type Pdu,
  type Pdv,
  PresentationContextResult,
  type ProposedContext,
  RejectResult,
  RejectSource,
  type UserInformation,
} from './types.js';

/** Fixed seed: a failure reproduces on every run; fast-check prints the counterexample. */
const RUN = { seed: 20240601, numRuns: 100 } as const;

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });

/** A UID: dot-separated decimal components, up to 64 characters. */
const uid = fc
  .array(fc.integer({ min: 0, max: 99_999_999 }), { minLength: 1, maxLength: 10 })
  .map((parts) => parts.join('.').slice(0, 64).replace(/\.$/, '0'));

/** Printable ASCII without leading or trailing spaces, up to `maxLength` characters. */
function trimmedText(maxLength: number): fc.Arbitrary<string> {
  return fc
    .string({
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
      maxLength,
    })
    .map((text) => text.trim());
}

const aeTitle = trimmedText(16);
const bytes = (maxLength: number) => fc.uint8Array({ maxLength });

// ---- User-information sub-items, one arbitrary each (PS3.8 Annex D, PS3.7 Annex D.3.3) ----

const maxPduLength = u32;
const implementationClassUid = uid;
const implementationVersionName = trimmedText(16);
const asyncOperationsWindow = fc.record({
  maxOperationsInvoked: u16,
  maxOperationsPerformed: u16,
});
const roleSelection = fc.record({ sopClassUid: uid, scuRole: fc.boolean(), scpRole: fc.boolean() });
const sopClassExtendedNegotiation = fc.record({
  sopClassUid: uid,
  serviceClassApplicationInformation: bytes(32),
});
const sopClassCommonExtendedNegotiation = fc.record({
  sopClassUid: uid,
  serviceClassUid: uid,
  relatedGeneralSopClassUids: fc.array(uid, { maxLength: 4 }),
});
const userIdentityRq = fc.record({
  identityType: u8,
  isPositiveResponseRequested: fc.boolean(),
  primaryField: bytes(64),
  secondaryField: bytes(64),
});
const userIdentityAc = fc.record({ serverResponse: bytes(64) });
const KNOWN_SUB_ITEMS = new Set<number>([
  ItemType.MaximumLength,
  ItemType.ImplementationClassUid,
  ItemType.AsynchronousOperationsWindow,
  ItemType.RoleSelection,
  ItemType.ImplementationVersionName,
  ItemType.SopClassExtendedNegotiation,
  ItemType.SopClassCommonExtendedNegotiation,
  ItemType.UserIdentityRq,
  ItemType.UserIdentityAc,
]);
const unknownItem = fc.record({
  itemType: u8.filter((type) => !KNOWN_SUB_ITEMS.has(type)),
  data: bytes(32),
});

/** A user-information item holding only what `fields` adds to the empty one. */
function userInformationWith(
  fields: fc.Arbitrary<Partial<UserInformation>>,
): fc.Arbitrary<UserInformation> {
  return fields.map((added) => ({ ...EMPTY_USER_INFORMATION, ...added }));
}

/** One arbitrary per sub-item, so that each is exercised on its own. */
const SUB_ITEMS: Readonly<Record<string, fc.Arbitrary<UserInformation>>> = {
  'maximum length': userInformationWith(maxPduLength.map((value) => ({ maxPduLength: value }))),
  'implementation class UID': userInformationWith(
    implementationClassUid.map((value) => ({ implementationClassUid: value })),
  ),
  'implementation version name': userInformationWith(
    implementationVersionName.map((value) => ({ implementationVersionName: value })),
  ),
  'asynchronous operations window': userInformationWith(
    asyncOperationsWindow.map((value) => ({ asyncOperationsWindow: value })),
  ),
  'SCP/SCU role selection': userInformationWith(
    fc.array(roleSelection, { minLength: 1, maxLength: 6 }).map((value) => ({
      roleSelections: value,
    })),
  ),
  'SOP class extended negotiation': userInformationWith(
    fc.array(sopClassExtendedNegotiation, { minLength: 1, maxLength: 4 }).map((value) => ({
      sopClassExtendedNegotiations: value,
    })),
  ),
  'SOP class common extended negotiation': userInformationWith(
    fc.array(sopClassCommonExtendedNegotiation, { minLength: 1, maxLength: 4 }).map((value) => ({
      sopClassCommonExtendedNegotiations: value,
    })),
  ),
  'user identity request': userInformationWith(
    userIdentityRq.map((value) => ({ userIdentityRq: value })),
  ),
  'user identity acceptance': userInformationWith(
    userIdentityAc.map((value) => ({ userIdentityAc: value })),
  ),
  unknown: userInformationWith(
    fc.array(unknownItem, { minLength: 1, maxLength: 4 }).map((value) => ({
      unknownItems: value,
    })),
  ),
};

/** Any mix of sub-items, each optional one present or not. */
const userInformation: fc.Arbitrary<UserInformation> = fc.record(
  {
    maxPduLength,
    implementationClassUid,
    implementationVersionName,
    asyncOperationsWindow,
    roleSelections: fc.array(roleSelection, { maxLength: 4 }),
    sopClassExtendedNegotiations: fc.array(sopClassExtendedNegotiation, { maxLength: 3 }),
    sopClassCommonExtendedNegotiations: fc.array(sopClassCommonExtendedNegotiation, {
      maxLength: 3,
    }),
    userIdentityRq,
    userIdentityAc,
    unknownItems: fc.array(unknownItem, { maxLength: 3 }),
  },
  {
    requiredKeys: [
      'roleSelections',
      'sopClassExtendedNegotiations',
      'sopClassCommonExtendedNegotiations',
      'unknownItems',
    ],
    noNullPrototype: true,
  },
);

// ---- PDUs ----

const proposedContext: fc.Arbitrary<ProposedContext> = fc.record({
  id: u8,
  abstractSyntax: uid,
  transferSyntaxes: fc.array(uid, { minLength: 1, maxLength: 5 }),
});

const contextResult: fc.Arbitrary<ContextResult> = fc.record({
  id: u8,
  result: fc.constantFrom(...Object.values(PresentationContextResult)),
  transferSyntax: uid,
});

function associateRq(info: fc.Arbitrary<UserInformation>): fc.Arbitrary<AAssociateRq> {
  return fc.record({
    type: fc.constant('AAssociateRq' as const),
    protocolVersion: u16,
    calledAeTitle: aeTitle,
    callingAeTitle: aeTitle,
    applicationContextName: uid,
    presentationContexts: fc.array(proposedContext, { maxLength: 8 }),
    userInformation: info,
  });
}

function associateAc(info: fc.Arbitrary<UserInformation>): fc.Arbitrary<AAssociateAc> {
  return fc.record({
    type: fc.constant('AAssociateAc' as const),
    protocolVersion: u16,
    calledAeTitle: aeTitle,
    callingAeTitle: aeTitle,
    applicationContextName: uid,
    presentationContexts: fc.array(contextResult, { maxLength: 8 }),
    userInformation: info,
  });
}

const associateRj: fc.Arbitrary<AAssociateRj> = fc.record({
  type: fc.constant('AAssociateRj' as const),
  result: fc.constantFrom(...Object.values(RejectResult)),
  source: fc.constantFrom(...Object.values(RejectSource)),
  reason: u8,
});

const pdv: fc.Arbitrary<Pdv> = fc.record({
  contextId: u8,
  isCommand: fc.boolean(),
  isLast: fc.boolean(),
  data: fc.uint8Array({ maxLength: 300 }).map((data) => Buffer.from(data)),
});

const pDataTf: fc.Arbitrary<PDataTf> = fc.record({
  type: fc.constant('PDataTf' as const),
  pdvs: fc.array(pdv, { minLength: 1, maxLength: 5 }),
});

const aAbort: fc.Arbitrary<AAbort> = fc.record({
  type: fc.constant('AAbort' as const),
  source: fc.constantFrom(...Object.values(AbortSource)),
  reason: u8,
});

const PDUS: Readonly<Record<Pdu['type'], fc.Arbitrary<Pdu>>> = {
  AAssociateRq: associateRq(userInformation),
  AAssociateAc: associateAc(userInformation),
  AAssociateRj: associateRj,
  PDataTf: pDataTf,
  AReleaseRq: fc.constant({ type: 'AReleaseRq' as const }),
  AReleaseRp: fc.constant({ type: 'AReleaseRp' as const }),
  AAbort: aAbort,
};

/** encode → decode gives the object back, and encoding that gives the same bytes again. */
function expectRoundTrip(pdu: Pdu): void {
  const encoded = encodePdu(pdu);
  expect(encoded.readUInt32BE(2)).toBe(encoded.length - PDU_HEADER_LENGTH);
  const decoded = decodePdu(encoded);
  expect(decoded).toEqual(pdu);
  expect(encodePdu(decoded).toString('hex')).toBe(encoded.toString('hex'));
}

describe('encodePdu then decodePdu', () => {
  it.each(Object.keys(PDUS) as Pdu['type'][])('round-trips a random %s', (type) => {
    fc.assert(fc.property(PDUS[type], expectRoundTrip), RUN);
  });

  it.each(Object.keys(SUB_ITEMS))(
    'round-trips a user information item holding only the %s sub-item',
    (name) => {
      const info = SUB_ITEMS[name]!;
      fc.assert(fc.property(fc.oneof(associateRq(info), associateAc(info)), expectRoundTrip), RUN);
    },
  );

  it('round-trips an A-ASSOCIATE with an empty user information item and no contexts', () => {
    expectRoundTrip({
      type: 'AAssociateRq',
      protocolVersion: 1,
      calledAeTitle: '',
      callingAeTitle: 'A',
      applicationContextName: '1.2.840.10008.3.1.1.1',
      presentationContexts: [],
      userInformation: EMPTY_USER_INFORMATION,
    });
  });

  it('pads AE titles with spaces to 16 bytes', () => {
    const encoded = encodePdu({
      type: 'AAssociateRq',
      protocolVersion: 1,
      calledAeTitle: 'ANY-SCP',
      callingAeTitle: 'ECHOSCU',
      applicationContextName: '1.2.840.10008.3.1.1.1',
      presentationContexts: [],
      userInformation: EMPTY_USER_INFORMATION,
    });
    expect(encoded.subarray(10, 42).toString('latin1')).toBe('ANY-SCP         ECHOSCU         ');
  });

  it('refuses an item whose value exceeds the 16-bit item length', () => {
    const pdu: AAssociateRq = {
      type: 'AAssociateRq',
      protocolVersion: 1,
      calledAeTitle: 'SCP',
      callingAeTitle: 'SCU',
      applicationContextName: '1.2.840.10008.3.1.1.1',
      presentationContexts: [],
      userInformation: {
        ...EMPTY_USER_INFORMATION,
        unknownItems: [{ itemType: 0x70, data: new Uint8Array(0x10000) }],
      },
    };
    expect(() => encodePdu(pdu)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', details: { itemType: 0x70 } }),
    );
  });
});

describe('encodePDataHeader', () => {
  it('gives the first bytes encodePdu writes for a single-PDV P-DATA-TF', () => {
    fc.assert(
      fc.property(pdv, ({ contextId, isCommand, isLast, data }) => {
        const header = encodePDataHeader(contextId, isCommand, isLast, data.length);
        expect(header).toHaveLength(PDU_HEADER_LENGTH + PDV_HEADER_LENGTH);
        const whole = encodePdu({
          type: 'PDataTf',
          pdvs: [{ contextId, isCommand, isLast, data }],
        });
        expect(Buffer.concat([header, data])).toEqual(whole);
      }),
      RUN,
    );
  });

  it('writes 32-bit lengths for data beyond 64 KiB', () => {
    const header = encodePDataHeader(255, false, true, 0x12345);
    expect(header.readUInt32BE(2)).toBe(0x12345 + PDV_HEADER_LENGTH);
    expect(header.readUInt32BE(6)).toBe(0x12345 + 2);
    expect([header[0], header[10], header[11]]).toEqual([0x04, 255, 0x02]);
  });
});
