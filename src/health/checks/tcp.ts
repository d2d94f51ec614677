/**
 * TCP check, nanny's `pinger` without the ICMP part: connect to the real, write `send` once, and
 * when there is an expect, read until the reply decides it (see ExpectMatcher).
 *
 * - no send, no expect: a completed connect is UP (nanny step 5);
 * - send without expect: UP once the data is handed to the kernel (nanny wrote and did not read);
 * - port 80 with nothing configured: send `GET / HTTP/1.0\r\n\r\n`, expect `HTTP` (nanny step 6).
 */
import net from 'node:net';
import type { Probe, ProbeResult, ProbeTarget } from '../types.js';
import { attempt, describeError, MAX_REPLY } from './common.js';
import { ExpectMatcher, unescape } from './escape.js';

export interface TcpOptions { port?: number; send?: string; expect?: string; regex?: boolean }

const HTTP_DEFAULT_SEND = 'GET / HTTP/1.0\r\n\r\n';
const HTTP_DEFAULT_EXPECT = 'HTTP';

export class TcpProbe implements Probe {
  readonly kind = 'tcp';
  private readonly send?: Buffer;
  private readonly matcher?: ExpectMatcher;
  private readonly port?: number;
  private readonly defaultHttp = new ExpectMatcher(HTTP_DEFAULT_EXPECT, false);

  /** `send` and `expect` are written as in lvs.cf: nanny's escapes are interpreted here. */
  constructor(opts: TcpOptions) {
    this.port = opts.port;
    if (opts.send !== undefined && opts.send !== '') this.send = Buffer.from(unescape(opts.send), 'utf8');
    if (opts.expect !== undefined && opts.expect !== '') this.matcher = new ExpectMatcher(unescape(opts.expect), opts.regex === true);
  }

  run(target: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
    const port = this.port ?? target.port;
    let send = this.send;
    let matcher = this.matcher;
    let assumed = false;
    if (send === undefined && matcher === undefined && port === 80) {
      // nanny: "no monitor configured, assuming web service on port 80".
      send = Buffer.from(HTTP_DEFAULT_SEND, 'latin1');
      matcher = this.defaultHttp;
      assumed = true;
    }
    return attempt(timeoutMs, signal, (a) => {
      const sock = net.connect({ host: target.address, port, noDelay: true });
      a.onSettle(() => sock.destroy());
      sock.on('error', (e) => a.fail(describeError(e)));
      sock.on('connect', () => {
        if (matcher === undefined) {
          if (send === undefined) { a.ok('connected'); return; }
          a.phase = 'sending';
          sock.write(send, (err) => { if (err) a.fail(describeError(err)); else a.ok(`connected, sent ${send!.length} bytes`); });
          return;
        }
        const m = matcher;
        let reply = Buffer.alloc(0);
        a.phase = 'waiting for a reply';
        const decide = (final: boolean): void => {
          const v = m.check(reply, final);
          if (v === undefined) return;
          if (v.ok) a.ok(assumed ? 'reply starts with "HTTP" (port 80 default check)' : `reply matches ${m.any ? 'any byte' : JSON.stringify(m.expect)}`);
          else a.fail(v.reason);
        };
        sock.on('data', (chunk: Buffer) => {
          reply = Buffer.concat([reply, chunk]).subarray(0, MAX_REPLY);
          a.phase = `waiting for a reply, got ${reply.length} bytes`;
          decide(reply.length >= MAX_REPLY);
        });
        sock.on('end', () => decide(true));
        sock.on('close', () => decide(true));
        if (send !== undefined) sock.write(send, (err) => { if (err) a.fail(describeError(err)); });
      });
    });
  }
}
