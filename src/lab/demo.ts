/**
 * `npm start`: a director on a self-contained demo lab. As root it builds the namespace lab
 * (src/lab/lab.ts: a client, a director and six real servers), runs lvsd there on an embedded
 * lvs.cf (demoLvsCf: a NAT web service with wlc and three reals of weights 3, 2, 1, a
 * direct-routing service, a firewall-mark bundle and an IPIP tunnel), sends demo traffic from
 * the client, and shows `lvsadm -L -n --rate` every second, read over lvsd's control socket
 * as lvsadm reads it. Ctrl-C tears it all down.
 * Without root (namespaces need it) it runs the in-process demo of src/lab/memory-demo.ts.
 *
 *   node dist/lab/demo.js [--seconds N] [--plain] [--io xdp|packet]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../cli/client.js';
import { formatRate } from '../cli/format.js';
import { startDaemon, type Daemon } from '../daemon/daemon.js';
import { packageRoot } from '../dataplane/native.js';
import type { Logger } from '../director/types.js';
import { Lab } from './lab.js';
import { runMemoryDemo, type DemoOptions } from './memory-demo.js';

export type { DemoOptions };

export interface LabDemoOptions extends DemoOptions {
  io?: 'xdp' | 'packet';
}

export async function runDemo(options: LabDemoOptions = {}): Promise<void> {
  if (process.getuid?.() !== 0) {
    (options.write ?? ((t: string) => process.stdout.write(t)))('lvsd demo: not root, so no network namespaces: running the in-process demo instead (sudo npm start for the lab).\n');
    return runMemoryDemo(options);
  }
  return runLabDemo(options);
}

/** The demo's lvs.cf: what an operator would write for this lab (docs/lvs.cf.md). */
export function demoLvsCf(lab: Lab): string {
  const real = (name: string, extra = '') => `     server ${name} {\n         address = ${lab.real(name).address4}\n         active = 1\n${extra}     }\n`;
  return `# The npm start demo: Piranha's lvs.cf, plus lvsd's extensions (method, fwmark_rule).
serial_no = 1
primary = ${lab.director.address4.pub}
service = lvs
network = nat
nat_router = ${lab.natRouter4} priv:1
# NAT: weighted least-connection over three reals of different weights.
virtual web {
     active = 1
     address = ${lab.vip4(0)} pub:1
     port = 80
     protocol = tcp
     scheduler = wlc
     timeout = 2
${real('web1', '         weight = 3\n')}${real('web2', '         weight = 2\n')}${real('web3', '         weight = 1\n')}}
# Direct routing: the reals answer the clients themselves.
virtual dr {
     active = 1
     address = ${lab.vip4(1)} pub:2
     port = 80
     scheduler = rr
     timeout = 2
${real('dr1', '         method = direct\n')}${real('dr2', '         method = direct\n')}}
# A firewall-mark bundle: HTTP and the UDP echo of one VIP share a mark and a persistent real.
virtual bundle {
     active = 1
     address = ${lab.vip4(2)} pub:3
     fwmark = 3
     fwmark_rule = tcp 80
     fwmark_rule = udp 7
     port = 80
     persistent = 60
     scheduler = rr
     timeout = 2
${real('dr1', '         method = direct\n')}${real('dr2', '         method = direct\n')}}
# An IPIP tunnel to a real that decapsulates with lvsd's XDP helper.
virtual echo {
     active = 1
     address = ${lab.vip4(3)} pub:4
     port = 7
     protocol = udp
     scheduler = rr
     timeout = 2
${real('tun1', '         method = tunnel\n')}}
`;
}

export async function runLabDemo(options: LabDemoOptions = {}): Promise<void> {
  const write = options.write ?? ((t: string) => process.stdout.write(t));
  const notes: string[] = [];
  const logger: Logger = {
    info: (_o, msg) => msg && notes.push(msg),
    warn: (_o, msg) => msg && notes.push(`warning: ${msg}`),
    error: (_o, msg) => msg && notes.push(`error: ${msg}`),
    debug: () => {},
  };
  let stop = false;
  const onSignal = () => (stop = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  write('lvsd demo: building the namespace lab ...\n');
  const lab = await Lab.create({
    tag: 'demo',
    reals: [
      { name: 'web1', method: 'nat', weight: 3 },
      { name: 'web2', method: 'nat', weight: 2 },
      { name: 'web3', method: 'nat', weight: 1 },
      { name: 'dr1', method: 'direct' },
      { name: 'dr2', method: 'direct' },
      { name: 'tun1', method: 'tunnel' },
    ],
  });
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-demo-'));
  let daemon: Daemon | undefined;
  let client: ControlClient | undefined;
  try {
    await lab.startServers();
    const cf = join(dir, 'lvs.cf');
    writeFileSync(cf, demoLvsCf(lab));
    daemon = await startDaemon({ config: cf, socket: join(dir, 'lvsd.sock'), netns: lab.director.ns.name, io: options.io ?? 'xdp', announce: { count: 1 }, logger });
    client = await ControlClient.connect(daemon.socket);
    const load = lab.client.ns.spawn(process.execPath, [
      join(packageRoot, 'dist', 'lab', 'load.js'),
      JSON.stringify({
        http: [`http://${lab.vip4(0)}/`, `http://${lab.vip4(1)}/`, `http://${lab.vip4(2)}/`],
        slow: [`http://${lab.vip4(0)}/slow?seconds=5`],
        udp: [[lab.vip4(2), 7], [lab.vip4(3), 7]],
        sources: lab.client.extra4,
        rate: 20,
      }),
    ]);
    load.stdout?.resume();
    const dp = daemon.director.dataplane!;
    const started = Date.now();
    while (!stop && (options.seconds === undefined || Date.now() - started < options.seconds * 1000)) {
      await new Promise((r) => setTimeout(r, 1000));
      const list = await client.request({ op: 'list' });
      const counters = dp.counters();
      write(
        (options.plain ? '' : '\x1b[2J\x1b[H') +
          `lvsd demo: lvsd runs ${cf} in network namespace ${lab.director.ns.name} (${daemon.director.status().io?.mode}):\n` +
          'real clients reach six real servers through NAT (wlc 3:2:1), direct routing, a firewall-mark bundle and an IPIP tunnel.\n' +
          'Run it on your own Piranha file with: sudo lvsd -c /etc/sysconfig/ha/lvs.cf (lvsadm -L -n works against it); Ctrl-C tears the lab down.\n\n' +
          `$ lvsadm -L -n --rate\n${formatRate(list.services, { tableSize: list.tableSize })}` +
          `\n${counters.conn_count} connections in the table\n` +
          (notes.length ? `\n${notes.slice(-4).join('\n')}\n` : ''),
      );
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    client?.close();
    await daemon?.stop();
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--seconds');
  const seconds = at >= 0 ? Number(args[at + 1]) : undefined;
  const io = args.includes('--io') ? (args[args.indexOf('--io') + 1] as 'xdp' | 'packet') : undefined;
  runDemo({ ...(seconds !== undefined && Number.isFinite(seconds) ? { seconds } : {}), ...(io ? { io } : {}), plain: args.includes('--plain') || !process.stdout.isTTY }).catch((e) => {
    console.error(`lvsd demo: ${(e as Error).message}`);
    process.exit(1);
  });
}
