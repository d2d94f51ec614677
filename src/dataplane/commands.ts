/**
 * Encoding of the control plane's state into command-ring messages (native/control/protocol.hpp
 * documents each layout). Pure functions: the Dataplane decides when to send what.
 */
import { addressWords, familyNumber, macWords } from '../net/address.js';
import type { InterfaceState, ParsedMarkRule, RealState, ServiceState } from './model.js';
import { Fwd, MARK_RULE_WORDS, Op, SchedulerCode, SvcFlag, State, STATE_NAMES } from './protocol.js';
import type { SchedulerFlag } from './types.js';

export type Command = [op: number, payload: ArrayLike<number>];

/** Table entries per SET_TABLE message: well under half the 65,536-word ring. */
const TABLE_CHUNK = 16_384;
const MARKS_PER_MESSAGE = 1_000;

const FLAG_BITS: Record<SchedulerFlag, number> = {
  'sh-fallback': SvcFlag.SCHED1,
  'mh-fallback': SvcFlag.SCHED1,
  'flag-1': SvcFlag.SCHED1,
  'sh-port': SvcFlag.SCHED2,
  'mh-port': SvcFlag.SCHED2,
  'flag-2': SvcFlag.SCHED2,
  'flag-3': SvcFlag.SCHED3,
};

export function serviceFlags(s: ServiceState): number {
  let f = s.persistence ? SvcFlag.PERSISTENT : 0;
  for (const flag of s.flags) f |= FLAG_BITS[flag];
  return f;
}

export function interfaceCommand(id: number, st: InterfaceState): Command {
  const flags = (st.ipv4 ? 1 : 0) | (st.ipv6 ? 2 : 0);
  return [Op.SET_INTERFACE, [id, st.mtu, st.vlan, flags, ...macWords(st.mac), addressWords(st.ipv4)[0], ...addressWords(st.ipv6)]];
}

export function serviceCommand(s: ServiceState): Command {
  const k = s.key;
  const p = s.persistence;
  return [
    Op.SET_SERVICE,
    [
      s.slot, familyNumber(k.family), k.protocol === 'udp' ? 17 : k.protocol === 'tcp' ? 6 : 0, k.port, k.fwmark | 0,
      SchedulerCode[s.scheduler], serviceFlags(s), p ? p.timeout : 0, p ? p.plen : 0,
      ...addressWords(k.address ?? undefined), ...addressWords(p?.mask), s.lcEpoch | 0, s.mhSize,
    ],
  ];
}

export function realCommand(s: ServiceState, r: RealState, isNew: boolean): Command {
  return [
    Op.SET_REAL,
    [r.slot, s.slot, familyNumber(r.address.family), r.port, r.current, Fwd[r.method], r.upper | 0, r.lower | 0, r.iface, isNew ? 1 : 0, ...macWords(r.mac), ...addressWords(r.address)],
  ];
}

/** One table, in chunks. An empty table is still sent (it clears the previous one). */
export function tableCommands(slot: number, kind: number, table: Int32Array): Command[] {
  const out: Command[] = [];
  for (let offset = 0; offset === 0 || offset < table.length; offset += TABLE_CHUNK) {
    const chunk = table.subarray(offset, offset + TABLE_CHUNK);
    out.push([Op.SET_TABLE, [slot, kind, table.length, offset, chunk.length, ...chunk]]);
  }
  return out;
}


export function markCommands(rules: ParsedMarkRule[]): Command[] {
  const out: Command[] = [];
  for (let at = 0; at === 0 || at < rules.length; at += MARKS_PER_MESSAGE) {
    const part = rules.slice(at, at + MARKS_PER_MESSAGE);
    const words: number[] = [at === 0 ? 1 : 0, part.length];
    for (const r of part) {
      words.push(
        familyNumber(r.family), r.protocol, ...addressWords(r.destination), r.destinationPrefix,
        ...addressWords(r.source), r.sourcePrefix, r.portFrom, r.portTo, r.rule.mark | 0,
      );
    }
    if (words.length !== 2 + part.length * MARK_RULE_WORDS) throw new Error('mark rule encoding');
    out.push([Op.SET_MARKS, words]);
  }
  return out;
}

export function optionsCommand(flags: number): Command {
  return [Op.SET_OPTIONS, [flags]];
}

/** ipvsadm --set: the ESTABLISHED, FIN_WAIT and UDP timeouts in seconds, 0 = unchanged. */
export function timeoutsCommand(tcp: number, tcpfin: number, udp: number): Command {
  const ms = new Array<number>(STATE_NAMES.length).fill(0);
  ms[State.ESTABLISHED] = tcp * 1000;
  ms[State.FIN_WAIT] = tcpfin * 1000;
  ms[State.UDP] = udp * 1000;
  return [Op.SET_TIMEOUTS, [ms.length, ...ms]];
}
