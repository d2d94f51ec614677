export { HealthEngine, piranhaTiming } from './engine.js';
export type { RealCheck, SorryServer, HealthEngineOptions, ChangeEvent, WeightEvent, SorryEvent, StalledEvent, RealStatus, EngineStatus } from './engine.js';
export type { Probe, ProbeResult, ProbeTarget, CheckSpec } from './types.js';
export * from './checks/index.js';
