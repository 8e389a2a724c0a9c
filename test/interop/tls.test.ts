/**
 * Interop: DICOM over TLS (PS3.15 Annex B, the BCP 195 profile) with certificates made by the
 * `openssl` command line (test/helpers/certificates.ts), against DCMTK's TLS options:
 * - `serve` with a TLS listener beside the plain one, client certificates required: DCMTK's
 *   echoscu and storescu with `+tls KEY CERT +cf CA` echo and store (the stored data set bytes
 *   are the sent ones); a client without a certificate (`+tla`) and one whose certificate comes
 *   from another CA are refused, each refusal logged with its reason; the status API shows the
 *   TLS port and the certificate's subject and expiry;
 * - our SCU toward DCMTK's `storescp +tls` (which requires a client certificate): `send` and
 *   `echo` with `--tls`, the failures they name (no client certificate, an untrusted peer, a
 *   missing file), and an AE title marked use_tls as C-MOVE destination, forwarding destination
 *   and C-ECHO test target of the running server;
 * - start-up refused, with its reason, for an expired certificate and a key not matching it;
 * - in-process: TLS 1.2 with a BCP 195 suite, a client offering only CBC suites refused, the
 *   live association list showing TLS, TLS alone on the main port.
 *
 * Layer: test (interop).
 */

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileMeta } from '../../src/dicom/part10.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntax.js';
import { SopClass } from '../../src/dicom/uid.js';
import { hasCode } from '../../src/errors.js';
import { requestAssociation } from '../../src/network/association/requestor.js';
import { createClientTls, type TlsClientOptions } from '../../src/network/tls.js';
import { loadTlsSetup } from '../../src/server/tls-credentials.js';
import { echo } from '../../src/services/scu/echo.js';
import { DEFAULT_SETTINGS, type Settings } from '../../src/settings/schema.js';
import { type ApiSession, loginAdmin } from '../helpers/api-session.js';
import { type CertificatePair, setUpTestCertificates } from '../helpers/certificates.js';
import { runSourceCli } from '../helpers/cli.js';
import { datasetContent } from '../helpers/dcmdump.js';
import { runTool, type Storescp, startStorescp, type ToolRun } from '../helpers/dcmtk.js';
import { MetricSamples } from '../helpers/metrics-text.js';
import { freePort } from '../helpers/net.js';
import {
  createDataDir,
  type DataDir,
  pollUntil,
  type ServeExit,
  type ServeLogLine,
  type ServeProcess,
  startServe,
  startServeOn,
  stopServeAndRemoveDir,
} from '../helpers/serve-process.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';
import { TESTDATA_DICOM } from '../helpers/testdata.js';

const CALLED_AE = 'DRAW_SCP';
const TIMEOUTS = ['-to', '10', '-ta', '10', '-td', '20'];
const ADMIN_PASSWORD = 'tls-test-password';
const CT_FILE = join(TESTDATA_DICOM, 'CT_small.dcm');
const SCU_TIMEOUTS = { artimMs: 5_000, acseMs: 5_000, networkMs: 5_000, dimseMs: 10_000 };

const certs = setUpTestCertificates();

/** The data set bytes of a Part 10 file (what a C-STORE carries). */
function datasetOf(file: Buffer): Buffer {
  return file.subarray(readFileMeta(file).datasetOffset);
}

/** A file's data set as dcmdump shows it, without what differs between two encodings. */
async function contentOf(path: string): Promise<string[]> {
  const run = await runTool('dcmdump', ['-q', path]);
  expect(run.exitCode, run.output).toBe(0);
  return datasetContent(run.stdout);
}

/** DCMTK's `+tls KEY CERT +cf CA` with the given pair. */
function dcmtkTls(pair: CertificatePair): string[] {
  return ['+tls', pair.privateKey, pair.certificate, '+cf', certs().ca];
}

