/**
 * nftables suppression for the AF_PACKET backend, against the real kernel:
 *
 *   client C (198.18.0.2, 2001:db8::2) --veth-- [dc] director D [de] --veth-- E (198.18.1.2)
 *
 * D has 198.18.0.1, the VIPs 198.18.0.100 and 2001:db8::100 on dc, 198.18.1.1 on de, a
 * firewall-mark target 198.18.3.1 on lo, and forwards. Nothing listens on D's port 80, so its
 * kernel resets connections there (curl exit 7); with the rule the SYN is dropped before the
 * kernel sees it and the client times out instead (curl exit 28).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Suppression, type SuppressionSpec } from '../../src/host/suppress.js';
import { Netns, cleanupOnExit, removeAllNamespaces, vethPair } from '../../src/lab/netns.js';

cleanupOnExit();

const VIP = '198.18.0.100';
const VIP6 = '2001:db8::100';
const TABLE = 'lvsd_sup';

let c: Netns;
let d: Netns;
let e: Netns;
let sup: Suppression;

function curl(url: string): number | null {
  return spawnSync('ip', ['netns', 'exec', c.name, 'curl', '-s', '-g', '--connect-timeout', '2', '--max-time', '3', url], { timeout: 20_000 }).status;
}

/** A UDP datagram to VIP:5000 from a connected socket: 'refused' (ICMP port unreachable came
 *  back) or 'silent'. */
function udpProbe(): string {
  const script = `
    const s = require('dgram').createSocket('udp4');
    s.on('error', (err) => { console.log(err.code === 'ECONNREFUSED' ? 'refused' : err.code); process.exit(0); });
    s.connect(5000, '${VIP}', () => { s.send('x'); setTimeout(() => { console.log('silent'); process.exit(0); }, 1500); });`;
  return spawnSync('ip', ['netns', 'exec', c.name, 'node', '-e', script], { encoding: 'utf8', timeout: 20_000 }).stdout.trim();
}

function tables(ns: Netns): string {
  return ns.exec('nft', 'list', 'tables').trim();
}

/** A UDP listener in `ns` on address:9999 that prints "from-port payload" per datagram. */
function listen(ns: Netns, address: string): Promise<{ child: ChildProcess; lines: string[]; next: (want: string) => Promise<void> }> {
  const child = ns.spawn('node', ['-e', `
    const s = require('dgram').createSocket('udp4');
    s.on('message', (m, r) => console.log(r.port + ' ' + m.toString()));
    s.bind(9999, '${address}', () => console.log('ready'));`]);
  const lines: string[] = [];
  const waiters: Array<{ want: string; resolve: () => void }> = [];
  let buf = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready') {
          resolve({ child, lines, next: (want) => new Promise<void>((r) => (lines.includes(want) ? r() : waiters.push({ want, resolve: r }))) });
          continue;
        }
        lines.push(line);
        for (const w of waiters.filter((x) => x.want === line)) w.resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`listener exited (${code})`)));
  });
}

