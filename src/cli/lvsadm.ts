#!/usr/bin/env node
/**
 * lvsadm: ipvsadm's commands, options, output and exit statuses, carried out by a running lvsd
 * over its control socket (src/daemon/protocol.ts). See docs/lvsadm.md.
 *
 *   lvsadm -A -t 198.18.0.100:80 -s rr
 *   lvsadm -a -t 198.18.0.100:80 -r 198.18.1.11 -m -w 2
 *   lvsadm -L -n --stats
 *   lvsadm -S -n > rules; lvsadm -C; lvsadm -R < rules
 *
 * The socket is --socket PATH, else $LVSD_SOCKET, else /run/lvsd/lvsd.sock. When no lvsd
 * answers there: "lvsadm: cannot reach lvsd at PATH: REASON", exit status 2 (ipvsadm's status
 * when IPVS is missing). lvsd's errors are printed as ipvsadm prints the kernel's ("Service not
 * defined", "No such destination", ...; exit status 255); an lvsd error that has no ipvsadm
 * counterpart is printed as "lvsadm: LVS_CODE: message", also with 255.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ControlRealSpec, ControlResults } from '../daemon/protocol.js';
import type { SchedulerName, ServiceKey } from '../dataplane/types.js';
import { LvsError, isLvsError } from '../errors.js';
import { ControlClient, controlSocketPath, type ControlOp, type RequestOf } from './client.js';
import { formatConnections, formatSave, formatService, formatServices, formatTimeouts, ntop, type RatedService } from './format.js';
import {
  IpvsadmExit,
  IpvsadmLineError,
  PROGRAM,
  filesNameService,
  parseIpvsadm,
  restoreLines,
  type IpvsadmCommand,
  type NameService,
  type ServiceArg,
} from './ipvsadm-args.js';
import { parseAddress } from '../net/address.js';
import { isMainModule } from './main.js';

export interface LvsadmIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** All of standard input (for -R). */
  readStdin(): Promise<string>;
  /** For $LVSD_SOCKET. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Name lookups (default /etc/hosts and /etc/services). */
  names?: NameService;
}

/** The package's version, for -v and -h. */
export function lvsadmVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const EINVAL = 'Invalid operation.  Possibly wrong module version, address not unicast, ...';
const REAL_OPS: ReadonlySet<ControlOp> = new Set(['add-real', 'edit-real', 'delete-real']);
const SERVICE_EDITS: ReadonlySet<ControlOp> = new Set(['add-service', 'edit-service']);
const EINVAL_CODES: ReadonlySet<string> = new Set([
  'LVS_INVALID_ARGUMENT', 'LVS_INVALID_ADDRESS', 'LVS_INVALID_PORT', 'LVS_INVALID_PROTOCOL', 'LVS_INVALID_FWMARK',
  'LVS_INVALID_METHOD', 'LVS_INVALID_TIMEOUT', 'LVS_INVALID_OPTION', 'LVS_INVALID_PERSISTENCE', 'LVS_PORT_ZERO', 'LVS_PORT_MAPPING',
]);

/**
 * What ipvsadm prints for lvsd's error, as it prints the kernel's errno for the same failure
 * (libipvs's ipvs_strerror, per operation): ESRCH "No such service" / "Service not defined",
 * EEXIST, ENOENT, ENOMEM "Memory allocation problem", ERANGE, EAFNOSUPPORT, EINVAL. lvsd errors
 * with no kernel counterpart (a real lvsd cannot reach, ...) keep lvsd's code and message.
 */
