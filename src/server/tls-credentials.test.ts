import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { setUpTestCertificates } from '../../test/helpers/certificates.js';
import { DicomServerError } from '../errors.js';
import { DEFAULT_SETTINGS, type Settings } from '../settings/schema.js';
import {
  daysUntil,
  loadTlsFiles,
  loadTlsSetup,
  SETTING_LABELS,
  type TlsFiles,
  tlsStatusOf,
} from './tls-credentials.js';

const certs = setUpTestCertificates();

/** The ERR_TLS_CONFIG a load rejects with. */
async function configError(load: Promise<unknown>): Promise<DicomServerError> {
  const error = await load.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(DicomServerError);
  expect((error as DicomServerError).code).toBe('ERR_TLS_CONFIG');
  return error as DicomServerError;
}

function serverFiles(overrides: Partial<TlsFiles> = {}): TlsFiles {
  return {
    certificate: certs().server.certificate,
    privateKey: certs().server.privateKey,
    caCertificates: certs().ca,
    ...overrides,
  };
}

function tlsSettings(overrides: Partial<Settings> = {}): Settings {
  return {
    ...DEFAULT_SETTINGS,
    tls_enabled: true,
    tls_certificate: certs().server.certificate,
    tls_private_key: certs().server.privateKey,
    tls_ca_certificates: certs().ca,
    ...overrides,
  };
}

describe('loading the TLS files', () => {
  it('reads a certificate, its key and a CA bundle, and summarizes the certificate', async () => {
    const loaded = await loadTlsFiles(serverFiles());
    expect(loaded.material.certificate).toContain('BEGIN CERTIFICATE');
    expect(loaded.material.privateKey).toContain('PRIVATE KEY');
    expect(loaded.material.caCertificates).toContain('BEGIN CERTIFICATE');
    expect(loaded.caCertificateCount).toBe(1);
    expect(loaded.certificate).toMatchObject({
      subject: 'O=dicom-server tests, CN=localhost',
      issuer: 'O=dicom-server tests, CN=Test CA',
    });
    expect(Date.parse(loaded.certificate!.validTo)).toBeGreaterThan(Date.now());
  });

  it('counts every certificate of a CA bundle', async () => {
    const bundle = join(certs().dir, 'bundle.crt');
    await writeFile(
      bundle,
      `${await readFile(certs().ca, 'utf8')}${await readFile(certs().otherCa, 'utf8')}`,
    );
    const loaded = await loadTlsFiles(serverFiles({ caCertificates: bundle }));
    expect(loaded.caCertificateCount).toBe(2);
  });

  it('takes a CA bundle alone (a client that only verifies its peers)', async () => {
    const loaded = await loadTlsFiles({
      certificate: '',
      privateKey: '',
      caCertificates: certs().ca,
    });
    expect(loaded.certificate).toBeUndefined();
    expect(loaded.material.certificate).toBeUndefined();
  });

  it('resolves a relative path against the working directory', async () => {
    const loaded = await loadTlsFiles(
      serverFiles({ certificate: relative(process.cwd(), certs().server.certificate) }),
    );
    expect(loaded.certificate?.subject).toContain('CN=localhost');
  });

  it('names the setting and the path of a file that does not exist', async () => {
    const missing = join(certs().dir, 'no-such.crt');
    const error = await configError(loadTlsFiles(serverFiles({ certificate: missing })));
    expect(error.details).toMatchObject({ setting: 'tls_certificate', path: missing });
    expect(error.message).toContain('does not exist');
  });

  it('names a folder given for a file', async () => {
    const error = await configError(loadTlsFiles(serverFiles({ caCertificates: certs().dir })));
    expect(error.details.setting).toBe('tls_ca_certificates');
  });

  it('refuses a file without a PEM certificate, and a key file without a key', async () => {
    const notPem = join(certs().dir, 'not-pem.txt');
    await writeFile(notPem, 'hello\n');
    expect(
      (await configError(loadTlsFiles(serverFiles({ certificate: notPem })))).details.setting,
    ).toBe('tls_certificate');
    expect(
      (await configError(loadTlsFiles(serverFiles({ caCertificates: notPem })))).details.setting,
    ).toBe('tls_ca_certificates');
    expect(
      (await configError(loadTlsFiles(serverFiles({ privateKey: certs().server.certificate }))))
        .details.setting,
    ).toBe('tls_private_key');
  });

  it('refuses a key that does not belong to the certificate', async () => {
    const error = await configError(
      loadTlsFiles(serverFiles({ privateKey: certs().client.privateKey })),
    );
    expect(error.details).toMatchObject({
      setting: 'tls_private_key',
      path: certs().client.privateKey,
    });
    expect(error.message).toContain('does not belong to the certificate');
  });

  it('refuses an expired certificate, saying when it expired', async () => {
    const error = await configError(loadTlsFiles(serverFiles(certs().expiredServer)));
    expect(error.details).toMatchObject({
      setting: 'tls_certificate',
      validTo: '2020-12-31T00:00:00.000Z',
    });
  });

  it('refuses a certificate that is not valid yet', async () => {
    const error = await configError(loadTlsFiles(serverFiles(certs().futureServer)));
    expect(error.details).toMatchObject({
      setting: 'tls_certificate',
      validFrom: '2090-01-01T00:00:00.000Z',
    });
  });

  it('refuses a certificate without its key, and a key without its certificate', async () => {
    expect((await configError(loadTlsFiles(serverFiles({ privateKey: '' })))).details.setting).toBe(
      'tls_private_key',
    );
    expect(
      (await configError(loadTlsFiles(serverFiles({ certificate: '' })))).details.setting,
    ).toBe('tls_certificate');
  });

  it('names the files by the labels given (command-line options)', async () => {
    const labels = {
      certificate: '--tls-cert',
      privateKey: '--tls-key',
      caCertificates: '--tls-ca',
    };
    const error = await configError(
      loadTlsFiles(serverFiles({ caCertificates: join(certs().dir, 'none.crt') }), labels),
    );
    expect(error.details.setting).toBe('--tls-ca');
    expect(SETTING_LABELS.caCertificates).toBe('tls_ca_certificates');
  });

  it('refuses an encrypted key, saying so', async () => {
    const encrypted = join(certs().dir, 'encrypted.key');
    await promisify(execFile)('openssl', [
      'pkey',
      '-in',
      certs().server.privateKey,
      '-aes256',
      '-passout',
      'pass:secret',
      '-out',
      encrypted,
    ]);
    const error = await configError(loadTlsFiles(serverFiles({ privateKey: encrypted })));
    expect(error.message).toContain('encrypted');
  });
});

