/**
 * The command/event vocabulary shared with native/control/protocol.hpp. The numbers are
 * checked against the addon's own table by test/dataplane/protocol.test.ts.
 */
export const Op = {
  SET_INTERFACE: 1,
  DEL_INTERFACE: 2,
  SET_SERVICE: 3,
  DEL_SERVICE: 4,
  SET_REAL: 5,
  DEL_REAL: 6,
  SET_TIMEOUTS: 7,
  CLEAR: 8,
  COMMIT: 9,
  DUMP_CONNS: 10,
  SET_TABLE: 11,
  SET_MARKS: 12,
  SET_OPTIONS: 13,
  SYNC_IMPORT: 14,
} as const;

/** OP_DUMP_CONNS formats: ipvsadm rows, or connection sync records. */
export const DumpFormat = { ROWS: 0, SYNC: 1 } as const;

export const TableKind = { BUCKETS: 1, WRR_SEQ: 2, WRR_CW: 3 } as const;
export const MARK_RULE_WORDS = 15;

/** IPVS service flags (IP_VS_SVC_F_*). */
export const SvcFlag = { PERSISTENT: 0x1, ONEPACKET: 0x4, SCHED1: 0x8, SCHED2: 0x10, SCHED3: 0x20 } as const;

export const OptionFlag = { EXPIRE_NODEST_CONN: 0x1, EXPIRE_QUIESCENT_TEMPLATE: 0x2, SYNC_MASTER: 0x4 } as const;

export const Ev = {
  APPLIED: 1,
  REAL_RELEASED: 2,
  SERVICE_RELEASED: 3,
  REJECTED: 4,
  DUMP_READY: 5,
  NEIGH_MISS: 6,
  SYNC: 7,
} as const;

/** Per-slot counters (services and reals), in stripe order. */
export const SlotCounter = {
  CONNS: 0,
  INPKTS: 1,
  OUTPKTS: 2,
  INBYTES: 3,
  OUTBYTES: 4,
  ACTIVE: 5,
  INACTIVE: 6,
  PERSIST: 7,
  SCHED_ACTIVE: 8,
  SCHED_INACTIVE: 9,
} as const;
export const SLOT_COUNTERS = 10;

/** Connection states, IPVS numbering. */
export const State = {
  NONE: 0,
  ESTABLISHED: 1,
  SYN_SENT: 2,
  SYN_RECV: 3,
  FIN_WAIT: 4,
  TIME_WAIT: 5,
  CLOSE: 6,
  CLOSE_WAIT: 7,
  LAST_ACK: 8,
  LISTEN: 9,
  SYNACK: 10,
  UDP: 11,
  ICMP: 12,
} as const;
export const STATE_NAMES = [
  'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE',
  'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK', 'UDP', 'ICMP',
] as const;
/** Templates show ASSURED once a connection they control has completed (IPVS). */
export type StateName = (typeof STATE_NAMES)[number] | 'ASSURED';

/** IPVS forwarding codes (IP_VS_CONN_F_MASQ / TUNNEL / DROUTE). */
export const Fwd = { nat: 0, tunnel: 2, direct: 3 } as const;

/** Scheduler codes understood by the dataplane. */
export const SchedulerCode = {
  rr: 1, wrr: 2, lc: 3, wlc: 4, sed: 5, nq: 6, lblc: 7, lblcr: 8, dh: 9, sh: 10, mh: 11, fo: 12, ovf: 13, twos: 14,
} as const;

/** Connection flags in a dump record. */
export const ConnFlag = { TEMPLATE: 1 << 3, ASSURED: 1 << 5 } as const;

export const Verdict = { drop: 0, tx: 1, pass: 2 } as const;
