/**
 * The active/backup election of pulse (reference/piranha.md section 3, lvs mode) as a pure state
 * machine: inputs in, actions and log lines out, no sockets and no timers.
 *
 * Rules:
 * - Dead timer, not active, not blocked: activate ("partner dead: activating lvs"), and tell
 *   the old active to stand down (STOP-ME) in case it is alive but unheard.
 * - Partner STOPPED, not active, not blocked: activate ("primary inactive: ..." on the backup,
 *   "backup inactive: ..." on the primary).
 * - Partner RUNNING while we are inactive: stay backup. A returning primary therefore stays
 *   backup unless it was started with preempt (Piranha's --forceactive), which activates at start.
 * - Partner RUNNING while we are active (both active): one deterministic rule, computed the same
 *   on both sides: the primary wins; between two nodes of the same role the higher priority,
 *   then the lower node id. The winner resends its ARPs and sends STOP-ME; the loser sends one
 *   last RUNNING (so the winner re-ARPs) and deactivates. Both log the outcome.
 * - Partner STOP-ME while active: deactivate.
 * - RUNNING clears a child failure (Piranha's CHILDFAIL); a link failure blocks activation until
 *   the link is back.
 */

export interface ElectionConfig {
  /** A local address equals lvs.cf `primary`. */
  isPrimary: boolean;
  /** Activate at start without waiting (Piranha's --forceactive). */
  preempt: boolean;
  /** lvs.cf backup_active. */
  backupActive: boolean;
  /** 0..255 (lvsd heartbeats only). Default 100. */
  priority?: number;
  /** This node's id (lvsd heartbeats only). Default 0. */
  nodeId?: number;
}

/** What the partner says about itself, when its heartbeats say it (lvsd format). */
export interface PeerInfo { isPrimary: boolean; priority: number; nodeId: number }

export type ElectionInput =
  | { type: 'start' }
  | { type: 'stop'; signal?: number }
  | { type: 'dead' }
  | { type: 'heartbeat'; state: 'running' | 'stopped' | 'stop-me'; peer?: PeerInfo }
  | { type: 'child-exit'; pid?: number; status?: number }
  | { type: 'link-failed' }
  | { type: 'link-restored' };

export type ElectionAction =
  | { kind: 'activate' }
  | { kind: 'deactivate' }
  | { kind: 'send'; state: 'running' | 'stopped' | 'stop-me' }
  | { kind: 'resend-arps' }
  | { kind: 'exit' };

export interface ElectionState {
  phase: 'idle' | 'running' | 'stopped';
  active: boolean;
  /** Piranha's CHILDFAIL: no activation until RUNNING is heard. */
  childFailed: boolean;
  /** Piranha's LINKFAIL (monitor_links). */
  linkFailed: boolean;
}

export interface Step {
  state: ElectionState;
  actions: ElectionAction[];
  log: string[];
}

export const initialState: ElectionState = { phase: 'idle', active: false, childFailed: false, linkFailed: false };

/**
 * Who stays active when both are: true when we do. Symmetric: for two distinct nodes exactly
 * one of `weWin(a, b)` and `weWin(b, a)` is true.
 */
export function weWin(self: PeerInfo, peer: PeerInfo): boolean {
  if (self.isPrimary !== peer.isPrimary) return self.isPrimary;
  if (self.priority !== peer.priority) return self.priority > peer.priority;
  return self.nodeId < peer.nodeId;
}

function why(self: PeerInfo, peer: PeerInfo): string {
  if (self.isPrimary !== peer.isPrimary) return 'the primary wins';
  if (self.priority !== peer.priority) return `higher priority wins (${self.priority} vs ${peer.priority})`;
  return `lower node id wins (${self.nodeId} vs ${peer.nodeId})`;
}

