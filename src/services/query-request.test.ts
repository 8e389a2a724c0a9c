/**
 * Checks how C-FIND, C-MOVE and C-GET identifiers become queries on the index, and which are
 * refused with which status (PS3.4 §C.4.1, §C.4.2, §C.4.3): levels of each root, hierarchical
 * and relational keys, unique keys, malformed values, character sets, unsupported keys, and
 * the sequence keys the index holds (PS3.4 §C.2.2.2.6).
 *
 * Layer: services (unit test).
 */
import { describe, expect, it } from 'vitest';
import { type IdentifierElement, writeIdentifier } from '../dicom/query/identifier.js';
import type { QueryRoot } from '../dicom/query/model.js';
import { encodeValue } from '../dicom/query/values.js';
import { TransferSyntax } from '../dicom/transfer-syntax.js';
import { SopClass } from '../dicom/uid.js';
import type { Vr } from '../dicom/vr.js';
import { Status } from '../network/dimse/status.js';
import {
  isQueryRefusal,
  MAX_LIST_VALUES,
  MAX_REQUEST_IDENTIFIER_BYTES,
  parseQueryRequest,
  type QueryPurpose,
  type QueryRefusal,
  type QueryRequest,
  queryRootOf,
} from './query-request.js';

const Tag = {
  SpecificCharacterSet: 0x00080005,
  StudyDate: 0x00080020,
  QueryRetrieveLevel: 0x00080052,
  Modality: 0x00080060,
  InstitutionName: 0x00080080,
  ReferencedStudySequence: 0x00081110,
  ReferencedSOPInstanceUID: 0x00081155,
  PatientName: 0x00100010,
  PatientID: 0x00100020,
  StudyInstanceUID: 0x0020000d,
  SeriesInstanceUID: 0x0020000e,
  SOPInstanceUID: 0x00080018,
  SeriesNumber: 0x00200011,
} as const;

const EXPLICIT_LE = { isExplicitVr: true, isLittleEndian: true };

/** An element with a text value (ASCII or UTF-8) or raw bytes. */
function el(tag: number, vr: Vr, value: string | Buffer = ''): IdentifierElement {
  return { tag, vr, value: typeof value === 'string' ? encodeValue(value, vr) : value };
}

function level(value: string): IdentifierElement {
  return el(Tag.QueryRetrieveLevel, 'CS', value);
}

interface ParseOptions {
  readonly root?: QueryRoot;
  readonly purpose?: QueryPurpose;
  readonly isRelational?: boolean;
  readonly transferSyntax?: string;
}

function parse(elements: IdentifierElement[], options: ParseOptions = {}) {
  const transferSyntax = options.transferSyntax ?? TransferSyntax.ExplicitVRLittleEndian;
  const encoding =
    transferSyntax === TransferSyntax.ImplicitVRLittleEndian
      ? { isExplicitVr: false, isLittleEndian: true }
      : transferSyntax === TransferSyntax.ExplicitVRBigEndian
        ? { isExplicitVr: true, isLittleEndian: false }
        : EXPLICIT_LE;
  return parseQueryRequest(
    writeIdentifier(elements, encoding),
    transferSyntax,
    options.root ?? 'study',
    options.purpose ?? 'find',
    { isRelational: options.isRelational ?? false },
  );
}

function accepted(result: QueryRequest | QueryRefusal): QueryRequest {
  if (isQueryRefusal(result)) throw new Error(`refused: ${JSON.stringify(result)}`);
  return result;
}

function refused(result: QueryRequest | QueryRefusal): QueryRefusal {
  if (!isQueryRefusal(result)) throw new Error('accepted');
  expect(result.errorComment.length).toBeGreaterThan(0);
  expect(result.errorComment.length).toBeLessThanOrEqual(64);
  return result;
}