function sendFrom(port: number, to: string, payload: string): void {
  const script = `
    const s = require('dgram').createSocket('udp4');
    s.bind(${port}, '198.18.0.2', () => s.send('${payload}', 9999, '${to}', () => s.close()));`;
  const r = spawnSync('ip', ['netns', 'exec', c.name, 'node', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(r.stderr);
}

const spec: SuppressionSpec = {
  devices: ['dc', 'de'],
  services: [
    { address: VIP, protocol: 'tcp', port: 80 },
    { address: VIP6, protocol: 'tcp', port: 80 },
    { address: VIP, protocol: 'udp', port: 0 },
  ],
  natReals: [{ address: '198.18.0.2', protocol: 'udp', port: 5353 }],
  locals: ['198.18.0.1', '198.18.1.1', VIP, VIP6],
  prefixes: [{ address: '198.18.3.0', prefixLength: 24 }],
};

beforeAll(() => {
  c = Netns.create('supc');
  d = Netns.create('supd');
  e = Netns.create('supe');
  vethPair(c, 'eth0', d, 'dc');
  vethPair(d, 'de', e, 'eth0');
  c.ip('addr', 'add', '198.18.0.2/24', 'dev', 'eth0');
  c.ip('addr', 'add', '2001:db8::2/64', 'dev', 'eth0', 'nodad');
  c.ip('route', 'add', '198.18.1.0/24', 'via', '198.18.0.1');
  c.ip('route', 'add', '198.18.3.0/24', 'via', '198.18.0.1');
  d.ip('addr', 'add', '198.18.0.1/24', 'dev', 'dc');
  d.ip('addr', 'add', `${VIP}/32`, 'dev', 'dc');
  d.ip('addr', 'add', '2001:db8::1/64', 'dev', 'dc', 'nodad');
  d.ip('addr', 'add', `${VIP6}/128`, 'dev', 'dc', 'nodad');
  d.ip('addr', 'add', '198.18.1.1/24', 'dev', 'de');
  d.ip('addr', 'add', '198.18.3.1/32', 'dev', 'lo');
  d.sysctl('net.ipv4.ip_forward', 1);
  e.ip('addr', 'add', '198.18.1.2/24', 'dev', 'eth0');
  e.ip('route', 'add', 'default', 'via', '198.18.1.1');
  sup = new Suppression(d.name, TABLE);
});

afterAll(() => removeAllNamespaces());

describe('Suppression', () => {
  test("without the table the director's kernel answers everything", () => {
    expect(curl(`http://${VIP}:80/`)).toBe(7);
    expect(curl(`http://[${VIP6}]:80/`)).toBe(7);
    expect(curl('http://198.18.3.1:80/')).toBe(7);
    expect(udpProbe()).toBe('refused');
  });

  test('the real nft accepts the ruleset, in the namespace only', () => {
    sup.apply(spec);
    expect(tables(d)).toBe(`table netdev ${TABLE}`);
    const listing = d.exec('nft', 'list', 'table', 'netdev', TABLE);
    expect(listing).toContain('hook ingress device "dc" priority -500');
    expect(listing).toContain('hook ingress device "de" priority -500');
    expect(listing).toContain('198.18.0.100 . tcp . 80');
    expect(tables(c)).toBe('');
  });

  test('service traffic is dropped before the kernel answers; other ports and echo are not', () => {
    expect(curl(`http://${VIP}:80/`)).toBe(28);
    expect(curl(`http://[${VIP6}]:80/`)).toBe(28);
    expect(curl(`http://${VIP}:81/`)).toBe(7);
    expect(curl(`http://[${VIP6}]:81/`)).toBe(7);
    expect(c.exec('ping', '-c', '1', '-W', '2', VIP)).toContain('1 received');
    expect(c.exec('ping', '-c', '1', '-W', '2', VIP6)).toContain('1 received');
    expect(c.exec('ping', '-c', '1', '-W', '2', '198.18.0.1')).toContain('1 received');
  });

  test('a port-0 service takes every port of its protocol; a prefix takes TCP to it', () => {
    expect(udpProbe()).toBe('silent');
    expect(curl('http://198.18.3.1:80/')).toBe(28);
  });

  test("NAT replies are dropped unless they are for the director's own addresses", async () => {
    const far = await listen(e, '198.18.1.2');
    const own = await listen(d, '198.18.0.1');
    // From the NAT real's (address, udp, 5353): not forwarded on. From another port: forwarded.
    // The second datagram takes the same path, so once it arrived the first would have too.
    sendFrom(5353, '198.18.1.2', 'nat-reply');
    sendFrom(5354, '198.18.1.2', 'other-port');
    await far.next('5354 other-port');
    expect(far.lines).toEqual(['5354 other-port']);
    // To one of the director's own addresses: the kernel's.
    sendFrom(5353, '198.18.0.1', 'health-check');
    await own.next('5353 health-check');
    far.child.kill();
    own.child.kill();
  });

  test('apply() replaces the whole table in one transaction', () => {
    sup.apply({ ...spec, services: [{ address: VIP, protocol: 'tcp', port: 81 }], prefixes: [] });
    expect(tables(d)).toBe(`table netdev ${TABLE}`);
    expect(curl(`http://${VIP}:80/`)).toBe(7);
    expect(curl(`http://${VIP}:81/`)).toBe(28);
    expect(curl('http://198.18.3.1:80/')).toBe(7);
  });

  test('remove() leaves no table, and may be called again', () => {
    sup.remove();
    expect(tables(d)).toBe('');
    sup.remove();
    expect(curl(`http://${VIP}:81/`)).toBe(7);
  });

  test('bad specs are refused with a code; nft failures are LVS_HOST with what nft said', () => {
    expect(() => sup.apply({ ...spec, devices: [] })).toThrow(expect.objectContaining({ code: 'LVS_INVALID_INTERFACE' }));
    expect(() => sup.apply({ ...spec, devices: ['bad name"'] })).toThrow(expect.objectContaining({ code: 'LVS_INVALID_INTERFACE' }));
    expect(() => sup.apply({ ...spec, services: [{ address: '198.18.0.300', protocol: 'tcp', port: 80 }] })).toThrow(expect.objectContaining({ code: 'LVS_INVALID_ADDRESS' }));
    expect(() => sup.apply({ ...spec, services: [{ address: VIP, protocol: 'sctp' as 'tcp', port: 80 }] })).toThrow(expect.objectContaining({ code: 'LVS_INVALID_PROTOCOL' }));
    expect(() => sup.apply({ ...spec, natReals: [{ address: VIP, protocol: 'tcp', port: 70000 }] })).toThrow(expect.objectContaining({ code: 'LVS_INVALID_PORT' }));
    expect(() => new Suppression(d.name, 'no spaces')).toThrow(expect.objectContaining({ code: 'LVS_INVALID_ARGUMENT' }));
    expect(() => new Suppression('lvsd-no-such-namespace', TABLE).apply(spec)).toThrow(
      expect.objectContaining({ code: 'LVS_HOST', message: expect.stringContaining('lvsd-no-such-namespace') }),
    );
    // Nothing was left behind by the refused ones.
    expect(tables(d)).toBe('');
  });
});
