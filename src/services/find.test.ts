/**
 * Drives the C-FIND handler (PS3.4 Annex C) with identifiers written in each uncompressed
 * transfer syntax, over an in-memory query source that really filters: levels of both roots,
 * hierarchical and relational queries, each refusal, 0xFF01, C-CANCEL part-way, the match
 * limit, character sets, and the keys echoed in the answers, sequence keys with their items.
 *
 * Layer: services (unit test). The source stands in for the SQL index: it matches the kinds of
 * ValueMatch simply, over a flat list of instances.
 */
import { describe, expect, it } from 'vitest';
import {
  type IdentifierElement,
  readIdentifier,
  writeIdentifier,
} from '../dicom/query/identifier.js';
import type {
  IndexMatch,
  IndexQuery,
  QueryKeyword,
  QueryLevel,
  RetrievableInstance,
  ValueMatch,
} from '../dicom/query/model.js';
import { decodeValue, encodeValue } from '../dicom/query/values.js';
import { TransferSyntax, transferSyntaxProperties } from '../dicom/transfer-syntax.js';
import { SopClass } from '../dicom/uid.js';
import type { Vr } from '../dicom/vr.js';
import { DatasetStream } from '../network/dimse/assembler.js';
import type { IncomingRequest, ResponseSpec } from '../network/dimse/channel.js';
import { CommandField } from '../network/dimse/command.js';
import { Status } from '../network/dimse/status.js';
import { createFindHandler, type FindSettings } from './find.js';
import type { QuerySource } from './ports.js';
import { MAX_REQUEST_IDENTIFIER_BYTES } from './query-request.js';

const PATIENT_ROOT = SopClass.PatientRootQueryRetrieveInformationModelFind;
const STUDY_ROOT = SopClass.StudyRootQueryRetrieveInformationModelFind;
const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
const MR_IMAGE = '1.2.840.10008.5.1.4.1.1.4';

const Tag = {
  SpecificCharacterSet: 0x00080005,
  SOPInstanceUID: 0x00080018,
  StudyDate: 0x00080020,
  QueryRetrieveLevel: 0x00080052,
  RetrieveAETitle: 0x00080054,
  InstanceAvailability: 0x00080056,
  Modality: 0x00080060,
  ModalitiesInStudy: 0x00080061,
  InstitutionName: 0x00080080,
  StudyDescription: 0x00081030,
  ReferencedStudySequence: 0x00081110,
  ReferencedSOPInstanceUID: 0x00081155,
  PatientName: 0x00100010,
  PatientID: 0x00100020,
  StudyInstanceUID: 0x0020000d,
  SeriesInstanceUID: 0x0020000e,
  SeriesNumber: 0x00200011,
  NumberOfPatientRelatedStudies: 0x00201200,
  NumberOfStudyRelatedInstances: 0x00201208,
  NumberOfSeriesRelatedInstances: 0x00201209,
} as const;

// ---------------------------------------------------------------------------------------------
// The in-memory index

type Instance = Readonly<Partial<Record<QueryKeyword, string | number>>>;

function instance(
  patient: [string, string],
  study: [string, string, string],
  series: [string, string, number],
  sop: [string, string, number],
): Instance {
  return {
    PatientID: patient[0],
    PatientName: patient[1],
    StudyInstanceUID: study[0],
    StudyDate: study[1],
    StudyDescription: study[2],
    SeriesInstanceUID: series[0],
    Modality: series[1],
    SeriesNumber: series[2],
    SOPInstanceUID: sop[0],
    SOPClassUID: sop[1],
    InstanceNumber: sop[2],
  };
}

const DOE: [string, string] = ['PAT1', 'DOE^JOHN'];
const MULLER: [string, string] = ['PAT2', 'Müller^Hans'];
const SMITH: [string, string] = ['PAT3', 'smith^anna'];
const S1: [string, string, string] = ['1.2.1', '20230105', 'CT CHEST'];
const S2: [string, string, string] = ['1.2.2', '20230210', 'MR HEAD'];
const S3: [string, string, string] = ['1.2.3', '20221231', 'CT ABDOMEN'];
const S4: [string, string, string] = ['1.2.4', '20230301', 'CT KNEE'];

const INSTANCES: readonly Instance[] = [
  instance(DOE, S1, ['1.2.1.1', 'CT', 1], ['1.2.1.1.1', CT_IMAGE, 1]),
  instance(DOE, S1, ['1.2.1.1', 'CT', 1], ['1.2.1.1.2', CT_IMAGE, 2]),
  instance(DOE, S1, ['1.2.1.2', 'CT', 2], ['1.2.1.2.1', CT_IMAGE, 1]),
  instance(DOE, S2, ['1.2.2.1', 'MR', 1], ['1.2.2.1.1', MR_IMAGE, 1]),
  instance(MULLER, S3, ['1.2.3.1', 'CT', 1], ['1.2.3.1.1', CT_IMAGE, 1]),
  instance(SMITH, S4, ['1.2.4.1', 'CT', 1], ['1.2.4.1.1', CT_IMAGE, 1]),
];

