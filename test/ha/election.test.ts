import { describe, expect, it } from 'vitest';
import {
  Election, initialState, transition, weWin,
  type ElectionAction, type ElectionConfig, type ElectionInput, type PeerInfo,
} from '../../src/ha/election.js';

const PRIMARY: ElectionConfig = { isPrimary: true, preempt: false, backupActive: true };
const BACKUP: ElectionConfig = { isPrimary: false, preempt: false, backupActive: true };

const RUNNING: ElectionInput = { type: 'heartbeat', state: 'running' };
const STOPPED: ElectionInput = { type: 'heartbeat', state: 'stopped' };
const STOP_ME: ElectionInput = { type: 'heartbeat', state: 'stop-me' };
const START: ElectionInput = { type: 'start' };
const DEAD: ElectionInput = { type: 'dead' };

const act = (kind: 'activate' | 'deactivate' | 'resend-arps' | 'exit'): ElectionAction => ({ kind });
const send = (state: 'running' | 'stopped' | 'stop-me'): ElectionAction => ({ kind: 'send', state });

interface Row {
  name: string;
  cfg: ElectionConfig;
  inputs: ElectionInput[];
  /** What the last input produced. */
  actions: ElectionAction[];
  log: string[];
  active: boolean;
}

/** Each row: a sequence of inputs, then what the *last* one did and whether we end up active. */
const table: Row[] = [
  { name: 'inputs before start are ignored', cfg: PRIMARY, inputs: [DEAD], actions: [], log: [], active: false },
  { name: 'backup with backup_active=0 exits', cfg: { ...BACKUP, backupActive: false }, inputs: [START],
    actions: [act('exit')], log: ['We are backup node and backup is marked inactive -- exiting pulse'], active: false },
  { name: 'primary starts as master, passive', cfg: PRIMARY, inputs: [START], actions: [], log: ['STARTING PULSE AS MASTER'], active: false },
  { name: 'backup starts as backup, passive', cfg: BACKUP, inputs: [START], actions: [], log: ['STARTING PULSE AS BACKUP'], active: false },
  { name: 'preempt (forceactive) activates at start', cfg: { ...PRIMARY, preempt: true }, inputs: [START],
    actions: [act('activate')], log: ['STARTING PULSE AS MASTER', 'Forced active on startup: activating lvs'], active: true },
  { name: 'primary with backup_active=0 activates after deadtime', cfg: { ...PRIMARY, backupActive: false }, inputs: [START, DEAD],
    actions: [act('activate'), send('stop-me')], log: ['partner dead: activating lvs'], active: true },
  { name: 'dead partner: backup activates and tells the old active to stand down', cfg: BACKUP, inputs: [START, DEAD],
    actions: [act('activate'), send('stop-me')], log: ['partner dead: activating lvs'], active: true },
  { name: 'dead again while active: nothing', cfg: BACKUP, inputs: [START, DEAD, DEAD], actions: [], log: [], active: true },
  { name: 'backup hears STOPPED: primary inactive', cfg: BACKUP, inputs: [START, STOPPED],
    actions: [act('activate')], log: ['primary inactive: activating lvs'], active: true },
  { name: 'primary hears STOPPED: backup inactive', cfg: PRIMARY, inputs: [START, STOPPED],
    actions: [act('activate')], log: ['backup inactive: activating lvs'], active: true },
  { name: 'STOPPED while active: nothing', cfg: PRIMARY, inputs: [START, STOPPED, STOPPED], actions: [], log: [], active: true },
  { name: 'active backup hears the primary RUNNING: one last RUNNING, then deactivates', cfg: BACKUP, inputs: [START, DEAD, RUNNING],
    actions: [send('running'), act('deactivate')],
    log: ['both routers active: partner stays active (the primary wins)', 'partner active: deactivating LVS'], active: false },
  { name: 'active primary hears RUNNING: resends arps and tells the backup to stand down', cfg: PRIMARY, inputs: [START, STOPPED, RUNNING],
    actions: [act('resend-arps'), send('stop-me')],
    log: ['both routers active: staying active (the primary wins)', 'partner active: resending arps'], active: true },
  { name: 'returning primary hears RUNNING: stays backup', cfg: PRIMARY, inputs: [START, RUNNING, RUNNING], actions: [], log: [], active: false },
  { name: 'returning primary with preempt: active, and stays so against the backup', cfg: { ...PRIMARY, preempt: true }, inputs: [START, RUNNING],
    actions: [act('resend-arps'), send('stop-me')],
    log: ['both routers active: staying active (the primary wins)', 'partner active: resending arps'], active: true },
  { name: 'STOP-ME while active: stand down', cfg: PRIMARY, inputs: [START, STOPPED, STOP_ME],
    actions: [act('deactivate')], log: ['partner asked us to stand down: deactivating LVS'], active: false },
  { name: 'STOP-ME while inactive: nothing', cfg: PRIMARY, inputs: [START, STOP_ME], actions: [], log: [], active: false },
  { name: 'child exit while active: deactivate and say STOPPED', cfg: PRIMARY, inputs: [START, DEAD, { type: 'child-exit', pid: 12, status: 1 }],
    actions: [act('deactivate'), send('stopped')], log: ['Child process 12 exited with status 1'], active: false },
  { name: 'after a child failure the dead timer does not activate', cfg: PRIMARY, inputs: [START, DEAD, { type: 'child-exit' }, DEAD], actions: [], log: [], active: false },
  { name: 'after a child failure STOPPED does not activate', cfg: BACKUP, inputs: [START, DEAD, { type: 'child-exit' }, STOPPED], actions: [], log: [], active: false },
  { name: 'RUNNING clears the child failure', cfg: PRIMARY, inputs: [START, DEAD, { type: 'child-exit' }, RUNNING, STOPPED],
    actions: [act('activate')], log: ['backup inactive: activating lvs'], active: true },
  { name: 'link failure deactivates and blocks', cfg: BACKUP, inputs: [START, DEAD, { type: 'link-failed' }],
    actions: [act('deactivate'), send('stopped')], log: ['Local NIC link failure: Pulse disabled'], active: false },
  { name: 'link failure blocks the dead timer', cfg: BACKUP, inputs: [START, { type: 'link-failed' }, DEAD], actions: [], log: [], active: false },
  { name: 'RUNNING does not clear a link failure', cfg: BACKUP, inputs: [START, { type: 'link-failed' }, RUNNING, STOPPED], actions: [], log: [], active: false },
  { name: 'link restored enables again', cfg: BACKUP, inputs: [START, { type: 'link-failed' }, { type: 'link-restored' }, DEAD],
    actions: [act('activate'), send('stop-me')], log: ['partner dead: activating lvs'], active: true },
  { name: 'link restored is logged once', cfg: BACKUP, inputs: [START, { type: 'link-failed' }, { type: 'link-restored' }, { type: 'link-restored' }], actions: [], log: [], active: false },
  { name: 'stop while active: deactivate and say STOPPED', cfg: PRIMARY, inputs: [START, DEAD, { type: 'stop', signal: 15 }],
    actions: [act('deactivate'), send('stopped')], log: ['Terminating due to signal 15'], active: false },
  { name: 'stop while inactive: say STOPPED', cfg: BACKUP, inputs: [START, { type: 'stop' }], actions: [send('stopped')], log: ['shutting down'], active: false },
  { name: 'inputs after stop are ignored', cfg: BACKUP, inputs: [START, { type: 'stop' }, DEAD], actions: [], log: [], active: false },
  { name: 'a second start is ignored', cfg: BACKUP, inputs: [START, START], actions: [], log: [], active: false },
  // Two nodes of the same role (a misconfiguration lvsd heartbeats reveal): priority, then node id.
  { name: 'equals: higher priority stays active', cfg: { ...PRIMARY, priority: 200, nodeId: 2 },
    inputs: [START, DEAD, { type: 'heartbeat', state: 'running', peer: { isPrimary: true, priority: 100, nodeId: 1 } }],
    actions: [act('resend-arps'), send('stop-me')], log: ['both routers active: staying active (higher priority wins (200 vs 100))', 'partner active: resending arps'], active: true },
  { name: 'equals: lower priority stands down', cfg: { ...BACKUP, priority: 100, nodeId: 1 },
    inputs: [START, DEAD, { type: 'heartbeat', state: 'running', peer: { isPrimary: false, priority: 200, nodeId: 2 } }],
    actions: [send('running'), act('deactivate')], log: ['both routers active: partner stays active (higher priority wins (100 vs 200))', 'partner active: deactivating LVS'], active: false },
  { name: 'equals, same priority: lower node id stays active', cfg: { ...PRIMARY, nodeId: 3 },
    inputs: [START, DEAD, { type: 'heartbeat', state: 'running', peer: { isPrimary: true, priority: 100, nodeId: 9 } }],
    actions: [act('resend-arps'), send('stop-me')], log: ['both routers active: staying active (lower node id wins (3 vs 9))', 'partner active: resending arps'], active: true },
  { name: 'the primary flag beats priority', cfg: { ...BACKUP, priority: 255 },
    inputs: [START, DEAD, { type: 'heartbeat', state: 'running', peer: { isPrimary: true, priority: 0, nodeId: 5 } }],
    actions: [send('running'), act('deactivate')], log: ['both routers active: partner stays active (the primary wins)', 'partner active: deactivating LVS'], active: false },
];

