/**
 * The ipvsadm command line, parsed as ipvsadm 1.31 with popt parses it: the commands and their
 * typed results, option clustering and values, and ipvsadm's own messages and exit statuses for
 * the mistakes (2 for its fail(), 255 for "Try -h" and popt's option errors).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IpvsadmExit, IpvsadmLineError, filesNameService, inetAton, parseIpvsadm, restoreLines, type IpvsadmCommand } from '../../src/cli/ipvsadm-args.js';

const dir = mkdtempSync(join(tmpdir(), 'lvsadm-args-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n198.18.0.100 www.example www # the VIP\n2001:db8::100 www6\n198.18.1.11 web1\n');
writeFileSync(join(dir, 'services'), '# services\nhttp\t\t80/tcp\t\twww\nhttp\t\t80/udp\ndomain\t\t53/tcp\ndomain\t\t53/udp\nhttps\t\t443/tcp\n');
const names = filesNameService(join(dir, 'hosts'), join(dir, 'services'));

const parse = (line: string, readingStdin = false): IpvsadmCommand => parseIpvsadm(line.split(' ').filter(Boolean), { names, readingStdin, version: '9.9.9' });

/** What ipvsadm prints and its exit status, when the line ends the program or fails. */
function failure(line: string): { status: number; stderr: string; stdout?: string } {
  try {
    parse(line);
  } catch (e) {
    if (e instanceof IpvsadmExit) return { status: e.status, stderr: e.stderr, ...(e.stdout ? { stdout: e.stdout } : {}) };
    if (e instanceof IpvsadmLineError) return { status: e.status, stderr: e.stderr };
    throw e;
  }
  throw new Error(`"${line}" parsed`);
}

const fail2 = (message: string) => ({ status: 2, stderr: `${message}\n` });
const tryHelp = { status: 255, stderr: "Try `lvsadm -h' or 'lvsadm --help' for more information.\n" };