const UNIQUE: Record<QueryLevel, QueryKeyword> = {
  PATIENT: 'PatientID',
  STUDY: 'StudyInstanceUID',
  SERIES: 'SeriesInstanceUID',
  IMAGE: 'SOPInstanceUID',
};

function distinct(values: readonly (string | number | undefined)[]): (string | number)[] {
  return [...new Set(values.filter((value) => value !== undefined))];
}

/** An entity at a level: the attributes of its first instance and the computed keys. */
function entityOf(first: Instance): Instance {
  const of = (keyword: QueryKeyword) => INSTANCES.filter((i) => i[keyword] === first[keyword]);
  const patient = of('PatientID');
  const study = of('StudyInstanceUID');
  return {
    ...first,
    NumberOfPatientRelatedStudies: distinct(patient.map((i) => i.StudyInstanceUID)).length,
    NumberOfPatientRelatedInstances: patient.length,
    NumberOfStudyRelatedSeries: distinct(study.map((i) => i.SeriesInstanceUID)).length,
    NumberOfStudyRelatedInstances: study.length,
    NumberOfSeriesRelatedInstances: of('SeriesInstanceUID').length,
    ModalitiesInStudy: distinct(study.map((i) => i.Modality)).join('\\'),
    SOPClassesInStudy: distinct(study.map((i) => i.SOPClassUID)).join('\\'),
  };
}

function matchesValue(
  value: string | number | undefined,
  match: ValueMatch,
  isCaseInsensitive: boolean,
): boolean {
  if (value === undefined) return false;
  const fold = (text: string) => (isCaseInsensitive ? text.toLowerCase() : text);
  const text = fold(String(value));
  switch (match.kind) {
    case 'single':
      return text === fold(match.value);
    case 'wildcard': {
      const pattern = fold(match.pattern)
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.');
      return new RegExp(`^${pattern}$`, 's').test(text);
    }
    case 'range':
      return (
        (match.from === undefined || text >= match.from) &&
        (match.to === undefined || text <= match.to)
      );
    case 'list':
      return match.values.some((candidate) => text === fold(candidate));
    default:
      return false;
  }
}

/** True when an entity matches every condition; list-valued keys match by any of their values. */
function isMatch(entity: Instance, query: IndexQuery): boolean {
  return query.conditions.every(({ keyword, match }) => {
    const isPersonName = keyword === 'PatientName' || keyword === 'ReferringPhysicianName';
    const isCaseInsensitive = isPersonName && query.isPersonNameCaseInsensitive === true;
    const values = String(entity[keyword] ?? '').split('\\');
    if (entity[keyword] === undefined) return false;
    return values.some((value) => matchesValue(value, match, isCaseInsensitive));
  });
}

class FakeSource implements QuerySource {
  readonly queries: IndexQuery[] = [];
  /** Matches yielded before the source fails, when set. */
  failAfter: number | undefined;

  async *find(query: IndexQuery, signal: AbortSignal): AsyncIterable<IndexMatch> {
    this.queries.push(query);
    const unique = UNIQUE[query.level];
    const firsts = new Map<string | number | undefined, Instance>();
    for (const each of INSTANCES) if (!firsts.has(each[unique])) firsts.set(each[unique], each);
    let yielded = 0;
    for (const first of firsts.values()) {
      signal.throwIfAborted();
      const entity = entityOf(first);
      if (!isMatch(entity, query)) continue;
      if (query.limit !== undefined && yielded >= query.limit) return;
      if (this.failAfter !== undefined && yielded >= this.failAfter) {
        throw new Error('database is locked');
      }
      yielded += 1;
      yield Object.fromEntries(query.returnKeys.map((key) => [key, entity[key] ?? null]));
    }
  }

  /** Queries counted, with the limit each was counted to. */
  readonly counts: { query: IndexQuery; limit: number }[] = [];

  async count(query: IndexQuery, limit: number, signal: AbortSignal): Promise<number> {
    this.counts.push({ query, limit });
    let counted = 0;
    for await (const _ of this.find({ ...query, limit }, signal)) counted += 1;
    this.queries.pop();
    return counted;
  }

  async retrievable(): Promise<RetrievableInstance[]> {
    throw new Error('not used by C-FIND');
  }
}

/** A source answering each query with these matches, whatever it asks. */
class FixedSource extends FakeSource {
  constructor(readonly matches: readonly IndexMatch[]) {
    super();
  }

  override async *find(query: IndexQuery): AsyncIterable<IndexMatch> {
    this.queries.push(query);
    yield* this.matches;
  }
}

// ---------------------------------------------------------------------------------------------
// Driving the handler

const SYNTAXES = {
  'Implicit VR Little Endian': TransferSyntax.ImplicitVRLittleEndian,
  'Explicit VR Little Endian': TransferSyntax.ExplicitVRLittleEndian,
  'Explicit VR Big Endian': TransferSyntax.ExplicitVRBigEndian,
} as const;

