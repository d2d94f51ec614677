/**
 * The failover clock: issue 7's failover time, "last packet from the old active to first
 * packet from the new one", measured on the lab's switch while the lab's traffic runs.
 *
 *   const clock = new FailoverClock(lab);            // old: lab.directors[0], new: [1]
 *   await clock.start();
 *   ... kill the active director, wait for the backup to take over ...
 *   const { lastFromOld, firstFromNew, gapMs, framesOld, framesNew } = await clock.stop();
 *
 * How: one tcpdump per switch port of the two directors (d-pub, d-priv, d-pub2, d-priv2: the
 * switch-side ends of their veths, see src/lab/lab.ts), capturing only what arrives from the
 * director (`-Q in`), not promiscuous (`-p`; bridge ports are promiscuous anyway), headers only
 * (snaplen 160). A capture socket only gets copies: the traffic is not touched. The port a
 * frame came in on says which director sent it (its source MAC is that director's pub or priv
 * MAC). Times are the kernel's receive timestamps on the switch port (CLOCK_REALTIME, ns),
 * which for a veth is the moment the director transmitted: milliseconds since the epoch,
 * comparable with Date.now().
 *
 * Which frames count (pcap filter, in the kernel):
 *   - IPv4 and IPv6 only: no ARP;
 *   - unicast towards anything but a director: no broadcast or multicast (gratuitous ARP and
 *     unsolicited NA, VRRP adverts, multicast sync), nothing to the other director's or its
 *     own MACs (heartbeats and the sync channel between the two);
 *   - no ICMPv6 router/neighbour discovery (types 133-137);
 *   - traffic `forwarded` (the default): frames the director forwards for others, not ones it
 *     sends for itself. A frame whose IP source is one of the director's own addresses (pub,
 *     priv; health checks, ICMP errors, heartbeats) is left out, unless it is IPIP or
 *     IPv6-in-IP (protocol 4 or 41: lvsd's tunnels use the director's own address as outer
 *     source). NAT frames to reals carry the client's address, NAT replies the VIP, DR frames
 *     the client's: all counted. traffic `all` counts the director's own frames too (pings
 *     from the director, say).
 *   - option `filter`: a pcap-filter expression ANDed to all of that (e.g. "tcp port 7").
 *
 * Result: lastFromOld and firstFromNew (ms since the epoch, fractional; null when that
 * director sent nothing), gapMs = firstFromNew - lastFromOld (negative when the new director
 * started before the old one's last frame: both were forwarding at once), framesOld and
 * framesNew (counted frames of each), overlapFrames (the new director's frames at or before
 * lastFromOld) and dropped (frames the kernel dropped before tcpdump read them, from
 * tcpdump's own summary; non-zero means the counts are lower bounds).
 */
import type { ChildProcess } from 'node:child_process';
import { LvsError } from '../errors.js';
import type { Lab, LabDirector } from './lab.js';

export interface FailoverClockOptions {
  /** The active director before the failover (default lab.directors[0]). */
  old?: LabDirector;
  /** The one taking over (default lab.directors[1]). */
  new?: LabDirector;
  /** Only frames the directors forward (default), or their own ones too. */
  traffic?: 'forwarded' | 'all';
  /** A pcap-filter expression ANDed to the clock's own filter. */
  filter?: string;
}

export interface FailoverClockResult {
  /** Time of the old director's last counted frame, ms since the epoch; null if none. */
  lastFromOld: number | null;
  /** Time of the new director's first counted frame, ms since the epoch; null if none. */
  firstFromNew: number | null;
  /** firstFromNew - lastFromOld, ms; null when either is missing. */
  gapMs: number | null;
  framesOld: number;
  framesNew: number;
  /** The new director's frames at or before lastFromOld (both forwarding at once). */
  overlapFrames: number;
  /** Frames the capture lost (tcpdump's "dropped by kernel", summed over the ports). */
  dropped: number;
}

const SNAPLEN = 160;
const PCAP_NANO = 0xa1b23c4d;
const PCAP_MICRO = 0xa1b2c3d4;

