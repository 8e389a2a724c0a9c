/**
 * Checks `decodePdu` against PDUs recorded from DCMTK 3.6.7 exchanges (`test/fixtures/pdu/`,
 * each file's comment says what is inside), checks that encoding what was decoded gives DCMTK's
 * bytes back, and feeds a table of malformed PDUs, each of which must raise its own error code,
 * field, byte offset and A-ABORT reason.
 *
 * Layer: network/pdu (unit test). The malformed PDUs are built byte by byte here, not with
 * `encode.ts`, so that a slip in the encoder cannot hide one in the decoder.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPduFixture, PDU_FIXTURE_DIR } from '../../../test/helpers/hex-fixture.js';
import { DicomServerError, type ErrorCode } from '../../errors.js';
import { decodePdu } from './decode.js';
import { encodePdu } from './encode.js';
import {
  type AAssociateAc,
  type AAssociateRq,
  AbortReason,
  type PDataTf,
  type Pdu,
  PresentationContextResult,
  RejectReason,
  RejectResult,
  RejectSource,
} from './types.js';

const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';
const VERIFICATION = '1.2.840.10008.1.1';
const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
const PATIENT_ROOT_GET = '1.2.840.10008.5.1.4.1.2.1.3';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const CT_SMALL_INSTANCE = '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322';
const DCMTK_USER_INFORMATION = {
  maxPduLength: 16384,
  implementationClassUid: '1.2.276.0.7230010.3.0.3.6.7',
  implementationVersionName: 'OFFIS_DCMTK_367',
  roleSelections: [],
  sopClassExtendedNegotiations: [],
  sopClassCommonExtendedNegotiations: [],
  unknownItems: [],
};

function decodeFixture<T extends Pdu['type']>(name: string, type: T): Extract<Pdu, { type: T }> {
  const pdu = decodePdu(loadPduFixture(name));
  expect(pdu.type).toBe(type);
  return pdu as Extract<Pdu, { type: T }>;
}

/** The single PDV of a P-DATA-TF fixture, checked to be a view into the fixture's bytes. */
function singlePdv(name: string): PDataTf['pdvs'][number] {
  const bytes = loadPduFixture(name);
  const pdu = decodePdu(bytes) as PDataTf;
  expect(pdu.type).toBe('PDataTf');
  expect(pdu.pdvs).toHaveLength(1);
  const pdv = pdu.pdvs[0]!;
  expect(pdv.data.buffer).toBe(bytes.buffer);
  expect(pdv.data.byteOffset).toBe(bytes.byteOffset + 12);
  return pdv;
}