describe('information model of a SOP class', () => {
  it('knows the Patient Root and Study Root FIND, MOVE and GET classes', () => {
    expect(queryRootOf(SopClass.PatientRootQueryRetrieveInformationModelFind)).toBe('patient');
    expect(queryRootOf(SopClass.PatientRootQueryRetrieveInformationModelMove)).toBe('patient');
    expect(queryRootOf(SopClass.PatientRootQueryRetrieveInformationModelGet)).toBe('patient');
    expect(queryRootOf(SopClass.StudyRootQueryRetrieveInformationModelFind)).toBe('study');
    expect(queryRootOf(SopClass.StudyRootQueryRetrieveInformationModelMove)).toBe('study');
    expect(queryRootOf(SopClass.StudyRootQueryRetrieveInformationModelGet)).toBe('study');
    expect(queryRootOf(SopClass.Verification)).toBeUndefined();
  });
});

describe('C-FIND identifiers', () => {
  const studyQuery = [
    level('STUDY'),
    el(Tag.PatientName, 'PN', 'DOE*'),
    el(Tag.StudyDate, 'DA', '20230101-20230131'),
    el(Tag.StudyInstanceUID, 'UI'),
    el(Tag.PatientID, 'LO'),
  ];

  for (const [name, transferSyntax] of Object.entries({
    'Implicit VR Little Endian': TransferSyntax.ImplicitVRLittleEndian,
    'Explicit VR Little Endian': TransferSyntax.ExplicitVRLittleEndian,
    'Explicit VR Big Endian': TransferSyntax.ExplicitVRBigEndian,
  })) {
    it(`reads a study query in ${name}`, () => {
      const request = accepted(parse(studyQuery, { transferSyntax }));
      expect(request.level).toBe('STUDY');
      expect(request.query).toEqual({
        root: 'study',
        level: 'STUDY',
        conditions: [
          { keyword: 'StudyDate', match: { kind: 'range', from: '20230101', to: '20230131' } },
          { keyword: 'PatientName', match: { kind: 'wildcard', pattern: 'DOE*' } },
        ],
        returnKeys: ['StudyDate', 'PatientName', 'PatientID', 'StudyInstanceUID'],
      });
      expect(request.unsupportedKeys).toEqual([]);
      expect(request.specificCharacterSet).toBeUndefined();
      expect(request.requested.map((element) => element.tag)).toEqual([
        Tag.StudyDate,
        Tag.QueryRetrieveLevel,
        Tag.PatientName,
        Tag.PatientID,
        Tag.StudyInstanceUID,
      ]);
    });
  }

  it('refuses an identifier without a Query/Retrieve Level with 0xA900', () => {
    const refusal = refused(parse([el(Tag.PatientName, 'PN', 'DOE')]));
    expect(refusal.status).toBe(Status.DataSetDoesNotMatchSopClass);
    expect(refusal.offendingElements).toEqual([Tag.QueryRetrieveLevel]);
  });

  it('refuses a level the information model does not have with 0xA900', () => {
    const patientInStudyRoot = refused(parse([level('PATIENT')], { root: 'study' }));
    expect(patientInStudyRoot.status).toBe(Status.DataSetDoesNotMatchSopClass);
    expect(patientInStudyRoot.errorComment).toBe('no PATIENT level in the Study Root model');
    const unknown = refused(parse([level('FRAME')], { root: 'patient' }));
    expect(unknown.status).toBe(Status.DataSetDoesNotMatchSopClass);
    expect(refused(parse([level('')])).status).toBe(Status.DataSetDoesNotMatchSopClass);
  });

  it('accepts every level of each root', () => {
    expect(accepted(parse([level('PATIENT')], { root: 'patient' })).level).toBe('PATIENT');
    expect(accepted(parse([level('STUDY')], { root: 'study' })).level).toBe('STUDY');
    const series = [level('SERIES'), el(Tag.StudyInstanceUID, 'UI', '1.2.3')];
    expect(accepted(parse(series)).level).toBe('SERIES');
    const image = [...series, level('IMAGE'), el(Tag.SeriesInstanceUID, 'UI', '1.2.3.4')];
    expect(accepted(parse(image.slice(1))).level).toBe('IMAGE');
  });

  it('ignores a key with a value below the level (0xFF01), and answers it empty either way', () => {
    const ignored = accepted(
      parse([
        level('STUDY'),
        el(Tag.Modality, 'CS', 'MR'),
        el(Tag.SeriesInstanceUID, 'UI', '1.2.3.4'),
        // Not even read: a malformed value below the level is ignored too.
        el(Tag.SeriesNumber, 'IS', 'x'),
        el(Tag.PatientID, 'LO', 'PAT1'),
      ]),
    );
    expect(ignored.query.conditions).toEqual([
      { keyword: 'PatientID', match: { kind: 'single', value: 'PAT1' } },
    ]);
    expect(ignored.query.returnKeys).toEqual(['PatientID']);
    expect(ignored.unsupportedKeys).toEqual([
      Tag.Modality,
      Tag.SeriesInstanceUID,
      Tag.SeriesNumber,
    ]);
    const request = accepted(parse([level('STUDY'), el(Tag.Modality, 'CS')]));
    expect(request.query.returnKeys).toEqual([]);
    expect(request.unsupportedKeys).toEqual([]);
  });

  describe('hierarchical', () => {
    it('leaves a missing or empty unique key above unconstrained, as a relational query would', () => {
      const missing = accepted(parse([level('SERIES'), el(Tag.Modality, 'CS', 'CT')]));
      expect(missing.query.conditions).toEqual([
        { keyword: 'Modality', match: { kind: 'single', value: 'CT' } },
      ]);
      const empty = accepted(parse([level('SERIES'), el(Tag.StudyInstanceUID, 'UI')]));
      expect(empty.query.conditions).toEqual([]);
      expect(empty.query.returnKeys).toEqual(['StudyInstanceUID']);
      const noPatientNoSeries = accepted(
        parse([level('IMAGE'), el(Tag.StudyInstanceUID, 'UI', '1.2')], { root: 'patient' }),
      );
      expect(noPatientNoSeries.query.conditions).toEqual([
        { keyword: 'StudyInstanceUID', match: { kind: 'single', value: '1.2' } },
      ]);
    });

    it('refuses a unique key above with several values (0xA900)', () => {
      const list = refused(parse([level('SERIES'), el(Tag.StudyInstanceUID, 'UI', '1.2\\1.3')]));
      expect(list.status).toBe(Status.DataSetDoesNotMatchSopClass);
      expect(list.offendingElements).toEqual([Tag.StudyInstanceUID]);
    });

    it('matches on the unique keys above and the keys at the level', () => {
      const request = accepted(
        parse([
          level('SERIES'),
          el(Tag.StudyInstanceUID, 'UI', '1.2.3'),
          el(Tag.Modality, 'CS', 'CT\\MR'),
          el(Tag.SeriesInstanceUID, 'UI'),
        ]),
      );
      expect(request.query.conditions).toEqual([
        { keyword: 'Modality', match: { kind: 'list', values: ['CT', 'MR'] } },
        { keyword: 'StudyInstanceUID', match: { kind: 'single', value: '1.2.3' } },
      ]);
    });

    it('returns other keys above the level, and matches on them when they have a value', () => {
      const base = [level('STUDY'), el(Tag.PatientID, 'LO', 'PAT1')];
      const request = accepted(parse([...base, el(Tag.PatientName, 'PN')], { root: 'patient' }));
      expect(request.query.returnKeys).toEqual(['PatientName', 'PatientID']);
      expect(request.query.conditions).toEqual([
        { keyword: 'PatientID', match: { kind: 'single', value: 'PAT1' } },
      ]);
      const narrowed = accepted(
        parse([...base, el(Tag.PatientName, 'PN', 'DOE*')], { root: 'patient' }),
      );
      expect(narrowed.query.conditions).toEqual([
        { keyword: 'PatientName', match: { kind: 'wildcard', pattern: 'DOE*' } },
        { keyword: 'PatientID', match: { kind: 'single', value: 'PAT1' } },
      ]);
    });

    it('takes a single Patient ID above the STUDY level in Patient Root, or none', () => {
      const wildcard = [level('STUDY'), el(Tag.PatientID, 'LO', 'PAT*')];
      expect(refused(parse(wildcard, { root: 'patient' })).offendingElements).toEqual([
        Tag.PatientID,
      ]);
      expect(accepted(parse([level('STUDY')], { root: 'patient' })).query.conditions).toEqual([]);
    });

    it('takes Patient ID as an ordinary study key in Study Root', () => {
      const request = accepted(parse([level('STUDY'), el(Tag.PatientID, 'LO', 'PAT*')]));
      expect(request.query.conditions).toEqual([
        { keyword: 'PatientID', match: { kind: 'wildcard', pattern: 'PAT*' } },
      ]);
      // Repeated in a series query, as viewers do: matched, not refused.
      const above = [level('SERIES'), el(Tag.StudyInstanceUID, 'UI', '1.2')];
      const series = accepted(parse([...above, el(Tag.PatientID, 'LO', 'PAT1')]));
      expect(series.query.conditions).toContainEqual({
        keyword: 'PatientID',
        match: { kind: 'single', value: 'PAT1' },
      });
    });
  });

  describe('relational', () => {
    it('matches on any key at or above the level, unique keys above not needed', () => {
      const request = accepted(
        parse([level('SERIES'), el(Tag.PatientName, 'PN', 'DOE*'), el(Tag.Modality, 'CS', 'CT')], {
          root: 'patient',
          isRelational: true,
        }),
      );
      expect(request.query.conditions).toEqual([
        { keyword: 'Modality', match: { kind: 'single', value: 'CT' } },
        { keyword: 'PatientName', match: { kind: 'wildcard', pattern: 'DOE*' } },
      ]);
    });

    it('ignores keys below the level with a value, listing them (0xFF01)', () => {
      const request = accepted(
        parse([level('STUDY'), el(Tag.SeriesNumber, 'IS', '1')], { isRelational: true }),
      );
      expect(request.query.conditions).toEqual([]);
      expect(request.unsupportedKeys).toEqual([Tag.SeriesNumber]);
    });
  });

  it('refuses a malformed value with 0xC000, naming the key', () => {
    const date = refused(parse([level('STUDY'), el(Tag.StudyDate, 'DA', '2023130')]));
    expect(date.status).toBe(Status.CannotUnderstand);
    expect(date.errorComment).toBe('StudyDate: invalid date');
    expect(date.offendingElements).toEqual([Tag.StudyDate]);
    const range = refused(parse([level('STUDY'), el(Tag.StudyDate, 'DA', 'abc-def')]));
    expect(range.errorComment).toBe('StudyDate: invalid range');
    const uid = refused(parse([level('STUDY'), el(Tag.StudyInstanceUID, 'UI', '1.2.*')]));
    expect(uid.status).toBe(Status.CannotUnderstand);
  });

  it('refuses what it cannot read with 0xC000', () => {
    const garbage = Buffer.from('10001000 7a7a ff00 4142'.replace(/ /g, ''), 'hex');
    for (const [bytes, syntax] of [
      [garbage, TransferSyntax.ExplicitVRLittleEndian],
      [Buffer.alloc(0), TransferSyntax.DeflatedExplicitVRLittleEndian],
      [Buffer.alloc(0), '1.2.3.4.5'],
    ] as const) {
      const refusal = refused(
        parseQueryRequest(bytes, syntax, 'study', 'find', { isRelational: false }),
      );
      expect(refusal.status).toBe(Status.CannotUnderstand);
    }
  });

  it('refuses an identifier over 64 KiB with 0xC000', () => {
    const large = writeIdentifier(
      [level('STUDY'), el(0x00324000, 'UT', 'x'.repeat(MAX_REQUEST_IDENTIFIER_BYTES))],
      EXPLICIT_LE,
    );
    const refusal = refused(
      parseQueryRequest(large, TransferSyntax.ExplicitVRLittleEndian, 'study', 'find', {
        isRelational: false,
      }),
    );
    expect(refusal.status).toBe(Status.CannotUnderstand);
    expect(refusal.errorComment).toBe('identifier too large: over 64 KiB');
  });

  it('takes a list of 10,000 values, and refuses a longer one with 0xC000 naming the key', () => {
    // Short UIDs, so that 10,001 of them fit the 16-bit length of explicit VR.
    const uids = (n: number) => Array.from({ length: n }, (_, i) => String(i)).join('\\');
    for (const purpose of ['find', 'retrieve'] as const) {
      const atLimit = accepted(
        parse([level('STUDY'), el(Tag.StudyInstanceUID, 'UI', uids(MAX_LIST_VALUES))], {
          purpose,
        }),
      );
      const condition = atLimit.query.conditions[0];
      expect(condition?.match.kind === 'list' && condition.match.values.length).toBe(10_000);
      const over = refused(
        parse([level('STUDY'), el(Tag.StudyInstanceUID, 'UI', uids(MAX_LIST_VALUES + 1))], {
          purpose,
        }),
      );
      expect(over.status).toBe(Status.CannotUnderstand);
      expect(over.errorComment).toBe('StudyInstanceUID: more than 10000 values in the list');
      expect(over.offendingElements).toEqual([Tag.StudyInstanceUID]);
    }
  });

  it('decodes values in the identifier’s Specific Character Set', () => {
    const request = accepted(
      parse([
        level('STUDY'),
        el(Tag.SpecificCharacterSet, 'CS', 'ISO_IR 100'),
        el(Tag.PatientName, 'PN', Buffer.from('M\xfcller*', 'latin1')),
      ]),
    );
    expect(request.specificCharacterSet).toBe('ISO_IR 100');
    expect(request.query.conditions).toEqual([
      { keyword: 'PatientName', match: { kind: 'wildcard', pattern: 'Müller*' } },
    ]);
  });

  it('refuses a Specific Character Set it does not know with 0xC000', () => {
    const refusal = refused(
      parse([level('STUDY'), el(Tag.SpecificCharacterSet, 'CS', 'ISO_IR 999')]),
    );
    expect(refusal.status).toBe(Status.CannotUnderstand);
    expect(refusal.offendingElements).toEqual([Tag.SpecificCharacterSet]);
  });

  it('lists the keys it does not support that carry a matching value', () => {
    const request = accepted(
      parse([
        level('STUDY'),
        el(Tag.InstitutionName, 'LO', 'GENERAL*'),
        el(0x00081030, 'LO'),
        el(0x00081080, 'LO'),
        el(0x00080000, 'UL', Buffer.from([4, 0, 0, 0])),
        {
          tag: Tag.ReferencedStudySequence,
          vr: 'SQ',
          value: Buffer.alloc(0),
          items: [[el(Tag.ReferencedSOPInstanceUID, 'UI', '1.2.3')]],
        },
        { tag: 0x00081120, vr: 'SQ', value: Buffer.alloc(0), items: [[el(0x00081150, 'UI')]] },
      ]),
    );
    expect(request.unsupportedKeys).toEqual([Tag.InstitutionName, Tag.ReferencedStudySequence]);
    expect(request.query.returnKeys).toEqual(['StudyDescription']);
  });

  it('answers zero-length unsupported keys without a warning', () => {
    const request = accepted(
      parse([level('STUDY'), el(Tag.InstitutionName, 'LO'), el(0x00101000, 'LO', '*')]),
    );
    expect(request.unsupportedKeys).toEqual([]);
  });
});