describe('services: -A -E -D', () => {
  it('-A with defaults: wlc, not persistent, no flags', () => {
    expect(parse('-A -t 198.18.0.100:80')).toEqual({
      command: 'add-service',
      service: { family: 'ipv4', protocol: 'tcp', address: '198.18.0.100', port: 80, fwmark: 0 },
      settings: { scheduler: 'wlc', persistence: null, flags: [], onePacket: false, persistenceEngine: null },
    });
  });

  it('short options combine, and a value may follow in the same word', () => {
    expect(parse('-At 198.18.0.100:80 -srr')).toMatchObject({ command: 'add-service', service: { port: 80 }, settings: { scheduler: 'rr' } });
    expect(parse('-A --tcp-service=198.18.0.100:80 --scheduler lc')).toMatchObject({ settings: { scheduler: 'lc' } });
  });

  it('-p takes a value only when the next word is not an option; 360 s by default', () => {
    expect(parse('-A -t 198.18.0.100:80 -p -s rr')).toMatchObject({ settings: { scheduler: 'rr', persistence: { timeout: 360, netmask: '255.255.255.255' } } });
    expect(parse('-A -t 198.18.0.100:80 -p 600')).toMatchObject({ settings: { persistence: { timeout: 600 } } });
    expect(parse('-A -t 198.18.0.100:80 -p600')).toMatchObject({ settings: { persistence: { timeout: 600 } } });
    expect(parse('-A -t 198.18.0.100:80 -p=700')).toMatchObject({ settings: { persistence: { timeout: 700 } } });
    expect(parse('-A -t 198.18.0.100:80 --persistent')).toMatchObject({ settings: { persistence: { timeout: 360 } } });
    expect(failure('-A -t 198.18.0.100:80 -p 0')).toEqual(fail2("invalid timeout value `0' specified"));
    expect(failure('-A -t 198.18.0.100:80 -p 2678401')).toEqual(fail2("invalid timeout value `2678401' specified"));
  });

  it('a port-0 service must be persistent', () => {
    expect(parse('-A -t 198.18.0.100 -p')).toMatchObject({ service: { port: 0 }, settings: { persistence: { timeout: 360 } } });
    expect(failure('-A -t 198.18.0.100')).toEqual(fail2('Zero port specified for non-persistent service'));
    expect(failure('-E -t 198.18.0.100:0 -s rr')).toEqual(fail2('Zero port specified for non-persistent service'));
  });

  it('IPv6 with brackets, masks as prefix lengths, scheduler flags by name', () => {
    expect(parse('-A -u [2001:db8::1]:53 -s sh -b sh-port,sh-fallback -p 600 -M 64')).toEqual({
      command: 'add-service',
      service: { family: 'ipv6', protocol: 'udp', address: '2001:db8::1', port: 53, fwmark: 0 },
      settings: { scheduler: 'sh', persistence: { timeout: 600, netmask: 64 }, flags: ['sh-fallback', 'sh-port'], onePacket: false, persistenceEngine: null },
    });
    expect(parse('-A -t 198.18.0.100:443 -p -M 255.255.255.0')).toMatchObject({ settings: { persistence: { netmask: '255.255.255.0' } } });
    expect(failure('-A -t [2001:db8::1]:80 -p -M 255.255.255.0')).toEqual(fail2('illegal ipv6 netmask specified'));
    expect(failure('-A -t 198.18.0.100:80 -p -M nonsense')).toEqual(fail2('illegal virtual server persistent mask specified'));
  });

  it('firewall marks, -6 only after -f', () => {
    expect(parse('-A -f 7 -s wrr')).toMatchObject({ service: { family: 'ipv4', protocol: null, address: null, port: 0, fwmark: 7 } });
    expect(parse('-A -f 7 -6 -p -M 48')).toMatchObject({ service: { family: 'ipv6', fwmark: 7 }, settings: { persistence: { timeout: 360, netmask: 48 } } });
    expect(failure('-A -6 -f 7')).toEqual({ status: 2, stderr: '-6 used before -f\n\n' });
    expect(failure('-A -f 0')).toEqual(fail2("invalid fwmark value `0' specified"));
    expect(failure('-A -f 4294967296')).toEqual(fail2("invalid fwmark value `4294967296' specified"));
    expect(failure('-A -f 7 -t 198.18.0.100:80')).toEqual(fail2("multiple 'service-address' options specified"));
  });

  it('host and service names from /etc/hosts and /etc/services; addresses as inet_aton reads them', () => {
    expect(parse('-A -t www.example:http')).toMatchObject({ service: { address: '198.18.0.100', port: 80 } });
    expect(parse('-A -u 198.18.0.100:domain')).toMatchObject({ service: { protocol: 'udp', port: 53 } });
    expect(parse('-A -t 3323068516:80')).toMatchObject({ service: { address: '198.18.0.100', port: 80 } });
    expect(parse('-A -t 198.18.100:80')).toMatchObject({ service: { address: '198.18.0.100' } });
    expect(parse('-A -t 0306.022.0.0x64:80')).toMatchObject({ service: { address: '198.18.0.100' } });
    expect(failure('-A -t nowhere.invalid:80')).toEqual(fail2('illegal virtual server address[:port] specified'));
    expect(failure('-A -t 80')).toEqual(fail2('illegal virtual server address[:port] specified'));
    expect(failure('-A -t 198.18.0.100:65536')).toEqual(fail2('illegal virtual server address[:port] specified'));
    expect(failure('-A -t [2001:db8::1]')).toEqual(fail2('illegal virtual server address[:port] specified'));
    // ipvsadm's quirk: an IPv4 address in brackets loses its port.
    expect(parse('-A -t [198.18.0.100]:80 -p')).toMatchObject({ service: { address: '198.18.0.100', port: 0 } });
  });

  it('-E sends everything (what is not given takes the default), -D needs only the service', () => {
    expect(parse('-E -t 198.18.0.100:80 -s rr')).toMatchObject({ command: 'edit-service', settings: { scheduler: 'rr', persistence: null, flags: [] } });
    expect(parse('-D -t 198.18.0.100:80')).toEqual({ command: 'delete-service', service: { family: 'ipv4', protocol: 'tcp', address: '198.18.0.100', port: 80, fwmark: 0 } });
    expect(failure('-D -t 198.18.0.100:80 -s rr')).toEqual(fail2("Illegal 'scheduler' option with the 'delete-service' command"));
    expect(failure('-E -s rr')).toEqual(fail2("You need to supply the 'service-address' option for the 'edit-service' command"));
  });

  it('scheduler flags must suit the scheduler; -o only for UDP and marks', () => {
    expect(parse('-A -t 198.18.0.100:80 -b flag-1,flag-3')).toMatchObject({ settings: { scheduler: 'wlc', flags: ['flag-1', 'flag-3'] } });
    expect(parse('-A -t 198.18.0.100:80 -s mh -b mh-port')).toMatchObject({ settings: { flags: ['mh-port'] } });
    expect(failure('-A -t 198.18.0.100:80 -b sh-port')).toEqual(fail2("incompatible scheduler flag `sh-port'"));
    expect(failure('-A -t 198.18.0.100:80 -s sh -b sh-port,bogus')).toEqual(fail2("invalid scheduler flag `bogus'"));
    expect(parse('-A -u 198.18.0.100:53 -o')).toMatchObject({ settings: { onePacket: true } });
    expect(failure('-A -t 198.18.0.100:80 -o')).toEqual(fail2('One-Packet Scheduling is only for UDP virtual services'));
  });
});

