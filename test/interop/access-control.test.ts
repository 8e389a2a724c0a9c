/**
 * Interop: access control of `dicom-server serve` against DCMTK's echoscu and storescu. The IP
 * allow-list (single address, CIDR, IPv6 on a dual-stack listener), calling AE validation
 * (unknown, listed, inactive, wrong address, a peer added while the server runs), observe mode,
 * a listed peer that may not store, services and SOP class groups switched off and on, the
 * transaction log switched off, and the association limit. Each case checks what the DCMTK
 * tool reports and the transaction rows the server wrote. Settings
 * and peers are changed from this process through the settings repository, as `config set`
 * and `ae add` do, and reach the running server with its next association.
 *
 * Layer: test (interop).
 */

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORAGE_GROUPS } from '../../src/dicom/sop-classes.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { DicomServerError } from '../../src/errors.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { DimseChannel } from '../../src/network/dimse/channel.js';
import { CommandField } from '../../src/network/dimse/command.js';
import { Status } from '../../src/network/dimse/status.js';
import { RejectReason, RejectResult, RejectSource } from '../../src/network/pdu/types.js';
import { INCOMING_FOLDER } from '../../src/server/instance-store.js';
import { echo } from '../../src/services/scu/echo.js';
import { inspectFile } from '../../src/services/scu/store.js';
import type { Settings } from '../../src/settings/schema.js';
import { runTool, type ToolRun } from '../helpers/dcmtk.js';
import {
  createDataDir,
  type DataDir,
  pollUntil,
  type ServeProcess,
  startServeOn,
  stopServeAndRemoveDir,
} from '../helpers/serve-process.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

const HOST = '127.0.0.1';
const CALLED_AE = 'DRAW_SCP';
const CT_FILE = join(TESTDATA_DICOM, 'CT_small.dcm');
const SCU_TIMEOUTS = { artimMs: 10_000, acseMs: 10_000, networkMs: 10_000, dimseMs: 10_000 };

/** The access settings each test starts from: everyone in, every service on. */
const OPEN: Partial<Settings> = {
  allowed_ip_addresses: '',
  require_calling_ae_validation: false,
  ae_validation_observe_only: false,
  enable_c_echo: true,
  enable_c_store: true,
  accepted_sop_class_groups: [...STORAGE_GROUPS],
  enable_transaction_log: true,
};

/** A server process and its data directory. */
interface Running {
  readonly dir: DataDir;
  readonly serve: ServeProcess;
  readonly port: number;
}

async function startRunning(
  host: string,
  stored: Partial<Settings>,
  flags: readonly string[] = [],
): Promise<Running> {
  const dir = await createDataDir('access-control-');
  await configure(dir, stored);
  const { serve, dicomPort } = await startServeOn(dir, { host, flags }).catch(
    async (error: unknown) => {
      await dir.remove();
      throw error;
    },
  );
  return { dir, serve, port: dicomPort };
}

async function stopRunning(running: Running | undefined): Promise<void> {
  await stopServeAndRemoveDir(running?.serve, running?.dir);
}

/** Stores a settings change as `config set` does: the open baseline, then `change`. */
async function configure(dir: DataDir, change: Partial<Settings>): Promise<void> {
  const result = await dir.settings.update({ ...OPEN, ...change });
  if (!result.isValid) throw new Error(`settings rejected: ${JSON.stringify(result.errors)}`);
}

/** Adds an allowed peer as `ae add` does. */
async function addPeer(dir: DataDir, peer: Record<string, unknown>): Promise<void> {
  const result = await dir.settings.addAllowedAe(peer);
  if (!result.isValid) throw new Error(`peer rejected: ${JSON.stringify(result.errors)}`);
}

function echoscu(running: Running, callingAe: string, extra: readonly string[] = []) {
  return runTool('echoscu', [
    '-aet',
    callingAe,
    '-aec',
    CALLED_AE,
    '-to',
    '10',
    '-ta',
    '10',
    '-td',
    '10',
    ...extra,
    HOST,
    String(running.port),
  ]);
}

function storescu(running: Running, callingAe: string, file: string) {
  return runTool('storescu', [
    '-v',
    '-aet',
    callingAe,
    '-aec',
    CALLED_AE,
    '-to',
    '10',
    '-ta',
    '10',
    '-td',
    '10',
    HOST,
    String(running.port),
    file,
  ]);
}

