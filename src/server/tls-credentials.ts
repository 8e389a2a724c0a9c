/**
 * The TLS set-up of the DICOM service (PS3.15 Annex B): the certificate, private key and CA
 * bundle files read and checked before anything listens or connects, each problem an
 * ERR_TLS_CONFIG naming the setting and the file (a file missing or unreadable, no PEM in it,
 * an encrypted key, a key that does not belong to the certificate, a certificate expired or not
 * valid yet); then the listener's and the requestors' options made from them (network/tls.ts),
 * and what the status shows of the certificate (subject, issuer, validity).
 *
 * Layer: server. The network layer gets the options built and reads no file.
 */

import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DicomServerError } from '../errors.js';
import {
  createClientTls,
  createServerTls,
  oneLineName,
  type TlsClientOptions,
  type TlsMaterial,
  type TlsServerOptions,
} from '../network/tls.js';
import type { Settings } from '../settings/schema.js';

/** The files to load; an empty path is none. */
export interface TlsFiles {
  readonly certificate: string;
  readonly privateKey: string;
  readonly caCertificates: string;
}

/** How errors name each file: a setting (`tls_certificate`) or an option (`--tls-cert`). */
export type TlsFileLabels = { readonly [K in keyof TlsFiles]: string };

/** The settings' names, for the service's errors. */
export const SETTING_LABELS: TlsFileLabels = {
  certificate: 'tls_certificate',
  privateKey: 'tls_private_key',
  caCertificates: 'tls_ca_certificates',
};

/** A certificate as an operator reads it (the status API, the dashboard, the log). */
export interface CertificateSummary {
  readonly subject: string;
  readonly issuer: string;
  /** ISO 8601. */
  readonly validFrom: string;
  readonly validTo: string;
  readonly serialNumber: string;
  readonly fingerprint256: string;
}

/** The files' contents, checked. */
export interface LoadedTls {
  readonly material: TlsMaterial;
  /** Our certificate, when one was given. */
  readonly certificate?: CertificateSummary;
  /** How many CA certificates the bundle holds (0 without one). */
  readonly caCertificateCount: number;
}

/** What the service's TLS runs with. */
export interface TlsSetup {
  /** The TLS listener, when tls_enabled. */
  readonly listener?: TlsServerOptions;
  /** Options of our associations to peers marked use_tls. */
  readonly client: TlsClientOptions;
  readonly certificate?: CertificateSummary;
  readonly requireClientCertificate: boolean;
  readonly caCertificateCount: number;
}

function configError(
  label: string,
  path: string,
  message: string,
  extra: Record<string, string> = {},
  cause?: unknown,
): DicomServerError {
  return new DicomServerError(
    'ERR_TLS_CONFIG',
    `${label}: ${message}`,
    { setting: label, path, ...extra },
    cause,
  );
}

/** A file's text; its absence or unreadability an ERR_TLS_CONFIG naming it. */
async function readPem(label: string, given: string): Promise<string> {
  const path = resolve(given);
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a folder, not a file'
          : code === 'EACCES'
            ? 'cannot be read (permission denied)'
            : `cannot be read (${code ?? String(error)})`;
    throw configError(label, path, `file ${path} ${why}`, {}, error);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM text, parsed; none or a broken one is an error. */
function parseCertificates(label: string, path: string, pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    throw configError(label, path, `file ${path} holds no PEM certificate`);
  }
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw configError(
        label,
        path,
        `certificate ${index + 1} in ${path} cannot be read`,
        {},
        error,
      );
    }
  });
}

function parsePrivateKey(label: string, path: string, pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ERR_MISSING_PASSPHRASE'
        ? 'is encrypted: give the key without a passphrase (openssl pkey -in KEY -out PLAIN)'
        : 'holds no PEM private key';
    throw configError(label, path, `file ${path} ${why}`, {}, error);
  }
}

/** The certificate's validity as ISO dates. */
function validityOf(certificate: X509Certificate): { validFrom: string; validTo: string } {
  return {
    validFrom: new Date(certificate.validFrom).toISOString(),
    validTo: new Date(certificate.validTo).toISOString(),
  };
}

/** What the status shows of a certificate. */
export function summarize(certificate: X509Certificate): CertificateSummary {
  return {
    subject: oneLineName(certificate.subject),
    issuer: oneLineName(certificate.issuer),
    ...validityOf(certificate),
    serialNumber: certificate.serialNumber,
    fingerprint256: certificate.fingerprint256,
  };
}

/** Refuses a certificate that expired or is not valid yet at `now`. */
function checkValidity(label: string, path: string, certificate: X509Certificate, now: Date): void {
  const { validFrom, validTo } = validityOf(certificate);
  const subject = oneLineName(certificate.subject);
  if (Date.parse(validTo) < now.getTime()) {
    throw configError(label, path, `certificate ${subject} expired on ${validTo}`, {
      validTo,
    });
  }
  if (Date.parse(validFrom) > now.getTime()) {
    throw configError(label, path, `certificate ${subject} is not valid before ${validFrom}`, {
      validFrom,
    });
  }
}

