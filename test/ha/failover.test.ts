import { describe, expect, it } from 'vitest';
import { failoverRoles, nodeIdOf } from '../../src/ha/failover.js';
import { keyFilePath } from '../../src/daemon/daemon.js';
import { parseConfig } from '../../src/config/index.js';
import { isLvsError } from '../../src/errors.js';

const pair = { primary: '198.18.0.1', primaryPrivate: '198.18.1.1', backup: '198.18.0.3', backupPrivate: '198.18.1.3', backupActive: true };

describe('failoverRoles: which router this is', () => {
  it('the primary: its own addresses locally, the backup\'s as the partner', () => {
    expect(failoverRoles(pair, ['127.0.0.1', '198.18.0.1', '198.18.1.1'])).toEqual({
      isPrimary: true,
      local: { public: '198.18.0.1', private: '198.18.1.1' },
      partner: { public: '198.18.0.3', private: '198.18.1.3' },
    });
  });

  it('the backup, and a pair without private addresses', () => {
    expect(failoverRoles(pair, ['198.18.0.3', '198.18.1.3'])).toMatchObject({ isPrimary: false, local: { public: '198.18.0.3' }, partner: { public: '198.18.0.1' } });
    const r = failoverRoles({ primary: '2001:db8::1', backup: '2001:db8:0::3', backupActive: true }, ['2001:db8::3']);
    expect(r).toEqual({ isPrimary: false, local: { public: '2001:db8::3' }, partner: { public: '2001:db8::1' } });
  });

  it('no backup, or backup_active = 0 on the primary: no failover (the primary runs alone, as pulse)', () => {
    expect(failoverRoles({ primary: '198.18.0.1', backupActive: true }, ['198.18.0.1'])).toBeNull();
    expect(failoverRoles({ ...pair, backupActive: false }, ['198.18.0.1'])).toBeNull();
    expect(failoverRoles({ ...pair, backupActive: false }, ['198.18.0.3'])).toBe('backup-inactive');
  });

  it('a host that is neither router, both, or lacks its private address is refused with LVS_FAILOVER', () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(isLvsError(e)).toBe(true);
        return (e as { code: string; message: string }).code + ': ' + (e as Error).message;
      }
      return 'no error';
    };
    expect(codeOf(() => failoverRoles(pair, ['198.18.0.9']))).toMatch(/^LVS_FAILOVER: this host has neither the primary address 198\.18\.0\.1 nor the backup address 198\.18\.0\.3/);
    expect(codeOf(() => failoverRoles(pair, ['198.18.0.1', '198.18.0.3']))).toMatch(/^LVS_FAILOVER: this host has both/);
    expect(codeOf(() => failoverRoles(pair, ['198.18.0.1']))).toMatch(/^LVS_FAILOVER: this router's private address 198\.18\.1\.1 \(lvs\.cf primary_private\) is not on any of its interfaces/);
  });

  it('node ids: the same on both routers, different for the two of them', () => {
    expect(nodeIdOf('198.18.0.1')).toBe(nodeIdOf('198.18.0.1'));
    expect(nodeIdOf('198.18.0.1')).not.toBe(nodeIdOf('198.18.0.3'));
    expect(nodeIdOf('2001:db8:0::1')).toBe(nodeIdOf('2001:db8::1'));
  });
});

describe('failover keys in lvs.cf', () => {
  it('parses the lvsd extensions with their defaults', () => {
    const d = parseConfig('primary = 198.18.0.1\nservice = lvs\n').config.globals;
    expect(d).toMatchObject({ heartbeatFormat: 'lvsd', election: 'pulse', priority: 100, vrrpId: 51, syncPort: 8848, arpCount: 5, arpInterval: 1 });
    expect(d.preempt).toBeUndefined();
    const g = parseConfig([
      'primary = 198.18.0.1', 'backup = 198.18.0.3', 'backup_active = 1', 'keepalive = 0.1', 'deadtime = 0.3',
      'heartbeat_key = keys/ha.key', 'heartbeat_format = piranha', 'election = vrrp', 'preempt = 1', 'priority = 200',
      'vrrp_id = 7', 'sync_port = 0', 'arp_count = 2', 'arp_interval = 0.5', '',
    ].join('\n')).config.globals;
    expect(g).toMatchObject({ keepalive: 0.1, deadtime: 0.3, heartbeatKey: 'keys/ha.key', heartbeatFormat: 'piranha', election: 'vrrp', preempt: true, priority: 200, vrrpId: 7, syncPort: 0, arpCount: 2, arpInterval: 0.5 });
  });

  it('refuses bad values with the key and line', () => {
    for (const [line, re] of [
      ['priority = 255', /lvs\.cf:1:1 priority: 255 is out of range \(expected 1 to 254\)/],
      ['election = carp', /lvs\.cf:1:1 election: .*carp/],
      ['vrrp_id = 0', /lvs\.cf:1:1 vrrp_id: 0 is out of range/],
      ['heartbeat_format = none', /heartbeat_format: .*none/],
    ] as const) {
      let msg = '';
      try {
        parseConfig(`${line}\n`);
      } catch (e) {
        msg = ((e as { errors?: Error[] }).errors ?? [e as Error]).map((x) => x.message).join('\n');
      }
      expect(msg, line).toMatch(re);
    }
  });

  it('the key file is found next to lvs.cf unless given absolutely', () => {
    expect(keyFilePath('/etc/sysconfig/ha/lvs.cf', undefined)).toBe('/etc/sysconfig/ha/heartbeat.key');
    expect(keyFilePath('/etc/sysconfig/ha/lvs.cf', 'keys/k')).toBe('/etc/sysconfig/ha/keys/k');
    expect(keyFilePath('/etc/sysconfig/ha/lvs.cf', '/root/k')).toBe('/root/k');
  });
});
