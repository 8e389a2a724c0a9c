import { describe, expect, it } from 'vitest';
import { PresentationContextResult } from '../pdu/types.js';
import { negotiate, negotiateContext, type ServedSyntaxes } from './negotiation.js';

const VERIFICATION = '1.2.840.10008.1.1';
const CT = '1.2.840.10008.5.1.4.1.1.2';
const IMPLICIT = '1.2.840.10008.1.2';
const EXPLICIT = '1.2.840.10008.1.2.1';
const J2K = '1.2.840.10008.1.2.4.90';
const MR = '1.2.840.10008.5.1.4.1.1.4';
const CT_NO_ROLE = '1.2.840.10008.5.1.4.1.1.2.1';

const served: ServedSyntaxes = {
  transferSyntaxesFor: (abstractSyntax) => {
    if (abstractSyntax === VERIFICATION) return [EXPLICIT, IMPLICIT];
    if (abstractSyntax === CT) return [EXPLICIT, IMPLICIT, J2K];
    return undefined;
  },
  canActAsScuFor: (sopClass) => sopClass === CT,
  prefersRequestorOrder: (abstractSyntax) => abstractSyntax === CT,
};

describe('presentation context negotiation', () => {
  it('accepts with our most preferred transfer syntax among those proposed', () => {
    const result = negotiateContext(
      { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT, EXPLICIT] },
      served,
    );
    expect(result).toEqual({
      id: 1,
      result: PresentationContextResult.Acceptance,
      transferSyntax: EXPLICIT,
    });
  });

  it("takes the requestor's first acceptable syntax where it prefers the requestor's order (storage)", () => {
    const result = negotiateContext(
      { id: 3, abstractSyntax: CT, transferSyntaxes: ['1.2.3.4', J2K, EXPLICIT] },
      served,
    );
    expect(result).toEqual({
      id: 3,
      result: PresentationContextResult.Acceptance,
      transferSyntax: J2K,
    });
  });

  it('rejects an abstract syntax we do not serve as abstract-syntax-not-supported', () => {
    const result = negotiateContext(
      { id: 5, abstractSyntax: '1.2.3.4.5', transferSyntaxes: [EXPLICIT] },
      served,
    );
    expect(result.result).toBe(PresentationContextResult.AbstractSyntaxNotSupported);
  });

  it('rejects a context with no transfer syntax in common as transfer-syntaxes-not-supported', () => {
    const result = negotiateContext(
      { id: 7, abstractSyntax: VERIFICATION, transferSyntaxes: [J2K] },
      served,
    );
    expect(result.result).toBe(PresentationContextResult.TransferSyntaxesNotSupported);
  });

  it('answers role selection only for accepted SOP classes, once each, granting the SCP role only where we can be SCU', () => {
    const outcome = negotiate(
      [
        { id: 1, abstractSyntax: CT, transferSyntaxes: [EXPLICIT] },
        { id: 3, abstractSyntax: VERIFICATION, transferSyntaxes: [EXPLICIT] },
      ],
      [
        { sopClassUid: CT, scuRole: false, scpRole: true },
        { sopClassUid: CT, scuRole: false, scpRole: true },
        { sopClassUid: VERIFICATION, scuRole: true, scpRole: true },
        { sopClassUid: '1.2.3.4.5', scuRole: true, scpRole: true },
      ],
      served,
      false,
    );
    expect(outcome.roleSelections).toEqual([
      { sopClassUid: CT, scuRole: false, scpRole: true },
      { sopClassUid: VERIFICATION, scuRole: true, scpRole: false },
    ]);
    expect(outcome.accepted.find((c) => c.id === 1)).toMatchObject({
      requestorIsScu: false,
      requestorIsScp: true,
    });
    expect(outcome.accepted.find((c) => c.id === 3)).toMatchObject({
      requestorIsScu: true,
      requestorIsScp: false,
    });
    expect(outcome.asyncOperationsWindow).toBeUndefined();
  });

  it('answers a proposed asynchronous operations window with one operation at a time', () => {
    const outcome = negotiate(
      [{ id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [EXPLICIT] }],
      [],
      served,
      true,
    );
    expect(outcome.asyncOperationsWindow).toEqual({
      maxOperationsInvoked: 1,
      maxOperationsPerformed: 1,
    });
  });

  it('answers SOP class extended negotiation only for accepted SOP classes that have an answer', () => {
    const withAnswers: ServedSyntaxes = {
      ...served,
      // Relational queries granted when asked for (byte 0), every other option declined.
      answerExtendedNegotiation: (sopClass, proposed) =>
        sopClass === CT
          ? Uint8Array.from(proposed, (byte, i) => (i === 0 ? byte & 1 : 0))
          : undefined,
    };
    const outcome = negotiate(
      [
        { id: 1, abstractSyntax: CT, transferSyntaxes: [EXPLICIT] },
        { id: 3, abstractSyntax: VERIFICATION, transferSyntaxes: [EXPLICIT] },
      ],
      [],
      withAnswers,
      false,
      [
        { sopClassUid: CT, serviceClassApplicationInformation: Uint8Array.of(1, 1, 1) },
        { sopClassUid: VERIFICATION, serviceClassApplicationInformation: Uint8Array.of(1) },
        { sopClassUid: '1.2.3.4.5', serviceClassApplicationInformation: Uint8Array.of(1) },
      ],
    );
    expect(outcome.extendedNegotiations).toEqual([
      { sopClassUid: CT, serviceClassApplicationInformation: Uint8Array.of(1, 0, 0) },
    ]);
  });

  it("accepts a context it does not serve as SCP for the requestor's SCP role, and grants only that role", () => {
    const getOnly: ServedSyntaxes = {
      transferSyntaxesFor: (abstractSyntax) =>
        abstractSyntax === VERIFICATION ? [EXPLICIT] : undefined,
      canActAsScuFor: (sopClass) => sopClass === CT,
      transferSyntaxesAsScuFor: () => [EXPLICIT, IMPLICIT, J2K],
    };
    const outcome = negotiate(
      [
        { id: 1, abstractSyntax: CT, transferSyntaxes: [J2K, EXPLICIT] },
        { id: 3, abstractSyntax: MR, transferSyntaxes: [EXPLICIT] },
        { id: 5, abstractSyntax: CT_NO_ROLE, transferSyntaxes: [EXPLICIT] },
      ],
      [
        { sopClassUid: CT, scuRole: true, scpRole: true },
        { sopClassUid: MR, scuRole: false, scpRole: true },
      ],
      getOnly,
      false,
    );
    expect(outcome.results).toEqual([
      { id: 1, result: PresentationContextResult.Acceptance, transferSyntax: J2K },
      {
        id: 3,
        result: PresentationContextResult.AbstractSyntaxNotSupported,
        transferSyntax: EXPLICIT,
      },
      {
        id: 5,
        result: PresentationContextResult.AbstractSyntaxNotSupported,
        transferSyntax: EXPLICIT,
      },
    ]);
    expect(outcome.roleSelections).toEqual([{ sopClassUid: CT, scuRole: false, scpRole: true }]);
    expect(outcome.accepted).toEqual([
      {
        id: 1,
        abstractSyntax: CT,
        transferSyntax: J2K,
        requestorIsScu: false,
        requestorIsScp: true,
      },
    ]);
  });
});
