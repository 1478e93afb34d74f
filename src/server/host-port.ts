/**
 * `HOST:PORT` addresses of the `serve` configuration. The host is an IP literal, never a name:
 * a node's peers are listed by address, and a name would bring in a resolver whose answer can
 * change under a running cluster (and a slow or failing lookup on every redial). IPv6
 * literals are bracketed, as in URLs: `[::1]:7000`.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ServeConfigError, ServeConfigErrorReason } from './errors.ts';

/** An address to listen on or dial. `host` is canonical, without brackets (`::1`, `127.0.0.1`). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const PORT_MAX = 65_535;
/** Longer text is no address: refused before any parsing (the longest IPv6 form is 45 characters). */
const HOST_PORT_CHARS_MAX = 64;

/**
 * Parses `HOST:PORT`: `127.0.0.1:7000`, `[::1]:7000`, `[2001:db8::7]:0`. The port is an
 * integer in [0, 65535] written in decimal; the host an IPv4 literal in dotted-quad form or
 * a bracketed IPv6 literal (no zone id), which is canonicalized (`[0:0::1]` gives `::1`), so
 * that two spellings of one address compare equal. `name` (a flag or key) prefixes messages.
 * Throws a {@link ServeConfigError}: ADDRESS_MALFORMED, ADDRESS_HOST_NOT_IP or ADDRESS_PORT.
 */
export function parseHostPort(text: string, name = 'address'): HostPort {
  const shown = JSON.stringify(text);
  if (typeof text !== 'string' || text.length === 0 || text.length > HOST_PORT_CHARS_MAX) {
    throw malformed(`${name} must be HOST:PORT, got ${typeof text === 'string' ? shown : typeof text}`);
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) throw malformed(`${name} must be HOST:PORT, got ${shown}: no port`);
  const hostText = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > PORT_MAX) {
    throw new ServeConfigError(ServeConfigErrorReason.ADDRESS_PORT, `${name} ${shown}: the port must be an integer in [0, ${PORT_MAX}], got ${JSON.stringify(portText)}`);
  }
  return { host: parseHost(hostText, name, shown), port: Number(portText) };
}

function parseHost(hostText: string, name: string, shown: string): string {
  if (hostText.startsWith('[') && hostText.endsWith(']')) {
    const inner = hostText.slice(1, -1);
    if (inner.includes('%')) throw notIp(`${name} ${shown}: IPv6 zone ids are not supported`);
    if (!isIPv6(inner)) throw notIp(`${name} ${shown}: ${hostText} is not an IPv6 address`);
    // The URL parser prints IPv6 addresses in their canonical (RFC 5952) form.
    return new URL(`http://[${inner}]/`).hostname.slice(1, -1);
  }
  if (hostText.includes('[') || hostText.includes(']')) throw malformed(`${name} ${shown}: unbalanced brackets`);
  if (isIPv6(hostText)) throw malformed(`${name} ${shown}: an IPv6 address is written in brackets, [${hostText}]:PORT`);
  if (!isIPv4(hostText)) {
    throw notIp(`${name} ${shown}: the host must be an IPv4 or IPv6 address, not a name${hostText === '' ? ' (it is empty)' : ''}`);
  }
  return hostText;
}

/** `host:port`, with an IPv6 host in brackets: the form {@link parseHostPort} reads. */
export function formatHostPort(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Whether `host` (canonical) is a wildcard (0.0.0.0 or ::): listening on every interface, and no address to dial. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

function malformed(message: string): ServeConfigError {
  return new ServeConfigError(ServeConfigErrorReason.ADDRESS_MALFORMED, message);
}

function notIp(message: string): ServeConfigError {
  return new ServeConfigError(ServeConfigErrorReason.ADDRESS_HOST_NOT_IP, message);
}
