/**
 * Interop: Query/Retrieve through `dicom-server serve` as an administrator sets it up. Move
 * destinations come from the AE titles (`ae add DEST --host H --port P`); the query and
 * retrieve permissions of a listed peer, the service switches, and the transaction rows that
 * each C-FIND and C-MOVE leaves; and a forwarding rule made over the REST API sending what it
 * matches to the same destination. Peers and settings are changed through the settings
 * repository, as `ae add` and `config set` do, and reach the running server with its next
 * association.
 *
 * Layer: test (interop).
 */

import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCtSeries } from '../../bench/synthetic.js';
import { loginAdmin } from '../helpers/api-session.js';
import { runTool, type Storescp, startStorescp, type ToolRun } from '../helpers/dcmtk.js';
import {
  createDataDir,
  type DataDir,
  pollUntil,
  type ServeProcess,
  startServeOn,
  stopServeAndRemoveDir,
} from '../helpers/serve-process.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

const CALLED_AE = 'DRAW_SCP';
const MR_STUDY = '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457';
const MR_INSTANCE = '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457';
const TIMEOUTS = ['-to', '10', '-ta', '10', '-td', '20'];
const ADMIN_PASSWORD = 'forwarding-test-password';

let dir: DataDir;
let serve: ServeProcess;
let port: number;
let httpPort: number;
let storescp: Storescp;
let storescpPort: number;
let received: string;

beforeAll(async () => {
  dir = await createDataDir('qr-serve-');
  ({
    serve,
    dicomPort: port,
    httpPort,
  } = await startServeOn(dir, {
    env: { DICOM_SERVER_ADMIN_PASSWORD: ADMIN_PASSWORD },
  }));
  const stored = await runTool('storescu', [
    '-aet',
    'MODALITY',
    '-aec',
    CALLED_AE,
    ...TIMEOUTS,
    '127.0.0.1',
    String(port),
    join(TESTDATA_DICOM, 'MR_small.dcm'),
    join(TESTDATA_DICOM, 'CT_small.dcm'),
  ]);
  expect(stored.exitCode, stored.output).toBe(0);
  received = join(dir.path, 'received');
  storescp = await startStorescp(received, ['-aet', 'DEST', '+B']);
  storescpPort = storescp.port;
}, 60_000);

afterAll(async () => {
  await storescp?.stop();
  await stopServeAndRemoveDir(serve, dir);
});

async function addPeer(peer: Record<string, unknown>): Promise<void> {
  const result = await dir.settings.addAllowedAe(peer);
  if (!result.isValid) throw new Error(`peer rejected: ${JSON.stringify(result.errors)}`);
}

async function configure(change: Record<string, unknown>): Promise<void> {
  const result = await dir.settings.update(change);
  if (!result.isValid) throw new Error(`settings rejected: ${JSON.stringify(result.errors)}`);
}

function findscu(callingAe: string): Promise<ToolRun> {
  return runTool('findscu', [
    '-v',
    '-S',
    '-aet',
    callingAe,
    '-aec',
    CALLED_AE,
    ...TIMEOUTS,
    '-k',
    'QueryRetrieveLevel=STUDY',
    '-k',
    'PatientID=4MR1',
    '-k',
    'StudyInstanceUID',
    '127.0.0.1',
    String(port),
  ]);
}

function movescu(callingAe: string, destination: string): Promise<ToolRun> {
  return runTool('movescu', [
    '-v',
    '-S',
    '-aet',
    callingAe,
    '-aec',
    CALLED_AE,
    '-aem',
    destination,
    ...TIMEOUTS,
    '-k',
    'QueryRetrieveLevel=STUDY',
    '-k',
    `StudyInstanceUID=${MR_STUDY}`,
    '127.0.0.1',
    String(port),
  ]);
}

/** The newest transaction row of `type` from `callingAe`, once written. */
async function lastRow(type: string, callingAe: string) {
  const rows = await pollUntil(
    () => dir.rows({ aeTitle: callingAe }),
    (found) => found.some((row) => row.type === type),
    `a ${type} row from ${callingAe}`,
  );
  return rows.filter((row) => row.type === type).at(-1)!;
}

