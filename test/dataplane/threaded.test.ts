import { afterEach, describe, expect, it } from 'vitest';
import { Dataplane } from '../../src/index.js';
import { MACS, decode, packet } from '../../src/lab/frames.js';
import { CLIENT4, INSIDE, OUTSIDE, REALS4, VIP4 } from '../helpers/setup.js';

const open: Dataplane[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

function threaded(workers = 2, extra = {}) {
  const dp = new Dataplane({ workers, ...extra });
  open.push(dp);
  dp.setInterface({ id: OUTSIDE, mac: MACS.outside, ipv4: '198.18.0.1' });
  dp.setInterface({ id: INSIDE, mac: MACS.inside, ipv4: '198.19.0.1' });
  return dp;
}

describe('threaded mode: native worker threads, rings and coalesced wake-ups', () => {
  it('applies configuration, forwards on every worker and lists connections from all of them', async () => {
    const dp = threaded(2);
    const svc = { protocol: 'tcp' as const, address: VIP4, port: 80 };
    dp.addService(svc);
    dp.addReal(svc, { address: REALS4[0]!, port: 8080, method: 'nat', interface: INSIDE, mac: MACS.real1 });
    await dp.settled();
    for (const worker of [0, 1]) {
      const frames = Array.from({ length: 300 }, (_, i) => ({ iface: OUTSIDE, data: packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 10000 + worker * 1000 + i, dport: 80, flags: 'S' }) }));
      const out = await dp.memory.process(frames, worker);
      expect(out).toHaveLength(300);
      for (const o of out) expect(decode(o.data)).toMatchObject({ dst: REALS4[0], dport: 8080, l4ChecksumOk: true });
    }
    const conns = await dp.listConnections();
    expect(conns).toHaveLength(600);
    expect(new Set(conns.map((c) => c.client.port)).size).toBe(600);
    expect(dp.listServices()[0]!.reals[0]!.activeConnections).toBe(600);
    expect(dp.counters()).toMatchObject({ rx_packets: 600, tx_packets: 600, conn_created: 600 });
  });

  it('delivers events through the thread-safe wake-up', async () => {
    const dp = threaded(1);
    const svc = { protocol: 'udp' as const, address: VIP4, port: 53 };
    dp.addService(svc);
    dp.addReal(svc, { address: REALS4[1]!, port: 53, method: 'nat', interface: INSIDE });
    await dp.settled();
    const miss = new Promise((resolve) => dp.once('neighbour-miss', resolve));
    dp.memory.send([{ iface: OUTSIDE, data: packet({ src: CLIENT4, dst: VIP4, proto: 'udp', dport: 53 }) }]);
    await expect(miss).resolves.toEqual({ iface: INSIDE, address: REALS4[1] });
  });

  it('queues more commands than the ring holds and applies them all, in order', async () => {
    const dp = threaded(1, { maxReals: 8192 });
    const svc = { protocol: 'tcp' as const, address: VIP4, port: 80 };
    dp.addService(svc);
    // 6000 reals x 17 words is well past the 65536-word command ring.
    for (let i = 0; i < 6000; i++) {
      dp.addReal(svc, { address: `198.19.${i >> 8}.${i & 255}`, port: 8080, method: 'nat', interface: INSIDE, mac: MACS.real1, weight: i % 3 });
    }
    await dp.settled();
    const reals = dp.listServices()[0]!.reals;
    expect(reals).toHaveLength(6000);
    expect(reals[0]!.address).toBe('198.19.23.111'); // the last added is the head
    // The dataplane has them all: round-robin over 4000 reals with weight > 0.
    const frames = Array.from({ length: 4000 }, (_, i) => ({ iface: OUTSIDE, data: packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 1024 + i, dport: 80, flags: 'S' }) }));
    const out = await dp.memory.process(frames);
    expect(new Set(out.map((o) => decode(o.data).dst)).size).toBe(4000);
  });

  it('closes cleanly with threads idle or busy', async () => {
    const dp = threaded(2);
    dp.memory.send(Array.from({ length: 500 }, () => ({ iface: OUTSIDE, data: packet({ src: CLIENT4, dst: '198.18.9.9', proto: 'udp' }) })), 1);
    await dp.close();
    expect(dp.isClosed).toBe(true);
    await expect(dp.settled()).rejects.toMatchObject({ code: 'LVS_CLOSED' });
  });
});

describe('configuration changes under traffic', () => {
  it('swap scheduling tables while packets flow without losing or stalling any', async () => {
    const dp = threaded(1, { memorySlots: 4096 });
    const svc = { protocol: 'tcp' as const, address: VIP4, port: 80 };
    dp.addService({ ...svc, scheduler: 'mh', maglevTableSize: 65537 });
    for (let i = 0; i < 50; i++) dp.addReal(svc, { address: `198.19.3.${i + 1}`, method: 'direct', interface: INSIDE, mac: MACS.real1 });
    await dp.settled();
    let changes = 0;
    let stop = false;
    // Weight changes rebuild and push a 65537-entry Maglev table each time.
    const churn = (async () => {
      while (!stop) {
        dp.editReal(svc, { address: `198.19.3.${1 + (changes % 50)}` }, { weight: 1 + (changes % 7) });
        changes++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    // Traffic keeps flowing, in batches of new connections, until 100 changes have gone in.
    let sent = 0;
    let received = 0;
    while (changes < 100) {
      const frames = Array.from({ length: 1000 }, (_, k) => {
        const i = sent + k;
        return { iface: OUTSIDE, data: packet({ src: `198.18.${40 + (i >> 16)}.${1 + ((i >> 8) & 255) % 254}`, dst: VIP4, proto: 'tcp', sport: 1024 + (i & 0xffff) % 60000, dport: 80, flags: 'S' }) };
      });
      const out = await dp.memory.process(frames);
      expect(out.every((o) => o.action === 'tx')).toBe(true);
      sent += frames.length;
      received += out.length;
    }
    stop = true;
    await churn;
    await dp.settled();
    expect(received).toBe(sent);
    expect(dp.counters()).toMatchObject({ rx_packets: sent, tx_packets: sent, drop_no_dest: 0, drop_table_full: 0 });
    expect(dp.counters().snapshots).toBeGreaterThan(10); // the worker really picked up new tables
  });
});