const SETTINGS: FindSettings = {
  maxResults: 0,
  isPersonNameCaseInsensitive: false,
  retrieveAeTitle: 'DRAW_SCP',
};

function el(tag: number, vr: Vr, value: string | Buffer = ''): IdentifierElement {
  return { tag, vr, value: typeof value === 'string' ? encodeValue(value, vr) : value };
}

const level = (value: QueryLevel) => el(Tag.QueryRetrieveLevel, 'CS', value);

function encodingOf(transferSyntax: string) {
  const properties = transferSyntaxProperties(transferSyntax)!;
  return { isExplicitVr: properties.isExplicitVr, isLittleEndian: properties.isLittleEndian };
}

function datasetOf(chunks: readonly Buffer[]): DatasetStream {
  const stream = new DatasetStream(4 * 1024 * 1024, () => undefined);
  for (const chunk of chunks) stream.pushFragment(chunk);
  stream.complete();
  return stream;
}

interface Run {
  readonly sopClass?: string;
  readonly transferSyntax?: string;
  readonly settings?: Partial<FindSettings>;
  readonly isRelational?: boolean;
  readonly source?: FakeSource;
  readonly dataset?: DatasetStream | null;
  /** Called with each response as it comes; may abort the controller. */
  readonly onResponse?: (response: ResponseSpec, controller: AbortController) => void;
}

async function find(elements: IdentifierElement[], run: Run = {}) {
  const sopClass = run.sopClass ?? STUDY_ROOT;
  const transferSyntax = run.transferSyntax ?? TransferSyntax.ExplicitVRLittleEndian;
  const source = run.source ?? new FakeSource();
  const handler = createFindHandler({ source, settings: () => ({ ...SETTINGS, ...run.settings }) });
  const dataset =
    run.dataset === null
      ? undefined
      : (run.dataset ?? datasetOf([writeIdentifier(elements, encodingOf(transferSyntax))]));
  const request: IncomingRequest = {
    context: {
      id: 1,
      abstractSyntax: sopClass,
      transferSyntax,
      requestorIsScu: true,
      requestorIsScp: false,
    },
    command: {
      commandField: CommandField.CFindRq,
      messageId: 1,
      affectedSopClassUid: sopClass,
      priority: 0,
      hasDataset: dataset !== undefined,
    },
    ...(dataset !== undefined && { dataset }),
  };
  const controller = new AbortController();
  const responses: ResponseSpec[] = [];
  const association = { isRelational: () => run.isRelational ?? false };
  for await (const response of handler(request, controller.signal, association)) {
    responses.push(response);
    run.onResponse?.(response, controller);
  }
  const final = responses.at(-1)!;
  expect(responses.slice(0, -1).every((r) => r.status === 0xff00 || r.status === 0xff01)).toBe(
    true,
  );
  expect((final.fields?.errorComment ?? '').length).toBeLessThanOrEqual(64);
  const answers = responses.slice(0, -1).map((r) => answerOf(r, transferSyntax));
  return { final, answers, pending: responses.slice(0, -1), source };
}

/** A response identifier as text by tag (sequences as their items), in its character set. */
function answerOf(response: ResponseSpec, transferSyntax: string): Map<number, string | number> {
  expect(Buffer.isBuffer(response.dataset)).toBe(true);
  const elements = readIdentifier(response.dataset as Buffer, encodingOf(transferSyntax));
  const charset = elements
    .find((e) => e.tag === Tag.SpecificCharacterSet)
    ?.value.toString('latin1')
    .trim();
  return new Map(
    elements.map((e) => [e.tag, e.items?.length ?? decodeValue(e.value, e.vr, charset)]),
  );
}

function column(answers: readonly Map<number, string | number>[], tag: number) {
  return answers.map((answer) => answer.get(tag));
}

// ---------------------------------------------------------------------------------------------