export function ipvsadmErrorText(op: ControlOp, e: LvsError): string {
  switch (e.code) {
    case 'LVS_SERVICE_EXISTS':
      return 'Service already exists';
    case 'LVS_NO_SUCH_SERVICE':
      return REAL_OPS.has(op) ? 'Service not defined' : 'No such service';
    case 'LVS_REAL_EXISTS':
      return 'Destination already exists';
    case 'LVS_NO_SUCH_REAL':
      return 'No such destination';
    case 'LVS_INVALID_SCHEDULER':
      return SERVICE_EDITS.has(op) ? 'Scheduler or persistence engine not found' : EINVAL;
    case 'LVS_CAPACITY':
      return 'Memory allocation problem';
    case 'LVS_FAMILY_MISMATCH':
      return 'Operation not supported with specified address family';
    case 'LVS_INVALID_THRESHOLD':
    case 'LVS_INVALID_WEIGHT':
      return 'Numerical result out of range';
    default:
      return EINVAL_CODES.has(e.code) ? EINVAL : `${PROGRAM}: ${e.code}: ${e.message}`;
  }
}

function serviceKey(s: ServiceArg): ServiceKey {
  return s.fwmark ? { fwmark: s.fwmark, family: s.family } : { protocol: s.protocol as 'tcp' | 'udp', address: s.address!, port: s.port };
}

function sameAddress(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b;
  return ntop(parseAddress(a)) === ntop(parseAddress(b));
}

/** The listed service ipvsadm's ipvs_get_service would return for the key. */
function findService(services: RatedService[], s: ServiceArg): RatedService | undefined {
  if (s.fwmark) return services.find((x) => x.fwmark === s.fwmark && x.family === s.family);
  return services.find((x) => !x.fwmark && x.protocol === s.protocol && x.port === s.port && sameAddress(x.address, s.address));
}

/** Something ipvsadm can ask for that lvsd does not do: refused as a failed operation. */
class Unsupported extends Error {}

/** One lvsadm run: a connection opened on first need, kept for -R's lines. */
class Session {
  private client: ControlClient | null = null;
  readonly socket: string;
  private readonly nameService: NameService;

  constructor(
    private readonly io: LvsadmIo,
    socket: string | null,
    private readonly version: string,
  ) {
    this.socket = controlSocketPath(socket, io.env ?? process.env);
    this.nameService = io.names ?? filesNameService();
  }

  close(): void {
    this.client?.close();
    this.client = null;
  }

  /** A request; lvsd's errors come back as LvsError, losing lvsd ends the program (status 2). */
  private async request<K extends ControlOp>(req: RequestOf<K>): Promise<ControlResults[K]> {
    if (!this.client) {
      try {
        this.client = await ControlClient.connect(this.socket);
      } catch (e) {
        const reason = isLvsError(e) ? e.message : String(e);
        throw new IpvsadmExit(2, `${PROGRAM}: cannot reach lvsd at ${this.socket}: ${reason}\n`);
      }
    }
    try {
      return await this.client.request(req);
    } catch (e) {
      if (isLvsError(e) && (e.code === 'LVS_CLOSED' || e.code === 'LVS_PROTOCOL')) throw new IpvsadmExit(2, `${PROGRAM}: ${e.message}\n`);
      throw e;
    }
  }

  /** A change: 0, or ipvsadm's message for lvsd's error and 255. */
  private async change<K extends ControlOp>(req: RequestOf<K>): Promise<number> {
    try {
      await this.request(req);
      return 0;
    } catch (e) {
      if (!isLvsError(e)) throw e;
      this.io.stderr(`${ipvsadmErrorText(req.op, e)}\n`);
      return 255;
    }
  }

  /** A listing: its failure ends the program with status 1, as ipvsadm's exit(1). */
  private async fetch<K extends ControlOp>(req: RequestOf<K>): Promise<ControlResults[K]> {
    try {
      return await this.request(req);
    } catch (e) {
      if (!isLvsError(e)) throw e;
      throw new IpvsadmExit(1, `${ipvsadmErrorText(req.op, e)}\n`);
    }
  }

  private names(numeric: boolean): NameService | undefined {
    return numeric ? undefined : this.nameService;
  }

