/**
 * lvsadm end to end against a stand-in for lvsd: a unix socket in a temporary directory that
 * speaks the control protocol (src/daemon/protocol.ts) over a small in-memory table. What is
 * checked: the requests each ipvsadm command line becomes, what is printed and the exit status,
 * lvsd's errors as ipvsadm's messages, -R's line-by-line semantics, -S | -C | -R reproducing
 * the table, and what happens when no lvsd answers. The real daemon is in lvsadm.e2e.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NO_NAMES } from '../../src/cli/ipvsadm-args.js';
import { lvsadm } from '../../src/cli/lvsadm.js';
import { CONTROL_PROTOCOL_VERSION, type ControlMessage, type ListedService } from '../../src/daemon/protocol.js';
import { SCHEDULERS, type ConnectionEntry, type ServiceKey, type Timeouts } from '../../src/dataplane/types.js';
import { parseAddress, prefixMask } from '../../src/net/address.js';

class ProtocolError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const zero = () => ({ connections: 0, packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 });
const noRates = () => ({ cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });
const canon = (a: string) => parseAddress(a).text;

/** Just enough lvsd: a table of services and reals, kept as `list` reports them. */
class FakeLvsd {
  readonly requests: ControlMessage[] = [];
  services: ListedService[] = [];
  timeouts: Timeouts = { tcp: 900, tcpfin: 120, udp: 300 };
  connections: ConnectionEntry[] = [];
  /** Answer every request with this protocol version (to test a mismatch). */
  version = CONTROL_PROTOCOL_VERSION;
  private server!: Server;

  constructor(readonly path: string) {}

