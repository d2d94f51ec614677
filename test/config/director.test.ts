/**
 * lvs.cf and the Director: the model mapped to a DirectorConfig, and the running state written
 * back into the model (lvsadm --write-config).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyRunningState, cloneConfig, directorConfig, formatConfig, parseConfig, resolveConfig, type LvsConfig, type ServiceLike } from '../../src/config/index.js';
import type { DirectorConfig } from '../../src/director/types.js';
import { validateConfig } from '../../src/director/validate.js';
import { prefixMask } from '../../src/net/address.js';

const dir = join(import.meta.dirname, 'corpus', 'valid');
const text = (f: string) => readFileSync(join(dir, f), 'utf8');
const hosts: Record<string, string> = { 'lb1.example.com': '198.18.0.2', 'lb2.example.com': '198.18.0.3', 'www.example.com': '198.18.0.10', 'web1.example.com': '198.19.0.11' };
const load = (f: string) => resolveConfig(parseConfig(text(f), { file: f }).config, { lookup: async (h) => hosts[h]! });

/** What the dataplane lists for a DirectorConfig's services (listServices' defaults). */
function running(dc: DirectorConfig): ServiceLike[] {
  return dc.services.map((s): ServiceLike => {
    const fw = 'fwmark' in s;
    const family = fw ? (s.family ?? 'ipv4') : s.address.includes(':') ? 'ipv6' : 'ipv4';
    const p = s.persistence;
    let persistence: ServiceLike['persistence'] = null;
    if (p) {
      const spec = p === true ? {} : typeof p === 'number' ? { timeout: p } : p;
      const nm = spec.netmask;
      persistence = { timeout: spec.timeout ?? 360, netmask: typeof nm === 'string' ? nm : prefixMask(family, nm ?? (family === 'ipv4' ? 32 : 128)).text };
    }
    return {
      family,
      protocol: fw ? null : s.protocol,
      address: fw ? null : s.address,
      port: fw ? 0 : s.port,
      fwmark: fw ? s.fwmark : 0,
      scheduler: s.scheduler ?? 'wlc',
      flags: s.flags ?? [],
      persistence,
      maglevTableSize: s.scheduler === 'mh' ? (s.maglevTableSize ?? 4093) : null,
      quiesce: s.quiesce ?? false,
      reals: s.reals.map((r) => ({ address: r.address, port: r.port ?? (fw ? 0 : s.port), weight: r.weight ?? 1, method: r.method ?? 'direct', upperThreshold: r.upperThreshold ?? 0, lowerThreshold: r.lowerThreshold ?? 0 })),
    };
  });
}