describe('decodePdu on DCMTK fixtures', () => {
  it('decodes the A-ASSOCIATE-RQ of echoscu', () => {
    expect(decodeFixture('echo-01-a-associate-rq.hex', 'AAssociateRq')).toEqual({
      type: 'AAssociateRq',
      protocolVersion: 1,
      calledAeTitle: 'STORESCP',
      callingAeTitle: 'ECHOSCU',
      applicationContextName: APPLICATION_CONTEXT,
      presentationContexts: [
        { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] },
      ],
      userInformation: DCMTK_USER_INFORMATION,
    } satisfies AAssociateRq);
  });

  it("decodes storescp's A-ASSOCIATE-AC to echoscu", () => {
    expect(decodeFixture('echo-02-a-associate-ac.hex', 'AAssociateAc')).toEqual({
      type: 'AAssociateAc',
      protocolVersion: 1,
      calledAeTitle: 'STORESCP',
      callingAeTitle: 'ECHOSCU',
      applicationContextName: APPLICATION_CONTEXT,
      presentationContexts: [
        { id: 1, result: PresentationContextResult.Acceptance, transferSyntax: IMPLICIT_LE },
      ],
      userInformation: DCMTK_USER_INFORMATION,
    } satisfies AAssociateAc);
  });

  it('decodes the C-ECHO-RQ command PDV as a view into the received bytes', () => {
    const pdv = singlePdv('echo-03-p-data-tf-c-echo-rq.hex');
    expect(pdv).toMatchObject({ contextId: 1, isCommand: true, isLast: true });
    expect(pdv.data).toHaveLength(68);
    // (0000,0000) UL, the command group length, opens the command set.
    expect(pdv.data.subarray(0, 12).toString('hex')).toBe('000000000400000038000000');
    expect(pdv.data.toString('latin1')).toContain(`${VERIFICATION}\0`);
  });

  it('decodes the C-ECHO-RSP command PDV', () => {
    const pdv = singlePdv('echo-04-p-data-tf-c-echo-rsp.hex');
    expect(pdv).toMatchObject({ contextId: 1, isCommand: true, isLast: true });
    expect(pdv.data).toHaveLength(78);
    expect(pdv.data.readUInt32LE(8)).toBe(66);
  });

  it('decodes A-RELEASE-RQ and A-RELEASE-RP', () => {
    expect(decodeFixture('echo-05-a-release-rq.hex', 'AReleaseRq')).toEqual({ type: 'AReleaseRq' });
    expect(decodeFixture('echo-06-a-release-rp.hex', 'AReleaseRp')).toEqual({ type: 'AReleaseRp' });
  });

  it('decodes the 128 presentation contexts storescu proposes', () => {
    const rq = decodeFixture('store-01-a-associate-rq.hex', 'AAssociateRq');
    expect(rq).toMatchObject({
      calledAeTitle: 'STORESCP',
      callingAeTitle: 'STORESCU',
      applicationContextName: APPLICATION_CONTEXT,
      userInformation: DCMTK_USER_INFORMATION,
    });
    const contexts = rq.presentationContexts;
    expect(contexts.map((context) => context.id)).toEqual(
      Array.from({ length: 128 }, (_, index) => 2 * index + 1),
    );
    contexts.forEach((context, index) => {
      const isFirstOfPair = index % 2 === 0;
      expect(context.transferSyntaxes).toEqual(
        isFirstOfPair ? [EXPLICIT_LE] : [EXPLICIT_BE, IMPLICIT_LE],
      );
      if (!isFirstOfPair) expect(context.abstractSyntax).toBe(contexts[index - 1]!.abstractSyntax);
    });
    expect(new Set(contexts.map((context) => context.abstractSyntax)).size).toBe(64);
    expect(contexts.find((context) => context.id === 41)).toEqual({
      id: 41,
      abstractSyntax: CT_IMAGE_STORAGE,
      transferSyntaxes: [EXPLICIT_LE],
    });
    expect(contexts[0]!.abstractSyntax).toBe('1.2.840.10008.5.1.4.1.1.9.1.3');
    expect(contexts[127]!.abstractSyntax).toBe('1.2.840.10008.5.1.4.1.1.12.2');
  });

  it("decodes storescp's acceptance of all 128 storage contexts", () => {
    const ac = decodeFixture('store-02-a-associate-ac.hex', 'AAssociateAc');
    expect(ac).toMatchObject({ calledAeTitle: 'STORESCP', callingAeTitle: 'STORESCU' });
    expect(ac.userInformation).toEqual(DCMTK_USER_INFORMATION);
    expect(ac.presentationContexts).toEqual(
      Array.from({ length: 128 }, (_, index) => ({
        id: 2 * index + 1,
        result: PresentationContextResult.Acceptance,
        transferSyntax: index % 2 === 0 ? EXPLICIT_LE : EXPLICIT_BE,
      })),
    );
  });

  it('decodes the C-STORE-RQ command PDV of CT_small.dcm', () => {
    const pdv = singlePdv('store-03-p-data-tf-c-store-rq.hex');
    expect(pdv).toMatchObject({ contextId: 41, isCommand: true, isLast: true });
    expect(pdv.data).toHaveLength(142);
    expect(pdv.data.toString('latin1')).toContain(CT_IMAGE_STORAGE);
    expect(pdv.data.toString('latin1')).toContain(CT_SMALL_INSTANCE);
  });

  it('decodes the last data set fragment of CT_small.dcm', () => {
    const pdv = singlePdv('store-06-p-data-tf-data-set-last.hex');
    expect(pdv).toMatchObject({ contextId: 41, isCommand: false, isLast: true });
    expect(pdv.data).toHaveLength(5988);
  });

  it('decodes the C-STORE-RSP command PDV', () => {
    const pdv = singlePdv('store-07-p-data-tf-c-store-rsp.hex');
    expect(pdv).toMatchObject({ contextId: 41, isCommand: true, isLast: true });
    expect(pdv.data).toHaveLength(142);
    expect(pdv.data.toString('latin1')).toContain(CT_SMALL_INSTANCE);
  });

  it('decodes the SCP/SCU role selection sub-items getscu proposes', () => {
    const rq = decodeFixture('get-01-a-associate-rq.hex', 'AAssociateRq');
    expect(rq).toMatchObject({ calledAeTitle: 'STORESCP', callingAeTitle: 'GETSCU' });
    const contexts = rq.presentationContexts;
    expect(contexts).toHaveLength(121);
    expect(contexts[0]).toEqual({
      id: 1,
      abstractSyntax: PATIENT_ROOT_GET,
      transferSyntaxes: [EXPLICIT_LE, EXPLICIT_BE, IMPLICIT_LE],
    });
    for (const context of contexts) {
      expect(context.transferSyntaxes).toEqual([EXPLICIT_LE, EXPLICIT_BE, IMPLICIT_LE]);
    }
    // One role selection per storage context, in the same order: getscu is SCP for C-STORE.
    expect(rq.userInformation).toEqual({
      ...DCMTK_USER_INFORMATION,
      maxPduLength: 32768,
      roleSelections: contexts.slice(1).map((context) => ({
        sopClassUid: context.abstractSyntax,
        scuRole: false,
        scpRole: true,
      })),
    });
  });

  it("decodes storescp's rejection of the C-GET context and its silence on roles", () => {
    const ac = decodeFixture('get-02-a-associate-ac.hex', 'AAssociateAc');
    expect(ac.presentationContexts).toHaveLength(121);
    expect(ac.presentationContexts[0]).toEqual({
      id: 1,
      result: PresentationContextResult.AbstractSyntaxNotSupported,
      transferSyntax: IMPLICIT_LE,
    });
    for (const context of ac.presentationContexts.slice(1)) {
      expect(context).toMatchObject({
        result: PresentationContextResult.Acceptance,
        transferSyntax: EXPLICIT_LE,
      });
    }
    expect(ac.userInformation).toEqual(DCMTK_USER_INFORMATION);
  });

  it('decodes the A-ASSOCIATE-RJ of storescp --refuse', () => {
    expect(decodeFixture('refuse-02-a-associate-rj.hex', 'AAssociateRj')).toEqual({
      type: 'AAssociateRj',
      result: RejectResult.RejectedPermanent,
      source: RejectSource.ServiceUser,
      reason: RejectReason.NoReasonGiven,
    });
  });

  it('decodes the A-ABORT of echoscu --abort', () => {
    expect(decodeFixture('abort-05-a-abort.hex', 'AAbort')).toEqual({
      type: 'AAbort',
      source: 0,
      reason: 0,
    });
  });
});

