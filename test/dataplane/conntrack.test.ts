import { describe, expect, it } from 'vitest';
import { MACS, packet } from '../../src/lab/frames.js';
import { CLIENT4, INSIDE, REALS4, VIP4, manualDataplane, tcpService, through, udpService, withService } from '../helpers/setup.js';
import type { Dataplane } from '../../src/index.js';
import { formatConnections } from '../../src/cli/format.js';

const t0 = 1_000_000;

function client(flags: string, sport = 40000) {
  return packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport, dport: 80, flags });
}
function real(flags: string, clientPort = 40000, from = REALS4[0]!) {
  return packet({ src: from, dst: CLIENT4, proto: 'tcp', sport: 8080, dport: clientPort, flags, srcMac: MACS.real1, dstMac: MACS.inside });
}
async function state(dp: Dataplane): Promise<string[]> {
  return (await dp.listConnections()).map((c) => c.state);
}
function counts(dp: Dataplane) {
  const r = dp.listServices()[0]!.reals[0]!;
  return [r.activeConnections, r.inactiveConnections];
}

describe('the IPVS TCP state machine', () => {
  it('follows a NAT connection through both directions, counting it active while established', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'nat', 1, 8080);
    const steps: Array<[Buffer, number, string, number[]]> = [
      [client('S'), 0, 'SYN_RECV', [1, 0]],
      [real('SA'), INSIDE, 'SYN_RECV', [1, 0]],
      [client('A'), 0, 'ESTABLISHED', [1, 0]],
      [client('FA'), 0, 'CLOSE_WAIT', [0, 1]],
      [real('A'), INSIDE, 'CLOSE_WAIT', [0, 1]],
      [real('FA'), INSIDE, 'TIME_WAIT', [0, 1]],
      [client('A'), 0, 'TIME_WAIT', [0, 1]],
    ];
    for (const [frame, iface, expected, c] of steps) {
      const out = await through(dp, [frame], iface);
      expect(out.map((o) => o.action)).toEqual(['tx']);
      expect(await state(dp)).toEqual([expected]);
      expect(counts(dp)).toEqual(c);
    }
  });

  it('uses the input-only table for direct routing (no replies through the director)', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'direct');
    const seq: Array<[string, string]> = [['S', 'SYN_RECV'], ['A', 'ESTABLISHED'], ['FA', 'FIN_WAIT'], ['A', 'FIN_WAIT'], ['R', 'CLOSE']];
    for (const [flags, expected] of seq) {
      await through(dp, [client(flags)]);
      expect(await state(dp)).toEqual([expected]);
    }
  });

  it('expires entries by their state timeout on the dataplane clock, releasing the counts', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'nat', 1, 8080);
    await through(dp, [client('S'), client('A')]);
    const [c] = await dp.listConnections();
    expect(c).toMatchObject({ state: 'ESTABLISHED', expiresIn: 900_000 });
    dp.setClock(t0 + 899_000);
    dp.poll();
    expect(await dp.listConnections()).toHaveLength(1);
    dp.setClock(t0 + 900_001);
    dp.poll();
    expect(await dp.listConnections()).toHaveLength(0);
    expect(counts(dp)).toEqual([0, 0]);
    expect(dp.counters()).toMatchObject({ conn_expired: 1, conn_count: 0 });
    // A late ACK of the expired connection is not scheduled again: the kernel gets it (RST).
    const [late] = await through(dp, [client('A')]);
    expect(late!.action).toBe('pass');
    expect(dp.counters().pass_no_conn).toBe(1);
  });

  it('applies ipvsadm --set timeouts (0 = unchanged) to later packets', async () => {
    const dp = manualDataplane();
    withService(dp, udpService(), 'nat', 1);
    expect(dp.getTimeouts()).toEqual({ tcp: 900, tcpfin: 120, udp: 300 });
    dp.setTimeouts({ tcp: 0, tcpfin: 30, udp: 10 });
    expect(dp.getTimeouts()).toEqual({ tcp: 900, tcpfin: 30, udp: 10 });
    await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 5000, dport: 53 })]);
    const [c] = await dp.listConnections();
    expect(c).toMatchObject({ protocol: 'UDP', state: 'UDP', expiresIn: 10_000 });
    expect(counts(dp)).toEqual([0, 1]); // UDP entries are always InActConn, as in IPVS
    dp.setClock(t0 + 10_001);
    dp.poll();
    expect(await dp.listConnections()).toEqual([]);
  });

  it('reschedules a new SYN that reuses the port of a connection in TIME_WAIT (conn_reuse_mode 1)', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'nat', 2, 8080);
    const first = await through(dp, [client('S')]);
    await through(dp, [client('A'), client('FA')]);
    await through(dp, [real('FA', 40000, first[0]!.dst)], INSIDE);
    await through(dp, [client('A')]);
    expect(await state(dp)).toEqual(['TIME_WAIT']);
    const again = await through(dp, [client('S')]);
    expect(dp.counters().conn_reused).toBe(1);
    expect(again[0]!.dst).not.toBe(first[0]!.dst); // round-robin moved on
  });
});

