/**
 * Test certificates made with the `openssl` command line, in a temporary directory: a CA with
 * a server certificate (for 127.0.0.1 and localhost) and a client certificate, a second CA with
 * a client certificate of its own (an unknown CA to the first), a server certificate that
 * expired and one not valid yet. OpenSSL 3.0's `x509 -days` cannot date a certificate in the
 * past (3.4's -not_before/-not_after can), so those two are signed with `openssl ca` and
 * -startdate/-enddate. RSA keys: the BCP 195 profile's TLS 1.2 suites are ECDHE-RSA and
 * DHE-RSA, which DCMTK's +px/+py profiles offer. `setUpTestCertificates` makes them for a test
 * file's tests and removes them afterwards.
 *
 * Layer: test helper.
 */

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll } from 'vitest';

const run = promisify(execFile);

/** A certificate and its private key, as PEM file paths. */
export interface CertificatePair {
  readonly certificate: string;
  readonly privateKey: string;
}

/** Every file the tests use, and the directory to remove. */
export interface TestCertificates {
  readonly dir: string;
  /** The CA that signed `server`, `client`, `expiredServer` and `futureServer`. */
  readonly ca: string;
  readonly server: CertificatePair;
  readonly client: CertificatePair;
  /** Another CA, unknown to the first one's users. */
  readonly otherCa: string;
  /** A client certificate signed by `otherCa`. */
  readonly otherClient: CertificatePair;
  /** A server certificate of `ca` valid only in 2020. */
  readonly expiredServer: CertificatePair;
  /** A server certificate of `ca` valid only from 2090 on. */
  readonly futureServer: CertificatePair;
  remove(): Promise<void>;
}

async function openssl(cwd: string, args: readonly string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed:\n${stderr ?? String(error)}`);
  }
}

/** `openssl req`'s arguments for a new RSA key `name`.key, unencrypted, and its subject. */
function newKeyWithSubject(name: string, commonName: string): string[] {
  return [
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-subj',
    `/O=dicom-server tests/CN=${commonName}`,
  ];
}

/** A self-signed CA certificate `name`.crt with its key `name`.key. */
async function makeCa(dir: string, name: string, commonName: string): Promise<string> {
  await openssl(dir, [
    'req',
    '-x509',
    ...newKeyWithSubject(name, commonName),
    '-out',
    `${name}.crt`,
    '-days',
    '365',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return join(dir, `${name}.crt`);
}

const LEAF_EXTENSIONS = [
  'basicConstraints=CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth,clientAuth',
  'subjectAltName=IP:127.0.0.1,DNS:localhost',
].join('\n');

/** When a certificate is valid, in `openssl ca`'s form (YYYYMMDDHHMMSSZ). */
interface ValidityDates {
  readonly startDate: string;
  readonly endDate: string;
}

/**
 * `openssl`'s arguments that sign the request `name`.csr with `ca` into `name`.crt: `x509 -req`,
 * valid for a year from now, without `dates`; with them `openssl ca` (see the file's summary).
 */
function signArgs(ca: string, name: string, dates: ValidityDates | undefined): string[] {
  const io = ['-extfile', 'leaf.ext', '-in', `${name}.csr`, '-out', `${name}.crt`];
  if (dates === undefined) {
    return [
      'x509',
      '-req',
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-days',
      '365',
      ...io,
    ];
  }
  return [
    'ca',
    '-config',
    'ca.cnf',
    '-batch',
    '-notext',
    '-cert',
    `${ca}.crt`,
    '-keyfile',
    `${ca}.key`,
    '-startdate',
    dates.startDate,
    '-enddate',
    dates.endDate,
    ...io,
  ];
}

/** A leaf certificate `name`.crt signed by `ca`, valid a year from now or for `dates`. */
async function makeLeaf(
  dir: string,
  ca: string,
  name: string,
  commonName: string,
  dates?: ValidityDates,
): Promise<CertificatePair> {
  await openssl(dir, ['req', ...newKeyWithSubject(name, commonName), '-out', `${name}.csr`]);
  await openssl(dir, signArgs(ca, name, dates));
  return { certificate: join(dir, `${name}.crt`), privateKey: join(dir, `${name}.key`) };
}

/** The minimal configuration and database that `openssl ca` needs. */
async function prepareCaDatabase(dir: string): Promise<void> {
  await mkdir(join(dir, 'issued'));
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '1000\n');
  await writeFile(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = test_ca',
      '[test_ca]',
      'database = index.txt',
      'serial = serial',
      'new_certs_dir = issued',
      'default_md = sha256',
      'policy = any_policy',
      'unique_subject = no',
      '[any_policy]',
      'commonName = supplied',
      'organizationName = optional',
      '',
    ].join('\n'),
  );
}

/** Makes every test certificate in a new temporary directory. */
export async function createTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'tls-certs-'));
  try {
    await writeFile(join(dir, 'leaf.ext'), `${LEAF_EXTENSIONS}\n`);
    await prepareCaDatabase(dir);
    const ca = await makeCa(dir, 'ca', 'Test CA');
    const otherCa = await makeCa(dir, 'other-ca', 'Other CA');
    const server = await makeLeaf(dir, 'ca', 'server', 'localhost');
    const client = await makeLeaf(dir, 'ca', 'client', 'TLS_CLIENT');
    const otherClient = await makeLeaf(dir, 'other-ca', 'other-client', 'OTHER_CLIENT');
    const expiredServer = await makeLeaf(dir, 'ca', 'expired-server', 'expired-server.test', {
      startDate: '20200101000000Z',
      endDate: '20201231000000Z',
    });
    const futureServer = await makeLeaf(dir, 'ca', 'future-server', 'future-server.test', {
      startDate: '20900101000000Z',
      endDate: '20901231000000Z',
    });
    return {
      dir,
      ca,
      server,
      client,
      otherCa,
      otherClient,
      expiredServer,
      futureServer,
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Makes the test certificates before the tests of the calling file (or `describe` block) and
 * removes them after: `beforeAll` and `afterAll`, registered where it is called. Returns how a
 * test or hook reaches them.
 */
export function setUpTestCertificates(): () => TestCertificates {
  let certificates: TestCertificates | undefined;
  // openssl makes seven RSA keys: seconds on a loaded machine.
  beforeAll(async () => {
    certificates = await createTestCertificates();
  }, 60_000);
  afterAll(async () => {
    await certificates?.remove();
  });
  return () => {
    if (certificates === undefined) {
      throw new Error(
        'the test certificates are made in beforeAll: reach them from a test or hook',
      );
    }
    return certificates;
  };
}