describe('real servers: -a -e -d', () => {
  it('-a: direct routing and weight 1 by default, the port of the service', () => {
    expect(parse('-a -t 198.18.0.100:80 -r 198.18.1.11')).toEqual({
      command: 'add-server',
      service: { family: 'ipv4', protocol: 'tcp', address: '198.18.0.100', port: 80, fwmark: 0 },
      server: { family: 'ipv4', address: '198.18.1.11', port: 80, method: 'direct', weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: { type: 'ipip', port: 0, checksum: null } },
    });
  });

  it('NAT keeps the given port; direct routing and tunnels take the service port', () => {
    expect(parse('-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -m -w 3')).toMatchObject({ server: { port: 8080, method: 'nat', weight: 3 } });
    expect(parse('-a -t 198.18.0.100:80 -r 198.18.1.11:8080')).toMatchObject({ server: { port: 80, method: 'direct' } });
    expect(parse('-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -i')).toMatchObject({ server: { port: 80, method: 'tunnel' } });
    // A firewall-mark service keeps the given port whatever the method.
    expect(parse('-a -f 7 -r 198.18.1.11:8080 -g')).toMatchObject({ server: { port: 8080 } });
    expect(parse('-a -f 7 -r web1')).toMatchObject({ server: { address: '198.18.1.11', port: 0 } });
  });

  it('values: -w -x -y, in every spelling popt allows', () => {
    expect(parse('-a -t 198.18.0.100:80 -r 198.18.1.11 -w3 -x 100 -y 50')).toMatchObject({ server: { weight: 3, upperThreshold: 100, lowerThreshold: 50 } });
    expect(parse('-a -t 198.18.0.100:80 -r 198.18.1.11 -w=0')).toMatchObject({ server: { weight: 0 } });
    expect(parse('-a -t 198.18.0.100:80 -r 198.18.1.11 --weight=65535')).toMatchObject({ server: { weight: 65535 } });
    expect(failure('-a -t 198.18.0.100:80 -r 198.18.1.11 -w 65536')).toEqual(fail2('illegal weight specified'));
    expect(failure('-a -t 198.18.0.100:80 -r 198.18.1.11 -w -1')).toEqual(fail2('illegal weight specified'));
    expect(failure('-a -t 198.18.0.100:80 -r 198.18.1.11 -x 1x')).toEqual(fail2('illegal u_threshold specified'));
    expect(failure('-a -t 198.18.0.100:80 -r 198.18.1.11 -y -2')).toEqual(fail2('illegal l_threshold specified'));
  });

  it('-e sends weight, method and thresholds whole, as ipvsadm does', () => {
    expect(parse('-e -t 198.18.0.100:80 -r 198.18.1.11 -w 5')).toMatchObject({ command: 'edit-server', server: { weight: 5, method: 'direct', upperThreshold: 0, lowerThreshold: 0 } });
  });

  it('-d takes the real as given, and no forwarding options', () => {
    expect(parse('-d -t 198.18.0.100:80 -r 198.18.1.11:8080')).toEqual({
      command: 'delete-server',
      service: { family: 'ipv4', protocol: 'tcp', address: '198.18.0.100', port: 80, fwmark: 0 },
      server: { family: 'ipv4', address: '198.18.1.11', port: 8080 },
    });
    expect(failure('-d -t 198.18.0.100:80 -r 198.18.1.11 -m')).toEqual(fail2("Illegal 'forwarding-method' option with the 'delete-server' command"));
  });

  it('families mix only in tunnels', () => {
    expect(parse('-a -t 198.18.0.100:80 -r [2001:db8:1::11]:80 -i')).toMatchObject({ server: { family: 'ipv6', address: '2001:db8:1::11', method: 'tunnel' } });
    expect(parse('-a -t [2001:db8::100]:80 -r 2001:db8:1::11 -m')).toMatchObject({ server: { family: 'ipv6', port: 80 } });
    expect(failure('-a -t 198.18.0.100:80 -r [2001:db8:1::11]:80 -g')).toEqual(fail2('Different address family is allowed only for tunneling servers'));
  });

  it('tunnel options and tunnel types, as ipvsadm checks them', () => {
    expect(parse('-a -t 198.18.0.100:80 -r 198.18.1.11 -i --tun-type ipip')).toMatchObject({ server: { tunnel: { type: 'ipip' } } });
    expect(parse('-a -t 198.18.0.100:80 -r 198.18.1.11 -i --tun-type gue --tun-port 6080 --tun-csum')).toMatchObject({ server: { tunnel: { type: 'gue', port: 6080, checksum: 'csum' } } });
    expect(failure('-a -t 198.18.0.100:80 -r 198.18.1.11 -m --tun-type ipip')).toEqual(fail2('Tunnel options conflict with forward method'));
    expect(failure('-a -t 198.18.0.100:80 -r 198.18.1.11 -i --tun-type gue')).toEqual(fail2("You need to supply the 'tun-port' option for the 'gue' tunnel type"));
    expect(failure('-a -t 198.18.0.100:80 -r 198.18.1.11 -i --tun-port 6080')).toEqual(fail2("Illegal 'tun-port' option with the 'ipip' tunnel type"));
    expect(failure('-a -t 198.18.0.100:80 -r 198.18.1.11 -i --tun-type gue --tun-port 6080 --tun-csum --tun-nocsum')).toEqual(
      fail2("The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type"),
    );
    expect(failure('-a -t 198.18.0.100:80 -r 198.18.1.11 -i --tun-type vxlan')).toEqual(fail2('illegal tunnel type specified'));
  });

  it('what -a needs, in ipvsadm order', () => {
    expect(failure('-a -t 198.18.0.100:80')).toEqual(fail2("You need to supply the 'real-server' option for the 'add-server' command"));
    expect(failure('-a -r 198.18.1.11')).toEqual(fail2("You need to supply the 'service-address' option for the 'add-server' command"));
    expect(failure('-a -t 198.18.0.100:80 -r 198.18.1.11 -s rr')).toEqual(fail2("Illegal 'scheduler' option with the 'add-server' command"));
    expect(failure('-a -t 198.18.0.100:80 -r 198.18.1.11 -m -g')).toEqual(fail2("multiple 'forwarding-method' options specified"));
    expect(failure('-a -t 198.18.0.100:80 -r nowhere.invalid')).toEqual(fail2('illegal real server address[:port] specified'));
  });
});

