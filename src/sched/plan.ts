/**
 * Which precomputed tables a service's scheduler needs, computed from its reals in list order:
 * sh/dh/mh buckets, and the wrr period (or nothing, letting the dataplane step, when the period
 * is long). Called whenever a service's reals, weights, scheduler or table size change.
 */
import type { Family } from '../net/address.js';
import type { SchedulerName } from '../dataplane/types.js';
import { TableKind } from '../dataplane/protocol.js';
import { dhTable, maglevTable, shTable, wrrTable } from './tables.js';

export interface PlanReal {
  slot: number;
  /** The weight the dataplane uses now. */
  weight: number;
  lastWeight: number;
  family: Family;
  address: Uint8Array;
  port: number;
}

export interface PlannedTable {
  kind: number;
  table: Int32Array;
}

export function schedulingTables(scheduler: SchedulerName, reals: readonly PlanReal[], mhSize: number): PlannedTable[] {
  switch (scheduler) {
    case 'sh':
      return [{ kind: TableKind.BUCKETS, table: shTable(reals) }];
    case 'dh':
      return [{ kind: TableKind.BUCKETS, table: dhTable(reals) }];
    case 'mh':
      return [{ kind: TableKind.BUCKETS, table: maglevTable(reals, mhSize) }];
    case 'wrr': {
      const t = wrrTable(reals);
      // No table: the dataplane runs IPVS's stepping over the weights itself.
      if (!t) return [{ kind: TableKind.WRR_SEQ, table: new Int32Array(0) }, { kind: TableKind.WRR_CW, table: new Int32Array(0) }];
      return [{ kind: TableKind.WRR_SEQ, table: t.sequence }, { kind: TableKind.WRR_CW, table: t.cw }];
    }
    default:
      return [];
  }
}