/** One tcpdump on one switch port, parsing its pcap stream as it comes. */
class PortCapture {
  readonly times: number[] = [];
  dropped = 0;
  private child: ChildProcess | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private headerDone = false;
  private nano = true;
  private littleEndian = true;
  private stderr = '';
  /** A stream that is not pcap: kept for stop() to throw (a data handler must not). */
  error: LvsError | undefined;
  private exited: Promise<void> | undefined;
  lastDataAt = 0;

  constructor(
    private readonly lab: Lab,
    readonly port: string,
    readonly director: 'old' | 'new',
    private readonly filter: string,
  ) {}

  async start(): Promise<void> {
    const sw = this.lab.switch;
    const child = sw.spawn('tcpdump', ['-i', this.port, '-Q', 'in', '-p', '-n', '-U', '--immediate-mode', '-B', '8192', '-s', String(SNAPLEN), '--time-stamp-precision=nano', '-w', '-', this.filter]);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stdout!.on('data', (d: Buffer) => this.feed(d));
    await new Promise<void>((resolve, reject) => {
      const onErr = (d: Buffer): void => {
        this.stderr = (this.stderr + d.toString()).slice(-8000);
        if (this.stderr.includes('listening on')) {
          child.removeListener('exit', onExit);
          resolve();
        }
      };
      const onExit = (code: number | null): void =>
        reject(new LvsError('LVS_LAB_COMMAND', `tcpdump on ${this.port} in ${sw.name} exited (${code}) before it listened: ${this.stderr.trim()}`));
      child.stderr!.on('data', onErr);
      child.once('exit', onExit);
      child.once('error', (e) => reject(new LvsError('LVS_LAB_COMMAND', `tcpdump on ${this.port}: ${e.message}`, { cause: e })));
    });
  }

  /** Ask tcpdump to finish (it writes what it has and its summary) and wait for it. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGINT');
    const guard = setTimeout(() => child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(guard);
    // "N packets dropped by kernel"
    const m = /(\d+) packets? dropped by kernel/.exec(this.stderr);
    this.dropped = m ? Number(m[1]) : 0;
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }

  private feed(d: Buffer): void {
    this.lastDataAt = performance.now();
    if (this.error) return;
    let b: Buffer = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    if (!this.headerDone) {
      if (b.length < 24) {
        this.pending = b;
        return;
      }
      const le = b.readUInt32LE(0);
      const be = b.readUInt32BE(0);
      this.littleEndian = le === PCAP_NANO || le === PCAP_MICRO;
      const magic = this.littleEndian ? le : be;
      if (magic !== PCAP_NANO && magic !== PCAP_MICRO) {
        this.error = new LvsError('LVS_LAB_COMMAND', `tcpdump on ${this.port}: not a pcap stream (magic ${le.toString(16)})`);
        return;
      }
      this.nano = magic === PCAP_NANO;
      this.headerDone = true;
      b = b.subarray(24);
    }
    let off = 0;
    while (off + 16 <= b.length) {
      const caplen = this.littleEndian ? b.readUInt32LE(off + 8) : b.readUInt32BE(off + 8);
      if (off + 16 + caplen > b.length) break;
      const sec = this.littleEndian ? b.readUInt32LE(off) : b.readUInt32BE(off);
      const frac = this.littleEndian ? b.readUInt32LE(off + 4) : b.readUInt32BE(off + 4);
      this.times.push(sec * 1000 + frac / (this.nano ? 1e6 : 1e3));
      off += 16 + caplen;
    }
    this.pending = Buffer.from(b.subarray(off));
  }
}

export class FailoverClock {
  private readonly captures: PortCapture[] = [];
  private state: 'new' | 'running' | 'stopped' = 'new';
  readonly old: LabDirector;
  readonly new: LabDirector;

  constructor(
    private readonly lab: Lab,
    private readonly options: FailoverClockOptions = {},
  ) {
    const dirs = lab.directors;
    const old = options.old ?? dirs[0];
    const neu = options.new ?? dirs[1];
    if (!old || !neu) throw new LvsError('LVS_INVALID_ARGUMENT', 'the failover clock needs two directors: create the lab with directors: 2');
    if (old.ns.name === neu.ns.name) throw new LvsError('LVS_INVALID_ARGUMENT', `the failover clock's old and new director are the same (${old.role})`);
    if (options.traffic !== undefined && options.traffic !== 'forwarded' && options.traffic !== 'all') {
      throw new LvsError('LVS_INVALID_OPTION', `failover clock traffic: "${String(options.traffic)}" is not forwarded or all`, { field: 'traffic' });
    }
    this.old = old;
    this.new = neu;
  }

  /** The pcap filter for frames arriving from director `d`. */
  filterFor(d: LabDirector): string {
    const macs = this.lab.directors.flatMap((x) => [x.macs.pub, x.macs.priv]);
    const parts = ['(ip or ip6)', 'not ether multicast', ...macs.map((m) => `not ether dst ${m}`), 'not (icmp6 and ip6[40] >= 133 and ip6[40] <= 137)'];
    if ((this.options.traffic ?? 'forwarded') === 'forwarded') {
      const own4 = [d.address4.pub, d.address4.priv].map((a) => `ip src ${a}`).join(' or ');
      parts.push(`not (ip and (${own4}) and not ip proto 4 and not ip proto 41)`);
      if (d.address6) {
        const own6 = [d.address6.pub, d.address6.priv].map((a) => `ip6 src ${a}`).join(' or ');
        parts.push(`not (ip6 and (${own6}) and not ip6 proto 4 and not ip6 proto 41)`);
      }
    }
    if (this.options.filter) parts.push(`(${this.options.filter})`);
    return parts.join(' and ');
  }