describe('listing, saving and the rest', () => {
  const fmt = { numeric: false, stats: false, rate: false, thresholds: false, persistentConn: false, tunInfo: false, exact: false, sort: true };

  it('-L and its format options', () => {
    expect(parse('-L')).toEqual({ command: 'list', service: null, show: 'services', format: fmt });
    expect(parse('-l')).toEqual({ command: 'list', service: null, show: 'services', format: fmt });
    expect(parse('-Ln')).toEqual({ command: 'list', service: null, show: 'services', format: { ...fmt, numeric: true } });
    expect(parse('--list --numeric --rate --exact --nosort --sort')).toMatchObject({ format: { numeric: true, rate: true, exact: true, sort: false } });
    expect(parse('-L -n -X --stats --thresholds --persistent-conn --tun-info')).toMatchObject({ format: { exact: true, stats: true, thresholds: true, persistentConn: true, tunInfo: true } });
    expect(parse('-Lnc')).toMatchObject({ show: 'connections', format: { numeric: true } });
    expect(parse('-L --timeout')).toMatchObject({ show: 'timeout' });
    expect(parse('-L --daemon')).toMatchObject({ show: 'daemon' });
    expect(parse('-L -t 198.18.0.100:80 --stats')).toMatchObject({ show: 'services', service: { address: '198.18.0.100', port: 80 } });
  });

  it('-L conflicts', () => {
    expect(failure('-L -c -t 198.18.0.100:80')).toEqual(fail2("The option 'service-address' conflicts with the 'connection' option in the 'list' command"));
    expect(failure('-L --timeout --daemon')).toEqual(fail2("The option 'daemon' conflicts with the 'timeout' option in the 'list' command"));
    expect(failure('-L -c --stats')).toEqual(fail2('options conflicts in the list command'));
    expect(failure('-L --timeout --persistent-conn')).toEqual(fail2('options conflicts in the list command'));
    expect(failure('-L -n -n')).toEqual(fail2("multiple 'numeric' options specified"));
    expect(failure('-L -s rr')).toEqual(fail2("Illegal 'scheduler' option with the 'list' command"));
  });

  it('-S [-n], -C, -Z [service], --set, -R', () => {
    expect(parse('-S')).toEqual({ command: 'save', format: fmt });
    expect(parse('-Sn')).toEqual({ command: 'save', format: { ...fmt, numeric: true } });
    expect(failure('-S -c')).toEqual(fail2("Illegal 'connection' option with the 'save' command"));
    expect(parse('-C')).toEqual({ command: 'flush' });
    expect(parse('--clear')).toEqual({ command: 'flush' });
    expect(failure('-C -n')).toEqual(fail2("Illegal 'numeric' option with the 'flush' command"));
    expect(parse('-Z')).toEqual({ command: 'zero', service: null });
    expect(parse('-Z -f 7 -6')).toEqual({ command: 'zero', service: { family: 'ipv6', protocol: null, address: null, port: 0, fwmark: 7 } });
    expect(parse('--set 900 120 300')).toEqual({ command: 'set', timeouts: { tcp: 900, tcpfin: 120, udp: 300 } });
    expect(parse('--set 0 0 60')).toEqual({ command: 'set', timeouts: { tcp: 0, tcpfin: 0, udp: 60 } });
    expect(failure('--set 900 120')).toEqual(fail2('--set option requires 3 timeout values'));
    expect(failure('--set 900 x 300')).toEqual(fail2("invalid timeout value `x' specified"));
    expect(failure('--set 900 120 300 5')).toEqual(fail2('unexpected argument 5'));
    expect(parse('-R')).toEqual({ command: 'restore' });
    // A -R among -R's lines is refused, and ends the program.
    expect(() => parse('-R', true)).toThrow(IpvsadmExit);
  });

  it('--start-daemon/--stop-daemon parse as ipvsadm parses them', () => {
    expect(parse('--start-daemon master --mcast-interface eth1 --syncid 5 --mcast-group 224.0.0.82 --mcast-port 8849 --mcast-ttl 2 --sync-maxlen 1400')).toEqual({
      command: 'start-daemon',
      state: 'master',
      daemon: { mcastInterface: 'eth1', syncId: 5, syncMaxlen: 1400, mcastGroup: '224.0.0.82', mcastPort: 8849, mcastTtl: 2 },
    });
    expect(parse('--start-daemon backup')).toMatchObject({ state: 'backup', daemon: { mcastInterface: 'eth0', syncId: 0 } });
    expect(parse('--stop-daemon master')).toMatchObject({ command: 'stop-daemon', state: 'master' });
    expect(failure('--start-daemon primary')).toEqual(fail2('illegal start-daemon parameter specified'));
    expect(failure('--stop-daemon primary')).toEqual(fail2('illegal start_daemon specified'));
    expect(failure('--start-daemon master --mcast-group 198.18.0.1')).toEqual(fail2("invalid IPv4 mcast-group `198.18.0.1'"));
    expect(failure('--start-daemon master --syncid 256')).toEqual(fail2('illegal syncid specified'));
    expect(failure('--stop-daemon master --mcast-interface eth1')).toEqual(fail2("Illegal 'mcast-interface' option with the 'stop-daemon' command"));
  });

  it("lvsadm's --write-config [FILE]", () => {
    expect(parse('--write-config')).toEqual({ command: 'write-config', file: null });
    expect(parse('--write-config /etc/sysconfig/ha/lvs.cf')).toEqual({ command: 'write-config', file: '/etc/sysconfig/ha/lvs.cf' });
    expect(parse('--write-config=/tmp/lvs.cf')).toEqual({ command: 'write-config', file: '/tmp/lvs.cf' });
    expect(failure('--write-config -n')).toEqual(fail2("Illegal 'numeric' option with the 'write-config' command"));
  });
});

