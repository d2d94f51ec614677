import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isLvsError } from '../../src/errors.js';
import {
  LVSD_PACKET_LENGTH, PIRANHA_MAGIC, ReplayGuard, decode, decodeLvsd, decodePiranha, encodeLvsd, encodePiranha,
  readKeyFile, type EncodeFields, type LvsdHeartbeat,
} from '../../src/ha/heartbeat-wire.js';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const NOW = 1_800_000_000_000;

function fields(over: Partial<EncodeFields> = {}): EncodeFields {
  return {
    state: 'running', isPrimary: true, preempt: false, priority: 150, nodeId: 0x01020304,
    bootId: Buffer.from('a1a2a3a4a5a6a7a8', 'hex'), sequence: 42n, timestamp: NOW,
    serialNo: 17, configDigest: Buffer.alloc(16, 0x5a), ...over,
  };
}

function decodeOk(buf: Buffer, key = KEY): LvsdHeartbeat {
  const d = decodeLvsd(buf, key);
  if (!d.ok || d.format !== 'lvsd') throw new Error(`expected a packet, got ${JSON.stringify(d)}`);
  return d.packet;
}

describe('Piranha format', () => {
  it('encodes RUNNING and STOPPED as 4-byte little-endian magics (pulse on x86)', () => {
    expect(encodePiranha('running')).toEqual(Buffer.from([0xda, 0xdb, 0xad, 0xbd]));
    expect(encodePiranha('stopped')).toEqual(Buffer.from([0xbd, 0xda, 0xbd, 0xad]));
  });

  it('decodes RUNNING and STOPPED, and reports FOS and HOLD magics as foreign without acting', () => {
    expect(decodePiranha(encodePiranha('running'))).toEqual({ ok: true, format: 'piranha', state: 'running' });
    expect(decodePiranha(encodePiranha('stopped'))).toEqual({ ok: true, format: 'piranha', state: 'stopped' });
    for (const name of ['fos-running', 'fos-stopped', 'fos-stop-me', 'hold', 'held'] as const) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(PIRANHA_MAGIC[name]);
      const d = decodePiranha(b);
      expect(d).toMatchObject({ ok: false, reason: 'foreign-magic', magic: name });
    }
  });

  it('refuses other lengths ("bad heartbeat packet") and unknown magics ("Incompatible heartbeat")', () => {
    for (const n of [0, 1, 3, 5, 8, 88]) {
      const d = decodePiranha(Buffer.alloc(n, 0xda));
      expect(d).toMatchObject({ ok: false, reason: 'bad-length' });
      if (!d.ok) expect(d.detail).toContain('bad heartbeat packet');
    }
    // Big-endian RUNNING is not RUNNING on the wire.
    const be = Buffer.alloc(4);
    be.writeUInt32BE(PIRANHA_MAGIC.running);
    const d = decodePiranha(be);
    expect(d).toMatchObject({ ok: false, reason: 'bad-magic' });
    if (!d.ok) expect(d.detail).toContain('Incompatible heartbeat received');
  });
});