describe('election: event sequences', () => {
  for (const row of table) {
    it(row.name, () => {
      const e = new Election(row.cfg);
      let last = { actions: [] as ElectionAction[], log: [] as string[] };
      for (const i of row.inputs) last = e.handle(i);
      expect(last.actions).toEqual(row.actions);
      expect(last.log).toEqual(row.log);
      expect(e.active).toBe(row.active);
      expect(e.advertised).toBe(row.active ? 'running' : 'stopped');
    });
  }

  it('transition() does not modify the state it is given', () => {
    const s = { ...initialState };
    const r = transition(PRIMARY, s, START);
    expect(s).toEqual(initialState);
    expect(r.state.phase).toBe('running');
  });
});

describe('election: the tie rule', () => {
  it('is antisymmetric: for any two distinct nodes exactly one wins', () => {
    const nodes: PeerInfo[] = [];
    for (const isPrimary of [false, true]) for (const priority of [0, 100, 255]) for (const nodeId of [0, 1, 0xffffffff]) nodes.push({ isPrimary, priority, nodeId });
    for (const a of nodes) {
      for (const b of nodes) {
        if (a === b) continue;
        expect(weWin(a, b) !== weWin(b, a), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(true);
      }
    }
  });
});

/**
 * Two routers joined by a lossless link: each heartbeat (periodic or an election's `send`) is
 * handed to the other side's election, and whatever that sends goes back, until quiet.
 */
class Pair {
  readonly a: Election;
  readonly b: Election;
  readonly log: string[] = [];
  up = { a: true, b: true };

  constructor(ca: ElectionConfig, cb: ElectionConfig, readonly lvsdHeartbeats: boolean) {
    this.a = new Election(ca);
    this.b = new Election(cb);
  }

  private info(e: Election): PeerInfo {
    return { isPrimary: e.config.isPrimary, priority: e.config.priority ?? 100, nodeId: e.config.nodeId ?? 0 };
  }

  input(who: 'a' | 'b', i: ElectionInput): void {
    const queue: [('a' | 'b'), ElectionInput][] = [[who, i]];
    let steps = 0;
    while (queue.length > 0) {
      if (++steps > 100) throw new Error('the pair does not settle');
      const [w, inp] = queue.shift()!;
      if (!this.up[w]) continue;
      const e = w === 'a' ? this.a : this.b;
      const r = e.handle(inp);
      for (const l of r.log) this.log.push(`${w}: ${l}`);
      for (const act of r.actions) {
        if (act.kind === 'exit') this.up[w] = false;
        if (act.kind !== 'send') continue;
        const other = w === 'a' ? 'b' : 'a';
        // On Piranha's wire STOP-ME goes out as RUNNING (Heartbeat.sendNow).
        const state = !this.lvsdHeartbeats && act.state === 'stop-me' ? 'running' : act.state;
        queue.push([other, { type: 'heartbeat', state, ...(this.lvsdHeartbeats ? { peer: this.info(e) } : {}) }]);
      }
    }
  }

  /** One keepalive period: both send their advertised state at the same moment (the two
   *  heartbeats cross on the wire), then each is delivered. */
  tick(): void {
    const out: ['a' | 'b', ElectionInput][] = [];
    for (const [w, e, other] of [['a', this.a, 'b'], ['b', this.b, 'a']] as const) {
      if (!this.up[w] || e.state.phase !== 'running') continue;
      out.push([other, { type: 'heartbeat', state: e.advertised, ...(this.lvsdHeartbeats ? { peer: this.info(e) } : {}) }]);
    }
    for (const [to, i] of out) this.input(to, i);
  }

  actives(): string[] {
    return [...(this.a.active ? ['a'] : []), ...(this.b.active ? ['b'] : [])];
  }
}

describe('election: two routers', () => {
  const P = { ...PRIMARY, nodeId: 1 };
  const B = { ...BACKUP, nodeId: 2 };
  for (const lvsd of [false, true]) {
    const fmt = lvsd ? 'lvsd' : 'piranha';
    for (const order of ['a first', 'b first', 'together'] as const) {
      it(`${fmt}: started ${order}, the pair settles with the primary active`, () => {
        const pair = new Pair(P, B, lvsd);
        if (order === 'b first') { pair.input('b', START); pair.input('b', DEAD); pair.input('a', START); }
        else if (order === 'a first') { pair.input('a', START); pair.input('a', DEAD); pair.input('b', START); }
        else { pair.input('a', START); pair.input('b', START); }
        for (let i = 0; i < 4; i++) pair.tick();
        // Piranha's rule: whoever is active first keeps it unless the primary must win a tie.
        const expected = order === 'b first' ? ['b'] : ['a'];
        expect(pair.actives()).toEqual(expected);
      });
    }

    it(`${fmt}: primary stops, backup takes over; returning primary stays backup; with preempt it takes back`, () => {
      const pair = new Pair(P, B, lvsd);
      pair.input('a', START); pair.input('b', START);
      pair.tick(); pair.tick();
      expect(pair.actives()).toEqual(['a']);
      pair.input('a', { type: 'stop', signal: 15 });
      expect(pair.actives()).toEqual(['b']);
      expect(pair.log).toContain('b: primary inactive: activating lvs');
      // The primary comes back (a fresh process) without preempt.
      const back = new Pair(P, B, lvsd);
      back.input('b', START); back.input('b', DEAD);
      back.input('a', START);
      for (let i = 0; i < 4; i++) back.tick();
      expect(back.actives()).toEqual(['b']);
      // With preempt.
      const pre = new Pair({ ...P, preempt: true }, B, lvsd);
      pre.input('b', START); pre.input('b', DEAD);
      pre.input('a', START);
      for (let i = 0; i < 4; i++) pre.tick();
      expect(pre.actives()).toEqual(['a']);
      expect(pre.log).toContain('a: partner active: resending arps');
      expect(pre.log).toContain('b: partner active: deactivating LVS');
    });

    it(`${fmt}: a partition heals with exactly one active, and both log the outcome`, () => {
      const pair = new Pair(P, B, lvsd);
      pair.input('a', START); pair.input('b', START);
      pair.tick();
      // Partition: each declares the other dead; the STOP-ME each sends is lost.
      pair.up.b = false; pair.input('a', DEAD); pair.up.b = true;
      pair.up.a = false; pair.input('b', DEAD); pair.up.a = true;
      expect(pair.actives()).toEqual(['a', 'b']);
      pair.tick();
      expect(pair.actives()).toEqual(['a']);
      expect(pair.log.some((l) => l.startsWith('a: both routers active: staying active'))).toBe(true);
      expect(pair.log.some((l) => l.startsWith('b: both routers active: partner stays active'))).toBe(true);
    });

    it(`${fmt}: a one-way failure (the backup stops hearing the primary) ends with the backup active once STOP-ME arrives`, () => {
      const pair = new Pair(P, B, lvsd);
      pair.input('a', START); pair.input('b', START);
      pair.tick(); pair.tick();
      expect(pair.actives()).toEqual(['a']);
      pair.input('b', DEAD);
      if (lvsd) {
        expect(pair.actives()).toEqual(['b']);
        expect(pair.log).toContain('a: partner asked us to stand down: deactivating LVS');
      } else {
        // A Piranha peer hears STOP-ME as RUNNING: the active primary wins, as in pulse.
        expect(pair.actives()).toEqual(['a']);
      }
    });
  }
});