  async start(): Promise<void> {
    this.server = createServer((sock) => {
      createInterface({ input: sock }).on('line', (line) => {
        const m = JSON.parse(line) as ControlMessage;
        this.requests.push(m);
        let reply: object;
        if (this.version !== m.v) reply = { v: this.version, id: m.id, ok: false, error: { code: 'LVS_PROTOCOL', message: `protocol version ${m.v} is not spoken here (lvsd speaks ${this.version})` } };
        else {
          try {
            reply = { v: this.version, id: m.id, ok: true, result: this.handle(m) };
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
            reply = { v: this.version, id: m.id, ok: false, error: { code: e.code, message: e.message } };
          }
        }
        sock.write(`${JSON.stringify(reply)}\n`);
      });
      sock.on('error', () => sock.destroy());
    });
    await new Promise<void>((resolve) => this.server.listen(this.path, resolve));
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  ops(): string[] {
    return this.requests.map((r) => r.op);
  }

  private find(k: ServiceKey): ListedService | undefined {
    if ('fwmark' in k) return this.services.find((s) => s.fwmark === k.fwmark && s.family === (k.family ?? 'ipv4'));
    return this.services.find((s) => !s.fwmark && s.protocol === k.protocol && s.port === k.port && s.address === canon(k.address));
  }

  private need(k: ServiceKey): ListedService {
    const s = this.find(k);
    if (!s) throw new ProtocolError('LVS_NO_SUCH_SERVICE', 'Service not defined');
    return s;
  }

  private handle(m: ControlMessage): unknown {
    switch (m.op) {
      case 'hello':
        return { version: 1, daemon: 'lvsd', pid: 1, config: '/etc/sysconfig/ha/lvs.cf' };
      case 'list':
        return { tableSize: 4096, services: this.services };
      case 'connections':
        return this.connections;
      case 'timeouts':
        return this.timeouts;
      case 'set-timeouts':
        for (const k of ['tcp', 'tcpfin', 'udp'] as const) if (m.timeouts[k]) this.timeouts[k] = m.timeouts[k]!;
        return null;
      case 'add-service': {
        const spec = m.service;
        if (this.find(spec)) throw new ProtocolError('LVS_SERVICE_EXISTS', 'Service already exists');
        if ('address' in spec && canon(spec.address) === '198.18.0.250') throw new ProtocolError('LVS_CAPACITY', 'no room for another service (maxServices 1)');
        const family = 'fwmark' in spec ? (spec.family ?? 'ipv4') : parseAddress(spec.address).family;
        const s: ListedService = {
          family,
          protocol: 'fwmark' in spec ? null : spec.protocol,
          address: 'fwmark' in spec ? null : canon(spec.address),
          port: 'fwmark' in spec ? 0 : spec.port,
          fwmark: 'fwmark' in spec ? spec.fwmark : 0,
          scheduler: 'wlc',
          flags: [],
          persistence: null,
          maglevTableSize: null,
          quiesce: false,
          reals: [],
          stats: zero(),
          rates: noRates(),
        };
        this.configure(s, spec);
        this.services.push(s);
        return null;
      }
      case 'edit-service':
        this.configure(this.need(m.key), m.changes);
        return null;
      case 'delete-service': {
        const s = this.need(m.key);
        this.services = this.services.filter((x) => x !== s);
        return null;
      }
      case 'clear':
        this.services = [];
        return null;
      case 'add-real': {
        const s = this.need(m.key);
        const port = m.real.port ?? s.port;
        if (s.reals.some((r) => r.address === canon(m.real.address) && r.port === port)) throw new ProtocolError('LVS_REAL_EXISTS', 'Destination already exists');
        if (canon(m.real.address) === '198.18.1.250') throw new ProtocolError('LVS_NEIGHBOUR', '198.18.1.250: no route from any lvsd interface');
        if ((m.real.lowerThreshold ?? 0) > (m.real.upperThreshold ?? 0)) throw new ProtocolError('LVS_INVALID_THRESHOLD', 'lowerThreshold above upperThreshold');
        const weight = m.real.weight ?? 1;
        s.reals.unshift({
          address: canon(m.real.address), family: parseAddress(m.real.address).family, port, weight, currentWeight: weight,
          upperThreshold: m.real.upperThreshold ?? 0, lowerThreshold: m.real.lowerThreshold ?? 0, method: m.real.method ?? 'direct', interface: 1, mac: null,
          activeConnections: 0, inactiveConnections: 0, persistentConnections: 0, stats: zero(), rates: noRates(),
        });
        return null;
      }
      case 'edit-real': {
        const s = this.need(m.key);
        const r = s.reals.find((x) => x.address === canon(m.real.address) && x.port === (m.real.port ?? s.port));
        if (!r) throw new ProtocolError('LVS_NO_SUCH_REAL', 'No such destination');
        Object.assign(r, m.changes);
        if (m.changes.weight !== undefined) r.currentWeight = m.changes.weight;
        return null;
      }
      case 'delete-real': {
        const s = this.need(m.key);
        const before = s.reals.length;
        s.reals = s.reals.filter((x) => !(x.address === canon(m.real.address) && x.port === (m.real.port ?? s.port))) as ListedService['reals'];
        if (s.reals.length === before) throw new ProtocolError('LVS_NO_SUCH_REAL', 'No such destination');
        return null;
      }
      case 'zero':
        for (const s of m.key ? [this.need(m.key)] : this.services) {
          s.stats = zero();
          for (const r of s.reals) r.stats = zero();
        }
        return null;
      case 'write-config':
        return { file: m.file ?? '/etc/sysconfig/ha/lvs.cf', serial: 7 };
    }
  }

  private configure(s: ListedService, o: { scheduler?: string; flags?: ListedService['flags']; persistence?: unknown }): void {
    if (o.scheduler !== undefined && !(SCHEDULERS as readonly string[]).includes(o.scheduler)) throw new ProtocolError('LVS_INVALID_SCHEDULER', `unknown scheduler ${o.scheduler}`);
    if (o.scheduler !== undefined) s.scheduler = o.scheduler as ListedService['scheduler'];
    if (o.flags !== undefined) s.flags = o.flags;
    if (o.persistence === false) s.persistence = null;
    else if (o.persistence && typeof o.persistence === 'object') {
      const p = o.persistence as { timeout: number; netmask: string | number };
      s.persistence = { timeout: p.timeout, netmask: typeof p.netmask === 'number' ? prefixMask(s.family, p.netmask).text : p.netmask };
    }
  }
}

const dir = mkdtempSync(join(tmpdir(), 'lvsadm-'));
const socket = join(dir, 'lvsd.sock');
let lvsd: FakeLvsd;

beforeAll(async () => {
  lvsd = new FakeLvsd(socket);
  await lvsd.start();
});
afterAll(async () => {
  await lvsd.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  lvsd.services = [];
  lvsd.requests.length = 0;
  lvsd.version = CONTROL_PROTOCOL_VERSION;
  lvsd.timeouts = { tcp: 900, tcpfin: 120, udp: 300 };
});

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run lvsadm as the shell would split `line`; stdin for -R. */
async function run(line: string, stdin = '', env: NodeJS.ProcessEnv = { LVSD_SOCKET: socket }): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const status = await lvsadm(line.split(' ').filter(Boolean), {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readStdin: async () => stdin,
    env,
    names: NO_NAMES,
  });
  return { status, stdout, stderr };
}

