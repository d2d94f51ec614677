// UDP client for the end-to-end tests, run inside the lab's client namespace:
//   node udp.mjs '<json options>'   options: {address, port, count, localAddresses?, timeoutMs}
// Sends `count` datagrams (one socket each, so each is its own connection entry), waits for
// each echo, and prints {ok, failed, byReal: {name: n}, replies: [{name, addr, from}]}.
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';

const o = JSON.parse(process.argv[2]);
const result = { ok: 0, failed: 0, byReal: {}, replies: [] };
const type = isIPv6(o.address) ? 'udp6' : 'udp4';

function one(i) {
  return new Promise((resolve) => {
    const s = dgram.createSocket(type);
    const payload = `ping-${i}`;
    const timer = setTimeout(() => {
      result.failed++;
      s.close();
      resolve();
    }, o.timeoutMs ?? 3000);
    s.on('message', (msg, rinfo) => {
      clearTimeout(timer);
      const [name, addr, echoed] = msg.toString().trim().split(/\s+/);
      if (echoed === payload) {
        result.ok++;
        result.byReal[name] = (result.byReal[name] ?? 0) + 1;
        if (result.replies.length < 64) result.replies.push({ name, addr, from: rinfo.address });
      } else result.failed++;
      s.close();
      resolve();
    });
    const send = () => s.send(payload, o.port, o.address);
    if (o.localAddresses) s.bind({ address: o.localAddresses[i % o.localAddresses.length], port: 0 }, send);
    else send();
  });
}

for (let i = 0; i < (o.count ?? 1); i++) await one(i);
process.stdout.write(JSON.stringify(result) + '\n');
