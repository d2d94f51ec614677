/**
 * UDP check: one datagram out, one datagram back. The socket is connected to the real, so the
 * kernel drops datagrams from anyone else and an ICMP port unreachable surfaces as
 * "connect refused".
 *
 * nanny with `-u`: send (if set), then one read; with no expect one byte must arrive. When no
 * send is configured we send an empty datagram (nanny sent nothing, which only a server that
 * talks first could answer), so a closed port is reported at once rather than at the timeout.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Probe, ProbeResult, ProbeTarget } from '../types.js';
import { attempt, describeError } from './common.js';
import { ExpectMatcher, unescape } from './escape.js';

export interface UdpOptions { port?: number; send?: string; expect?: string; regex?: boolean }

export class UdpProbe implements Probe {
  readonly kind = 'udp';
  private readonly send: Buffer;
  private readonly matcher?: ExpectMatcher;
  private readonly port?: number;

  constructor(opts: UdpOptions) {
    this.port = opts.port;
    this.send = Buffer.from(opts.send !== undefined ? unescape(opts.send) : '', 'utf8');
    if (opts.expect !== undefined && opts.expect !== '') this.matcher = new ExpectMatcher(unescape(opts.expect), opts.regex === true);
  }

  run(target: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
    const port = this.port ?? target.port;
    return attempt(timeoutMs, signal, (a) => {
      const fam = net.isIP(target.address);
      if (fam === 0) { a.fail(`not an IP address: ${JSON.stringify(target.address)}`); return; }
      const sock = dgram.createSocket(fam === 6 ? 'udp6' : 'udp4');
      let open = true;
      sock.on('close', () => { open = false; });
      a.onSettle(() => { if (open) sock.close(); });
      sock.on('error', (e) => a.fail(describeError(e)));
      sock.on('message', (msg) => {
        // One datagram is the whole reply: it decides, it is never completed by a later one.
        if (this.matcher === undefined) {
          if (msg.length > 0) a.ok(`reply of ${msg.length} bytes`);
          else a.fail('empty reply');
          return;
        }
        const v = this.matcher.check(msg, true)!;
        if (v.ok) a.ok(`reply matches ${this.matcher.any ? 'any byte' : JSON.stringify(this.matcher.expect)}`);
        else a.fail(v.reason);
      });
      sock.connect(port, target.address, () => {
        if (a.settled) return;
        a.phase = 'sending';
        sock.send(this.send, (err) => {
          if (err) { a.fail(describeError(err)); return; }
          a.phase = 'waiting for a reply';
        });
      });
    });
  }
}
