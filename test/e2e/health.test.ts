/**
 * Health checks in the lab, as Piranha's nanny did them and better: lvsd on an lvs.cf with
 * send/expect and send_program checks, real servers that stop, fail and come back.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lvsadm } from '../../src/cli/lvsadm.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import type { Lab } from '../../src/lab/lab.js';
import { httpLoad, makeLab, memoryLogger, url, waitFor } from './setup.js';

let lab: Lab;
let daemon: Daemon;
const log = memoryLogger();
const dir = mkdtempSync(join(tmpdir(), 'lvsd-health-'));
const injected = join(dir, 'injected');
const cf = join(dir, 'lvs.cf');

/** The addresses of the reals a service has in the table now, with their weights. */
function reals(vip: string): Record<string, number> {
  const s = daemon.director.dataplane!.listServices().find((x) => x.address === vip);
  return Object.fromEntries((s?.reals ?? []).map((r) => [lab.reals.find((l) => l.address4 === r.address)!.name, r.weight]));
}

beforeAll(async () => {
  lab = await makeLab({ reals: [{ name: 'n1', method: 'nat' }, { name: 'n2', method: 'nat' }, { name: 'n3', method: 'nat' }], ipv6: false });
  await lab.startServers();
  lab.stopServer('n3'); // never healthy: it must never get traffic
  // The checked program: down while a marker file for the host exists, else says OK.
  const check = join(dir, 'check.sh');
  writeFileSync(check, `#!/bin/sh\n[ -e "${dir}/down-$1" ] && exit 1\necho OK\n`);
  chmodSync(check, 0o755);
  const server = (name: string) => `     server ${name} {\n         address = ${lab.real(name).address4}\n         active = 1\n     }\n`;
  writeFileSync(
    cf,
    `primary = ${lab.director.address4.pub}
network = nat
nat_router = ${lab.natRouter4} priv
virtual web {
     active = 1
     address = ${lab.vip4(0)} pub
     port = 80
     scheduler = rr
     send = "GET / HTTP/1.0\\r\\n\\r\\n"
     expect = "^HTTP/1\\.[01] 200"
     use_regex = 1
     timeout = 1
     reentry = 2
${server('n1')}${server('n2')}${server('n3')}}
virtual prog {
     active = 1
     address = ${lab.vip4(1)} pub
     port = 80
     scheduler = rr
     send_program = "${check} %h ;touch ${injected}"
     expect = "OK"
     timeout = 1
     reentry = 1
     quiesce_server = 1
${server('n1')}${server('n2')}}
virtual weighted {
     active = 1
     address = ${lab.vip4(2)} pub
     port = 80
     scheduler = wrr
     # 3 s, not 1: with fall 1 (Piranha's timing), one check slowed past its timeout by a busy
     # machine takes a real out for a moment and skews the exact split asserted below.
     timeout = 3
     reentry = 3
     check = http path / status 200
     check = agent 9999
${server('n1').replace('active = 1', 'active = 1\n         weight = 10')}${server('n2').replace('active = 1', 'active = 1\n         weight = 10')}}
virtual missing {
     active = 1
     address = ${lab.vip4(3)} pub
     port = 80
     scheduler = rr
     timeout = 1
     check = http path /missing status 200-299
     sorry_server = ${lab.real('n2').address4}
${server('n1')}}
`,
  );
  // A HAProxy-style agent in n1 and n2: it answers each connection with its file's line.
  for (const name of ['n1', 'n2']) {
    writeFileSync(join(dir, `agent-${name}`), '100%\n');
    const script = "const fs=require('fs');require('net').createServer((s)=>{s.end(fs.readFileSync(process.argv[1]));}).listen(9999,()=>console.log('ready'))";
    const agent = lab.real(name).ns.spawn(process.execPath, ['-e', script, join(dir, `agent-${name}`)]);
    await new Promise<void>((resolve) => agent.stdout!.once('data', () => resolve()));
  }
  daemon = await startDaemon({ config: cf, socket: join(dir, 'lvsd.sock'), netns: lab.director.ns.name, announce: { count: 1 }, logger: log });
  await waitFor('n1 and n2 up', () => Object.keys(reals(lab.vip4(0))).length === 2 && Object.keys(reals(lab.vip4(1))).length === 2 && Object.keys(reals(lab.vip4(2))).length === 2);
});

