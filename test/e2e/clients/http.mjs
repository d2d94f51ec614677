// HTTP client for the end-to-end tests, run inside the lab's client namespace:
//   node http.mjs '<json options>'
// options: {url, count, concurrency, path, localAddresses?: string[], timeoutMs, expectBytes?}
// Opens `count` requests (no keep-alive: one TCP connection each), at most `concurrency` at a
// time, and prints one JSON line: {ok, failed, errors: {code: n}, byReal: {name: n}, seen: [..]}.
import http from 'node:http';

const o = JSON.parse(process.argv[2]);
const count = o.count ?? 1;
const concurrency = o.concurrency ?? count;
const result = { ok: 0, failed: 0, errors: {}, byReal: {}, seen: [] };
let next = 0;

function one(i) {
  return new Promise((resolve) => {
    const url = new URL(o.path ?? '/', o.url);
    const req = http.request(
      {
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || 80,
        path: url.pathname + url.search,
        agent: false,
        headers: { connection: 'close' },
        timeout: o.timeoutMs ?? 10000,
        ...(o.localAddresses ? { localAddress: o.localAddresses[i % o.localAddresses.length] } : {}),
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          if (res.statusCode === 200 && (o.expectBytes === undefined || body.length === o.expectBytes)) {
            result.ok++;
            // real-app names itself in x-real; GET / also says which client address it saw.
            const name = res.headers['x-real'];
            const addr = body.trim().split(/\s+/)[1] ?? null;
            result.byReal[name] = (result.byReal[name] ?? 0) + 1;
            if (result.seen.length < 64) result.seen.push({ name, addr, local: o.localAddresses ? o.localAddresses[i % o.localAddresses.length] : null });
          } else {
            result.failed++;
            const why = res.statusCode === 200 ? `short-body` : `status-${res.statusCode}`;
            result.errors[why] = (result.errors[why] ?? 0) + 1;
          }
          resolve();
        });
        res.on('error', (e) => {
          result.failed++;
          result.errors[e.code ?? 'error'] = (result.errors[e.code ?? 'error'] ?? 0) + 1;
          resolve();
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => {
      result.failed++;
      result.errors[e.code ?? 'error'] = (result.errors[e.code ?? 'error'] ?? 0) + 1;
      resolve();
    });
    req.end();
  });
}

async function worker() {
  while (next < count) await one(next++);
}
await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
process.stdout.write(JSON.stringify(result) + '\n');