describe('C-FIND levels and roots', () => {
  for (const [name, transferSyntax] of Object.entries(SYNTAXES)) {
    it(`answers a study query by date range in ${name}`, async () => {
      const { final, answers } = await find(
        [
          level('STUDY'),
          el(Tag.StudyDate, 'DA', '20230101-20230228'),
          el(Tag.StudyInstanceUID, 'UI'),
          el(Tag.PatientName, 'PN'),
          el(Tag.NumberOfStudyRelatedInstances, 'IS'),
        ],
        { transferSyntax },
      );
      expect(final.status).toBe(Status.Success);
      expect(final.note).toEqual({ root: 'study', level: 'STUDY', matches: 2 });
      expect(column(answers, Tag.StudyInstanceUID)).toEqual(['1.2.1', '1.2.2']);
      expect(column(answers, Tag.StudyDate)).toEqual(['20230105', '20230210']);
      expect(column(answers, Tag.PatientName)).toEqual(['DOE^JOHN', 'DOE^JOHN']);
      expect(column(answers, Tag.NumberOfStudyRelatedInstances)).toEqual(['3', '1']);
      expect(column(answers, Tag.QueryRetrieveLevel)).toEqual(['STUDY', 'STUDY']);
    });
  }

  it('answers a patient query in Patient Root with the computed counts', async () => {
    const { final, answers } = await find(
      [
        level('PATIENT'),
        el(Tag.PatientName, 'PN', 'DOE*'),
        el(Tag.PatientID, 'LO'),
        el(Tag.NumberOfPatientRelatedStudies, 'IS'),
      ],
      { sopClass: PATIENT_ROOT },
    );
    expect(final.status).toBe(Status.Success);
    expect(answers).toHaveLength(1);
    expect(answers[0]!.get(Tag.PatientID)).toBe('PAT1');
    expect(answers[0]!.get(Tag.NumberOfPatientRelatedStudies)).toBe('2');
  });

  it('answers the studies of a patient in Patient Root', async () => {
    const { answers } = await find(
      [level('STUDY'), el(Tag.PatientID, 'LO', 'PAT1'), el(Tag.StudyInstanceUID, 'UI')],
      { sopClass: PATIENT_ROOT },
    );
    expect(column(answers, Tag.StudyInstanceUID)).toEqual(['1.2.1', '1.2.2']);
  });

  it('matches studies by a modality in ModalitiesInStudy', async () => {
    const { answers } = await find([level('STUDY'), el(Tag.ModalitiesInStudy, 'CS', 'MR')]);
    expect(column(answers, Tag.ModalitiesInStudy)).toEqual(['MR']);
  });

  it('answers the series of a study with their instance counts', async () => {
    const { final, answers } = await find([
      level('SERIES'),
      el(Tag.StudyInstanceUID, 'UI', '1.2.1'),
      el(Tag.SeriesInstanceUID, 'UI'),
      el(Tag.Modality, 'CS'),
      el(Tag.SeriesNumber, 'IS'),
      el(Tag.NumberOfSeriesRelatedInstances, 'IS'),
    ]);
    expect(final.note).toEqual({ root: 'study', level: 'SERIES', matches: 2 });
    expect(column(answers, Tag.SeriesInstanceUID)).toEqual(['1.2.1.1', '1.2.1.2']);
    expect(column(answers, Tag.SeriesNumber)).toEqual(['1', '2']);
    expect(column(answers, Tag.NumberOfSeriesRelatedInstances)).toEqual(['2', '1']);
    expect(column(answers, Tag.StudyInstanceUID)).toEqual(['1.2.1', '1.2.1']);
  });

  it('answers the images of a series in Patient Root', async () => {
    const { answers } = await find(
      [
        level('IMAGE'),
        el(Tag.PatientID, 'LO', 'PAT1'),
        el(Tag.StudyInstanceUID, 'UI', '1.2.1'),
        el(Tag.SeriesInstanceUID, 'UI', '1.2.1.1'),
        el(Tag.SOPInstanceUID, 'UI'),
      ],
      { sopClass: PATIENT_ROOT },
    );
    expect(column(answers, Tag.SOPInstanceUID)).toEqual(['1.2.1.1.1', '1.2.1.1.2']);
  });

  it('matches on keys above the level, relational or hierarchical without the unique keys above', async () => {
    const elements = [
      level('SERIES'),
      el(Tag.PatientName, 'PN', 'DOE^JOHN'),
      el(Tag.Modality, 'CS', 'CT'),
      el(Tag.SeriesInstanceUID, 'UI'),
    ];
    for (const isRelational of [true, false]) {
      const { final, answers } = await find(elements, { sopClass: PATIENT_ROOT, isRelational });
      expect(final.status).toBe(Status.Success);
      expect(column(answers, Tag.SeriesInstanceUID)).toEqual(['1.2.1.1', '1.2.1.2']);
    }
  });

  it('answers a SERIES query without the study it belongs to, across studies', async () => {
    const { final, pending, answers } = await find([
      level('SERIES'),
      el(Tag.Modality, 'CS', 'CT'),
      el(Tag.SeriesInstanceUID, 'UI'),
      el(Tag.StudyInstanceUID, 'UI'),
    ]);
    expect(final.status).toBe(Status.Success);
    expect(pending.map((r) => r.status)).toEqual(Array(4).fill(Status.Pending));
    expect(column(answers, Tag.SeriesInstanceUID)).toEqual([
      '1.2.1.1',
      '1.2.1.2',
      '1.2.3.1',
      '1.2.4.1',
    ]);
    expect(column(answers, Tag.StudyInstanceUID)).toEqual(['1.2.1', '1.2.1', '1.2.3', '1.2.4']);
  });

  it('answers success alone when nothing matches', async () => {
    const { final, pending } = await find([level('STUDY'), el(Tag.PatientID, 'LO', 'NOBODY')]);
    expect(final.status).toBe(Status.Success);
    expect(pending).toEqual([]);
  });
});

