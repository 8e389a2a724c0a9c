/**
 * DICOM over TLS (PS3.15 Annex B): the options of Node's `tls` module for both roles under the
 * BCP 195 profile (PS3.15 §B.9: TLS 1.2 at least; its TLS 1.2 cipher suites are ECDHE and DHE
 * key exchange with AES-GCM; TLS 1.3 and its AES-GCM and ChaCha20 suites are allowed), made
 * from PEM text the caller has read; the check of a peer's client certificate once the
 * handshake is done; and OpenSSL's failures as an operator reads them.
 *
 * Layer: network. Reads no files (the server layer loads and checks the certificates) and
 * never logs.
 */

import type tls from 'node:tls';

/** The oldest protocol version the BCP 195 profile allows. */
export const TLS_MIN_VERSION = 'TLSv1.2';

/**
 * The cipher suites offered, in OpenSSL's names: TLS 1.3's (chosen by their own rules) and the
 * BCP 195 profile's TLS 1.2 suites, forward-secret key exchange with authenticated encryption
 * (PS3.15 §B.9; the ECDSA ones are those of the extended profile, §B.11).
 */
export const BCP195_CIPHERS: readonly string[] = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_AES_128_GCM_SHA256',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-AES128-GCM-SHA256',
];

/** Certificates and key as PEM text (the server layer reads the files). */
export interface TlsMaterial {
  /** Our certificate, with its chain after it when there is one. */
  readonly certificate?: string;
  readonly privateKey?: string;
  /**
   * The CA certificates a peer's certificate must chain to. Absent: as acceptor no client
   * certificate is asked for; as requestor the system's trusted CAs verify the peer.
   */
  readonly caCertificates?: string;
}

/** What the acceptor's TLS listener runs with. */
export interface TlsServerOptions {
  /** Given to `tls.createServer`: certificate, key, CA, protocol versions, cipher suites. */
  readonly options: tls.TlsOptions;
  /** A connection without a client certificate signed by one of the CAs is closed. */
  readonly requireClientCertificate: boolean;
}

/** What a requestor's TLS connection runs with (given to `tls.connect`). */
export type TlsClientOptions = Readonly<tls.ConnectionOptions>;

/** Options common to both roles: the profile's versions and suites. */
function profileOptions(): tls.SecureContextOptions {
  return {
    minVersion: TLS_MIN_VERSION,
    ciphers: BCP195_CIPHERS.join(':'),
    // DHE suites need Diffie-Hellman parameters: OpenSSL's well-known ones of a size matched
    // to the key (RFC 7919 groups).
    dhparam: 'auto',
  };
}

/**
 * The TLS listener's options. A CA bundle makes the listener ask for a client certificate;
 * `requireClientCertificate` refuses connections without one. The certificate check itself
 * is `checkClientCertificate`'s, after the handshake, so that every refusal can be logged
 * with its reason (Node closes an untrusted client silently when it rejects it itself).
 */
export function createServerTls(
  material: TlsMaterial,
  requireClientCertificate: boolean,
): TlsServerOptions {
  const hasCa = material.caCertificates !== undefined;
  return {
    options: {
      ...profileOptions(),
      ...(material.certificate !== undefined && { cert: material.certificate }),
      ...(material.privateKey !== undefined && { key: material.privateKey }),
      ...(hasCa && { ca: material.caCertificates }),
      honorCipherOrder: true,
      requestCert: hasCa || requireClientCertificate,
      rejectUnauthorized: false,
    },
    requireClientCertificate,
  };
}

/**
 * A requestor's options: our certificate and key when we have them (a peer may require a
 * client certificate), the peer's certificate verified against the CA bundle. Like DCMTK,
 * the peer is identified by its certificate's chain, not by its host name: DICOM peers are
 * mostly addressed by IP address, with certificates that do not name it.
 */
export function createClientTls(material: TlsMaterial): TlsClientOptions {
  return {
    ...profileOptions(),
    ...(material.certificate !== undefined && { cert: material.certificate }),
    ...(material.privateKey !== undefined && { key: material.privateKey }),
    ...(material.caCertificates !== undefined && { ca: material.caCertificates }),
    rejectUnauthorized: true,
    checkServerIdentity: () => undefined,
  };
}

/** Why a TLS connection was refused, for the log. */
export interface TlsRefusal {
  /** OpenSSL's or Node's code (`NO_CLIENT_CERTIFICATE` when none was sent). */
  readonly code: string;
  readonly reason: string;
}

/**
 * The acceptor's check of a client once the handshake is done: undefined to go on, else why
 * it is refused (no certificate when one is required, or one not signed by a trusted CA).
 */
