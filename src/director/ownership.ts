/**
 * Which packets belong to the dataplane, and handing that set to the kernel side of the chosen
 * backend: the XDP steering program's maps (AF_XDP), or the nftables rules that keep the
 * kernel's own copy of those packets away (AF_PACKET). One set, two consumers, so the two
 * backends can never disagree about what lvsd directs.
 *
 * The dataplane owns:
 *  - TCP/UDP to a service (VIP, protocol, port; port 0 = any port), and ICMP errors to a VIP;
 *  - TCP/UDP/ICMP errors to the destination prefixes of firewall-mark rules with a service;
 *  - replies from NAT reals (real address, protocol, source port) that are not addressed to
 *    the director itself (its health checks and heartbeats stay with the kernel).
 */
import type { NativeSteering } from '../dataplane/native.js';
import { parseAddress } from '../net/address.js';
import type { Protocol } from '../dataplane/types.js';

export interface OwnedService {
  address: string;
  protocol: Protocol;
  port: number;
}
export interface OwnedPrefix {
  address: string;
  prefixLength: number;
}
export interface Ownership {
  services: OwnedService[];
  natReals: OwnedService[];
  locals: string[];
  prefixes: OwnedPrefix[];
}

const PROTO: Record<Protocol, number> = { tcp: 6, udp: 17 };

export function emptyOwnership(): Ownership {
  return { services: [], natReals: [], locals: [], prefixes: [] };
}

type Entry = { kind: 'service' | 'natReal' | 'local' | 'prefix'; add: () => void; del: () => void };

/** Keeps the XDP steering maps equal to an Ownership, adding and removing only differences. */
export class SteeringMaps {
  private current = new Map<string, Entry>();

  constructor(private readonly steering: NativeSteering) {}

  apply(o: Ownership): void {
    const next = new Map<string, Entry>();
    const s = this.steering;
    for (const e of o.services) {
      const a = parseAddress(e.address).bytes;
      next.set(`s ${e.protocol} ${e.port} ${e.address}`, { kind: 'service', add: () => s.addService(PROTO[e.protocol], e.port, a), del: () => s.delService(PROTO[e.protocol], e.port, a) });
    }
    for (const e of o.natReals) {
      const a = parseAddress(e.address).bytes;
      next.set(`n ${e.protocol} ${e.port} ${e.address}`, { kind: 'natReal', add: () => s.addNatReal(PROTO[e.protocol], e.port, a), del: () => s.delNatReal(PROTO[e.protocol], e.port, a) });
    }
    for (const l of o.locals) {
      const a = parseAddress(l).bytes;
      next.set(`l ${l}`, { kind: 'local', add: () => s.addLocal(a), del: () => s.delLocal(a) });
    }
    for (const p of o.prefixes) {
      const a = parseAddress(p.address).bytes;
      next.set(`p ${p.address}/${p.prefixLength}`, { kind: 'prefix', add: () => s.addPrefix(a, p.prefixLength), del: () => s.delPrefix(a, p.prefixLength) });
    }
    // Locals first and removals last, so a NAT reply is never briefly misjudged.
    const order = (e: Entry) => (e.kind === 'local' ? 0 : 1);
    const added = [...next].filter(([k]) => !this.current.has(k)).sort((x, y) => order(x[1]) - order(y[1]));
    const removed = [...this.current].filter(([k]) => !next.has(k)).sort((x, y) => order(y[1]) - order(x[1]));
    for (const [k, e] of added) {
      e.add();
      this.current.set(k, e);
    }
    for (const [k, e] of removed) {
      e.del();
      this.current.delete(k);
    }
  }
}
