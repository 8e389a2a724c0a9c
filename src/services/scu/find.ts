/**
 * Query/Retrieve SCU (PS3.4 Annex C): what C-FIND, C-MOVE and C-GET requestors share (the
 * information model SOP classes, the request identifier, the response identifiers decoded to
 * text, one request on its own association with C-CANCEL on an AbortSignal), and C-FIND itself.
 *
 * Layer: services. Used by the `find`, `move` and `get` commands; must not import storage, db,
 * server, web or cli.
 */

import type { IdentifierElement } from '../../dicom/query/identifier.js';
import { readIdentifier, writeIdentifier } from '../../dicom/query/identifier.js';
import type { QueryLevel, QueryRoot } from '../../dicom/query/model.js';
import {
  decodeValue,
  encodeValue,
  isAsciiText,
  UTF8_CHARACTER_SET,
} from '../../dicom/query/values.js';
import { formatTag } from '../../dicom/tag.js';
import { TransferSyntax, transferSyntaxProperties } from '../../dicom/transfer-syntax.js';
import { SopClass } from '../../dicom/uid.js';
import type { Vr } from '../../dicom/vr.js';
import type { DatasetEncoding } from '../../dicom/writer/dataset-writer.js';
import { DicomServerError } from '../../errors.js';
import type { AssociationTimeouts } from '../../network/association/association.js';
import type { AcceptedContext } from '../../network/association/negotiation.js';
import { type ContextProposal, requestAssociation } from '../../network/association/requestor.js';
import { DimseChannel, type RequestHandler } from '../../network/dimse/channel.js';
import { CommandField, type CommandSet, Priority } from '../../network/dimse/command.js';
import { Status, statusCategory } from '../../network/dimse/status.js';
import type { RoleSelection } from '../../network/pdu/types.js';

/** Tags this module writes or reads by name (PS3.6). */
export const QueryTag = {
  SpecificCharacterSet: 0x00080005,
  QueryRetrieveLevel: 0x00080052,
  FailedSOPInstanceUIDList: 0x00080058,
} as const;

/** The three Q/R services. */
export type QueryRetrieveService = 'find' | 'move' | 'get';

const MODEL_SOP_CLASSES: Readonly<
  Record<QueryRoot, Readonly<Record<QueryRetrieveService, string>>>
> = {
  patient: {
    find: SopClass.PatientRootQueryRetrieveInformationModelFind,
    move: SopClass.PatientRootQueryRetrieveInformationModelMove,
    get: SopClass.PatientRootQueryRetrieveInformationModelGet,
  },
  study: {
    find: SopClass.StudyRootQueryRetrieveInformationModelFind,
    move: SopClass.StudyRootQueryRetrieveInformationModelMove,
    get: SopClass.StudyRootQueryRetrieveInformationModelGet,
  },
};

/** The SOP class of an information model's FIND, MOVE or GET (PS3.4 §C.6.1.1, §C.6.2.1). */
export function queryRetrieveSopClass(root: QueryRoot, service: QueryRetrieveService): string {
  return MODEL_SOP_CLASSES[root][service];
}

/** Where to send a request, and as whom. */
export interface ScuTarget {
  readonly host: string;
  readonly port: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly timeouts?: Partial<AssociationTimeouts> & { readonly dimseMs?: number };
}

/** One key of a request identifier: a matching value, or '' for a return key (universal match). */
export interface RequestKey {
  readonly tag: number;
  readonly vr: Vr;
  readonly value: string;
}

/** The identifier of a C-FIND, C-MOVE or C-GET request (PS3.4 §C.4.1.1.3). */
export interface RequestIdentifier {
  readonly level: QueryLevel;
  readonly keys: readonly RequestKey[];
}

/** VRs not written as text: keys of these VRs are return keys only (empty value). */
const BINARY_VRS: ReadonlySet<string> = new Set(
  'AT FD FL OB OD OF OL OV OW SL SS SV UL UN US UV'.split(' '),
);

/** True when a key of this VR can carry a matching value written as text. */
export function isTextVr(vr: Vr): boolean {
  return vr !== 'SQ' && !BINARY_VRS.has(vr);
}

/**
 * Encodes a request identifier: Query/Retrieve Level, the keys, and Specific Character Set
 * `ISO_IR 192` when a value is not ASCII (values are written as UTF-8). A sequence key is a
 * zero-length sequence (return the whole sequence); a binary VR is a zero-length value.
 */