describe('how the command line goes wrong', () => {
  it('the first option must be a command, else "Try -h" and 255', () => {
    expect(failure('-t 198.18.0.100:80 -A')).toEqual(tryHelp);
    expect(failure('-n -L')).toEqual(tryHelp);
    expect(failure('frobnicate')).toEqual(tryHelp);
    expect(failure('--frobnicate')).toEqual(tryHelp);
    expect(failure('--lis')).toEqual(tryHelp); // popt wants the whole name
  });

  it("popt's errors after the command: the word and the error, status 255", () => {
    expect(failure('-Lq')).toEqual({ status: 255, stderr: '-Lq: unknown option\n' });
    expect(failure('-L --frobnicate')).toEqual({ status: 255, stderr: '--frobnicate: unknown option\n' });
    expect(failure('-a -t 198.18.0.100:80 -r')).toEqual({ status: 255, stderr: '-r: missing argument\n' });
    expect(failure('-L --stats=1')).toEqual({ status: 255, stderr: '--stats=1: option does not take an argument\n' });
    expect(failure('-L -n=1')).toEqual({ status: 255, stderr: '-n=1: option does not take an argument\n' });
  });

  it('a second command is an "invalid option"; stray words are unexpected', () => {
    expect(failure('-L -A')).toEqual(fail2("invalid option `-A'"));
    expect(failure('-LZ')).toEqual(fail2("invalid option `-LZ'"));
    expect(failure('-L -h')).toEqual(fail2("invalid option `-h'"));
    expect(failure('-C extra')).toEqual(fail2('unexpected argument extra'));
    expect(failure('-L -- -n')).toEqual(fail2('unexpected argument -n'));
  });

  it('-h prints the usage and -v the version on stdout, status 0', () => {
    const h = failure('-h');
    expect(h.status).toBe(0);
    expect(h.stderr).toBe('');
    expect(h.stdout).toMatch(/^lvsadm v9\.9\.9 \(compiled with popt-compatible options and IPVS v1\.2\.1\)\nUsage:\n {2}lvsadm -A\|E virtual-service/);
    expect(h.stdout).toContain('  --write-config [file]       save the running configuration to lvs.cf (or file)\n');
    expect(failure('-v')).toEqual({ status: 0, stderr: '', stdout: 'lvsadm v9.9.9 (compiled with popt-compatible options and IPVS v1.2.1)\n' });
    expect(failure('--help -Z')).toMatchObject({ status: 0 }); // help comes first, whatever follows
  });
});

