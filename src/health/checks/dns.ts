/**
 * DNS check over UDP (keepalived DNS_CHECK): one query with a random id, the recursion-desired
 * bit set, one question (`name`, `type`, class IN). Replies whose id, QR bit or question do not
 * match are ignored (late or forged), as are malformed datagrams (counted and named in the
 * timeout reason); the first matching reply decides.
 *
 * UP when the response code is the expected one: NOERROR (default) also needs at least one
 * answer record, NXDOMAIN needs that code, `any` accepts every well-formed response.
 * Message layout: RFC 1035 section 4.1.
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { LvsError } from '../../errors.js';
import type { Probe, ProbeResult, ProbeTarget } from '../types.js';
import { attempt, describeError } from './common.js';

export type DnsType = 'A' | 'AAAA' | 'SOA' | 'NS';
export interface DnsOptions { port?: number; name: string; type?: DnsType; expectRcode?: 'NOERROR' | 'NXDOMAIN' | 'any' }

/** RFC 1035 3.2.2 / RFC 3596 2.1 type codes. */
export const DNS_TYPES: Record<DnsType, number> = { A: 1, NS: 2, SOA: 6, AAAA: 28 };
/** RFC 1035 4.1.1 / RFC 2136 response codes, for reasons. */
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];

/** The name as wire labels; throws LVS_INVALID_OPTION when it cannot be one. */
export function encodeName(name: string): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  const parts: Buffer[] = [];
  if (trimmed !== '') {
    for (const label of trimmed.split('.')) {
      const b = Buffer.from(label, 'ascii');
      if (b.length === 0 || b.length > 63 || !/^[\x21-\x7e]+$/.test(label)) {
        throw new LvsError('LVS_INVALID_OPTION', `name: ${JSON.stringify(name)} has an empty, too long (over 63) or non-ASCII label`, { field: 'name' });
      }
      parts.push(Buffer.from([b.length]), b);
    }
  }
  parts.push(Buffer.from([0]));
  const wire = Buffer.concat(parts);
  if (wire.length > 255) throw new LvsError('LVS_INVALID_OPTION', `name: ${JSON.stringify(name)} is longer than 255 bytes`, { field: 'name' });
  return wire;
}

/** A standard query: header (id, RD, QDCOUNT 1) and one question of class IN. */
export function encodeQuery(id: number, name: string, type: DnsType): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id & 0xffff, 0);
  header.writeUInt16BE(0x0100, 2); // QR=0, opcode QUERY, RD=1
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(DNS_TYPES[type], 0);
  tail.writeUInt16BE(1, 2); // class IN
  return Buffer.concat([header, encodeName(name), tail]);
}

export interface DnsResponse { id: number; rcode: number; answers: number; truncated: boolean; qname: string; qtype: number }

/**
 * Read a response's header and first question. Returns a string naming the problem for a
 * datagram that is not a well-formed response (never throws on any input).
 */
export function decodeResponse(msg: Buffer): DnsResponse | string {
  if (msg.length < 12) return `short datagram (${msg.length} bytes)`;
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if ((flags & 0x8000) === 0) return 'not a response (QR=0)';
  const qd = msg.readUInt16BE(4);
  const answers = msg.readUInt16BE(6);
  if (qd !== 1) return `${qd} questions in the response`;
  // The question echoes ours: plain labels (servers do not compress the first name of a message,
  // as there is nothing before it to point at), so a pointer there marks a malformed reply.
  let off = 12;
  const labels: string[] = [];
  let guard = 0;
  for (;;) {
    if (off >= msg.length || ++guard > 128) return 'question name runs past the datagram';
    const len = msg[off]!;
    if (len === 0) { off++; break; }
    if ((len & 0xc0) !== 0) return 'compressed question name';
    if (off + 1 + len > msg.length) return 'question label runs past the datagram';
    labels.push(msg.toString('latin1', off + 1, off + 1 + len));
    off += 1 + len;
  }
  if (off + 4 > msg.length) return 'question type runs past the datagram';
  const qtype = msg.readUInt16BE(off);
  return { id, rcode: flags & 0x000f, answers, truncated: (flags & 0x0200) !== 0, qname: labels.join('.').toLowerCase(), qtype };
}

export class DnsProbe implements Probe {
  readonly kind = 'dns';
  private readonly type: DnsType;
  private readonly expectRcode: 'NOERROR' | 'NXDOMAIN' | 'any';
  private readonly qname: string;

  constructor(private readonly opts: DnsOptions) {
    this.type = opts.type ?? 'A';
    if (!(this.type in DNS_TYPES)) throw new LvsError('LVS_INVALID_OPTION', `type: ${JSON.stringify(this.type)} (expected A, AAAA, SOA or NS)`, { field: 'type' });
    this.expectRcode = opts.expectRcode ?? 'NOERROR';
    encodeName(opts.name); // validates now, not at the first check
    this.qname = (opts.name.endsWith('.') ? opts.name.slice(0, -1) : opts.name).toLowerCase();
  }

  run(target: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
    const port = this.opts.port ?? target.port;
    return attempt(timeoutMs, signal, (a) => {
      const fam = net.isIP(target.address);
      if (fam === 0) { a.fail(`not an IP address: ${JSON.stringify(target.address)}`); return; }
      const id = randomInt(0, 0x10000);
      const query = encodeQuery(id, this.opts.name, this.type);
      const sock = dgram.createSocket(fam === 6 ? 'udp6' : 'udp4');
      let open = true;
      sock.on('close', () => { open = false; });
      a.onSettle(() => { if (open) sock.close(); });
      sock.on('error', (e) => a.fail(describeError(e)));
      let ignored = 0;
      let lastProblem = '';
      sock.on('message', (msg) => {
        const r = decodeResponse(msg);
        if (typeof r === 'string') { ignored++; lastProblem = r; }
        else if (r.id !== id) { ignored++; lastProblem = `id ${r.id}, expected ${id}`; }
        else if (r.qname !== this.qname || r.qtype !== DNS_TYPES[this.type]) { ignored++; lastProblem = 'the question does not match ours'; }
        else {
          const rc = RCODES[r.rcode] ?? `RCODE ${r.rcode}`;
          const what = `${rc}, ${r.answers} answer${r.answers === 1 ? '' : 's'}${r.truncated ? ', truncated' : ''}`;
          if (this.expectRcode === 'any') a.ok(what);
          else if (rc !== this.expectRcode) a.fail(`${what} (expected ${this.expectRcode})`);
          else if (rc === 'NOERROR' && r.answers === 0) a.fail(`${what} (expected an answer for ${this.qname} ${this.type})`);
          else a.ok(what);
          return;
        }
        a.phase = `waiting for a reply, ignored ${ignored} datagram${ignored === 1 ? '' : 's'}: ${lastProblem}`;
      });
      sock.connect(port, target.address, () => {
        if (a.settled) return;
        a.phase = 'sending';
        sock.send(query, (err) => {
          if (err) { a.fail(describeError(err)); return; }
          a.phase = 'waiting for a reply';
        });
      });
    });
  }
}