describe('C-FIND sequence keys', () => {
  const Sequence = {
    ProcedureCode: 0x00081032,
    OtherPatientIDs: 0x00101002,
    RequestAttributes: 0x00400275,
  } as const;
  const Item = {
    CodeValue: 0x00080100,
    CodingSchemeDesignator: 0x00080102,
    CodingSchemeVersion: 0x00080103,
    CodeMeaning: 0x00080104,
    PatientID: 0x00100020,
    RequestedProcedureID: 0x00401001,
    ContextIdentifier: 0x0008010f,
  } as const;
  const sq = (tag: number, ...items: IdentifierElement[][]): IdentifierElement => ({
    tag,
    vr: 'SQ',
    value: Buffer.alloc(0),
    items,
  });

  it('matches the item keys with a value within one item, and returns the sequence', () => {
    for (const transferSyntax of [
      TransferSyntax.ImplicitVRLittleEndian,
      TransferSyntax.ExplicitVRLittleEndian,
      TransferSyntax.ExplicitVRBigEndian,
    ]) {
      const request = accepted(
        parse(
          [
            level('STUDY'),
            sq(Sequence.ProcedureCode, [
              el(Item.CodeValue, 'SH', 'CT*'),
              el(Item.CodingSchemeDesignator, 'SH', 'DCM\\LOCAL'),
              el(Item.CodeMeaning, 'LO'),
            ]),
          ],
          { transferSyntax },
        ),
      );
      expect(request.query).toEqual({
        root: 'study',
        level: 'STUDY',
        conditions: [],
        returnKeys: [],
        sequenceConditions: [
          {
            keyword: 'ProcedureCodeSequence',
            itemConditions: [
              { keyword: 'CodeValue', match: { kind: 'wildcard', pattern: 'CT*' } },
              {
                keyword: 'CodingSchemeDesignator',
                match: { kind: 'list', values: ['DCM', 'LOCAL'] },
              },
            ],
          },
        ],
        returnSequences: ['ProcedureCodeSequence'],
      });
      expect(request.unsupportedKeys).toEqual([]);
    }
  });

  it('takes an empty item, no item, or item keys of zero length or `*` as a return key', () => {
    for (const items of [
      [[]],
      [],
      [[el(Item.CodeValue, 'SH'), el(Item.CodeMeaning, 'LO', '*')]],
    ] as IdentifierElement[][][]) {
      const request = accepted(parse([level('STUDY'), sq(Sequence.ProcedureCode, ...items)]));
      expect(request.query.sequenceConditions).toBeUndefined();
      expect(request.query.returnSequences).toEqual(['ProcedureCodeSequence']);
    }
  });

  it('answers item keys it does not hold, and warns (0xFF01) when they carry a value', () => {
    const quiet = accepted(
      parse([
        level('STUDY'),
        sq(Sequence.ProcedureCode, [
          el(Item.CodeValue, 'SH', 'X'),
          el(Item.CodingSchemeVersion, 'SH'),
        ]),
      ]),
    );
    expect(quiet.unsupportedKeys).toEqual([]);
    const warned = accepted(
      parse([
        level('STUDY'),
        sq(Sequence.ProcedureCode, [
          el(Item.CodeValue, 'SH', 'X'),
          el(Item.ContextIdentifier, 'CS', 'CID 4'),
        ]),
      ]),
    );
    expect(warned.unsupportedKeys).toEqual([Sequence.ProcedureCode]);
    expect(warned.query.sequenceConditions).toEqual([
      {
        keyword: 'ProcedureCodeSequence',
        itemConditions: [{ keyword: 'CodeValue', match: { kind: 'single', value: 'X' } }],
      },
    ]);
  });

  it('takes a patient sequence at the STUDY level of Study Root and a study one above the SERIES level', () => {
    const study = accepted(
      parse([level('STUDY'), sq(Sequence.OtherPatientIDs, [el(Item.PatientID, 'LO', 'OTHER-1')])]),
    );
    expect(study.query.sequenceConditions?.[0]?.keyword).toBe('OtherPatientIDsSequence');
    const series = accepted(
      parse([
        level('SERIES'),
        el(Tag.StudyInstanceUID, 'UI', '1.2.3'),
        sq(Sequence.ProcedureCode, [el(Item.CodeValue, 'SH', 'X')]),
        sq(Sequence.RequestAttributes, [el(Item.RequestedProcedureID, 'SH')]),
      ]),
    );
    expect(series.query.returnSequences).toEqual([
      'ProcedureCodeSequence',
      'RequestAttributesSequence',
    ]);
  });

  it('ignores a sequence below the level with a value (0xFF01), answers it empty either way', () => {
    const ignored = accepted(
      parse([
        level('STUDY'),
        sq(Sequence.RequestAttributes, [el(Item.RequestedProcedureID, 'SH', 'RP1')]),
      ]),
    );
    expect(ignored.query.sequenceConditions).toBeUndefined();
    expect(ignored.query.returnSequences).toBeUndefined();
    expect(ignored.unsupportedKeys).toEqual([Sequence.RequestAttributes]);
    const request = accepted(
      parse([
        level('STUDY'),
        sq(Sequence.RequestAttributes, [el(Item.RequestedProcedureID, 'SH')]),
      ]),
    );
    expect(request.query.returnSequences).toBeUndefined();
    // At the PATIENT level of Patient Root a study sequence is below the level, a patient one at it.
    const patientRoot = accepted(
      parse(
        [
          level('PATIENT'),
          sq(Sequence.ProcedureCode, [el(Item.CodeValue, 'SH')]),
          sq(Sequence.OtherPatientIDs, [el(Item.PatientID, 'LO', 'X')]),
        ],
        { root: 'patient' },
      ),
    );
    expect(patientRoot.query.returnSequences).toEqual(['OtherPatientIDsSequence']);
  });

  it('refuses a sequence key with more than one item (0xA900)', () => {
    const refusal = refused(
      parse([
        level('STUDY'),
        sq(
          Sequence.ProcedureCode,
          [el(Item.CodeValue, 'SH', 'A')],
          [el(Item.CodeValue, 'SH', 'B')],
        ),
      ]),
    );
    expect(refusal.status).toBe(Status.DataSetDoesNotMatchSopClass);
    expect(refusal.offendingElements).toEqual([Sequence.ProcedureCode]);
  });

  it('refuses an item key value it cannot match (0xC000), naming the sequence', () => {
    const refusal = refused(
      parse([level('STUDY'), sq(Sequence.ProcedureCode, [el(Item.CodeValue, 'SH', 'A*\\B')])]),
    );
    expect(refusal.status).toBe(Status.CannotUnderstand);
    expect(refusal.errorComment).toMatch(/^CodeValue: /);
    expect(refusal.offendingElements).toEqual([Sequence.ProcedureCode]);
  });

  it('ignores sequence keys in a C-MOVE or C-GET, listing those with a value', () => {
    const request = accepted(
      parse(
        [
          level('STUDY'),
          el(Tag.StudyInstanceUID, 'UI', '1.2.3'),
          sq(Sequence.ProcedureCode, [el(Item.CodeValue, 'SH', 'A')]),
          sq(Sequence.OtherPatientIDs, [el(Item.PatientID, 'LO')]),
        ],
        { purpose: 'retrieve' },
      ),
    );
    expect(request.query.sequenceConditions).toBeUndefined();
    expect(request.unsupportedKeys).toEqual([Sequence.ProcedureCode]);
  });
});

