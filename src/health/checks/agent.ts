/**
 * HAProxy agent-check: connect to the agent's port, optionally send `send`, read one line
 * (ended by the first "\r" or "\n", or by the agent closing). The line is a series of words
 * separated by spaces, tabs or commas, in any order (HAProxy configuration manual, "agent-check"):
 *
 * - `75%`: the weight as a percentage of the configured weight (`agent.percent`);
 * - `ready`, `drain`, `maint`: administrative states (drain = weight 0, existing and persistent
 *   connections stay; maint = out of the farm; ready cancels both);
 * - `up`, `down`, `stopped`, `fail`: operational states; `down`/`stopped`/`fail` mark the server
 *   down, and HAProxy treats the three alike (the word only tells the operator why);
 * - `maxconn:N`: recognised and ignored (lvsd has no per-real connection limit from agents);
 * - `#` starts a free-text description that runs to the end of the line.
 * Words are case-insensitive. As an lvsd extension a bare integer (`12`) sets an absolute weight
 * (`agent.weight`), like HAProxy's `set weight` command. Unknown words are ignored and named in
 * the reason.
 *
 * The line can carry one operational and one administrative word; `agent.state` holds one, so
 * it is the operational word when that is down/stopped/fail, else the administrative word, else
 * `up`. `ok` is false when the agent cannot be reached, says nothing understood, or reports
 * down/stopped/fail; maint and drain are `ok` with that state (the engine applies them).
 */
import net from 'node:net';
import type { Probe, ProbeResult, ProbeTarget } from '../types.js';
import { attempt, describeError, show } from './common.js';
import { unescape } from './escape.js';

export interface AgentOptions { port: number; send?: string }
type AgentState = NonNullable<NonNullable<ProbeResult['agent']>['state']>;
export type AgentReport = NonNullable<ProbeResult['agent']> & { description?: string; unknown: string[] };

/** Longest agent line we read (HAProxy reads at most one check buffer). */
const MAX_LINE = 4096;

/** Parse one agent line (without its line end). Never throws. */
export function parseAgentLine(line: string): AgentReport {
  const report: AgentReport = { unknown: [] };
  const hash = line.indexOf('#');
  const words = (hash >= 0 ? line.slice(0, hash) : line).split(/[ \t,]+/).filter((w) => w !== '');
  if (hash >= 0) {
    const d = line.slice(hash + 1).trim();
    if (d !== '') report.description = d;
  }
  let oper: AgentState | undefined;
  let admin: AgentState | undefined;
  for (const raw of words) {
    const w = raw.toLowerCase();
    let m: RegExpMatchArray | null;
    if ((m = /^(\d{1,9})%$/.exec(w)) !== null) report.percent = Number(m[1]);
    else if ((m = /^(\d{1,9})$/.exec(w)) !== null) report.weight = Number(m[1]);
    else if (w === 'up' || w === 'down' || w === 'stopped' || w === 'fail') oper = w;
    else if (w === 'ready' || w === 'drain' || w === 'maint') admin = w;
    else if (/^maxconn:\d+$/.test(w)) { /* recognised, no lvsd equivalent */ }
    else report.unknown.push(raw);
  }
  if (oper !== undefined && oper !== 'up') report.state = oper;
  else if (admin !== undefined) report.state = admin;
  else if (oper !== undefined) report.state = oper;
  return report;
}

export class AgentProbe implements Probe {
  readonly kind = 'agent';
  private readonly send?: Buffer;

  constructor(private readonly opts: AgentOptions) {
    if (opts.send !== undefined && opts.send !== '') this.send = Buffer.from(unescape(opts.send), 'utf8');
  }

  run(target: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
    return attempt(timeoutMs, signal, (a) => {
      const sock = net.connect({ host: target.address, port: this.opts.port, noDelay: true });
      a.onSettle(() => sock.destroy());
      sock.on('error', (e) => a.fail(`agent: ${describeError(e)}`));
      let buf = Buffer.alloc(0);
      const decide = (final: boolean): void => {
        let end = buf.findIndex((b) => b === 0x0a || b === 0x0d);
        if (end < 0) {
          if (!final && buf.length < MAX_LINE) return;
          end = Math.min(buf.length, MAX_LINE);
        }
        const line = buf.subarray(0, end).toString('utf8');
        const r = parseAgentLine(line);
        const { unknown, description, ...agent } = r;
        const said = `agent said ${show(line, 60)}${unknown.length > 0 ? ` (ignored ${unknown.map((u) => JSON.stringify(u)).join(', ')})` : ''}`;
        void description;
        if (agent.state === undefined && agent.percent === undefined && agent.weight === undefined) {
          a.fail(line.trim() === '' ? 'agent said nothing' : `${said}: nothing understood`);
        } else if (agent.state === 'down' || agent.state === 'stopped' || agent.state === 'fail') {
          a.settle({ ok: false, reason: said, agent });
        } else {
          a.ok(said, { agent });
        }
      };
      sock.on('connect', () => {
        a.phase = 'waiting for the agent';
        if (this.send !== undefined) sock.write(this.send, (err) => { if (err) a.fail(`agent: ${describeError(err)}`); });
      });
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        decide(false);
      });
      sock.on('end', () => decide(true));
      sock.on('close', () => decide(true));
    });
  }
}