  /** Carry out one command; its exit status (fatal ends throw IpvsadmExit). */
  async run(cmd: IpvsadmCommand, readingStdin: boolean): Promise<number> {
    try {
      return await this.execute(cmd, readingStdin);
    } catch (e) {
      if (e instanceof Unsupported) {
        this.io.stderr(`${PROGRAM}: ${e.message}\n`);
        return 255;
      }
      throw e;
    }
  }

  private async execute(cmd: IpvsadmCommand, readingStdin: boolean): Promise<number> {
    switch (cmd.command) {
      case 'list': {
        const f = cmd.format;
        if (cmd.show === 'connections') {
          const conns = await this.fetch({ op: 'connections' });
          this.io.stdout(formatConnections(conns, { names: this.names(f.numeric), persistentConn: f.persistentConn }));
        } else if (cmd.show === 'timeout') {
          this.io.stdout(formatTimeouts(await this.fetch({ op: 'timeouts' })));
        } else if (cmd.show === 'daemon') {
          // lvsd runs no IPVS sync daemon: nothing to show, as ipvsadm shows nothing then.
          await this.fetch({ op: 'hello' });
        } else {
          const list = await this.fetch({ op: 'list' });
          const o = { ...f, names: this.names(f.numeric) };
          if (cmd.service) {
            const s = findService(list.services, cmd.service);
            if (!s) throw new IpvsadmExit(1, 'No such service\n');
            this.io.stdout(formatService(s, o));
          } else {
            this.io.stdout(formatServices(list.services, { ...o, tableSize: list.tableSize }));
          }
        }
        return 0;
      }
      case 'save': {
        const list = await this.fetch({ op: 'list' });
        this.io.stdout(formatSave(list.services, { names: this.names(cmd.format.numeric), sort: cmd.format.sort }));
        return 0;
      }
      case 'restore':
        return this.restore(readingStdin);
      case 'flush':
        return this.change({ op: 'clear' });
      case 'add-service':
      case 'edit-service': {
        const { service: s, settings: o } = cmd;
        if (s.protocol === 'sctp') throw new Unsupported('SCTP services are not supported by lvsd');
        if (o.onePacket) throw new Unsupported('one-packet scheduling (-o, --ops) is not supported by lvsd');
        if (o.persistenceEngine !== null) {
          this.io.stderr('Scheduler or persistence engine not found\n');
          return 255;
        }
        const settings = {
          scheduler: o.scheduler as SchedulerName,
          flags: o.flags,
          ...(cmd.command === 'edit-service' ? { persistence: o.persistence ?? false } : o.persistence ? { persistence: o.persistence } : {}),
        };
        if (cmd.command === 'add-service') return this.change({ op: 'add-service', service: { ...serviceKey(s), ...settings } });
        return this.change({ op: 'edit-service', key: serviceKey(s), changes: settings });
      }
      case 'delete-service':
        if (cmd.service.protocol === 'sctp') return this.noSuchService();
        return this.change({ op: 'delete-service', key: serviceKey(cmd.service) });
      case 'zero':
        if (cmd.service?.protocol === 'sctp') return this.noSuchService();
        return this.change(cmd.service ? { op: 'zero', key: serviceKey(cmd.service) } : { op: 'zero' });
      case 'add-server':
      case 'edit-server': {
        const { service: s, server: r } = cmd;
        if (s.protocol === 'sctp') throw new Unsupported('SCTP services are not supported by lvsd');
        if (r.method === 'tunnel' && r.tunnel.type !== 'ipip') throw new Unsupported(`tunnel type ${r.tunnel.type} is not supported: lvsd tunnels with ipip only`);
        const real: ControlRealSpec = { address: r.address, port: r.port, weight: r.weight, method: r.method, upperThreshold: r.upperThreshold, lowerThreshold: r.lowerThreshold };
        if (cmd.command === 'add-server') return this.change({ op: 'add-real', key: serviceKey(s), real });
        return this.change({
          op: 'edit-real',
          key: serviceKey(s),
          real: { address: r.address, port: r.port },
          changes: { weight: r.weight, method: r.method, upperThreshold: r.upperThreshold, lowerThreshold: r.lowerThreshold },
        });
      }
      case 'delete-server':
        if (cmd.service.protocol === 'sctp') {
          this.io.stderr('Service not defined\n');
          return 255;
        }
        return this.change({ op: 'delete-real', key: serviceKey(cmd.service), real: { address: cmd.server.address, port: cmd.server.port } });
      case 'set':
        return this.change({ op: 'set-timeouts', timeouts: cmd.timeouts });
      case 'start-daemon':
      case 'stop-daemon':
        throw new Unsupported(
          `connection synchronization is lvsd's own (issue 7): lvsadm cannot ${cmd.command === 'start-daemon' ? 'start' : 'stop'} an IPVS ${cmd.state} sync daemon`,
        );
      case 'write-config':
        return this.change(cmd.file === null ? { op: 'write-config' } : { op: 'write-config', file: cmd.file });
    }
  }