/** Our certificate and its key: each readable, the key the certificate's, the dates valid. */
async function loadIdentity(
  files: TlsFiles,
  labels: TlsFileLabels,
  now: Date,
): Promise<{ certificate: string; privateKey: string; summary: CertificateSummary }> {
  const certificatePath = resolve(files.certificate);
  const keyPath = resolve(files.privateKey);
  const certificate = await readPem(labels.certificate, files.certificate);
  const privateKey = await readPem(labels.privateKey, files.privateKey);
  const [leaf] = parseCertificates(labels.certificate, certificatePath, certificate);
  const key = parsePrivateKey(labels.privateKey, keyPath, privateKey);
  if (!leaf!.checkPrivateKey(key)) {
    throw configError(
      labels.privateKey,
      keyPath,
      `the key in ${keyPath} does not belong to the certificate in ${certificatePath}`,
    );
  }
  checkValidity(labels.certificate, certificatePath, leaf!, now);
  return { certificate, privateKey, summary: summarize(leaf!) };
}

/**
 * Reads and checks the files given (certificate and key together, the CA bundle alone or with
 * them); rejects with ERR_TLS_CONFIG naming the setting or option of the file at fault.
 */
export async function loadTlsFiles(
  files: TlsFiles,
  labels: TlsFileLabels = SETTING_LABELS,
  now: Date = new Date(),
): Promise<LoadedTls> {
  const hasCertificate = files.certificate !== '';
  const hasKey = files.privateKey !== '';
  if (hasCertificate !== hasKey) {
    const [missing, given] = hasCertificate
      ? [labels.privateKey, labels.certificate]
      : [labels.certificate, labels.privateKey];
    throw configError(missing, '', `must be given with ${given}`);
  }
  const identity = hasCertificate ? await loadIdentity(files, labels, now) : undefined;
  let caCertificates: string | undefined;
  let caCertificateCount = 0;
  if (files.caCertificates !== '') {
    caCertificates = await readPem(labels.caCertificates, files.caCertificates);
    caCertificateCount = parseCertificates(
      labels.caCertificates,
      resolve(files.caCertificates),
      caCertificates,
    ).length;
  }
  return {
    material: {
      ...(identity !== undefined && {
        certificate: identity.certificate,
        privateKey: identity.privateKey,
      }),
      ...(caCertificates !== undefined && { caCertificates }),
    },
    ...(identity !== undefined && { certificate: identity.summary }),
    caCertificateCount,
  };
}

/** The settings' files. */
function filesOf(settings: Settings): TlsFiles {
  return {
    certificate: settings.tls_certificate,
    privateKey: settings.tls_private_key,
    caCertificates: settings.tls_ca_certificates,
  };
}

/**
 * The service's TLS at start-up: with tls_enabled, the listener (a certificate and key
 * required; a CA bundle too when client certificates are required); always the options for
 * peers marked use_tls (our certificate as client certificate when there is one, the peer's
 * checked against the CA bundle, or the system's CAs without one). Rejects with ERR_TLS_CONFIG.
 */
export async function loadTlsSetup(settings: Settings, now: Date = new Date()): Promise<TlsSetup> {
  if (settings.tls_enabled) {
    if (settings.tls_certificate === '' || settings.tls_private_key === '') {
      const missing = settings.tls_certificate === '' ? 'tls_certificate' : 'tls_private_key';
      throw configError(missing, '', 'must be set when tls_enabled is on');
    }
    if (settings.tls_require_client_certificate && settings.tls_ca_certificates === '') {
      throw configError(
        'tls_ca_certificates',
        '',
        'must be set when tls_require_client_certificate is on',
      );
    }
  }
  const loaded = await loadTlsFiles(filesOf(settings), SETTING_LABELS, now);
  const requireClientCertificate = settings.tls_require_client_certificate;
  return {
    ...(settings.tls_enabled && {
      listener: createServerTls(loaded.material, requireClientCertificate),
    }),
    client: createClientTls(loaded.material),
    ...(loaded.certificate !== undefined && { certificate: loaded.certificate }),
    requireClientCertificate,
    caCertificateCount: loaded.caCertificateCount,
  };
}

/** The options for one association to a peer marked use_tls (a C-ECHO test from the API). */
export async function loadClientTls(settings: Settings): Promise<TlsClientOptions> {
  return createClientTls((await loadTlsFiles(filesOf(settings))).material);
}

/** Whole days from `now` until a certificate's end of validity (negative once expired). */
export function daysUntil(validTo: string, now: Date = new Date()): number {
  return Math.floor((Date.parse(validTo) - now.getTime()) / 86_400_000);
}

/** The TLS part of the service's status (the status API, the dashboard). */
export interface TlsStatus {
  /** The TLS listener's bound port; null when there is none (tls_enabled off). */
  readonly port: number | null;
  readonly requireClientCertificate: boolean;
  /** Our certificate, with the whole days left until it ends; null without one. */
  readonly certificate: (CertificateSummary & { readonly daysLeft: number }) | null;
  readonly caCertificateCount: number;
}

/** The status of a running service's TLS; null when it has neither listener nor certificate. */
export function tlsStatusOf(
  setup: TlsSetup | undefined,
  port: number | null,
  now: Date = new Date(),
): TlsStatus | null {
  if (setup === undefined || (setup.listener === undefined && setup.certificate === undefined)) {
    return null;
  }
  const certificate = setup.certificate;
  return {
    port: setup.listener === undefined ? null : port,
    requireClientCertificate: setup.listener !== undefined && setup.requireClientCertificate,
    certificate:
      certificate === undefined
        ? null
        : { ...certificate, daysLeft: daysUntil(certificate.validTo, now) },
    caCertificateCount: setup.caCertificateCount,
  };
}