describe('lvsd format', () => {
  it('round-trips every field in an 88-byte packet with the documented layout', () => {
    const b = encodeLvsd(fields(), KEY);
    expect(b.length).toBe(LVSD_PACKET_LENGTH);
    expect(b.subarray(0, 4).toString('latin1')).toBe('LVSD');
    expect(b[4]).toBe(1); // version
    expect(b[5]).toBe(0x01); // flags: primary
    expect(b[6]).toBe(1); // state RUNNING
    expect(b[7]).toBe(150); // priority
    expect(b.readUInt32BE(8)).toBe(0x01020304);
    expect(b.subarray(12, 20).toString('hex')).toBe('a1a2a3a4a5a6a7a8');
    expect(b.readBigUInt64BE(20)).toBe(42n);
    expect(b.readBigUInt64BE(28)).toBe(BigInt(NOW));
    expect(b.readUInt32BE(36)).toBe(17);
    expect(b.subarray(40, 56)).toEqual(Buffer.alloc(16, 0x5a));
    const p = decodeOk(b);
    expect(p).toEqual({
      state: 'running', flags: 1, isPrimary: true, path: 'public', priority: 150, nodeId: 0x01020304, bootId: 'a1a2a3a4a5a6a7a8',
      sequence: 42n, timestamp: NOW, serialNo: 17, configDigest: '5a'.repeat(16),
    });
    for (const state of ['running', 'stopped', 'stop-me'] as const) expect(decodeOk(encodeLvsd(fields({ state }), KEY)).state).toBe(state);
    expect(decodeOk(encodeLvsd(fields({ isPrimary: false, preempt: true }), KEY))).toMatchObject({ isPrimary: false, flags: 2 });
    expect(decodeOk(encodeLvsd(fields({ path: 'private' }), KEY))).toMatchObject({ path: 'private', flags: 5 });
    expect(decodeOk(encodeLvsd(fields({ sequence: 0xffffffffffffffffn }), KEY)).sequence).toBe(0xffffffffffffffffn);
  });

  it('refuses a packet with any single bit changed', () => {
    const good = encodeLvsd(fields(), KEY);
    for (let i = 0; i < good.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const b = Buffer.from(good);
        b[i] ^= 1 << bit;
        const d = decodeLvsd(b, KEY);
        expect(d.ok, `byte ${i} bit ${bit}`).toBe(false);
        if (!d.ok) {
          const expected = i < 4 ? 'bad-magic' : i === 4 ? 'unknown-version' : 'bad-mac';
          expect(d.reason, `byte ${i} bit ${bit}`).toBe(expected);
        }
      }
    }
  });

  it('refuses a wrong key, a truncated or padded packet, a bare Piranha magic and an unknown version', () => {
    const good = encodeLvsd(fields(), KEY);
    expect(decodeLvsd(good, Buffer.from('another key of 32 bytes.........'))).toMatchObject({ ok: false, reason: 'bad-mac' });
    expect(decodeLvsd(good.subarray(0, 87), KEY)).toMatchObject({ ok: false, reason: 'bad-length' });
    expect(decodeLvsd(Buffer.concat([good, Buffer.alloc(1)]), KEY)).toMatchObject({ ok: false, reason: 'bad-length' });
    expect(decodeLvsd(encodePiranha('running'), KEY)).toMatchObject({ ok: false, reason: 'unauthenticated' });
    const v2 = Buffer.from(good);
    v2[4] = 2;
    expect(decodeLvsd(v2, KEY)).toMatchObject({ ok: false, reason: 'unknown-version' });
  });

  it('refuses a packet from an unexpected source before looking at it', () => {
    const good = encodeLvsd(fields(), KEY);
    expect(decode(good, { mode: 'lvsd', key: KEY, from: '198.18.0.9', allowedSources: ['198.18.0.1'] })).toMatchObject({ ok: false, reason: 'unexpected-source' });
    expect(decode(good, { mode: 'lvsd', key: KEY, from: '198.18.0.1', allowedSources: ['198.18.0.1'] })).toMatchObject({ ok: true });
    expect(decode(encodePiranha('stopped'), { mode: 'piranha', from: '198.18.0.1', allowedSources: ['198.18.0.1'] })).toMatchObject({ ok: true, state: 'stopped' });
  });

  it('rejects encode fields out of range with LVS_INVALID_ARGUMENT', () => {
    for (const bad of [{ priority: 256 }, { nodeId: -1 }, { bootId: Buffer.alloc(7) }, { sequence: -1n }, { configDigest: Buffer.alloc(32) }, { serialNo: 1.5 }]) {
      expect(() => encodeLvsd(fields(bad as Partial<EncodeFields>), KEY)).toThrowError(expect.objectContaining({ code: 'LVS_INVALID_ARGUMENT' }));
    }
  });

  it('never throws and never accepts random input (fuzz, 30 000 buffers)', () => {
    let seed = 0x9e3779b9;
    const rnd = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 0x100000000; };
    const good = encodeLvsd(fields(), KEY);
    let piranhaOk = 0;
    for (let i = 0; i < 30_000; i++) {
      const kind = i % 3;
      const len = kind === 0 ? Math.floor(rnd() * 200) : kind === 1 ? LVSD_PACKET_LENGTH : 4;
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = Math.floor(rnd() * 256);
      if (kind === 1) good.copy(b, 0, 0, 5 + Math.floor(rnd() * 40)); // a valid header, random rest
      const l = decode(b, { mode: 'lvsd', key: KEY });
      expect(l.ok).toBe(false);
      const p = decode(b, { mode: 'piranha' });
      if (p.ok) piranhaOk++;
      expect(typeof (p.ok ? p.format : p.reason)).toBe('string');
    }
    // Only an exact RUNNING/STOPPED magic is accepted: vanishingly rare at random.
    expect(piranhaOk).toBeLessThan(3);
  });
});