const ok = (stdout = '') => ({ status: 0, stdout, stderr: '' });
const HEAD = 'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';

describe('commands become control requests', () => {
  it('-A, -a, -e and -E send what ipvsadm would send the kernel', async () => {
    expect(await run('-A -t 198.18.0.100:80 -s rr -p 600 -M 255.255.255.0')).toEqual(ok());
    expect(await run('-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -m -w 2 -x 100 -y 10')).toEqual(ok());
    expect(await run('-e -t 198.18.0.100:80 -r 198.18.1.11:8080 -m -w 5')).toEqual(ok());
    expect(await run('-E -t 198.18.0.100:80 -s sh -b sh-port')).toEqual(ok());
    const [add, real, edit, editSvc] = lvsd.requests;
    expect(add).toMatchObject({ v: 1, op: 'add-service', service: { protocol: 'tcp', address: '198.18.0.100', port: 80, scheduler: 'rr', flags: [], persistence: { timeout: 600, netmask: '255.255.255.0' } } });
    expect(real).toMatchObject({ op: 'add-real', key: { protocol: 'tcp', address: '198.18.0.100', port: 80 }, real: { address: '198.18.1.11', port: 8080, method: 'nat', weight: 2, upperThreshold: 100, lowerThreshold: 10 } });
    // An edit sets the thresholds back to 0 when not given, as ipvsadm's does.
    expect(edit).toMatchObject({ op: 'edit-real', real: { address: '198.18.1.11', port: 8080 }, changes: { weight: 5, method: 'nat', upperThreshold: 0, lowerThreshold: 0 } });
    // ... and an edited service without -p is no longer persistent.
    expect(editSvc).toMatchObject({ op: 'edit-service', key: { protocol: 'tcp', address: '198.18.0.100', port: 80 }, changes: { scheduler: 'sh', flags: ['sh-port'], persistence: false } });
    expect((await run('-L -n')).stdout).toBe(HEAD + 'TCP  198.18.0.100:80 sh (sh-port)\n  -> 198.18.1.11:8080             Masq    5      0          0         \n');
  });

  it('-D, -d, -Z, -C, --set and --write-config', async () => {
    await run('-A -f 7 -6 -s rr');
    await run('-a -f 7 -6 -r 2001:db8:1::11 -g');
    expect(await run('-d -f 7 -6 -r 2001:db8:1::11')).toEqual(ok());
    expect(await run('-Z -f 7 -6')).toEqual(ok());
    expect(await run('-Z')).toEqual(ok());
    expect(await run('-D -f 7 -6')).toEqual(ok());
    expect(await run('--set 1000 0 60')).toEqual(ok());
    expect(await run('-C')).toEqual(ok());
    expect(await run('--write-config /tmp/lvs.cf')).toEqual(ok());
    expect(lvsd.requests.slice(2).map(({ v: _v, id: _id, ...r }) => r)).toEqual([
      { op: 'delete-real', key: { fwmark: 7, family: 'ipv6' }, real: { address: '2001:db8:1::11', port: 0 } },
      { op: 'zero', key: { fwmark: 7, family: 'ipv6' } },
      { op: 'zero' },
      { op: 'delete-service', key: { fwmark: 7, family: 'ipv6' } },
      { op: 'set-timeouts', timeouts: { tcp: 1000, tcpfin: 0, udp: 60 } },
      { op: 'clear' },
      { op: 'write-config', file: '/tmp/lvs.cf' },
    ]);
    expect((await run('-L --timeout')).stdout).toBe('Timeout (tcp tcpfin udp): 1000 120 60\n');
  });

  it('no arguments lists the table with names; -L <service> shows one service, no header', async () => {
    await run('-A -t 198.18.0.100:80');
    await run('-A -t 198.18.0.101:80');
    await run('-a -t 198.18.0.101:80 -r 198.18.1.12');
    expect(await run('')).toEqual(ok(HEAD + 'TCP  198.18.0.100:80 wlc\nTCP  198.18.0.101:80 wlc\n  -> 198.18.1.12:80               Route   1      0          0         \n'));
    expect(await run('-L -n -t 198.18.0.101:80')).toEqual(
      ok('Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  198.18.0.101:80 wlc\n  -> 198.18.1.12:80               Route   1      0          0         \n'),
    );
    expect(await run('-L -n -t 198.18.0.102:80')).toEqual({ status: 1, stdout: '', stderr: 'No such service\n' });
  });

  it('-L --daemon prints nothing (lvsd runs no IPVS sync daemon); -c lists connections', async () => {
    expect(await run('-L --daemon')).toEqual(ok());
    lvsd.connections = [
      { protocol: 'TCP', state: 'ESTABLISHED', expiresIn: 898_400, client: { address: '198.18.0.20', port: 51514 }, virtual: { address: '198.18.0.100', port: 80 }, destination: { address: '198.18.1.11', port: 80 }, fwmark: 0, method: 'nat', template: false, packetsIn: 3 },
    ];
    expect(await run('-L -n -c')).toEqual(ok('IPVS connection entries\npro expire state       source             virtual            destination\nTCP 14:58  ESTABLISHED 198.18.0.20:51514  198.18.0.100:80    198.18.1.11:80\n'));
  });
});

