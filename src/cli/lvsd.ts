#!/usr/bin/env node
/**
 * The `lvsd` command.
 *
 *   lvsd [-c FILE] [--socket PATH] [--netns NAME] [--io auto|xdp|packet] [--log-level L]
 *       Run the director on lvs.cf (default /etc/sysconfig/ha/lvs.cf) in the foreground, with
 *       structured logs (pino, one JSON object a line) on stdout. SIGHUP re-reads the file and
 *       applies the difference (a bad file changes nothing and is logged); SIGTERM and SIGINT
 *       stop it cleanly (VIPs down, steering removed). lvsadm talks to it on the control socket.
 *   lvsd --test-config [-c FILE]
 *       Check the file: exit 0 if it is valid, 1 with every error (file:line:column key: ...).
 *
 * Subcommands:
 *
 *   lvsd realserver --vip ADDR [--vip ADDR ...] [--method direct|tunnel] [--device DEV]
 *                   [--netns NAME] [--xdp-mode auto|native|generic] [--state FILE]
 *   lvsd realserver --undo   [--netns NAME] [--state FILE]
 *   lvsd realserver --status [--netns NAME] [--state FILE] [--json]
 *
 * `realserver` prepares this host (or a named network namespace) as an LVS-DR or LVS-TUN real
 * server (src/realserver/realserver.ts: VIPs on lo, arp_ignore/arp_announce, and for tunnel
 * the decapsulating XDP program and rp_filter), and records what it changed in a state file so
 * that `--undo` reverses exactly that after this process has gone:
 *   /run/lvsd/realserver.json         for the process's own namespace
 *   /run/lvsd/realserver-NAME.json    with --netns NAME
 * Running it again for the same namespace adds to the recorded state (the VIP lists are
 * merged, the first saved value of each sysctl is kept), so one --undo reverses both.
 *
 * Errors print as `lvsd: LVS_CODE: message` on stderr, with exit status 1.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command } from 'commander';
import { pino } from 'pino';
import { startDaemon } from '../daemon/daemon.js';
import { loadDirectorConfig } from '../daemon/lvscf.js';
import { DEFAULT_CONTROL_SOCKET } from '../daemon/protocol.js';
import { LvsError, isLvsError } from '../errors.js';
import { packageRoot, type XdpMode } from '../dataplane/native.js';
import { isMainModule } from './main.js';
import {
  checkRealServerOptions,
  mergeRealServerStates,
  prepareRealServer,
  realServerStatus,
  undoRealServer,
  type RealServerMethod,
  type RealServerState,
} from '../realserver/realserver.js';

export const RUN_DIR = '/run/lvsd';

/** The state file for a namespace ('' = the process's own). */
export function realServerStateFile(netns: string): string {
  return join(RUN_DIR, netns ? `realserver-${netns}.json` : 'realserver.json');
}

