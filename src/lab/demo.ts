/**
 * `npm start`: a director on a self-contained demo lab. As root it builds the namespace lab
 * (src/lab/lab.ts: a client, a director and six real servers), starts a Director there on
 * AF_XDP with a NAT service (wlc, three reals of weights 3, 2, 1, IPv4 and IPv6), a
 * direct-routing service and a tunnel service, sends demo traffic from the client, and shows
 * the table every second like `ipvsadm -L -n` with the rates. Ctrl-C tears it all down.
 * Without root (namespaces need it) it runs the in-process demo of src/lab/memory-demo.ts.
 *
 *   node dist/lab/demo.js [--seconds N] [--plain] [--io xdp|packet]
 */
import { join } from 'node:path';
import { formatList } from '../cli/format.js';
import { packageRoot } from '../dataplane/native.js';
import { Director } from '../director/director.js';
import type { DirectorService, Logger } from '../director/types.js';
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
  let director: Director | undefined;
  try {
    await lab.startServers();
    const reals = (method: string, family: 4 | 6) =>
      lab.reals.filter((r) => r.method === method).map((r) => ({ address: family === 4 ? r.address4 : r.address6!, weight: r.weight, method: r.method }));
    const services: DirectorService[] = [
      { protocol: 'tcp', address: lab.vip4(0), port: 80, scheduler: 'wlc', reals: reals('nat', 4) },
      { protocol: 'tcp', address: lab.vip6(0), port: 80, scheduler: 'wlc', reals: reals('nat', 6) },
      { protocol: 'tcp', address: lab.vip4(1), port: 80, scheduler: 'rr', reals: reals('direct', 4) },
      { protocol: 'udp', address: lab.vip4(2), port: 7, scheduler: 'rr', reals: reals('tunnel', 4) },
    ];
    director = new Director({
      netns: lab.director.ns.name,
      io: options.io ?? 'xdp',
      services,
      natRouters: [
        { address: lab.natRouter4, device: 'priv' },
        { address: lab.natRouter6, device: 'priv' },
      ],
      announce: { count: 1 },
      logger,
    });
    await director.start();
    const load = lab.client.ns.spawn(process.execPath, [
      join(packageRoot, 'dist', 'lab', 'load.js'),
      JSON.stringify({
        http: [`http://${lab.vip4(0)}/`, `http://[${lab.vip6(0)}]/`, `http://${lab.vip4(1)}/`],
        slow: [`http://${lab.vip4(0)}/slow?seconds=5`],
        udp: [[lab.vip4(2), 7]],
        sources: lab.client.extra4,
        rate: 20,
      }),
    ]);
    load.stdout?.resume();
    const dp = director.dataplane!;
    const started = Date.now();
    let last = { at: started, counters: dp.counters() };
    while (!stop && (options.seconds === undefined || Date.now() - started < options.seconds * 1000)) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = { at: Date.now(), counters: dp.counters() };
      const secs = (now.at - last.at) / 1000 || 1;
      const before = last.counters;
      const rate = (k: string) => Math.round((now.counters[k]! - before[k]!) / secs);
      last = now;
      const status = director.status();
      write(
        (options.plain ? '' : '\x1b[2J\x1b[H') +
          `lvsd demo: a director in network namespace ${lab.director.ns.name} forwards real traffic (${status.io?.mode})\n` +
          'from a client namespace to six real servers: NAT (wlc, weights 3:2:1), direct routing and an IPIP tunnel.\n' +
          'Point lvsd at your own setup with the Director API (docs/director.md); Ctrl-C tears the lab down.\n\n' +
          formatList(dp.listServices(), { tableSize: dp.info().tableCapacity }) +
          `\n${rate('rx_packets')} packets/s in, ${rate('tx_packets')} packets/s out, ${rate('conn_created')} new connections/s, ` +
          `${now.counters.conn_count} connections in the table\n` +
          (notes.length ? `\n${notes.slice(-4).join('\n')}\n` : ''),
      );
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await director?.stop();
    lab.destroy();
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
