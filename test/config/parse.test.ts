/**
 * Reading lvs.cf: the complete example of reference/piranha.md 1.6, Piranha's defaults and
 * lexical rules, where lvsd reads a file more sensibly than Piranha, and the extensions.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LvsConfigError, parseConfig, parseServices, readConfig, readConfigSync, resolveConfig, tokenizeLine, withoutLayout, type LvsConfig } from '../../src/config/index.js';
import { isLvsError } from '../../src/errors.js';

const corpus = (f: string) => join(import.meta.dirname, 'corpus', 'valid', f);
const example = readFileSync(corpus('piranha-example.cf'), 'utf8');
const services = parseServices('domain 53/tcp\ndomain 53/udp\nhttp 80/tcp www # web\nhttps 443/tcp\nsyslog 514/udp\n');

function parse(text: string) {
  return parseConfig(text, { services });
}

function errorsOf(text: string): string[] {
  try {
    parse(text);
  } catch (e) {
    if (e instanceof LvsConfigError) return e.errors.map((x) => x.message);
    throw e;
  }
  throw new Error('parsed without errors');
}

const server1 = (extra = '') => `virtual web {\n     active = 1\n     address = 198.18.0.10 eth0:1\n${extra}     server web1 {\n         address = 198.19.0.11\n         active = 1\n     }\n}\n`;

describe('the complete example of reference/piranha.md 1.6', () => {
  const { config: c, warnings } = parseConfig(example, { file: 'lvs.cf' });

  it('globals', () => {
    const g = c.globals;
    expect(g).toMatchObject({
      serialNo: 42,
      primary: '203.0.113.10',
      primaryPrivate: '10.0.0.10',
      service: 'lvs',
      backupActive: true,
      backup: '203.0.113.11',
      backupPrivate: '10.0.0.11',
      heartbeatPort: 539,
      keepalive: 6,
      deadtime: 18,
      network: 'nat',
      natRouters: [{ address: '192.168.10.1', device: 'eth1:1' }],
      natNmask: '255.255.255.0',
      monitorLinks: false,
      hardShutdown: true,
      syncdaemon: true,
      syncdIface: 'eth2',
      syncdId: 7,
      tcpTimeout: 900,
      tcpfinTimeout: 120,
      udpTimeout: 300,
      rshCommand: 'ssh',
      activeCmd: '/etc/sysconfig/ha/active.sh',
      inactiveCmd: '/etc/sysconfig/ha/inactive.sh',
    });
    // Parsed, unused: kept as written.
    expect(g.inert).toEqual({ heartbeat: '1', debug_level: 'NONE' });
  });

  it('virtual www: health-check strings as written, sorry server, and port inheritance', () => {
    const www = c.virtuals[0]!;
    expect(www).toMatchObject({
      name: 'www',
      active: true,
      address: '203.0.113.100',
      device: 'eth0:1',
      vipNmask: '255.255.255.0',
      port: 80,
      protocol: 'tcp',
      scheduler: 'wlc',
      send: 'GET / HTTP/1.0\\r\\n\\r\\n',
      expect: 'HTTP',
      useRegex: false,
      loadMonitor: 'none',
      timeout: 6,
      reentry: 15,
      quiesceServer: false,
      sorryServer: '192.168.10.99',
      fwmark: 0,
      persistent: 0,
    });
    expect(www.servers.map((s) => ({ name: s.name, address: s.address, active: s.active, port: s.port, weight: s.weight }))).toEqual([
      { name: 'web1', address: '192.168.10.21', active: true, port: 8080, weight: 100 },
      // No port: the virtual's.
      { name: 'web2', address: '192.168.10.22', active: true, port: undefined, weight: 100 },
    ]);
  });

  it('virtual shop_fwm: firewall mark, persistence, send_program', () => {
    const shop = c.virtuals[1]!;
    expect(shop).toMatchObject({
      name: 'shop_fwm',
      address: '203.0.113.101',
      device: 'eth0:2',
      fwmark: 80,
      port: 443,
      persistent: 300,
      pmask: '255.255.255.0',
      sendProgram: '/usr/local/bin/check_https %h %p',
      expect: 'OK',
      loadMonitor: 'ruptime',
      scheduler: 'wrr',
      timeout: 10,
      reentry: 60,
      quiesceServer: true,
      fwmarkRules: [],
    });
    expect(shop.servers).toHaveLength(1);
    expect(shop.servers[0]).toMatchObject({ name: 'shop1', address: '192.168.10.31', active: true, weight: 64 });
  });

  it('virtual dns: port = domain from /etc/services, udp, defaults for what is not written', () => {
    const dns = c.virtuals[2]!;
    expect(dns).toMatchObject({ name: 'dns', port: 53, protocol: 'udp', scheduler: 'rr', send: '\\n', timeout: 5, reentry: 30, loadMonitor: 'none', useRegex: false, quiesceServer: false });
    expect(dns.servers[0]).toMatchObject({ name: 'ns1', address: '192.168.10.41', active: true, weight: 1 });
    expect(dns.servers[0]!.port).toBeUndefined();
  });

  it('warns about the keys Piranha ignored and the mark nothing sets', () => {
    expect(warnings.map((w) => w.message)).toEqual([
      'lvs.cf:8:1 heartbeat: ignored: Piranha never used it (heartbeats are sent when backup_active = 1)',
      'lvs.cf:15:1 debug_level: ignored: Piranha never used it (lvsd logs with pino; see lvsd --log-level)',
      'lvs.cf:57:5 fwmark: virtual shop_fwm has no fwmark_rule: lvsd classifies packets itself (iptables marks do not reach it), so nothing is sent to this service; add e.g. fwmark_rule = tcp 443',
    ]);
  });

  it('keeps positions for later errors', () => {
    const www = c.virtuals[0]!;
    expect(www.layout).toMatchObject({ line: 27, column: 1 });
    expect(www.layout!.keys.find((k) => k.key === 'scheduler')).toMatchObject({ line: 36, column: 5, valueColumn: 17, text: 'wlc' });
  });
});

describe("Piranha's defaults", () => {
  it('an empty virtual and server get lvsconfig.c defaults (both inactive)', () => {
    const { config } = parse('virtual v {\n     server s {\n     }\n}\n');
    const v = config.virtuals[0]!;
    expect(v).toMatchObject({ active: false, port: 80, protocol: 'tcp', scheduler: 'wlc', persistent: 0, fwmark: 0, timeout: 10, reentry: 180, loadMonitor: 'none', useRegex: false, quiesceServer: false });
    expect(v.servers[0]).toMatchObject({ active: false, weight: 1 });
    expect(config.globals).toMatchObject({ heartbeatPort: 539, keepalive: 2, deadtime: 5, network: 'nat', hardShutdown: true, rshCommand: 'rsh', syncdIface: 'eth0', service: 'lvs', backupActive: false });
  });

  it('an empty file is an empty configuration (Piranha refused it)', () => {
    const { config, warnings } = parse('');
    expect(config.virtuals).toEqual([]);
    expect(warnings.map((w) => w.message)).toEqual(["lvs.cf virtual: no active virtual server (Piranha's pulse refused to start so; lvsd starts with no services)"]);
  });
});

describe('lexical rules', () => {
  it('tokens split on blanks only; quotes of both kinds run to their match', () => {
    const l = tokenizeLine(`\tsend = "GET / HTTP/1.0\\r\\n" 'a "b"'`, 1);
    expect(l.kind).toBe('tokens');
    if (l.kind !== 'tokens') return;
    expect(l.tokens.map((t) => [t.text, t.quote, t.column])).toEqual([
      ['send', '', 2],
      ['=', '', 7],
      ['GET / HTTP/1.0\\r\\n', '"', 9],
      ['a "b"', "'", 30],
    ]);
  });

  it('LF, CRLF and lone CR all end lines', () => {
    for (const eol of ['\n', '\r\n', '\r']) {
      const { config } = parse(['primary = 198.18.0.2', 'keepalive = 3', ''].join(eol) + server1().split('\n').join(eol));
      expect(config.globals.keepalive).toBe(3);
      expect(config.virtuals[0]!.servers[0]!.address).toBe('198.19.0.11');
      expect(config.layout!.eol).toBe(eol);
    }
  });

  it('a byte order mark and tabs are fine', () => {
    const { config } = parse(`\ufeffkeepalive\t=\t7\n${server1()}`);
    expect(config.globals.keepalive).toBe(7);
    expect(config.layout!.bom).toBe(true);
  });

  it('comments are whole lines only; "#" inside a value is text', () => {
    expect(errorsOf(`keepalive = 3 # seconds\n${server1()}`)).toEqual(['lvs.cf:1:1 keepalive: unexpected arguments "# seconds" (comments stand on their own line)']);
    const { config } = parse(server1('     expect = "x # y"\n     send = a#b\n'));
    expect(config.virtuals[0]!.expect).toBe('x # y');
    expect(config.virtuals[0]!.send).toBe('a#b');
  });

  it('"=" must stand alone; keys are case-sensitive', () => {
    expect(errorsOf(`keepalive=6\n${server1()}`)).toEqual(['lvs.cf:1:1 keepalive=6: unknown command (write "keepalive = 6": the = stands between blanks)']);
    expect(errorsOf(`KeepAlive = 6\n${server1()}`)).toEqual(['lvs.cf:1:1 KeepAlive: unknown command (keys are lower case: keepalive)']);
  });

  it('quotes are stripped from every token, as Piranha did (keys and numbers too)', () => {
    const { config } = parse(`"keepalive" "=" "4"\n${server1("     port = '8080'\n")}`);
    expect(config.globals.keepalive).toBe(4);
    expect(config.virtuals[0]!.port).toBe(8080);
  });

  it('a quote has no escape: "a b"c" is an error, the other quote kind carries it', () => {
    expect(errorsOf(server1('     send = "a b"c"\n'))).toEqual([
      'lvs.cf:4:6 send: quotation mismatch: "a b" is followed by "c" (a quoted value ends at its closing quote and there is no escape for "; use the other quote kind around a value that contains ")',
    ]);
    expect(parse(server1(`     send = 'a b"c'\n`)).config.virtuals[0]!.send).toBe('a b"c');
  });

  it('a quoted value may be followed by blanks (Piranha called that a quotation mismatch)', () => {
    expect(parse(server1('     expect = "HTTP"   \n')).config.virtuals[0]!.expect).toBe('HTTP');
  });
});

describe('values', () => {
  it("numbers as strtol(s, 0) reads them: hex and octal", () => {
    const { config } = parse(`syncd_id = 0x10\ntcp_timeout = 0170\n${server1('     fwmark = 0x50\n     fwmark_rule = tcp 80\n     persistent = 010\n')}`);
    expect(config.globals.syncdId).toBe(16);
    expect(config.globals.tcpTimeout).toBe(120);
    expect(config.virtuals[0]!.fwmark).toBe(80);
    expect(config.virtuals[0]!.persistent).toBe(8);
    // 08 is not octal, and not decimal either.
    expect(errorsOf(`syncd_id = 08\n${server1()}`)).toEqual(['lvs.cf:1:1 syncd_id: integer expected, got "08"']);
  });

  it('booleans are 0 or 1 (0x1 too)', () => {
    expect(parse(`backup_active = 0x1\nbackup = 198.18.0.3\n${server1()}`).config.globals.backupActive).toBe(true);
    expect(errorsOf(`syncdaemon = on\n${server1()}`)).toEqual(['lvs.cf:1:1 syncdaemon: boolean expected (0 or 1), got "on"']);
  });

  it('port names from /etc/services, for virtual, server and heartbeat ports', () => {
    const { config } = parse(`heartbeat_port = https\n${server1('     port = www\n').replace('         active = 1\n', '         active = 1\n         port = http\n')}`);
    expect(config.globals.heartbeatPort).toBe(443);
    expect(config.virtuals[0]!.port).toBe(80);
    expect(config.virtuals[0]!.servers[0]!.port).toBe(80);
    // A UDP-only name works too (Piranha looked names up as tcp only).
    expect(parse(server1('     port = syslog\n     protocol = udp\n')).config.virtuals[0]!.port).toBe(514);
  });

  it('the system /etc/services is used by default', () => {
    const { config } = parseConfig(server1('     port = domain\n'));
    expect(config.virtuals[0]!.port).toBe(53);
  });

  it('sub-second keepalive and deadtime', () => {
    const { config } = parse(`keepalive = 0.1\ndeadtime = .5\n${server1()}`);
    expect(config.globals).toMatchObject({ keepalive: 0.1, deadtime: 0.5 });
  });

  it('IPv6 addresses are written canonically (RFC 5952)', () => {
    const { config } = parse(server1('').replace('198.18.0.10 eth0:1', '2001:DB8:0:0::10 eth0').replace('198.19.0.11', '2001:db8:1:0:0:0:0:11'));
    expect(config.virtuals[0]!.address).toBe('2001:db8::10');
    expect(config.virtuals[0]!.servers[0]!.address).toBe('2001:db8:1::11');
  });

  it('every scheduler, and flags', () => {
    const { config } = parse(readFileSync(corpus('schedulers.cf'), 'utf8'));
    expect(config.virtuals.map((v) => v.scheduler)).toEqual(['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'lblc', 'lblcr', 'dh', 'sh', 'mh', 'fo', 'ovf', 'twos']);
    expect(config.virtuals.filter((v) => v.schedulerFlags.length).map((v) => v.schedulerFlags)).toEqual([['sh-port'], ['mh-port'], ['flag-1']]);
  });

  it('fwmark_rule: protocol, ports and ranges (names too), destination and source', () => {
    const { config } = parse(server1('     fwmark = 21\n     fwmark_rule = tcp ftp,10000-20000\n     fwmark_rule = any\n     fwmark_rule = udp 53:54 from 198.18.5.0/24 to 198.18.0.11\n').replace('ftp', '21'));
    expect(config.virtuals[0]!.fwmarkRules).toEqual([
      { protocol: 'tcp', ports: [21, [10000, 20000]] },
      { protocol: 'any', ports: [] },
      { protocol: 'udp', ports: [[53, 54]], destination: '198.18.0.11', source: '198.18.5.0/24' },
    ]);
  });

  it('a virtual address without a device (lvsd finds the device of the route)', () => {
    const v = parse(server1('').replace('198.18.0.10 eth0:1', '198.18.0.10')).config.virtuals[0]!;
    expect(v.address).toBe('198.18.0.10');
    expect(v.device).toBeUndefined();
  });

  it('one nat_router per address family, with a prefix length', () => {
    const { config, warnings } = parse(`nat_router = 198.19.0.1 eth1:1\nnat_router = 2001:db8:1::1/64 eth1\nnat_router = 198.19.0.254/24 eth1\n${server1()}`);
    expect(config.globals.natRouters).toEqual([
      { address: '2001:db8:1::1', device: 'eth1', prefixLength: 64 },
      { address: '198.19.0.254', device: 'eth1', prefixLength: 24 },
    ]);
    expect(warnings.map((w) => w.message)).toContain('lvs.cf:3:1 nat_router: replaces the nat_router of line 1 (one per address family)');
  });
});

describe('where lvsd differs from Piranha, on purpose', () => {
  it('a server without a port takes its virtual port wherever the port line is', () => {
    const text = 'virtual web {\n     active = 1\n     address = 198.18.0.10 eth0:1\n     server web1 {\n         address = 198.19.0.11\n         active = 1\n     }\n     port = 443\n}\n';
    const { config, warnings } = parse(text);
    expect(config.virtuals[0]!.port).toBe(443);
    expect(config.virtuals[0]!.servers[0]!.port).toBeUndefined();
    expect(warnings.map((w) => w.message)).toEqual([
      "lvs.cf:8:6 port: comes after server blocks of virtual web: Piranha gave those servers the port set before them; lvsd gives every server without its own port the virtual's port",
    ]);
  });

  it('a key given twice: the last one counts, with a warning', () => {
    const { config, warnings } = parse(`keepalive = 3\nkeepalive = 4\n${server1()}`);
    expect(config.globals.keepalive).toBe(4);
    expect(warnings[0]!.message).toBe('lvs.cf:2:1 keepalive: given again (line 1 is ignored: the last one counts)');
    expect(config.layout!.keys.filter((k) => k.key === 'keepalive')).toHaveLength(1);
  });

  it('single quotes are stripped like double quotes', () => {
    expect(parse(server1("     send_program = '/bin/check %h'\n")).config.virtuals[0]!.sendProgram).toBe('/bin/check %h');
  });

  it('service = fos is refused: failover services are not implemented', () => {
    expect(errorsOf(`service = fos\n${server1()}`)).toEqual(['lvs.cf:1:1 service: fos (failover services) is not supported by lvsd; only lvs']);
  });
});

describe('errors', () => {
  it('the brief\'s example, to the letter', () => {
    const lines = ['primary = 198.18.0.2', ...Array(9).fill('#'), 'virtual web {', '    active = 1', '    address = 198.18.0.10 eth0:1', '    scheduler = wlcx', '}'];
    expect(errorsOf(lines.join('\n') + '\n')).toEqual(['lvs.cf:14:5 scheduler: unknown scheduler "wlcx" (expected one of rr, wrr, lc, wlc, sed, nq, lblc, lblcr, dh, sh, mh, fo, ovf, twos)']);
  });

  it('all errors of a file, in one LvsConfigError with file, line, column and field', () => {
    let err: unknown;
    try {
      parseConfig('keepalive = x\nvirtual web {\n     active = 1\n     address = 198.18.0.10 eth0:1\n     protocol = sctp\n}\nbogus = 1\n', { file: '/etc/sysconfig/ha/lvs.cf' });
    } catch (e) {
      err = e;
    }
    expect(isLvsError(err, 'LVS_CONFIG_INVALID')).toBe(true);
    const e = err as LvsConfigError;
    expect(e.errors.map((x) => [x.code, x.file, x.line, x.column, x.field])).toEqual([
      ['LVS_CONFIG_VALUE', '/etc/sysconfig/ha/lvs.cf', 1, 1, 'keepalive'],
      ['LVS_CONFIG_VALUE', '/etc/sysconfig/ha/lvs.cf', 5, 6, 'protocol'],
      ['LVS_CONFIG_UNKNOWN_KEY', '/etc/sysconfig/ha/lvs.cf', 7, 1, 'bogus'],
    ]);
    expect(e.message.split('\n')).toHaveLength(3);
    expect(e.message.split('\n')[0]).toBe('/etc/sysconfig/ha/lvs.cf:1:1 keepalive: number of seconds expected, got "x"');
    expect([e.file, e.line, e.column, e.field]).toEqual(['/etc/sysconfig/ha/lvs.cf', 1, 1, 'keepalive']);
  });

  it('a block with a broken line gets no follow-up errors', () => {
    // The address line is wrong; "active but has no address" would only repeat it.
    expect(errorsOf('virtual web {\n     active = 1\n     address = 198.18.0.999 eth0:1\n}\n')).toEqual(['lvs.cf:3:6 address: invalid host name or ip address "198.18.0.999"']);
  });
});

describe('host names', () => {
  const text = readFileSync(corpus('hostnames.cf'), 'utf8');
  const names: Record<string, string> = { 'lb1.example.com': '198.18.0.2', 'lb2.example.com': '198.18.0.3', 'www.example.com': '198.18.0.10', 'web1.example.com': '198.19.0.11' };

  it('are kept as written and resolved by resolveConfig', async () => {
    const { config } = parse(text);
    expect(config.virtuals[0]!.address).toBe('www.example.com');
    const resolved = await resolveConfig(config, { lookup: async (h) => names[h]! });
    expect(resolved.resolved).toEqual(names);
    // The model itself is unchanged: the file is written back with its names.
    expect(withoutLayout({ ...resolved, resolved: undefined } as LvsConfig)).toEqual(withoutLayout({ ...config, resolved: undefined } as LvsConfig));
  });

  it('a name that does not resolve is an error at its line', async () => {
    const { config } = parse(text);
    const failing = async (h: string) => {
      if (h === 'web1.example.com') throw new Error('getaddrinfo ENOTFOUND web1.example.com');
      return names[h]!;
    };
    await expect(resolveConfig(config, { lookup: failing })).rejects.toMatchObject({
      code: 'LVS_CONFIG_INVALID',
      message: 'lvs.cf:8:10 address: cannot resolve host name web1.example.com: getaddrinfo ENOTFOUND web1.example.com',
      errors: [expect.objectContaining({ code: 'LVS_CONFIG_HOSTNAME', line: 8, column: 10, field: 'address' })],
    });
  });

  it('family checks run once the names are known', async () => {
    const { config } = parse(text);
    await expect(resolveConfig(config, { lookup: async (h) => (h === 'web1.example.com' ? '2001:db8::11' : names[h]!) })).rejects.toMatchObject({
      message: 'lvs.cf:8:10 address: web1.example.com is IPv6 but virtual web is IPv4 (only tunnel forwarding may mix families)',
    });
  });
});

describe('reading files', () => {
  it('readConfig reads, parses and resolves; readConfigSync reads and parses', async () => {
    const r = await readConfig(corpus('minimal.cf'));
    expect(r.config.virtuals[0]!.name).toBe('web');
    expect(readConfigSync(corpus('minimal.cf')).config.virtuals[0]!.servers[0]!.address).toBe('198.19.0.11');
  });

  it('a missing file is LVS_CONFIG_IO', async () => {
    await expect(readConfig('/nonexistent/lvs.cf')).rejects.toMatchObject({ code: 'LVS_CONFIG_IO', message: expect.stringMatching(/^\/nonexistent\/lvs.cf: cannot read: ENOENT/) });
    expect(() => readConfigSync('/nonexistent/lvs.cf')).toThrow(/cannot read/);
  });

  it('errors name the file as given', () => {
    expect(() => readConfigSync(join(import.meta.dirname, 'corpus', 'invalid', 'bad-scheduler.cf'), { file: 'lvs.cf' })).toThrow(/^lvs.cf:5:5 scheduler: unknown scheduler "wlcx"/);
  });
});
