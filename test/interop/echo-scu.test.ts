/**
 * Interop: our C-ECHO SCU (`echo()`) against DCMTK's `storescp`, which accepts any called AE
 * title, and against `storescp --refuse`, which rejects every association.
 *
 * Layer: test (interop).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DicomServerError } from '../../src/errors.js';
import { RejectReason, RejectResult, RejectSource } from '../../src/network/pdu/types.js';
import { echo } from '../../src/services/scu/echo.js';
import { type BackgroundTool, startTool } from '../helpers/dcmtk.js';
import { freePort, waitForListener } from '../helpers/net.js';
import { waitFor } from '../helpers/server.js';

const HOST = '127.0.0.1';
const TIMEOUTS = { artimMs: 5_000, acseMs: 5_000, networkMs: 5_000, dimseMs: 5_000 };

describe('echo() against DCMTK storescp', () => {
  let dir: string;
  let storescp: BackgroundTool | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'interop-storescp-'));
  });
  afterEach(async () => {
    await storescp?.stop();
    storescp = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function startStorescp(extra: readonly string[]): Promise<number> {
    const port = await freePort();
    storescp = await startTool('storescp', [
      '-v',
      '-aet',
      'STORESCP',
      '-od',
      dir,
      ...extra,
      String(port),
    ]);
    await waitForListener(port);
    return port;
  }

  it('verifies storescp: status success and its implementation version name', async () => {
    const port = await startStorescp([]);
    const result = await echo({
      host: HOST,
      port,
      callingAeTitle: 'OUR_SCU',
      calledAeTitle: 'ANY_TITLE',
      timeouts: TIMEOUTS,
    }).catch((error: unknown) => {
      throw new Error(`echo failed: ${String(error)}\n${storescp?.output()}`);
    });
    expect(result.status, storescp?.output()).toBe(0);
    expect(result.peerImplementationVersionName).toMatch(/^OFFIS_DCMTK_/);
    await waitFor(
      () => /Received Echo Request/.test(storescp?.output() ?? ''),
      5_000,
      'storescp to log the C-ECHO',
    );
    await waitFor(
      () => /Association Release/.test(storescp?.output() ?? ''),
      5_000,
      'storescp to log the release',
    );
  });

  it('reports ERR_ASSOCIATION_REJECTED with result, source and reason from storescp --refuse', async () => {
    const port = await startStorescp(['--refuse']);
    const error = await echo({
      host: HOST,
      port,
      callingAeTitle: 'OUR_SCU',
      calledAeTitle: 'STORESCP',
      timeouts: TIMEOUTS,
    }).then(
      (result) => {
        throw new Error(`echo succeeded (status ${result.status})\n${storescp?.output()}`);
      },
      (caught: unknown) => caught,
    );
    expect(error, storescp?.output()).toBeInstanceOf(DicomServerError);
    const rejected = error as DicomServerError;
    expect(rejected.code, storescp?.output()).toBe('ERR_ASSOCIATION_REJECTED');
    // storescp --refuse: rejected-permanent, service-user, no-reason-given (PS3.8 Table 9-21).
    expect(rejected.details).toMatchObject({
      result: RejectResult.RejectedPermanent,
      source: RejectSource.ServiceUser,
      reason: RejectReason.NoReasonGiven,
    });
  });
});
