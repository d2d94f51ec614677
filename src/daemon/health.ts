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
import type { LvsConfig } from '../config/model.js';
import { serviceId } from '../director/director.js';
import type { DirectorConfig, DirectorService } from '../director/types.js';
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
    const timing = piranhaTiming(v.timeout > 0 ? v.timeout : 10, v.reentry);
    const spec: CheckSpec = v.sendProgram
      ? { kind: 'program', command: v.sendProgram, ...(v.expect !== undefined ? { expect: v.expect } : {}) }
      : {
          kind: !('fwmark' in s) && s.protocol === 'udp' ? 'udp' : 'tcp',
          ...(v.send !== undefined ? { send: v.send } : {}),
          ...(v.expect !== undefined ? { expect: v.expect } : {}),
          ...(v.useRegex ? { regex: true } : {}),
        };
    servers.forEach((srv, k) => {
      const r = s.reals[k];
      if (!r) return;
      const port = r.port ?? ('fwmark' in s ? v.port : s.port);
      out.push({
        id: realCheckId(s, r.address, r.port),
        name: srv.name,
        group: serviceId(s),
        target: { address: parseAddress(r.address).text, port: port || v.port },
        probes: [makeProbe(spec)],
        intervalMs: timing.intervalMs,
        timeoutMs: timing.timeoutMs,
        rise: timing.rise,
        fall: timing.fall,
        weight: r.weight ?? 1,
        quiesce: v.quiesceServer,
      });
    });
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

/** The configuration the director runs: `configured`, with each checked real's verdict applied. */
export function effectiveConfig(configured: DirectorConfig, verdicts: Map<string, Verdict>): DirectorConfig {
  return {
    ...configured,
    services: configured.services.map((s) => ({
      ...s,
      reals: s.reals.flatMap((r) => {
        const v = verdicts.get(realCheckId(s, r.address, r.port));
        if (!v) return [r];
        if (!v.up) return v.quiesced ? [{ ...r, weight: 0 }] : [];
        return [{ ...r, weight: v.agentWeight ?? r.weight ?? 1 }];
      }),
    })) as DirectorService[],
  };
}
