import { describe, expect, it } from 'vitest';
import { native } from '../../src/dataplane/native.js';
import { DumpFormat, Ev, MARK_RULE_WORDS, Op, OptionFlag, SLOT_COUNTERS, STATE_NAMES, SchedulerCode, SlotCounter } from '../../src/dataplane/protocol.js';
import { SYNC_RECORD_BYTES, SYNC_VERSION, SyncFlag } from '../../src/dataplane/sync.js';
import { RingConsumer, RingProducer } from '../../src/dataplane/ring.js';

describe('the TS and C++ halves agree', () => {
  it('on opcodes, events, states and record sizes', () => {
    const c = native().constants();
    expect(c.ops).toEqual(Op);
    expect(c.events).toEqual(Ev);
    expect(c.states).toEqual([...STATE_NAMES]);
    expect(c.slotCounters).toBe(SLOT_COUNTERS);
    expect(c.schedulers).toEqual(SchedulerCode);
    expect(c.markRuleWords).toBe(MARK_RULE_WORDS);
    expect(Object.keys(SlotCounter)).toHaveLength(SLOT_COUNTERS);
    expect(c.connEntryBytes).toBe(128); // the budget: at most 128 bytes per entry
    expect(c.defaultTimeouts.slice(0, 3)).toEqual([2, 900, 120]);
  });

  it('on connection sync: option flag, dump formats, record size, version and flags', () => {
    const c = native().constants();
    expect(c.optionFlags).toEqual(OptionFlag);
    expect(c.dumpFormats).toEqual(DumpFormat);
    expect(c.syncRecordBytes).toBe(SYNC_RECORD_BYTES);
    expect(SYNC_RECORD_BYTES % 4).toBe(0); // records travel in ring words
    expect(c.syncVersion).toBe(SYNC_VERSION);
    expect(c.syncFlags).toEqual(SyncFlag);
    for (const name of ['sync_exported', 'sync_dropped', 'sync_imported', 'sync_updated', 'sync_rejected_malformed', 'sync_rejected_no_service', 'sync_rejected_no_real', 'sync_rejected_full']) {
      expect(c.counters).toContain(name);
    }
  });

  it('on a layout where rings and stats stripes do not overlap and stripes are cache-line aligned', () => {
    const l = native().layout({ workers: 3, maxServices: 10, maxReals: 100, commandRingWords: 1024, eventRingWords: 256 });
    const regions: Array<[number, number]> = [
      [0, 256],
      [l.commandRing, l.commandRing + l.ringHeaderBytes + l.commandRingWords * 4],
      ...l.eventRings.map((o): [number, number] => [o, o + l.ringHeaderBytes + l.eventRingWords * 4]),
      [l.stats, l.stats + 3 * l.stripeBytes],
    ];
    for (let i = 1; i < regions.length; i++) expect(regions[i]![0]).toBeGreaterThanOrEqual(regions[i - 1]![1]);
    expect(l.totalBytes).toBe(regions.at(-1)![1]);
    expect(l.eventRings).toHaveLength(4); // control + 3 workers
    expect(l.stats % 64).toBe(0);
    expect(l.stripeBytes % 64).toBe(0);
    expect(l.stripeReals - l.stripeServices).toBe(10 * SLOT_COUNTERS * 8);
    expect(l.stripeBytes).toBeGreaterThanOrEqual(l.stripeReals + 100 * SLOT_COUNTERS * 8);
  });
});

describe('the JavaScript ring', () => {
  it('wraps with padding and preserves order and content across many laps', () => {
    const words = new Int32Array(new SharedArrayBuffer(256 + 64 * 4));
    const p = new RingProducer(words, 64);
    const c = new RingConsumer(words, 64);
    let sent = 0;
    let got = 0;
    for (let lap = 0; lap < 500; lap++) {
      const len = (lap * 7) % 13;
      while (p.push(1 + (sent % 100), Array.from({ length: len }, (_, i) => sent * 1000 + i))) sent++;
      for (const m of c.drain()) {
        expect(m.op).toBe(1 + (got % 100));
        expect(Array.from(m.payload)).toEqual(Array.from({ length: m.payload.length }, (_, i) => got * 1000 + i));
        got++;
      }
    }
    expect(got).toBe(sent);
    expect(sent).toBeGreaterThan(1000);
  });

  it('refuses a message larger than half the ring', () => {
    const words = new Int32Array(new SharedArrayBuffer(256 + 64 * 4));
    expect(() => new RingProducer(words, 64).push(1, new Array(40).fill(0))).toThrow(RangeError);
  });
});