describe('C-FIND refusals', () => {
  const cases: [string, IdentifierElement[], number, number[] | undefined][] = [
    ['no Query/Retrieve Level', [el(Tag.PatientName, 'PN', 'DOE*')], 0xa900, [0x00080052]],
    ['the PATIENT level in Study Root', [level('PATIENT')], 0xa900, [0x00080052]],
    [
      'several Study Instance UIDs above the level',
      [level('SERIES'), el(Tag.StudyInstanceUID, 'UI', '1.2.1\\1.2.2')],
      0xa900,
      [0x0020000d],
    ],
    [
      'a malformed date',
      [level('STUDY'), el(Tag.StudyDate, 'DA', '2023130')],
      0xc000,
      [0x00080020],
    ],
    [
      'a malformed range',
      [level('STUDY'), el(Tag.StudyDate, 'DA', 'abc-def')],
      0xc000,
      [0x00080020],
    ],
  ];
  for (const [what, elements, status, offending] of cases) {
    it(`refuses ${what} with 0x${status.toString(16).toUpperCase()}`, async () => {
      const { final, pending, source } = await find(elements);
      expect(final.status).toBe(status);
      expect(final.fields?.offendingElement).toEqual(offending);
      expect(final.fields?.errorComment).toMatch(/\S/);
      expect(pending).toEqual([]);
      expect(source.queries).toEqual([]);
    });
  }

  it('refuses an identifier that cannot be read with 0xC000', async () => {
    const garbage = Buffer.from('100010007a7aff004142', 'hex');
    const { final } = await find([], { dataset: datasetOf([garbage]) });
    expect(final.status).toBe(Status.CannotUnderstand);
  });

  it('refuses a request without an identifier with 0xC000', async () => {
    const { final } = await find([], { dataset: null });
    expect(final.status).toBe(Status.CannotUnderstand);
  });

  it('refuses an identifier over 64 KiB with 0xC000, reading no more of it', async () => {
    const chunk = Buffer.alloc(16 * 1024);
    const chunks = Array.from(
      { length: MAX_REQUEST_IDENTIFIER_BYTES / chunk.length + 2 },
      () => chunk,
    );
    const dataset = datasetOf(chunks);
    const { final } = await find([], { dataset });
    expect(final.status).toBe(Status.CannotUnderstand);
    expect(final.fields?.errorComment).toBe('identifier too large: over 64 KiB');
    expect(dataset.destroyed).toBe(true);
  });

  it('refuses a list of more than 10,000 values with 0xC000, naming the key', async () => {
    const uids = Array.from({ length: 10_001 }, (_, i) => String(i)).join('\\');
    const { final, source } = await find([level('STUDY'), el(Tag.StudyInstanceUID, 'UI', uids)]);
    expect(final.status).toBe(Status.CannotUnderstand);
    expect(final.fields?.errorComment).toBe('StudyInstanceUID: more than 10000 values in the list');
    expect(source.queries).toEqual([]);
  });

  it('refuses a SOP class that is not a C-FIND one', async () => {
    const { final } = await find([level('STUDY')], {
      sopClass: SopClass.StudyRootQueryRetrieveInformationModelMove,
    });
    expect(final.status).toBe(Status.SopClassNotSupported);
  });

  it('answers 0xC000 when the index fails, after the matches it gave', async () => {
    const source = new FakeSource();
    source.failAfter = 1;
    const { final, pending } = await find([level('STUDY'), el(Tag.StudyInstanceUID, 'UI')], {
      source,
    });
    expect(pending).toHaveLength(1);
    expect(final.status).toBe(Status.CannotUnderstand);
    expect(final.note).toMatchObject({ matches: 1, error: 'database is locked' });
  });
});