describe('directorConfig', () => {
  it('maps the complete example of reference/piranha.md 1.6', () => {
    const cfg = parseConfig(text('piranha-example.cf')).config;
    expect(directorConfig(cfg, { netns: 'lb', io: 'packet' })).toEqual({
      netns: 'lb',
      io: 'packet',
      services: [
        {
          protocol: 'tcp',
          address: '203.0.113.100',
          port: 80,
          scheduler: 'wlc',
          device: 'eth0',
          reals: [
            { address: '192.168.10.21', port: 8080, weight: 100, method: 'nat' },
            { address: '192.168.10.22', port: 80, weight: 100, method: 'nat' },
          ],
        },
        {
          fwmark: 80,
          family: 'ipv4',
          addresses: ['203.0.113.101'],
          scheduler: 'wrr',
          persistence: { timeout: 300, netmask: '255.255.255.0' },
          quiesce: true,
          device: 'eth0',
          // NAT reals of a firewall-mark service keep the client's port (port 443 is the
          // health checks' port).
          reals: [{ address: '192.168.10.31', port: 0, weight: 64, method: 'nat' }],
        },
        {
          protocol: 'udp',
          address: '203.0.113.102',
          port: 53,
          scheduler: 'rr',
          device: 'eth0',
          reals: [{ address: '192.168.10.41', port: 53, weight: 1, method: 'nat' }],
        },
      ],
      natRouters: [{ address: '192.168.10.1', device: 'eth1', prefixLength: 24 }],
      timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
    });
  });

  it('active virtuals and active servers only; network is the default method', () => {
    const dc = directorConfig(parseConfig(text('gui-canonical.cf')).config);
    expect(dc.services).toEqual([{ protocol: 'tcp', address: '198.18.0.10', port: 80, scheduler: 'wlc', device: 'eth0', reals: [{ address: '198.19.0.11', port: 80, weight: 1, method: 'direct' }] }]);
    // No NAT anywhere: no NAT router, no timeouts to set.
    expect(dc.natRouters).toBeUndefined();
    expect(dc.timeouts).toBeUndefined();
  });

  it("Piranha's HTTP+HTTPS and FTP recipes become mark rules on the VIP", () => {
    const web = directorConfig(parseConfig(text('recipe-http-https.cf')).config);
    expect(web.marks).toEqual([
      { mark: 80, protocol: 'tcp', destination: '198.18.0.10', ports: 80 },
      { mark: 80, protocol: 'tcp', destination: '198.18.0.10', ports: 443 },
    ]);
    expect(web.services[0]).toMatchObject({ fwmark: 80, family: 'ipv4', addresses: ['198.18.0.10'], persistence: { timeout: 300 }, device: 'eth0' });
    const ftp = directorConfig(parseConfig(text('recipe-ftp.cf')).config);
    expect(ftp.marks).toEqual([
      { mark: 21, protocol: 'tcp', destination: '198.18.0.10', ports: 21 },
      { mark: 21, protocol: 'tcp', destination: '198.18.0.10', ports: [10000, 20000] },
    ]);
    expect(ftp.services[0]).toMatchObject({ fwmark: 21, persistence: { timeout: 360 }, reals: [{ address: '198.18.0.21', port: 0, method: 'direct' }, { address: '198.18.0.22', port: 0, method: 'direct' }] });
  });

  it('IPv6: prefix-length persistence, NAT routers of both families, tunnel to an IPv4 real, sorry server', () => {
    const dc = directorConfig(parseConfig(text('ipv6.cf')).config);
    expect(dc.natRouters).toEqual([
      { address: '198.19.0.1', device: 'eth1', prefixLength: 24 },
      { address: '2001:db8:1::1', device: 'eth1', prefixLength: 64 },
    ]);
    expect(dc.services).toEqual([
      { protocol: 'tcp', address: '2001:db8::10', port: 80, scheduler: 'wrr', persistence: { timeout: 300, netmask: 64 }, device: 'eth0', reals: [
        { address: '2001:db8:1::11', port: 80, weight: 2, method: 'nat' },
        { address: '2001:db8:1::12', port: 8080, weight: 1, method: 'nat' },
      ] },
      { protocol: 'tcp', address: '2001:db8::20', port: 443, scheduler: 'wlc', device: 'eth0', reals: [{ address: '198.19.0.21', port: 443, weight: 1, method: 'tunnel' }] },
      { fwmark: 6, family: 'ipv6', addresses: ['2001:db8::30'], scheduler: 'wlc', device: 'eth0', reals: [{ address: '2001:db8:1::13', port: 0, weight: 1, method: 'nat' }] },
      // No server at all: the sorry server is the real, as Piranha's lvs did with none up.
      { protocol: 'tcp', address: '2001:db8::40', port: 80, scheduler: 'wlc', device: 'eth0', reals: [{ address: '2001:db8:1::99', port: 80, weight: 1, method: 'nat' }] },
    ]);
    expect(dc.marks).toEqual([
      { mark: 6, protocol: 'tcp', destination: '2001:db8::30', ports: 80 },
      { mark: 6, protocol: 'tcp', destination: '2001:db8::30', ports: 443 },
      { mark: 6, protocol: 'udp', destination: '2001:db8::31', ports: 53, source: '2001:db8:5::/48' },
    ]);
  });

  it('extensions: scheduler flags, Maglev table, thresholds, slow start, per-real methods', () => {
    const { config, warnings } = parseConfig(text('extensions.cf'));
    const dc = directorConfig(config);
    expect(dc.services[0]).toEqual({
      protocol: 'tcp',
      address: '198.18.0.10',
      port: 443,
      scheduler: 'mh',
      flags: ['mh-fallback', 'mh-port'],
      maglevTableSize: 65537,
      reals: [
        { address: '198.18.0.31', port: 443, weight: 10, method: 'direct', upperThreshold: 1000, lowerThreshold: 800, slowStart: 30 },
        { address: '198.19.0.32', port: 443, weight: 1, method: 'tunnel' },
        { address: '198.19.0.33', port: 8443, weight: 1, method: 'nat', upperThreshold: 50 },
      ],
    });
    expect(dc.services[1]).toMatchObject({ protocol: 'udp', port: 53, scheduler: 'sh', flags: ['sh-fallback'], device: 'eth0' });
    // A NAT real brings the NAT routers in even with network = direct (there are none here).
    expect(dc.natRouters).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('direct forwarding gets the virtual port, as ipvsadm forced it; the real port is for checks', () => {
    const { config, warnings } = parseConfig('network = direct\nvirtual web {\n     active = 1\n     address = 198.18.0.10\n     server web1 {\n         address = 198.18.0.21\n         active = 1\n         port = 8080\n     }\n}\n');
    expect(directorConfig(config).services[0]!.reals).toEqual([{ address: '198.18.0.21', port: 80, weight: 1, method: 'direct' }]);
    expect(warnings.map((w) => w.message)).toEqual(['lvs.cf:8:10 port: direct forwarding cannot change the port: server web1 gets port 80 traffic (as ipvsadm did); port = 8080 is used for health checks only']);
  });

  it('host names must be resolved first', async () => {
    const cfg = parseConfig(text('hostnames.cf')).config;
    expect(() => directorConfig(cfg)).toThrow('lvs.cf:6:6 address: host name www.example.com is not resolved (read the file with readConfig, or call resolveConfig)');
    const dc = directorConfig(await load('hostnames.cf'));
    expect(dc.services[0]).toMatchObject({ address: '198.18.0.10', reals: [{ address: '198.19.0.11' }, { address: '198.19.0.12' }] });
  });

  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cf')).sort()) {
    it(`${f}: the Director accepts what comes out`, async () => {
      const dc = directorConfig(await load(f));
      expect(validateConfig(dc)).toBe(dc);
    });
  }
});

describe('applyRunningState', () => {
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cf')).sort()) {
    it(`${f}: the running state of the file itself changes nothing`, async () => {
      const cfg = await load(f);
      const after = applyRunningState(cfg, running(directorConfig(cfg)));
      expect(formatConfig(after)).toBe(formatConfig(cfg));
    });
  }

  const base = () => parseConfig(text('comments.cf')).config;

  function edit(cfg: LvsConfig, change: (svcs: ServiceLike[]) => void, options = {}): string {
    const svcs = running(directorConfig(cfg));
    change(svcs);
    return formatConfig(applyRunningState(cfg, svcs, options));
  }

  it('a weight, scheduler, persistence or quiesce change: those lines, comments untouched', () => {
    const before = formatConfig(base());
    const after = edit(base(), ([www]) => {
      www!.reals[1]!.weight = 9;
      www!.scheduler = 'rr';
      www!.persistence = { timeout: 600, netmask: '255.255.255.0' };
      www!.quiesce = true;
    });
    expect(after).toBe(
      before
        .replace('     address = 198.18.0.10 eth0:1\n', '     address = 198.18.0.10 eth0:1\n     persistent = 600\n     pmask = 255.255.255.0\n')
        .replace('     expect = "HTTP/1.0 200"\n', '     expect = "HTTP/1.0 200"\n     scheduler = rr\n     quiesce_server = 1\n')
        .replace('         address = 198.19.0.12\n         active = 1\n         weight = 3', '         address = 198.19.0.12\n         active = 1\n         weight = 9'),
    );
  });

  it('a real added at run time gets a server block; a removed one loses its block', () => {
    const after = edit(base(), ([www]) => {
      www!.reals.shift();
      www!.reals.push({ address: '198.19.0.13', port: 8080, weight: 2, method: 'direct', upperThreshold: 100, lowerThreshold: 0 });
    });
    expect(after).not.toContain('server web1 {');
    expect(after).toContain('     server web2 {');
    expect(after).toContain(
      ['     server real-198.19.0.13-8080 {', '         address = 198.19.0.13', '         active = 1', '         port = 8080', '         weight = 2', '         method = direct', '         upper_threshold = 100', '     }', '     # end of www', '}'].join('\n'),
    );
    // The comments of the removed block's surroundings are kept.
    expect(after).toContain('     # second real\n     server web2 {');
  });

  it('retain keeps a configured real the director does not have (e.g. taken out by a health check)', () => {
    const after = edit(base(), ([www]) => www!.reals.shift(), { retain: (_v: unknown, s: { name: string }) => s.name === 'web1' });
    expect(after).toBe(formatConfig(base()));
  });

  it('a service added at run time becomes a virtual; a deleted one goes; inactive ones stay', () => {
    const cfg = parseConfig(text('gui-canonical.cf')).config;
    const after = edit(cfg, (svcs) => {
      svcs.shift();
      svcs.push({ family: 'ipv4', protocol: 'udp', address: '198.18.0.99', port: 53, fwmark: 0, scheduler: 'rr', flags: [], persistence: null, maglevTableSize: null, quiesce: false, reals: [{ address: '198.18.0.41', port: 53, weight: 1, method: 'direct', upperThreshold: 0, lowerThreshold: 0 }] });
    });
    expect(after).not.toContain('virtual http {');
    expect(after).toContain('virtual smtp {');
    expect(after.endsWith(
      ['virtual udp-198.18.0.99-53 {', '     active = 1', '     address = 198.18.0.99', '     port = 53', '     scheduler = rr', '     protocol = udp', '     server real-198.18.0.41-53 {', '         address = 198.18.0.41', '         active = 1', '     }', '}', ''].join('\n'),
    )).toBe(true);
    expect(directorConfig(parseConfig(after).config).services).toEqual([{ protocol: 'udp', address: '198.18.0.99', port: 53, scheduler: 'rr', reals: [{ address: '198.18.0.41', port: 53, weight: 1, method: 'direct' }] }]);
  });

  it('a service that matches an inactive virtual turns it on, keeping its keys', () => {
    const cfg = parseConfig(text('gui-canonical.cf')).config;
    const after = edit(cfg, (svcs) => {
      svcs.push({ family: 'ipv4', protocol: 'tcp', address: '198.18.0.11', port: 25, fwmark: 0, scheduler: 'rr', flags: [], persistence: null, maglevTableSize: null, quiesce: false, reals: [] });
    });
    expect(after).toContain('virtual smtp {\n     active = 1\n     address = 198.18.0.11 eth0:2\n     port = 25\n     expect = "220"\n');
  });

  it('a method that differs from network is written per real; run-time timeouts are kept', () => {
    const cfg = parseConfig(text('gui-canonical.cf')).config;
    const after = edit(cfg, ([http]) => {
      http!.reals[0]!.method = 'tunnel';
    }, { timeouts: { tcp: 1800 } });
    expect(after).toContain('         weight = 1\n         method = tunnel\n     }');
    expect(after).toContain('syncdaemon = 0\ntcp_timeout = 1800\n');
  });

  it('a firewall-mark service added at run time gets its mark rules as fwmark_rule lines', () => {
    const cfg = parseConfig(text('minimal.cf')).config;
    const marks = [
      { mark: 5, protocol: 'tcp' as const, destination: '2001:db8::50', ports: 80 },
      { mark: 5, protocol: 'tcp' as const, destination: '2001:db8::50', ports: [8000, 8100] as [number, number] },
    ];
    const svcs = running(directorConfig(cfg));
    svcs.push({ family: 'ipv6', protocol: null, address: null, port: 0, fwmark: 5, scheduler: 'wlc', flags: [], persistence: { timeout: 360, netmask: 'ffff:ffff:ffff:ffff::' }, maglevTableSize: null, quiesce: false, reals: [{ address: '2001:db8:1::5', port: 0, weight: 1, method: 'direct', upperThreshold: 0, lowerThreshold: 0 }] });
    const out = applyRunningState(cfg, svcs, { marks });
    const v = out.virtuals[1]!;
    expect(formatConfig({ ...out, virtuals: [v] }).split('virtual ')[1]).toBe(
      ['fwmark-5-ipv6 {', '     active = 1', '     fwmark = 5', '     fwmark_rule = tcp 80 to 2001:db8::50', '     fwmark_rule = tcp 8000-8100 to 2001:db8::50', '     persistent = 360', '     pmask = 64', '     server real-2001:db8:1::5-0 {', '         address = 2001:db8:1::5', '         active = 1', '         method = direct', '     }', '}', ''].join('\n'),
    );
    const dc = directorConfig(out);
    expect(dc.services[1]).toMatchObject({ fwmark: 5, family: 'ipv6', addresses: [], persistence: { timeout: 360, netmask: 64 } });
    expect(dc.marks).toEqual(marks);
  });

  it('does not change the model it is given', () => {
    const cfg = base();
    const copy = cloneConfig(cfg);
    edit(cfg, ([www]) => www!.reals.pop());
    expect(cfg).toEqual(copy);
  });
});
