import { describe, expect, it } from 'vitest';
import {
  BCP195_CIPHERS,
  createClientTls,
  createServerTls,
  describeTlsFailure,
  isTlsFailure,
  oneLineName,
  TLS_MIN_VERSION,
} from './tls.js';

const PEM = { certificate: 'CERT', privateKey: 'KEY' };

/** An error as Node's TLS layer raises it: a message and a code. */
function tlsError(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

describe('the BCP 195 profile', () => {
  it('allows TLS 1.2 and later only', () => {
    expect(TLS_MIN_VERSION).toBe('TLSv1.2');
    expect(createServerTls(PEM, false).options.minVersion).toBe('TLSv1.2');
    expect(createClientTls(PEM).minVersion).toBe('TLSv1.2');
  });

  it('offers only forward-secret AES-GCM suites for TLS 1.2, and the TLS 1.3 suites', () => {
    const tls12 = BCP195_CIPHERS.filter((name) => !name.startsWith('TLS_'));
    expect(tls12.length).toBeGreaterThan(0);
    for (const name of tls12) expect(name).toMatch(/^(ECDHE|DHE)-(RSA|ECDSA)-AES(128|256)-GCM-/);
    // PS3.15 §B.9's suites, in OpenSSL's names.
    expect(tls12).toEqual(
      expect.arrayContaining([
        'ECDHE-RSA-AES128-GCM-SHA256',
        'ECDHE-RSA-AES256-GCM-SHA384',
        'DHE-RSA-AES128-GCM-SHA256',
        'DHE-RSA-AES256-GCM-SHA384',
      ]),
    );
    expect(BCP195_CIPHERS).toEqual(expect.arrayContaining(['TLS_AES_128_GCM_SHA256']));
    expect(createServerTls(PEM, false).options.ciphers).toBe(BCP195_CIPHERS.join(':'));
  });
});

describe('the listener options', () => {
  it('asks for no client certificate without a CA bundle', () => {
    const { options, requireClientCertificate } = createServerTls(PEM, false);
    expect(options.requestCert).toBe(false);
    expect(requireClientCertificate).toBe(false);
    expect(options).toMatchObject({ cert: 'CERT', key: 'KEY' });
  });

  it('asks for a client certificate with a CA bundle, and checks it itself after the handshake', () => {
    const { options } = createServerTls({ ...PEM, caCertificates: 'CA' }, true);
    expect(options).toMatchObject({
      ca: 'CA',
      requestCert: true,
      // Node would close an untrusted client without a word: the acceptor refuses and logs it.
      rejectUnauthorized: false,
    });
  });
});

describe('the requestor options', () => {
  it("verifies the peer's chain against the CA bundle, not its host name", () => {
    const options = createClientTls({ ...PEM, caCertificates: 'CA' });
    expect(options).toMatchObject({ ca: 'CA', cert: 'CERT', key: 'KEY', rejectUnauthorized: true });
    expect(options.checkServerIdentity?.('10.0.0.1', {} as never)).toBeUndefined();
  });

  it("uses the system's CAs and no client certificate when given nothing", () => {
    const options = createClientTls({});
    expect(options.ca).toBeUndefined();
    expect(options.cert).toBeUndefined();
    expect(options.rejectUnauthorized).toBe(true);
  });
});

describe('TLS failures in words', () => {
  it('names certificate verification failures', () => {
    expect(describeTlsFailure(tlsError('UNABLE_TO_VERIFY_LEAF_SIGNATURE'))).toBe(
      'peer certificate not signed by a trusted CA (unknown CA)',
    );
    expect(describeTlsFailure(tlsError('CERT_HAS_EXPIRED'))).toBe('peer certificate has expired');
  });

  it('names the alerts a peer sends', () => {
    expect(describeTlsFailure(tlsError('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'))).toBe(
      'the peer requires a client certificate',
    );
    expect(describeTlsFailure(tlsError('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'))).toBe(
      'the peer does not trust the CA of our certificate',
    );
    expect(describeTlsFailure(tlsError('ERR_SSL_NO_SHARED_CIPHER'))).toContain('cipher');
  });

  it("takes OpenSSL's reason out of an unknown error's message", () => {
    const message =
      '80BCA2E41E7F0000:error:0A0000C7:SSL routines:tls_process_client_certificate:peer did not return a certificate:../deps/openssl/openssl/ssl/statem/statem_srvr.c:3510:';
    expect(describeTlsFailure(tlsError('ERR_SSL_SOMETHING_NEW', message))).toBe(
      'peer did not return a certificate',
    );
  });

  it('tells TLS failures from other socket errors', () => {
    expect(isTlsFailure(tlsError('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'))).toBe(true);
    expect(isTlsFailure(tlsError('DEPTH_ZERO_SELF_SIGNED_CERT'))).toBe(true);
    expect(isTlsFailure(tlsError('ERR_TLS_CERT_ALTNAME_INVALID'))).toBe(true);
    expect(isTlsFailure(tlsError('ECONNREFUSED'))).toBe(false);
    expect(isTlsFailure(new Error('no code'))).toBe(false);
  });

  it('writes a distinguished name on one line', () => {
    expect(oneLineName('O=dicom-server tests\nCN=localhost\n')).toBe(
      'O=dicom-server tests, CN=localhost',
    );
  });
});