/** DCMTK's SCU `tool` toward our server's `port`: `options`, then the peer and `files`. */
function runScu(
  tool: string,
  port: number,
  options: readonly string[],
  files: readonly string[] = [],
): Promise<ToolRun> {
  return runTool(tool, [
    ...options,
    '-aec',
    CALLED_AE,
    ...TIMEOUTS,
    '127.0.0.1',
    String(port),
    ...files,
  ]);
}

/** The TLS options of our `send` and `echo`: the CA certificates to trust and a client pair. */
function cliTls(ca: string, pair: CertificatePair): string[] {
  return ['--tls-ca', ca, '--tls-cert', pair.certificate, '--tls-key', pair.privateKey];
}

/** The serve flags of a TLS listener with the test CA's server certificate. */
function tlsFlags(tlsPort: number, pair = certs().server): string[] {
  return [
    '--tls-enabled',
    '--tls-port',
    String(tlsPort),
    '--tls-certificate',
    pair.certificate,
    '--tls-private-key',
    pair.privateKey,
    '--tls-ca-certificates',
    certs().ca,
    '--tls-require-client-certificate',
  ];
}

describe('serve with a TLS listener, DCMTK clients and destinations', () => {
  let dir: DataDir;
  let serve: ServeProcess;
  let port: number;
  let tlsPort: number;
  let httpPort: number;
  let storescp: Storescp;
  let received: string;

  beforeAll(async () => {
    dir = await createDataDir('tls-serve-');
    tlsPort = await freePort();
    ({
      serve,
      dicomPort: port,
      httpPort,
    } = await startServeOn(dir, {
      flags: tlsFlags(tlsPort),
      env: { DICOM_SERVER_ADMIN_PASSWORD: ADMIN_PASSWORD },
    }));
    const listening = serve.lines.find((line) => line.msg === 'DICOM service listening');
    expect(listening?.tlsPort, serve.output()).toBe(tlsPort);
    received = join(dir.path, 'received');
    // storescp requires and verifies a client certificate (-rc, its default) against the CA.
    storescp = await startStorescp(received, [
      '-aet',
      'TLSDEST',
      ...dcmtkTls(certs().server),
      '+B',
    ]);
  }, 90_000);

  afterAll(async () => {
    await storescp?.stop();
    await stopServeAndRemoveDir(serve, dir);
  });

  /** The first log line from `from` on for which `predicate` holds. */
  function lineAfter(from: number, predicate: (line: ServeLogLine) => boolean, what: string) {
    return serve.waitForLine((line) => serve.lines.indexOf(line) >= from && predicate(line), what);
  }

  /** The first TLS refusal logged from `from` on. */
  function refusalAfter(from: number): Promise<ServeLogLine> {
    return lineAfter(
      from,
      (line) => String(line.msg).startsWith('TLS connection rejected'),
      'the refusal',
    );
  }

  /** An administrator's session on the API. */
  function login(): Promise<ApiSession> {
    return loginAdmin(httpPort, ADMIN_PASSWORD);
  }

  /** The stored file of an instance, through its index row. */
  async function storedPath(sopInstanceUid: string): Promise<string> {
    const row = await dir.database.db
      .selectFrom('instances')
      .select('file_path')
      .where('sop_instance_uid', '=', sopInstanceUid)
      .executeTakeFirstOrThrow();
    return join(dir.path, 'storage', row.file_path);
  }

  /** The Study Instance UID of a stored instance, from the index. */
  async function studyOf(sopInstanceUid: string): Promise<string> {
    const row = await dir.database.db
      .selectFrom('instances')
      .innerJoin('series', 'series.id', 'instances.series_fk')
      .innerJoin('studies', 'studies.id', 'series.study_fk')
      .select('studies.study_instance_uid')
      .where('instances.sop_instance_uid', '=', sopInstanceUid)
      .executeTakeFirstOrThrow();
    return row.study_instance_uid;
  }

  /** The file storescp wrote for an instance (it names files by modality and UID). */
  async function receivedFile(sopInstanceUid: string): Promise<Buffer> {
    const name = await pollUntil(
      async () => (await readdir(received)).find((file) => file.endsWith(sopInstanceUid)),
      (found) => found !== undefined,
      `storescp's file of ${sopInstanceUid}`,
      15_000,
    );
    return readFile(join(received, name!));
  }

  it('echoes over TLS with a client certificate, the association logged as TLS', async () => {
    const from = serve.lines.length;
    const run = await runScu('echoscu', tlsPort, [...dcmtkTls(certs().client), '-aet', 'TLS_ECHO']);
    expect(run.exitCode, run.output).toBe(0);
    const accepted = await lineAfter(
      from,
      (line) => line.msg === 'association accepted' && line.callingAe === 'TLS_ECHO',
      'the TLS association',
    );
    expect(String(accepted.tls)).toMatch(/^TLSv1\.[23]$/);
    expect(accepted.clientCertificate).toBe('O=dicom-server tests, CN=TLS_CLIENT');
  });

  it('stores over TLS: the stored file holds the content sent', async () => {
    const run = await runScu(
      'storescu',
      tlsPort,
      // Explicit VR Little Endian, the file's own: no conversion on either side.
      [...dcmtkTls(certs().client), '-aet', 'TLS_STORE', '-xe'],
      [CT_FILE],
    );
    expect(run.exitCode, run.output).toBe(0);
    const uid = readFileMeta(await readFile(CT_FILE)).mediaStorageSopInstanceUid!;
    // storescu re-encodes what it sends (the wire bytes are not the file's): the stored file
    // holds the same content, element for element.
    expect(await contentOf(await storedPath(uid))).toEqual(await contentOf(CT_FILE));
  });

  it('refuses a client without a certificate, and logs why', async () => {
    const from = serve.lines.length;
    const run = await runScu('echoscu', tlsPort, ['+tla', '+cf', certs().ca]);
    expect(run.exitCode, run.output).not.toBe(0);
    const refused = await refusalAfter(from);
    expect(refused).toMatchObject({ level: 40, code: 'NO_CLIENT_CERTIFICATE' });
    expect(String(refused.peer)).toMatch(/^127\.0\.0\.1:\d+$/);
    // Counted in the metrics too (the earlier tests' refusals, if any, before it).
    const metrics = new MetricSamples(
      await (
        await fetch(`http://127.0.0.1:${httpPort}/metrics`, {
          headers: { cookie: (await login()).cookie },
        })
      ).text(),
    );
    expect(
      metrics.count('dicom_server_connections_refused_total', { reason: 'tls' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('refuses a client certificate from another CA (unknown CA), and logs why', async () => {
    const from = serve.lines.length;
    const run = await runScu('echoscu', tlsPort, dcmtkTls(certs().otherClient));
    expect(run.exitCode, run.output).not.toBe(0);
    const refused = await refusalAfter(from);
    expect(refused.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(String(refused.reason)).toContain('unknown CA');
  });

  it('refuses a client offering only the retired AES profile (TLS_RSA with AES-CBC)', async () => {
    const from = serve.lines.length;
    const run = await runScu('echoscu', tlsPort, [...dcmtkTls(certs().client), '+pa']);
    expect(run.exitCode, run.output).not.toBe(0);
    const refused = await refusalAfter(from);
    expect(String(refused.code)).toMatch(/^ERR_SSL_/);
  });

  it('keeps the plain listener beside the TLS one', async () => {
    const run = await runScu('echoscu', port, []);
    expect(run.exitCode, run.output).toBe(0);
  });

  it("shows the TLS port and the certificate's subject and expiry in the status API", async () => {
    const response = await (await login()).get('status/');
    const status = (await response.json()) as { tls: Record<string, unknown> };
    expect(status.tls).toMatchObject({
      port: tlsPort,
      requireClientCertificate: true,
      caCertificateCount: 1,
      certificate: {
        subject: 'O=dicom-server tests, CN=localhost',
        issuer: 'O=dicom-server tests, CN=Test CA',
      },
    });
    const certificate = status.tls.certificate as { validTo: string; daysLeft: number };
    expect(Date.parse(certificate.validTo)).toBeGreaterThan(Date.now());
    expect(certificate.daysLeft).toBeGreaterThanOrEqual(364);
  });

  it('sends with `send --tls` to storescp +tls: it holds the data set bytes unchanged', async () => {
    const run = await runSourceCli([
      'send',
      '127.0.0.1',
      String(storescp.port),
      join(TESTDATA_DICOM, 'MR_small.dcm'),
      '--aec',
      'TLSDEST',
      ...cliTls(certs().ca, certs().client),
    ]);
    expect(run.exitCode, `${run.stderr}\n${storescp.output()}`).toBe(0);
    expect(run.stdout).toMatch(/^sent 1, failed 0, /m);
    const original = await readFile(join(TESTDATA_DICOM, 'MR_small.dcm'));
    const uid = readFileMeta(original).mediaStorageSopInstanceUid!;
    expect(datasetOf(await receivedFile(uid)).equals(datasetOf(original))).toBe(true);
  });

  it('echoes with `echo --tls`, and names what fails', async () => {
    const target = ['echo', '127.0.0.1', String(storescp.port), '--aec', 'TLSDEST'];
    const withCertificate = await runSourceCli([...target, ...cliTls(certs().ca, certs().client)]);
    expect(withCertificate.exitCode, withCertificate.stderr).toBe(0);
    expect(withCertificate.stdout).toContain('success');

    // storescp requires a client certificate: TLS 1.3 says so with an alert after the handshake.
    const without = await runSourceCli([...target, '--tls-ca', certs().ca]);
    expect(without.exitCode, without.stderr).toBe(3);
    expect(without.stderr).toContain('requires a client certificate');

    const untrusted = await runSourceCli([...target, ...cliTls(certs().otherCa, certs().client)]);
    expect(untrusted.exitCode, untrusted.stderr).toBe(3);
    expect(untrusted.stderr).toContain('not signed by a trusted CA');

    const missing = await runSourceCli([
      ...target,
      '--tls-cert',
      join(certs().dir, 'none.crt'),
      '--tls-key',
      certs().client.privateKey,
    ]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain(
      `--tls-cert: file ${join(certs().dir, 'none.crt')} does not exist`,
    );
  });

  it('moves to, forwards to and echoes an AE title marked use_tls over TLS', async () => {
    const added = await dir.settings.addAllowedAe({
      ae_title: 'TLSDEST',
      host: '127.0.0.1',
      port: storescp.port,
      use_tls: true,
    });
    expect(added.isValid).toBe(true);
    // C-MOVE: the sub-operations' association goes over TLS with our certificate.
    const stored = await runScu('storescu', port, ['-aet', 'MODALITY', '-xe'], [CT_FILE]);
    expect(stored.exitCode, stored.output).toBe(0);
    const uid = readFileMeta(await readFile(CT_FILE)).mediaStorageSopInstanceUid!;
    const moved = await runScu('movescu', port, [
      '-S',
      '-aet',
      'MOVER',
      '-aem',
      'TLSDEST',
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `StudyInstanceUID=${await studyOf(uid)}`,
    ]);
    expect(moved.exitCode, `${moved.output}\n${storescp.output()}`).toBe(0);
    // We send the stored data set as it is; storescp +B writes it as it came.
    const ours = await readFile(await storedPath(uid));
    expect(datasetOf(await receivedFile(uid)).equals(datasetOf(ours))).toBe(true);

    // The C-ECHO test of the console and API.
    const session = await login();
    const echoed = await session.post('ae-titles/TLSDEST/echo');
    const echoAnswer = await echoed.json();
    expect(echoAnswer, JSON.stringify(echoAnswer)).toMatchObject({ isSuccess: true, status: 0 });

    // Forwarding: a rule sends what it matches to the destination, over TLS.
    const rule = await session.post('routing/rules', {
      name: 'PLANNER to TLSDEST',
      conditions: { callingAe: 'PLANNER' },
      destinations: ['TLSDEST'],
    });
    expect(rule.status, await rule.clone().text()).toBe(201);
    const structureSet = join(TESTDATA_DICOM, 'rtstruct.dcm');
    const sent = await runScu('storescu', port, ['-aet', 'PLANNER'], [structureSet]);
    expect(sent.exitCode, sent.output).toBe(0);
    const structureUid = readFileMeta(await readFile(structureSet)).mediaStorageSopInstanceUid!;
    const storedStructure = await readFile(await storedPath(structureUid));
    expect(datasetOf(await receivedFile(structureUid)).equals(datasetOf(storedStructure))).toBe(
      true,
    );
    const rows = await dir.waitForRows({ type: 'FORWARD' });
    expect(rows.map((row) => row.status)).toEqual(['success']);
  });
});

describe('start-up with a certificate that cannot be used', () => {
  /** `serve` with a TLS listener on `pair`, on a fresh data directory, run until it exits. */
  async function serveUntilExit(
    pair: CertificatePair,
  ): Promise<{ serve: ServeProcess; exit: ServeExit }> {
    const dir = await createDataDir('tls-unusable-');
    try {
      const serve = startServe([
        '--data-dir',
        dir.path,
        '--dicom-host',
        '127.0.0.1',
        '--dicom-port',
        '0',
        ...tlsFlags(await freePort(), pair),
      ]);
      return { serve, exit: await serve.waitForExit(30_000) };
    } finally {
      await dir.remove();
    }
  }

  it('does not start with an expired server certificate, and says when it expired', async () => {
    const { serve, exit } = await serveUntilExit(certs().expiredServer);
    expect(exit.code, serve.output()).toBe(1);
    const fatal = serve.lines.find(
      (line) => line.msg === 'DICOM service could not start' && line.level === 60,
    );
    expect(fatal, serve.output()).toMatchObject({ code: 'ERR_TLS_CONFIG' });
    expect(String(fatal?.error)).toContain('tls_certificate: certificate');
    expect(String(fatal?.error)).toContain('expired on 2020-12-31');
  });

  it('does not start with a key that does not belong to the certificate', async () => {
    const { serve, exit } = await serveUntilExit({
      certificate: certs().server.certificate,
      privateKey: certs().client.privateKey,
    });
    expect(exit.code, serve.output()).toBe(1);
    const fatal = serve.lines.find((line) => line.msg === 'DICOM service could not start');
    expect(String(fatal?.error), serve.output()).toContain('tls_private_key: the key in');
  });
});

describe('the TLS listener in-process', () => {
  let server: TestServer;
  let client: TlsClientOptions;

  /** The TLS set-up of settings with the test CA's server certificate, plus `more`. */
  function serverTlsSetup(more: Partial<Settings> = {}) {
    return loadTlsSetup({
      ...DEFAULT_SETTINGS,
      tls_enabled: true,
      tls_certificate: certs().server.certificate,
      tls_private_key: certs().server.privateKey,
      ...more,
    });
  }

  /** A C-ECHO from `callingAeTitle` to `target` at `port`; over TLS when `tls` is given. */
  function echoFrom(
    callingAeTitle: string,
    target: TestServer,
    port: number,
    tls?: TlsClientOptions,
  ) {
    return echo({
      host: '127.0.0.1',
      port,
      callingAeTitle,
      calledAeTitle: target.aeTitle,
      timeouts: SCU_TIMEOUTS,
      ...(tls !== undefined && { tls }),
    });
  }

  /** A TLS client that trusts the test CA and has no certificate of its own. */
  async function clientWithoutCertificate(): Promise<TlsClientOptions> {
    return createClientTls({ caCertificates: await readFile(certs().ca, 'utf8') });
  }

  beforeAll(async () => {
    const setup = await serverTlsSetup({
      tls_ca_certificates: certs().ca,
      tls_require_client_certificate: true,
    });
    client = setup.client;
    server = await startTestServer({
      tls: { listener: setup.listener!, port: 0, isOnlyListener: false },
    });
  });

  afterAll(async () => {
    await server?.stop();
  });

  const tlsPort = () => server.server.tlsAddress!.port;

  it('speaks TLS 1.2 with a BCP 195 suite (ECDHE or DHE with AES-GCM)', async () => {
    const from = server.logs.length;
    const result = await echoFrom('TLS12', server, tlsPort(), { ...client, maxVersion: 'TLSv1.2' });
    expect(result.status).toBe(0);
    const accepted = server.logs
      .slice(from)
      .find((line) => line.msg === 'association accepted' && line.callingAe === 'TLS12');
    expect(accepted).toMatchObject({ tls: 'TLSv1.2' });
    expect(String(accepted?.tlsCipher)).toMatch(/^(ECDHE|DHE)-RSA-AES(128|256)-GCM-SHA(256|384)$/);
  });

  it('refuses a TLS 1.2 client offering only CBC suites, on both sides', async () => {
    const from = server.logs.length;
    const failure = await echoFrom('CBC', server, tlsPort(), {
      ...client,
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-RSA-AES128-SHA256',
    }).catch((error: unknown) => error);
    expect(hasCode(failure, 'ERR_TLS_HANDSHAKE')).toBe(true);
    await waitFor(
      () =>
        server.logs
          .slice(from)
          .some(
            (line) =>
              line.msg.startsWith('TLS connection rejected') &&
              line.code === 'ERR_SSL_NO_SHARED_CIPHER',
          ),
      5_000,
      'the refusal in the log',
    );
  });

  it('closes on a requestor without a client certificate, and the requestor says why', async () => {
    const failure = await echoFrom(
      'NO_CERT',
      server,
      tlsPort(),
      await clientWithoutCertificate(),
    ).catch((error: unknown) => error);
    expect(hasCode(failure, 'ERR_CONNECTION_CLOSED')).toBe(true);
    expect((failure as Error).message).toContain('client certificate');
  });

  it('shows a TLS association as such in the live association list', async () => {
    const association = await requestAssociation({
      host: '127.0.0.1',
      port: tlsPort(),
      callingAeTitle: 'LIVE',
      calledAeTitle: server.aeTitle,
      contexts: [
        {
          abstractSyntax: SopClass.Verification,
          transferSyntaxes: [TransferSyntax.ImplicitVRLittleEndian],
        },
      ],
      timeouts: SCU_TIMEOUTS,
      tls: client,
    });
    try {
      expect(association.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
      await waitFor(
        () => server.server.liveAssociations().some((live) => live.callingAeTitle === 'LIVE'),
        5_000,
        'the live association',
      );
      const live = server.server.liveAssociations().find((a) => a.callingAeTitle === 'LIVE');
      expect(live?.tls).toMatchObject({
        protocol: association.tls?.protocol,
        peerCertificateSubject: 'O=dicom-server tests, CN=localhost',
      });
    } finally {
      await association.release();
    }
  });

  it('serves TLS alone on the main port when told to', async () => {
    const setup = await serverTlsSetup();
    const only = await startTestServer({
      tls: { listener: setup.listener!, port: 0, isOnlyListener: true },
    });
    try {
      expect(only.server.tlsAddress?.port).toBe(only.port);
      const tlsEcho = await echoFrom('ONLY', only, only.port, await clientWithoutCertificate());
      expect(tlsEcho.status).toBe(0);
      // A plain request there is no TLS ClientHello: the handshake fails, no association.
      const plain = await echoFrom('PLAIN', only, only.port).catch((error: unknown) => error);
      expect(plain).toBeInstanceOf(Error);
    } finally {
      await only.stop();
    }
  });
});
