/**
 * Presentation context and role negotiation for an association acceptor (PS3.8 §9.3.3.2,
 * PS3.7 §D.3.3.4). Pure: proposed contexts and our configuration in, results out; no I/O.
 *
 * Layer: network/association.
 */

import {
  type AsyncOperationsWindow,
  type ContextResult,
  PresentationContextResult,
  type ProposedContext,
  type RoleSelection,
  type SopClassExtendedNegotiation,
} from '../pdu/types.js';

/** What we serve: for each abstract syntax, the transfer syntaxes we take, most preferred first. */
export interface ServedSyntaxes {
  transferSyntaxesFor(abstractSyntax: string): readonly string[] | undefined;
  /** True when we can act as SCU for this SOP class (C-STORE sub-operations of C-GET). */
  canActAsScuFor(sopClassUid: string): boolean;
  /**
   * The transfer syntaxes we can send in for a SOP class we act as SCU for, where the
   * requestor takes the SCP role only (a C-GET requestor's storage contexts when we do not
   * serve that storage class ourselves). Default: none, such a context is rejected.
   */
  transferSyntaxesAsScuFor?(sopClassUid: string): readonly string[] | undefined;
  /**
   * True when, for this abstract syntax, the requestor's order of preference wins over ours:
   * storage keeps what the sender proposes first, so that nothing is converted on the way.
   */
  prefersRequestorOrder?(abstractSyntax: string): boolean;
  /**
   * Our answer to a SOP Class Extended Negotiation proposal (PS3.7 §D.3.3.5) for a SOP class we
   * accepted, its service-class-application-information bytes; undefined to send no answer
   * (the requestor must then assume none of the options).
   */
  answerExtendedNegotiation?(sopClassUid: string, proposed: Uint8Array): Uint8Array | undefined;
}

/** A presentation context that both sides agreed on. */
export interface AcceptedContext {
  readonly id: number;
  readonly abstractSyntax: string;
  readonly transferSyntax: string;
  /** The requestor may act as SCU on this context (the default without role selection). */
  readonly requestorIsScu: boolean;
  /** The requestor may act as SCP on this context (only after role selection). */
  readonly requestorIsScp: boolean;
}

/** The outcome of negotiating one association's contexts. */
export interface NegotiationResult {
  readonly results: readonly ContextResult[];
  readonly accepted: readonly AcceptedContext[];
  readonly roleSelections: readonly RoleSelection[];
  readonly extendedNegotiations: readonly SopClassExtendedNegotiation[];
  /** Present when the requestor proposed a window: we perform operations one at a time. */
  readonly asyncOperationsWindow?: AsyncOperationsWindow;
}

/** Answers one proposed context: our preferred transfer syntax among those proposed. */
export function negotiateContext(proposed: ProposedContext, served: ServedSyntaxes): ContextResult {
  const ours = served.transferSyntaxesFor(proposed.abstractSyntax);
  // When rejecting, the transfer syntax sub-item is not significant (PS3.8 §9.3.3.2); we echo
  // the first one proposed rather than send an empty UID.
  const echo = proposed.transferSyntaxes[0] ?? '';
  if (ours === undefined) {
    return {
      id: proposed.id,
      result: PresentationContextResult.AbstractSyntaxNotSupported,
      transferSyntax: echo,
    };
  }
  const chosen = served.prefersRequestorOrder?.(proposed.abstractSyntax)
    ? proposed.transferSyntaxes.find((uid) => ours.includes(uid))
    : ours.find((uid) => proposed.transferSyntaxes.includes(uid));
  if (chosen === undefined) {
    return {
      id: proposed.id,
      result: PresentationContextResult.TransferSyntaxesNotSupported,
      transferSyntax: echo,
    };
  }
  return { id: proposed.id, result: PresentationContextResult.Acceptance, transferSyntax: chosen };
}

/**
 * Answers the requestor's role selection proposals for SOP classes we accepted (PS3.7
 * §D.3.3.4): a role is granted only if proposed, and the SCP role of the requestor (we act as
 * SCU) only where we can.
 */
