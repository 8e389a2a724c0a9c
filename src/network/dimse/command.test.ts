/**
 * Checks the DIMSE command set codec: the command sets inside PDUs recorded from DCMTK 3.6.7
 * (`test/fixtures/pdu/`) decode to the fields their comments name and encode back to DCMTK's
 * bytes; random command sets survive encode → decode; malformed command sets each raise
 * ERR_DIMSE_MALFORMED naming the offending element.
 *
 * Layer: network/dimse (unit test). Malformed command sets are built element by element here,
 * not with `encodeCommand`, so that a slip in the encoder cannot hide one in the decoder.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadPduFixture } from '../../../test/helpers/hex-fixture.js';
import { DicomServerError } from '../../errors.js';
import { decodePdu } from '../pdu/decode.js';
import type { PDataTf } from '../pdu/types.js';
import {
  CommandField,
  type CommandSet,
  commandName,
  decodeCommand,
  encodeCommand,
  isResponse,
  NO_DATA_SET,
  responseFieldFor,
} from './command.js';

const VERIFICATION = '1.2.840.10008.1.1';
const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
const CT_SMALL_INSTANCE = '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322';

/** The command set carried by a single-PDV P-DATA-TF fixture. */
function fixtureCommandSet(name: string): Buffer {
  const pdu = decodePdu(loadPduFixture(name)) as PDataTf;
  expect(pdu.type).toBe('PDataTf');
  expect(pdu.pdvs).toHaveLength(1);
  const pdv = pdu.pdvs[0]!;
  expect(pdv.isCommand).toBe(true);
  expect(pdv.isLast).toBe(true);
  return pdv.data;
}

/** One Implicit VR Little Endian element: group, element, 32-bit length, value. */
function element(tag: number, value: Buffer | number[], length?: number): Buffer {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value);
  const header = Buffer.alloc(8);
  header.writeUInt16LE(tag >>> 16, 0);
  header.writeUInt16LE(tag & 0xffff, 2);
  header.writeUInt32LE(length ?? bytes.length, 4);
  return Buffer.concat([header, bytes]);
}

function us(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16LE(value, 0);
  return bytes;
}

/** The (tag, offset, length) of each element of a command set, walked independently of the codec. */
function walk(bytes: Buffer): { tag: number; offset: number; length: number }[] {
  const out: { tag: number; offset: number; length: number }[] = [];
  for (let offset = 0; offset < bytes.length; ) {
    const tag = ((bytes.readUInt16LE(offset) << 16) | bytes.readUInt16LE(offset + 2)) >>> 0;
    const length = bytes.readUInt32LE(offset + 4);
    out.push({ tag, offset, length });
    offset += 8 + length;
  }
  return out;
}

