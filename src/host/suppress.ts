/**
 * Suppressing the kernel's copy of what the dataplane owns, for the AF_PACKET backend.
 *
 * An AF_PACKET socket gets a copy of each frame; the kernel still receives the original and
 * would answer it (a reset from the VIP) or forward it again. An nftables `netdev` table with
 * an ingress chain per director interface (priority -500) drops exactly the traffic the
 * dataplane handles; AF_PACKET taps see frames before the netdev ingress hook
 * (net/core/dev.c, __netif_receive_skb_core: ptype_all taps, then tc and netfilter ingress),
 * so the dataplane still gets them. What is dropped, mirroring the XDP steering program:
 *
 * - TCP/UDP to (VIP, protocol, port) of a service; port 0 = every port of that protocol;
 * - ICMP/ICMPv6 errors (v4 types 3, 4, 11, 12; v6 types 1-4) to a service address;
 * - TCP/UDP and ICMP errors to a firewall-mark prefix;
 * - NAT replies: TCP/UDP from (real, protocol, port) of a NAT real (port 0 = any), and ICMP
 *   errors from a NAT real's address, unless addressed to one of the director's own
 *   addresses (health checks, heartbeats).
 *
 * The table is replaced whole in one transaction (`nft -f -`), inside the namespace
 * (`ip netns exec NAME nft -f -`), so a change never leaves a moment without rules.
 */
import { execFileSync } from 'node:child_process';
import { LvsError } from '../errors.js';
import { formatAddress, parseAddress, type IpAddress } from '../net/address.js';

export interface SuppressionSpec {
  /** The director's interfaces the dataplane reads (one ingress chain each). */
  devices: string[];
  services: Array<{ address: string; protocol: 'tcp' | 'udp'; port: number }>;
  natReals: Array<{ address: string; protocol: 'tcp' | 'udp'; port: number }>;
  /** The director's own addresses: NAT replies to these are the director's. */
  locals: string[];
  /** Firewall-mark rules' destinations. */
  prefixes: Array<{ address: string; prefixLength: number }>;
}

const ICMP4_ERRORS = '{ 3, 4, 11, 12 }';
const ICMP6_ERRORS = '{ 1, 2, 3, 4 }';
const DEVICE_NAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,31}$/;

function protocolArg(p: unknown, field: string): 'tcp' | 'udp' {
  if (p !== 'tcp' && p !== 'udp') throw new LvsError('LVS_INVALID_PROTOCOL', `${field}: expected "tcp" or "udp", got ${JSON.stringify(p)}`, { field });
  return p;
}

function portArg(p: unknown, field: string): number {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 65535) throw new LvsError('LVS_INVALID_PORT', `${field}: expected 0..65535, got ${String(p)}`, { field });
  return p;
}

/** Elements of the sets the rules look up, per family. */
class Sets {
  readonly svc = new Set<string>(); // addr . proto . port
  readonly svcAny = new Set<string>(); // addr . proto
  readonly vip = new Set<string>(); // addr
  readonly nat = new Set<string>();
  readonly natAny = new Set<string>();
  readonly natAddr = new Set<string>();
  readonly local = new Set<string>();
  readonly prefix = new Set<string>(); // addr/plen
}

export class Suppression {
  constructor(
    /** The namespace (`ip netns` name) the director's interfaces are in; '' = ours. */
    readonly netns: string,
    readonly tableName = 'lvsd',
  ) {
    if (typeof netns !== 'string') throw new LvsError('LVS_INVALID_ARGUMENT', 'netns: expected a namespace name', { field: 'netns' });
    if (!TABLE_NAME.test(tableName)) throw new LvsError('LVS_INVALID_ARGUMENT', `tableName: "${tableName}" is not an nftables table name`, { field: 'tableName' });
  }

  /** Install (or replace) the table for `spec`. */
  apply(spec: SuppressionSpec): void {
    this.nft(this.ruleset(spec));
  }