describe('C-FIND statuses', () => {
  it('answers 0xFF01 when an unsupported optional key carries a matching value', async () => {
    const { final, pending, answers } = await find([
      level('STUDY'),
      el(Tag.PatientID, 'LO', 'PAT1'),
      el(Tag.InstitutionName, 'LO', 'GENERAL*'),
    ]);
    expect(pending.map((r) => r.status)).toEqual([Status.PendingWarning, Status.PendingWarning]);
    expect(column(answers, Tag.InstitutionName)).toEqual(['', '']);
    expect(final.status).toBe(Status.Success);
  });

  it('ignores a key below the level that carries a value, answering it empty with 0xFF01', async () => {
    const { final, pending, answers, source } = await find([
      level('STUDY'),
      el(Tag.PatientID, 'LO', 'PAT1'),
      el(Tag.Modality, 'CS', 'MR'),
      el(Tag.StudyInstanceUID, 'UI'),
    ]);
    expect(final.status).toBe(Status.Success);
    // Both of PAT1's studies, the CT one too: Modality is not matched at the STUDY level.
    expect(column(answers, Tag.StudyInstanceUID)).toEqual(['1.2.1', '1.2.2']);
    expect(column(answers, Tag.Modality)).toEqual(['', '']);
    expect(pending.map((r) => r.status)).toEqual([Status.PendingWarning, Status.PendingWarning]);
    expect(source.queries[0]?.conditions).toEqual([
      { keyword: 'PatientID', match: { kind: 'single', value: 'PAT1' } },
    ]);
  });

  it('answers 0xFF00 when unsupported keys are return keys only', async () => {
    const { pending } = await find([
      level('STUDY'),
      el(Tag.PatientID, 'LO', 'PAT2'),
      el(Tag.InstitutionName, 'LO'),
    ]);
    expect(pending.map((r) => r.status)).toEqual([Status.Pending]);
  });

  it('stops part-way on C-CANCEL with 0xFE00', async () => {
    const { final, pending } = await find([level('IMAGE'), ...seriesKeys()], {
      sopClass: STUDY_ROOT,
      onResponse: (_, controller) => controller.abort(),
    });
    expect(pending).toHaveLength(1);
    expect(final.status).toBe(Status.Cancel);
    expect(final.note).toEqual({ root: 'study', level: 'IMAGE', matches: 1 });
  });

  it('refuses a query over the match limit with 0xA700 before sending any match', async () => {
    const { final, pending, source } = await find([level('STUDY')], {
      settings: { maxResults: 3 },
    });
    expect(pending).toEqual([]);
    expect(final.status).toBe(Status.OutOfResources);
    expect(final.fields?.errorComment).toBe('more than 3 matches: narrow the query');
    // Counted up to one past the limit; never asked for the matches themselves.
    expect(source.counts.map((c) => c.limit)).toEqual([4]);
    expect(source.queries).toEqual([]);
  });

  it('streams the matches within the limit: the first is answered before the next is read', async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    class SlowSource extends FakeSource {
      override async count(): Promise<number> {
        return 2;
      }

      override async *find(query: IndexQuery): AsyncIterable<IndexMatch> {
        this.queries.push(query);
        yield { StudyInstanceUID: '1.2.1' };
        // Only once the first match has been answered.
        await released;
        yield { StudyInstanceUID: '1.2.2' };
      }
    }
    const source = new SlowSource();
    const { final, pending } = await find([level('STUDY'), el(Tag.StudyInstanceUID, 'UI')], {
      source,
      settings: { maxResults: 10 },
      onResponse: () => release(),
    });
    expect(pending).toHaveLength(2);
    expect(final.status).toBe(Status.Success);
    expect(source.queries[0]?.limit).toBe(10);
  });

  it('answers 0xC000 when the index fails while counting', async () => {
    class FailingCount extends FakeSource {
      override async count(): Promise<number> {
        throw new Error('database is locked');
      }
    }
    const { final, pending } = await find([level('STUDY')], {
      source: new FailingCount(),
      settings: { maxResults: 3 },
    });
    expect(pending).toEqual([]);
    expect(final.status).toBe(Status.CannotUnderstand);
    expect(final.note).toMatchObject({ matches: 0, error: 'database is locked' });
  });

  it('answers every match within the limit', async () => {
    const { final, pending, source } = await find([level('STUDY')], {
      settings: { maxResults: 4 },
    });
    expect(pending).toHaveLength(4);
    expect(final.status).toBe(Status.Success);
    expect(source.counts.map((c) => c.limit)).toEqual([5]);
    expect(source.queries[0]!.limit).toBe(4);
  });

  it('asks the index without a limit, and counts nothing, when there is none', async () => {
    const { source, pending } = await find([level('STUDY')]);
    expect(source.queries[0]!.limit).toBeUndefined();
    expect(source.counts).toEqual([]);
    expect(pending).toHaveLength(4);
  });

  it('matches person names without regard to case when so set', async () => {
    const elements = [level('STUDY'), el(Tag.PatientName, 'PN', 'SMITH*')];
    const sensitive = await find(elements);
    expect(sensitive.pending).toEqual([]);
    const insensitive = await find(elements, { settings: { isPersonNameCaseInsensitive: true } });
    expect(column(insensitive.answers, Tag.PatientName)).toEqual(['smith^anna']);
  });
});

function seriesKeys(): IdentifierElement[] {
  return [
    el(Tag.StudyInstanceUID, 'UI', '1.2.1'),
    el(Tag.SeriesInstanceUID, 'UI', '1.2.1.1'),
    el(Tag.SOPInstanceUID, 'UI'),
  ];
}

