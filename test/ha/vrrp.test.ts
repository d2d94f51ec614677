/**
 * The VRRP state machine (RFC 5798 6.4) with time stepped by the test: the instance sends and
 * receives through a recording transport here; the raw socket itself is exercised against
 * keepalived in vrrp-keepalived.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Vrrp, type VrrpOptions, type VrrpPacket, type VrrpRejectedEvent } from '../../src/ha/vrrp.js';
import { VRRP_GROUP4, decodeAdvert, encodeAdvert, type VrrpAdvert } from '../../src/ha/vrrp-wire.js';
import { parseAddress } from '../../src/net/address.js';
import { ManualClock } from '../helpers/clock.js';


const OURS = '198.18.0.10';
const VIP = '198.18.0.100';

interface Rig {
  v: Vrrp;
  clock: ManualClock;
  /** Adverts we sent, decoded, with the time they left. */
  sent: (VrrpAdvert & { at: number })[];
  events: string[];
  rejected: VrrpRejectedEvent[];
  warnings: object[];
  closed: boolean;
  /** An advert from `from` arrives now. */
  hear(from: string, a: Partial<VrrpAdvert>, over?: Partial<VrrpPacket>): void;
}

async function rig(o: Partial<VrrpOptions> = {}): Promise<Rig> {
  const clock = new ManualClock();
  const r: Rig = {
    v: undefined as unknown as Vrrp, clock, sent: [], events: [], rejected: [], warnings: [], closed: false,
    hear(from, a, over = {}) {
      const advert = { vrid: 7, priority: 100, intervalCs: 100, addresses: [VIP], ...a };
      const payload = encodeAdvert(advert, { family: 4, source: from });
      r.v.receive({ source: parseAddress(from).bytes, destination: parseAddress(VRRP_GROUP4).bytes, ttl: 255, payload, ...over });
    },
  };
  const logger = { info() {}, debug() {}, warn(obj: object) { r.warnings.push(obj); } };
  r.v = new Vrrp({
    interface: 'pub', family: 4, vrid: 7, priority: 100, advertIntervalMs: 1000, addresses: [VIP], sourceAddress: OURS,
    logger, clock, ...o,
    transport: () => ({
      send(payload, source) {
        const d = decodeAdvert(payload, { family: 4, source: source!, destination: VRRP_GROUP4 });
        if (!d.ok) throw new Error(`we sent a bad advert: ${d.detail}`);
        r.sent.push({ ...d.advert, at: clock.t });
      },
      close() { r.closed = true; },
    }),
  });
  for (const e of ['master', 'backup', 'stopped'] as const) r.v.on(e, () => r.events.push(e));
  r.v.on('rejected', (e: VrrpRejectedEvent) => r.rejected.push(e));
  await r.v.start();
  return r;
}

// Priority 100, 1000 ms: Skew_Time = (256 - 100) * 1000 / 256 = 609.375 ms,
// Master_Down_Interval = 3 * 1000 + 609.375 = 3609.375 ms.
const SKEW = 609.375;
const DOWN = 3609.375;

describe('VRRP state machine: startup and master down', () => {
  it('starts as backup and becomes master after Master_Down_Interval of silence', async () => {
    const r = await rig();
    expect(r.v.state).toBe('backup');
    expect(r.events).toEqual(['backup']);
    expect(r.v.skewTimeMs).toBe(SKEW);
    expect(r.v.masterDownIntervalMs).toBe(DOWN);
    r.clock.advance(DOWN - 1);
    expect(r.v.state).toBe('backup');
    expect(r.sent).toEqual([]);
    r.clock.advance(1);
    expect(r.v.state).toBe('master');
    expect(r.events).toEqual(['backup', 'master']);
    // The first advert at once, then one every Advertisement_Interval.
    r.clock.advance(3000);
    expect(r.sent.map((s) => s.at)).toEqual([DOWN, DOWN + 1000, DOWN + 2000, DOWN + 3000]);
    expect(r.sent[0]).toMatchObject({ vrid: 7, priority: 100, intervalCs: 100, addresses: [VIP] });
  });

  it('an address owner (priority 255) is master at once and discards other routers\' adverts', async () => {
    const r = await rig({ priority: 255 });
    expect(r.v.state).toBe('master');
    expect(r.sent).toHaveLength(1);
    expect(r.sent[0]!.priority).toBe(255);
    r.hear('198.18.0.20', { priority: 254 });
    expect(r.v.state).toBe('master');
    expect(r.v.stats.rejected).toEqual({ owner: 1 });
  });

  it('a master\'s adverts keep a backup a backup; it learns the master\'s interval', async () => {
    const r = await rig();
    // The master advertises every 2 s (200 cs): Master_Down_Interval = 6000 + 156*2000/256.
    for (let i = 0; i < 10; i++) {
      r.hear('198.18.0.20', { priority: 150, intervalCs: 200 });
      r.clock.advance(2000);
    }
    expect(r.v.state).toBe('backup');
    expect(r.v.master).toBe('198.18.0.20');
    expect(r.v.masterAdverInterval).toBe(2000);
    expect(r.v.masterDownIntervalMs).toBe(6000 + 1218.75);
    // Silence: master after the learned interval (measured from the last advert, 2 s ago).
    r.clock.advance(6000 + 1218.75 - 2000 - 1);
    expect(r.v.state).toBe('backup');
    r.clock.advance(1);
    expect(r.v.state).toBe('master');
    // As master we advertise our own interval again.
    expect(r.v.masterAdverInterval).toBe(1000);
    expect(r.sent.at(-1)!.intervalCs).toBe(100);
  });
});

