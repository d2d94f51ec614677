import { expect, it } from 'vitest';
import { runDemo } from '../../src/lab/demo.js';

it('npm start: the demo director forwards traffic and shows an ipvsadm-style table', async () => {
  const screens: string[] = [];
  await runDemo({ seconds: 2.5, plain: true, write: (t) => screens.push(t) });
  expect(screens.length).toBeGreaterThanOrEqual(2);
  const last = screens.at(-1)!;
  expect(last).toContain('Prot LocalAddress:Port Scheduler Flags');
  expect(last).toMatch(/TCP {2}198\.18\.0\.10:80 wlc\n {2}-> 198\.19\.0\.11:8080 +Masq +3 +\d+/);
  expect(last).toContain('Route');
  expect(last).toContain('Tunnel');
  const m = last.match(/(\d+) packets\/s in, (\d+) packets\/s out, (\d+) new connections\/s, (\d+) connections/);
  expect(m).not.toBeNull();
  expect(Number(m![1])).toBeGreaterThan(0);
  expect(Number(m![3])).toBeGreaterThan(0);
  expect(Number(m![4])).toBeGreaterThan(0);
});
