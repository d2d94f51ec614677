/**
 * HTTP and HTTPS checks (keepalived HTTP_GET / SSL_GET): one GET per check on a fresh connection
 * (no keep-alive pool), `Connection: close`.
 *
 * - Host header: `host` when configured, else the real's address (bracketed for IPv6, with the
 *   port when it is not the scheme's default).
 * - UP: the status is within `status` (default [200, 399]) and, when `body` is set, that regular
 *   expression is found in the first MAX_REPLY bytes of the body (checked as the body arrives).
 * - HTTPS: certificate verification is off unless `insecure: false` is given, as keepalived's
 *   SSL_GET does: a real server's certificate names the service, not the real's address, and is
 *   often self-signed on the back end. With `insecure: false` the certificate must chain to a
 *   trusted CA and match `host` (or the address). SNI carries `host` when it is a name.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { LvsError } from '../../errors.js';
import type { Probe, ProbeResult, ProbeTarget } from '../types.js';
import { attempt, describeError, MAX_REPLY, show } from './common.js';
import { compileExpectRegex } from './escape.js';

export interface HttpOptions { port?: number; path?: string; host?: string; status?: [number, number]; body?: string; insecure?: boolean }

export class HttpProbe implements Probe {
  readonly kind: 'http' | 'https';
  private readonly path: string;
  private readonly status: [number, number];
  private readonly body?: RegExp;
  private readonly insecure: boolean;

  constructor(readonly useTls: boolean, private readonly opts: HttpOptions) {
    this.kind = useTls ? 'https' : 'http';
    this.path = opts.path ?? '/';
    if (!this.path.startsWith('/') || /[\s]/.test(this.path)) {
      throw new LvsError('LVS_INVALID_OPTION', `path: ${JSON.stringify(this.path)} must start with "/" and contain no blanks`, { field: 'path' });
    }
    if (opts.host !== undefined && !/^[^\s/]+$/.test(opts.host)) {
      throw new LvsError('LVS_INVALID_OPTION', `host: ${JSON.stringify(opts.host)} is not a host name`, { field: 'host' });
    }
    this.status = opts.status ?? [200, 399];
    const [lo, hi] = this.status;
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 100 || hi > 599 || lo > hi) {
      throw new LvsError('LVS_INVALID_OPTION', `status: [${lo}, ${hi}] is not a range of HTTP status codes (100 to 599)`, { field: 'status' });
    }
    if (opts.body !== undefined) this.body = compileExpectRegex(opts.body, 'body');
    this.insecure = opts.insecure ?? true;
  }

  run(target: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
    const port = this.opts.port ?? target.port;
    return attempt(timeoutMs, signal, (a) => {
      const headers: Record<string, string> = { 'user-agent': 'lvsd-health-check', connection: 'close', accept: '*/*' };
      if (this.opts.host !== undefined) headers.host = this.opts.host;
      const base = { host: target.address, port, path: this.path, method: 'GET', headers, agent: false as const };
      let req: http.ClientRequest;
      if (this.useTls) {
        const name = this.opts.host?.replace(/:\d+$/, '');
        req = https.request({
          ...base,
          rejectUnauthorized: !this.insecure,
          ...(name !== undefined && net.isIP(name) === 0 ? { servername: name } : {}),
          ...(name !== undefined ? { checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tlsIdentity(name, cert) } : {}),
        });
      } else {
        req = http.request(base);
      }
      a.onSettle(() => req.destroy());
      req.on('error', (e) => a.fail(httpError(e)));
      req.on('socket', () => { a.phase = 'connecting'; });
      req.on('response', (res) => {
        a.onSettle(() => res.destroy());
        res.on('error', (e) => a.fail(httpError(e)));
        const code = res.statusCode ?? 0;
        const [lo, hi] = this.status;
        const line = `${code}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
        if (code < lo || code > hi) { a.fail(`status ${show(line)} not in ${lo}-${hi}`); return; }
        const re = this.body;
        if (re === undefined) { a.ok(`status ${code}`); return; }
        a.phase = 'reading the body';
        let body = Buffer.alloc(0);
        const decide = (final: boolean): void => {
          if (re.test(body.toString('utf8'))) { a.ok(`status ${code}, body matches /${re.source}/`); return; }
          if (final) a.fail(`status ${code}, body ${show(body)} does not match /${this.opts.body}/`);
        };
        res.on('data', (chunk: Buffer) => {
          body = Buffer.concat([body, chunk]).subarray(0, MAX_REPLY);
          a.phase = `reading the body, got ${body.length} bytes`;
          decide(body.length >= MAX_REPLY);
        });
        res.on('end', () => decide(true));
        res.on('close', () => decide(true));
      });
      req.end();
    });
  }
}

function tlsIdentity(name: string, cert: tls.PeerCertificate): Error | undefined {
  return tls.checkServerIdentity(name, cert);
}

function httpError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? '';
  if (code.startsWith('HPE_')) return `bad HTTP response: ${err.message}`;
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /CERT|SELF_SIGNED|UNABLE_TO|DEPTH_ZERO|HOSTNAME/.test(code)) return `TLS: ${err.message}`;
  if (code === 'ECONNRESET' && /socket hang up/.test(err.message)) return 'connection closed before a response';
  return describeError(e);
}