describe('VRRP state machine: preemption', () => {
  it('preempt on: a backup ignores a lower-priority master and takes over', async () => {
    const r = await rig({ priority: 100, preempt: true });
    for (let i = 0; i < 4; i++) {
      r.hear('198.18.0.20', { priority: 50 });
      r.clock.advance(1000);
    }
    // Master_Down_Timer ran out although adverts kept coming.
    expect(r.v.state).toBe('master');
    expect(r.v.stats.rejected).toEqual({});
    // The old master's adverts now do nothing to us (lower priority).
    r.hear('198.18.0.20', { priority: 50 });
    expect(r.v.state).toBe('master');
  });

  it('preempt off: a backup stays behind a lower-priority master', async () => {
    const r = await rig({ priority: 100, preempt: false });
    for (let i = 0; i < 20; i++) {
      r.hear('198.18.0.20', { priority: 50 });
      r.clock.advance(1000);
    }
    expect(r.v.state).toBe('backup');
    expect(r.sent).toEqual([]);
  });

  it('a master steps down for a higher priority and keeps a lower one out', async () => {
    const r = await rig();
    r.clock.advance(DOWN);
    expect(r.v.state).toBe('master');
    r.hear('198.18.0.20', { priority: 99 });
    expect(r.v.state).toBe('master');
    const sentBefore = r.sent.length;
    r.hear('198.18.0.20', { priority: 101 });
    expect(r.v.state).toBe('backup');
    expect(r.events).toEqual(['backup', 'master', 'backup']);
    // No more adverts from us.
    r.clock.advance(3000);
    expect(r.sent.length).toBe(sentBefore);
  });
});

describe('VRRP state machine: ties on equal priority', () => {
  it('the higher primary address wins: a master with the lower address steps down', async () => {
    const r = await rig();
    r.clock.advance(DOWN);
    r.hear('198.18.0.9', { priority: 100 }); // lower address than ours (198.18.0.10)
    expect(r.v.state).toBe('master');
    r.hear('198.18.0.11', { priority: 100 }); // higher
    expect(r.v.state).toBe('backup');
    expect(r.v.master).toBe('198.18.0.11');
  });

  it('compares addresses as numbers, not as text', async () => {
    const r = await rig({ sourceAddress: '198.18.0.9' });
    r.clock.advance(DOWN);
    r.hear('198.18.0.10', { priority: 100 }); // "198.18.0.10" < "198.18.0.9" as text, > as a number
    expect(r.v.state).toBe('backup');
  });

  it('a backup accepts a master of equal priority', async () => {
    const r = await rig();
    for (let i = 0; i < 10; i++) {
      r.hear('198.18.0.2', { priority: 100 });
      r.clock.advance(1000);
    }
    expect(r.v.state).toBe('backup');
  });
});

describe('VRRP state machine: priority 0', () => {
  it('a backup takes over Skew_Time after the master says it is leaving', async () => {
    const r = await rig();
    r.hear('198.18.0.20', { priority: 200 });
    r.clock.advance(500);
    r.hear('198.18.0.20', { priority: 0 });
    r.clock.advance(SKEW - 1);
    expect(r.v.state).toBe('backup');
    r.clock.advance(1);
    expect(r.v.state).toBe('master');
    expect(r.sent[0]!.at).toBe(500 + SKEW);
  });

  it('a master answers a priority 0 advert with an advert at once', async () => {
    const r = await rig();
    r.clock.advance(DOWN + 300);
    const n = r.sent.length;
    r.hear('198.18.0.20', { priority: 0 });
    expect(r.sent.length).toBe(n + 1);
    expect(r.sent.at(-1)!.at).toBe(DOWN + 300);
    expect(r.v.state).toBe('master');
    // The Adver_Timer restarted from that advert.
    r.clock.advance(999);
    expect(r.sent.length).toBe(n + 1);
    r.clock.advance(1);
    expect(r.sent.length).toBe(n + 2);
  });

  it('stop() while master sends one priority 0 advert and closes the socket', async () => {
    const r = await rig();
    r.clock.advance(DOWN);
    await r.v.stop();
    expect(r.sent.at(-1)).toMatchObject({ priority: 0, vrid: 7, addresses: [VIP] });
    expect(r.v.state).toBe('initialize');
    expect(r.closed).toBe(true);
    expect(r.events.at(-1)).toBe('stopped');
    const n = r.sent.length;
    r.clock.advance(10_000);
    expect(r.sent.length).toBe(n);
  });

  it('stop() while backup sends nothing', async () => {
    const r = await rig();
    await r.v.stop();
    expect(r.sent).toEqual([]);
    r.clock.advance(10_000);
    expect(r.v.state).toBe('initialize');
    expect(r.sent).toEqual([]);
  });
});