describe('Query/Retrieve through serve', () => {
  it('answers findscu and records the query', async () => {
    const run = await findscu('VIEWER');
    expect(run.exitCode, run.output).toBe(0);
    expect(run.output).toContain(MR_STUDY);
    const row = await lastRow('C-FIND', 'VIEWER');
    expect(row).toMatchObject({ status: 'success', message: '1 match at STUDY level' });
  });

  it('moves to a destination set up as an AE title with host and port, and records it', async () => {
    await addPeer({ ae_title: 'DEST', host: '127.0.0.1', port: storescpPort });
    const run = await movescu('VIEWER', 'DEST');
    expect(run.exitCode, `${run.output}\n${serve.output()}`).toBe(0);
    expect(run.output).toMatch(/Final Move Response \(Success\)/);
    const files = await pollUntil(
      () => readdir(received),
      (names) => names.length > 0,
      'the moved file',
    );
    expect(files.some((name) => name.includes(MR_INSTANCE))).toBe(true);
    const row = await lastRow('C-MOVE', 'VIEWER');
    expect(row).toMatchObject({
      status: 'success',
      message: '1 instance to DEST: 1 sent, 0 failed',
    });
  });

  it('refuses a destination that is not a move destination (0xA801)', async () => {
    await addPeer({
      ae_title: 'NOT_DEST',
      host: '127.0.0.1',
      port: storescpPort,
      is_move_destination: false,
    });
    const run = await movescu('VIEWER', 'NOT_DEST');
    expect(run.output).toMatch(/Final Move Response \(Refused: MoveDestinationUnknown\)/);
  });

  it('refuses queries and retrieves of a listed peer without those permissions (0x0124)', async () => {
    await addPeer({ ae_title: 'NO_QR', may_query: false, may_retrieve: false });
    const find = await findscu('NO_QR');
    expect(find.output).toMatch(/Final Find Response \(Unknown Status: 0x124\)/);
    expect(find.output).not.toContain(MR_STUDY);
    const move = await movescu('NO_QR', 'DEST');
    expect(move.output).not.toMatch(/Final Move Response \(Success\)/);
    const row = await lastRow('C-FIND', 'NO_QR');
    expect(row).toMatchObject({ status: 'failure', status_code: 0x0124 });
  });

  it('stops offering C-FIND when it is switched off', async () => {
    await configure({ enable_c_find: false });
    try {
      const run = await findscu('VIEWER');
      expect(run.exitCode).not.toBe(0);
      expect(run.output).toMatch(/No Acceptable Presentation Contexts|no presentation context/i);
    } finally {
      await configure({ enable_c_find: true });
    }
    expect((await findscu('VIEWER')).exitCode).toBe(0);
  });

  it('serves C-GET with C-STORE switched off: the storage contexts are accepted for the SCP role', async () => {
    await configure({ enable_c_store: false });
    try {
      const out = join(dir.path, 'get-no-store');
      await mkdir(out);
      const run = await runTool('getscu', [
        '-v',
        '-S',
        '-aet',
        'VIEWER',
        '-aec',
        CALLED_AE,
        '+B',
        '-od',
        out,
        ...TIMEOUTS,
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${MR_STUDY}`,
        '127.0.0.1',
        String(port),
      ]);
      expect(run.exitCode, `${run.output}\n${serve.output()}`).toBe(0);
      expect(await readdir(out)).toEqual([expect.stringContaining(MR_INSTANCE)]);
      // And nothing can be stored meanwhile.
      const store = await runTool('storescu', [
        '-aet',
        'MODALITY',
        '-aec',
        CALLED_AE,
        ...TIMEOUTS,
        '127.0.0.1',
        String(port),
        join(TESTDATA_DICOM, 'CT_small.dcm'),
      ]);
      expect(store.exitCode).not.toBe(0);
    } finally {
      await configure({ enable_c_store: true });
    }
  });

  it('forwards what a rule made over the REST API matches (the forwarder runs with the service)', async () => {
    const session = await loginAdmin(httpPort, ADMIN_PASSWORD);
    const rule = await session.post('routing/rules', {
      name: 'CT to DEST',
      conditions: { modality: 'CT' },
      destinations: ['DEST'],
    });
    expect(rule.status, await rule.clone().text()).toBe(201);
    const before = new Set(await readdir(received));
    const ct = await writeCtSeries(join(dir.path, 'new-ct'), 1);
    const sent = await runTool('storescu', [
      '-aet',
      'MODALITY',
      '-aec',
      CALLED_AE,
      ...TIMEOUTS,
      '127.0.0.1',
      String(port),
      ...ct.files,
      join(TESTDATA_DICOM, 'rtplan.dcm'),
    ]);
    expect(sent.exitCode, sent.output).toBe(0);
    const arrived = await pollUntil(
      async () => (await readdir(received)).filter((name) => !before.has(name)),
      (names) => names.length > 0,
      'the forwarded file',
      15_000,
    );
    // The new CT instance, not the RT plan.
    expect(arrived).toHaveLength(1);
    expect(arrived[0]).toMatch(/^CT\./);
    const rows = await dir.waitForRows({ type: 'FORWARD' });
    expect(rows.map((row) => row.status)).toEqual(['success']);
  });
});