/** The tool's and the server's output, for a failing expectation. */
function context(run: ToolRun, running: Running): string {
  return `${run.output}\n${running.serve.output()}`;
}

/** echoscu's words for an A-ASSOCIATE-RJ from the service user with `reason`. */
function expectPermanentRejection(run: ToolRun, running: Running, reason: RegExp): void {
  expect(run.exitCode, context(run, running)).not.toBe(0);
  expect(run.stderr, context(run, running)).toMatch(/Association Rejected/);
  expect(run.stderr, context(run, running)).toMatch(
    /Result: Rejected Permanent, Source: Service User/,
  );
  expect(run.stderr, context(run, running)).toMatch(reason);
}

/** The single ASSOCIATE row with `status` for `callingAe`, once written. */
async function associateRow(running: Running, callingAe: string, status: string) {
  const rows = await running.dir.waitForRows({
    type: 'ASSOCIATE',
    status: status as 'success',
    aeTitle: callingAe,
  });
  expect(rows, running.serve.output()).toHaveLength(1);
  return rows[0]!;
}

/** Waits for the row that ends the association of `callingAe`, so that every row is written. */
async function waitForEnd(running: Running, callingAe: string): Promise<void> {
  await pollUntil(
    () => running.dir.rows({ aeTitle: callingAe }),
    (rows) => rows.some((row) => row.type === 'RELEASE' || row.type === 'ABORT'),
    `the end of the association of ${callingAe}`,
  );
}

/** Files under the storage root outside the incoming folder. */
async function storedFiles(running: Running): Promise<string[]> {
  const root = join(running.dir.path, 'storage');
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && !entry.parentPath.includes(INCOMING_FOLDER))
    .map((entry) => entry.name);
}

async function indexedInstanceUids(running: Running): Promise<string[]> {
  const rows = await running.dir.database.db
    .selectFrom('instances')
    .select('sop_instance_uid')
    .execute();
  return rows.map((row) => row.sop_instance_uid);
}

/** A C-ECHO over an association we hold open; its status. */
async function echoOn(channel: DimseChannel): Promise<number | undefined> {
  const accepted = channel.findContext(SopClass.Verification);
  if (accepted === undefined) throw new Error('no Verification context accepted');
  let status: number | undefined;
  for await (const response of channel.request(accepted.id, {
    commandField: CommandField.CEchoRq,
    affectedSopClassUid: SopClass.Verification,
    hasDataset: false,
  })) {
    status = response.command.status;
  }
  return status;
}

/** Opens an association proposing Verification and keeps it open. */
async function holdAssociation(running: Running, callingAeTitle: string): Promise<DimseChannel> {
  const association = await requestAssociation({
    host: HOST,
    port: running.port,
    callingAeTitle,
    calledAeTitle: CALLED_AE,
    contexts: [
      {
        abstractSyntax: SopClass.Verification,
        transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian],
      },
    ],
    timeouts: SCU_TIMEOUTS,
  });
  return new DimseChannel(association, { dimseTimeoutMs: SCU_TIMEOUTS.dimseMs });
}

// The servers start together: each start costs seconds, run one after the other.
let main: Running | undefined;
let dualStack: Running | undefined;
let limited: Running | undefined;

