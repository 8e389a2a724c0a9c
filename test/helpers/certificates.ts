/**
 * Test certificates made with the `openssl` command line, in a temporary directory: a CA with
 * a server certificate (for 127.0.0.1 and localhost) and a client certificate, a second CA with
 * a client certificate of its own (an unknown CA to the first), a server certificate that
 * expired and one not valid yet. OpenSSL 3.0's `x509 -days` cannot date a certificate in the
 * past (3.4's -not_before/-not_after can), so those two are signed with `openssl ca` and
 * -startdate/-enddate. RSA keys: the BCP 195 profile's TLS 1.2 suites are ECDHE-RSA and
 * DHE-RSA, which DCMTK's +px/+py profiles offer.
 *
 * Layer: test helper.
 */

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

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

/** A self-signed CA certificate `name`.crt with its key `name`.key. */
async function makeCa(dir: string, name: string, commonName: string): Promise<string> {
  await openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '365',
    '-subj',
    `/O=dicom-server tests/CN=${commonName}`,
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

/** A key and a signing request `name`.key, `name`.csr. */
async function makeRequest(dir: string, name: string, commonName: string): Promise<void> {
  await openssl(dir, [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/O=dicom-server tests/CN=${commonName}`,
  ]);
}

/** A leaf certificate signed by `ca`, valid for a year from now. */
async function makeLeaf(
  dir: string,
  ca: string,
  name: string,
  commonName: string,
): Promise<CertificatePair> {
  await makeRequest(dir, name, commonName);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '365',
    '-extfile',
    'leaf.ext',
  ]);
  return { certificate: join(dir, `${name}.crt`), privateKey: join(dir, `${name}.key`) };
}

/** A leaf certificate of `ca` valid from `startDate` to `endDate` (YYYYMMDDHHMMSSZ). */
async function makeDatedLeaf(
  dir: string,
  ca: string,
  name: string,
  startDate: string,
  endDate: string,
): Promise<CertificatePair> {
  await makeRequest(dir, name, `${name}.test`);
  await openssl(dir, [
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
    startDate,
    '-enddate',
    endDate,
    '-extfile',
    'leaf.ext',
    '-in',
    `${name}.csr`,
    '-out',
    `${name}.crt`,
  ]);
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
    const expiredServer = await makeDatedLeaf(
      dir,
      'ca',
      'expired-server',
      '20200101000000Z',
      '20201231000000Z',
    );
    const futureServer = await makeDatedLeaf(
      dir,
      'ca',
      'future-server',
      '20900101000000Z',
      '20901231000000Z',
    );
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
