/**
 * Atomic writes of lvs.cf: serial_no goes up, a failure at any step leaves the old file whole,
 * the mode and owner stay, no temporary file is left behind.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cloneConfig, parseConfig, writeConfig, writeConfigSync } from '../../src/config/index.js';

const example = readFileSync(join(import.meta.dirname, 'corpus', 'valid', 'piranha-example.cf'), 'utf8');
let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lvsd-config-'));
  file = join(dir, 'lvs.cf');
  writeFileSync(file, example, { mode: 0o640 });
  chmodSync(file, 0o640);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const leftovers = () => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

describe('writeConfig', () => {
  it('bumps serial_no and writes a file that reads back to the model', async () => {
    const cfg = parseConfig(example).config;
    cfg.virtuals[0]!.servers[1]!.weight = 50;
    const r = await writeConfig(file, cfg);
    expect(r.serial).toBe(43);
    expect(r.file).toBe(file);
    const back = parseConfig(readFileSync(file, 'utf8')).config;
    expect(back.globals.serialNo).toBe(43);
    expect(back.virtuals[0]!.servers[1]!.weight).toBe(50);
    expect(r.config.globals.serialNo).toBe(43);
    // Each write goes one further, also from the returned model.
    expect((await writeConfig(file, r.config)).serial).toBe(44);
    expect(leftovers()).toEqual([]);
  });

  it('never goes below the serial_no on disk (someone else saved in between)', async () => {
    const cfg = parseConfig(example).config;
    writeFileSync(file, example.replace('serial_no = 42', 'serial_no = 0x64'));
    expect((await writeConfig(file, cfg)).serial).toBe(101);
  });

  it('keeps the mode and the owner of the file', async () => {
    chownSync(file, 60, 60);
    chmodSync(file, 0o660);
    await writeConfig(file, parseConfig(example).config);
    const st = statSync(file);
    expect(st.mode & 0o7777).toBe(0o660);
    expect([st.uid, st.gid]).toEqual([60, 60]);
  });

  it('a new file gets mode 0644 (or the one asked for)', async () => {
    const fresh = join(dir, 'new.cf');
    await writeConfig(fresh, parseConfig(example).config);
    expect(statSync(fresh).mode & 0o7777).toBe(0o644);
    const other = join(dir, 'other.cf');
    await writeConfig(other, parseConfig(example).config, { mode: 0o600 });
    expect(statSync(other).mode & 0o7777).toBe(0o600);
  });

  it('a failure between the temporary file and the rename leaves the old file whole', async () => {
    const cfg = cloneConfig(parseConfig(example).config);
    cfg.virtuals = [];
    let temp = '';
    await expect(
      writeConfig(file, cfg, {
        beforeRename: (t) => {
          temp = t;
          // The temporary file is complete and on disk at this point.
          expect(parseConfig(readFileSync(t, 'utf8')).config.globals.serialNo).toBe(43);
          throw new Error('power cut');
        },
      }),
    ).rejects.toThrow('power cut');
    expect(temp.startsWith(join(dir, '.lvs.cf.'))).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(example);
    expect(statSync(file).mode & 0o7777).toBe(0o640);
    expect(leftovers()).toEqual([]);
  });

  it('a rename the kernel refuses leaves the target as it was (LVS_CONFIG_IO)', async () => {
    // rename(2) cannot put a file over a non-empty directory, even for root.
    const target = join(dir, 'conf.d');
    mkdirSync(target);
    writeFileSync(join(target, 'keep'), 'x');
    await expect(writeConfig(target, parseConfig(example).config)).rejects.toMatchObject({ code: 'LVS_CONFIG_IO', message: expect.stringMatching(/conf.d: cannot replace: E(ISDIR|NOTEMPTY|EXIST)/) });
    expect(readFileSync(join(target, 'keep'), 'utf8')).toBe('x');
    expect(leftovers()).toEqual([]);
  });

  it('a model that cannot be read back is not written', async () => {
    const cfg = cloneConfig(parseConfig(example).config);
    cfg.virtuals[0]!.send = `both ' and "`;
    await expect(writeConfig(file, cfg)).rejects.toMatchObject({ code: 'LVS_CONFIG_INVALID', message: 'lvs.cf:32:5 send: contains both quote characters and cannot be written to lvs.cf' });
    expect(readFileSync(file, 'utf8')).toBe(example);
    expect(leftovers()).toEqual([]);
  });

  it('through a symbolic link, the link stays and its target is replaced', async () => {
    const link = join(dir, 'link.cf');
    symlinkSync('lvs.cf', link);
    const r = await writeConfig(link, parseConfig(example).config);
    expect(r.file).toBe(file);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe('lvs.cf');
    expect(parseConfig(readFileSync(file, 'utf8')).config.globals.serialNo).toBe(43);
  });

  it('writes at the same time leave one whole file', async () => {
    const a = cloneConfig(parseConfig(example).config);
    const b = cloneConfig(a);
    a.virtuals[0]!.scheduler = 'rr';
    b.virtuals[0]!.scheduler = 'lc';
    await Promise.all([writeConfig(file, a), writeConfig(file, b), writeConfig(file, a), writeConfig(file, b)]);
    const back = parseConfig(readFileSync(file, 'utf8')).config;
    expect(['rr', 'lc']).toContain(back.virtuals[0]!.scheduler);
    expect(leftovers()).toEqual([]);
  });
});

describe('writeConfigSync', () => {
  it('same steps: serial, mode, and the old file whole when the rename does not happen', () => {
    const cfg = parseConfig(example).config;
    chmodSync(file, 0o600);
    expect(writeConfigSync(file, cfg).serial).toBe(43);
    expect(statSync(file).mode & 0o7777).toBe(0o600);
    const before = readFileSync(file, 'utf8');
    expect(() =>
      writeConfigSync(file, cfg, {
        beforeRename: () => {
          throw new Error('power cut');
        },
      }),
    ).toThrow('power cut');
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(leftovers()).toEqual([]);
  });
});