export function checkClientCertificate(
  socket: tls.TLSSocket,
  requireClientCertificate: boolean,
): TlsRefusal | undefined {
  if (socket.authorized) return undefined;
  const hasCertificate = socket.getPeerX509Certificate() !== undefined;
  if (!hasCertificate) {
    return requireClientCertificate
      ? { code: 'NO_CLIENT_CERTIFICATE', reason: 'the client sent no certificate' }
      : undefined;
  }
  const code = String(socket.authorizationError ?? 'UNKNOWN');
  return { code, reason: `client certificate ${describeCertificateError(code)}` };
}

/** The protocol and cipher of a TLS connection, and the peer certificate's subject. */
export interface TlsSession {
  readonly protocol: string;
  readonly cipher: string;
  readonly peerCertificateSubject?: string;
}

/** What a TLS connection negotiated (undefined for a plain TCP socket). */
export function tlsSessionOf(socket: unknown): TlsSession | undefined {
  const secure = socket as Partial<tls.TLSSocket>;
  if (secure.encrypted !== true || typeof secure.getProtocol !== 'function') return undefined;
  const peer = secure.getPeerX509Certificate?.();
  return {
    protocol: secure.getProtocol() ?? 'unknown',
    cipher: secure.getCipher?.().name ?? 'unknown',
    ...(peer !== undefined && { peerCertificateSubject: oneLineName(peer.subject) }),
  };
}

/** A distinguished name as X509Certificate gives it (one `key=value` per line) on one line. */
export function oneLineName(name: string): string {
  return name.split('\n').filter(Boolean).join(', ');
}

/** OpenSSL's certificate verification codes in words, after "... certificate". */
const CERTIFICATE_ERRORS: Readonly<Record<string, string>> = {
  UNABLE_TO_GET_ISSUER_CERT: 'not signed by a trusted CA (unknown CA)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'not signed by a trusted CA (unknown CA)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'not signed by a trusted CA (unknown CA)',
  SELF_SIGNED_CERT_IN_CHAIN: 'not signed by a trusted CA (self-signed CA in the chain)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'is self-signed, not signed by a trusted CA',
  CERT_HAS_EXPIRED: 'has expired',
  CERT_NOT_YET_VALID: 'is not valid yet',
  CERT_SIGNATURE_FAILURE: 'has an invalid signature',
  CERT_REVOKED: 'was revoked',
  CERT_UNTRUSTED: 'is not trusted',
  CERT_REJECTED: 'was rejected',
  INVALID_PURPOSE: 'may not be used for this purpose',
};

/** A certificate verification code in words, to follow "the peer's certificate". */
export function describeCertificateError(code: string): string {
  return CERTIFICATE_ERRORS[code] ?? code;
}

/** OpenSSL's handshake errors (Node's codes) in words. */
const HANDSHAKE_ERRORS: Readonly<Record<string, string>> = {
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the peer requires a client certificate',
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'the client sent no certificate',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'the peer refused our certificate',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'the peer does not trust the CA of our certificate',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'the peer says our certificate has expired',
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE:
    'no common cipher suite or protocol version (BCP 195: TLS 1.2 or later with AES-GCM)',
  ERR_SSL_NO_SHARED_CIPHER:
    'no common cipher suite (BCP 195: ECDHE or DHE with AES-GCM, or TLS 1.3)',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'the peer offered only protocol versions older than TLS 1.2',
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'no common protocol version (TLS 1.2 or later)',
  ERR_SSL_WRONG_VERSION_NUMBER: 'the peer does not speak TLS on this port',
  ERR_SSL_HTTP_REQUEST: 'the peer does not speak TLS on this port',
  ERR_TLS_HANDSHAKE_TIMEOUT: 'the TLS handshake did not finish in time',
  ECONNRESET: 'the peer closed the connection during the TLS handshake',
};

/** True when `error` is a failure of TLS itself (handshake, certificate, alert). */
export function isTlsFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return false;
  return code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code in CERTIFICATE_ERRORS;
}

/** A TLS failure in words: the peer's certificate, an alert, no common suite or version. */
export function describeTlsFailure(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') {
    if (code in CERTIFICATE_ERRORS) return `peer certificate ${describeCertificateError(code)}`;
    const known = HANDSHAKE_ERRORS[code];
    if (known !== undefined) return known;
  }
  const message = error instanceof Error ? error.message : String(error);
  // OpenSSL's messages carry its source file and line: the reason is the part after them.
  const reason = /:SSL routines:[^:]*:([^:]+)/.exec(message)?.[1];
  return reason ?? message;
}
