/**
 * The Query/Retrieve services as the server offers them: their SOP classes by service switch,
 * whether an association agreed to relational queries, and the C-FIND, C-MOVE and C-GET
 * registrations of one association, each behind its permission check.
 *
 * Layer: server.
 */

import type { Logger } from 'pino';
import { SopClass } from '../dicom/uid.js';
import type { Association, AssociationTimeouts } from '../network/association/association.js';
import type { IncomingRequest, ResponseSpec } from '../network/dimse/channel.js';
import { CommandField } from '../network/dimse/command.js';
import type { ServiceRegistration } from '../services/dispatcher.js';
import { createFindHandler } from '../services/find.js';
import { createGetHandler } from '../services/get.js';
import { createMoveHandler } from '../services/move.js';
import type { MoveDestinations, QuerySource } from '../services/ports.js';
import type { Settings } from '../settings/schema.js';
import type { Permission } from './access-control.js';

/** The Query/Retrieve SOP classes of each service (PS3.4 Annex C). */
export const QUERY_RETRIEVE_CLASSES = {
  enable_c_find: new Set<string>([
    SopClass.PatientRootQueryRetrieveInformationModelFind,
    SopClass.StudyRootQueryRetrieveInformationModelFind,
  ]),
  enable_c_move: new Set<string>([
    SopClass.PatientRootQueryRetrieveInformationModelMove,
    SopClass.StudyRootQueryRetrieveInformationModelMove,
  ]),
  enable_c_get: new Set<string>([
    SopClass.PatientRootQueryRetrieveInformationModelGet,
    SopClass.StudyRootQueryRetrieveInformationModelGet,
  ]),
} as const;

/** The service switch of a Query/Retrieve SOP class, if it is one. */
export function queryRetrieveServiceOf(
  sopClassUid: string,
): keyof typeof QUERY_RETRIEVE_CLASSES | undefined {
  for (const [service, classes] of Object.entries(QUERY_RETRIEVE_CLASSES)) {
    if (classes.has(sopClassUid)) return service as keyof typeof QUERY_RETRIEVE_CLASSES;
  }
  return undefined;
}

/**
 * True when relational queries or retrievals were agreed for a SOP class on this association:
 * byte 0 of our SOP Class Extended Negotiation answer (PS3.4 §C.5.1.1, §C.5.2.1, §C.5.3.1).
 */
export function isRelationalAgreed(association: Association, sopClassUid: string): boolean {
  const answers = association.acceptance?.userInformation.sopClassExtendedNegotiations ?? [];
  const answer = answers.find((item) => item.sopClassUid === sopClassUid);
  return answer?.serviceClassApplicationInformation[0] === 1;
}

/** What the Query/Retrieve handlers of one association are made of. */
export interface QueryRetrieveContext {
  readonly source: QuerySource;
  readonly association: Association;
  /** The settings now (the match limit and name matching are read per request). */
  readonly settings: () => Settings;
  readonly aeTitle: string;
  readonly timeouts: AssociationTimeouts & { readonly dimseMs: number };
  readonly maxPduLength: number;
  readonly destinations: MoveDestinations;
  readonly logger: Logger;
  /** A refusal when the calling peer may not do this, else undefined. */
  readonly ifPermitted: (
    permission: Permission,
    request: IncomingRequest,
  ) => Promise<ResponseSpec> | undefined;
}

/** C-FIND, C-MOVE and C-GET over the index for one association. */
export function queryRetrieveRegistrations(context: QueryRetrieveContext): ServiceRegistration[] {
  const { association, ifPermitted, source, settings, logger } = context;
  const queryAssociation = {
    isRelational: (sopClassUid: string) => isRelationalAgreed(association, sopClassUid),
  };
  const retrieveAssociation = {
    ...queryAssociation,
    callingAeTitle: association.callingAeTitle.trim(),
  };
  const handleFind = createFindHandler({
    source,
    settings: () => ({
      maxResults: settings().max_query_results,
      isPersonNameCaseInsensitive: settings().case_insensitive_name_matching,
      retrieveAeTitle: context.aeTitle,
    }),
  });
  const handleMove = createMoveHandler({
    source,
    destinations: context.destinations,
    aeTitle: context.aeTitle,
    timeouts: context.timeouts,
    maxPduLength: context.maxPduLength,
    logger,
  });
  const handleGet = createGetHandler({ source, logger });
  return [
    {
      commandField: CommandField.CFindRq,
      abstractSyntaxes: QUERY_RETRIEVE_CLASSES.enable_c_find,
      handle: (request, signal) =>
        ifPermitted('query', request) ?? handleFind(request, signal, queryAssociation),
    },
    {
      commandField: CommandField.CMoveRq,
      abstractSyntaxes: QUERY_RETRIEVE_CLASSES.enable_c_move,
      handle: (request, signal) =>
        ifPermitted('retrieve', request) ?? handleMove(request, signal, retrieveAssociation),
    },
    {
      commandField: CommandField.CGetRq,
      abstractSyntaxes: QUERY_RETRIEVE_CLASSES.enable_c_get,
      handle: (request, signal, channel) =>
        ifPermitted('retrieve', request) ??
        handleGet(request, signal, { ...retrieveAssociation, channel }),
    },
  ];
}