afterAll(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('health checks (nanny) in the lab', () => {
  it('a real whose server never answered was never in the table (reals start down)', async () => {
    expect(reals(lab.vip4(0))).toEqual({ n1: 1, n2: 1 });
    const r = await httpLoad(lab, { url: url(lab.vip4(0)), count: 10, concurrency: 1 });
    expect(r.byReal).toEqual({ n1: 5, n2: 5 });
    expect(log.lines.some((l) => /real n3 .* down: connect refused/.test(l.msg))).toBe(true);
  });

  it('a stopped server leaves the table, no new connection reaches it, and it is back after reentry', async () => {
    lab.stopServer('n2');
    await waitFor('n2 out of the table', () => !('n2' in reals(lab.vip4(0))));
    const during = await httpLoad(lab, { url: url(lab.vip4(0)), count: 10, concurrency: 1 });
    expect(during.byReal).toEqual({ n1: 10 });
    expect(during.failed).toBe(0);
    expect(log.lines.some((l) => l.level === 'warn' && /real n2 198\.18\.1\.12:80 down: /.test(l.msg))).toBe(true);
    await lab.startServer('n2');
    await waitFor('n2 back', () => 'n2' in reals(lab.vip4(0)));
    const after = await httpLoad(lab, { url: url(lab.vip4(0)), count: 10, concurrency: 1 });
    expect(after.byReal).toEqual({ n1: 5, n2: 5 });
  });

  it('quiesce_server: a failing real keeps its connections at weight 0 and gets no new ones; send_program runs without a shell', async () => {
    const long = lab.run(lab.client.ns, 'curl', ['-sS', '--max-time', '30', url(lab.vip4(1), '/slow?seconds=4')]);
    await waitFor('the long transfer to be in the table', async () => (await daemon.director.dataplane!.listConnections()).some((c) => c.virtual.address === lab.vip4(1) && c.state === 'ESTABLISHED'));
    const conn = (await daemon.director.dataplane!.listConnections()).find((c) => c.virtual.address === lab.vip4(1) && c.state === 'ESTABLISHED')!;
    const busy = lab.reals.find((r) => r.address4 === conn.destination.address)!;
    const other = busy.name === 'n1' ? 'n2' : 'n1';
    writeFileSync(join(dir, `down-${busy.address4}`), '');
    await waitFor(`${busy.name} quiesced`, () => reals(lab.vip4(1))[busy.name] === 0);
    const during = await httpLoad(lab, { url: url(lab.vip4(1)), count: 6, concurrency: 1 });
    expect(during.byReal).toEqual({ [other]: 6 });
    expect((await long).stdout).toBe('.'.repeat(40));
    unlinkSync(join(dir, `down-${busy.address4}`));
    await waitFor(`${busy.name} back`, () => reals(lab.vip4(1))[busy.name] === 1);
    // "%h ;touch FILE" reached the program as arguments; no shell ever ran the touch.
    expect(existsSync(injected)).toBe(false);
  });

  it('agent-check: weights the agent reports show in the table and in the traffic split', async () => {
    expect(reals(lab.vip4(2))).toEqual({ n1: 10, n2: 10 });
    writeFileSync(join(dir, 'agent-n1'), '50%\n');
    await waitFor('n1 at half weight', () => reals(lab.vip4(2)).n1 === 5);
    const r = await httpLoad(lab, { url: url(lab.vip4(2)), count: 15, concurrency: 1 });
    expect(r.byReal).toEqual({ n1: 5, n2: 10 });
    // As an operator sees it.
    let listing = '';
    await lvsadm(['-L', '-n'], { stdout: (t) => (listing += t), stderr: () => {}, readStdin: async () => '', env: { LVSD_SOCKET: daemon.socket } });
    expect(listing).toMatch(/TCP {2}198\.18\.0\.102:80 wrr\n(?: {2}-> .*\n)*? {2}-> 198\.18\.1\.11:80 +Masq +5 /);
    writeFileSync(join(dir, 'agent-n1'), 'drain\n');
    await waitFor('n1 drained', () => reals(lab.vip4(2)).n1 === 0);
    expect((await httpLoad(lab, { url: url(lab.vip4(2)), count: 4, concurrency: 1 })).byReal).toEqual({ n2: 4 });
    writeFileSync(join(dir, 'agent-n1'), 'ready 100%\n');
    await waitFor('n1 back at full weight', () => reals(lab.vip4(2)).n1 === 10);
  });

  it('an HTTP check wanting 2xx keeps a real answering 404 out and says so; the sorry server stands in', async () => {
    await waitFor('the sorry server in place', () => JSON.stringify(reals(lab.vip4(3))) === JSON.stringify({ n2: 1 }));
    expect(log.lines.some((l) => /real n1 198\.18\.1\.11:80 down: .*404/.test(l.msg))).toBe(true);
    expect(log.lines.some((l) => l.obj.event === 'sorry-server' && l.obj.active === true)).toBe(true);
    expect((await httpLoad(lab, { url: url(lab.vip4(3)), count: 3, concurrency: 1 })).byReal).toEqual({ n2: 3 });
  });

  it('a real added by a reload joins only once it has passed a check', async () => {
    const text = readFileSync(cf, 'utf8');
    const n3 = `     server n3 {\n         address = ${lab.real('n3').address4}\n         active = 1\n     }\n`;
    // n3 fails prog's check (its marker file says so): added to "prog" it must never carry traffic.
    writeFileSync(join(dir, `down-${lab.real('n3').address4}`), '');
    writeFileSync(cf, text.replace(/(virtual prog \{[\s\S]*?)(\}\nvirtual weighted)/, `$1${n3}$2`));
    const r = await daemon.reload();
    expect(r.ok).toBe(true);
    // quiesce_server: an unchecked (or failing) real sits at weight 0, never taking a connection.
    expect(reals(lab.vip4(1))).toEqual({ n1: 1, n2: 1, n3: 0 });
    await waitFor('n3 checked in prog', () => log.lines.some((l) => /real n3 .*down: /.test(l.msg) && String(l.obj.id ?? '').startsWith(`TCP ${lab.vip4(1)} 80`)));
    expect(reals(lab.vip4(1))).toEqual({ n1: 1, n2: 1, n3: 0 });
    const load = await httpLoad(lab, { url: url(lab.vip4(1)), count: 6, concurrency: 1 });
    expect(load.byReal).toEqual({ n1: 3, n2: 3 });
    writeFileSync(cf, text);
    expect((await daemon.reload()).ok).toBe(true);
    expect(reals(lab.vip4(1))).toEqual({ n1: 1, n2: 1 });
  });

  it('the control socket reports every checked real, up or down, and why', async () => {
    const { ControlClient } = await import('../../src/cli/client.js');
    const c = await ControlClient.connect(daemon.socket);
    try {
      const status = JSON.stringify(await c.request({ op: 'health' }));
      expect(status).toContain('n3');
      expect(status).toContain('connect refused');
    } finally {
      c.close();
    }
  });
});
