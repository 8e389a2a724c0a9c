/**
 * Interop: our C-STORE SCU (`sendFiles`, `dicom-server send`) into DCMTK's `storescp` in
 * bit-preserving mode accepting every transfer syntax: what storescp writes holds exactly the
 * data set bytes of each file we sent.
 */

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileMeta } from '../../src/dicom/part10.js';
import { sendFiles } from '../../src/services/scu/store.js';
import { runSourceCli } from '../helpers/cli.js';
import { type BackgroundTool, startTool } from '../helpers/dcmtk.js';
import { freePort, waitForListener } from '../helpers/net.js';
import { TESTDATA_DICOM, TESTDATA_PARSE_ONLY } from '../helpers/testdata.js';

const TIMEOUTS = { artimMs: 5_000, acseMs: 5_000, networkMs: 5_000, dimseMs: 10_000 };

function datasetOf(file: Buffer): Buffer {
  return file.subarray(readFileMeta(file).datasetOffset);
}

describe('sending into DCMTK storescp +B +xa', () => {
  let dir: string;
  let port: number;
  let storescp: BackgroundTool;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'interop-send-'));
    port = await freePort();
    storescp = await startTool('storescp', ['+B', '+xa', '-od', dir, String(port)], 100);
    await waitForListener(port);
  });

  afterEach(async () => {
    await storescp.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores every test file with its data set bytes unchanged', async () => {
    const summary = await sendFiles([TESTDATA_DICOM], {
      host: '127.0.0.1',
      port,
      callingAeTitle: 'SEND_TEST',
      calledAeTitle: 'STORESCP',
      associations: 2,
      timeouts: TIMEOUTS,
    });
    expect(summary.failed, storescp.output()).toEqual([]);
    const sentFiles = await readdir(TESTDATA_DICOM);
    expect(summary.sent).toHaveLength(sentFiles.length);
    // The seven MR_small files share one SOP Instance UID: storescp keeps one file per UID.
    const stored = new Map<string, Buffer>();
    for (const name of await readdir(dir)) {
      const file = await readFile(join(dir, name));
      stored.set(readFileMeta(file).mediaStorageSopInstanceUid!, file);
    }
    for (const name of sentFiles) {
      const original = await readFile(join(TESTDATA_DICOM, name));
      const meta = readFileMeta(original);
      if (name.startsWith('MR_small')) continue;
      const received = stored.get(meta.mediaStorageSopInstanceUid!);
      expect(received, `${name} was not stored`).toBeDefined();
      expect(readFileMeta(received!).transferSyntaxUid, name).toBe(meta.transferSyntaxUid);
      // image_dfl.dcm's deflated bit stream has an odd length: it goes with its NUL pad byte
      // (PS3.5 §A.5), the only byte we add to anything.
      const expected =
        name === 'image_dfl.dcm'
          ? Buffer.concat([datasetOf(original), Buffer.alloc(1)])
          : datasetOf(original);
      expect(datasetOf(received!).equals(expected), `${name} data set differs`).toBe(true);
    }
  });

  it('exits non-zero from the command line and names each file that failed', async () => {
    const run = await runSourceCli([
      'send',
      '127.0.0.1',
      String(port),
      TESTDATA_DICOM,
      join(TESTDATA_PARSE_ONLY, 'rtstruct_no_meta.dcm'),
      '--aec',
      'STORESCP',
    ]);
    expect(run.exitCode, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/^sent 17, failed 1, /m);
    expect(run.stderr).toContain('rtstruct_no_meta.dcm: not a DICOM Part 10 file');
  });
});
