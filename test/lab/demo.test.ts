import { expect, it } from 'vitest';
import { runLabDemo } from '../../src/lab/demo.js';
import { runMemoryDemo } from '../../src/lab/memory-demo.js';

function rates(screen: string) {
  const m = screen.match(/(\d+) packets\/s in, (\d+) packets\/s out, (\d+) new connections\/s, (\d+) connections/);
  expect(m).not.toBeNull();
  return { in: Number(m![1]), out: Number(m![2]), created: Number(m![3]), conns: Number(m![4]) };
}

it('npm start (root): a director on the namespace lab forwards real traffic and shows an ipvsadm-style table', async () => {
  const screens: string[] = [];
  await runLabDemo({ seconds: 4, plain: true, write: (t) => screens.push(t) });
  const last = screens.at(-1)!;
  expect(last).toMatch(/forwards real traffic \(xdp-/);
  expect(last).toContain('Prot LocalAddress:Port Scheduler Flags');
  expect(last).toMatch(/TCP {2}198\.18\.0\.100:80 wlc\n {2}-> 198\.18\.1\.11:80 +Masq +3 +\d+/);
  expect(last).toMatch(/-> 198\.18\.0\.1\d:80 +Route/);
  expect(last).toMatch(/-> 198\.18\.0\.1\d:7 +Tunnel/);
  const r = rates(last);
  expect(r.in).toBeGreaterThan(0);
  expect(r.out).toBeGreaterThan(0);
  expect(r.created).toBeGreaterThan(0);
  expect(last).toContain('gratuitous lvs arps finished');
});

it('npm start without root: the in-process demo on the memory backend', async () => {
  const screens: string[] = [];
  await runMemoryDemo({ seconds: 2.5, plain: true, write: (t) => screens.push(t) });
  const last = screens.at(-1)!;
  expect(last).toMatch(/TCP {2}198\.18\.0\.10:80 wlc\n {2}-> 198\.19\.0\.11:8080 +Masq +3 +\d+/);
  expect(last).toContain('Route');
  expect(last).toContain('Tunnel');
  const r = rates(last);
  expect(r.in).toBeGreaterThan(0);
  expect(r.created).toBeGreaterThan(0);
  expect(r.conns).toBeGreaterThan(0);
});