  /** Start capturing; resolves once every port's capture listens. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new LvsError('LVS_CLOSED', 'a failover clock starts once');
    this.state = 'running';
    for (const [d, role] of [
      [this.old, 'old'],
      [this.new, 'new'],
    ] as const) {
      for (const port of [d.ports.pub, d.ports.priv]) this.captures.push(new PortCapture(this.lab, port, role, this.filterFor(d)));
    }
    try {
      await Promise.all(this.captures.map((c) => c.start()));
    } catch (e) {
      for (const c of this.captures) c.kill();
      this.state = 'stopped';
      throw e;
    }
  }

  /**
   * Stop and report. Frames still on their way to tcpdump are waited for: until no capture
   * has had anything new for 200 ms (at most 3 s), then tcpdump finishes what it holds.
   */
  async stop(): Promise<FailoverClockResult> {
    if (this.state !== 'running') throw new LvsError('LVS_CLOSED', 'the failover clock is not running');
    this.state = 'stopped';
    const begin = performance.now();
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      const now = performance.now();
      const last = Math.max(0, ...this.captures.map((c) => c.lastDataAt));
      if (now - last >= 200 || now - begin >= 3000) break;
    }
    await Promise.all(this.captures.map((c) => c.stop()));
    const broken = this.captures.find((c) => c.error);
    if (broken) throw broken.error;
    const old = this.captures.filter((c) => c.director === 'old').flatMap((c) => c.times);
    const neu = this.captures.filter((c) => c.director === 'new').flatMap((c) => c.times);
    const lastFromOld = old.length ? old.reduce((a, b) => Math.max(a, b)) : null;
    const firstFromNew = neu.length ? neu.reduce((a, b) => Math.min(a, b)) : null;
    return {
      lastFromOld,
      firstFromNew,
      gapMs: lastFromOld !== null && firstFromNew !== null ? firstFromNew - lastFromOld : null,
      framesOld: old.length,
      framesNew: neu.length,
      overlapFrames: lastFromOld === null ? 0 : neu.filter((t) => t <= lastFromOld).length,
      dropped: this.captures.reduce((n, c) => n + c.dropped, 0),
    };
  }

  /** Kill the captures without a result (cleanup after a failed test); the lab's destroy() does it too. */
  abort(): void {
    this.state = 'stopped';
    for (const c of this.captures) c.kill();
  }
}
