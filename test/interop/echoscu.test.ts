/**
 * Interop: DCMTK's `echoscu` (and `storescu` for an unsupported SOP class) against our
 * DICOM service running in-process: accepted and rejected associations, rejected presentation
 * contexts, many associations in a row and at once, the association limit, and ARTIM on
 * connections that send nothing or trickle.
 *
 * Layer: test (interop).
 */

import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import type { Association } from '../../src/network/association/association.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { DimseChannel } from '../../src/network/dimse/channel.js';
import { CommandField } from '../../src/network/dimse/command.js';
import { Status } from '../../src/network/dimse/status.js';
import { runTool, type ToolRun } from '../helpers/dcmtk.js';
import { loadPduFixture } from '../helpers/hex-fixture.js';
import { RawPeer } from '../helpers/raw-peer.js';
import { type LogLine, startTestServer, type TestServer, waitFor } from '../helpers/server.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

const HOST = '127.0.0.1';
const WARN = 40;
const CT_SMALL = join(TESTDATA_DICOM, 'CT_small.dcm');
/** A SOP Class UID under a private test root that no server supports. */
const MADE_UP_SOP_CLASS = '1.2.826.0.1.3680043.9.7777.1';

/** Runs echoscu against 127.0.0.1:port with bounded connect, ACSE and DIMSE timeouts. */
function echoscu(port: number, calledAeTitle: string): Promise<ToolRun> {
  return runTool('echoscu', [
    '-aet',
    'ECHOSCU',
    '-aec',
    calledAeTitle,
    '-to',
    '10',
    '-ta',
    '10',
    '-td',
    '10',
    HOST,
    String(port),
  ]);
}

/** The server's log lines, one JSON object a line, for failure messages. */
function dump(logs: readonly LogLine[]): string {
  return logs.map((line) => JSON.stringify(line)).join('\n');
}

/** Waits for a log line matching `predicate` and returns it. */
async function waitForLog(
  server: TestServer,
  what: string,
  predicate: (line: LogLine) => boolean,
): Promise<LogLine> {
  await waitFor(() => server.logs.some(predicate), 5_000, `log line: ${what}`).catch(
    (error: Error) => {
      throw new Error(`${error.message}\n${dump(server.logs)}`);
    },
  );
  return server.logs.find(predicate)!;
}

describe('echoscu against our server', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('verifies the server: association, C-ECHO, release, exit 0', async () => {
    const run = await echoscu(server.port, server.aeTitle);
    expect(run.exitCode, run.output).toBe(0);
    const operation = await waitForLog(
      server,
      'C-ECHO operation',
      (line) => line.msg === 'operation' && line.op === 'C-ECHO-RQ',
    );
    expect(operation.status, dump(server.logs)).toBe('0x0000');
    await waitForLog(
      server,
      'release of the ECHOSCU association',
      (line) => line.msg === 'association released' && line.callingAe === 'ECHOSCU',
    );
  });

  it('rejects an association whose called AE title is unknown, and logs it at warn', async () => {
    const run = await echoscu(server.port, 'NOT_OUR_AE');
    expect(run.exitCode, run.output).not.toBe(0);
    expect(run.output).toMatch(/Association Rejected/);
    expect(run.output).toMatch(/Result: Rejected Permanent, Source: Service User/);
    expect(run.output).toMatch(/Reason: Called AE Title Not Recognized/);
    const line = await waitForLog(
      server,
      'rejection of NOT_OUR_AE',
      (l) => l.msg === 'association rejected' && l.calledAe === 'NOT_OUR_AE',
    );
    expect(line.level, dump(server.logs)).toBe(WARN);
    expect(line.rejection).toBe('rejected-permanent, service-user: called-AE-title-not-recognized');
  });

  it('runs 50 echoscu associations one after another, all successful', async () => {
    for (let i = 0; i < 50; i += 1) {
      const run = await echoscu(server.port, server.aeTitle);
      expect(run.exitCode, `run ${i + 1}:\n${run.output}`).toBe(0);
    }
  });

  it('serves 10 concurrent echoscu associations (the default limit), all successful', async () => {
    // Associations of earlier tests count until their peer has closed the connection.
    await waitFor(() => server.server.activeAssociations === 0, 5_000, 'earlier associations');
    const runs = await Promise.all(
      Array.from({ length: 10 }, () => echoscu(server.port, server.aeTitle)),
    );
    for (const run of runs) expect(run.exitCode, run.output).toBe(0);
  });
});

