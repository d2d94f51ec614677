/**
 * The namespace lab: topology, addressing, the real application, the real-server preparation
 * of DR and tunnel reals, FTP, and that nothing is left behind (also after a failed create).
 * The lab runs the built real application: `npx tsc -p tsconfig.build.json` first (npm test does).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native, packageRoot } from '../../src/dataplane/native.js';
import { blobBytes, blobSha256 } from '../../src/lab/blob.js';
import { ethernet, ipPacket } from '../../src/lab/frames.js';
import { LAB, Lab, type LabReal } from '../../src/lab/lab.js';
import { removeAllNamespaces, type Netns } from '../../src/lab/netns.js';

const realApp = join(packageRoot, 'dist', 'lab', 'real-app.js');
if (!existsSync(realApp)) {
  throw new Error(`${realApp} is missing: the lab runs the built JavaScript. Run "npx tsc -p tsconfig.build.json" first (npm test does).`);
}

/** This process's namespaces. */
function ours(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`lvsd-${process.pid}-`)) : [];
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterAll(() => removeAllNamespaces());

/** Send `frame` from the client's eth0 and return the first UDP datagram a socket bound to source:port receives. */
async function sendAndReceive(lab: Lab, source: string, port: number, frame: Buffer): Promise<{ reply: string | null; from: string | null }> {
  const script = `
    const s = require('node:dgram').createSocket(process.argv[1].includes(':') ? 'udp6' : 'udp4');
    const t = setTimeout(() => { console.log(JSON.stringify({ reply: null, from: null })); process.exit(0); }, 3000);
    s.on('message', (m, r) => { clearTimeout(t); console.log(JSON.stringify({ reply: m.toString(), from: r.address })); process.exit(0); });
    s.bind({ address: process.argv[1], port: Number(process.argv[2]) }, () => console.log('listening'));`;
  const child = lab.client.ns.spawn(process.execPath, ['-e', script, source, String(port)]);
  let out = '';
  const done = new Promise<string>((resolve) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening')) {
        const eth0 = native().host.links(lab.client.ns.name).find((l) => l.name === 'eth0')!;
        native().host.sendFrame(lab.client.ns.name, eth0.ifindex, frame);
      }
    });
    child.once('exit', () => resolve(out));
  });
  const text = await done;
  return JSON.parse(text.split('\n').find((l) => l.startsWith('{'))!) as { reply: string | null; from: string | null };
}

/** A device's addresses (without link-local ones), sorted. */
function addressesOf(ns: Netns, dev: string): string[] {
  const [line] = ns.ip('-br', 'address', 'show', 'dev', dev).trim().split('\n');
  return line!.split(/\s+/).slice(2).filter((a) => !a.startsWith('fe80:')).sort();
}