describe("lvsd's errors, as ipvsadm prints the kernel's", () => {
  it('per operation, with status 255', async () => {
    await run('-A -t 198.18.0.100:80');
    expect(await run('-A -t 198.18.0.100:80')).toEqual({ status: 255, stdout: '', stderr: 'Service already exists\n' });
    expect(await run('-E -t 198.18.0.101:80')).toEqual({ status: 255, stdout: '', stderr: 'No such service\n' });
    expect(await run('-D -t 198.18.0.101:80')).toEqual({ status: 255, stdout: '', stderr: 'No such service\n' });
    expect(await run('-Z -t 198.18.0.101:80')).toEqual({ status: 255, stdout: '', stderr: 'No such service\n' });
    expect(await run('-a -t 198.18.0.101:80 -r 198.18.1.11')).toEqual({ status: 255, stdout: '', stderr: 'Service not defined\n' });
    expect(await run('-d -t 198.18.0.101:80 -r 198.18.1.11')).toEqual({ status: 255, stdout: '', stderr: 'Service not defined\n' });
    await run('-a -t 198.18.0.100:80 -r 198.18.1.11');
    expect(await run('-a -t 198.18.0.100:80 -r 198.18.1.11')).toEqual({ status: 255, stdout: '', stderr: 'Destination already exists\n' });
    expect(await run('-e -t 198.18.0.100:80 -r 198.18.1.12')).toEqual({ status: 255, stdout: '', stderr: 'No such destination\n' });
    expect(await run('-d -t 198.18.0.100:80 -r 198.18.1.12')).toEqual({ status: 255, stdout: '', stderr: 'No such destination\n' });
    expect(await run('-A -t 198.18.0.102:80 -s nosuch')).toEqual({ status: 255, stdout: '', stderr: 'Scheduler or persistence engine not found\n' });
    expect(await run('-A -t 198.18.0.250:80')).toEqual({ status: 255, stdout: '', stderr: 'Memory allocation problem\n' });
    expect(await run('-a -t 198.18.0.100:80 -r 198.18.1.13 -y 5')).toEqual({ status: 255, stdout: '', stderr: 'Numerical result out of range\n' });
    // Nothing like it in ipvsadm: lvsd's own code and words.
    expect(await run('-a -t 198.18.0.100:80 -r 198.18.1.250')).toEqual({ status: 255, stdout: '', stderr: 'lvsadm: LVS_NEIGHBOUR: 198.18.1.250: no route from any lvsd interface\n' });
  });

  it('what lvsd does not do is refused without asking it', async () => {
    const refused = (stderr: string) => ({ status: 255, stdout: '', stderr });
    expect(await run('--start-daemon master')).toEqual(refused("lvsadm: connection synchronization is lvsd's own (issue 7): lvsadm cannot start an IPVS master sync daemon\n"));
    expect(await run('--stop-daemon backup')).toEqual(refused("lvsadm: connection synchronization is lvsd's own (issue 7): lvsadm cannot stop an IPVS backup sync daemon\n"));
    expect(await run('-A -u 198.18.0.100:53 -o')).toEqual(refused('lvsadm: one-packet scheduling (-o, --ops) is not supported by lvsd\n'));
    expect(await run('-A -t 198.18.0.100:5060 --pe sip')).toEqual(refused('Scheduler or persistence engine not found\n'));
    expect(await run('-A --sctp-service 198.18.0.100:80')).toEqual(refused('lvsadm: SCTP services are not supported by lvsd\n'));
    expect(await run('-a -t 198.18.0.100:80 -r 198.18.1.11 -i --tun-type gre')).toEqual(refused('lvsadm: tunnel type gre is not supported: lvsd tunnels with ipip only\n'));
    expect(lvsd.requests).toEqual([]);
  });

  it('option errors exit as ipvsadm does, before lvsd is asked', async () => {
    expect(await run('-A -t 198.18.0.100')).toEqual({ status: 2, stdout: '', stderr: 'Zero port specified for non-persistent service\n' });
    expect(await run('-Lq')).toEqual({ status: 255, stdout: '', stderr: '-Lq: unknown option\n' });
    expect(await run('-x')).toEqual({ status: 255, stdout: '', stderr: "Try `lvsadm -h' or 'lvsadm --help' for more information.\n" });
    const v = await run('-v');
    expect(v).toMatchObject({ status: 0, stderr: '' });
    expect(v.stdout).toMatch(/^lvsadm v\d+\.\d+\.\d+ \(compiled with popt-compatible options and IPVS v1\.2\.1\)\n$/);
    expect(lvsd.requests).toEqual([]);
  });
});