export function buildIdentifier(identifier: RequestIdentifier, encoding: DatasetEncoding): Buffer {
  const elements: IdentifierElement[] = [
    { tag: QueryTag.QueryRetrieveLevel, vr: 'CS', value: encodeValue(identifier.level, 'CS') },
  ];
  for (const key of identifier.keys) {
    if (key.tag === QueryTag.QueryRetrieveLevel || key.tag === QueryTag.SpecificCharacterSet) {
      throw new DicomServerError('ERR_INVALID_ARGUMENT', 'key is set by the request itself', {
        tag: formatTag(key.tag),
      });
    }
    if (key.value !== '' && !isTextVr(key.vr)) {
      throw new DicomServerError('ERR_INVALID_ARGUMENT', 'only text keys take a value', {
        tag: formatTag(key.tag),
        vr: key.vr,
      });
    }
    elements.push(
      key.vr === 'SQ'
        ? { tag: key.tag, vr: 'SQ', value: Buffer.alloc(0), items: [] }
        : { tag: key.tag, vr: key.vr, value: encodeValue(key.value, key.vr) },
    );
  }
  if (identifier.keys.some((key) => !isAsciiText(key.value))) {
    elements.push({
      tag: QueryTag.SpecificCharacterSet,
      vr: 'CS',
      value: encodeValue(UTF8_CHARACTER_SET, 'CS'),
    });
  }
  return writeIdentifier(elements, encoding);
}

/** One element of a response identifier, its value as text. */
export interface ReturnedElement {
  readonly tag: number;
  readonly vr: Vr;
  /**
   * The value as text: text VRs decoded in the identifier's Specific Character Set, padding
   * removed; numbers of binary VRs in decimal; tags as (gggg,eeee); several values joined by
   * a backslash as DICOM writes them; other binary values as `<n bytes>`. Empty for sequences.
   */
  readonly value: string;
  readonly items?: readonly (readonly ReturnedElement[])[];
}

type NumberReader = (bytes: Buffer, offset: number) => number | bigint;

/**
 * The binary VRs holding numbers: size and reader. Identifiers come little endian only: the
 * information model is proposed with no big endian syntax.
 */
const NUMBER_READERS: Partial<Record<Vr, readonly [size: number, read: NumberReader]>> = {
  US: [2, (b, o) => b.readUInt16LE(o)],
  SS: [2, (b, o) => b.readInt16LE(o)],
  UL: [4, (b, o) => b.readUInt32LE(o)],
  SL: [4, (b, o) => b.readInt32LE(o)],
  FL: [4, (b, o) => b.readFloatLE(o)],
  FD: [8, (b, o) => b.readDoubleLE(o)],
  UV: [8, (b, o) => b.readBigUInt64LE(o)],
  SV: [8, (b, o) => b.readBigInt64LE(o)],
};

function binaryText(bytes: Buffer, vr: Vr): string {
  const values: string[] = [];
  if (vr === 'AT') {
    for (let o = 0; o + 4 <= bytes.length; o += 4)
      values.push(formatTag(((bytes.readUInt16LE(o) << 16) | bytes.readUInt16LE(o + 2)) >>> 0));
    return values.join('\\');
  }
  const reader = NUMBER_READERS[vr];
  if (reader === undefined) return bytes.length === 0 ? '' : `<${bytes.length} bytes>`;
  const [size, read] = reader;
  for (let o = 0; o + size <= bytes.length; o += size) values.push(String(read(bytes, o)));
  return values.join('\\');
}

function decodeElements(
  elements: readonly IdentifierElement[],
  inheritedCharacterSet: string | undefined,
): ReturnedElement[] {
  // An item may state its own Specific Character Set (PS3.5 §6.1.2.5.2); otherwise it inherits.
  const own = elements.find((element) => element.tag === QueryTag.SpecificCharacterSet);
  const characterSet =
    own === undefined ? inheritedCharacterSet : decodeValue(own.value, 'CS', undefined);
  return elements.map((element): ReturnedElement => {
    if (element.items !== undefined) {
      return {
        tag: element.tag,
        vr: element.vr,
        value: '',
        items: element.items.map((item) => decodeElements(item, characterSet)),
      };
    }
    const value = isTextVr(element.vr)
      ? decodeValue(element.value, element.vr, characterSet)
      : binaryText(element.value, element.vr);
    return { tag: element.tag, vr: element.vr, value };
  });
}

/** Decodes a response identifier, in the (little endian) encoding of the context it came on. */
export function decodeIdentifier(bytes: Buffer, encoding: DatasetEncoding): ReturnedElement[] {
  return decodeElements(readIdentifier(bytes, encoding), undefined);
}

/** Transfer syntaxes proposed for the information model: every SCP takes these. */
const UNCOMPRESSED: readonly string[] = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
];

/** The encoding of the information model's context: one of the little endian syntaxes we propose. */
function encodingOf(transferSyntaxUid: string): DatasetEncoding {
  const properties = transferSyntaxProperties(transferSyntaxUid);
  if (!UNCOMPRESSED.includes(transferSyntaxUid) || properties === undefined) {
    throw new DicomServerError('ERR_INVALID_ARGUMENT', 'not a syntax we proposed', {
      transferSyntaxUid,
    });
  }
  return properties;
}

/** What one Q/R request on its own association needs. */
export interface QueryRetrieveRequest {
  readonly target: ScuTarget;
  readonly root: QueryRoot;
  readonly service: QueryRetrieveService;
  readonly identifier: RequestIdentifier;
  /** C-MOVE only: the AE title the instances go to. */
  readonly moveDestination?: string;
  /** Contexts proposed besides the information model's (storage, for C-GET). */
  readonly extraContexts?: readonly ContextProposal[];
  readonly roleSelections?: readonly RoleSelection[];
  /** Serves the peer's requests on the same association (C-STORE sub-operations of C-GET). */
  readonly onRequest?: RequestHandler;
  /** Aborting sends a C-CANCEL; the responses go on until the final one. */
  readonly signal?: AbortSignal;
}