describe('a full connection table', () => {
  it('evicts the oldest embryonic (SYN) entries first and never established ones', async () => {
    const dp = manualDataplane({ connectionCapacity: 8 });
    withService(dp, tcpService(), 'direct');
    // 4 established connections, then SYNs from a "flood".
    for (let i = 0; i < 4; i++) await through(dp, [client('S', 1000 + i), client('A', 1000 + i)]);
    for (let i = 0; i < 10; i++) await through(dp, [client('S', 2000 + i)]);
    const conns = await dp.listConnections();
    expect(conns).toHaveLength(8);
    const ports = conns.map((c) => c.client.port).sort((a, b) => a - b);
    expect(ports).toEqual([1000, 1001, 1002, 1003, 2006, 2007, 2008, 2009]);
    expect(dp.counters().conn_evicted).toBe(6);
    // The established flows still pass.
    expect((await through(dp, [client('A', 1002)]))[0]!.action).toBe('tx');
  });

  it('refuses a new connection rather than evict an established one', async () => {
    const dp = manualDataplane({ connectionCapacity: 4 });
    withService(dp, tcpService(), 'direct');
    for (let i = 0; i < 4; i++) await through(dp, [client('S', 1000 + i), client('A', 1000 + i)]);
    expect(await through(dp, [client('S', 3000)])).toEqual([]);
    expect(dp.counters()).toMatchObject({ drop_table_full: 1, conn_evicted: 0 });
    expect(await dp.listConnections()).toHaveLength(4);
  });

  it('reclaims expired entries before evicting live ones', async () => {
    const dp = manualDataplane({ connectionCapacity: 4 });
    withService(dp, tcpService(), 'direct');
    for (let i = 0; i < 4; i++) await through(dp, [client('S', 1000 + i)]);
    dp.setClock(t0 + 61_000); // SYN_RECV lasts 60 s; no poll in between, so nothing was swept yet
    await through(dp, [client('S', 5000)]);
    expect(dp.counters()).toMatchObject({ conn_evicted: 0, drop_table_full: 0 });
  });
});

describe('listing connections', () => {
  it('renders the dataplane\'s entries exactly as ipvsadm -L -n -c does', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'nat', 1, 8080);
    withService(dp, udpService(), 'tunnel', 1);
    await through(dp, [client('S'), client('A'), packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 3311, dport: 53 })]);
    dp.setClock(t0 + 1_600);
    const text = formatConnections((await dp.listConnections()).sort((a, b) => a.protocol.localeCompare(b.protocol)));
    expect(text).toBe(
      'IPVS connection entries\n' +
        'pro expire state       source             virtual            destination\n' +
        'TCP 14:58  ESTABLISHED 198.18.5.5:40000   198.18.0.10:80     198.19.0.11:8080\n' +
        'UDP 04:58  UDP         198.18.5.5:3311    198.18.0.10:53     198.19.0.11:53\n',
    );
  });
});
