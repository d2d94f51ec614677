/**
 * Health checking for the daemon: the checks lvs.cf describes (Piranha's nanny keys), and the
 * configuration the director runs once their verdicts are applied.
 *
 * Every active real of an active virtual is checked as nanny checked it: `send_program` (run
 * without a shell; a failure or a timeout is down), or a TCP/UDP exchange with `send` and
 * `expect` (`use_regex`), a bare connect, or on port 80 with nothing configured an HTTP GET;
 * `timeout` is the interval and the probe's bound, `reentry / timeout` consecutive passes
 * bring a real back, one failure takes it out (removed, or weight 0 with `quiesce_server`).
 * A new or restarted lvsd starts every checked real down until its first check passes.
 * Reals added at run time with lvsadm are not checked (as nanny never checked them).
 */
import { checkPort, type CheckLine, type LvsConfig } from '../config/model.js';
import { serviceId } from '../director/director.js';
import type { DirectorConfig, DirectorRealServer, DirectorService } from '../director/types.js';
import { makeProbe } from '../health/checks/index.js';
import { piranhaTiming, type RealCheck } from '../health/engine.js';
import type { CheckSpec } from '../health/types.js';
import { parseAddress } from '../net/address.js';

/** The identity of a real in a service, as the engine and the daemon name it. */
export function realCheckId(s: DirectorService, address: string, port: number | undefined): string {
  const p = port ?? ('fwmark' in s ? 0 : s.port);
  const a = parseAddress(address).text;
  return `${serviceId(s)} -> ${a.includes(':') ? `[${a}]` : a}:${p}`;
}

/** The checks of every active real lvs.cf lists (its active virtuals, in the order directorConfig maps them). */
export function healthChecks(cfg: LvsConfig, dc: DirectorConfig): RealCheck[] {
  const out: RealCheck[] = [];
  const virtuals = cfg.virtuals.filter((v) => v.active && (v.fwmark || v.address !== undefined));
  virtuals.forEach((v, i) => {
    const s = dc.services[i];
    if (!s) return;
    const servers = v.servers.filter((x) => x.active && x.address !== undefined);
    if (servers.length === 0) return; // only the sorry server: nothing to check
    const timeout = v.timeout > 0 ? v.timeout : 10;
    const intervalS = v.interval ?? timeout;
    const timing = piranhaTiming(intervalS, v.reentry);
    const exchange = { ...(v.send !== undefined ? { send: v.send } : {}), ...(v.expect !== undefined ? { expect: v.expect } : {}), ...(v.useRegex ? { regex: true } : {}) };
    // lvsd's `check` lines, all of which must pass; else Piranha's one check.
    const specs: CheckSpec[] = v.checks.length
      ? v.checks.map((c) => checkSpec(c, exchange))
      : [v.sendProgram ? { kind: 'program', command: v.sendProgram, ...(v.expect !== undefined ? { expect: v.expect } : {}) } : { kind: !('fwmark' in s) && s.protocol === 'udp' ? 'udp' : 'tcp', ...exchange }];
    servers.forEach((srv, k) => {
      const r = s.reals[k];
      if (!r) return;
      out.push({
        id: realCheckId(s, r.address, r.port),
        name: srv.name,
        group: serviceId(s),
        // The real's own port if it has one (a DR real's `port` is only for its checks), else the virtual's.
        target: { address: parseAddress(r.address).text, port: checkPort(v, srv) },
        probes: specs.map(makeProbe),
        intervalMs: intervalS * 1000,
        timeoutMs: timeout * 1000,
        rise: v.rise ?? timing.rise,
        fall: v.fall ?? timing.fall,
        weight: r.weight ?? 1,
        quiesce: v.quiesceServer,
      });
    });
  });
  return out;
}

function checkSpec(c: CheckLine, exchange: { send?: string; expect?: string; regex?: boolean }): CheckSpec {
  const port = c.port !== undefined ? { port: c.port } : {};
  switch (c.kind) {
    case 'tcp':
    case 'udp':
      return { kind: c.kind, ...port, ...exchange };
    case 'http':
    case 'https':
      return { kind: c.kind, ...port, ...(c.path ? { path: c.path } : {}), ...(c.host ? { host: c.host } : {}), ...(c.status ? { status: c.status } : {}), ...(c.body ? { body: c.body } : {}) };
    case 'dns':
      return { kind: 'dns', ...port, name: c.name!, ...(c.type ? { type: c.type } : {}), ...(c.rcode ? { expectRcode: c.rcode } : {}) };
    case 'agent':
      return { kind: 'agent', port: c.port!, ...(c.send !== undefined ? { send: c.send } : {}) };
  }
}

/** Each service's sorry server (Piranha's sorry_server): the real it gets when all of its own are down. */
export function sorryServers(cfg: LvsConfig, dc: DirectorConfig): Map<string, DirectorRealServer> {
  const out = new Map<string, DirectorRealServer>();
  const virtuals = cfg.virtuals.filter((v) => v.active && (v.fwmark || v.address !== undefined));
  virtuals.forEach((v, i) => {
    const s = dc.services[i];
    if (!s || v.sorryServer === undefined) return;
    if (!v.servers.some((x) => x.active && x.address !== undefined)) return; // already its only real
    out.set(serviceId(s), { address: v.sorryServer, port: v.fwmark ? 0 : v.port, weight: 1, method: cfg.globals.network });
  });
  return out;
}

export interface Verdict {
  up: boolean;
  /** Down and quiesce_server: kept with weight 0 (connections drain); else out of the table. */
  quiesced: boolean;
  /** Up: the weight an agent check asked for, if one did (else the configured weight). */
  agentWeight?: number;
}

/** The configuration the director runs: `configured`, with each checked real's verdict applied,
 *  and the sorry server of every service whose reals are all down (`sorry`: active ones). */
export function effectiveConfig(configured: DirectorConfig, verdicts: Map<string, Verdict>, sorry: Map<string, DirectorRealServer> = new Map()): DirectorConfig {
  return {
    ...configured,
    services: configured.services.map((s) => {
      const reals = s.reals.flatMap((r) => {
        const v = verdicts.get(realCheckId(s, r.address, r.port));
        if (!v) return [r];
        if (!v.up) return v.quiesced ? [{ ...r, weight: 0 }] : [];
        return [{ ...r, weight: v.agentWeight ?? r.weight ?? 1 }];
      });
      const standIn = sorry.get(serviceId(s));
      return { ...s, reals: standIn ? [...reals, standIn] : reals };
    }) as DirectorService[],
  };
}