describe('C-MOVE and C-GET identifiers', () => {
  const retrieve = (elements: IdentifierElement[], options: ParseOptions = {}) =>
    parse(elements, { ...options, purpose: 'retrieve' });

  it('takes a UID list at the level', () => {
    const request = accepted(
      retrieve([level('STUDY'), el(Tag.StudyInstanceUID, 'UI', '1.2.3\\1.2.4')]),
    );
    expect(request.query).toEqual({
      root: 'study',
      level: 'STUDY',
      conditions: [
        { keyword: 'StudyInstanceUID', match: { kind: 'list', values: ['1.2.3', '1.2.4'] } },
      ],
      returnKeys: [],
    });
  });

  it('refuses an identifier without the level’s unique key with 0xA900', () => {
    for (const elements of [[level('STUDY')], [level('STUDY'), el(Tag.StudyInstanceUID, 'UI')]]) {
      const refusal = refused(retrieve(elements));
      expect(refusal.status).toBe(Status.DataSetDoesNotMatchSopClass);
      expect(refusal.offendingElements).toEqual([Tag.StudyInstanceUID]);
    }
  });

  it('needs single values for the unique keys above in hierarchical retrieve, when given', () => {
    const series = [level('SERIES'), el(Tag.SeriesInstanceUID, 'UI', '1.2.3.4')];
    const list = refused(retrieve([...series, el(Tag.StudyInstanceUID, 'UI', '1.2.3\\1.2.4')]));
    expect(list.offendingElements).toEqual([Tag.StudyInstanceUID]);
    const request = accepted(retrieve([...series, el(Tag.StudyInstanceUID, 'UI', '1.2.3')]));
    expect(request.query.conditions).toEqual([
      { keyword: 'StudyInstanceUID', match: { kind: 'single', value: '1.2.3' } },
      { keyword: 'SeriesInstanceUID', match: { kind: 'single', value: '1.2.3.4' } },
    ]);
  });

  it('takes a Patient Root retrieve by Study Instance UID alone, as movescu sends by default', () => {
    for (const elements of [
      [level('STUDY'), el(Tag.StudyInstanceUID, 'UI', '1.2.3')],
      [level('STUDY'), el(Tag.PatientID, 'LO'), el(Tag.StudyInstanceUID, 'UI', '1.2.3')],
    ]) {
      const request = accepted(retrieve(elements, { root: 'patient' }));
      expect(request.query.conditions).toEqual([
        { keyword: 'StudyInstanceUID', match: { kind: 'single', value: '1.2.3' } },
      ]);
    }
    const series = accepted(
      retrieve([level('SERIES'), el(Tag.SeriesInstanceUID, 'UI', '1.2.3.4')], { root: 'patient' }),
    );
    expect(series.query.conditions).toEqual([
      { keyword: 'SeriesInstanceUID', match: { kind: 'single', value: '1.2.3.4' } },
    ]);
  });

  it('needs only the level’s unique key in relational retrieve', () => {
    const request = accepted(
      retrieve([level('IMAGE'), el(Tag.SOPInstanceUID, 'UI', '1.2.3.4.5')], {
        root: 'patient',
        isRelational: true,
      }),
    );
    expect(request.query.conditions).toEqual([
      { keyword: 'SOPInstanceUID', match: { kind: 'single', value: '1.2.3.4.5' } },
    ]);
  });

  it('takes one Patient ID only, without wildcards', () => {
    const list = refused(
      retrieve([level('PATIENT'), el(Tag.PatientID, 'LO', 'A\\B')], { root: 'patient' }),
    );
    expect(list.status).toBe(Status.DataSetDoesNotMatchSopClass);
    const wildcard = refused(
      retrieve([level('PATIENT'), el(Tag.PatientID, 'LO', 'A*')], { root: 'patient' }),
    );
    expect(wildcard.offendingElements).toEqual([Tag.PatientID]);
    const request = accepted(
      retrieve([level('PATIENT'), el(Tag.PatientID, 'LO', 'A')], { root: 'patient' }),
    );
    expect(request.query.conditions).toEqual([
      { keyword: 'PatientID', match: { kind: 'single', value: 'A' } },
    ]);
  });

  it('refuses a unique key with a value below the level', () => {
    const refusal = refused(
      retrieve([
        level('STUDY'),
        el(Tag.StudyInstanceUID, 'UI', '1.2.3'),
        el(Tag.SeriesInstanceUID, 'UI', '1.2.3.4'),
      ]),
    );
    expect(refusal.status).toBe(Status.DataSetDoesNotMatchSopClass);
    expect(refusal.offendingElements).toEqual([Tag.SeriesInstanceUID]);
  });

  it('ignores other keys, listing those with a value', () => {
    const request = accepted(
      retrieve([
        level('STUDY'),
        el(Tag.StudyInstanceUID, 'UI', '1.2.3'),
        el(Tag.PatientName, 'PN', 'DOE^JOHN'),
        el(Tag.PatientID, 'LO', 'PAT1'),
        el(Tag.StudyDate, 'DA'),
      ]),
    );
    expect(request.query.conditions).toEqual([
      { keyword: 'StudyInstanceUID', match: { kind: 'single', value: '1.2.3' } },
    ]);
    expect(request.unsupportedKeys).toEqual([Tag.PatientName, Tag.PatientID]);
  });

  it('refuses a malformed UID with 0xC000', () => {
    const refusal = refused(retrieve([level('STUDY'), el(Tag.StudyInstanceUID, 'UI', '1.2.x')]));
    expect(refusal.status).toBe(Status.CannotUnderstand);
  });
});
