/**
 * Demo traffic, run in the lab's client namespace until killed:
 *   node dist/lab/load.js '{"http": ["http://198.18.0.100/"], "slow": ["http://..."], "udp": [["198.18.0.102", 7]], "rate": 50}'
 * Every `1/rate` seconds: one short HTTP request (a new connection) to each `http` URL, one
 * UDP datagram (from a new socket) to each `udp` target, and now and then a long download
 * from a `slow` URL, so the table shows active and inactive connections. Client source
 * addresses rotate through `sources` when given. Errors are counted, never fatal.
 */
import dgram from 'node:dgram';
import http from 'node:http';

interface LoadOptions {
  http?: string[];
  slow?: string[];
  udp?: Array<[string, number]>;
  sources?: string[];
  rate?: number;
}

const o = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
let n = 0;
let errors = 0;

function get(url: string, source: string | undefined): void {
  const req = http.get(url, { agent: false, timeout: 10_000, ...(source ? { localAddress: source } : {}) }, (res) => {
    res.resume();
    res.on('error', () => errors++);
  });
  req.on('timeout', () => req.destroy());
  req.on('error', () => errors++);
}

function ping(address: string, port: number): void {
  const s = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  const done = () => s.close();
  const t = setTimeout(done, 2000);
  s.on('message', () => {
    clearTimeout(t);
    done();
  });
  s.on('error', () => errors++);
  s.send(`demo-${n}`, port, address);
}

setInterval(() => {
  n++;
  const sources = o.sources ?? [];
  const source = sources.length ? sources[n % sources.length] : undefined;
  // Rotating sources are IPv4; IPv6 URLs go from the client's own address.
  for (const u of o.http ?? []) get(u, u.includes('[') ? undefined : source);
  for (const [a, p] of o.udp ?? []) ping(a, p);
  if (n % 10 === 0) for (const u of o.slow ?? []) get(u, u.includes('[') ? undefined : source);
}, 1000 / (o.rate ?? 20)).unref();

setInterval(() => process.stdout.write(`${JSON.stringify({ sent: n, errors })}\n`), 1000);
