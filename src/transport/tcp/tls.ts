/**
 * TLS for the peer transport and the client port, with Node's own `tls`: the PEM files a side
 * uses, re-read when they change so that certificates rotate without a restart, and the rule
 * that ties a peer's certificate to the node id it claims.
 *
 * **Files.** `certFile` and `keyFile` are this side's certificate chain and key, `caFile` the
 * cluster's CA (every certificate a side accepts must chain to it). Their contents are cached
 * with each file's size and modification time; {@link TlsMaterial.refresh} (called on every
 * dial and, by a server, at most once a second) reads them again when one changed. A file
 * that cannot be read, or material Node refuses, keeps the last good material and is
 * reported through `onReloadError`; at start it is an INVALID_ARGUMENT naming the file.
 *
 * **Node identity.** On the peer port both sides present certificates (mutual TLS). A node's
 * certificate must name it: its subject CN, or one of its DNS subjectAltNames, is `node-<id>`
 * (`node-3`). An acceptor checks the certificate of a dialler against the sender id of its
 * HELLO and refuses a mismatch (REFUSAL `identity`); a dialler checks the acceptor's against
 * the node it dials. Host names are never checked: peers are addressed by IP.
 */
import { performance } from 'node:perf_hooks';
import { readFileSync, statSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import { invalidArgument, type RingraftError } from '../../base/index.ts';

/** What a side of a TLS connection reads from disk. The client side of the client port may omit cert and key. */
export interface TlsFiles {
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly caFile: string;
}

/** Material is looked at again at most this often by a server (a dialler looks on each dial). */
export const TLS_REFRESH_MS = 1_000;

interface Stamp {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

export class TlsMaterial {
  private stamps: Stamp[] = [];
  private current: { readonly cert?: Buffer; readonly key?: Buffer; readonly ca: Buffer } | undefined;
  private checkedAt = 0;

  /** Reads the files now; INVALID_ARGUMENT naming the first that cannot be read or is refused by TLS. */
  constructor(
    readonly files: TlsFiles,
    private readonly onReloadError: (error: RingraftError) => void = () => {},
  ) {
    if ((files.certFile === undefined) !== (files.keyFile === undefined)) throw invalidArgument('tls: certFile and keyFile go together');
    this.load();
  }

  /** The options `tls.createServer`, `tls.connect` and `setSecureContext` take: cert, key, ca. */
  options(): { cert?: Buffer; key?: Buffer; ca: Buffer } {
    return { ...this.current! };
  }

  /**
   * Reads the files again if one changed since the last look (a look at most every
   * `minIntervalMs`); returns whether the material changed. A failed reload keeps the old
   * material and is reported.
   */
  refresh(minIntervalMs = 0): boolean {
    const now = performance.now();
    if (now - this.checkedAt < minIntervalMs) return false;
    this.checkedAt = now;
    let changed: boolean;
    try {
      changed = this.paths().some((path, i) => {
        const st = statSync(path);
        const old = this.stamps[i];
        return old === undefined || old.size !== st.size || old.mtimeMs !== st.mtimeMs;
      });
    } catch (error) {
      this.onReloadError(invalidArgument(`tls: cannot look at the certificate files: ${(error as Error).message}`));
      return false;
    }
    if (!changed) return false;
    try {
      this.load();
      return true;
    } catch (error) {
      this.onReloadError(error as RingraftError);
      return false;
    }
  }

  private paths(): string[] {
    const f = this.files;
    return [f.caFile, ...(f.certFile === undefined ? [] : [f.certFile, f.keyFile!])];
  }

  private load(): void {
    const read = (path: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (error) {
        throw invalidArgument(`tls: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
    };
    const stamps = this.paths().map((path) => {
      const st = statSync(path, { throwIfNoEntry: false });
      return { path, size: st?.size ?? -1, mtimeMs: st?.mtimeMs ?? -1 };
    });
    const f = this.files;
    const next = { ca: read(f.caFile), ...(f.certFile === undefined ? {} : { cert: read(f.certFile), key: read(f.keyFile!) }) };
    // Refused here, not at the first connection: a bad file is named.
    let context: SecureContext;
    try {
      context = createSecureContext(next);
    } catch (error) {
      throw invalidArgument(`tls: the files ${this.paths().join(', ')} are not a certificate, its key and a CA that TLS takes: ${(error as Error).message}`);
    }
    void context;
    this.current = next;
    this.stamps = stamps;
  }
}

/** The name a node's certificate carries. */
export function nodeCertificateName(nodeId: number): string {
  return `node-${nodeId}`;
}

/** Whether `cert` names node `nodeId` (subject CN or a DNS subjectAltName `node-<id>`). */
export function certificateNamesNode(cert: PeerCertificate | undefined, nodeId: number): boolean {
  if (cert === undefined || Object.keys(cert).length === 0) return false;
  const want = nodeCertificateName(nodeId);
  const cn = cert.subject?.CN;
  if ((Array.isArray(cn) ? cn : [cn]).includes(want)) return true;
  const sans = (cert.subjectaltname ?? '').split(',').map((s) => s.trim());
  return sans.includes(`DNS:${want}`);
}

/**
 * Hands each accepted connection to `onConnection`: at once without TLS, after its handshake
 * with it. A handshake that fails (no certificate, another CA, plain TCP, garbage) closes
 * that connection only and is reported with the far end and a line for people.
 */
export function acceptConnections(server: Server, tls: boolean, onConnection: (socket: Socket) => void, onHandshakeFailed: (remote: string, message: string, cause: Error) => void): void {
  if (!tls) {
    server.on('connection', onConnection);
    return;
  }
  server.on('secureConnection', onConnection);
  server.on('tlsClientError', (error: Error, socket: Socket) => {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    onHandshakeFailed(remote, `TLS handshake with ${remote} failed: ${error.message}`, error);
    socket.destroy();
  });
}
