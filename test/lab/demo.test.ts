import { expect, it } from 'vitest';
import { runLabDemo } from '../../src/lab/demo.js';
import { runMemoryDemo } from '../../src/lab/memory-demo.js';

function rates(screen: string) {
  const m = screen.match(/(\d+) packets\/s in, (\d+) packets\/s out, (\d+) new connections\/s, (\d+) connections/);
  expect(m).not.toBeNull();
  return { in: Number(m![1]), out: Number(m![2]), created: Number(m![3]), conns: Number(m![4]) };
}

it('npm start (root): lvsd on an embedded lvs.cf in the namespace lab, with a live lvsadm -L -n --rate', async () => {
  const screens: string[] = [];
  await runLabDemo({ seconds: 5, plain: true, write: (t) => screens.push(t) });
  const last = screens.at(-1)!;
  expect(last).toMatch(/lvsd runs \S+lvs\.cf in network namespace \S+ \(xdp-/);
  expect(last).toContain('Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS');
  // Every service of the embedded lvs.cf is there, and traffic shows in the rates.
  for (const svc of ['TCP  198.18.0.100:80', 'TCP  198.18.0.101:80', 'FWM  3', 'UDP  198.18.0.103:7']) expect(last).toContain(svc);
  const web = last.match(/TCP {2}198\.18\.0\.100:80 +(\d+) +(\d+) +(\d+)/);
  expect(web).not.toBeNull();
  expect(Number(web![2])).toBeGreaterThan(0); // InPPS
  expect(Number(web![3])).toBeGreaterThan(0); // OutPPS (NAT replies come back through lvsd)
  expect(last).toMatch(/\d+ connections in the table/);
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
