/**
 * Debian's vsftpd in a lab namespace: an anonymous, read-only FTP server with one known file,
 * for the FTP tests of LVS-NAT and LVS-DR (IPVS's ip_vs_ftp; Piranha's passive-FTP recipe).
 *
 * The recipe (each file under a fresh temp dir, removed by stop()):
 *   root/                    anon_root: owned by root, mode 0755, not writable by `ftp` (vsftpd
 *                            refuses a writable chroot), holding the known file (mode 0644)
 *   empty/                   secure_chroot_dir: an empty root-owned directory that must exist
 *   vsftpd.conf              written below; started as `vsftpd <dir>/vsftpd.conf` with
 *                            background=NO through Netns.spawn, so it lives and dies with the
 *                            lab (vsftpd reads no other file: the config is the only argument)
 *   vsftpd.log               its log
 * Settings that matter:
 *   listen=YES (IPv4 on 0.0.0.0: the real's address and the VIP on lo alike; option ipv6 uses
 *     listen_ipv6=YES instead, which on Linux takes IPv4 too), listen_address unset;
 *   anonymous_enable=YES, no_anon_password=YES, local_enable=NO, write_enable=NO;
 *   pasv_enable=YES, pasv_min_port=10000, pasv_max_port=20000 and pasv_address=<VIP>: behind
 *     LVS-DR the real must announce the VIP in its 227 reply, since the client can only reach
 *     the VIP (Piranha's documentation for passive FTP; behind LVS-NAT IPVS rewrites the 227
 *     itself, and a VIP here is what it would write anyway);
 *   port_enable=YES, connect_from_port_20=YES: active-mode data from port 20 as ip_vs_ftp expects;
 *   isolate_network=NO, isolate=NO, seccomp_sandbox=NO: no per-session namespaces (the lab's
 *     own namespace is the isolation, and a new network namespace per session would be slow).
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LvsError } from '../errors.js';
import { blobBytes } from './blob.js';
import type { Netns } from './netns.js';

export const VSFTPD = '/usr/sbin/vsftpd';

export interface FtpOptions {
  ns: Netns;
  /** The address announced in 227 replies (the VIP); omitted: the address the client used. */
  pasvAddress?: string;
  /** Listen on IPv6 too (listen_ipv6=YES instead of listen=YES). */
  ipv6?: boolean;
  port?: number;
  pasvMinPort?: number;
  pasvMaxPort?: number;
  /** The known file: default `lvsd.bin`, 1 MiB of the blob stream with seed 21 (src/lab/blob.ts). */
  fileName?: string;
  content?: Buffer;
  timeoutMs?: number;
}

export interface FtpServer {
  process: ChildProcess;
  /** The temp dir with root/, empty/, vsftpd.conf and vsftpd.log. */
  dir: string;
  configFile: string;
  fileName: string;
  content: Buffer;
  port: number;
  /** Kill vsftpd and remove the temp dir. */
  stop(): void;
}

export function vsftpdConfig(o: { root: string; empty: string; log: string; port: number; ipv6: boolean; pasvAddress?: string; pasvMinPort: number; pasvMaxPort: number }): string {
  const lines = [
    o.ipv6 ? 'listen=NO' : 'listen=YES',
    o.ipv6 ? 'listen_ipv6=YES' : 'listen_ipv6=NO',
    `listen_port=${o.port}`,
    'background=NO',
    'anonymous_enable=YES',
    'no_anon_password=YES',
    `anon_root=${o.root}`,
    'local_enable=NO',
    'write_enable=NO',
    'anon_upload_enable=NO',
    'anon_mkdir_write_enable=NO',
    'anon_other_write_enable=NO',
    'ftp_username=ftp',
    `secure_chroot_dir=${o.empty}`,
    'pasv_enable=YES',
    `pasv_min_port=${o.pasvMinPort}`,
    `pasv_max_port=${o.pasvMaxPort}`,
    ...(o.pasvAddress ? [`pasv_address=${o.pasvAddress}`] : []),
    'port_enable=YES',
    'connect_from_port_20=YES',
    'isolate_network=NO',
    'isolate=NO',
    'seccomp_sandbox=NO',
    'max_clients=0',
    'max_per_ip=0',
    'xferlog_enable=YES',
    'syslog_enable=NO',
    `vsftpd_log_file=${o.log}`,
    'dual_log_enable=NO',
    'hide_ids=YES',
    'use_localtime=NO',
  ];
  return `${lines.join('\n')}\n`;
}

async function listening(ns: Netns, port: number): Promise<boolean> {
  const out = ns.exec('ss', '-Hltn', `sport = :${port}`);
  return out.trim().length > 0;
}

/** Start vsftpd in `ns`; resolves once it listens. */
export async function startFtp(options: FtpOptions): Promise<FtpServer> {
  const port = options.port ?? 21;
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-ftp-'));
  chmodSync(dir, 0o755);
  const root = join(dir, 'root');
  const empty = join(dir, 'empty');
  mkdirSync(root, { mode: 0o755 });
  mkdirSync(empty, { mode: 0o755 });
  const fileName = options.fileName ?? 'lvsd.bin';
  const content = options.content ?? blobBytes(21, 0, 1 << 20);
  writeFileSync(join(root, fileName), content, { mode: 0o644 });
  const configFile = join(dir, 'vsftpd.conf');
  writeFileSync(
    configFile,
    vsftpdConfig({
      root,
      empty,
      log: join(dir, 'vsftpd.log'),
      port,
      ipv6: options.ipv6 ?? false,
      ...(options.pasvAddress ? { pasvAddress: options.pasvAddress } : {}),
      pasvMinPort: options.pasvMinPort ?? 10000,
      pasvMaxPort: options.pasvMaxPort ?? 20000,
    }),
    { mode: 0o600 },
  );
  const child = options.ns.spawn(VSFTPD, [configFile]);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  child.stdout?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = `exit ${code ?? signal}`));
  const stop = (): void => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  try {
    for (;;) {
      if (exited) throw new LvsError('LVS_LAB_COMMAND', `vsftpd in ${options.ns.name}: ${exited}: ${stderr.trim()}`);
      if (await listening(options.ns, port)) break;
      if (Date.now() > deadline) throw new LvsError('LVS_TIMEOUT', `vsftpd in ${options.ns.name} does not listen on port ${port}: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    stop();
    throw e;
  }
  return { process: child, dir, configFile, fileName, content, port, stop };
}
