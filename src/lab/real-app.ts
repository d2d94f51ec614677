/**
 * The application every real server of the lab runs, one process per real, started inside
 * the real's namespace:
 *
 *   node dist/lab/real-app.js --name r1 [--http 80] [--udp 7] [--echo 7] [--bind-v6]
 *
 * HTTP (every local address, the VIPs on lo included; IPv6 too with --bind-v6), keep-alive:
 *   GET /                      -> "r1 <client-address>\n", the client's address as this real sees it
 *   GET /blob?size=N&seed=S    -> N bytes of the deterministic stream of src/lab/blob.ts
 *   POST /sha256               -> "<hex SHA-256 of the request body>\n"
 *   GET /slow?seconds=N        -> one byte ('.') every 100 ms for N seconds (10 N bytes)
 *   anything else              -> 404
 * Every response carries `x-real: r1`.
 *
 * UDP echo: a datagram with payload P gets the reply "r1 <client-address> P", sent from the
 * address the datagram was sent to. Node has no IP_PKTINFO, so there is one socket bound to
 * each local address (the VIPs on lo included: a DR or tunnel real must answer from the VIP,
 * and a wildcard socket would answer from the address the route picks). The address list is
 * read again every 250 ms, so addresses added later (a VIP added by `lvsd realserver`) get a
 * socket too; link-local IPv6 addresses are left out.
 *
 * TCP echo (--echo, default 7; 0 turns it off), on every local address like HTTP (a wildcard
 * listener: a DR or tunnel real's VIPs on lo are local addresses, so a connection to a VIP
 * that reaches the real is accepted, and answered from the VIP): on accept it sends one line
 * "HELLO r1\n", then echoes every byte it receives, in order, until the client closes. For
 * long-lived connections through a failover (test/e2e/clients/longlived.mjs): the HELLO says
 * which real the connection reached. No idle timeout.
 *
 * Prints "ready" on stdout once HTTP and the TCP echo listen and the UDP sockets are bound.
 */
import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { parseArgs } from 'node:util';
import { blobBytes } from './blob.js';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    http: { type: 'string', default: '80' },
    udp: { type: 'string', default: '7' },
    echo: { type: 'string', default: '7' },
    'bind-v6': { type: 'boolean', default: false },
  },
});
if (!values.name) {
  process.stderr.write('real-app: --name is required\n');
  process.exit(2);
}
const name = values.name;
const httpPort = Number(values.http);
const udpPort = Number(values.udp);
const echoPort = Number(values.echo);
const v6 = values['bind-v6'] === true;

/** "::ffff:198.18.0.2" (an IPv4 client on a dual-stack socket) -> "198.18.0.2". */
function clientAddress(a: string | undefined): string {
  if (!a) return '?';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

function query(req: IncomingMessage): URLSearchParams {
  return new URL(req.url ?? '/', 'http://x').searchParams;
}

function intParam(q: URLSearchParams, key: string, fallback: number): number {
  const v = q.get(key);
  const n = v === null ? fallback : Number(v);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : fallback;
}

function blob(req: IncomingMessage, res: ServerResponse): void {
  const q = query(req);
  const size = intParam(q, 'size', 0);
  const seed = intParam(q, 'seed', 0);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  const chunk = 64 * 1024;
  let off = 0;
  const pump = (): void => {
    while (off < size) {
      const n = Math.min(chunk, size - off);
      const more = res.write(blobBytes(seed, off, n));
      off += n;
      if (!more) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  res.on('close', () => res.removeListener('drain', pump));
  pump();
}

function sha256(req: IncomingMessage, res: ServerResponse): void {
  const h = createHash('sha256');
  let bytes = 0;
  req.on('data', (d: Buffer) => {
    h.update(d);
    bytes += d.length;
  });
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-bytes': String(bytes) });
    res.end(`${h.digest('hex')}\n`);
  });
}

function slow(req: IncomingMessage, res: ServerResponse): void {
  const ticks = intParam(query(req), 'seconds', 1) * 10;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': ticks });
  let sent = 0;
  const timer = setInterval(() => {
    res.write('.');
    if (++sent >= ticks) {
      clearInterval(timer);
      res.end();
    }
  }, 100);
  res.on('close', () => clearInterval(timer));
  if (ticks === 0) {
    clearInterval(timer);
    res.end();
  }
}

const server = createServer({ keepAlive: true, requestTimeout: 0 }, (req, res) => {
  res.setHeader('x-real', name);
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${name} ${clientAddress(req.socket.remoteAddress)}\n`);
  } else if (req.method === 'GET' && path === '/blob') {
    blob(req, res);
  } else if (req.method === 'POST' && path === '/sha256') {
    sha256(req, res);
  } else if (req.method === 'GET' && path === '/slow') {
    slow(req, res);
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  }
});
server.maxConnections = 1 << 20;
server.keepAliveTimeout = 30_000;
server.headersTimeout = 60_000;

// TCP echo: HELLO, then every byte back. pipe() keeps the order and applies backpressure, and
// ends our side when the client ends its side.
function echoServer(): TcpServer {
  const s = createTcpServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy()); // a client that resets: nothing to do
    socket.write(`HELLO ${name}\n`);
    socket.pipe(socket);
  });
  s.maxConnections = 1 << 20;
  return s;
}

// UDP: one socket per local address.
const udpSockets = new Map<string, Socket>();

function localAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === 'IPv4') out.push(a.address);
      else if (v6 && !a.address.toLowerCase().startsWith('fe80:')) out.push(a.address);
    }
  }
  return out;
}

function bindUdp(address: string): Promise<void> {
  return new Promise((resolve) => {
    const s = address.includes(':') ? createSocket({ type: 'udp6', ipv6Only: true }) : createSocket({ type: 'udp4' });
    udpSockets.set(address, s);
    s.on('message', (msg, rinfo) => {
      s.send(Buffer.concat([Buffer.from(`${name} ${clientAddress(rinfo.address)} `), msg]), rinfo.port, rinfo.address);
    });
    s.once('error', (e) => {
      // The address went away between the scan and bind(): the next scan tries again.
      process.stderr.write(`real-app ${name}: udp ${address}: ${e.message}\n`);
      udpSockets.delete(address);
      s.close();
      resolve();
    });
    s.bind({ address, port: udpPort, exclusive: true }, () => resolve());
  });
}

async function scanUdp(): Promise<void> {
  const now = new Set(localAddresses());
  const pending: Promise<void>[] = [];
  for (const a of now) if (!udpSockets.has(a)) pending.push(bindUdp(a));
  for (const [a, s] of udpSockets) {
    if (!now.has(a)) {
      udpSockets.delete(a);
      s.close();
    }
  }
  await Promise.all(pending);
}

async function main(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: httpPort, host: v6 ? '::' : '0.0.0.0', ipv6Only: false, backlog: 65535 }, resolve);
  });
  if (echoPort > 0) {
    const echo = echoServer();
    await new Promise<void>((resolve, reject) => {
      echo.once('error', reject);
      echo.listen({ port: echoPort, host: v6 ? '::' : '0.0.0.0', ipv6Only: false, backlog: 65535 }, resolve);
    });
  }
  if (udpPort > 0) {
    await scanUdp();
    let scanning = false;
    setInterval(() => {
      if (scanning) return;
      scanning = true;
      void scanUdp().finally(() => (scanning = false));
    }, 250);
  }
  process.stdout.write('ready\n');
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => process.exit(0));
main().catch((e: unknown) => {
  process.stderr.write(`real-app ${name}: ${(e as Error).message}\n`);
  process.exit(1);
});