describe('C-FIND character sets', () => {
  /** The raw bytes of one answered element. */
  function rawValue(response: ResponseSpec, tag: number): Buffer | undefined {
    const encoding = encodingOf(TransferSyntax.ExplicitVRLittleEndian);
    return readIdentifier(response.dataset as Buffer, encoding).find((e) => e.tag === tag)?.value;
  }

  it('matches a Latin-1 name against the stored one and answers in Latin-1 (ISO_IR 100)', async () => {
    const { answers, pending } = await find([
      level('STUDY'),
      el(Tag.SpecificCharacterSet, 'CS', 'ISO_IR 100'),
      el(Tag.PatientName, 'PN', Buffer.from('M\xfcller*', 'latin1')),
      el(Tag.StudyInstanceUID, 'UI'),
    ]);
    expect(answers).toHaveLength(1);
    expect(answers[0]!.get(Tag.SpecificCharacterSet)).toBe('ISO_IR 100');
    expect(answers[0]!.get(Tag.PatientName)).toBe('Müller^Hans');
    // 'Müller^Hans' is 11 characters: padded with a space to 12 bytes.
    expect(rawValue(pending[0]!, Tag.PatientName)).toEqual(
      Buffer.from('M\xfcller^Hans ', 'latin1'),
    );
  });

  it('answers in UTF-8 (ISO_IR 192) when the request stated another character set, or none', async () => {
    for (const stated of [[], [el(Tag.SpecificCharacterSet, 'CS', 'ISO_IR 192')]]) {
      const { answers, pending } = await find([
        level('STUDY'),
        ...stated,
        el(Tag.PatientID, 'LO', 'PAT2'),
        el(Tag.PatientName, 'PN'),
      ]);
      expect(answers[0]!.get(Tag.SpecificCharacterSet)).toBe('ISO_IR 192');
      expect(rawValue(pending[0]!, Tag.PatientName)).toEqual(Buffer.from('Müller^Hans', 'utf8'));
    }
  });

  it('answers in UTF-8 when a value is not in Latin-1, though the request stated ISO_IR 100', async () => {
    const source = new FixedSource([
      { PatientName: 'Wałęsa^Lech', StudyDescription: 'Thorax ärztlich' },
      { PatientName: 'Müller^Hans', StudyDescription: 'Thorax ärztlich' },
    ]);
    const { answers, pending } = await find(
      [
        level('STUDY'),
        el(Tag.SpecificCharacterSet, 'CS', 'ISO_IR 100'),
        el(Tag.PatientName, 'PN'),
        el(Tag.StudyDescription, 'LO'),
      ],
      { source },
    );
    expect(column(answers, Tag.SpecificCharacterSet)).toEqual(['ISO_IR 192', 'ISO_IR 100']);
    expect(column(answers, Tag.PatientName)).toEqual(['Wałęsa^Lech', 'Müller^Hans']);
    expect(rawValue(pending[0]!, Tag.StudyDescription)).toEqual(
      Buffer.from('Thorax ärztlich', 'utf8'),
    );
    expect(rawValue(pending[1]!, Tag.StudyDescription)).toEqual(
      Buffer.from('Thorax \xe4rztlich ', 'latin1'),
    );
  });

  it('states no character set when every value is ASCII', async () => {
    const { answers } = await find([
      level('STUDY'),
      el(Tag.SpecificCharacterSet, 'CS', 'ISO_IR 100'),
      el(Tag.PatientID, 'LO', 'PAT1'),
      el(Tag.PatientName, 'PN'),
    ]);
    expect(answers).toHaveLength(2);
    for (const answer of answers) expect(answer.has(Tag.SpecificCharacterSet)).toBe(false);
  });
});

describe('C-FIND answer identifiers', () => {
  it('echoes every requested key, filled where the index knows it and empty otherwise', async () => {
    const { answers } = await find([
      level('STUDY'),
      el(Tag.StudyInstanceUID, 'UI', '1.2.1'),
      el(Tag.StudyDescription, 'LO'),
      el(Tag.InstitutionName, 'LO'),
      el(Tag.Modality, 'CS'),
      el(Tag.RetrieveAETitle, 'AE'),
      el(Tag.InstanceAvailability, 'CS'),
      el(Tag.ModalitiesInStudy, 'CS'),
      el(0x00080000, 'UL', Buffer.from([0, 0, 0, 0])),
      {
        tag: Tag.ReferencedStudySequence,
        vr: 'SQ',
        value: Buffer.alloc(0),
        items: [[el(Tag.ReferencedSOPInstanceUID, 'UI')]],
      },
    ]);
    expect(answers).toHaveLength(1);
    expect(Object.fromEntries(answers[0]!)).toEqual({
      [Tag.StudyInstanceUID]: '1.2.1',
      [Tag.StudyDescription]: 'CT CHEST',
      [Tag.InstitutionName]: '',
      [Tag.Modality]: '',
      [Tag.RetrieveAETitle]: 'DRAW_SCP',
      [Tag.InstanceAvailability]: 'ONLINE',
      [Tag.ModalitiesInStudy]: 'CT',
      [Tag.ReferencedStudySequence]: 0,
      [Tag.QueryRetrieveLevel]: 'STUDY',
    });
  });
});