  /** Remove the table; nothing happens if there is none. */
  /** Whether the table is installed. */
  exists(): boolean {
    try {
      this.nftRead(['list', 'table', 'netdev', this.tableName]);
      return true;
    } catch {
      return false;
    }
  }

  remove(): void {
    this.nft(`table netdev ${this.tableName}\ndelete table netdev ${this.tableName}\n`);
  }

  /** The nft script apply() runs: the table deleted and made again, in one transaction. */
  ruleset(spec: SuppressionSpec): string {
    if (spec === null || typeof spec !== 'object') throw new LvsError('LVS_INVALID_ARGUMENT', 'spec: expected an object', { field: 'spec' });
    const devices = [...new Set(spec.devices ?? [])];
    if (devices.length === 0) throw new LvsError('LVS_INVALID_INTERFACE', 'devices: expected at least one interface', { field: 'devices' });
    devices.forEach((d, i) => {
      if (typeof d !== 'string' || !DEVICE_NAME.test(d)) throw new LvsError('LVS_INVALID_INTERFACE', `devices[${i}]: "${String(d)}" is not a device name`, { field: `devices[${i}]` });
    });
    const v4 = new Sets();
    const v6 = new Sets();
    const of = (a: IpAddress) => (a.family === 'ipv4' ? v4 : v6);
    (spec.services ?? []).forEach((s, i) => {
      const a = parseAddress(s.address, `services[${i}].address`);
      const proto = protocolArg(s.protocol, `services[${i}].protocol`);
      const port = portArg(s.port, `services[${i}].port`);
      const set = of(a);
      if (port === 0) set.svcAny.add(`${a.text} . ${proto}`);
      else set.svc.add(`${a.text} . ${proto} . ${port}`);
      set.vip.add(a.text);
    });
    (spec.natReals ?? []).forEach((r, i) => {
      const a = parseAddress(r.address, `natReals[${i}].address`);
      const proto = protocolArg(r.protocol, `natReals[${i}].protocol`);
      const port = portArg(r.port, `natReals[${i}].port`);
      const set = of(a);
      if (port === 0) set.natAny.add(`${a.text} . ${proto}`);
      else set.nat.add(`${a.text} . ${proto} . ${port}`);
      set.natAddr.add(a.text);
    });
    (spec.locals ?? []).forEach((l, i) => {
      const a = parseAddress(l, `locals[${i}]`);
      of(a).local.add(a.text);
    });
    (spec.prefixes ?? []).forEach((p, i) => {
      const a = parseAddress(p.address, `prefixes[${i}].address`);
      const max = a.family === 'ipv4' ? 32 : 128;
      if (!Number.isInteger(p.prefixLength) || p.prefixLength < 0 || p.prefixLength > max) {
        throw new LvsError('LVS_INVALID_ARGUMENT', `prefixes[${i}].prefixLength: expected 0..${max}, got ${String(p.prefixLength)}`, { field: `prefixes[${i}].prefixLength` });
      }
      // The network itself (nft refuses a prefix with host bits set).
      const net = a.bytes.map((b, k) => b & (0xff << (8 - Math.max(0, Math.min(8, p.prefixLength - k * 8)))) & 0xff);
      of(a).prefix.add(`${formatAddress(a.family, net)}/${p.prefixLength}`);
    });

    const t = this.tableName;
    const lines: string[] = [`table netdev ${t}`, `delete table netdev ${t}`, `table netdev ${t} {`];
    const set = (name: string, type: string, elements: Set<string>, flags = '') => {
      lines.push(`  set ${name} {`, `    type ${type}`);
      if (flags) lines.push(`    ${flags}`);
      if (elements.size) lines.push(`    elements = { ${[...elements].join(', ')} }`);
      lines.push('  }');
    };
    for (const [fam, s, addrType] of [
      ['4', v4, 'ipv4_addr'],
      ['6', v6, 'ipv6_addr'],
    ] as const) {
      set(`svc${fam}`, `${addrType} . inet_proto . inet_service`, s.svc);
      set(`svc${fam}_any`, `${addrType} . inet_proto`, s.svcAny);
      set(`vip${fam}`, addrType, s.vip);
      set(`nat${fam}`, `${addrType} . inet_proto . inet_service`, s.nat);
      set(`nat${fam}_any`, `${addrType} . inet_proto`, s.natAny);
      set(`natip${fam}`, addrType, s.natAddr);
      set(`local${fam}`, addrType, s.local);
      set(`pfx${fam}`, addrType, s.prefix, 'flags interval; auto-merge');
    }
    lines.push(
      '  chain owned {',
      // Services: (VIP, protocol, port), or (VIP, protocol) for port 0; ICMP errors to VIPs.
      '    meta protocol ip meta l4proto { tcp, udp } ip daddr . meta l4proto . th dport @svc4 drop',
      '    meta protocol ip meta l4proto { tcp, udp } ip daddr . meta l4proto @svc4_any drop',
      `    meta protocol ip ip daddr @vip4 icmp type ${ICMP4_ERRORS} drop`,
      '    meta protocol ip6 meta l4proto { tcp, udp } ip6 daddr . meta l4proto . th dport @svc6 drop',
      '    meta protocol ip6 meta l4proto { tcp, udp } ip6 daddr . meta l4proto @svc6_any drop',
      `    meta protocol ip6 ip6 daddr @vip6 icmpv6 type ${ICMP6_ERRORS} drop`,
      // Firewall-mark prefixes.
      '    meta protocol ip ip daddr @pfx4 meta l4proto { tcp, udp } drop',
      `    meta protocol ip ip daddr @pfx4 icmp type ${ICMP4_ERRORS} drop`,
      '    meta protocol ip6 ip6 daddr @pfx6 meta l4proto { tcp, udp } drop',
      `    meta protocol ip6 ip6 daddr @pfx6 icmpv6 type ${ICMP6_ERRORS} drop`,
      // NAT replies, unless they are for the director itself.
      '    meta protocol ip ip daddr @local4 return',
      '    meta protocol ip meta l4proto { tcp, udp } ip saddr . meta l4proto . th sport @nat4 drop',
      '    meta protocol ip meta l4proto { tcp, udp } ip saddr . meta l4proto @nat4_any drop',
      `    meta protocol ip ip saddr @natip4 icmp type ${ICMP4_ERRORS} drop`,
      '    meta protocol ip6 ip6 daddr @local6 return',
      '    meta protocol ip6 meta l4proto { tcp, udp } ip6 saddr . meta l4proto . th sport @nat6 drop',
      '    meta protocol ip6 meta l4proto { tcp, udp } ip6 saddr . meta l4proto @nat6_any drop',
      `    meta protocol ip6 ip6 saddr @natip6 icmpv6 type ${ICMP6_ERRORS} drop`,
      '  }',
    );
    devices.forEach((d, i) => {
      lines.push(`  chain in${i} {`, `    comment "ingress of ${d}"`, `    type filter hook ingress device "${d}" priority -500; policy accept;`, '    jump owned', '  }');
    });
    lines.push('}', '');
    return lines.join('\n');
  }

  private nftRead(args: string[]): string {
    const [program, argv] = this.netns ? ['ip', ['netns', 'exec', this.netns, 'nft', ...args]] : ['nft', args];
    return execFileSync(program, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  private nft(script: string): void {
    const [program, args] = this.netns ? ['ip', ['netns', 'exec', this.netns, 'nft', '-f', '-']] : ['nft', ['-f', '-']];
    try {
      execFileSync(program, args, { input: script, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (cause) {
      const e = cause as { stderr?: string; status?: number };
      throw new LvsError('LVS_HOST', `nft${this.netns ? ` (namespace ${this.netns})` : ''}: exit ${e.status ?? '?'}: ${(e.stderr ?? String(cause)).trim()}`, { cause });
    }
  }
}