describe('storescu proposing only an unsupported SOP class', () => {
  let server: TestServer;
  let dir: string;

  beforeAll(async () => {
    server = await startTestServer();
    dir = await mkdtemp(join(tmpdir(), 'interop-unsupported-'));
  });
  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts the association but rejects the context as abstract syntax not supported', async () => {
    const file = join(dir, 'made-up.dcm');
    await copyFile(CT_SMALL, file);
    // dcmodify updates (0002,0002) MediaStorageSOPClassUID itself from (0008,0016); asking it to
    // modify (0002,0002) too fails with "Tag not found" (it edits the data set, not the meta).
    const modify = await runTool('dcmodify', [
      '-nb',
      '-m',
      `(0008,0016)=${MADE_UP_SOP_CLASS}`,
      file,
    ]);
    expect(modify.exitCode, modify.output).toBe(0);
    const check = await runTool('dcmdump', ['-M', '+P', '0002,0002', '+P', '0008,0016', file]);
    expect(
      check.stdout.match(new RegExp(MADE_UP_SOP_CLASS.replace(/\./g, '\\.'), 'g')),
    ).toHaveLength(2);

    // Without a configuration, storescu proposes its fixed list of 128 storage contexts (which
    // does not include the file's class); this profile proposes the file's class alone.
    const config = join(dir, 'storescu.cfg');
    await writeFile(
      config,
      [
        '[[TransferSyntaxes]]',
        '[Uncompressed]',
        'TransferSyntax1 = LittleEndianExplicit',
        'TransferSyntax2 = LittleEndianImplicit',
        '[[PresentationContexts]]',
        '[MadeUp]',
        `PresentationContext1 = ${MADE_UP_SOP_CLASS}\\Uncompressed`,
        '[[Profiles]]',
        '[MadeUpOnly]',
        'PresentationContexts = MadeUp',
        '',
      ].join('\n'),
    );
    const run = await runTool('storescu', [
      '-d',
      '-xf',
      config,
      'MadeUpOnly',
      '-aet',
      'STORESCU',
      '-aec',
      server.aeTitle,
      '-to',
      '10',
      '-ta',
      '10',
      HOST,
      String(server.port),
      file,
    ]);
    expect(run.exitCode, run.output).not.toBe(0);
    // storescu's debug dump of the A-ASSOCIATE-AC: the association was accepted and our one
    // context came back with result 3, abstract syntax not supported.
    expect(run.output, run.output).toMatch(/BEGIN A-ASSOCIATE-AC/);
    expect(run.output, run.output).toMatch(/Context ID:\s+1 \(Abstract Syntax Not Supported\)/);
    expect(run.output, run.output).toMatch(/No Acceptable Presentation Contexts/);

    const accepted = await waitForLog(
      server,
      'acceptance of the STORESCU association',
      (line) => line.msg === 'association accepted' && line.callingAe === 'STORESCU',
    );
    expect(accepted.proposedContexts, dump(server.logs)).toBe(1);
    expect(accepted.acceptedContexts, dump(server.logs)).toBe(0);
    // storescu then drops the TCP connection without release or abort.
    const closed = await waitForLog(
      server,
      'end of the STORESCU association',
      (line) => line.assoc === accepted.assoc && line.outcome !== undefined,
    );
    expect(closed.outcome, dump(server.logs)).toBe('connection-lost');
    expect(closed.level).toBe(WARN);
  });
});