describe('-S and -R', () => {
  it('-S -n | -C | -R gives back the same table', async () => {
    for (const line of [
      '-A -t 198.18.0.100:80 -s wrr',
      '-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -m -w 3',
      '-a -t 198.18.0.100:80 -r 198.18.1.12:8080 -m -w 0',
      '-A -u [2001:db8::100]:53 -s sh -b sh-fallback -p 120 -M 64',
      '-a -u [2001:db8::100]:53 -r [2001:db8:1::11]:53 -i',
      '-A -f 9 -s mh -p',
      '-a -f 9 -r 198.18.1.13 -g -w 7',
      '-A -t 198.18.0.101:443 -s lc -p 300 -M 255.255.0.0',
      '-a -t 198.18.0.101:443 -r 198.18.1.14 -g',
    ]) {
      expect(await run(line)).toEqual(ok());
    }
    const listing = (await run('-L -n')).stdout;
    const saved = await run('-S -n');
    expect(saved).toEqual(
      ok(
        '-A -t 198.18.0.100:80 -s wrr\n' +
          '-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -m -w 3\n' +
          '-a -t 198.18.0.100:80 -r 198.18.1.12:8080 -m -w 0\n' +
          '-A -t 198.18.0.101:443 -s lc -p 300 -M 255.255.0.0\n' +
          '-a -t 198.18.0.101:443 -r 198.18.1.14:443 -g -w 1\n' +
          '-A -u [2001:db8::100]:53 -s sh -p 120 -M 64 -b sh-fallback\n' +
          '-a -u [2001:db8::100]:53 -r [2001:db8:1::11]:53 -i -w 1 --tun-type ipip\n' +
          '-A -f 9 -s mh -p 360\n' +
          '-a -f 9 -r 198.18.1.13:0 -g -w 7\n',
      ),
    );
    expect(await run('-C')).toEqual(ok());
    expect((await run('-L -n')).stdout).toBe(HEAD);
    expect(await run('-R', saved.stdout)).toEqual(ok());
    expect((await run('-L -n')).stdout).toBe(listing);
    expect((await run('-S -n')).stdout).toBe(saved.stdout);
  });

  it('-R: a failing line is reported and the next runs; the status is the last line\'s', async () => {
    const input = 'ipvsadm -A -t 198.18.0.100:80\n-A -t 198.18.0.100:80\n-L --frobnicate\n-a -t 198.18.0.100:80 -r 198.18.1.11\n';
    expect(await run('-R', input)).toEqual({ status: 0, stdout: '', stderr: 'Service already exists\n--frobnicate: unknown option\n' });
    expect(await run('-R', '-A -t 198.18.0.101:80\n-D -t 198.18.0.199:80\n')).toEqual({ status: 255, stdout: '', stderr: 'No such service\n' });
    // ipvsadm's fail() ends -R at once, and so does a -R inside -R.
    expect(await run('-R', '-A -t 198.18.0.102:80\n-A -t 198.18.0.103\n-A -t 198.18.0.104:80\n')).toEqual({ status: 2, stdout: '', stderr: 'Zero port specified for non-persistent service\n' });
    expect(await run('-R', '-R\n-A -t 198.18.0.105:80\n')).toMatchObject({ status: 255, stderr: "Try `lvsadm -h' or 'lvsadm --help' for more information.\n" });
    expect(lvsd.services.map((s) => s.address)).toEqual(['198.18.0.100', '198.18.0.101', '198.18.0.102']);
    // A listing in -R prints as it would alone.
    expect(await run('-R', '-L -n\n')).toEqual(ok(HEAD + (await run('-L -n')).stdout.slice(HEAD.length)));
  });
});