function decodeError(bytes: Buffer): DicomServerError {
  try {
    decodeCommand(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(DicomServerError);
    return error as DicomServerError;
  }
  throw new Error('decodeCommand accepted a malformed command set');
}

describe('decodeCommand on DCMTK command sets', () => {
  it("decodes echoscu's C-ECHO-RQ", () => {
    expect(decodeCommand(fixtureCommandSet('echo-03-p-data-tf-c-echo-rq.hex'))).toEqual({
      commandField: CommandField.CEchoRq,
      affectedSopClassUid: VERIFICATION,
      messageId: 1,
      hasDataset: false,
    } satisfies CommandSet);
  });

  it("decodes storescp's C-ECHO-RSP", () => {
    expect(decodeCommand(fixtureCommandSet('echo-04-p-data-tf-c-echo-rsp.hex'))).toEqual({
      commandField: CommandField.CEchoRsp,
      affectedSopClassUid: VERIFICATION,
      messageIdBeingRespondedTo: 1,
      status: 0x0000,
      hasDataset: false,
    } satisfies CommandSet);
  });

  it("decodes storescu's C-STORE-RQ, whose data set type 0x0001 announces a data set", () => {
    expect(decodeCommand(fixtureCommandSet('store-03-p-data-tf-c-store-rq.hex'))).toEqual({
      commandField: CommandField.CStoreRq,
      affectedSopClassUid: CT_IMAGE_STORAGE,
      messageId: 1,
      priority: 0,
      affectedSopInstanceUid: CT_SMALL_INSTANCE,
      hasDataset: true,
    } satisfies CommandSet);
  });

  it("decodes storescp's C-STORE-RSP", () => {
    expect(decodeCommand(fixtureCommandSet('store-07-p-data-tf-c-store-rsp.hex'))).toEqual({
      commandField: CommandField.CStoreRsp,
      affectedSopClassUid: CT_IMAGE_STORAGE,
      messageIdBeingRespondedTo: 1,
      status: 0x0000,
      affectedSopInstanceUid: CT_SMALL_INSTANCE,
      hasDataset: false,
    } satisfies CommandSet);
  });
});

describe('encodeCommand against DCMTK', () => {
  it.each([
    'echo-03-p-data-tf-c-echo-rq.hex',
    'echo-04-p-data-tf-c-echo-rsp.hex',
    'store-07-p-data-tf-c-store-rsp.hex',
  ])('encodes what it decoded from %s to the same bytes', (name) => {
    const bytes = fixtureCommandSet(name);
    expect(encodeCommand(decodeCommand(bytes)).toString('hex')).toBe(bytes.toString('hex'));
  });

  it('encodes the C-STORE-RQ like storescu but for the data set type value (0x0000, not 0x0001)', () => {
    // PS3.7 Table E.1-1: any value other than 0x0101 means a data set follows. DCMTK writes
    // 0x0001; we write 0x0000. Element order, lengths and UID padding are DCMTK's.
    const bytes = fixtureCommandSet('store-03-p-data-tf-c-store-rq.hex');
    const ours = encodeCommand(decodeCommand(bytes));
    const typeElement = walk(bytes).find((e) => e.tag === 0x0000_0800)!;
    expect(bytes.readUInt16LE(typeElement.offset + 8)).toBe(0x0001);
    const expected = Buffer.from(bytes);
    expected.writeUInt16LE(0x0000, typeElement.offset + 8);
    expect(ours.toString('hex')).toBe(expected.toString('hex'));
  });
});

const u16 = fc.integer({ min: 0, max: 0xffff });
const tagValue = fc.integer({ min: 0, max: 0xffffffff });
const uid = fc
  .array(fc.integer({ min: 0, max: 99_999_999 }), { minLength: 1, maxLength: 8 })
  .map((parts) => parts.join('.'));
/** Printable ASCII without leading or trailing spaces: AE and LO padding is not significant. */
function trimmedText(maxLength: number): fc.Arbitrary<string> {
  return fc
    .string({
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
      maxLength,
    })
    .map((text) => text.trim());
}

const commandSet: fc.Arbitrary<CommandSet> = fc.record(
  {
    commandField: u16,
    hasDataset: fc.boolean(),
    messageId: u16,
    messageIdBeingRespondedTo: u16,
    affectedSopClassUid: uid,
    requestedSopClassUid: uid,
    affectedSopInstanceUid: uid,
    requestedSopInstanceUid: uid,
    priority: fc.constantFrom(0, 1, 2),
    status: u16,
    offendingElement: fc.array(tagValue, { maxLength: 4 }),
    errorComment: trimmedText(64),
    errorId: u16,
    moveDestination: trimmedText(16),
    eventTypeId: u16,
    actionTypeId: u16,
    attributeIdentifierList: fc.array(tagValue, { maxLength: 6 }),
    numberOfRemainingSuboperations: u16,
    numberOfCompletedSuboperations: u16,
    numberOfFailedSuboperations: u16,
    numberOfWarningSuboperations: u16,
    moveOriginatorAeTitle: trimmedText(16),
    moveOriginatorMessageId: u16,
  },
  { requiredKeys: ['commandField', 'hasDataset'] },
);

describe('command set round trips', () => {
  it('decodes what it encoded to the same command set', () => {
    fc.assert(
      fc.property(commandSet, (command) => {
        expect(decodeCommand(encodeCommand(command))).toEqual(command);
      }),
      { numRuns: 500 },
    );
  });

  it('pads an odd-length UID with a NUL and an odd-length text with a space (PS3.5 §7.1)', () => {
    const bytes = encodeCommand({
      commandField: CommandField.CMoveRq,
      hasDataset: true,
      messageId: 7,
      affectedSopClassUid: '1.2.3',
      moveDestination: 'ABC',
      priority: 0,
    });
    const valueAt = (encoded: Buffer, tag: number) => {
      const e = walk(encoded).find((element) => element.tag === tag)!;
      return encoded.subarray(e.offset + 8, e.offset + 8 + e.length);
    };
    expect(valueAt(bytes, 0x0000_0002)).toEqual(Buffer.from('1.2.3\0', 'latin1'));
    expect(valueAt(bytes, 0x0000_0600)).toEqual(Buffer.from('ABC ', 'latin1'));
    const failure = encodeCommand({
      commandField: CommandField.CStoreRsp,
      hasDataset: false,
      messageIdBeingRespondedTo: 1,
      status: 0xa700,
      errorComment: 'storage full!',
    });
    expect(valueAt(failure, 0x0000_0902)).toEqual(Buffer.from('storage full! ', 'latin1'));
  });

  it('writes a correct group length, even value lengths and ascending tags', () => {
    fc.assert(
      fc.property(commandSet, (command) => {
        const bytes = encodeCommand(command);
        const elements = walk(bytes);
        expect(elements[0]).toEqual({ tag: 0x0000_0000, offset: 0, length: 4 });
        expect(bytes.readUInt32LE(8)).toBe(bytes.length - 12);
        for (const [i, e] of elements.entries()) {
          expect(e.tag >>> 16).toBe(0);
          expect(e.length % 2).toBe(0);
          if (i > 0) expect(e.tag).toBeGreaterThan(elements[i - 1]!.tag);
        }
        const dataSetType = elements.find((e) => e.tag === 0x0000_0800)!;
        const value = bytes.readUInt16LE(dataSetType.offset + 8);
        expect(value === NO_DATA_SET).toBe(!command.hasDataset);
      }),
      { numRuns: 200 },
    );
  });

  it('decodes the same command set whatever the order of its elements', () => {
    fc.assert(
      fc.property(commandSet, fc.gen(), (command, g) => {
        const bytes = encodeCommand(command);
        const parts = walk(bytes).map((e) => bytes.subarray(e.offset, e.offset + 8 + e.length));
        const shuffled = g(fc.shuffledSubarray, parts, {
          minLength: parts.length,
          maxLength: parts.length,
        });
        expect(decodeCommand(Buffer.concat(shuffled))).toEqual(command);
      }),
      { numRuns: 200 },
    );
  });

  it('skips command elements it does not know', () => {
    const bytes = Buffer.concat([
      element(0x0000_0100, us(CommandField.CEchoRq)),
      element(0x0000_0001, [0, 0, 0, 0]), // Length to End, retired
      element(0x0000_4000, Buffer.from('retired ')), // a retired command element
      element(0x0000_0800, us(NO_DATA_SET)),
    ]);
    expect(decodeCommand(bytes)).toEqual({
      commandField: CommandField.CEchoRq,
      hasDataset: false,
    });
  });

  it('takes a missing Command Data Set Type as "no data set"', () => {
    expect(decodeCommand(element(0x0000_0100, us(CommandField.CEchoRq))).hasDataset).toBe(false);
  });
});

describe('malformed command sets', () => {
  const commandFieldElement = element(0x0000_0100, us(CommandField.CEchoRq)); // 10 bytes

  it.each<[string, Buffer, Record<string, number>]>([
    [
      'an element outside group 0000',
      Buffer.concat([commandFieldElement, element(0x0008_0016, Buffer.from(VERIFICATION))]),
      { offset: 10, tag: 0x0008_0016 },
    ],
    [
      'a data set element first',
      Buffer.concat([element(0x0010_0010, Buffer.from('DOE^JOHN')), commandFieldElement]),
      { offset: 0, tag: 0x0010_0010 },
    ],
    [
      'a length overrunning the command set',
      Buffer.concat([commandFieldElement, element(0x0000_0002, Buffer.from('1.2'), 200)]),
      { offset: 10, tag: 0x0000_0002 },
    ],
    [
      'a length of 0xFFFFFFFF (undefined length)',
      Buffer.concat([commandFieldElement, element(0x0000_0902, Buffer.alloc(0), 0xffffffff)]),
      { offset: 10, tag: 0x0000_0902 },
    ],
    [
      'an element header cut short',
      Buffer.concat([commandFieldElement, Buffer.from([0x00, 0x00, 0x10, 0x01, 0x02])]),
      { offset: 10 },
    ],
    [
      'no Command Field',
      Buffer.concat([
        element(0x0000_0000, [18, 0, 0, 0]),
        element(0x0000_0110, us(1)),
        element(0x0000_0800, us(NO_DATA_SET)),
      ]),
      {},
    ],
    ['an empty command set', Buffer.alloc(0), {}],
    [
      'a Command Field (US) of length 4',
      element(0x0000_0100, [0x30, 0x00, 0x00, 0x00]),
      { tag: 0x0000_0100 },
    ],
    [
      'a Message ID (US) of length 1',
      Buffer.concat([commandFieldElement, element(0x0000_0110, [0x01])]),
      { tag: 0x0000_0110 },
    ],
    [
      'a Command Data Set Type (US) of length 0',
      Buffer.concat([commandFieldElement, element(0x0000_0800, [])]),
      { tag: 0x0000_0800 },
    ],
    [
      'an Offending Element (AT) of length 6',
      Buffer.concat([commandFieldElement, element(0x0000_0901, [0x10, 0, 0x10, 0, 0, 0])]),
      { tag: 0x0000_0901 },
    ],
  ])('rejects %s with ERR_DIMSE_MALFORMED', (_what, bytes, details) => {
    const error = decodeError(bytes);
    expect(error.code).toBe('ERR_DIMSE_MALFORMED');
    expect(error.details).toMatchObject(details);
  });
});

describe('command field names', () => {
  it.each([
    [CommandField.CStoreRq, 'C-STORE-RQ'],
    [CommandField.CEchoRsp, 'C-ECHO-RSP'],
    [CommandField.NEventReportRq, 'N-EVENT-REPORT-RQ'],
    [CommandField.NEventReportRsp, 'N-EVENT-REPORT-RSP'],
    [CommandField.NActionRsp, 'N-ACTION-RSP'],
    [CommandField.CCancelRq, 'C-CANCEL-RQ'],
    [0x0999, '0x0999'],
  ])('names command field %d "%s"', (field, name) => {
    expect(commandName(field)).toBe(name);
  });

  it('tells responses from requests and pairs them', () => {
    expect(isResponse(CommandField.CFindRsp)).toBe(true);
    expect(isResponse(CommandField.CFindRq)).toBe(false);
    expect(isResponse(CommandField.CCancelRq)).toBe(false);
    expect(responseFieldFor(CommandField.CMoveRq)).toBe(CommandField.CMoveRsp);
    expect(responseFieldFor(CommandField.NCreateRq)).toBe(CommandField.NCreateRsp);
  });
});