/** Point the client's neighbour entry for `address` at `mac`: what a director does in DR mode. */
function steerNeighbour(ns: Netns, address: string, mac: string): void {
  ns.ip('neigh', 'replace', address, 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent');
}

describe('a lab with a NAT, a DR and a tunnel real', () => {
  let lab: Lab;
  let nat: LabReal;
  let dr: LabReal;
  let tun: LabReal;

  beforeAll(async () => {
    lab = await Lab.create({ reals: [{ method: 'nat' }, { method: 'direct', weight: 2 }, { method: 'tunnel' }], clientAddresses: 12 });
    [nat, dr, tun] = lab.reals as [LabReal, LabReal, LabReal];
    await lab.startServers();
    // Stand in for the Director: bring up the NAT router address on priv.
    lab.director.ns.ip('address', 'add', `${lab.natRouter4}/32`, 'dev', 'priv');
    lab.director.ns.ip('address', 'add', `${lab.natRouter6}/128`, 'dev', 'priv', 'nodad');
  });

  it('is addressed as documented', () => {
    expect(ours().sort()).toEqual(['client', 'director', 'r1', 'r2', 'r3', 'sw'].map((r) => `lvsd-${process.pid}-lab-${r}`).sort());
    expect(lab.reals.map((r) => [r.name, r.method, r.weight, r.address4, r.address6])).toEqual([
      ['r1', 'nat', 1, '198.18.1.11', '2001:db8:1::11'],
      ['r2', 'direct', 2, '198.18.0.12', '2001:db8::12'],
      ['r3', 'tunnel', 1, '198.18.0.13', '2001:db8::13'],
    ]);
    expect([lab.vip4(0), lab.vip6(0), lab.vip4(3), lab.vip6(3)]).toEqual(['198.18.0.100', '2001:db8::100', '198.18.0.103', '2001:db8::103']);
    expect(lab.client.extra4).toEqual([...Array.from({ length: 10 }, (_, k) => `198.18.0.${20 + k}`), '198.18.128.1', '198.18.128.2']);
    expect(lab.client.extra6.slice(9)).toEqual(['2001:db8::29', '2001:db8:2::1', '2001:db8:2::2']);
    expect(addressesOf(lab.director.ns, 'pub')).toEqual(['198.18.0.1/24', '2001:db8::1/64']);
    expect(addressesOf(lab.director.ns, 'priv')).toEqual(['198.18.1.1/24', '198.18.1.254/32', '2001:db8:1::1/64', '2001:db8:1::254/128']);
    expect(addressesOf(lab.client.ns, 'eth0')).toHaveLength(2 + 2 * 12);
    // Every real's device is eth0 with its address; each real is plugged into its LAN's bridge.
    expect(addressesOf(nat.ns, 'eth0')).toEqual(['198.18.1.11/24', '2001:db8:1::11/64']);
    expect(addressesOf(tun.ns, 'eth0')).toEqual(['198.18.0.13/24', '2001:db8::13/64']);
    const ports = lab.switch.ip('-br', 'link', 'show');
    expect(ports).toMatch(/^p-r1@\S+\s+UP.*$/m);
    expect(lab.switch.ip('-o', 'link', 'show', 'master', 'br-priv')).toMatch(/p-r1@/);
    expect(lab.switch.ip('-o', 'link', 'show', 'master', 'br-pub')).toMatch(/p-r2@[\s\S]*p-r3@|p-r3@[\s\S]*p-r2@/);
    expect(lab.switch.exec('ethtool', '-k', 'd-pub')).toMatch(/generic-receive-offload: on/);
  });

  it('routes NAT reals through the NAT router address and DR/tunnel reals straight to the client', () => {
    expect(nat.ns.ip('route', 'get', lab.client.address4)).toMatch(/via 198\.18\.1\.254 dev eth0/);
    expect(nat.ns.ip('-6', 'route', 'get', lab.client.address6!)).toMatch(/via 2001:db8:1::254 dev eth0/);
    expect(dr.ns.ip('route', 'get', lab.client.address4)).toMatch(/^198\.18\.0\.2 dev eth0/);
    expect(lab.client.ns.ip('route', 'get', nat.address4)).toMatch(/via 198\.18\.0\.1 dev eth0/);
  });

  it('prepares the DR and tunnel reals: VIPs on lo, ARP sysctls, the decapsulator on the tunnel real', () => {
    for (const r of [dr, tun]) {
      const lo = r.ns.ip('-br', 'address', 'show', 'dev', 'lo');
      for (let i = 0; i < 4; i++) {
        expect(lo).toContain(`${lab.vip4(i)}/32`);
        expect(lo).toContain(`${lab.vip6(i)}/128`);
      }
      expect(r.ns.exec('sysctl', '-n', 'net.ipv4.conf.all.arp_ignore', 'net.ipv4.conf.eth0.arp_announce').split('\n').slice(0, 2)).toEqual(['1', '2']);
    }
    expect(nat.ns.ip('-br', 'address', 'show', 'dev', 'lo')).not.toContain('198.18.0.100');
    const xdp = (r: LabReal) => native().xdpQuery(r.ns.name, native().host.links(r.ns.name).find((l) => l.name === 'eth0')!.ifindex);
    expect(xdp(tun)?.name).toBe('lvsd_decap');
    expect(xdp(dr)).toBeNull();
    expect(tun.ns.exec('sysctl', '-n', 'net.ipv4.conf.eth0.rp_filter').trim()).toBe('0');
  });

  it("every real's application answers the client on the real's own address over HTTP, IPv4 and IPv6", async () => {
    for (const r of lab.reals) {
      expect((await lab.curl(`http://${r.address4}/`)).body).toBe(`${r.name} 198.18.0.2\n`);
      const six = await lab.curl(`http://[${r.address6}]/`, ['-i']);
      expect(six.status).toBe(200);
      expect(six.body).toMatch(new RegExp(`^x-real: ${r.name}\\r$`, 'm'));
      expect(six.body.endsWith(`\r\n\r\n${r.name} 2001:db8::2\n`)).toBe(true);
    }
  });

  it('answers UDP from the address the datagram was sent to, IPv4 and IPv6', async () => {
    for (const r of lab.reals) {
      expect(await lab.udp(r.address4, 7, 'hello')).toEqual({ reply: `${r.name} 198.18.0.2 hello`, from: r.address4 });
      expect(await lab.udp(r.address6!, 7, 'hello6')).toEqual({ reply: `${r.name} 2001:db8::2 hello6`, from: r.address6 });
    }
  });

  it('the client speaks from its extra addresses, on the LAN and off it, and the reals see them', async () => {
    for (const r of lab.reals) {
      for (const src of ['198.18.0.25', '198.18.128.2']) {
        expect((await lab.curl(`http://${r.address4}/`, ['--interface', src])).body).toBe(`${r.name} ${src}\n`);
      }
      expect(await lab.udp(r.address6!, 7, 'x', { source: '2001:db8:2::1' })).toEqual({ reply: `${r.name} 2001:db8:2::1 x`, from: r.address6 });
    }
  });

  it('serves /blob, /sha256 and /slow', async () => {
    const size = 3_000_001;
    const blob = await lab.curl(`http://${dr.address4}/blob?size=${size}&seed=7`);
    expect(blob.bytes.length).toBe(size);
    expect(createHash('sha256').update(blob.bytes).digest('hex')).toBe(blobSha256(size, 7));
    // Any range of the stream on its own is the same as that part of the whole.
    expect(blobBytes(7, 1_234_567, 1001).equals(blob.bytes.subarray(1_234_567, 1_234_567 + 1001))).toBe(true);

    const body = blobBytes(9, 0, 500_000);
    const upload = await lab.run(lab.client.ns, 'curl', ['-sS', '--data-binary', '@-', '-H', 'content-type: application/octet-stream', `http://[${nat.address6}]/sha256`], { input: body });
    expect(upload.stdout).toBe(`${createHash('sha256').update(body).digest('hex')}\n`);

    const slow = await lab.curl(`http://${tun.address4}/slow?seconds=1`);
    expect(slow.body).toBe('.'.repeat(10));
    expect((await lab.curl(`http://${tun.address4}/nothing`)).status).toBe(404);
  });

  it("every real's application echoes TCP on port 7 after a HELLO line, on its own addresses and (DR) through a VIP", async () => {
    // Connect, read the HELLO line, send two lines in one write and read them back.
    const script = `
      const s = require('node:net').connect({ host: process.argv[1], port: 7 });
      let got = '';
      s.setEncoding('utf8');
      s.on('data', (d) => {
        got += d;
        if (got.includes('\\n') && !s.sent) { s.sent = true; s.write('one 1\\nlast 2\\n'); }
        if (got.endsWith('last 2\\n')) { console.log(JSON.stringify({ got, from: s.remoteAddress })); s.end(); }
      });
      s.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0); });`;
    const echo = async (address: string) => JSON.parse((await lab.run(lab.client.ns, process.execPath, ['-e', script, address], { timeoutMs: 10_000 })).stdout) as unknown;
    for (const r of lab.reals) {
      expect(await echo(r.address4)).toEqual({ got: `HELLO ${r.name}\none 1\nlast 2\n`, from: r.address4 });
      expect(await echo(r.address6!)).toEqual({ got: `HELLO ${r.name}\none 1\nlast 2\n`, from: r.address6 });
    }
    // The VIPs on a DR real's lo are local addresses: a frame for the VIP that reaches the real
    // (the director's job in DR mode) is accepted and answered from the VIP, like HTTP.
    const client = lab.client.ns;
    steerNeighbour(client, lab.vip4(1), dr.mac);
    steerNeighbour(client, lab.vip6(1), dr.mac);
    try {
      expect(await echo(lab.vip4(1))).toEqual({ got: 'HELLO r2\none 1\nlast 2\n', from: lab.vip4(1) });
      expect(await echo(lab.vip6(1))).toEqual({ got: 'HELLO r2\none 1\nlast 2\n', from: lab.vip6(1) });
    } finally {
      client.ip('neigh', 'del', lab.vip4(1), 'dev', 'eth0');
      client.ip('neigh', 'del', lab.vip6(1), 'dev', 'eth0');
    }
  });

  it('no real answers ARP or neighbour solicitations for a VIP', async () => {
    const client = lab.client.ns;
    // The lab gives the director no VIP: only the DR and tunnel reals have it, on lo, and they stay silent.
    await lab.run(client, 'ping', ['-c', '1', '-W', '1', lab.vip4(1)], { check: false });
    await lab.run(client, 'ping', ['-6', '-c', '1', '-W', '1', lab.vip6(1)], { check: false });
    expect(client.ip('neigh', 'show', lab.vip4(1))).not.toMatch(/lladdr/);
    expect(client.ip('-6', 'neigh', 'show', lab.vip6(1))).not.toMatch(/lladdr/);
    // While their own addresses resolve.
    expect(client.ip('neigh', 'show', dr.address4)).toContain(`lladdr ${dr.mac}`);
  });

  it('a DR real accepts frames for the VIP addressed to its MAC and answers from the VIP (HTTP, UDP, IPv4, IPv6)', async () => {
    const client = lab.client.ns;
    steerNeighbour(client, lab.vip4(0), dr.mac);
    steerNeighbour(client, lab.vip6(0), dr.mac);
    try {
      expect((await lab.curl(`http://${lab.vip4(0)}/`)).body).toBe('r2 198.18.0.2\n');
      expect((await lab.curl(`http://[${lab.vip6(0)}]/`)).body).toBe('r2 2001:db8::2\n');
      expect(await lab.udp(lab.vip4(0), 7, 'dr')).toEqual({ reply: 'r2 198.18.0.2 dr', from: lab.vip4(0) });
      expect(await lab.udp(lab.vip6(0), 7, 'dr6')).toEqual({ reply: 'r2 2001:db8::2 dr6', from: lab.vip6(0) });
    } finally {
      client.ip('neigh', 'del', lab.vip4(0), 'dev', 'eth0');
      client.ip('neigh', 'del', lab.vip6(0), 'dev', 'eth0');
    }
  });

  it('a tunnel real decapsulates IPIP and IPv6-in-IPv6 for a VIP and answers from the VIP', async () => {
    const c = lab.client;
    const inner4 = ipPacket({ src: c.address4, dst: lab.vip4(2), proto: 'udp', sport: 40007, dport: 7, payload: 'tunnelled' });
    const outer4 = ethernet(ipPacket({ src: LAB.director4.pub, dst: tun.address4, proto: 4, l4: inner4 }), { srcMac: c.mac, dstMac: tun.mac });
    expect(await sendAndReceive(lab, c.address4, 40007, outer4)).toEqual({ reply: 'r3 198.18.0.2 tunnelled', from: lab.vip4(2) });
    const inner6 = ipPacket({ src: c.address6!, dst: lab.vip6(2), proto: 'udp', sport: 40008, dport: 7, payload: 'tunnelled6' });
    const outer6 = ethernet(ipPacket({ src: LAB.director6.pub, dst: tun.address6!, proto: 41, l4: inner6 }), { srcMac: c.mac, dstMac: tun.mac });
    expect(await sendAndReceive(lab, c.address6!, 40008, outer6)).toEqual({ reply: 'r3 2001:db8::2 tunnelled6', from: lab.vip6(2) });
  });

  it('runs vsftpd: anonymous passive download through the VIP, with the VIP announced in the 227 reply', async () => {
    const ftp = await lab.startFtp(dr);
    steerNeighbour(lab.client.ns, lab.vip4(0), dr.mac);
    try {
      const r = await lab.curl(`ftp://${lab.vip4(0)}/${ftp.fileName}`, ['-v', '--ftp-pasv', '--disable-epsv']);
      expect(r.bytes.equals(ftp.content)).toBe(true);
      expect(r.stderr).toMatch(/227 Entering Passive Mode \(198,18,0,100,\d+,\d+\)/);
      // On the real's own address it still announces the VIP (pasv_address), as behind LVS-DR.
      const own = await lab.curl(`ftp://${dr.address4}/${ftp.fileName}`, ['-v', '--disable-epsv', '--ftp-skip-pasv-ip']);
      expect(own.bytes.equals(ftp.content)).toBe(true);
      expect(own.stderr).toMatch(/227 Entering Passive Mode \(198,18,0,100,/);
    } finally {
      lab.client.ns.ip('neigh', 'del', lab.vip4(0), 'dev', 'eth0');
      ftp.stop();
    }
    expect(existsSync(ftp.dir)).toBe(false);
  });

  it('completes 1000 concurrent connections to one real', async () => {
    const script = `
      const http = require('node:http');
      let ok = 0, failed = 0, left = 1000;
      for (let i = 0; i < 1000; i++) {
        http.get({ host: process.argv[1], port: 80, path: '/', agent: false }, (res) => {
          let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => { if (b.startsWith('r1 ')) ok++; else failed++; if (--left === 0) console.log(JSON.stringify({ ok, failed })); });
        }).on('error', () => { failed++; if (--left === 0) console.log(JSON.stringify({ ok, failed })); });
      }`;
    const r = await lab.run(lab.client.ns, process.execPath, ['-e', script, nat.address4]);
    expect(JSON.parse(r.stdout)).toEqual({ ok: 1000, failed: 0 });
  });

  it('a killed real stops answering and answers again when restarted', async () => {
    lab.stopServer(nat);
    const dead = await lab.curl(`http://${nat.address4}/`, ['--max-time', '5'], { check: false });
    expect(dead.status).toBe(0);
    expect(dead.stderr).toMatch(/Failed to connect|Connection refused/i);
    await lab.startServer(nat);
    expect((await lab.curl(`http://${nat.address4}/`)).body).toBe('r1 198.18.0.2\n');
  });

  it('destroy() kills its processes and leaves no namespace', async () => {
    const ftp = await lab.startFtp(tun);
    const all = lab.pids();
    expect(all).toHaveLength(4);
    expect(all).toContain(ftp.process.pid);
    expect(all.every(alive)).toBe(true);
    lab.destroy();
    expect(ours()).toEqual([]);
    await new Promise((r) => setTimeout(r, 200));
    expect(all.filter(alive)).toEqual([]);
    expect(existsSync(ftp.dir)).toBe(false);
    lab.destroy(); // twice is fine
  });
});

describe('a lab that cannot be built', () => {
  it('refuses bad options before creating anything', async () => {
    await expect(Lab.create({ reals: [{ method: 'bogus' as 'nat' }] })).rejects.toMatchObject({ code: 'LVS_INVALID_METHOD' });
    await expect(Lab.create({ reals: [{ method: 'nat', name: 'client' }] })).rejects.toMatchObject({ code: 'LVS_INVALID_OPTION', field: 'reals[0].name' });
    expect(ours()).toEqual([]);
  });

  it('a create() that fails midway leaves nothing behind', async () => {
    // The kernel refuses a bridge MTU above 65535 once the switch exists.
    await expect(Lab.create({ reals: [{ method: 'nat' }, { method: 'tunnel' }], mtu: 70000 })).rejects.toMatchObject({ code: 'LVS_LAB_COMMAND' });
    expect(ours()).toEqual([]);
    // Below 1280 a device has no IPv6: adding the director's addresses fails after the
    // switch, the director and their veths exist.
    await expect(Lab.create({ reals: [{ method: 'nat' }, { method: 'tunnel' }], mtu: 1200 })).rejects.toMatchObject({
      code: 'LVS_LAB_COMMAND',
      message: expect.stringMatching(/lab\d*-director -batch/),
    });
    expect(ours()).toEqual([]);
  });

  it('an IPv4-only lab works', async () => {
    const lab = await Lab.create({ reals: [{ method: 'direct' }], ipv6: false, clientAddresses: 0 });
    try {
      expect(lab.reals[0]!.address6).toBeNull();
      await lab.startServers();
      expect((await lab.curl(`http://${lab.reals[0]!.address4}/`)).body).toBe('r1 198.18.0.2\n');
      expect(lab.reals[0]!.ns.ip('-6', '-br', 'address', 'show', 'dev', 'eth0')).not.toContain('2001:db8');
    } finally {
      lab.destroy();
    }
    expect(ours()).toEqual([]);
  });
});
