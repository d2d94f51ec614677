/**
 * Writes lvs.cf atomically: the new text goes to a temporary file in the same directory,
 * is flushed to disk (fsync), and replaces the file with rename(2), after which the directory
 * is flushed too. A reader sees the old file or the new one, never a part; a crash at any
 * point leaves the old file whole. serial_no goes up by one on every write (as the Piranha
 * GUI did), the file keeps its mode and owner, and a symbolic link keeps pointing where it
 * did (its target is replaced).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fchownSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { LvsError } from '../errors.js';
import { cInteger } from './keys.js';
import { formatConfig, type FormatOptions } from './format.js';
import { LvsConfigError, type LvsConfig } from './model.js';
import { parseConfig, type ParseOptions } from './parse.js';
import { validateModel } from './validate.js';

export interface WriteOptions extends FormatOptions {
  /** Mode of a file that does not exist yet. Default 0o644. An existing file keeps its own. */
  mode?: number;
  /** Service names, for reading the written text back (see ParseOptions). */
  services?: ParseOptions['services'];
  /** Fault injection for tests: runs after the temporary file is written and flushed, just
   *  before the rename. Throwing here is a failure between the two steps. */
  beforeRename?: (tempPath: string) => void | Promise<void>;
}

export interface WriteResult {
  /** The path written (a symbolic link's target). */
  file: string;
  /** The new serial_no. */
  serial: number;
  /** The model written, with its new serial_no and the layout of the new text. */
  config: LvsConfig;
}

/** serial_no of a file's text, if it has a readable one. */
function textSerial(text: string): number | undefined {
  const m = text.match(/^[ \t]*serial_no[ \t]+=[ \t]+["']?([^\s"']+)/m);
  const n = m ? cInteger(m[1]!) : undefined;
  return n !== undefined && n >= 0 ? n : undefined;
}

function ioError(path: string, what: string, e: unknown): LvsError {
  return new LvsError('LVS_CONFIG_IO', `${path}: cannot ${what}: ${(e as Error).message}`, { file: path, cause: e });
}

interface Prepared {
  serial: number;
  text: string;
  written: LvsConfig;
  temp: string;
  dir: string;
}

/** The new serial, text (read back once: lvsd never writes a file it cannot read) and the
 *  temporary file's name. */
function prepare(target: string, cfg: LvsConfig, onDisk: string | undefined, options: WriteOptions): Prepared {
  const serial = Math.max(cfg.globals.serialNo, (onDisk === undefined ? undefined : textSerial(onDisk)) ?? 0) + 1;
  const next: LvsConfig = { ...cfg, globals: { ...cfg.globals, serialNo: serial } };
  const checked = validateModel(next, { file: basename(target) });
  if (checked.errors.length) throw new LvsConfigError(checked.errors);
  const text = formatConfig(next, options);
  const parsed = parseConfig(text, { file: basename(target), ...(options.services ? { services: options.services } : {}) });
  const written: LvsConfig = { ...parsed.config, ...(cfg.resolved ? { resolved: { ...cfg.resolved } } : {}) };
  const dir = dirname(target);
  const temp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  return { serial, text, written, temp, dir };
}

/** Whether the file must be given back to its owner (only root can; others write their own). */
function needsChown(owner: { uid: number; gid: number } | undefined): owner is { uid: number; gid: number } {
  return owner !== undefined && typeof process.getuid === 'function' && (owner.uid !== process.getuid() || owner.gid !== process.getgid!());
}

/**
 * Writes `cfg` to `path` with serial_no one above both the model's and the file's own, keeping
 * the file's mode and owner. Throws LvsError LVS_CONFIG_IO (the old file is then untouched).
 */
export async function writeConfig(path: string, cfg: LvsConfig, options: WriteOptions = {}): Promise<WriteResult> {
  const target = await realpath(path).catch(() => path);
  const p = prepare(target, cfg, await readFile(target, 'utf8').catch(() => undefined), options);
  await replaceAtomically(target, p.text, p.temp, p.dir, options);
  return { file: target, serial: p.serial, config: p.written };
}

/**
 * Replaces `path` with `text` exactly as given (no formatting, serial_no untouched), with the
 * same guarantees as writeConfig: used for an lvs.cf pushed by the failover partner, whose
 * bytes must stay the partner's (both sides compare digests of them). The caller validates.
 */
export async function writeConfigText(path: string, text: string, options: Pick<WriteOptions, 'mode' | 'beforeRename'> = {}): Promise<{ file: string }> {
  const target = await realpath(path).catch(() => path);
  const dir = dirname(target);
  const temp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await replaceAtomically(target, text, temp, dir, options);
  return { file: target };
}

async function replaceAtomically(target: string, text: string, temp: string, dir: string, options: Pick<WriteOptions, 'mode' | 'beforeRename'>): Promise<void> {
  const p = { text, temp, dir };
  let mode = options.mode ?? 0o644;
  let owner: { uid: number; gid: number } | undefined;
  try {
    const st = await stat(target);
    mode = st.mode & 0o7777;
    owner = { uid: st.uid, gid: st.gid };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(target, 'read the mode of', e);
  }
  let renamed = false;
  try {
    const fh = await open(p.temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600).catch((e) => {
      throw ioError(p.temp, 'create', e);
    });
    try {
      await fh.writeFile(p.text, 'utf8');
      await fh.chmod(mode);
      if (needsChown(owner)) {
        await fh.chown(owner.uid, owner.gid).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EPERM') throw e;
        });
      }
      await fh.sync();
    } catch (e) {
      throw ioError(p.temp, 'write', e);
    } finally {
      await fh.close();
    }
    await options.beforeRename?.(p.temp);
    await rename(p.temp, target).catch((e) => {
      throw ioError(target, 'replace', e);
    });
    renamed = true;
    // The rename itself is durable once the directory is flushed.
    const dh = await open(p.dir, constants.O_RDONLY | constants.O_DIRECTORY).catch((e) => {
      throw ioError(p.dir, 'open the directory of', e);
    });
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } finally {
    if (!renamed) await unlink(p.temp).catch(() => undefined);
  }
}