/**
 * Offsets of item byte 7 (reserved) of each presentation context item of an A-ASSOCIATE-RQ,
 * found by walking the items on their own lengths.
 */
function reservedContextByteOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  if (bytes[0] !== 0x01) return offsets;
  for (let offset = 6 + 68; offset < bytes.length; offset += 4 + bytes.readUInt16BE(offset + 2)) {
    if (bytes[offset] === 0x20) offsets.push(offset + 6);
  }
  return offsets;
}

describe('decode then encode of DCMTK fixtures', () => {
  const names = readdirSync(PDU_FIXTURE_DIR).filter((name) => name.endsWith('.hex'));

  it('finds the recorded fixtures', () => {
    expect(names.length).toBeGreaterThanOrEqual(15);
  });

  // DCMTK writes FFH into a reserved byte of every presentation context item it proposes (the
  // place the AC uses for Result/Reason); PS3.8 Table 9-13 says to send 00H and not to test it.
  // We send 00H, so those bytes, and only those, differ.
  it.each(names)('gives back the bytes of %s, except DCMTK’s FFH in reserved bytes', (name) => {
    const recorded = loadPduFixture(name);
    const encoded = encodePdu(decodePdu(recorded));
    expect(encoded).toHaveLength(recorded.length);
    const differing = [...recorded.keys()].filter((index) => recorded[index] !== encoded[index]);
    const quirks = reservedContextByteOffsets(recorded);
    expect(differing).toEqual(quirks);
    for (const offset of quirks) {
      expect([recorded[offset], encoded[offset]]).toEqual([0xff, 0x00]);
    }
  });
});

// ---- Hand-built PDUs for the malformed cases -------------------------------------------------

