// Certificates for TLS tests, made with the openssl command in a directory of the test's: a
// cluster CA, a certificate per node naming it (CN node-<id>), a client certificate, and a
// second CA with a certificate of its own.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export interface CertFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

function openssl(dir: string, args: readonly string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA in `dir` (`<name>.crt`, `<name>.key`). */
export function makeCa(dir: string, name: string): CertFiles {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${name}`, '-days', '2']);
  return { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
}

/** A certificate for subject CN `cn`, signed by `ca`, as `<file>.crt` and `<file>.key` in `dir`. */
export function makeCert(dir: string, ca: CertFiles, cn: string, file: string = cn): CertFiles {
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${file}.key`, '-out', `${file}.csr`, '-subj', `/CN=${cn}`]);
  openssl(dir, ['x509', '-req', '-in', `${file}.csr`, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', String(Math.floor(Math.random() * 2 ** 40)), '-out', `${file}.crt`, '-days', '2']);
  return { certFile: join(dir, `${file}.crt`), keyFile: join(dir, `${file}.key`) };
}