describe('ReplayGuard', () => {
  const pkt = (over: Partial<LvsdHeartbeat> = {}): LvsdHeartbeat => decodeOk(encodeLvsd(fields({
    path: over.path ?? 'public', sequence: over.sequence ?? 1n, timestamp: over.timestamp ?? NOW, nodeId: over.nodeId ?? 7,
    bootId: Buffer.from(over.bootId ?? '0000000000000001', 'hex'),
  }), KEY));

  it('accepts rising sequences and refuses duplicates and older ones with a reason', () => {
    const g = new ReplayGuard({ ownNodeId: 1 });
    expect(g.check(pkt({ sequence: 5n }), NOW)).toEqual({ ok: true });
    expect(g.check(pkt({ sequence: 6n }), NOW)).toEqual({ ok: true });
    expect(g.check(pkt({ sequence: 6n }), NOW)).toMatchObject({ ok: false, reason: 'replay' });
    expect(g.check(pkt({ sequence: 2n }), NOW)).toMatchObject({ ok: false, reason: 'replay' });
    expect(g.check(pkt({ sequence: 9n }), NOW)).toEqual({ ok: true });
    // Within one boot the timestamp does not matter (clocks may step); the sequence does.
    expect(g.check(pkt({ sequence: 10n, timestamp: NOW - 3_600_000 }), NOW)).toEqual({ ok: true });
  });

  it('accepts a restarted peer (new boot id, fresh sequence) only within the timestamp window', () => {
    const g = new ReplayGuard({ windowMs: 30_000 });
    expect(g.check(pkt({ sequence: 1000n, bootId: '00000000000000aa' }), NOW)).toEqual({ ok: true });
    // A new boot whose clock is 31 s off: refused as stale.
    expect(g.check(pkt({ sequence: 1n, bootId: '00000000000000bb', timestamp: NOW - 31_000 }), NOW)).toMatchObject({ ok: false, reason: 'stale' });
    expect(g.check(pkt({ sequence: 1n, bootId: '00000000000000bb', timestamp: NOW + 31_000 }), NOW)).toMatchObject({ ok: false, reason: 'stale' });
    // Within 30 s: accepted, with its own fresh sequence.
    expect(g.check(pkt({ sequence: 1n, bootId: '00000000000000bb', timestamp: NOW + 29_000 }), NOW)).toEqual({ ok: true });
    expect(g.check(pkt({ sequence: 2n, bootId: '00000000000000bb' }), NOW)).toEqual({ ok: true });
    expect(g.check(pkt({ sequence: 2n, bootId: '00000000000000bb' }), NOW)).toMatchObject({ ok: false, reason: 'replay' });
    // The earlier boot's packets, even with a higher sequence and a fresh timestamp, are replays.
    expect(g.check(pkt({ sequence: 1001n, bootId: '00000000000000aa' }), NOW)).toMatchObject({ ok: false, reason: 'replay' });
  });

  it('keeps the public and private paths apart (the path bit is under the MAC)', () => {
    const g = new ReplayGuard();
    expect(g.check(pkt({ sequence: 2n, path: 'public' }), NOW)).toEqual({ ok: true });
    expect(g.check(pkt({ sequence: 1n, path: 'private' }), NOW)).toEqual({ ok: true });
    expect(g.check(pkt({ sequence: 1n, path: 'private' }), NOW)).toMatchObject({ ok: false, reason: 'replay' });
    expect(g.check(pkt({ sequence: 4n, path: 'private' }), NOW)).toEqual({ ok: true });
    expect(g.check(pkt({ sequence: 3n, path: 'public' }), NOW)).toEqual({ ok: true });
  });

  it('refuses the first packet of an unknown peer outside the window, and our own node id', () => {
    const g = new ReplayGuard({ ownNodeId: 7 });
    expect(g.check(pkt({ nodeId: 8, timestamp: NOW - 3_600_000 }), NOW)).toMatchObject({ ok: false, reason: 'stale' });
    expect(g.check(pkt({ nodeId: 7 }), NOW)).toMatchObject({ ok: false, reason: 'reflected' });
  });
});

describe('readKeyFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-hakey-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string, mode: number) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    chmodSync(p, mode);
    return p;
  };

  it('reads a 0600 key without its trailing newline', () => {
    const p = file('good', 'c2VjcmV0IGtleSBvZiBhIGdvb2QgbGVuZ3RoIQ==\n', 0o600);
    expect(readKeyFile(p).toString()).toBe('c2VjcmV0IGtleSBvZiBhIGdvb2QgbGVuZ3RoIQ==');
    expect(readKeyFile(file('ro', 'a sixteen byte key', 0o400)).length).toBe(18);
  });

  it('refuses a key readable by group or other, as ssh does', () => {
    for (const mode of [0o640, 0o604, 0o644, 0o660, 0o602]) {
      const p = file(`m${mode.toString(8)}`, 'a long enough secret key', mode);
      let err: unknown;
      try { readKeyFile(p); } catch (e) { err = e; }
      expect(isLvsError(err, 'LVS_INVALID_OPTION'), mode.toString(8)).toBe(true);
      expect((err as Error).message).toContain('chmod 600');
    }
  });

  it('refuses a short key and reports a missing file with LVS_CONFIG_IO', () => {
    expect(() => readKeyFile(file('short', 'tiny\n', 0o600))).toThrowError(expect.objectContaining({ code: 'LVS_INVALID_OPTION' }));
    expect(() => readKeyFile(join(dir, 'absent'))).toThrowError(expect.objectContaining({ code: 'LVS_CONFIG_IO' }));
  });
});