beforeAll(async () => {
  const started = await Promise.allSettled([
    startRunning(HOST, {}),
    startRunning('::', {}),
    // The stored list would refuse everyone; the flag wins for this process.
    startRunning(HOST, { allowed_ip_addresses: '10.0.0.0/8' }, [
      '--max-associations',
      '2',
      '--allowed-ip-addresses',
      '127.0.0.1',
    ]),
  ]);
  [main, dualStack, limited] = started.map((result) =>
    result.status === 'fulfilled' ? result.value : undefined,
  );
  const failure = started.find((result) => result.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
});

afterAll(async () => {
  await Promise.all([stopRunning(main), stopRunning(dualStack), stopRunning(limited)]);
});

describe('IP allow-list', () => {
  it('accepts echoscu from 127.0.0.1 when the list holds that single address', async () => {
    const running = main!;
    await configure(running.dir, { allowed_ip_addresses: '127.0.0.1' });
    const run = await echoscu(running, 'ONE_ADDRESS');
    expect(run.exitCode, context(run, running)).toBe(0);
    const row = await associateRow(running, 'ONE_ADDRESS', 'success');
    expect(row).toMatchObject({ remote_address: '127.0.0.1', called_ae: CALLED_AE, message: null });
    const [echoRow] = await running.dir.waitForRows({ type: 'C-ECHO', aeTitle: 'ONE_ADDRESS' });
    expect(echoRow).toMatchObject({ status: 'success', status_code: Status.Success });
  });

  it('rejects echoscu from outside 10.0.0.0/8 (permanent, service user, no reason given) and records why', async () => {
    const running = main!;
    await configure(running.dir, { allowed_ip_addresses: '10.0.0.0/8' });
    const run = await echoscu(running, 'OUTSIDE_NET');
    expectPermanentRejection(run, running, /Reason: No Reason/);
    const row = await associateRow(running, 'OUTSIDE_NET', 'rejected');
    expect(row).toMatchObject({
      remote_address: '127.0.0.1',
      message: 'remote address 127.0.0.1 is not in the allowed IP addresses',
    });
    expect(await running.dir.rows({ type: 'C-ECHO', aeTitle: 'OUTSIDE_NET' })).toEqual([]);
    await running.serve.waitForLine(
      (line) =>
        line.level === 40 &&
        line.callingAe === 'OUTSIDE_NET' &&
        line.reason === 'address-not-allowed',
      'the refusal of OUTSIDE_NET',
    );
  });

  it('on a dual-stack listener, "::1, 127.0.0.0/8" admits echoscu over IPv4 and a peer from ::1', async () => {
    const running = dualStack!;
    await configure(running.dir, { allowed_ip_addresses: '::1, 127.0.0.0/8' });
    const run = await echoscu(running, 'V4_PEER');
    expect(run.exitCode, context(run, running)).toBe(0);
    // echoscu (DCMTK 3.6.7) cannot connect over IPv6: our own SCU is the IPv6 peer.
    const result = await echo({
      host: '::1',
      port: running.port,
      callingAeTitle: 'V6_PEER',
      calledAeTitle: CALLED_AE,
      timeouts: SCU_TIMEOUTS,
    });
    expect(result.status).toBe(Status.Success);
    const v4 = await associateRow(running, 'V4_PEER', 'success');
    expect(v4.remote_address).toBe('::ffff:127.0.0.1');
    const v6 = await associateRow(running, 'V6_PEER', 'success');
    expect(v6.remote_address).toBe('::1');
  });

  it('on a dual-stack listener, matches an IPv4 peer as IPv4: "::1" refuses it, "127.0.0.0/8" refuses ::1', async () => {
    const running = dualStack!;
    await configure(running.dir, { allowed_ip_addresses: '::1' });
    const run = await echoscu(running, 'V4_OUTSIDE');
    expectPermanentRejection(run, running, /Reason: No Reason/);
    const v4 = await associateRow(running, 'V4_OUTSIDE', 'rejected');
    expect(v4.message).toBe('remote address ::ffff:127.0.0.1 is not in the allowed IP addresses');

    await configure(running.dir, { allowed_ip_addresses: '127.0.0.0/8' });
    const error = await echo({
      host: '::1',
      port: running.port,
      callingAeTitle: 'V6_OUTSIDE',
      calledAeTitle: CALLED_AE,
      timeouts: SCU_TIMEOUTS,
    }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DicomServerError);
    expect((error as DicomServerError).code).toBe('ERR_ASSOCIATION_REJECTED');
    expect((error as DicomServerError).details).toEqual({
      result: RejectResult.RejectedPermanent,
      source: RejectSource.ServiceUser,
      reason: RejectReason.NoReasonGiven,
    });
    const v6 = await associateRow(running, 'V6_OUTSIDE', 'rejected');
    expect(v6.message).toBe('remote address ::1 is not in the allowed IP addresses');
  });

  it('a --allowed-ip-addresses flag wins over the stored list, which changes do not reach', async () => {
    const running = limited!;
    const run = await echoscu(running, 'FLAG_WINS');
    expect(run.exitCode, context(run, running)).toBe(0);
    await associateRow(running, 'FLAG_WINS', 'success');
    const stored = await running.dir.settings.update({ allowed_ip_addresses: '10.1.0.0/16' });
    expect(stored.isValid).toBe(true);
    const again = await echoscu(running, 'FLAG_STILL');
    expect(again.exitCode, context(again, running)).toBe(0);
  });
});

describe('calling AE validation', () => {
  it('rejects an unknown calling AE title (permanent, service user, calling AE not recognized)', async () => {
    const running = main!;
    await configure(running.dir, { require_calling_ae_validation: true });
    const run = await echoscu(running, 'STRANGER');
    expectPermanentRejection(run, running, /Reason: Calling AE Title Not Recognized/);
    const row = await associateRow(running, 'STRANGER', 'rejected');
    expect(row.message).toBe('calling AE title STRANGER is not in the allowed list');
  });

  it('accepts a listed, active calling AE title, and one from its expected address', async () => {
    const running = main!;
    await configure(running.dir, { require_calling_ae_validation: true });
    await addPeer(running.dir, { ae_title: 'LISTED' });
    await addPeer(running.dir, { ae_title: 'PINNED', expected_ip: '127.0.0.1' });
    for (const callingAe of ['LISTED', 'PINNED']) {
      const run = await echoscu(running, callingAe);
      expect(run.exitCode, context(run, running)).toBe(0);
      const row = await associateRow(running, callingAe, 'success');
      expect(row.message).toBeNull();
    }
  });

  it('rejects an inactive calling AE title', async () => {
    const running = main!;
    await configure(running.dir, { require_calling_ae_validation: true });
    await addPeer(running.dir, { ae_title: 'SLEEPER', is_active: false });
    const run = await echoscu(running, 'SLEEPER');
    expectPermanentRejection(run, running, /Reason: Calling AE Title Not Recognized/);
    const row = await associateRow(running, 'SLEEPER', 'rejected');
    expect(row.message).toBe('calling AE title SLEEPER is inactive');
  });

  it('rejects a calling AE title coming from another address than its expected 10.1.2.3', async () => {
    const running = main!;
    await configure(running.dir, { require_calling_ae_validation: true });
    await addPeer(running.dir, { ae_title: 'ELSEWHERE', expected_ip: '10.1.2.3' });
    const run = await echoscu(running, 'ELSEWHERE');
    expectPermanentRejection(run, running, /Reason: Calling AE Title Not Recognized/);
    const row = await associateRow(running, 'ELSEWHERE', 'rejected');
    expect(row.message).toBe('calling AE title ELSEWHERE is expected from 10.1.2.3, not 127.0.0.1');
  });

  it('applies a peer added, deactivated and removed while the server runs to the next association', async () => {
    const running = main!;
    await configure(running.dir, { require_calling_ae_validation: true });
    const before = await echoscu(running, 'LATECOMER');
    expectPermanentRejection(before, running, /Calling AE Title Not Recognized/);

    await addPeer(running.dir, { ae_title: 'LATECOMER' });
    const added = await echoscu(running, 'LATECOMER');
    expect(added.exitCode, context(added, running)).toBe(0);

    const changed = await running.dir.settings.updateAllowedAe('LATECOMER', { is_active: false });
    expect(changed?.isValid).toBe(true);
    const deactivated = await echoscu(running, 'LATECOMER');
    expectPermanentRejection(deactivated, running, /Calling AE Title Not Recognized/);

    await running.dir.settings.updateAllowedAe('LATECOMER', { is_active: true });
    expect(await running.dir.settings.removeAllowedAe('LATECOMER')).toBe(true);
    const removed = await echoscu(running, 'LATECOMER');
    expectPermanentRejection(removed, running, /Calling AE Title Not Recognized/);

    const rows = await running.dir.waitForRows({ type: 'ASSOCIATE', aeTitle: 'LATECOMER' }, 4);
    expect(rows.map((row) => [row.status, row.message])).toEqual([
      ['rejected', 'calling AE title LATECOMER is not in the allowed list'],
      ['success', null],
      ['rejected', 'calling AE title LATECOMER is inactive'],
      ['rejected', 'calling AE title LATECOMER is not in the allowed list'],
    ]);
    // One process all along: the changes were not applied by a restart.
    const pids = new Set(running.serve.lines.map((line) => line.pid));
    expect(pids.size).toBe(1);
  });
});

describe('observe mode', () => {
  it('lets an unknown calling AE title in, logs a warning and records the association as a warning', async () => {
    const running = main!;
    await configure(running.dir, {
      require_calling_ae_validation: true,
      ae_validation_observe_only: true,
    });
    const run = await echoscu(running, 'OBSERVED');
    expect(run.exitCode, context(run, running)).toBe(0);
    const warning = await running.serve.waitForLine(
      (line) =>
        line.callingAe === 'OBSERVED' &&
        String(line.msg).includes('observe mode, would be rejected'),
      'the observe-mode warning',
    );
    expect(warning, running.serve.output()).toMatchObject({
      level: 40,
      reason: 'calling-ae-not-listed',
    });
    const row = await associateRow(running, 'OBSERVED', 'warning');
    expect(row.message).toBe(
      'observe mode, would be rejected: calling AE title OBSERVED is not in the allowed list',
    );
    const [echoRow] = await running.dir.waitForRows({ type: 'C-ECHO', aeTitle: 'OBSERVED' });
    expect(echoRow?.status).toBe('success');
  });
});

describe('per-peer permissions', () => {
  it('refuses C-STORE from a peer that may not store with 0x0124, stores nothing, and still answers its C-ECHO', async () => {
    const running = main!;
    await configure(running.dir, {});
    await addPeer(running.dir, { ae_title: 'NO_STORE', may_store: false });
    const { sopInstanceUid } = await inspectFile(CT_FILE);

    const run = await storescu(running, 'NO_STORE', CT_FILE);
    expect(run.output, context(run, running)).toMatch(/Received Store Response \(.*0x124\)/);
    const [storeRow] = await running.dir.waitForRows({ type: 'C-STORE', aeTitle: 'NO_STORE' });
    expect(storeRow).toMatchObject({
      status: 'failure',
      status_code: Status.NotAuthorized,
      sop_instance_uid: sopInstanceUid,
      message: 'NO_STORE may not store',
      file_path: null,
    });
    await waitForEnd(running, 'NO_STORE');
    expect(await indexedInstanceUids(running)).toEqual([]);
    expect(await storedFiles(running)).toEqual([]);

    const echoRun = await echoscu(running, 'NO_STORE');
    expect(echoRun.exitCode, context(echoRun, running)).toBe(0);

    // The same file from the same peer, once it may store: the refusal was the permission's.
    await running.dir.settings.updateAllowedAe('NO_STORE', { may_store: true });
    const allowed = await storescu(running, 'NO_STORE', CT_FILE);
    expect(allowed.exitCode, context(allowed, running)).toBe(0);
    expect(await indexedInstanceUids(running)).toEqual([sopInstanceUid]);
    expect(await storedFiles(running)).toHaveLength(1);
  });
});

describe('services and SOP classes switched by settings', () => {
  it('with enable_c_echo off, echoscu finds no acceptable presentation context and no C-ECHO is served', async () => {
    const running = main!;
    await configure(running.dir, { enable_c_echo: false });
    const run = await echoscu(running, 'ECHO_OFF');
    expect(run.exitCode, context(run, running)).not.toBe(0);
    expect(run.stderr, context(run, running)).toMatch(/No Acceptable Presentation Contexts/);
    await associateRow(running, 'ECHO_OFF', 'success');
    await waitForEnd(running, 'ECHO_OFF');
    expect(await running.dir.rows({ type: 'C-ECHO', aeTitle: 'ECHO_OFF' })).toEqual([]);
  });

  it('with enable_c_store off, storescu finds no acceptable presentation context while C-ECHO still works', async () => {
    const running = main!;
    await configure(running.dir, { enable_c_store: false });
    const run = await storescu(running, 'STORE_OFF', CT_FILE);
    expect(run.exitCode, context(run, running)).not.toBe(0);
    expect(run.stderr, context(run, running)).toMatch(/No Acceptable Presentation Contexts/);
    await waitForEnd(running, 'STORE_OFF');
    expect(await running.dir.rows({ type: 'C-STORE', aeTitle: 'STORE_OFF' })).toEqual([]);
    const echoRun = await echoscu(running, 'STORE_OFF');
    expect(echoRun.exitCode, context(echoRun, running)).toBe(0);
  });
  it('stores a SOP class from the first association after its group is switched back on', async () => {
    const running = main!;
    await configure(running.dir, { accepted_sop_class_groups: ['mr'] });
    const off = await storescu(running, 'GROUP_OFF', CT_FILE);
    expect(off.exitCode, context(off, running)).not.toBe(0);
    expect(off.output, context(off, running)).toMatch(/No presentation context for: \(CT\)/);

    await configure(running.dir, {});
    const on = await storescu(running, 'GROUP_ON', CT_FILE);
    expect(on.exitCode, context(on, running)).toBe(0);
    const [row] = await running.dir.waitForRows({ type: 'C-STORE', aeTitle: 'GROUP_ON' });
    expect(row).toMatchObject({ status: 'success', status_code: Status.Success });
  });
});

describe('transaction log switch', () => {
  it('records nothing from the first association after enable_transaction_log is switched off', async () => {
    const running = main!;
    await configure(running.dir, { enable_transaction_log: false });
    const unlogged = await echoscu(running, 'UNLOGGED');
    expect(unlogged.exitCode, context(unlogged, running)).toBe(0);
    await configure(running.dir, {});
    const logged = await echoscu(running, 'LOGGED_AGAIN');
    expect(logged.exitCode, context(logged, running)).toBe(0);
    // Rows are written in order: once the later association's end is there, so would be these.
    await waitForEnd(running, 'LOGGED_AGAIN');
    expect(await running.dir.rows({ aeTitle: 'UNLOGGED' })).toEqual([]);
    const rows = await running.dir.rows({ aeTitle: 'LOGGED_AGAIN' });
    expect(rows.map((row) => row.type)).toEqual(['ASSOCIATE', 'C-ECHO', 'RELEASE']);
  });
});

describe('association limit', () => {
  it('with --max-associations 2, rejects 30 concurrent echoscu (transient, local limit exceeded) while the held ones go on', async () => {
    const running = limited!;
    const held = [
      await holdAssociation(running, 'HOLDER_A'),
      await holdAssociation(running, 'HOLDER_B'),
    ];
    try {
      // The held associations keep echoing while the crowd is turned away.
      let isCrowdDone = false;
      const keepEchoing = async (channel: DimseChannel) => {
        const statuses: (number | undefined)[] = [];
        do statuses.push(await echoOn(channel));
        while (!isCrowdDone);
        return statuses;
      };
      const busy = held.map(keepEchoing);
      const runs = await Promise.all(Array.from({ length: 30 }, () => echoscu(running, 'CROWD')));
      isCrowdDone = true;
      const heldStatuses = await Promise.all(busy);
      for (const run of runs) {
        expect(run.exitCode, context(run, running)).not.toBe(0);
        expect(run.stderr, context(run, running)).toMatch(
          /Result: Rejected Transient, Source: Service Provider \(Presentation Related\)/,
        );
        expect(run.stderr, context(run, running)).toMatch(/Reason: Local Limit Exceeded/);
      }
      for (const statuses of heldStatuses) {
        expect(statuses.length).toBeGreaterThan(1);
        expect(new Set(statuses)).toEqual(new Set([Status.Success]));
      }
      const rows = await running.dir.waitForRows(
        { type: 'ASSOCIATE', status: 'rejected', aeTitle: 'CROWD' },
        30,
      );
      expect(rows).toHaveLength(30);
      for (const row of rows) {
        expect(row.message).toBe(
          'rejected-transient, service-provider (presentation): local-limit-exceeded',
        );
      }

      // One held association released: the crowd competes for its place, each either served or
      // rejected as before, and the other held association still answers.
      await held[0]!.association.release();
      await running.serve.waitForLine(
        (line) => line.msg === 'association released' && line.callingAe === 'HOLDER_A',
        'the release of HOLDER_A',
      );
      const second = await Promise.all(
        Array.from({ length: 10 }, () => echoscu(running, 'CROWD_TWO', ['--repeat', '3'])),
      );
      const served = second.filter((run) => run.exitCode === 0);
      const refused = second.filter((run) => run.exitCode !== 0);
      expect(served.length, second.map((run) => run.output).join('\n')).toBeGreaterThan(0);
      for (const run of refused) {
        expect(run.stderr, context(run, running)).toMatch(/Reason: Local Limit Exceeded/);
      }
      expect(await echoOn(held[1]!)).toBe(Status.Success);
      await held[1]!.association.release();
      const refusedRows = await running.dir.waitForRows(
        { type: 'ASSOCIATE', status: 'rejected', aeTitle: 'CROWD_TWO' },
        refused.length,
      );
      expect(refusedRows).toHaveLength(refused.length);
      const servedRows = await running.dir.waitForRows(
        { type: 'C-ECHO', status: 'success', aeTitle: 'CROWD_TWO' },
        served.length * 3,
      );
      expect(servedRows).toHaveLength(served.length * 3);
    } finally {
      for (const channel of held) {
        if (channel.association.isEstablished) channel.association.abort();
      }
    }
  });
});