describe('the association limit', () => {
  const LIMIT = 3;
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ maxAssociations: LIMIT });
  });
  afterAll(async () => {
    await server.stop();
  });

  function holdAssociation(): Promise<Association> {
    return requestAssociation({
      host: HOST,
      port: server.port,
      callingAeTitle: 'HOLDER',
      calledAeTitle: server.aeTitle,
      contexts: [
        {
          abstractSyntax: SopClass.Verification,
          transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian],
        },
      ],
      timeouts: { acseMs: 5_000, artimMs: 5_000, networkMs: 30_000 },
    });
  }

  async function cEcho(association: Association): Promise<number | undefined> {
    const channel = new DimseChannel(association, { dimseTimeoutMs: 5_000 });
    const context = channel.findContext(SopClass.Verification);
    expect(context).toBeDefined();
    let status: number | undefined;
    for await (const response of channel.request(context!.id, {
      commandField: CommandField.CEchoRq,
      affectedSopClassUid: SopClass.Verification,
      hasDataset: false,
    })) {
      status = response.command.status;
    }
    return status;
  }

  it('rejects one more as transient, local limit exceeded; the held ones go on', async () => {
    const held: Association[] = [];
    try {
      for (let i = 0; i < LIMIT; i += 1) held.push(await holdAssociation());
      expect(server.server.activeAssociations).toBe(LIMIT);

      const rejected = await echoscu(server.port, server.aeTitle);
      expect(rejected.exitCode, rejected.output).not.toBe(0);
      expect(rejected.output).toMatch(/Association Rejected/);
      expect(rejected.output).toMatch(
        /Result: Rejected Transient, Source: Service Provider \(Presentation Related\)/,
      );
      expect(rejected.output).toMatch(/Reason: Local Limit Exceeded/);
      const line = await waitForLog(
        server,
        'rejection of ECHOSCU',
        (l) => l.msg === 'association rejected' && l.callingAe === 'ECHOSCU',
      );
      expect(line.level).toBe(WARN);
      expect(line.rejection).toBe(
        'rejected-transient, service-provider (presentation): local-limit-exceeded',
      );

      for (const association of held) {
        expect(await cEcho(association)).toBe(Status.Success);
      }
      await Promise.all(held.map((association) => association.release()));
      for (const association of held) {
        expect((await association.closed).outcome).toBe('released');
      }
      await waitFor(
        () => server.server.activeAssociations === 0,
        5_000,
        'the server to count the released associations out',
      );

      const accepted = await echoscu(server.port, server.aeTitle);
      expect(accepted.exitCode, accepted.output).toBe(0);
    } finally {
      for (const association of held) association.abort();
    }
  });
});

describe('connections that never complete an A-ASSOCIATE-RQ', () => {
  /**
   * ARTIM short enough to keep the test quick, long enough that echoscu (tens of ms) finishes
   * well before it closes the two idle connections.
   */
  const ARTIM_MS = 1_500;
  const DRIP_INTERVAL_MS = 200;
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ timeouts: { artimMs: ARTIM_MS } });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('do not hold up other associations, and ARTIM closes both', async () => {
    const request = loadPduFixture('echo-01-a-associate-rq.hex');
    const silent = await RawPeer.connect(server.port);
    const dripping = await RawPeer.connect(server.port);
    let sent = 0;
    const dripOne = () => {
      if (dripping.isClosed || sent >= request.length) return;
      dripping.write(request.subarray(sent, sent + 1));
      sent += 1;
    };
    dripOne();
    const drip = setInterval(dripOne, DRIP_INTERVAL_MS);
    try {
      await waitFor(() => server.server.openConnections === 2, 5_000, 'both connections');

      const run = await echoscu(server.port, server.aeTitle);
      expect(run.exitCode, run.output).toBe(0);
      expect(silent.isClosed, 'silent connection closed before echoscu finished').toBe(false);
      expect(dripping.isClosed, 'dripping connection closed before echoscu finished').toBe(false);

      await silent.waitForClose(ARTIM_MS + 5_000);
      await dripping.waitForClose(ARTIM_MS + 5_000);
      // ARTIM in Sta2 closes the transport without a PDU (AA-2), mid-way through the request.
      expect(silent.received).toEqual([]);
      expect(dripping.received).toEqual([]);
      expect(sent).toBeGreaterThan(0);
      expect(sent).toBeLessThan(request.length);

      await waitFor(
        () =>
          server.logs.filter(
            (l) => l.msg === 'connection closed before association' && l.timer === 'artim',
          ).length === 2,
        5_000,
        'two ARTIM log lines',
      ).catch((error: Error) => {
        throw new Error(`${error.message}\n${dump(server.logs)}`);
      });
      for (const line of server.logs.filter(
        (l) => l.msg === 'connection closed before association',
      )) {
        expect(line.level).toBe(WARN);
        expect(line.code).toBe('ERR_TIMEOUT');
      }
    } finally {
      clearInterval(drip);
      silent.destroy();
      dripping.destroy();
    }
  });
});