/** One transition. Pure: the old state is not modified. */
export function transition(cfg: ElectionConfig, s: ElectionState, input: ElectionInput): Step {
  const st: ElectionState = { ...s };
  const actions: ElectionAction[] = [];
  const log: string[] = [];
  const activate = (line: string) => { log.push(line); st.active = true; actions.push({ kind: 'activate' }); };
  const blocked = () => st.childFailed || st.linkFailed;
  const self: PeerInfo = { isPrimary: cfg.isPrimary, priority: cfg.priority ?? 100, nodeId: cfg.nodeId ?? 0 };

  if (input.type === 'start') {
    if (st.phase !== 'idle') return { state: st, actions, log };
    if (!cfg.isPrimary && !cfg.backupActive) {
      st.phase = 'stopped';
      log.push('We are backup node and backup is marked inactive -- exiting pulse');
      actions.push({ kind: 'exit' });
      return { state: st, actions, log };
    }
    st.phase = 'running';
    log.push(cfg.isPrimary ? 'STARTING PULSE AS MASTER' : 'STARTING PULSE AS BACKUP');
    if (cfg.preempt) activate('Forced active on startup: activating lvs');
    return { state: st, actions, log };
  }
  if (st.phase !== 'running') return { state: st, actions, log };

  switch (input.type) {
    case 'stop': {
      st.phase = 'stopped';
      log.push(input.signal !== undefined ? `Terminating due to signal ${input.signal}` : 'shutting down');
      if (st.active) {
        st.active = false;
        actions.push({ kind: 'deactivate' });
      }
      actions.push({ kind: 'send', state: 'stopped' });
      break;
    }
    case 'dead': {
      if (!st.active && !blocked()) {
        activate('partner dead: activating lvs');
        actions.push({ kind: 'send', state: 'stop-me' });
      }
      break;
    }
    case 'heartbeat': {
      if (input.state === 'running') {
        st.childFailed = false;
        if (!st.active) break;
        // Both active. A Piranha peer says nothing of itself: it is the other role.
        const peer: PeerInfo = input.peer ?? { isPrimary: !cfg.isPrimary, priority: self.priority, nodeId: self.nodeId + 1 };
        if (weWin(self, peer)) {
          log.push(`both routers active: staying active (${why(self, peer)})`);
          log.push('partner active: resending arps');
          actions.push({ kind: 'resend-arps' });
          actions.push({ kind: 'send', state: 'stop-me' });
        } else {
          log.push(`both routers active: partner stays active (${why(self, peer)})`);
          actions.push({ kind: 'send', state: 'running' });
          log.push('partner active: deactivating LVS');
          st.active = false;
          actions.push({ kind: 'deactivate' });
        }
      } else if (input.state === 'stopped') {
        if (!st.active && !blocked()) activate(cfg.isPrimary ? 'backup inactive: activating lvs' : 'primary inactive: activating lvs');
      } else if (st.active) {
        log.push('partner asked us to stand down: deactivating LVS');
        st.active = false;
        actions.push({ kind: 'deactivate' });
      }
      break;
    }
    case 'child-exit': {
      log.push(`Child process ${input.pid ?? '?'} exited with status ${input.status ?? '?'}`);
      st.childFailed = true;
      if (st.active) {
        st.active = false;
        actions.push({ kind: 'deactivate' });
        actions.push({ kind: 'send', state: 'stopped' });
      }
      break;
    }
    case 'link-failed': {
      if (st.linkFailed) break;
      st.linkFailed = true;
      log.push('Local NIC link failure: Pulse disabled');
      if (st.active) {
        st.active = false;
        actions.push({ kind: 'deactivate' });
        actions.push({ kind: 'send', state: 'stopped' });
      }
      break;
    }
    case 'link-restored': {
      if (!st.linkFailed) break;
      st.linkFailed = false;
      log.push('Local NIC link(s) restored: Pulse enabled');
      break;
    }
  }
  return { state: st, actions, log };
}

/** The state machine with its state kept; `handle()` returns what to do. */
export class Election {
  private s: ElectionState = { ...initialState };

  constructor(readonly config: ElectionConfig) {}

  get state(): Readonly<ElectionState> {
    return this.s;
  }

  get active(): boolean {
    return this.s.active;
  }

  /** The state our periodic heartbeats should carry. */
  get advertised(): 'running' | 'stopped' {
    return this.s.active ? 'running' : 'stopped';
  }

  handle(input: ElectionInput): { actions: ElectionAction[]; log: string[] } {
    const r = transition(this.config, this.s, input);
    this.s = r.state;
    return { actions: r.actions, log: r.log };
  }
}
