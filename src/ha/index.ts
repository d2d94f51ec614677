/** High availability (Piranha's pulse): the heartbeat wire, its transport and the election. */
export * from './heartbeat-wire.js';
export * from './heartbeat.js';
export * from './election.js';
export * from './sync-wire.js';
export * from './sync.js';