describe('the service TLS set-up', () => {
  it('makes the listener and the client options from the settings', async () => {
    const setup = await loadTlsSetup(tlsSettings({ tls_require_client_certificate: true }));
    expect(setup.listener?.requireClientCertificate).toBe(true);
    expect(setup.listener?.options).toMatchObject({
      minVersion: 'TLSv1.2',
      requestCert: true,
      rejectUnauthorized: false,
    });
    expect(setup.client).toMatchObject({ minVersion: 'TLSv1.2', rejectUnauthorized: true });
    expect(setup.certificate?.subject).toContain('CN=localhost');
  });

  it('makes no listener with TLS off, and client options all the same', async () => {
    const setup = await loadTlsSetup({ ...DEFAULT_SETTINGS });
    expect(setup.listener).toBeUndefined();
    expect(setup.client.rejectUnauthorized).toBe(true);
    expect(tlsStatusOf(setup, null)).toBeNull();
  });

  it('refuses TLS on without a certificate, and required client certificates without CAs', async () => {
    expect(
      (await configError(loadTlsSetup(tlsSettings({ tls_certificate: '' })))).details.setting,
    ).toBe('tls_certificate');
    expect(
      (
        await configError(
          loadTlsSetup(
            tlsSettings({ tls_ca_certificates: '', tls_require_client_certificate: true }),
          ),
        )
      ).details.setting,
    ).toBe('tls_ca_certificates');
  });

  it('refuses to start with an expired certificate', async () => {
    const error = await configError(
      loadTlsSetup(
        tlsSettings({
          tls_certificate: certs().expiredServer.certificate,
          tls_private_key: certs().expiredServer.privateKey,
        }),
      ),
    );
    expect(error.message).toContain('expired on 2020-12-31');
  });

  it('shows the port, the certificate and the days it has left in the status', async () => {
    const setup = await loadTlsSetup(tlsSettings());
    const validTo = setup.certificate!.validTo;
    const now = new Date(Date.parse(validTo) - 10.5 * 86_400_000);
    expect(tlsStatusOf(setup, 2762, now)).toEqual({
      port: 2762,
      requireClientCertificate: false,
      certificate: { ...setup.certificate, daysLeft: 10 },
      caCertificateCount: 1,
    });
    expect(daysUntil(validTo, new Date(Date.parse(validTo) + 86_400_000))).toBe(-1);
  });

  it('shows a client-only certificate without a port', async () => {
    const setup = await loadTlsSetup(tlsSettings({ tls_enabled: false }));
    expect(tlsStatusOf(setup, null)).toMatchObject({
      port: null,
      certificate: { subject: expect.any(String) },
    });
  });
});