function u16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

function ascii(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** Raw bytes: byte values and buffers, concatenated. */
function raw(...parts: (number | Buffer)[]): Buffer {
  return Buffer.concat(
    parts.map((part) => (typeof part === 'number' ? Buffer.from([part]) : part)),
  );
}

/** An item whose length field is right: type, reserved, 16-bit length, value. */
function item(type: number, ...value: (number | Buffer)[]): Buffer {
  const body = raw(...value);
  return raw(type, 0, u16(body.length), body);
}

/** A PDU whose length field is right. */
function pdu(type: number, ...body: (number | Buffer)[]): Buffer {
  const value = raw(...body);
  return raw(type, 0, u32(value.length), value);
}

/** Protocol version, reserved, AE titles and 32 reserved bytes: 68 bytes, items start at 74. */
const ASSOCIATE_FIXED = raw(
  u16(1),
  u16(0),
  ascii('CALLED          CALLING         '),
  Buffer.alloc(32),
);
/** 25 bytes at offset 74. */
const APPLICATION_CONTEXT_ITEM = item(0x10, ascii(APPLICATION_CONTEXT));
const ABSTRACT_SYNTAX_ITEM = item(0x30, ascii(VERIFICATION));
const TRANSFER_SYNTAX_ITEM = item(0x40, ascii(IMPLICIT_LE));
/** 50 bytes at offset 99. */
const CONTEXT_ITEM = item(0x20, 1, 0, 0, 0, ABSTRACT_SYNTAX_ITEM, TRANSFER_SYNTAX_ITEM);
const MAX_LENGTH_SUB_ITEM = item(0x51, u32(16384));

/** An A-ASSOCIATE-RQ with the given items after the fixed fields. */
function rq(...items: Buffer[]): Buffer {
  return pdu(0x01, ASSOCIATE_FIXED, ...items);
}

/** An A-ASSOCIATE-RQ whose user information item (at offset 149, value at 153) holds `value`. */
function rqWithUserInformation(...value: (number | Buffer)[]): Buffer {
  return rq(APPLICATION_CONTEXT_ITEM, CONTEXT_ITEM, item(0x50, ...value));
}

describe('hand-built PDUs', () => {
  it('decode as expected when well formed', () => {
    expect(decodePdu(rqWithUserInformation(MAX_LENGTH_SUB_ITEM))).toEqual({
      type: 'AAssociateRq',
      protocolVersion: 1,
      calledAeTitle: 'CALLED',
      callingAeTitle: 'CALLING',
      applicationContextName: APPLICATION_CONTEXT,
      presentationContexts: [
        { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] },
      ],
      userInformation: {
        maxPduLength: 16384,
        roleSelections: [],
        sopClassExtendedNegotiations: [],
        sopClassCommonExtendedNegotiations: [],
        unknownItems: [],
      },
    });
    expect(decodePdu(pdu(0x04, u32(3), 7, 0x02, 0xaa))).toMatchObject({
      type: 'PDataTf',
      pdvs: [{ contextId: 7, isCommand: false, isLast: true, data: Buffer.from([0xaa]) }],
    });
  });
});

interface MalformedCase {
  readonly name: string;
  readonly bytes: Buffer;
  readonly code: ErrorCode;
  readonly abortReason: number;
  readonly field: string;
  readonly offset: number;
}

const MALFORMED: ErrorCode = 'ERR_PDU_MALFORMED';
const INVALID = AbortReason.InvalidPduParameterValue;
const UNKNOWN_ITEM: ErrorCode = 'ERR_PDU_UNKNOWN_ITEM';
const UNRECOGNIZED = AbortReason.UnrecognizedPduParameter;

