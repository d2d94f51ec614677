/**
 * Writing lvs.cf back: the Piranha GUI's layout, comments in place, only changed lines differ.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cloneConfig, defaultServer, defaultVirtual, emptyConfig, formatConfig, parseConfig, validateModel, withoutLayout } from '../../src/config/index.js';

const corpus = (f: string) => readFileSync(join(import.meta.dirname, 'corpus', 'valid', f), 'utf8');

/** The lines of b that are not at the same place in a (a line diff good enough for edits). */
function changed(a: string, b: string): Array<[number, string, string]> {
  const x = a.split('\n');
  const y = b.split('\n');
  const out: Array<[number, string, string]> = [];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if (x[i] !== y[i]) out.push([i + 1, x[i] ?? '', y[i] ?? '']);
  return out;
}

describe('formatConfig', () => {
  it('writes the Piranha GUI layout: globals first, 5 blanks for virtual keys, 9 for server keys', () => {
    const text = formatConfig(parseConfig(corpus('piranha-example.cf')).config);
    const lines = text.split('\n');
    expect(lines[0]).toBe('serial_no = 42');
    expect(lines).toContain('virtual www {');
    expect(lines).toContain('     address = 203.0.113.100 eth0:1');
    expect(lines).toContain('     server web1 {');
    expect(lines).toContain('         port = 8080');
    expect(lines).toContain('     }');
    expect(text.endsWith('}\n')).toBe(true);
    expect(lines.every((l) => l === l.trimEnd())).toBe(true);
  });

  it('changing a weight changes that line only; comments stay where they were', () => {
    const text = corpus('comments.cf');
    const cfg = cloneConfig(parseConfig(text).config);
    cfg.virtuals[0]!.servers[0]!.weight = 7;
    const out = formatConfig(cfg);
    expect(changed(text, out)).toEqual([[31, '         weight = 1', '         weight = 7']]);
  });

  it('a key the file did not have goes where the GUI writes it; a removed key leaves its comments', () => {
    const text = corpus('comments.cf');
    const cfg = cloneConfig(parseConfig(text).config);
    const www = cfg.virtuals[0]!;
    www.scheduler = 'rr';
    www.persistent = 300;
    delete www.send;
    const out = formatConfig(cfg);
    const block = (t: string) => t.slice(t.indexOf('virtual www {'), t.indexOf('     # first real'));
    expect(block(out)).toBe(
      [
        'virtual www {',
        '     # on while we test',
        '     active = 1',
        '     address = 198.18.0.10 eth0:1',
        '     persistent = 300',
        '     # checks',
        '',
        '     expect = "HTTP/1.0 200"',
        '     scheduler = rr',
        '',
      ].join('\n'),
    );
    // Everything outside the virtual's own keys is as it was.
    expect(out.slice(out.indexOf('     # first real'))).toBe(text.slice(text.indexOf('     # first real')));
    expect(out.slice(0, out.indexOf('virtual www {'))).toBe(text.slice(0, text.indexOf('virtual www {')));
    expect(withoutLayout(parseConfig(out).config)).toEqual(withoutLayout({ ...cfg, layout: undefined }));
  });

  it('serial_no added to a file without one goes first, below the comments at the top', () => {
    const text = '# my router\nprimary = 198.18.0.2\n';
    const cfg = cloneConfig(parseConfig(text).config);
    cfg.globals.serialNo = 1;
    expect(formatConfig(cfg)).toBe('# my router\nserial_no = 1\nprimary = 198.18.0.2\n');
  });

  it('values keep their spelling until they change', () => {
    const text = 'virtual dns {\n     active = 1\n     address = 198.18.0.53 eth0:1\n     port = domain\n     fwmark = 0x50\n     fwmark_rule = udp domain\n     timeout = 012\n}\n';
    const cfg = cloneConfig(parseConfig(text).config);
    expect(formatConfig(cfg)).toBe(text);
    cfg.virtuals[0]!.port = 5353;
    cfg.virtuals[0]!.timeout = 11;
    expect(formatConfig(cfg)).toBe(text.replace('port = domain', 'port = 5353').replace('timeout = 012', 'timeout = 11'));
  });

  it('keeps CRLF line endings (or writes the ones asked for)', () => {
    const text = corpus('crlf.cf');
    const cfg = parseConfig(text).config;
    expect(formatConfig(cfg)).toBe(text);
    expect(formatConfig(cfg, { eol: '\n' })).toBe(text.replace(/\r\n/g, '\n'));
  });

  it('a model made in code comes out in GUI style and reads back the same', () => {
    const cfg = emptyConfig();
    cfg.globals.serialNo = 1;
    cfg.globals.primary = '198.18.0.2';
    cfg.globals.network = 'direct';
    const v = defaultVirtual('web');
    v.active = true;
    v.address = '198.18.0.10';
    v.device = 'eth0:1';
    v.scheduler = 'mh';
    v.schedulerFlags = ['mh-port'];
    v.send = 'GET / HTTP/1.0\\r\\n\\r\\n';
    v.expect = 'say "hi"';
    v.fwmark = 80;
    v.fwmarkRules = [{ protocol: 'tcp', ports: [80, 443] }];
    const s = defaultServer('web1');
    s.address = '198.18.0.21';
    s.active = true;
    s.weight = 3;
    s.method = 'tunnel';
    v.servers.push(s);
    cfg.virtuals.push(v);
    const text = formatConfig(cfg);
    expect(text).toBe(
      [
        'serial_no = 1',
        'primary = 198.18.0.2',
        'network = direct',
        'virtual web {',
        '     active = 1',
        '     address = 198.18.0.10 eth0:1',
        '     fwmark = 80',
        '     fwmark_rule = tcp 80,443',
        '     send = "GET / HTTP/1.0\\r\\n\\r\\n"',
        `     expect = 'say "hi"'`,
        '     scheduler = mh',
        '     scheduler_flags = mh-port',
        '     server web1 {',
        '         address = 198.18.0.21',
        '         active = 1',
        '         weight = 3',
        '         method = tunnel',
        '     }',
        '}',
        '',
      ].join('\n'),
    );
    expect(withoutLayout(parseConfig(text).config)).toEqual(cfg);
  });

  it('a value with both quote characters cannot be written, and validation says so', () => {
    const cfg = parseConfig(corpus('minimal.cf')).config;
    cfg.virtuals[0]!.expect = `it's "odd"`;
    expect(validateModel(cfg).errors.map((e) => e.message)).toEqual(['lvs.cf:1:1 expect: contains both quote characters and cannot be written to lvs.cf']);
  });

  it('failover blocks are kept as they were written', () => {
    const text = corpus('legacy.cf');
    expect(formatConfig(parseConfig(text).config)).toBe(text);
    expect(parseConfig(text).config.failovers[0]!.entries).toContainEqual({ key: 'start_cmd', value: '"/etc/rc.d/init.d/vsftpd start"' });
  });
});