describe('C-FIND answers of sequence keys', () => {
  const Sequence = { ProcedureCode: 0x00081032, RequestAttributes: 0x00400275 } as const;
  const Item = {
    CodeValue: 0x00080100,
    CodingSchemeDesignator: 0x00080102,
    CodingSchemeVersion: 0x00080103,
    CodeMeaning: 0x00080104,
    ConceptNameCodeSequence: 0x0040a043,
    RequestedProcedureID: 0x00401001,
  } as const;
  const sq = (tag: number, ...items: IdentifierElement[][]): IdentifierElement => ({
    tag,
    vr: 'SQ',
    value: Buffer.alloc(0),
    items,
  });

  /** The answers' identifiers, read back whole. */
  async function answersOf(elements: IdentifierElement[], matches: readonly IndexMatch[]) {
    const source = new FixedSource(matches);
    const { pending } = await find(elements, { source });
    return {
      source,
      answers: pending.map((r) =>
        readIdentifier(r.dataset as Buffer, encodingOf(TransferSyntax.ExplicitVRLittleEndian)),
      ),
    };
  }

  const text = (element: IdentifierElement | undefined, charset?: string) =>
    element === undefined ? undefined : decodeValue(element.value, element.vr, charset);

  it('answers the stored items, each with the requested item keys, filled or zero length', async () => {
    const { source, answers } = await answersOf(
      [
        level('STUDY'),
        el(Tag.StudyInstanceUID, 'UI'),
        sq(Sequence.ProcedureCode, [
          el(Item.CodeValue, 'SH', 'CT*'),
          el(Item.CodeMeaning, 'LO'),
          el(Item.CodingSchemeVersion, 'SH'),
          sq(Item.ConceptNameCodeSequence),
        ]),
      ],
      [
        {
          StudyInstanceUID: '1.2.1',
          sequences: {
            ProcedureCodeSequence: [
              { CodeValue: 'CT1', CodingSchemeDesignator: 'L', CodeMeaning: 'Chest' },
              { CodeValue: 'CT2' },
            ],
          },
        },
      ],
    );
    expect(source.queries[0]?.sequenceConditions).toEqual([
      {
        keyword: 'ProcedureCodeSequence',
        itemConditions: [{ keyword: 'CodeValue', match: { kind: 'wildcard', pattern: 'CT*' } }],
      },
    ]);
    expect(source.queries[0]?.returnSequences).toEqual(['ProcedureCodeSequence']);
    const sequence = answers[0]?.find((e) => e.tag === Sequence.ProcedureCode);
    expect(sequence?.items).toHaveLength(2);
    const [first, second] = sequence?.items ?? [];
    expect(first?.map((e) => [e.tag, e.items?.length ?? text(e)])).toEqual([
      [Item.CodeValue, 'CT1'],
      [Item.CodingSchemeVersion, ''],
      [Item.CodeMeaning, 'Chest'],
      [Item.ConceptNameCodeSequence, 0],
    ]);
    expect(second?.map((e) => [e.tag, e.items?.length ?? text(e)])).toEqual([
      [Item.CodeValue, 'CT2'],
      [Item.CodingSchemeVersion, ''],
      [Item.CodeMeaning, ''],
      [Item.ConceptNameCodeSequence, 0],
    ]);
  });

  it('answers a sequence asked for with an empty item, or none, with all that each item holds', async () => {
    for (const items of [[[]], []] as IdentifierElement[][][]) {
      const { answers } = await answersOf(
        [level('STUDY'), sq(Sequence.ProcedureCode, ...items)],
        [
          {
            sequences: {
              ProcedureCodeSequence: [{ CodeMeaning: 'Chest', CodeValue: 'CT1' }],
            },
          },
          { sequences: { ProcedureCodeSequence: [] } },
        ],
      );
      const [withItems, without] = answers.map((answer) =>
        answer.find((e) => e.tag === Sequence.ProcedureCode),
      );
      expect(withItems?.items?.map((item) => item.map((e) => [e.tag, text(e)]))).toEqual([
        [
          [Item.CodeValue, 'CT1'],
          [Item.CodeMeaning, 'Chest'],
        ],
      ]);
      expect(without?.items).toEqual([]);
    }
  });

  it('answers in ISO_IR 192 when an item value is not ASCII', async () => {
    const { answers } = await answersOf(
      [level('STUDY'), sq(Sequence.ProcedureCode, [el(Item.CodeMeaning, 'LO')])],
      [{ sequences: { ProcedureCodeSequence: [{ CodeMeaning: 'Thorax ärztlich' }] } }],
    );
    const answer = answers[0] ?? [];
    const charset = text(answer.find((e) => e.tag === Tag.SpecificCharacterSet));
    expect(charset).toBe('ISO_IR 192');
    const item = answer.find((e) => e.tag === Sequence.ProcedureCode)?.items?.[0];
    expect(text(item?.[0], charset)).toBe('Thorax ärztlich');
  });

  it('answers a sequence below the level empty, whatever the source holds', async () => {
    const { source, answers } = await answersOf(
      [level('STUDY'), sq(Sequence.RequestAttributes, [el(Item.RequestedProcedureID, 'SH')])],
      [{ sequences: { RequestAttributesSequence: [{ RequestedProcedureID: 'RP1' }] } }],
    );
    expect(source.queries[0]?.returnSequences).toBeUndefined();
    expect(answers[0]?.find((e) => e.tag === Sequence.RequestAttributes)?.items).toEqual([]);
  });
});