export function answerRoleSelections(
  proposals: readonly RoleSelection[],
  acceptedAbstractSyntaxes: ReadonlySet<string>,
  served: ServedSyntaxes,
): RoleSelection[] {
  // One answer per SOP class (PS3.7 §D.3.3.4), the last proposal winning: a peer repeating a
  // proposal must not make our User Information item overflow its 64 KiB length field.
  const bySopClass = new Map<string, RoleSelection>();
  for (const proposal of proposals) {
    if (!acceptedAbstractSyntaxes.has(proposal.sopClassUid)) continue;
    bySopClass.set(proposal.sopClassUid, {
      sopClassUid: proposal.sopClassUid,
      // The requestor acts as SCU only where we serve the class as SCP.
      scuRole: proposal.scuRole && served.transferSyntaxesFor(proposal.sopClassUid) !== undefined,
      scpRole: proposal.scpRole && served.canActAsScuFor(proposal.sopClassUid),
    });
  }
  return [...bySopClass.values()];
}

/**
 * A context we do not serve as SCP, accepted all the same when the requestor proposed the SCP
 * role for its SOP class and we can be its SCU (PS3.4 §C.4.3: the storage contexts of a C-GET
 * requestor). The requestor's order of preference wins, as for storage.
 */
function negotiateScpRoleContext(
  proposed: ProposedContext,
  roles: ReadonlyMap<string, RoleSelection>,
  served: ServedSyntaxes,
): ContextResult | undefined {
  const role = roles.get(proposed.abstractSyntax);
  if (role?.scpRole !== true || !served.canActAsScuFor(proposed.abstractSyntax)) return undefined;
  const ours = served.transferSyntaxesAsScuFor?.(proposed.abstractSyntax) ?? [];
  const chosen = proposed.transferSyntaxes.find((uid) => ours.includes(uid));
  if (chosen === undefined) return undefined;
  return { id: proposed.id, result: PresentationContextResult.Acceptance, transferSyntax: chosen };
}

/** Answers the SOP Class Extended Negotiation proposals for SOP classes we accepted, one each. */
export function answerExtendedNegotiations(
  proposals: readonly SopClassExtendedNegotiation[],
  acceptedAbstractSyntaxes: ReadonlySet<string>,
  served: ServedSyntaxes,
): SopClassExtendedNegotiation[] {
  const bySopClass = new Map<string, SopClassExtendedNegotiation>();
  for (const proposal of proposals) {
    if (!acceptedAbstractSyntaxes.has(proposal.sopClassUid)) continue;
    const answer = served.answerExtendedNegotiation?.(
      proposal.sopClassUid,
      proposal.serviceClassApplicationInformation,
    );
    if (answer === undefined) continue;
    bySopClass.set(proposal.sopClassUid, {
      sopClassUid: proposal.sopClassUid,
      serviceClassApplicationInformation: answer,
    });
  }
  return [...bySopClass.values()];
}

/** Negotiates every proposed context and the role selections that go with them. */
export function negotiate(
  proposed: readonly ProposedContext[],
  roleProposals: readonly RoleSelection[],
  served: ServedSyntaxes,
  asyncWindowProposed: boolean,
  extendedProposals: readonly SopClassExtendedNegotiation[] = [],
): NegotiationResult {
  const proposedRoles = new Map(roleProposals.map((role) => [role.sopClassUid, role]));
  const results = proposed.map((context) => {
    const result = negotiateContext(context, served);
    if (result.result === PresentationContextResult.Acceptance) return result;
    return negotiateScpRoleContext(context, proposedRoles, served) ?? result;
  });
  const acceptedIds = new Set(
    results.filter((r) => r.result === PresentationContextResult.Acceptance).map((r) => r.id),
  );
  const acceptedProposals = proposed.filter((context) => acceptedIds.has(context.id));
  const acceptedAbstractSyntaxes = new Set(acceptedProposals.map((c) => c.abstractSyntax));
  const roleSelections = answerRoleSelections(roleProposals, acceptedAbstractSyntaxes, served);
  const roles = new Map(roleSelections.map((role) => [role.sopClassUid, role]));
  const accepted = acceptedProposals.map((context): AcceptedContext => {
    const role = roles.get(context.abstractSyntax);
    const result = results.find((r) => r.id === context.id)!;
    return {
      id: context.id,
      abstractSyntax: context.abstractSyntax,
      transferSyntax: result.transferSyntax,
      // Without a role selection item the requestor is SCU only (PS3.7 §D.3.3.4).
      requestorIsScu: role === undefined ? true : role.scuRole,
      requestorIsScp: role === undefined ? false : role.scpRole,
    };
  });
  return {
    results,
    accepted,
    roleSelections,
    extendedNegotiations: answerExtendedNegotiations(
      extendedProposals,
      acceptedAbstractSyntaxes,
      served,
    ),
    ...(asyncWindowProposed && {
      asyncOperationsWindow: { maxOperationsInvoked: 1, maxOperationsPerformed: 1 },
    }),
  };
}
