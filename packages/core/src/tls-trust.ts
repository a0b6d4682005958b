/**
 * What to tell the user of a client (the CLI, the SDK in Node) whose TLS connection to a node was
 * refused because of the node's certificate, from the error code Node's TLS stack (OpenSSL) gives.
 * Two cases need different words: a certificate outside its validity period (only the node's
 * operator can cure it, by renewing it: trusting it changes nothing), and a certificate this
 * machine does not trust (self-signed, unknown CA, another host name: the user can trust it with
 * NODE_EXTRA_CA_CERTS). Neither is "the node is not running".
 */

/** Codes under which Node's TLS refuses a certificate it cannot check (node:tls, OpenSSL). */
const CERTIFICATE =
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS_CERT_ALTNAME_INVALID/;

/** A certificate's validity period, as the server showed it (when it could be read). */
export interface CertificateDates {
  readonly validFrom: string;
  readonly validTo: string;
}

/** Why the connection was refused (`why`, for the message) and what to do (`hint`). */
export interface TlsTrustProblem {
  readonly why: string;
  readonly hint: string;
}

/** TLS error codes of a certificate outside its validity period (its dates say when it was valid). */
export const CERTIFICATE_OUT_OF_DATE: ReadonlySet<string> = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

/** A date as the certificate shows it, in ISO form when it parses ("Jan  2 00:00:00 2020 GMT"). */
export function certificateDate(text: string): string {
  const t = Date.parse(text);
  return Number.isNaN(t) ? text : new Date(t).toISOString().replace('.000Z', 'Z');
}

/**
 * The problem behind TLS error `code`, or undefined when `code` is not a certificate failure.
 * `dates`: the certificate's validity period, named in the message when given. `now`: this
 * machine's clock, named for a certificate not yet valid (a wrong clock is the other cause).
 */
export function tlsTrustProblem(
  code: string | undefined,
  dates?: CertificateDates,
  now: Date = new Date(),
): TlsTrustProblem | undefined {
  if (code === undefined || !CERTIFICATE.test(code)) return undefined;
  const period =
    dates === undefined
      ? ''
      : `; it is valid from ${certificateDate(dates.validFrom)} to ${certificateDate(dates.validTo)}`;
  if (code === 'CERT_HAS_EXPIRED') {
    return {
      why: `its TLS certificate has expired (${code}${period})`,
      hint: "The node's TLS certificate has expired: its operator must renew it (a new certificate for --tls-cert) and restart the node. Trusting it (NODE_EXTRA_CA_CERTS) cannot help: an expired certificate is refused whoever issued it.",
    };
  }
  if (code === 'CERT_NOT_YET_VALID') {
    return {
      why: `its TLS certificate is not valid yet (${code}${period}; this machine's clock reads ${now.toISOString()})`,
      hint: "The node's TLS certificate is not valid yet: if this machine's clock is right, the node's operator must replace it with one valid now (a new certificate for --tls-cert) and restart the node; else set the clock right. Trusting it (NODE_EXTRA_CA_CERTS) cannot help.",
    };
  }
  return {
    why: `its TLS certificate is not one this machine trusts (${code}): for a node started with its own --tls-cert, trust that certificate with NODE_EXTRA_CA_CERTS=<the certificate, or its CA>`,
    hint: "Trust the node's TLS certificate: in Node (the CLI, the SDK) start the command with NODE_EXTRA_CA_CERTS=<the node's certificate, or its CA>; a browser needs it trusted by the system or the browser. Check too that the URL's host name is one the certificate names.",
  };
}
