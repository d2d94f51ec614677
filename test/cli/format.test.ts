import { describe, expect, it } from 'vitest';
import { formatConnections, formatList, formatPersistentConnections, formatStats, formatThresholds, largeNumber } from '../../src/cli/format.js';
import type { RealServerInfo, VirtualServiceInfo } from '../../src/index.js';

// The samples in shared/reference/ipvs.md section 7, which replay ipvsadm's own printf formats.
const zero = { connections: 0, packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 };
function real(address: string, port: number, method: RealServerInfo['method'], weight: number, active: number, inactive: number, stats = zero, persistent = 0): RealServerInfo {
  return { address, family: 'ipv4', port, weight, currentWeight: weight, upperThreshold: 0, lowerThreshold: 0, method, interface: 1, mac: null, activeConnections: active, inactiveConnections: inactive, persistentConnections: persistent, stats };
}
function service(port: number, reals: RealServerInfo[], stats = zero, extra: Partial<VirtualServiceInfo> = {}): VirtualServiceInfo {
  return { family: 'ipv4', protocol: 'tcp', address: '192.168.1.100', port, fwmark: 0, scheduler: 'wlc', flags: [], persistence: null, maglevTableSize: null, quiesce: false, reals, stats, ...extra };
}
const sh443 = () =>
  service(443, [real('10.0.0.1', 443, 'direct', 1, 3, 7, zero, 4)], zero, { scheduler: 'sh', flags: ['sh-fallback', 'sh-port'], persistence: { timeout: 360, netmask: '255.255.255.0' } });

describe('ipvsadm listing formats', () => {
  it('-L -n, with flags, persistence and masks', () => {
    const text = formatList(
      [
        service(80, [real('10.0.0.2', 8080, 'nat', 2, 25, 81), real('10.0.0.1', 80, 'nat', 1, 12, 40)]),
        { ...service(0, [real('10.0.0.4', 0, 'direct', 3, 0, 0)], zero, { scheduler: 'wrr', persistence: { timeout: 300, netmask: '255.255.255.255' } }), protocol: null, address: null, fwmark: 1 },
        sh443(),
      ],
      { tableSize: 4096 },
    );
    expect(text).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
        'TCP  192.168.1.100:80 wlc\n' +
        '  -> 10.0.0.1:80                  Masq    1      12         40        \n' +
        '  -> 10.0.0.2:8080                Masq    2      25         81        \n' +
        'TCP  192.168.1.100:443 sh (sh-fallback,sh-port) persistent 360 mask 255.255.255.0\n' +
        '  -> 10.0.0.1:443                 Route   1      3          7         \n' +
        'FWM  1 wrr persistent 300\n' +
        '  -> 10.0.0.4:0                   Route   3      0          0         \n',
    );
  });

  it('--thresholds and --persistent-conn', () => {
    expect(formatThresholds([sh443()], { tableSize: 4096 })).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n' +
        '  -> RemoteAddress:Port\n' +
        'TCP  192.168.1.100:443 sh (sh-fallback,sh-port) persistent 360 mask 255.255.255.0\n' +
        '  -> 10.0.0.1:443                 0          0          3          7         \n',
    );
    expect(formatPersistentConnections([sh443()], { tableSize: 4096 })).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n' +
        '  -> RemoteAddress:Port\n' +
        'TCP  192.168.1.100:443 sh (sh-fallback,sh-port) persistent 360 mask 255.255.255.0\n' +
        '  -> 10.0.0.1:443                 1         4           3          7         \n',
    );
  });

  it('-L -n --stats, with K/M/G scaling', () => {
    const text = formatStats(
      [service(80, [real('10.0.0.1', 80, 'nat', 1, 0, 0, { connections: 600, packetsIn: 50000, packetsOut: 44000, bytesIn: 3200000, bytesOut: 60_000_123_456 })], { connections: 1234, packetsIn: 98765, packetsOut: 87654, bytesIn: 6543210, bytesOut: 123_456_789_012 })],
      { tableSize: 4096 },
    );
    expect(text).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n' +
        '  -> RemoteAddress:Port\n' +
        'TCP  192.168.1.100:80                 1234    98765    87654  6543210     123G\n' +
        '  -> 10.0.0.1:80                       600    50000    44000  3200000   60000M\n',
    );
  });

  it('print_largenum boundaries and --exact', () => {
    expect(largeNumber(99_999_999)).toBe(' 99999999');
    expect(largeNumber(100_000_000)).toBe('  100000K');
    expect(largeNumber(1_000_000_000)).toBe('    1000M');
    expect(largeNumber(100_000_000_000)).toBe('     100G');
    expect(largeNumber(100_000_000_000_000)).toBe('     100T');
    expect(largeNumber(123_456_789_012, true)).toBe(' 123456789012');
    expect(largeNumber(42, true)).toBe('       42');
  });

  it('-L -n -c', () => {
    const text = formatConnections([
      { protocol: 'TCP', state: 'ESTABLISHED', expiresIn: 898_400, client: { address: '203.0.113.7', port: 51514 }, virtual: { address: '192.168.1.100', port: 80 }, destination: { address: '10.0.0.1', port: 80 }, fwmark: 0, method: 'nat', template: false, packetsIn: 3 },
      { protocol: 'UDP', state: 'UDP', expiresIn: 299_999, client: { address: '198.51.100.4', port: 3311 }, virtual: { address: '192.168.1.100', port: 53 }, destination: { address: '10.0.0.3', port: 53 }, fwmark: 0, method: 'tunnel', template: false, packetsIn: 1 },
    ]);
    expect(text).toBe(
      'IPVS connection entries\n' +
        'pro expire state       source             virtual            destination\n' +
        'TCP 14:58  ESTABLISHED 203.0.113.7:51514  192.168.1.100:80   10.0.0.1:80\n' +
        'UDP 04:59  UDP         198.51.100.4:3311  192.168.1.100:53   10.0.0.3:53\n',
    );
  });
});