  private noSuchService(): number {
    this.io.stderr('No such service\n');
    return 255;
  }

  /** -R: each line of standard input is one command; the status is the last line's. */
  private async restore(readingStdin: boolean): Promise<number> {
    if (readingStdin) throw new IpvsadmExit(255, `Try \`${PROGRAM} -h' or '${PROGRAM} --help' for more information.\n`);
    let status = 0;
    for (const words of restoreLines(await this.io.readStdin())) {
      status = await this.line(words, true);
    }
    return status;
  }

  /** Parse and run one command line; IpvsadmExit propagates (it ends the program). */
  async line(argv: readonly string[], readingStdin: boolean): Promise<number> {
    let cmd: IpvsadmCommand;
    try {
      cmd = parseIpvsadm(argv, { program: PROGRAM, names: this.nameService, readingStdin, version: this.version });
    } catch (e) {
      if (e instanceof IpvsadmLineError) {
        this.io.stderr(e.stderr);
        return e.status;
      }
      throw e;
    }
    return this.run(cmd, readingStdin);
  }
}

/** Take lvsadm's own --socket PATH (or --socket=PATH) off the command line. */
function takeSocket(argv: readonly string[]): { argv: string[]; socket: string | null } {
  const rest: string[] = [];
  let socket: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === '--socket') {
      if (i + 1 >= argv.length) throw new IpvsadmExit(255, '--socket: missing argument\n');
      socket = argv[++i]!;
    } else if (a.startsWith('--socket=')) {
      socket = a.slice('--socket='.length);
    } else {
      rest.push(a);
    }
  }
  return { argv: rest, socket };
}

/** Run lvsadm with `argv` (without the program name); resolves with the exit status. */
export async function lvsadm(argv: readonly string[], io: LvsadmIo): Promise<number> {
  let session: Session | null = null;
  try {
    const { argv: args, socket } = takeSocket(argv);
    session = new Session(io, socket, lvsadmVersion());
    // No arguments: list the table, with names (ipvsadm's list_all(FMT_NONE)).
    return await session.line(args.length ? args : ['-L'], false);
  } catch (e) {
    if (e instanceof IpvsadmExit) {
      if (e.stdout) io.stdout(e.stdout);
      if (e.stderr) io.stderr(e.stderr);
      return e.status;
    }
    if (e instanceof LvsError) {
      io.stderr(`${PROGRAM}: ${e.code}: ${e.message}\n`);
      return 255;
    }
    throw e;
  } finally {
    session?.close();
  }
}

function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
}

if (isMainModule(import.meta.url)) {
  // A reader that went away (lvsadm -L | head): stop quietly, as ipvsadm does on SIGPIPE.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  lvsadm(process.argv.slice(2), {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readStdin: () => readAll(process.stdin),
  })
    .then((status) => {
      process.exitCode = status;
    })
    .catch((e: unknown) => {
      process.stderr.write(`${PROGRAM}: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 255;
    });
}
