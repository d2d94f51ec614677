/**
 * `npm start` without root: the namespace lab needs root, so the clients and real servers
 * are simulated in this process and talk to the real dataplane through its memory backend:
 * every frame below is parsed, scheduled, rewritten and counted by the same native code that
 * drives the NICs.
 */
import { Dataplane } from '../dataplane/dataplane.js';
import type { ServiceKey } from '../dataplane/types.js';
import { formatList } from '../cli/format.js';
import { decode, packet } from './frames.js';

export interface DemoOptions {
  /** Stop after this many seconds (default: run until SIGINT/SIGTERM). */
  seconds?: number;
  /** Print tables one after another instead of redrawing the screen. */
  plain?: boolean;
  write?: (text: string) => void;
}

const OUT = 0;
const IN = 1;
const MAC = { client: '02:00:00:00:00:c1', out: '02:00:00:00:00:01', in: '02:00:00:00:01:01' };
const WEB: ServiceKey = { protocol: 'tcp', address: '198.18.0.10', port: 80 };
const DR: ServiceKey = { protocol: 'tcp', address: '198.18.0.20', port: 80 };
const DNS: ServiceKey = { protocol: 'udp', address: '198.18.0.30', port: 53 };
const realMac = (i: number) => `02:00:00:00:01:${(0x10 + i).toString(16)}`;

interface Flow {
  client: string;
  port: number;
  kind: 'web' | 'dr';
  /** The handshake reached a real. */
  open: boolean;
  left: number; // request/response rounds still to do
}

export async function runMemoryDemo(options: DemoOptions = {}): Promise<void> {
  const write = options.write ?? ((t: string) => process.stdout.write(t));
  const dp = new Dataplane({ workers: 1 });
  dp.transaction((tx) => {
    tx.setInterface({ id: OUT, name: 'outside', mac: MAC.out, ipv4: '198.18.0.1' });
    tx.setInterface({ id: IN, name: 'inside', mac: MAC.in, ipv4: '198.19.0.1' });
    tx.addService({ ...WEB, scheduler: 'wlc' });
    [3, 2, 1].forEach((weight, i) => tx.addReal(WEB, { address: `198.19.0.${11 + i}`, port: 8080, method: 'nat', weight, interface: IN, mac: realMac(i + 1) }));
    tx.addService(DR);
    [1, 1].forEach((weight, i) => tx.addReal(DR, { address: `198.19.0.${21 + i}`, method: 'direct', weight, interface: IN, mac: realMac(i + 4) }));
    tx.addService(DNS);
    tx.addReal(DNS, { address: '198.19.0.31', method: 'tunnel', interface: IN, mac: realMac(6) });
  });
  await dp.settled();

  const flows: Flow[] = [];
  let next = 0;
  let stop = false;
  const onSignal = () => (stop = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const started = Date.now();
  let last = { at: started, counters: dp.counters() };
  let lastDraw = 0;
  try {
    while (!stop && (options.seconds === undefined || Date.now() - started < options.seconds * 1000)) {
      await tick(dp, flows, () => next++);
      if (Date.now() - lastDraw >= 1000) {
        lastDraw = Date.now();
        const now = { at: Date.now(), counters: dp.counters() };
        const secs = (now.at - last.at) / 1000 || 1;
        const before = last.counters;
        const rate = (k: string) => Math.round((now.counters[k]! - before[k]!) / secs);
        last = now;
        const screen =
          (options.plain ? '' : '\x1b[2J\x1b[H') +
          'lvsd demo (no root, so no namespace lab): a director with NAT, direct-routing and tunnel services;\n' +
          'simulated clients and real servers exchange frames with the real dataplane (native code, memory\n' +
          'backend). Run `sudo npm start` for real traffic between network namespaces. Ctrl-C stops.\n\n' +
          formatList(dp.listServices(), { tableSize: dp.info().tableCapacity }) +
          `\n${rate('rx_packets')} packets/s in, ${rate('tx_packets')} packets/s out, ${rate('conn_created')} new connections/s, ` +
          `${now.counters.conn_count} connections in the table\n`;
        write(screen);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await dp.close();
  }
}

/** One round: new clients arrive, open flows exchange data, some of them close. */
async function tick(dp: Dataplane, flows: Flow[], id: () => number): Promise<void> {
  const frames: Array<{ iface: number; data: Buffer }> = [];
  const fromClient = (f: Flow, flags: string, payload = '') => {
    const dst = f.kind === 'web' ? WEB : DR;
    frames.push({ iface: OUT, data: packet({ src: f.client, dst: (dst as { address: string }).address, proto: 'tcp', sport: f.port, dport: 80, flags, payload }) });
  };
  // New arrivals.
  for (let i = 0; i < 20; i++) {
    const n = id();
    const f: Flow = { client: `198.18.${100 + ((n >> 8) & 63)}.${1 + (n & 255) % 254}`, port: 1024 + (n % 60000), kind: n % 4 === 0 ? 'dr' : 'web', open: false, left: 1 + (n % 5) };
    flows.push(f);
    fromClient(f, 'S');
  }
  for (let i = 0; i < 10; i++) {
    const n = id();
    frames.push({ iface: OUT, data: packet({ src: `198.18.200.${1 + (n % 254)}`, dst: '198.18.0.30', proto: 'udp', sport: 1024 + (n % 60000), dport: 53, payload: 'query' }) });
  }
  // Established flows talk; finished ones close.
  for (const f of flows) {
    if (!f.open) continue;
    if (f.left-- > 0) fromClient(f, 'PA', 'GET / HTTP/1.1\r\n\r\n');
    else fromClient(f, 'FA');
  }
  const out = await dp.memory.process(frames);
  // The simulated reals answer what reached them, and clients complete their handshakes.
  const replies: Array<{ iface: number; data: Buffer }> = [];
  for (const o of out) {
    if (o.action !== 'tx' || o.iface !== IN) continue;
    const d = decode(o.data);
    const f = flows.find((x) => x.client === d.src && x.port === d.sport);
    if (!f) continue;
    if (f.kind === 'web') {
      // NAT: the real's answer goes back through the director (direct routing's would not).
      const flags = d.flags! & 0x02 ? 'SA' : d.flags! & 0x01 ? 'FA' : 'PA';
      replies.push({ iface: IN, data: packet({ src: d.dst, dst: f.client, proto: 'tcp', sport: d.dport, dport: f.port, flags, payload: flags === 'PA' ? 'HTTP/1.1 200 OK\r\n\r\n' : '', srcMac: d.dstMac, dstMac: MAC.in }) });
    }
    if (!f.open) {
      f.open = true;
      const vip = (f.kind === 'web' ? WEB : DR) as { address: string };
      replies.push({ iface: OUT, data: packet({ src: f.client, dst: vip.address, proto: 'tcp', sport: f.port, dport: 80, flags: 'A' }) });
    }
  }
  if (replies.length) await dp.memory.process(replies);
  for (let i = flows.length - 1; i >= 0; i--) if (flows[i]!.left < -1) flows.splice(i, 1);
}
