/**
 * ipvsadm's listings beyond -L -n (format.test.ts): --rate, --exact, --tun-info, -S, --timeout,
 * names instead of numbers, IPv6 and IPv6 firewall marks, ipvsadm's sort order (including its
 * 32-bit wrap-around) and --nosort, the one-service listing, and -c with names. Each expected
 * text replays ipvsadm 1.31's printf formats (reference/ipvs.md section 7).
 */
import { describe, expect, it } from 'vitest';
import { formatConnections, formatRate, formatSave, formatService, formatServices, formatStats, formatTimeouts, formatTunnelInfo, ntop6, type NameLookup, type RatedReal, type RatedService } from '../../src/cli/format.js';
import type { Rates } from '../../src/daemon/protocol.js';
import type { TrafficStats } from '../../src/index.js';

const zero: TrafficStats = { connections: 0, packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 };
const noRates: Rates = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };

function real(address: string, port: number, o: Partial<RatedReal> = {}): RatedReal {
  return {
    address, family: address.includes(':') ? 'ipv6' : 'ipv4', port, weight: 1, currentWeight: 1, upperThreshold: 0, lowerThreshold: 0, method: 'direct', interface: 1, mac: null,
    activeConnections: 0, inactiveConnections: 0, persistentConnections: 0, stats: zero, rates: noRates, ...o,
  };
}
function tcp(address: string, port: number, reals: RatedReal[], o: Partial<RatedService> = {}): RatedService {
  return {
    family: address.includes(':') ? 'ipv6' : 'ipv4', protocol: 'tcp', address, port, fwmark: 0, scheduler: 'wlc', flags: [], persistence: null, maglevTableSize: null, quiesce: false,
    reals, stats: zero, rates: noRates, ...o,
  };
}
function fwm(mark: number, family: 'ipv4' | 'ipv6', reals: RatedReal[], o: Partial<RatedService> = {}): RatedService {
  return { ...tcp(family === 'ipv4' ? '0.0.0.0' : '::', 0, reals, o), protocol: null, address: null, fwmark: mark, family };
}

const HEADER = 'IP Virtual Server version 1.2.1 (size=4096)\n';
const TITLE = 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';

describe('the spec samples', () => {
  it('--rate, as reference/ipvs.md shows it', () => {
    const s = tcp('192.168.1.100', 80, [real('10.0.0.1', 80, { method: 'nat', rates: { cps: 6, inpps: 480, outpps: 430, inbps: 32000, outbps: 600000 } })], {
      rates: { cps: 12, inpps: 950, outpps: 870, inbps: 64000, outbps: 1200000 },
    });
    expect(formatRate([s], { tableSize: 4096 })).toBe(
      HEADER +
        'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n' +
        '  -> RemoteAddress:Port\n' +
        'TCP  192.168.1.100:80                   12      950      870    64000  1200000\n' +
        '  -> 10.0.0.1:80                         6      480      430    32000   600000\n',
    );
  });

  it('-S -n, as ipvsadm-save -n prints it (configured weights, --tun-type for tunnels)', () => {
    const services = [
      tcp('192.168.1.100', 443, [real('10.0.0.1', 443)], { scheduler: 'sh', flags: ['sh-fallback', 'sh-port'], persistence: { timeout: 360, netmask: '255.255.255.0' } }),
      fwm(1, 'ipv4', [real('10.0.0.4', 0, { weight: 3, currentWeight: 3 })], { scheduler: 'wrr', persistence: { timeout: 300, netmask: '255.255.255.255' } }),
      { ...tcp('192.168.1.100', 53, [real('10.0.0.3', 53, { method: 'tunnel', weight: 0, currentWeight: 0 })], { scheduler: 'rr' }), protocol: 'udp' as const },
      tcp('192.168.1.100', 80, [real('10.0.0.2', 8080, { method: 'nat', weight: 2, currentWeight: 1 }), real('10.0.0.1', 80, { method: 'nat' })]),
    ];
    expect(formatSave(services)).toBe(
      '-A -t 192.168.1.100:80 -s wlc\n' +
        '-a -t 192.168.1.100:80 -r 10.0.0.1:80 -m -w 1\n' +
        '-a -t 192.168.1.100:80 -r 10.0.0.2:8080 -m -w 2\n' +
        '-A -t 192.168.1.100:443 -s sh -p 360 -M 255.255.255.0 -b sh-fallback,sh-port\n' +
        '-a -t 192.168.1.100:443 -r 10.0.0.1:443 -g -w 1\n' +
        '-A -u 192.168.1.100:53 -s rr\n' +
        '-a -u 192.168.1.100:53 -r 10.0.0.3:53 -i -w 0 --tun-type ipip\n' +
        '-A -f 1 -s wrr -p 300\n' +
        '-a -f 1 -r 10.0.0.4:0 -g -w 3\n',
    );
  });
});