describe('VRRP receive checks (RFC 5798 7.1)', () => {
  it('discards, counts and logs (rate-limited) what fails a check; discards do not hold a backup', async () => {
    const r = await rig();
    const M = '198.18.0.20';
    for (let i = 0; i < 4; i++) {
      r.hear(M, { priority: 200 }, { ttl: 64 });                    // from another link
      r.hear(M, { priority: 200, vrid: 8 });                        // another virtual router
      r.hear(M, { priority: 200 }, { truncated: true });
      const bad = encodeAdvert({ vrid: 7, priority: 200, intervalCs: 100, addresses: [VIP] }, { family: 4, source: '198.18.0.99' });
      r.v.receive({ source: parseAddress(M).bytes, destination: parseAddress(VRRP_GROUP4).bytes, ttl: 255, payload: bad }); // checksum
      r.v.receive({ source: parseAddress(M).bytes, destination: parseAddress(VRRP_GROUP4).bytes, ttl: 255, payload: Uint8Array.from([0x21, 7, 200, 1, 1, 1, 0, 0, 198, 18, 0, 100]) }); // VRRPv2
      r.v.receive({ source: parseAddress(M).bytes, destination: parseAddress(VRRP_GROUP4).bytes, ttl: 255, payload: new Uint8Array(3) });
      r.hear(OURS, { priority: 200 });                               // our own
      r.clock.advance(1000);
    }
    expect(r.v.stats.rejected).toEqual({ ttl: 4, vrid: 4, truncated: 4, checksum: 4, version: 4, short: 4, own: 4 });
    expect(r.v.stats.received).toBe(28);
    expect(r.rejected).toHaveLength(28);
    expect(r.rejected[0]).toMatchObject({ reason: 'ttl', from: M });
    // One log line per source and reason within the interval.
    expect(r.warnings.filter((w) => (w as { event: string }).event === 'vrrp-rejected')).toHaveLength(7);
    // None of them reset the Master_Down_Timer: we took over.
    expect(r.v.state).toBe('master');
  });

  it('logs a different address list but uses the advert', async () => {
    const r = await rig();
    for (let i = 0; i < 10; i++) {
      r.hear('198.18.0.20', { priority: 200, addresses: [VIP, '198.18.0.101'] });
      r.clock.advance(1000);
    }
    expect(r.v.state).toBe('backup');
    expect(r.v.stats.addressMismatches).toBe(10);
    expect(r.v.stats.rejected).toEqual({});
    const lines = r.warnings.filter((w) => (w as { event: string }).event === 'vrrp-address-mismatch');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ from: '198.18.0.20', theirs: [VIP, '198.18.0.101'], ours: [VIP] });
  });

  it('validates its options with coded errors', () => {
    const base: VrrpOptions = { interface: 'pub', family: 4, vrid: 7, priority: 100, advertIntervalMs: 1000, preempt: true, addresses: [VIP] };
    expect(() => new Vrrp({ ...base, vrid: 0 })).toThrow(expect.objectContaining({ code: 'LVS_INVALID_OPTION', field: 'vrid' }));
    expect(() => new Vrrp({ ...base, priority: 0 })).toThrow(expect.objectContaining({ code: 'LVS_INVALID_OPTION', field: 'priority' }));
    expect(() => new Vrrp({ ...base, advertIntervalMs: 1005 })).toThrow(expect.objectContaining({ code: 'LVS_INVALID_OPTION', field: 'advertIntervalMs' }));
    expect(() => new Vrrp({ ...base, advertIntervalMs: 41_000 })).toThrow(expect.objectContaining({ code: 'LVS_INVALID_OPTION' }));
    expect(() => new Vrrp({ ...base, addresses: ['2001:db8::1'] })).toThrow(expect.objectContaining({ code: 'LVS_FAMILY_MISMATCH' }));
    expect(() => new Vrrp({ ...base, addresses: [] })).toThrow(expect.objectContaining({ code: 'LVS_INVALID_OPTION' }));
  });
});