function readState(file: string): RealServerState | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new LvsError('LVS_HOST', `reading ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const s = JSON.parse(text) as RealServerState;
    if (s.version !== 1 || !Array.isArray(s.sysctls) || !Array.isArray(s.addedAddresses) || !Array.isArray(s.decap)) throw new Error('not an lvsd real-server state');
    return s;
  } catch (e) {
    throw new LvsError('LVS_HOST', `${file}: ${(e as Error).message}`, { file, cause: e });
  }
}

function writeState(file: string, state: RealServerState): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(tmp, file);
  } catch (e) {
    throw new LvsError('LVS_HOST', `writing ${file}: ${(e as Error).message}`, { file, cause: e });
  }
}

interface RealServerCliOptions {
  vip: string[];
  method?: string;
  device?: string;
  netns?: string;
  xdpMode?: string;
  state?: string;
  undo?: boolean;
  status?: boolean;
  json?: boolean;
}

function formatStatus(netns: string, file: string, state: RealServerState | null): string {
  const st = realServerStatus(netns);
  const lines: string[] = [];
  lines.push(`namespace: ${netns || '(this one)'}`);
  if (state) {
    lines.push(`recorded in ${file}: ${state.method}, VIPs ${state.vips.join(' ')}, devices ${state.devices.join(' ')}`);
    lines.push(`  added ${state.addedAddresses.map((a) => `${a.address}/${a.prefixLength}`).join(' ') || 'no addresses'}; ${state.sysctls.length} sysctls saved; decapsulator on ${state.decap.map((d) => `${d.device} (${d.mode})`).join(' ') || 'no device'}`);
  } else {
    lines.push(`nothing recorded in ${file}`);
  }
  lines.push(`lo addresses: ${st.loAddresses.join(' ') || '(none besides loopback)'}`);
  for (const k of ['arp_ignore', 'arp_announce', 'rp_filter']) {
    const parts = Object.entries(st.sysctls)
      .filter(([key]) => key.endsWith(`/${k}`))
      .map(([key, v]) => `${key.split('/')[3]}=${v}`);
    lines.push(`${k}: ${parts.join(' ')}`);
  }
  for (const x of st.xdp) lines.push(`xdp ${x.device}: ${x.program ? `${x.program.name} (id ${x.program.id})` : 'none'}`);
  return `${lines.join('\n')}\n`;
}

async function realserver(o: RealServerCliOptions): Promise<void> {
  const netns = o.netns ?? '';
  const file = o.state ?? realServerStateFile(netns);
  if (o.undo && o.status) throw new LvsError('LVS_INVALID_ARGUMENT', '--undo and --status cannot be combined');
  if (o.status) {
    const state = readState(file);
    if (o.json) process.stdout.write(`${JSON.stringify({ state, status: realServerStatus(netns) }, null, 2)}\n`);
    else process.stdout.write(formatStatus(netns, file, state));
    return;
  }
  if (o.undo) {
    const state = readState(file);
    if (!state) {
      process.stdout.write(`lvsd realserver: nothing recorded in ${file}; nothing to undo\n`);
      return;
    }
    undoRealServer(state);
    rmSync(file, { force: true });
    process.stdout.write(`lvsd realserver: undone (${state.vips.join(' ')})\n`);
    return;
  }
  if (o.vip.length === 0) throw new LvsError('LVS_INVALID_ARGUMENT', 'realserver: give at least one --vip (or --undo / --status)', { field: 'vip' });
  const method = (o.method ?? 'direct') as RealServerMethod;
  const base = { vips: o.vip, method, ...(o.device !== undefined ? { device: o.device } : {}), ...(netns ? { netns } : {}), ...(o.xdpMode !== undefined ? { xdpMode: o.xdpMode as XdpMode | 'auto' } : {}) };
  // Bad input is refused before the recorded state is even read.
  checkRealServerOptions(base);
  const earlier = readState(file);
  const vips = earlier && earlier.netns === netns ? [...new Set([...earlier.vips, ...base.vips])] : base.vips;
  const prepared = await prepareRealServer({ ...base, vips });
  const state = earlier && earlier.netns === netns ? mergeRealServerStates(earlier, prepared.state) : prepared.state;
  writeState(file, state);
  process.stdout.write(
    `lvsd realserver: ${state.method} real server for ${state.vips.join(' ')}${state.decap.length ? `; decapsulator on ${state.decap.map((d) => `${d.device} (${d.mode})`).join(' ')}` : ''}; undo with: lvsd realserver --undo${netns ? ` --netns ${netns}` : ''}${o.state ? ` --state ${o.state}` : ''}\n`,
  );
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The command tree; `lvsd` runs it on process.argv. */
export function createProgram(): Command {
  const program = new Command('lvsd').description('Linux Virtual Server director').version(version()).showHelpAfterError().enablePositionalOptions();
  program
    .option('-c, --config <file>', 'the lvs.cf to run', DEFAULT_CONFIG)
    .option('--test-config', 'check the configuration and exit: 0 when valid, 1 with the errors')
    .option('--socket <path>', 'the control socket (mode 0600)', DEFAULT_CONTROL_SOCKET)
    .option('--netns <name>', 'run the director in this named network namespace')
    .option('--io <kind>', 'packet I/O: auto, xdp or packet', 'auto')
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .option('--forceactive', 'failover: take over at start even if the partner is active (pulse --forceactive)')
    .action(async (o: DaemonCliOptions) => daemon(o));
  program
    .command('realserver')
    .description('prepare this host or a namespace as an LVS-DR / LVS-TUN real server (VIPs on lo, ARP sysctls, tunnel decapsulation), or undo that')
    .option('--vip <address>', 'a virtual IP address (repeat for several)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--method <method>', 'direct or tunnel', 'direct')
    .option('--device <name>', 'the device facing the director (default: every device but lo)')
    .option('--netns <name>', 'a named network namespace (ip netns) instead of this one')
    .option('--xdp-mode <mode>', 'tunnel: XDP attach mode auto, native or generic', 'auto')
    .option('--state <file>', 'the state file (default /run/lvsd/realserver[-NETNS].json)')
    .option('--undo', 'reverse what was recorded in the state file')
    .option('--status', 'show what is in place')
    .option('--json', 'with --status: print JSON')
    .action(async (o: RealServerCliOptions) => realserver(o));
  return program;
}

const DEFAULT_CONFIG = '/etc/sysconfig/ha/lvs.cf';

interface DaemonCliOptions {
  config: string;
  testConfig?: boolean;
  socket: string;
  netns?: string;
  io: string;
  logLevel: string;
  forceactive?: boolean;
}

async function daemon(o: DaemonCliOptions): Promise<void> {
  if (o.testConfig) {
    try {
      await loadDirectorConfig(o.config, (w) => process.stderr.write(`warning: ${w.message}\n`));
      process.stdout.write(`${o.config}: OK\n`);
      process.exit(0);
    } catch (e) {
      const errors = (e as { errors?: Error[] }).errors ?? [e as Error];
      for (const err of errors) process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
  }
  if (!['auto', 'xdp', 'packet'].includes(o.io)) throw new LvsError('LVS_INVALID_OPTION', `--io: expected auto, xdp or packet, got "${o.io}"`, { field: 'io' });
  const log = pino({ level: o.logLevel, base: { pid: process.pid } });
  const d = await startDaemon({ config: o.config, socket: o.socket, io: o.io as 'auto' | 'xdp' | 'packet', logger: log, ...(o.netns ? { netns: o.netns } : {}), ...(o.forceactive ? { forceActive: true } : {}) });
  log.info({ event: 'ready', socket: d.socket }, 'lvsd running');
  const keepAlive = setInterval(() => {}, 1 << 30);
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    log.info({ event: 'sighup' }, 'SIGHUP: reloading the configuration');
    reloading = reloading.then(() => d.reload().then(() => undefined));
  });
  const stop = (sig: string) => {
    log.info({ event: 'signal', signal: sig }, `${sig}: stopping`);
    reloading
      .then(() => d.stop())
      .then(() => {
        clearInterval(keepAlive);
        log.info({ event: 'exit' }, 'lvsd stopped');
        log.flush?.();
        process.exit(0);
      })
      .catch(fail);
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

function fail(e: unknown): never {
  const code = (e as { code?: unknown } | null)?.code;
  // LvsErrors, and the addon's errors (plain Errors with an LVS_* code).
  if (isLvsError(e) || (typeof code === 'string' && code.startsWith('LVS_'))) process.stderr.write(`lvsd: ${String(code)}: ${(e as Error).message}\n`);
  else process.stderr.write(`lvsd: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
}

if (isMainModule(import.meta.url)) {
  createProgram()
    .parseAsync(process.argv)
    .catch(fail);
}