const malformedCases: readonly MalformedCase[] = [
  // PDU header
  ...[0x00, 0x08, 0xff].map((type) => ({
    name: `unknown PDU type 0x${type.toString(16)}`,
    bytes: pdu(type, 0, 0, 0, 0),
    code: 'ERR_PDU_UNKNOWN_TYPE' as const,
    abortReason: AbortReason.UnrecognizedPdu,
    field: 'PDU-type',
    offset: 0,
  })),
  {
    name: 'a buffer shorter than the PDU header',
    bytes: raw(0x05, 0, 0, 0),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'PDU-length',
    offset: 2,
  },
  {
    name: 'a PDU-length beyond the buffer',
    bytes: raw(0x05, 0, u32(5), u32(0)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'PDU-length',
    offset: 2,
  },
  {
    name: 'a PDU-length short of the buffer',
    bytes: raw(0x05, 0, u32(3), u32(0)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'PDU-length',
    offset: 2,
  },
  // Fixed-length PDUs
  ...(
    [
      [0x03, 'A-ASSOCIATE-RJ'],
      [0x05, 'A-RELEASE-RQ'],
      [0x06, 'A-RELEASE-RP'],
      [0x07, 'A-ABORT'],
    ] as const
  ).flatMap(([type, name]) =>
    [3, 5].map((length) => ({
      name: `an ${name} of length ${length}`,
      bytes: pdu(type, Buffer.alloc(length)),
      code: MALFORMED,
      abortReason: INVALID,
      field: 'PDU-length',
      offset: 2,
    })),
  ),
  // A-ASSOCIATE-RQ items
  {
    name: 'an A-ASSOCIATE-RQ cut inside its fixed fields',
    bytes: pdu(0x01, ASSOCIATE_FIXED.subarray(0, 30)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Calling-AE-title',
    offset: 26,
  },
  {
    name: 'an item length overrunning the PDU',
    bytes: rq(APPLICATION_CONTEXT_ITEM, CONTEXT_ITEM, raw(0x50, 0, u16(9), MAX_LENGTH_SUB_ITEM)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Item',
    offset: 153,
  },
  {
    name: 'an item header cut short by the end of the PDU',
    bytes: rq(
      APPLICATION_CONTEXT_ITEM,
      CONTEXT_ITEM,
      item(0x50, MAX_LENGTH_SUB_ITEM),
      raw(0x50, 0),
    ),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Item-length',
    offset: 163,
  },
  {
    name: 'a sub-item length overrunning its presentation context item',
    bytes: rq(
      APPLICATION_CONTEXT_ITEM,
      item(0x20, 1, 0, 0, 0, raw(0x30, 0, u16(40), ascii(VERIFICATION)), TRANSFER_SYNTAX_ITEM),
      item(0x50, MAX_LENGTH_SUB_ITEM),
    ),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Sub-item',
    offset: 111,
  },
  {
    name: 'a presentation context with no abstract syntax',
    bytes: rq(
      APPLICATION_CONTEXT_ITEM,
      item(0x20, 1, 0, 0, 0, TRANSFER_SYNTAX_ITEM),
      item(0x50, MAX_LENGTH_SUB_ITEM),
    ),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Abstract Syntax Sub-Item',
    offset: 128,
  },
  {
    name: 'a presentation context with no transfer syntax',
    bytes: rq(
      APPLICATION_CONTEXT_ITEM,
      item(0x20, 1, 0, 0, 0, ABSTRACT_SYNTAX_ITEM),
      item(0x50, MAX_LENGTH_SUB_ITEM),
    ),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Transfer Syntax Sub-Item',
    offset: 128,
  },
  {
    name: 'a presentation context cut inside its context ID and reserved bytes',
    bytes: rq(APPLICATION_CONTEXT_ITEM, item(0x20, 1, 0), item(0x50, MAX_LENGTH_SUB_ITEM)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'reserved',
    offset: 104,
  },
  {
    name: 'an unknown item type in an A-ASSOCIATE-RQ',
    bytes: rq(APPLICATION_CONTEXT_ITEM, CONTEXT_ITEM, item(0x60, 1, 2), item(0x50)),
    code: UNKNOWN_ITEM,
    abortReason: UNRECOGNIZED,
    field: 'Item-type',
    offset: 149,
  },
  {
    name: 'a presentation context result item (21H) in an A-ASSOCIATE-RQ',
    bytes: rq(APPLICATION_CONTEXT_ITEM, item(0x21, 1, 0, 0, 0, TRANSFER_SYNTAX_ITEM), item(0x50)),
    code: UNKNOWN_ITEM,
    abortReason: UNRECOGNIZED,
    field: 'Item-type',
    offset: 99,
  },
  {
    name: 'an unknown sub-item type in a presentation context',
    bytes: rq(
      APPLICATION_CONTEXT_ITEM,
      item(0x20, 1, 0, 0, 0, ABSTRACT_SYNTAX_ITEM, item(0x41, 0)),
      item(0x50),
    ),
    code: UNKNOWN_ITEM,
    abortReason: UNRECOGNIZED,
    field: 'Item-type',
    offset: 128,
  },
  {
    name: 'an A-ASSOCIATE-RQ missing its user information item',
    bytes: rq(APPLICATION_CONTEXT_ITEM, CONTEXT_ITEM),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'User Information Item',
    offset: 149,
  },
  {
    name: 'an A-ASSOCIATE-RQ missing its application context item',
    bytes: rq(CONTEXT_ITEM, item(0x50, MAX_LENGTH_SUB_ITEM)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Application Context Item',
    offset: 136,
  },
  // A-ASSOCIATE-AC items
  {
    name: 'a presentation context item of the request form (20H) in an A-ASSOCIATE-AC',
    bytes: pdu(0x02, ASSOCIATE_FIXED, APPLICATION_CONTEXT_ITEM, CONTEXT_ITEM, item(0x50)),
    code: UNKNOWN_ITEM,
    abortReason: UNRECOGNIZED,
    field: 'Item-type',
    offset: 99,
  },
  {
    name: 'an abstract syntax sub-item in an A-ASSOCIATE-AC context result',
    bytes: pdu(
      0x02,
      ASSOCIATE_FIXED,
      APPLICATION_CONTEXT_ITEM,
      item(0x21, 1, 0, 0, 0, ABSTRACT_SYNTAX_ITEM),
      item(0x50),
    ),
    code: UNKNOWN_ITEM,
    abortReason: UNRECOGNIZED,
    field: 'Item-type',
    offset: 107,
  },
  // User information sub-items, cut short (the user information value starts at 153)
  {
    name: 'a user information sub-item header cut short',
    bytes: rqWithUserInformation(0x52, 0),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Item-length',
    offset: 155,
  },
  {
    name: 'a user information sub-item overrunning its item',
    bytes: rqWithUserInformation(0x51, 0, u16(8), u32(16384)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'User-data sub-item',
    offset: 157,
  },
  {
    name: 'a maximum length sub-item of 2 bytes',
    bytes: rqWithUserInformation(item(0x51, u16(0x4000))),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Maximum-length-received',
    offset: 157,
  },
  {
    name: 'a maximum length sub-item of 6 bytes',
    bytes: rqWithUserInformation(item(0x51, u32(16384), 0, 0)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'User-data sub-item',
    offset: 161,
  },
  {
    name: 'an asynchronous operations window sub-item of 2 bytes',
    bytes: rqWithUserInformation(item(0x53, u16(1))),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Maximum-number-operations-performed',
    offset: 159,
  },
  {
    name: 'a role selection sub-item whose UID overruns it',
    bytes: rqWithUserInformation(item(0x54, u16(30), ascii('1.2'), 1, 0)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'SOP-class-uid',
    offset: 159,
  },
  {
    name: 'a role selection sub-item without its role bytes',
    bytes: rqWithUserInformation(item(0x54, u16(3), ascii('1.2'))),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'SCU-role',
    offset: 162,
  },
  {
    name: 'a role selection sub-item with a byte beyond its roles',
    bytes: rqWithUserInformation(item(0x54, u16(3), ascii('1.2'), 1, 0, 0)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'User-data sub-item',
    offset: 164,
  },
  {
    name: 'a SOP class extended negotiation sub-item whose UID overruns it',
    bytes: rqWithUserInformation(item(0x56, u16(10), ascii('1.2'))),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'SOP-class-uid',
    offset: 159,
  },
  {
    name: 'a common extended negotiation sub-item whose related UIDs overrun it',
    bytes: rqWithUserInformation(
      item(0x57, u16(3), ascii('1.2'), u16(3), ascii('1.3'), u16(20), u16(3), ascii('1.4')),
    ),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Related',
    offset: 169,
  },
  {
    name: 'a common extended negotiation sub-item with a related UID cut short',
    bytes: rqWithUserInformation(
      item(0x57, u16(3), ascii('1.2'), u16(3), ascii('1.3'), u16(3), u16(3), ascii('1')),
    ),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Related-general-sop-class-uid',
    offset: 171,
  },
  {
    name: 'a user identity request whose primary field overruns it',
    bytes: rqWithUserInformation(item(0x58, 1, 0, u16(10), ascii('ab'))),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Primary-field',
    offset: 161,
  },
  {
    name: 'a user identity request without its secondary field length',
    bytes: rqWithUserInformation(item(0x58, 1, 0, u16(2), ascii('ab'))),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Secondary-field-length',
    offset: 163,
  },
  {
    name: 'a user identity acceptance whose server response overruns it',
    bytes: rqWithUserInformation(item(0x59, u16(4), 0)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'Server-response',
    offset: 159,
  },
  // P-DATA-TF
  {
    name: 'a P-DATA-TF with no PDV item',
    bytes: pdu(0x04),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'PDV',
    offset: 6,
  },
  ...[0, 1].map((length) => ({
    name: `a PDV item of length ${length}`,
    bytes: pdu(0x04, u32(length), Buffer.alloc(length)),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'PDV item-length',
    offset: 6,
  })),
  {
    name: 'a PDV item overrunning the P-DATA-TF',
    bytes: pdu(0x04, u32(10), 1, 0x03, 0xaa, 0xbb),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'PDV item',
    offset: 10,
  },
  {
    name: 'a second PDV item length cut short',
    bytes: pdu(0x04, u32(3), 1, 0x03, 0xaa, 0, 0),
    code: MALFORMED,
    abortReason: INVALID,
    field: 'PDV item-length',
    offset: 13,
  },
];

/** The error `decodePdu` throws for `bytes`; fails the test if it throws none or another kind. */
function decodeError(bytes: Buffer): DicomServerError {
  try {
    decodePdu(bytes);
  } catch (error) {
    if (error instanceof DicomServerError) return error;
    throw error;
  }
  throw new Error('decodePdu accepted a malformed PDU');
}

describe('decodePdu on malformed PDUs', () => {
  it.each(malformedCases)('rejects $name', ({ bytes, code, abortReason, field, offset }) => {
    const error = decodeError(bytes);
    expect(error.code).toBe(code);
    expect(error.details).toMatchObject({ abortReason, field, offset });
  });
});

describe('decodePdu on user information sub-items it does not know', () => {
  const bytes = rqWithUserInformation(
    MAX_LENGTH_SUB_ITEM,
    item(0x70, 1, 2, 3),
    item(0x52, ascii('1.2.3')),
    item(0xff),
  );

  it('skips them into unknownItems and decodes the rest', () => {
    const decoded = decodePdu(bytes) as AAssociateRq;
    expect(decoded.userInformation).toEqual({
      maxPduLength: 16384,
      implementationClassUid: '1.2.3',
      roleSelections: [],
      sopClassExtendedNegotiations: [],
      sopClassCommonExtendedNegotiations: [],
      unknownItems: [
        { itemType: 0x70, data: Uint8Array.from([1, 2, 3]) },
        { itemType: 0xff, data: new Uint8Array(0) },
      ],
    });
  });

  it('keeps them through an encode, after the known sub-items', () => {
    const reencoded = encodePdu(decodePdu(bytes));
    expect(reencoded).toEqual(
      rqWithUserInformation(
        MAX_LENGTH_SUB_ITEM,
        item(0x52, ascii('1.2.3')),
        item(0x70, 1, 2, 3),
        item(0xff),
      ),
    );
  });
});

describe('decodePdu leniency where PS3.8 says a field is not tested', () => {
  it('ignores reserved bytes and trims AE titles and UID padding', () => {
    const fixed = raw(
      u16(1),
      0xff,
      0xff,
      ascii('  CALLED        CALLING\0\0\0\0\0\0\0\0\0'),
      Buffer.alloc(32, 0xee),
    );
    const decoded = decodePdu(
      pdu(
        0x01,
        fixed,
        item(0x10, ascii(`${APPLICATION_CONTEXT}\0`)),
        item(
          0x20,
          1,
          0xff,
          0xff,
          0xff,
          item(0x30, ascii(`${VERIFICATION} `)),
          TRANSFER_SYNTAX_ITEM,
        ),
        item(0x50),
      ),
    ) as AAssociateRq;
    expect(decoded).toMatchObject({
      calledAeTitle: 'CALLED',
      callingAeTitle: 'CALLING',
      applicationContextName: APPLICATION_CONTEXT,
      presentationContexts: [
        { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] },
      ],
    });
  });
});