/** writeConfig for callers that cannot wait (same steps, same guarantees). `beforeRename`
 *  must not return a promise here. */
export function writeConfigSync(path: string, cfg: LvsConfig, options: WriteOptions = {}): WriteResult {
  let target = path;
  try {
    target = realpathSync(path);
  } catch {
    target = path;
  }
  let onDisk: string | undefined;
  try {
    onDisk = readFileSync(target, 'utf8');
  } catch {
    onDisk = undefined;
  }
  const p = prepare(target, cfg, onDisk, options);
  let mode = options.mode ?? 0o644;
  let owner: { uid: number; gid: number } | undefined;
  try {
    const st = statSync(target);
    mode = st.mode & 0o7777;
    owner = { uid: st.uid, gid: st.gid };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(target, 'read the mode of', e);
  }
  let renamed = false;
  try {
    let fd: number;
    try {
      fd = openSync(p.temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (e) {
      throw ioError(p.temp, 'create', e);
    }
    try {
      const buf = Buffer.from(p.text, 'utf8');
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      fchmodSync(fd, mode);
      if (needsChown(owner)) {
        try {
          fchownSync(fd, owner.uid, owner.gid);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
        }
      }
      fsyncSync(fd);
    } catch (e) {
      throw ioError(p.temp, 'write', e);
    } finally {
      closeSync(fd);
    }
    const hook = options.beforeRename?.(p.temp);
    if (hook instanceof Promise) throw new LvsError('LVS_INVALID_ARGUMENT', 'beforeRename: writeConfigSync cannot wait for a promise', { field: 'beforeRename' });
    try {
      renameSync(p.temp, target);
    } catch (e) {
      throw ioError(target, 'replace', e);
    }
    renamed = true;
    let dfd: number;
    try {
      dfd = openSync(p.dir, constants.O_RDONLY | constants.O_DIRECTORY);
    } catch (e) {
      throw ioError(p.dir, 'open the directory of', e);
    }
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } finally {
    if (!renamed) {
      try {
        unlinkSync(p.temp);
      } catch {
        // Already gone.
      }
    }
  }
  return { file: target, serial: p.serial, config: p.written };
}