describe('the pieces', () => {
  it('inet_aton reads every form glibc does, and nothing else', () => {
    const t = (s: string) => (inetAton(s) ? Array.from(inetAton(s)!).join('.') : null);
    expect(t('198.18.0.100')).toBe('198.18.0.100');
    expect(t('198.18.100')).toBe('198.18.0.100');
    expect(t('198.1179748')).toBe('198.18.0.100');
    expect(t('3323068516')).toBe('198.18.0.100');
    expect(t('0xc6.022.0.100')).toBe('198.18.0.100');
    expect(t('198.18.0.100 trailing')).toBe('198.18.0.100');
    expect(t('198.18.0.256')).toBeNull();
    expect(t('198.18.0.1.1')).toBeNull();
    expect(t('198.18.0.')).toBeNull();
    expect(t('08.1.1.1')).toBeNull();
    expect(t('4294967296')).toBeNull();
    expect(t('host')).toBeNull();
  });

  it('-R input: one command a line, "ipvsadm" words dropped, blank lines skipped', () => {
    expect(restoreLines('ipvsadm -A -t 198.18.0.100:80 -s rr\n\n-a -t 198.18.0.100:80 -r 198.18.1.11 -m\r\n   \nlvsadm -C\n-Z')).toEqual([
      ['-A', '-t', '198.18.0.100:80', '-s', 'rr'],
      ['-a', '-t', '198.18.0.100:80', '-r', '198.18.1.11', '-m'],
      ['-C'],
      ['-Z'],
    ]);
    // As ipvsadm's reader: no comments, and an unterminated last line ending in blanks is lost.
    expect(restoreLines('# -C\n-Z  ')).toEqual([['#', '-C']]);
  });
});
