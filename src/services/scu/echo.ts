/**
 * C-ECHO SCU: opens an association proposing Verification, sends one C-ECHO-RQ, releases.
 *
 * Layer: services.
 */

import { TransferSyntax } from '../../dicom/transfer-syntax.js';
import { SopClass } from '../../dicom/uid.js';
import { DicomServerError } from '../../errors.js';
import type { AssociationTimeouts } from '../../network/association/association.js';
import { requestAssociation } from '../../network/association/requestor.js';
import { DimseChannel } from '../../network/dimse/channel.js';
import { CommandField } from '../../network/dimse/command.js';
import type { TlsClientOptions } from '../../network/tls.js';

/** Where to echo, and as whom. */
export interface EchoOptions {
  readonly host: string;
  readonly port: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly timeouts?: Partial<AssociationTimeouts> & { readonly dimseMs?: number };
  /** Over TLS (PS3.15 Annex B) with these options; plain TCP without. */
  readonly tls?: TlsClientOptions;
}

/** The outcome of a C-ECHO. */
export interface EchoResult {
  readonly status: number;
  readonly durationMs: number;
  readonly peerImplementationVersionName?: string;
}

/** Verifies a peer: association, C-ECHO, release. Throws a DicomServerError on any failure. */
export async function echo(options: EchoOptions): Promise<EchoResult> {
  const started = performance.now();
  const association = await requestAssociation({
    host: options.host,
    port: options.port,
    callingAeTitle: options.callingAeTitle,
    calledAeTitle: options.calledAeTitle,
    contexts: [
      {
        abstractSyntax: SopClass.Verification,
        transferSyntaxes: [
          TransferSyntax.ExplicitVRLittleEndian,
          TransferSyntax.ImplicitVRLittleEndian,
        ],
      },
    ],
    ...(options.timeouts !== undefined && { timeouts: options.timeouts }),
    ...(options.tls !== undefined && { tls: options.tls }),
  });
  try {
    const channel = new DimseChannel(association, {
      dimseTimeoutMs: options.timeouts?.dimseMs ?? 60_000,
    });
    const context = channel.findContext(SopClass.Verification);
    if (context === undefined) {
      throw new DicomServerError(
        'ERR_NO_ACCEPTED_CONTEXT',
        'the peer accepted no Verification context',
        {
          abstractSyntax: SopClass.Verification,
        },
      );
    }
    let status: number | undefined;
    for await (const response of channel.request(context.id, {
      commandField: CommandField.CEchoRq,
      affectedSopClassUid: SopClass.Verification,
      hasDataset: false,
    })) {
      status = response.command.status;
    }
    await association.release();
    const version = association.acceptance?.userInformation.implementationVersionName;
    return {
      status: status ?? -1,
      durationMs: performance.now() - started,
      ...(version !== undefined && { peerImplementationVersionName: version }),
    };
  } finally {
    if (association.state !== 'Sta1') association.abort();
  }
}
