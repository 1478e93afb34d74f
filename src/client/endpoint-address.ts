/**
 * A client's endpoint: `HOST:PORT` with HOST an IP address (an IPv6 one in brackets,
 * `[::1]:7101`), never a name: nothing depends on how `localhost` resolves.
 */
import { isIP } from 'node:net';
import { invalidArgument } from '../base/index.ts';

export interface EndpointAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `text`; INVALID_ARGUMENT naming `name` for anything but an IP literal and a port in [1, 65535]. */
export function parseEndpoint(text: unknown, name: string): EndpointAddress {
  if (typeof text !== 'string') throw invalidArgument(`${name} must be a string HOST:PORT, got ${typeof text}`);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || host === undefined) throw invalidArgument(`${name} ${JSON.stringify(text)} is not HOST:PORT (an IPv6 host in brackets)`);
  const family = isIP(host);
  if (family === 0) throw invalidArgument(`${name} ${JSON.stringify(text)}: ${host} is not an IP address (host names are not resolved)`);
  if (family === 6 && m[1] === undefined) throw invalidArgument(`${name} ${JSON.stringify(text)}: an IPv6 address goes in brackets, [${host}]:${m[3]}`);
  if (!(port >= 1 && port <= 0xffff)) throw invalidArgument(`${name} ${JSON.stringify(text)}: port ${m[3]} is not in [1, 65535]`);
  return { host, port };
}
