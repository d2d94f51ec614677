/**
 * The health-check probes. `makeProbe` turns a CheckSpec into a Probe, validating it now
 * (an invalid regex, DNS name, status range or empty command throws LvsError
 * LVS_INVALID_OPTION here, never during a check).
 */
import { LvsError } from '../../errors.js';
import type { CheckSpec, Probe } from '../types.js';
import { AgentProbe } from './agent.js';
import { DnsProbe } from './dns.js';
import { HttpProbe } from './http.js';
import { ProgramProbe } from './program.js';
import { TcpProbe } from './tcp.js';
import { UdpProbe } from './udp.js';

export { unescape, ExpectMatcher, compileExpectRegex } from './escape.js';
export { parseAgentLine } from './agent.js';
export { encodeQuery, decodeResponse } from './dns.js';
export { programArgv } from './program.js';
export { TcpProbe, UdpProbe, ProgramProbe, HttpProbe, DnsProbe, AgentProbe };

function checkPort(port: number | undefined, field = 'port'): void {
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) {
    throw new LvsError('LVS_INVALID_PORT', `${field}: ${port} is not a port (1 to 65535)`, { field });
  }
}

export function makeProbe(spec: CheckSpec): Probe {
  switch (spec.kind) {
    case 'tcp': checkPort(spec.port); return new TcpProbe(spec);
    case 'udp': checkPort(spec.port); return new UdpProbe(spec);
    case 'program': return new ProgramProbe(spec);
    case 'http': checkPort(spec.port); return new HttpProbe(false, spec);
    case 'https': checkPort(spec.port); return new HttpProbe(true, spec);
    case 'dns': checkPort(spec.port); return new DnsProbe(spec);
    case 'agent':
      if (spec.port === undefined) throw new LvsError('LVS_INVALID_PORT', 'port: an agent check needs the agent port', { field: 'port' });
      checkPort(spec.port);
      return new AgentProbe(spec);
    default: {
      const kind = (spec as { kind?: unknown }).kind;
      throw new LvsError('LVS_INVALID_OPTION', `unknown check kind ${JSON.stringify(kind)} (expected tcp, udp, program, http, https, dns or agent)`, { field: 'kind' });
    }
  }
}