/** A response to a Q/R request: its command and decoded identifier, if it had one. */
export interface QueryRetrieveResponse {
  readonly command: CommandSet;
  readonly identifier?: readonly ReturnedElement[];
}

function commandFor(
  request: QueryRetrieveRequest,
  sopClassUid: string,
): Omit<CommandSet, 'messageId'> {
  const commandField = {
    find: CommandField.CFindRq,
    move: CommandField.CMoveRq,
    get: CommandField.CGetRq,
  }[request.service];
  return {
    commandField,
    affectedSopClassUid: sopClassUid,
    priority: Priority.Medium,
    hasDataset: true,
    ...(request.moveDestination !== undefined && { moveDestination: request.moveDestination }),
  };
}

function requireContext(channel: DimseChannel, sopClassUid: string): AcceptedContext {
  const context = channel.findContext(sopClassUid);
  if (context === undefined) {
    throw new DicomServerError(
      'ERR_NO_ACCEPTED_CONTEXT',
      'the peer accepted no context for the information model',
      { abstractSyntax: sopClassUid },
    );
  }
  return context;
}

/**
 * Sends one C-FIND, C-MOVE or C-GET request on an association of its own and yields its
 * responses, pending ones first, the final one last; then releases. Throws a DicomServerError
 * when the association cannot be opened, the model is not accepted or the association fails.
 */
export async function* queryRetrieve(
  request: QueryRetrieveRequest,
): AsyncGenerator<QueryRetrieveResponse> {
  const { target } = request;
  const sopClassUid = queryRetrieveSopClass(request.root, request.service);
  const association = await requestAssociation({
    host: target.host,
    port: target.port,
    callingAeTitle: target.callingAeTitle,
    calledAeTitle: target.calledAeTitle,
    contexts: [
      { abstractSyntax: sopClassUid, transferSyntaxes: UNCOMPRESSED },
      ...(request.extraContexts ?? []),
    ],
    ...(request.roleSelections !== undefined && { roleSelections: request.roleSelections }),
    ...(target.timeouts !== undefined && { timeouts: target.timeouts }),
  });
  try {
    const channel = new DimseChannel(association, {
      dimseTimeoutMs: target.timeouts?.dimseMs ?? 60_000,
      ...(request.onRequest !== undefined && { onRequest: request.onRequest }),
    });
    const context = requireContext(channel, sopClassUid);
    const encoding = encodingOf(context.transferSyntax);
    // Taken here, so that a C-CANCEL can name the request.
    const messageId = channel.nextMessageId();
    const responses = channel.request(
      context.id,
      { ...commandFor(request, sopClassUid), messageId },
      buildIdentifier(request.identifier, encoding),
    );
    const first = responses.next();
    const cancel = () => {
      // A C-CANCEL that cannot be sent means the association has ended: the responses then
      // end with that error, which is what the caller sees.
      channel.cancel(context.id, messageId).catch(() => undefined);
    };
    if (request.signal?.aborted === true) cancel();
    else request.signal?.addEventListener('abort', cancel, { once: true });
    try {
      for (let step = await first; step.done !== true; step = await responses.next()) {
        const { command, dataset } = step.value;
        yield {
          command,
          ...(dataset !== undefined && { identifier: decodeIdentifier(dataset, encoding) }),
        };
      }
    } finally {
      request.signal?.removeEventListener('abort', cancel);
    }
    await association.release();
  } finally {
    if (association.state !== 'Sta1') association.abort();
  }
}

/** Options of a C-FIND. */
export interface FindOptions {
  readonly target: ScuTarget;
  readonly root: QueryRoot;
  readonly identifier: RequestIdentifier;
  readonly signal?: AbortSignal;
}

/** A C-FIND response: a match (pending) or the final status. */
export type FindResponse =
  | {
      readonly type: 'match';
      readonly status: number;
      readonly elements: readonly ReturnedElement[];
    }
  | { readonly type: 'final'; readonly status: number; readonly errorComment?: string };

/**
 * Queries a peer with C-FIND (PS3.4 §C.4.1): yields each match as it comes, then the final
 * status (success, cancel or a failure). A pending response without an identifier is skipped.
 */
export async function* find(options: FindOptions): AsyncGenerator<FindResponse> {
  for await (const response of queryRetrieve({
    target: options.target,
    root: options.root,
    service: 'find',
    identifier: options.identifier,
    ...(options.signal !== undefined && { signal: options.signal }),
  })) {
    const status = response.command.status ?? Status.ProcessingFailure;
    if (statusCategory(status) === 'pending') {
      if (response.identifier !== undefined)
        yield { type: 'match', status, elements: response.identifier };
      continue;
    }
    const { errorComment } = response.command;
    yield { type: 'final', status, ...(errorComment !== undefined && { errorComment }) };
  }
}