describe('the socket', () => {
  it('--socket, $LVSD_SOCKET, and the default; nothing listening: exit 2 with the reason', async () => {
    expect(await run(`--socket ${socket} -L -n`, '', {})).toEqual(ok(HEAD));
    expect(await run(`-L --socket=${socket} -n`, '', {})).toEqual(ok(HEAD));
    const missing = join(dir, 'none.sock');
    expect(await run('-L -n', '', { LVSD_SOCKET: missing })).toEqual({ status: 2, stdout: '', stderr: `lvsadm: cannot reach lvsd at ${missing}: No such file or directory\n` });
    expect(await run(`--socket ${missing} -C`)).toEqual({ status: 2, stdout: '', stderr: `lvsadm: cannot reach lvsd at ${missing}: No such file or directory\n` });
    // A socket file nobody listens on any more.
    const stale = join(dir, 'stale.sock');
    // A process that listened there and was killed: the file stays, nobody accepts.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(existsSync(stale)).toBe(true);
    expect(await run(`--socket ${stale} -L`)).toEqual({ status: 2, stdout: '', stderr: `lvsadm: cannot reach lvsd at ${stale}: Connection refused\n` });
    expect(await run('-L', '', { LVSD_SOCKET: '' })).toMatchObject({ status: 2, stderr: expect.stringContaining('lvsadm: cannot reach lvsd at /run/lvsd/lvsd.sock: ') });
  });

  it('a daemon of another protocol version: its message, exit 2', async () => {
    lvsd.version = 2;
    expect(await run('-L -n')).toEqual({ status: 2, stdout: '', stderr: 'lvsadm: protocol version 1 is not spoken here (lvsd speaks 2)\n' });
  });
});