describe('IPv6', () => {
  const services = [
    fwm(3, 'ipv6', [real('2001:db8:1::12', 0, { method: 'tunnel' })], { scheduler: 'mh', flags: ['mh-port'], persistence: { timeout: 60, netmask: 'ffff:ffff:ffff:ffff::' } }),
    tcp('2001:db8::100', 80, [real('2001:db8:1::12', 8080, { method: 'nat', currentWeight: 2, weight: 2, activeConnections: 7 }), real('2001:db8:1::11', 8080, { method: 'nat' })], { persistence: { timeout: 120, netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' } }),
    tcp('198.18.0.100', 80, [real('198.18.1.11', 80)]),
  ];

  it('-L -n: brackets, prefix-length masks, "FWM  N IPv6"; IPv4 first', () => {
    expect(formatServices(services, { tableSize: 4096 })).toBe(
      HEADER +
        TITLE +
        'TCP  198.18.0.100:80 wlc\n' +
        '  -> 198.18.1.11:80               Route   1      0          0         \n' +
        'TCP  [2001:db8::100]:80 wlc persistent 120\n' +
        '  -> [2001:db8:1::11]:8080        Masq    1      0          0         \n' +
        '  -> [2001:db8:1::12]:8080        Masq    2      7          0         \n' +
        'FWM  3 IPv6 mh (mh-port) persistent 60 mask 64\n' +
        '  -> [2001:db8:1::12]:0           Tunnel  1      0          0         \n',
    );
  });

  it('-S -n: "-f N -6" and "-M plen"', () => {
    expect(formatSave(services)).toBe(
      '-A -t 198.18.0.100:80 -s wlc\n' +
        '-a -t 198.18.0.100:80 -r 198.18.1.11:80 -g -w 1\n' +
        '-A -t [2001:db8::100]:80 -s wlc -p 120\n' +
        '-a -t [2001:db8::100]:80 -r [2001:db8:1::11]:8080 -m -w 1\n' +
        '-a -t [2001:db8::100]:80 -r [2001:db8:1::12]:8080 -m -w 2\n' +
        '-A -f 3 -6 -s mh -p 60 -M 64 -b mh-port\n' +
        '-a -f 3 -6 -r [2001:db8:1::12]:0 -i -w 1 --tun-type ipip\n',
    );
  });

  it('inet_ntop as glibc: longest zero run, IPv4 tails for mapped and compatible addresses', () => {
    const b = (...w: number[]) => Uint8Array.from(w.flatMap((x) => [x >> 8, x & 0xff]));
    expect(ntop6(b(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1))).toBe('2001:db8::1:0:0:1');
    expect(ntop6(b(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1))).toBe('2001:db8:0:1::1');
    expect(ntop6(b(0x2001, 0xdb8, 1, 2, 3, 4, 0, 5))).toBe('2001:db8:1:2:3:4:0:5');
    expect(ntop6(b(0, 0, 0, 0, 0, 0xffff, 0xc612, 0x64))).toBe('::ffff:198.18.0.100');
    expect(ntop6(b(0, 0, 0, 0, 0, 0, 0xc612, 0x64))).toBe('::198.18.0.100');
    expect(ntop6(b(0, 0, 0, 0, 0, 0, 0, 1))).toBe('::1');
    expect(ntop6(b(0, 0, 0, 0, 0, 0, 0, 0))).toBe('::');
    expect(ntop6(b(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0))).toBe('2001:db8::');
  });
});

describe('sorting', () => {
  it("as libipvs compares: marks, family, protocol, address, port — with its 32-bit wrap", () => {
    const services = [
      fwm(2, 'ipv4', []),
      { ...tcp('198.18.0.100', 53, []), protocol: 'udp' as const },
      tcp('198.18.0.100', 443, []),
      tcp('10.0.0.1', 80, []),
      tcp('192.168.0.1', 80, []),
      tcp('198.18.0.100', 80, [real('198.18.1.12', 80), real('198.18.1.11', 8080), real('198.18.1.11', 80), real('10.1.1.1', 80)]),
      fwm(1, 'ipv4', []),
    ];
    const lines = formatServices(services, { tableSize: 1 }).split('\n').filter((l) => l && !l.startsWith('IP ') && !l.startsWith('Prot') && !l.startsWith('  -> RemoteAddress'));
    // 10.0.0.1 - 192.168.0.1 wraps to a positive int in C, so 10.0.0.1 sorts after it, as in
    // ipvsadm; 10.1.1.1 after the 198.18 reals for the same reason.
    expect(lines).toEqual([
      'TCP  192.168.0.1:80 wlc',
      'TCP  198.18.0.100:80 wlc',
      '  -> 198.18.1.11:80               Route   1      0          0         ',
      '  -> 198.18.1.11:8080             Route   1      0          0         ',
      '  -> 198.18.1.12:80               Route   1      0          0         ',
      '  -> 10.1.1.1:80                  Route   1      0          0         ',
      'TCP  198.18.0.100:443 wlc',
      'TCP  10.0.0.1:80 wlc',
      'UDP  198.18.0.100:53 wlc',
      'FWM  1 wlc',
      'FWM  2 wlc',
    ]);
  });

  it('--nosort keeps lvsd order', () => {
    const services = [tcp('198.18.0.101', 80, [real('198.18.1.12', 80), real('198.18.1.11', 80)]), tcp('198.18.0.100', 80, [])];
    expect(formatServices(services, { tableSize: 1, sort: false })).toBe(
      'IP Virtual Server version 1.2.1 (size=1)\n' +
        TITLE +
        'TCP  198.18.0.101:80 wlc\n' +
        '  -> 198.18.1.12:80               Route   1      0          0         \n' +
        '  -> 198.18.1.11:80               Route   1      0          0         \n' +
        'TCP  198.18.0.100:80 wlc\n',
    );
  });
});

describe('numbers: K/M/G/T and --exact', () => {
  const big = { connections: 99_999_999, packetsIn: 123_456_789, packetsOut: 98_765_432_101, bytesIn: 12_345_678_901_234, bytesOut: 9_000_000_000_000_000 };
  const services = [tcp('198.18.0.100', 80, [real('198.18.1.11', 80, { stats: big, rates: { cps: 123456789, inpps: 5, outpps: 0, inbps: 1_500_000_000, outbps: 100_000_000_000_000 } })], { stats: big, rates: { cps: 1, inpps: 2, outpps: 3, inbps: 100_000_000, outbps: 99_999_999 } })];

  it('--stats scales at 10^8, 10^9, 10^11 and 10^14', () => {
    expect(formatStats(services, { tableSize: 4096 })).toBe(
      HEADER +
        'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n' +
        '  -> RemoteAddress:Port\n' +
        'TCP  198.18.0.100:80              99999999  123456K   98765M   12345G    9000T\n' +
        '  -> 198.18.1.11:80               99999999  123456K   98765M   12345G    9000T\n',
    );
  });

  it('--stats --exact: every digit, a column wider where it needs', () => {
    expect(formatStats(services, { tableSize: 4096, exact: true }).split('\n').slice(3, 5)).toEqual([
      'TCP  198.18.0.100:80              99999999 123456789 98765432101 12345678901234 9000000000000000',
      '  -> 198.18.1.11:80               99999999 123456789 98765432101 12345678901234 9000000000000000',
    ]);
  });

  it('--rate: a real\'s CPS and PPS are never scaled (%8llu), its BPS are', () => {
    expect(formatRate(services, { tableSize: 4096 }).split('\n').slice(3, 5)).toEqual([
      'TCP  198.18.0.100:80                     1        2        3  100000K 99999999',
      '  -> 198.18.1.11:80               123456789        5        0    1500M     100T',
    ]);
    expect(formatRate(services, { tableSize: 4096, exact: true }).split('\n').slice(3, 5)).toEqual([
      'TCP  198.18.0.100:80                     1        2        3 100000000 99999999',
      '  -> 198.18.1.11:80               123456789        5        0 1500000000 100000000000000',
    ]);
  });
});

describe('the other listings', () => {
  const services = [tcp('198.18.0.100', 80, [real('198.18.1.13', 80, { method: 'tunnel', currentWeight: 2 }), real('198.18.1.11', 80, { method: 'nat', activeConnections: 3, inactiveConnections: 9 })])];

  it('--tun-info: a TunnelInfo column (ipip for tunnels, n/a otherwise)', () => {
    expect(formatTunnelInfo(services, { tableSize: 4096 })).toBe(
      HEADER +
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n' +
        'TCP  198.18.0.100:80 wlc\n' +
        '  -> 198.18.1.11:80               Masq    n/a           1      3          9         \n' +
        '  -> 198.18.1.13:80               Tunnel  ipip          2      0          0         \n',
    );
  });

  it('-L <service>: the title and that service, no header', () => {
    expect(formatService(services[0]!, {})).toBe(
      TITLE + 'TCP  198.18.0.100:80 wlc\n' + '  -> 198.18.1.11:80               Masq    1      3          9         \n' + '  -> 198.18.1.13:80               Tunnel  2      0          0         \n',
    );
  });

  it('several formats at once: ipvsadm shows the first of stats, rate, thresholds, persistent-conn', () => {
    expect(formatServices(services, { tableSize: 1, rate: true, thresholds: true })).toBe(formatRate(services, { tableSize: 1 }));
    expect(formatServices(services, { tableSize: 1, stats: true, rate: true })).toBe(formatStats(services, { tableSize: 1 }));
  });

  it('scheduler flags: by name for sh/mh only (an sh service with only flag-3 shows "()")', () => {
    const line = (s: RatedService) => formatServices([s], { tableSize: 1 }).split('\n')[3];
    expect(line(tcp('198.18.0.100', 80, [], { scheduler: 'rr', flags: ['flag-1', 'flag-3'] }))).toBe('TCP  198.18.0.100:80 rr (flag-1,flag-3)');
    expect(line(tcp('198.18.0.100', 80, [], { scheduler: 'sh', flags: ['flag-3'] }))).toBe('TCP  198.18.0.100:80 sh ()');
    expect(formatSave([tcp('198.18.0.100', 80, [], { scheduler: 'sh', flags: ['flag-3'] })])).toBe('-A -t 198.18.0.100:80 -s sh -b \n');
  });

  it('--timeout', () => {
    expect(formatTimeouts({ tcp: 900, tcpfin: 120, udp: 300 })).toBe('Timeout (tcp tcpfin udp): 900 120 300\n');
  });
});

describe('names, when not -n', () => {
  const names: NameLookup = {
    hostName: (family, b) => {
      const k = Array.from(b).join('.');
      if (family === 'ipv4' && k === '198.18.0.100') return 'www.example';
      if (family === 'ipv4' && k === '198.18.1.11') return 'a-real-server-with-a-long-name.example';
      if (family === 'ipv4' && k === '198.18.0.101') return 'a-virtual-service-with-a-long-name.example';
      if (family === 'ipv6' && b[15] === 0x11) return 'web6';
      return null;
    },
    serviceName: (port, protocol) => (port === 80 && protocol ? 'http' : port === 53 && protocol === 'udp' ? 'domain' : null),
  };

  it('-L: host and service names, IPv4 columns cut at 33 and 28 characters, marks keep numbers', () => {
    const services = [
      tcp('198.18.0.100', 80, [real('198.18.1.11', 80), real('198.18.1.12', 8080, { method: 'nat' })]),
      tcp('198.18.0.101', 80, []),
      tcp('2001:db8::100', 80, [real('2001:db8:1::11', 80)]),
      fwm(1, 'ipv4', [real('198.18.1.12', 80)]),
    ];
    expect(formatServices(services, { tableSize: 4096, names })).toBe(
      HEADER +
        TITLE +
        'TCP  www.example:http wlc\n' +
        '  -> a-real-server-with-a-long-na Route   1      0          0         \n' +
        '  -> 198.18.1.12:8080             Masq    1      0          0         \n' +
        'TCP  a-virtual-service-with-a-lon wlc\n' +
        'TCP  [2001:db8::100]:http wlc\n' +
        '  -> [web6]:http                  Route   1      0          0         \n' +
        'FWM  1 wlc\n' +
        '  -> 198.18.1.12:80               Route   1      0          0         \n',
    );
  });

  it('-S without -n: names, uncut', () => {
    expect(formatSave([tcp('198.18.0.100', 80, [real('198.18.1.11', 80)])], { names })).toBe(
      '-A -t www.example:http -s wlc\n-a -t www.example:http -r a-real-server-with-a-long-name.example:http -g -w 1\n',
    );
  });

  it('-c: names, and --persistent-conn widens the title', () => {
    const conns = [
      { protocol: 'UDP' as const, state: 'UDP' as const, expiresIn: 61_999, client: { address: '198.18.0.20', port: 4000 }, virtual: { address: '198.18.0.100', port: 53 }, destination: { address: '198.18.1.11', port: 53 }, fwmark: 0, method: 'nat' as const, template: false, packetsIn: 1 },
      { protocol: 'TCP' as const, state: 'ESTABLISHED' as const, expiresIn: 6_000_000, client: { address: '2001:db8::20', port: 4001 }, virtual: { address: '2001:db8::100', port: 80 }, destination: { address: '2001:db8:1::11', port: 80 }, fwmark: 0, method: 'direct' as const, template: false, packetsIn: 3 },
    ];
    expect(formatConnections(conns, { names })).toBe(
      'IPVS connection entries\n' +
        'pro expire state       source             virtual            destination\n' +
        'UDP 01:01  UDP         198.18.0.20:4000   www.example:domain a-real-server-with-a-long-name.example:domain\n' +
        'TCP 100:00 ESTABLISHED [2001:db8::20]:4001 [2001:db8::100]:http [web6]:http\n',
    );
    expect(formatConnections([], { persistentConn: true })).toBe(
      'IPVS connection entries\npro expire state       source             virtual            destination        pe name          pe_data\n',
    );
  });
});
