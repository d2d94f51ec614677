/**
 * The health-check contract between the probes (src/health/checks) and the engine that
 * schedules them (src/health/engine.ts). A probe runs one check against one real server and
 * always settles: it never throws and releases everything it made.
 */
export interface ProbeTarget { address: string; port: number; /* the real's */ }
export interface ProbeResult {
  ok: boolean;
  /** Why, in one line an operator understands: 'connect refused', 'expect "HTTP" got "500 Internal..."', 'timeout after 5000 ms', 'program exited 2', ... */
  reason: string;
  /** Agent checks only: what the agent said (weight as absolute number or percent, or a state). */
  agent?: { weight?: number; percent?: number; state?: 'up' | 'down' | 'drain' | 'maint' | 'ready' | 'stopped' | 'fail' };
  ms: number; // how long it took
}
export interface Probe {
  readonly kind: string;
  /** Run once; must settle within timeoutMs (+ a few ms) whatever the server does, never throw, and release every socket/process/timer it made. `signal` aborts it early. */
  run(target: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult>;
}
export type CheckSpec =
  | { kind: 'tcp'; port?: number; send?: string; expect?: string; regex?: boolean }   // Piranha: connect, send once, expect = starts-with ("*" = any byte), or POSIX-ERE-like JS regex when regex
  | { kind: 'udp'; port?: number; send?: string; expect?: string; regex?: boolean }   // one datagram, one reply
  | { kind: 'program'; command: string; expect?: string }                              // Piranha send_program: split on blanks, %h/%p tokens replaced, execFile (no shell), stdout compared with expect (exact, trailing newline ignored)
  | { kind: 'http' | 'https'; port?: number; path?: string; host?: string; status?: [number, number]; body?: string /* regex */; insecure?: boolean }
  | { kind: 'dns'; port?: number; name: string; type?: 'A' | 'AAAA' | 'SOA' | 'NS'; expectRcode?: 'NOERROR' | 'NXDOMAIN' | 'any' }
  | { kind: 'agent'; port: number; send?: string };                                    // HAProxy agent-check
